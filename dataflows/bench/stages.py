"""Per-stage latency breakdown of a pipeline bench run, from `connectors.telemetry.stage`.

Each flow process of the run writes one timing per call of a timed stage (a batch, not
a tick): sources (`<step>.source`: how old the batch's records were when polled, i.e.
feed send -> broker -> poll, from the records' Kafka timestamps, millisecond
resolution), every stateful step (`flow.step`: the instrument pipeline = decode is not
in it, features, models and signals are; the risk gate; the paper book), their
snapshots (`.snapshot`) and the sinks (`<step>.produce`: encoding and queueing to
librdkafka). A Bytewax operator runs its keys one after the other, so back-to-back
calls of one stage (less than `GAP_NS` apart) are one activation, and every item in it
waits for the whole activation: a tick's latency share in a stage is the duration of
the activation that carried it. Per stage: p50/p99 of that share over items (ms), the
CPU-free wall cost per item (µs), calls and items, over the measured window only.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from connectors.codec import loads

GAP_NS = 200_000
Row = tuple[str, int, int, int, int | None]


def read_stages(directory: Path, prefix: str = "stages") -> list[Row]:
    """Every timing the run's processes wrote (`<prefix>.<pid>` files)."""
    rows: list[Row] = []
    for path in sorted(directory.glob(f"{prefix}.*")):
        rows += [tuple(loads(line)) for line in path.read_bytes().splitlines() if line]  # type: ignore[misc]
    return rows


def breakdown(rows: list[Row], start_ns: int, end_ns: int) -> dict[str, dict[str, Any]]:
    """The per-stage figures of the calls that started inside [start_ns, end_ns]."""
    by_stage: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if start_ns <= row[1] <= end_ns:
            by_stage[row[0]].append(row)
    order = sorted(by_stage, key=lambda name: min(r[1] for r in by_stage[name]))
    return {name: _figures(sorted(by_stage[name], key=lambda r: r[1])) for name in order}


def _figures(calls: list[Row]) -> dict[str, Any]:
    items = sum(c[3] for c in calls)
    busy = sum(c[2] - c[1] for c in calls)
    spans: list[int] = []
    weights: list[int] = []
    first, last, count = calls[0][1], calls[0][2], 0
    for call in calls:
        if call[1] - last > GAP_NS:
            spans.append(last - first)
            weights.append(count)
            first, count = call[1], 0
        last = max(last, call[2])
        count += call[3]
    spans.append(last - first)
    weights.append(count)
    figures: dict[str, Any] = {
        "calls": len(calls),
        "items": items,
        "us_per_item": round(busy / items / 1e3, 2) if items else None,
        "p50_ms": _weighted_ms(spans, weights, 50),
        "p99_ms": _weighted_ms(spans, weights, 99),
    }
    ages = [(c[4], c[3]) for c in calls if c[4] is not None]
    if ages:
        figures["age_p50_ms"] = _weighted_ms([a for a, _ in ages], [w for _, w in ages], 50)
        figures["age_p99_ms"] = _weighted_ms([a for a, _ in ages], [w for _, w in ages], 99)
    return figures


def _weighted_ms(values_ns: list[int], weights: list[int], q: float) -> float | None:
    """The q-th percentile of `values_ns` with each counted `weights` times, in ms.

    >>> _weighted_ms([1_000_000, 3_000_000], [3, 1], 50)
    1.0
    """
    if not values_ns or sum(weights) == 0:
        return None
    repeated = np.repeat(np.asarray(values_ns, dtype=np.float64), np.asarray(weights))
    return round(float(np.percentile(repeated, q)) / 1e6, 3)
