"""Operations: the local broker, topics, schema, feeds, the demo, SQL, and operator control
(kill, reduce, resume, limits)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from connectors.topic import AUDIT
from dataflows.commands.context import (
    ROOT,
    base_settings,
    current_settings,
    positive_float,
    positive_int,
    running_settings,
)
from dataflows.ops.control import audit_offset, await_applied, publish_control, publish_limit
from dataflows.settings import Settings
from risk.domain import ControlAction


def _broker(args: argparse.Namespace) -> int:
    from connectors.broker import broker_status, start_broker, stop_broker

    broker = base_settings().broker
    pid_file, log_file = ROOT / "var" / "broker.pid", ROOT / "var" / "broker.log"
    if args.action == "start":
        pid = start_broker(broker.host, broker.port, pid_file, log_file)
        print(f"broker running on {broker.host}:{broker.port} (pid {pid})")
    elif args.action == "stop":
        print("broker stopped" if stop_broker(pid_file) else "no broker was running")
    else:
        status = broker_status(broker.host, broker.port, pid_file)
        print(
            f"broker {status.address}: pid={status.pid} running={status.running} "
            f"reachable={status.reachable}"
        )
        return 0 if status.reachable else 1
    return 0


def _topics(args: argparse.Namespace) -> int:
    from connectors.kafka.admin import create_topics

    kafka = current_settings().kafka
    created = create_topics(kafka.bootstrap, **kafka.topic_layout())
    print(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))
    return 0


def _db(args: argparse.Namespace) -> int:
    from sinks.client import connect
    from sinks.migration import migrate

    clickhouse = current_settings().clickhouse
    applied = migrate(connect(clickhouse.url.reveal()), cluster=clickhouse.cluster)
    print(f"applied migrations: {', '.join(applied) or 'none (up to date)'}")
    return 0


def _feed_live(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from connectors.feeds.live.runner import (
        LiveRouter,
        load_feed_config,
        open_connections,
        run_live,
    )
    from connectors.feeds.publisher import FEED_LINGER_MS
    from connectors.kafka.producer import CheckedProducer
    from connectors.telemetry.metric import observe_feed, start_process_metrics
    from risk.failover import Failover

    settings = current_settings()
    config = load_feed_config(args.config or ROOT / "config" / "feeds.yaml")
    venues = args.venues.split(",") if args.venues else list(config.venues)
    unknown = [v for v in venues if v not in config.venues]
    if unknown:
        print(f"unknown venues {unknown}; configured: {sorted(config.venues)}", file=sys.stderr)
        return 2
    urls = dict(item.split("=", 1) for item in args.url)
    instruments = frozenset(args.symbols.split(",")) if args.symbols else None
    connections = open_connections(config, venues, instruments=instruments, urls=urls)
    routes = [
        r
        for r in config.routes
        if r.primary in venues
        and r.secondary in venues
        and (instruments is None or r.instrument in instruments)
    ]
    failover = (
        Failover(routes, stale_after_ns=int(config.failover_stale_s * 1e9))
        if routes and not args.no_failover
        else None
    )
    router = LiveRouter(prefix=settings.kafka.topic_prefix, failover=failover)
    start_process_metrics("feed")
    if settings.metrics.port:
        from connectors.telemetry.metric import serve_metrics

        serve_metrics(settings.metrics.host, settings.metrics.port)
    producer = CheckedProducer(settings.kafka.bootstrap, linger_ms=FEED_LINGER_MS)
    backfills = {}
    if not args.no_backfill:
        from connectors.feeds.live.backfill import BACKFILL_VENUES, GapBackfill

        rest_urls = dict(item.split("=", 1) for item in args.rest_url)
        for connection in connections:
            name = connection.venue.name
            if name in BACKFILL_VENUES:
                symbols = {i.instrument: i.symbol for i in config.venues[name].instruments}
                backfills[name] = GapBackfill.for_venue(name, symbols, rest_urls.get(name))

    def report(live: list[Any]) -> None:
        for connection in live:
            observe_feed(connection.metrics.snapshot())
        parts = [
            f"{c.venue.name}: {c.metrics.ticks} ticks, {c.metrics.reconnects} reconnects, "
            f"{c.metrics.gaps} gaps, lag p50 {c.metrics.lag_percentiles_ms().get('p50', 0):.1f} ms"
            for c in live
        ]
        print(f"published {sum(router.published.values())} | " + " | ".join(parts), file=sys.stderr)

    try:
        sent = asyncio.run(
            run_live(
                connections,
                router,
                producer.produce,
                max_ticks=args.max_ticks or None,
                report=report,
                backfills=backfills,
            )
        )
    except KeyboardInterrupt:
        sent = sum(router.published.values())
    producer.flush()
    report(connections)
    summary = {
        "published": sent,
        "per_venue": dict(router.published),
        "unused_secondary": dict(router.unused),
        "alerts": dict(router.alerts),
        "backfilled": dict(router.backfilled),
        "switches": len(router.switches),
        "venues": [c.metrics.snapshot() for c in connections],
    }
    print(json.dumps(summary))
    return 0


def _hint_bar_interval(settings: Settings, path: str, kind: str | None) -> None:
    """Say which bar interval a replayed file has, when the flows would not know it:
    they derive their time scales from `data.bar_interval`, and cannot see this file."""
    from connectors.codec import loads
    from connectors.feeds.replay import read_records
    from risk.timescale import (
        AUTO,
        NS_PER_S,
        estimate_interval_ns,
        format_interval,
        rounded_interval,
    )

    if settings.data.bar_interval != AUTO:
        return

    def stamps() -> Iterator[tuple[str, int]]:
        # A replay file may hold malformed lines: the flows dead-letter them, the hint skips them.
        for raw in read_records(path, kind=kind):
            try:
                record = loads(raw) if isinstance(raw, bytes) else raw
                yield str(record.get("instrument", "")), int(record["ts_event"])
            except (ValueError, TypeError, KeyError, AttributeError):
                continue

    interval = estimate_interval_ns(stamps())
    if interval is not None and interval > NS_PER_S:
        name = format_interval(rounded_interval(interval))
        print(
            f"{path}: bars {name} apart (estimated); start the flows with"
            f" HFL_DATA__BAR_INTERVAL={name} (data.bar_interval) so their time scales follow",
            file=sys.stderr,
        )


def _feed(args: argparse.Namespace) -> int:
    from connectors.feeds.progress import Progress, tracked
    from connectors.feeds.publisher import FEED_LINGER_MS, publish
    from connectors.feeds.replay import paced, read_records
    from connectors.feeds.simulator import SimulationConfig, simulate
    from connectors.kafka.end import FEED, write_end
    from connectors.kafka.producer import CheckedProducer
    from connectors.topic import TICKS

    if args.source == "live":
        return _feed_live(args)
    settings = current_settings()
    if settings.metrics.port:
        from connectors.telemetry.metric import serve_metrics

        serve_metrics(settings.metrics.host, settings.metrics.port)
    if args.source == "simulate":
        config = SimulationConfig(
            symbols=tuple(args.symbols.split(",")) if args.symbols else settings.feed.symbols,
            seed=args.seed if args.seed is not None else settings.feed.seed,
            ticks_per_second=args.rate or settings.feed.ticks_per_second,
            start_ns=time.time_ns(),
        )
        total = args.ticks or int(config.ticks_per_second * args.duration)
        records = paced(simulate(config, total), None if args.fast else 1.0)
    else:
        total = None
        _hint_bar_interval(settings, args.file, args.kind)
        records = paced(read_records(args.file, kind=args.kind), args.speed)
    kafka = settings.kafka
    producer = CheckedProducer(kafka.bootstrap, linger_ms=FEED_LINGER_MS)
    topic = kafka.topic_prefix + TICKS
    with Progress(total=total, label="ticks") as progress:
        sent = publish(tracked(records, progress), producer, topic)
    if not args.no_end:
        # Bounded flows of this namespace end once they carried everything before it.
        write_end(producer, kafka.bootstrap, FEED, [topic])
    print(f"published {sent} records" + ("" if args.no_end else ", then the end of stream"))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from dataflows.ops.demo import run_demo
    from risk.performance import parse_frequency

    started = time.monotonic()
    summary = run_demo(
        base_settings(),
        ROOT,
        ticks=args.ticks,
        seed=args.seed,
        rate=args.rate,
        dashboard=not args.no_dashboard,
        frequency=parse_frequency(args.frequency),
    )
    print(summary.render())
    print(f"demo finished in {time.monotonic() - started:.1f}s")
    return 0


def _sql(args: argparse.Namespace) -> int:
    from sinks.query import format_json, format_table, query

    columns, rows = query(current_settings().clickhouse.url.reveal(), args.query, console=True)
    print(format_json(columns, rows) if args.format == "json" else format_table(columns, rows))
    return 0


def _add_control(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add `hfl kill`, `hfl reduce` and `hfl resume` to the CLI's subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    common.add_argument("--account", default=None, help="default: the configured account")
    common.add_argument("--instrument", default="", help="one instrument (default: all)")
    _add_ack(common)
    kill = sub.add_parser(
        "kill", parents=[common], help="halt trading and cancel working orders (kill switch)"
    )
    kill.add_argument("--flatten", action="store_true", help="also close filled positions")
    kill.set_defaults(run=_control, action=ControlAction.KILL)
    reduce = sub.add_parser("reduce", parents=[common], help="allow only reducing orders")
    reduce.set_defaults(run=_control, action=ControlAction.REDUCE, flatten=False)
    resume = sub.add_parser("resume", parents=[common], help="return to ACTIVE trading")
    resume.add_argument(
        "--confirm", action="store_true", help="required: resuming re-enables trading"
    )
    resume.set_defaults(run=_control, action=ControlAction.RESUME, flatten=False)
    limits = sub.add_parser("limits", help="change a limit of the running risk gate")
    change = limits.add_subparsers(dest="change", required=True)
    set_limit = change.add_parser(
        "set", help="set one instrument's max position (counting working orders)"
    )
    set_limit.add_argument("--instrument", required=True, help="the instrument")
    set_limit.add_argument(
        "--max-position", required=True, type=Decimal, help="largest absolute position"
    )
    set_limit.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    set_limit.add_argument("--account", default=None, help="default: the configured account")
    _add_ack(set_limit)
    set_limit.set_defaults(run=_control, action=None)


def _add_ack(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ack-timeout",
        type=positive_float,
        default=30.0,
        help="seconds to wait for the risk gate's acknowledgement (default 30)",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="publish only; do not wait for the gate"
    )


def _control(args: argparse.Namespace) -> int:
    """Publish the command the parsed CLI arguments describe to the running system, then
    wait for the risk gate's acknowledgement (its audit row) unless `--no-wait`."""
    if args.action is ControlAction.RESUME and not args.confirm:
        print("hfl resume: refusing without --confirm (it re-enables trading)", file=sys.stderr)
        return 2
    settings = running_settings()
    start = audit_offset(settings)
    command_id = _send(args, settings)
    if args.no_wait:
        return 0
    if not await_applied(settings, command_id, start, args.ack_timeout):
        print(
            f"hfl {args.command}: sent {command_id}, but the risk gate did not acknowledge it"
            f" within {args.ack_timeout:g}s (no control_applied audit row on"
            f" {settings.kafka.topic_prefix}{AUDIT}): is the trading flow running?",
            file=sys.stderr,
        )
        return 1
    print(f"applied by the risk gate (audit row control_applied for {command_id})")
    return 0


def _send(args: argparse.Namespace, settings: Settings) -> str:
    """Publish the command and its audit event; print and return the command's id."""
    if args.action is None:
        limit = publish_limit(
            settings,
            args.instrument,
            args.max_position,
            args.reason,
            "",  # the actor is the signing key's name
            account=args.account,
        )
        print(
            f"max_position {limit.max_position} on {limit.instrument} sent for"
            f" {limit.account}: {limit.command_id}"
        )
        return limit.command_id
    command = publish_control(
        settings,
        args.action,
        args.reason,
        "",  # the actor is the signing key's name
        account=args.account,
        instrument=args.instrument,
        flatten=args.flatten,
    )
    scope = command.instrument or "all instruments"
    print(f"{command.action} sent for {command.account} ({scope}): {command.command_id}")
    return command.command_id


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add broker, topics, db, feed, demo, sql and the control commands."""
    broker = sub.add_parser("broker", help="the local Tansu broker on 127.0.0.1")
    broker.add_argument("action", choices=("start", "stop", "status"))
    broker.set_defaults(run=_broker)

    topics = sub.add_parser("topics", help="create every topic with its partitions")
    topics.add_argument("action", choices=("create",))
    topics.set_defaults(run=_topics)

    db = sub.add_parser("db", help="ClickHouse schema")
    db.add_argument("action", choices=("migrate",))
    db.set_defaults(run=_db)

    feed = sub.add_parser("feed", help="publish market data to md.ticks")
    feed_sub = feed.add_subparsers(dest="source", required=True)
    sim = feed_sub.add_parser("simulate", help="correlated GBM with regimes and jumps")
    sim.add_argument(
        "--ticks", type=positive_int, default=0, help="how many ticks (default rate x duration)"
    )
    sim.add_argument(
        "--rate", type=positive_float, default=0.0, help="ticks per second of event time"
    )
    sim.add_argument("--duration", type=positive_float, default=60.0, help="seconds of event time")
    sim.add_argument("--seed", type=int, default=None)
    sim.add_argument("--symbols", default="", help="comma-separated, default from config")
    sim.add_argument("--fast", action="store_true", help="as fast as possible, not real time")
    replay = feed_sub.add_parser("replay", help="CSV, Parquet or JSON Lines file")
    replay.add_argument("file")
    replay.add_argument(
        "--speed",
        type=float,
        default=None,
        help="event-time speed factor (default: as fast as possible)",
    )
    replay.add_argument("--kind", choices=("trade", "quote", "bar", "jsonl"), default=None)
    live = feed_sub.add_parser(
        "live", help="public trades and best bid/offer from venues over websockets"
    )
    live.add_argument("--venues", default="", help="comma-separated, default every configured")
    live.add_argument("--symbols", default="", help="our instruments, comma-separated")
    live.add_argument("--config", default="", help="feeds YAML (default config/feeds.yaml)")
    live.add_argument(
        "--url", action="append", default=[], metavar="VENUE=URL", help="override a venue's URL"
    )
    live.add_argument("--max-ticks", type=int, default=0, help="stop after this many (0: never)")
    live.add_argument("--no-failover", action="store_true", help="publish every venue's ticks")
    live.add_argument(
        "--no-backfill", action="store_true", help="do not refill trade gaps over REST"
    )
    live.add_argument(
        "--rest-url",
        action="append",
        default=[],
        metavar="VENUE=URL",
        help="override a venue's REST API host (gap backfill)",
    )
    for parser in (sim, replay):
        parser.add_argument(
            "--no-end",
            action="store_true",
            help="more is to come: do not write the end-of-stream marker that ends bounded runs",
        )
    feed.set_defaults(run=_feed)

    demo = sub.add_parser("demo", help="run the whole path for a bounded time, then summarise")
    demo.add_argument("--ticks", type=positive_int, default=30_000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--rate", type=positive_float, default=500.0, help="ticks per second")
    demo.add_argument("--no-dashboard", action="store_true", help="skip the dashboard")
    demo.add_argument(
        "--frequency",
        default="daily",
        help="return sampling of the summary and report (daily; intraday Ns/Nmin/Nh on request)",
    )
    demo.set_defaults(run=_demo)

    sql = sub.add_parser("sql", help="ad-hoc read-only SQL on the ClickHouse store")
    sql.add_argument("query")
    sql.add_argument("--format", choices=("table", "json"), default="table")
    sql.set_defaults(run=_sql)

    _add_control(sub)
