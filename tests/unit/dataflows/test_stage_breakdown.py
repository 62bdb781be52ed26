"""The pipeline bench's per-stage breakdown from per-call timings."""

from __future__ import annotations

from dataflows.bench.stages import breakdown

MS = 1_000_000


def test_back_to_back_calls_are_one_activation_that_every_item_waits_for() -> None:
    rows = [
        # one activation of ten keys, 1 ms each, 10 items each: every item waits 10 ms
        *[("t.pipeline", 100 * MS + k * MS, 101 * MS + k * MS, 10, None) for k in range(10)],
        # a later lone call of 2 ms carrying 150 items
        ("t.pipeline", 500 * MS, 502 * MS, 150, None),
        ("t.ticks_in.source", 99 * MS, 99 * MS, 200, 3 * MS),
        ("t.pipeline", 10_000 * MS, 10_001 * MS, 5, None),  # outside the window
    ]

    figures = breakdown(rows, 0, 1_000 * MS)

    assert list(figures) == ["t.ticks_in.source", "t.pipeline"]
    pipeline = figures["t.pipeline"]
    assert (pipeline["calls"], pipeline["items"]) == (11, 250)
    assert pipeline["us_per_item"] == 48.0  # 12 ms busy over 250 items
    assert (pipeline["p50_ms"], pipeline["p99_ms"]) == (2.0, 10.0)
    assert figures["t.ticks_in.source"]["age_p50_ms"] == 3.0
