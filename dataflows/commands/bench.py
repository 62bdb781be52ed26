"""Benchmarks: `hfl bench <target>` (pipeline, step, models, dashboard, risk, gateway,
gateway-flow, broker, feed, backtest) print figures."""

from __future__ import annotations

import argparse

from dataflows.commands.context import ROOT, base_settings


def _bench(args: argparse.Namespace) -> int:
    if args.target == "backtest":
        from dataflows.bench.backtest import bench_backtest

        bench_backtest(ROOT, ticks=args.ticks)
        return 0
    if args.target == "risk":
        from dataflows.bench.risk import bench_risk

        bench_risk(base_settings(), ROOT, decisions=args.decisions, kills=args.kills)
        return 0
    if args.target == "dashboard":
        from dataflows.bench.dashboard import bench_dashboard

        bench_dashboard(
            base_settings(), ROOT, clients=args.clients, duration_s=args.duration, port=args.port
        )
        return 0
    if args.target == "gateway":
        from dataflows.bench.gateway import bench_gateway

        bench_gateway(ticks=args.ticks, lead_s=args.lead_s)
        return 0
    if args.target == "gateway-flow":
        from dataflows.bench.gateway_flow import bench_gateway_flow

        bench_gateway_flow(base_settings(), ROOT, ticks=args.ticks, orders=not args.no_orders)
        return 0
    if args.target == "broker":
        from dataflows.bench.broker import bench_broker

        bench_broker(base_settings(), ROOT, seconds=min(args.duration, 10.0), only=args.part)
        return 0
    if args.target == "feed":
        from dataflows.bench.feed import bench_feed

        bench_feed(ROOT, trades=args.trades, venues=args.venues.split(","))
        return 0
    if args.target == "models":
        from dataflows.bench.models import bench_models

        bench_models(
            base_settings().model,
            ticks=args.ticks,
            batch_size=args.batch_size,
            budget_s=args.budget,
        )
        return 0
    if args.target == "step":
        import os

        from dataflows.bench.pipeline import MODEL_OVERRIDES
        from dataflows.bench.step import bench_step

        os.environ.update(MODEL_OVERRIDES)  # the pipeline bench's model settings
        bench_step(
            base_settings(),
            ticks=args.ticks,
            warmup=args.warmup,
            event_rate=args.event_rate,
            settle=not args.no_settle,
        )
        return 0
    from dataflows.bench.pipeline import bench_pipeline

    bench_pipeline(
        base_settings(),
        ROOT,
        rate=args.rate,
        duration_s=args.duration,
        gateway=args.gateway,
        persist=args.persist,
        baseline=args.baseline,
        processes=args.processes,
        partitions=args.partitions,
        feed_linger_ms=args.feed_linger_ms,
    )
    return 0


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `hfl bench` with every target's options."""
    bench = sub.add_parser("bench", help="benchmarks that print figures")
    bench.add_argument(
        "target",
        choices=(
            "pipeline",
            "step",
            "models",
            "dashboard",
            "risk",
            "gateway",
            "gateway-flow",
            "broker",
            "feed",
            "backtest",
        ),
    )
    bench.add_argument("--rate", default="5000", help="pipeline: ticks per second, or 'max'")
    bench.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="pipeline, dashboard, broker (idle span): seconds",
    )
    bench.add_argument(
        "--feed-linger-ms",
        type=float,
        default=2.0,
        help="pipeline (paced): the feed's producer linger; ticks sharing a broker batch",
    )
    bench.add_argument(
        "--part",
        choices=("growth", "knobs"),
        default=None,
        help="broker: run only the stored-batches growth or the fetch wait x linger part",
    )
    bench.add_argument(
        "--gateway",
        action="store_true",
        help="pipeline: run the gateway flow too (always, with risk.fill_sync event_time)",
    )
    bench.add_argument(
        "--persist",
        action="store_true",
        help="pipeline: then run the persist flow over the run's output (rows/s, keeps up)",
    )
    bench.add_argument(
        "--baseline",
        action="store_true",
        help="pipeline: then run a plain per-item Bytewax flow of the same job on the same input",
    )
    bench.add_argument(
        "--processes",
        type=int,
        default=1,
        help="pipeline (--rate max): the trading flow as a Bytewax cluster of N processes",
    )
    bench.add_argument(
        "--partitions", type=int, default=None, help="pipeline: md.ticks partitions (default N)"
    )
    bench.add_argument(
        "--ticks",
        type=int,
        default=60_000,
        help="models, gateway, gateway-flow, step, backtest: simulated ticks",
    )
    bench.add_argument("--warmup", type=int, default=20_000, help="step: ticks not measured")
    bench.add_argument(
        "--event-rate", type=float, default=1_000.0, help="step: simulated ticks per event second"
    )
    bench.add_argument(
        "--no-settle", action="store_true", help="step: leave the heap as the interpreter set it"
    )
    bench.add_argument(
        "--lead-s", type=float, default=5.0, help="gateway: how far the ticks run ahead of the gate"
    )
    bench.add_argument(
        "--no-orders", action="store_true", help="gateway-flow: the gate's promises only, no orders"
    )
    bench.add_argument("--batch-size", type=int, default=1_000, help="models: mini-batch rows")
    bench.add_argument("--budget", type=float, default=3.0, help="models: seconds per mode")
    bench.add_argument("--clients", type=int, default=10, help="dashboard: concurrent clients")
    bench.add_argument("--port", type=int, default=8169, help="dashboard: port to serve on")
    bench.add_argument("--decisions", type=int, default=20_000, help="risk: gate decisions")
    bench.add_argument("--kills", type=int, default=50, help="risk: kills to time")
    bench.add_argument("--trades", type=int, default=50_000, help="feed: trades per venue")
    bench.add_argument(
        "--venues", default="binance,coinbase,kraken", help="feed: venues, comma-separated"
    )
    bench.set_defaults(run=_bench)
