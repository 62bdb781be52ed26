"""Ingestion: candles from the venues' REST history into ClickHouse (and Kafka for replay)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataflows.commands.context import ROOT, current_settings
from risk.domain.error import ConfigError

HISTORY_TOPIC = "md.history"


def _ms(text: str) -> int:
    """Milliseconds of an ISO 8601 time (UTC unless it names a zone), or of `now`."""
    if text == "now":
        return time.time_ns() // 1_000_000
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not an ISO 8601 time (2026-01-01T00:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _load(config_path: str) -> tuple[Any, Any]:
    import yaml

    from connectors.feeds.history.ingest import history_config_from_mapping
    from connectors.feeds.live.instrument import venues_from_mapping

    mapping = yaml.safe_load(Path(config_path or ROOT / "config" / "feeds.yaml").read_text()) or {}
    live = venues_from_mapping((mapping.get("live") or {}).get("venues") or {})
    return history_config_from_mapping(mapping.get("history")), live


def _symbols(live: Any, venue: str, names: list[str]) -> list[tuple[str, str]]:
    """(instrument, venue symbol) per name: a configured instrument maps to its venue symbol."""
    configured = {i.instrument: i.symbol for i in live[venue].instruments} if venue in live else {}
    return [(name, configured.get(name, name)) for name in names]


class _Store:
    """The ClickHouse side: migrated once, one idempotent insert per page."""

    def __init__(self) -> None:
        from sinks.client import connect
        from sinks.migration import migrate
        from sinks.writer import BatchWriter

        clickhouse = current_settings().clickhouse
        client = connect(clickhouse.url.reveal())
        migrate(client, cluster=clickhouse.cluster)
        self._writer = BatchWriter(client)

    def write(self, rows: list[dict[str, Any]], token: str) -> None:
        self._writer.write("history_bars", rows, token=token)


class _Kafka:
    """Candles onto `md.history` keyed by instrument, acknowledged before the cursor moves."""

    def __init__(self) -> None:
        from connectors.kafka.admin import create_topics
        from connectors.kafka.producer import CheckedProducer
        from connectors.topic import TopicSpec

        kafka = current_settings().kafka
        self.topic = kafka.topic_prefix + HISTORY_TOPIC
        spec = TopicSpec(name=HISTORY_TOPIC, partitions=1, key="instrument")
        create_topics(kafka.bootstrap, (spec,), prefix=kafka.topic_prefix)
        self._producer = CheckedProducer(kafka.bootstrap, idempotent=True)

    def publish(self, rows: list[dict[str, Any]]) -> None:
        from connectors.codec import encode
        from connectors.kafka.record import OutboundRecord

        self._producer.send(
            OutboundRecord(self.topic, row["instrument"].encode(), encode(row)) for row in rows
        )


def run_jobs(
    venue: str,
    pairs: list[tuple[str, str]],
    interval: str,
    since_ms: int,
    until_ms: int | None,
    *,
    config: Any,
    base_url: str | None,
    state_dir: str,
    store: Any,
    kafka: Any,
    quiet: bool = False,
) -> list[dict[str, Any]]:
    """Ingest each (instrument, venue symbol) of `venue`; returns one summary per job."""
    from connectors.feeds.history.ingest import (
        INTERVALS_S,
        CursorStore,
        HistoryIngestor,
        make_exchange,
    )

    limits = config.limits[venue]
    exchange = make_exchange(venue, limits, base_url)

    def progress(result: Any, end_ms: int) -> None:
        if quiet:
            return
        left = max(0, end_ms - result.next_ms) // (INTERVALS_S[interval] * 1000)
        at = datetime.fromtimestamp(result.next_ms / 1000, UTC)
        print(
            f"ingest {venue} {result.instrument} {interval}: {result.rows} rows, "
            f"{result.pages} pages, {result.requests} requests, {result.retries} retries, "
            f"{left} intervals left, next {at:%Y-%m-%dT%H:%M}Z",
            file=sys.stderr,
            flush=True,
        )

    ingestor = HistoryIngestor(
        venue,
        exchange,
        limits,
        CursorStore(state_dir),
        sink=store.write,
        publish=kafka.publish if kafka is not None else None,
        on_page=progress,
        max_attempts=config.max_attempts,
        backoff_initial_s=config.backoff_initial_s,
        backoff_max_s=config.backoff_max_s,
    )
    summaries = []
    for instrument, symbol in pairs:
        started = time.monotonic()
        result = ingestor.run(instrument, symbol, interval, since_ms, until_ms)
        summary = {**result.as_dict(), "seconds": round(time.monotonic() - started, 3)}
        summaries.append(summary)
        print(json.dumps(summary), flush=True)
    return summaries


def _history(args: argparse.Namespace) -> int:
    config, live = _load(args.config)
    if args.venue not in config.limits:
        raise ConfigError(f"--venue: one of {', '.join(sorted(config.limits))}")
    pairs = _symbols(live, args.venue, [s for s in args.symbols.split(",") if s])
    if not pairs:
        raise ConfigError("--symbols: at least one")
    run_jobs(
        args.venue,
        pairs,
        args.interval,
        _ms(args.since),
        _ms(args.until) if args.until else None,
        config=config,
        base_url=args.base_url or None,
        state_dir=args.state_dir or str(ROOT / config.state_dir),
        store=_Store(),
        kafka=_Kafka() if args.kafka else None,
        quiet=args.quiet,
    )
    return 0


def _schedule(args: argparse.Namespace) -> int:
    """Run the configured jobs when due; `--once` runs each once and returns."""
    config, live = _load(args.config)
    if not config.schedule:
        raise ConfigError("no history.schedule in the feeds config")
    store, kafka = _Store(), _Kafka() if args.kafka else None
    due = {i: 0.0 for i in range(len(config.schedule))}
    while True:
        for i, job in enumerate(config.schedule):
            if time.monotonic() < due[i]:
                continue
            now_ms = time.time_ns() // 1_000_000
            run_jobs(
                job.venue,
                _symbols(live, job.venue, list(job.symbols)),
                job.interval,
                now_ms - int(job.lookback_s * 1000),
                None,
                config=config,
                base_url=args.base_url or None,
                state_dir=args.state_dir or str(ROOT / config.state_dir),
                store=store,
                kafka=kafka,
                quiet=args.quiet,
            )
            due[i] = time.monotonic() + job.every_s
        if args.once:
            return 0
        time.sleep(max(0.0, min(due.values()) - time.monotonic()))


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ingest history` and `ingest schedule`."""
    ingest = sub.add_parser("ingest", help="history from the venues' REST APIs into ClickHouse")
    kinds = ingest.add_subparsers(dest="source", required=True)
    history = kinds.add_parser("history", help="OHLCV candles of a venue, resumable")
    history.add_argument("--venue", required=True, help="binance, coinbase or kraken")
    history.add_argument(
        "--symbols", required=True, help="comma-separated instruments (config) or venue symbols"
    )
    history.add_argument("--since", required=True, help="first candle, ISO 8601 (UTC)")
    history.add_argument("--until", default="", help="end, ISO 8601 (default: now)")
    history.add_argument("--interval", default="1m", help="1m, 5m, 15m, 1h or 1d")
    history.set_defaults(run=_history)
    schedule = kinds.add_parser("schedule", help="run config history.schedule when due")
    schedule.add_argument("--once", action="store_true", help="run every job once and exit")
    schedule.set_defaults(run=_schedule)
    for parser in (history, schedule):
        parser.add_argument("--config", default="", help="feeds YAML (default config/feeds.yaml)")
        parser.add_argument(
            "--base-url", default="", help="one URL in place of the venue's API hosts (a stand-in)"
        )
        parser.add_argument("--state-dir", default="", help="cursor files (default var/ingest)")
        parser.add_argument("--kafka", action="store_true", help="also publish to md.history")
        parser.add_argument("--quiet", action="store_true", help="no progress lines")
