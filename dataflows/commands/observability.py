"""Observability: the dashboard, health status and the trail behind one order."""

from __future__ import annotations

import argparse

from dataflows.commands.context import ROOT, client_order_id, current_settings


def _dashboard(args: argparse.Namespace) -> int:
    from dataflows.ops.observe import run_dashboard

    run_dashboard(
        current_settings(),
        port=args.port,
        since_ns=args.since_ns,
        recovery=args.recovery,
        run_id=args.run_id,
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from dataflows.ops.observe import print_status

    return print_status(current_settings(), ROOT)


def _trail(args: argparse.Namespace) -> int:
    from dataflows.ops.observe import print_trail

    return print_trail(current_settings(), ROOT, args.client_order_id)


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    board = sub.add_parser("dashboard", help="web dashboard, /metrics and health on 127.0.0.1")
    board.add_argument("--port", type=int, default=None, help="default dashboard.port")
    board.add_argument("--since-ns", type=int, default=0, help="show rows from (default: run)")
    board.add_argument(
        "--run-id", default="", help="the run to show (default: HFL_RUN_ID, else the newest)"
    )
    board.add_argument("--recovery", default="", help="recovery store to check snapshot age of")
    board.set_defaults(run=_dashboard)

    status = sub.add_parser("status", help="health: broker, ClickHouse, data freshness, snapshots")
    status.set_defaults(run=_status)

    trail = sub.add_parser("trail", help="every log line and row behind one client_order_id")
    trail.add_argument("client_order_id", type=client_order_id)
    trail.set_defaults(run=_trail)
