"""Reliability: run the stack supervised, chaos figures, reconciliation, recovery."""

from __future__ import annotations

import argparse

from dataflows.commands.context import ROOT, base_settings, current_settings
from risk.domain.error import HflError


def _up(args: argparse.Namespace) -> int:
    from dataflows.ops.stack import run_up

    codes = run_up(
        base_settings(),
        ROOT,
        local_broker=not args.external_broker,
        feed_duration_s=args.feed_duration or None,
        extras=args.extra,
        report_every_s=args.report_every,
        feed_live=args.feed_live,
        feed_symbols=args.feed_symbols,
    )
    print(" ".join(f"{name}={code}" for name, code in codes.items()))
    return 0


def _chaos(args: argparse.Namespace) -> int:
    from dataflows.ops.chaos import load_results, render_json, render_table, results_path

    results = load_results(results_path(ROOT))
    if not results:
        raise HflError("no chaos results yet: run `make chaos` (or `make chaos-ci`)")
    print(render_json(results) if args.json else render_table(results))
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from connectors.codec import dumps
    from dataflows.ops.reconcile import reconcile_at_startup, reconcile_system

    if args.startup:
        startup = reconcile_at_startup(current_settings())
        if startup is None:
            print("could not reconcile: alert and audit written; hfl up starts trading halted")
            return 1
        result = startup
    else:
        result = reconcile_system(current_settings())
    print(dumps(asdict(result) | {"consistent": result.consistent}).decode())
    return 0 if result.consistent else 1


def _recover(args: argparse.Namespace) -> int:
    from dataflows.ops.recover import recover_lost_log

    if not args.confirm:
        raise HflError("recover starts every flow over from the beginning: add --confirm")
    settings = current_settings()
    done = recover_lost_log(settings, ROOT / settings.recovery.directory)
    for flow, problem in done.problems.items():
        print(f"{flow}: {problem}")
    print(f"old recovery stores moved to {done.archive}; {len(done.topics)} topics re-created")
    print("next: hfl feed replay <the feed's JSON lines>; hfl up; hfl reconcile")
    return 0


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser("up", help="run broker, flows (and feed) supervised until Ctrl-C")
    up.add_argument("--external-broker", action="store_true", help="do not start Tansu")
    up.add_argument("--feed-duration", type=float, default=0.0, help="simulate a feed (s)")
    up.add_argument(
        "--feed-live",
        default="",
        metavar="VENUES",
        help="live venue feed as a component: comma-separated venues or `all` (config/feeds.yaml)",
    )
    up.add_argument("--feed-symbols", default="", help="with --feed-live: our instruments")
    up.add_argument("--with", dest="extra", action="append", default=[], metavar="NAME=CMD")
    up.add_argument("--report-every", type=float, default=10.0, help="health line period (s)")
    up.set_defaults(run=_up)

    chaos = sub.add_parser("chaos", help="figures of the chaos suite (make chaos)")
    chaos.add_argument("action", choices=("report",))
    chaos.add_argument("--json", action="store_true", help="one JSON object keyed by test id")
    chaos.set_defaults(run=_chaos)

    reconcile = sub.add_parser("reconcile", help="orders and fills: Kafka log vs ClickHouse")
    reconcile.add_argument(
        "--startup",
        action="store_true",
        help="as hfl up does: audit the result, alert on a mismatch (exit 1: start halted)",
    )
    reconcile.set_defaults(run=_reconcile)

    recover = sub.add_parser("recover", help="start the flows over after the broker lost its log")
    recover.add_argument("--confirm", action="store_true", help="yes, start every flow over")
    recover.set_defaults(run=_recover)
