"""Latency percentiles from the flows' histogram: real values, or an honest lower bound."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from dashboard.monitor import flow_figures


def figures(latencies_s: list[float]) -> dict[str, object]:
    registry = CollectorRegistry()
    histogram = Histogram(
        "hfl_pipeline_tick_to_decision_seconds", "t", buckets=(0.1, 1.0, 5.0), registry=registry
    )
    for value in latencies_s:
        histogram.observe(value)
    return flow_figures(registry)


def test_percentiles_within_the_buckets_are_interpolated() -> None:
    got = figures([0.05] * 60 + [0.5] * 40)
    assert got["tick_to_decision_p50_ms"] == pytest.approx(50 / 60 * 100)
    assert "tick_to_decision_p50_ms_above" not in got


def test_percentiles_beyond_the_top_bucket_are_a_lower_bound_not_its_value() -> None:
    got = figures([0.05] * 10 + [42.0] * 90)
    assert got["tick_to_decision_p50_ms"] is None
    assert got["tick_to_decision_p50_ms_above"] == 5000.0
    assert got["tick_to_decision_p99_ms_above"] == 5000.0


def test_interpolated_percentiles_carry_their_bucket_bounds() -> None:
    got = figures([2.0] * 100)  # all in one bucket: p50 and p99 differ only by interpolation
    assert got["tick_to_decision_p50_ms"] == pytest.approx(3000.0)
    assert got["tick_to_decision_p99_ms"] == pytest.approx(4960.0)
    assert got["tick_to_decision_p50_ms_bucket"] == [1000.0, 5000.0]
    assert got["tick_to_decision_p99_ms_bucket"] == [1000.0, 5000.0]
