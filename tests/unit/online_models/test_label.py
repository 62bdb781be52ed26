"""Delayed event-time labels: when they resolve, what they say, how the queue stays bounded."""

from __future__ import annotations

import pickle

import pytest

from online_models.label import PendingLabels, Resolved

FEATURES = {"x": 1.0}


def test_resolve_before_horizon_returns_nothing() -> None:
    pending = PendingLabels(horizon_ns=100)
    pending.add("a", 1_000, 10.0, FEATURES, 0.6)

    assert pending.resolve(1_099, 11.0) == []
    assert len(pending) == 1


def test_resolve_exactly_at_horizon_labels_entry() -> None:
    pending = PendingLabels(horizon_ns=100)
    pending.add("a", 1_000, 10.0, FEATURES, 0.6)

    assert pending.resolve(1_100, 11.0) == [
        Resolved("a", 1_000, FEATURES, 0.6, 1, pytest.approx(0.1))
    ]
    assert len(pending) == 0


@pytest.mark.parametrize(
    ("price_now", "label"),
    [(10.5, 1), (10.0, 0), (9.5, 0)],
    ids=["up", "flat_is_zero", "down"],
)
def test_resolve_label_is_sign_of_forward_return(price_now: float, label: int) -> None:
    pending = PendingLabels(horizon_ns=5)
    pending.add("a", 0, 10.0, FEATURES, 0.5)

    [resolved] = pending.resolve(7, price_now)

    assert resolved.label == label


def test_resolve_late_tick_labels_every_due_entry_oldest_first() -> None:
    pending = PendingLabels(horizon_ns=10)
    for i, price in enumerate([10.0, 12.0, 9.0]):
        pending.add(f"t{i}", i, price, {"i": float(i)}, 0.5)
    pending.add("late", 50, 11.0, FEATURES, 0.5)

    resolved = pending.resolve(12, 11.0)

    assert [(r.tick_id, r.label) for r in resolved] == [("t0", 1), ("t1", 0), ("t2", 1)]
    assert [r.features for r in resolved] == [{"i": 0.0}, {"i": 1.0}, {"i": 2.0}]
    assert len(pending) == 1


def test_add_when_full_evicts_oldest_and_counts_it() -> None:
    pending = PendingLabels(horizon_ns=10, max_pending=2)
    for i in range(5):
        pending.add(f"t{i}", i, 10.0, FEATURES, 0.5)

    assert pending.evicted == 3
    assert [r.tick_id for r in pending.resolve(100, 11.0)] == ["t3", "t4"]


@pytest.mark.parametrize(
    ("horizon_ns", "max_pending"), [(-1, 10), (10, 0)], ids=["negative_horizon", "zero_bound"]
)
def test_init_out_of_range_raises(horizon_ns: int, max_pending: int) -> None:
    with pytest.raises(ValueError, match=">="):
        PendingLabels(horizon_ns, max_pending=max_pending)


def test_pickle_round_trip_keeps_entries_and_counters() -> None:
    pending = PendingLabels(horizon_ns=10, max_pending=1)
    pending.add("a", 0, 10.0, FEATURES, 0.7)
    pending.add("b", 1, 10.0, FEATURES, 0.3)

    restored = pickle.loads(pickle.dumps(pending))

    assert restored.evicted == 1
    assert restored.resolve(11, 9.0) == pending.resolve(11, 9.0)
