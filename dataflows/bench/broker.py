"""`hfl bench broker`: what the local Tansu broker itself costs, without any flow.

On a private broker (as `hfl bench pipeline`), with `connectors.kafka.probe`:

- `idle`: five consumers (the trading and gateway flows' sources and the persist
  flow's) poll empty partitions for `seconds`, at each `fetch.wait.max.ms`; the
  broker's CPU as a share of one core, and this process's (the five clients).
- `hop`: produce -> consume latency of single records sent every 5 ms, per
  `fetch.wait.max.ms` and producer `linger.ms`: p50 / p99 / max ms.
- `records`: the broker's CPU per record produced (200-byte records, as fast as one
  producer goes) and per record fetched back, per producer `linger.ms`.
- `growth`: a partition already storing N one-record batches gets one more record
  every millisecond while one consumer (fetch wait 5 ms) reads from its end: the
  broker's CPU as a share of one core, per fetch request and per record, for each N.
  Tansu's in-memory storage lists every stored batch of the partition to answer a
  fetch that has data, so this grows with N.
- `knobs`: the same 1,000 records/s trickle into an empty partition, read by two
  consumers (md.ticks: trading and gateway), per fetch wait and producer linger:
  broker CPU, fetch requests and produce -> consume latency.

The JSON object is the last stdout line; progress goes to stderr.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from connectors.codec import dumps
from connectors.kafka.admin import create_topics
from connectors.kafka.probe import (
    Trickle,
    fill,
    hop_latency,
    idle_fetch_cpu,
    record_costs,
    trickle,
)
from connectors.topic import TopicSpec
from dataflows.bench.baseline import CpuSampler
from dataflows.bench.pipeline import PORT_OFFSET, log, percentile_ms, private_broker
from dataflows.settings import Settings

FETCH_WAITS_MS = (5, 20, 50, 100)
LINGERS_MS = (0.0, 2.0, 10.0)
CONSUMERS = 5
HOP_RECORDS = 200
HOP_INTERVAL_S = 0.005
RECORDS = 100_000
STORED_BATCHES = (0, 2_000, 5_000, 10_000, 20_000)
GROWTH_FETCH_WAIT_MS = 5
# The pipeline's md.ticks: read by the trading and the gateway flows, fed at 1,000/s.
TRICKLE_CONSUMERS = 2
TRICKLE_LINGER_MS = 2.0
KNOB_FETCH_WAITS_MS = (2, 5, 10)
KNOB_LINGERS_MS = (0.0, 2.0, 5.0)


def bench_broker(
    settings: Settings, root: Path, *, seconds: float, only: str | None = None
) -> dict[str, Any]:
    """Measure idle polling, hop latency and per-record costs; print the JSON last.

    `only` ("growth" or "knobs") runs that part alone.
    """
    sampler = CpuSampler()
    result: dict[str, Any] = {"idle": {}, "hop": {}, "records": {}, "growth": {}, "knobs": {}}
    with private_broker(settings, root, "broker", PORT_OFFSET + 5) as run:
        sampler.watch("broker", run.broker_pid)
        bootstrap, prefix = run.settings.kafka.bootstrap, run.settings.kafka.topic_prefix
        specs = [TopicSpec(name="probe.idle", partitions=CONSUMERS, key="none")]
        specs += [TopicSpec(name=f"probe.hop.{n}", partitions=1, key="none") for n in range(32)]
        specs += [
            TopicSpec(name=f"probe.records.{n}", partitions=1, key="none")
            for n in range(len(LINGERS_MS))
        ]
        specs += [
            TopicSpec(name=f"probe.growth.{n}", partitions=1, key="none")
            for n in range(len(STORED_BATCHES))
        ]
        specs += [
            TopicSpec(name=f"probe.knobs.{n}", partitions=1, key="none")
            for n in range(len(KNOB_FETCH_WAITS_MS) * len(KNOB_LINGERS_MS))
        ]
        create_topics(bootstrap, tuple(specs), prefix=prefix)
        if only in {None, "growth"}:
            _growth(result["growth"], sampler, bootstrap, prefix, seconds)
        if only in {None, "knobs"}:
            _knobs(result["knobs"], sampler, bootstrap, prefix, seconds)
        if only is not None:
            sampler.close()
            print(dumps(result).decode(), flush=True)
            return result
        for wait_ms in FETCH_WAITS_MS:
            client = time.process_time()
            phase = idle_fetch_cpu(
                bootstrap,
                prefix + "probe.idle",
                consumers=CONSUMERS,
                fetch_wait_ms=wait_ms,
                seconds=seconds,
            )
            client = time.process_time() - client
            span_s = (phase.ended_ns - phase.started_ns) / 1e9
            used = sampler.used_s("broker", phase.started_ns, phase.ended_ns) or 0.0
            result["idle"][f"fetch_wait_{wait_ms}ms"] = {
                "broker_core_pct": round(100 * used / span_s, 1),
                "clients_core_pct": round(100 * client / (span_s + 1.0), 1),
            }
            log(f"idle, fetch wait {wait_ms} ms: {result['idle'][f'fetch_wait_{wait_ms}ms']}")
        hop = 0
        for wait_ms in FETCH_WAITS_MS:
            for linger_ms in LINGERS_MS[:2]:
                latencies = hop_latency(
                    bootstrap,
                    f"{prefix}probe.hop.{hop}",
                    fetch_wait_ms=wait_ms,
                    linger_ms=linger_ms,
                    records=HOP_RECORDS,
                    interval_s=HOP_INTERVAL_S,
                )
                hop += 1
                key = f"fetch_wait_{wait_ms}ms_linger_{linger_ms:g}ms"
                result["hop"][key] = {
                    "p50_ms": percentile_ms(latencies, 50),
                    "p99_ms": percentile_ms(latencies, 99),
                    "max_ms": round(max(latencies) / 1e6, 3) if latencies else None,
                    "received": len(latencies),
                }
                log(f"hop, {key}: {result['hop'][key]}")
        for n, linger_ms in enumerate(LINGERS_MS):
            produced, fetched = record_costs(
                bootstrap, f"{prefix}probe.records.{n}", count=RECORDS, linger_ms=linger_ms
            )
            figures = {}
            for name, phase in (("produce", produced), ("fetch", fetched)):
                used = sampler.used_s("broker", phase.started_ns, phase.ended_ns) or 0.0
                figures[f"{name}_us_per_record"] = round(used * 1e6 / RECORDS, 2)
                figures[f"{name}_records_per_s"] = round(
                    RECORDS * 1e9 / (phase.ended_ns - phase.started_ns)
                )
            result["records"][f"linger_{linger_ms:g}ms"] = figures
            log(f"records, linger {linger_ms:g} ms: {figures}")
    sampler.close()
    print(dumps(result).decode(), flush=True)
    return result


def _trickle_figures(
    sampler: CpuSampler, run: Trickle, *, storing_s: float | None = None
) -> dict[str, Any]:
    """Broker CPU share, fetch requests and hop latency of one `trickle` phase."""
    phase = run.phase
    span_s = (phase.ended_ns - phase.started_ns) / 1e9
    used = sampler.used_s("broker", phase.started_ns, phase.ended_ns) or 0.0
    figures: dict[str, Any] = {}
    if storing_s is not None:
        figures["storing_only_core_pct"] = round(100 * storing_s, 1)
    figures |= {
        "broker_core_pct": round(100 * used / span_s, 1),
        "fetches_per_s": round(run.fetches / span_s),
        "broker_us_per_fetch": round(used * 1e6 / run.fetches) if run.fetches else None,
        "received_per_s": round(len(run.latencies) / span_s),
        "hop_p50_ms": percentile_ms(run.latencies, 50),
        "hop_p99_ms": percentile_ms(run.latencies, 99),
        "hop_max_ms": round(max(run.latencies) / 1e6, 3) if run.latencies else None,
    }
    return figures


def _growth(
    into: dict[str, Any], sampler: CpuSampler, bootstrap: str, prefix: str, seconds: float
) -> None:
    """The broker's cost of a trickle read at its end, per number of stored batches."""
    for n, stored in enumerate(STORED_BATCHES):
        name = f"{prefix}probe.growth.{n}"
        fill(bootstrap, name, batches=stored)
        quiet = trickle(
            bootstrap, name, fetch_wait_ms=GROWTH_FETCH_WAIT_MS, seconds=2.0, read=False
        )
        span_s = (quiet.phase.ended_ns - quiet.phase.started_ns) / 1e9
        storing = sampler.used_s("broker", quiet.phase.started_ns, quiet.phase.ended_ns) or 0.0
        run = trickle(
            bootstrap,
            name,
            fetch_wait_ms=GROWTH_FETCH_WAIT_MS,
            seconds=min(seconds, 5.0),
            linger_ms=TRICKLE_LINGER_MS,
            consumers=TRICKLE_CONSUMERS,
        )
        into[f"stored_{stored}"] = _trickle_figures(sampler, run, storing_s=storing / span_s)
        log(f"growth, {stored:,} stored batches: {into[f'stored_{stored}']}")


def _knobs(
    into: dict[str, Any], sampler: CpuSampler, bootstrap: str, prefix: str, seconds: float
) -> None:
    """Fetch wait x producer linger for a 1,000 records/s trickle into an empty topic."""
    n = 0
    for wait_ms in KNOB_FETCH_WAITS_MS:
        for linger_ms in KNOB_LINGERS_MS:
            run = trickle(
                bootstrap,
                f"{prefix}probe.knobs.{n}",
                fetch_wait_ms=wait_ms,
                seconds=min(seconds, 5.0),
                linger_ms=linger_ms,
                consumers=TRICKLE_CONSUMERS,
            )
            n += 1
            key = f"fetch_wait_{wait_ms}ms_linger_{linger_ms:g}ms"
            into[key] = _trickle_figures(sampler, run)
            log(f"knobs, {key}: {into[key]}")
