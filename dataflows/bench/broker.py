"""`hfl bench broker`: what the local Tansu broker itself costs, without any flow.

On a private broker (as `hfl bench pipeline`), with `connectors.kafka.probe`:

- `idle`: five consumers (the trading and gateway flows' sources and the persist
  flow's) poll empty partitions for `seconds`, at each `fetch.wait.max.ms`; the
  broker's CPU as a share of one core, and this process's (the five clients).
- `hop`: produce -> consume latency of single records sent every 5 ms, per
  `fetch.wait.max.ms` and producer `linger.ms`: p50 / p99 / max ms.
- `records`: the broker's CPU per record produced (200-byte records, as fast as one
  producer goes) and per record fetched back, per producer `linger.ms`.

The JSON object is the last stdout line; progress goes to stderr.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from connectors.codec import dumps
from connectors.kafka.admin import create_topics
from connectors.kafka.probe import hop_latency, idle_fetch_cpu, record_costs
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


def bench_broker(settings: Settings, root: Path, *, seconds: float) -> dict[str, Any]:
    """Measure idle polling, hop latency and per-record costs; print the JSON last."""
    sampler = CpuSampler()
    result: dict[str, Any] = {"idle": {}, "hop": {}, "records": {}}
    with private_broker(settings, root, "broker", PORT_OFFSET + 5) as run:
        sampler.watch("broker", run.broker_pid)
        bootstrap, prefix = run.settings.kafka.bootstrap, run.settings.kafka.topic_prefix
        specs = [TopicSpec(name="probe.idle", partitions=CONSUMERS, key="none")]
        specs += [TopicSpec(name=f"probe.hop.{n}", partitions=1, key="none") for n in range(32)]
        specs += [
            TopicSpec(name=f"probe.records.{n}", partitions=1, key="none")
            for n in range(len(LINGERS_MS))
        ]
        create_topics(bootstrap, tuple(specs), prefix=prefix)
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
