"""Research: reports of finished runs (statistics, charts, Monte Carlo, post-trade)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dataflows.commands.context import ROOT, current_settings


def _report(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from dataflows.ops.registry import run_store
    from dataflows.ops.report import analyse, find_window, load_run, render_report
    from risk.performance import parse_frequency

    settings = current_settings()
    frequency = parse_frequency(args.frequency)
    # A demo keeps its own store (var/demo/clickhouse): its run directory says which.
    url = run_store(ROOT, args.run_id) or settings.clickhouse.url.reveal()
    window = find_window(
        url,
        args.run_id,
        account=args.account or settings.trading.account,
        initial_cash=float(settings.trading.initial_cash),
        root=ROOT,
    )
    if args.account:
        window = replace(window, account=args.account)
    if args.since_ns is not None:
        window = replace(window, since_ns=args.since_ns)
    if args.until_ns is not None:
        window = replace(window, until_ns=args.until_ns)
    data = load_run(url, window, frequency)
    analysis = analyse(data, frequency)
    out = Path(args.out) if args.out else ROOT / "var" / "reports" / f"{args.run_id}.html"
    path = render_report(data, analysis, out)
    print(frequency.describe())
    for metric in analysis.success:
        status = {True: "met", False: "not met", None: "n/a"}[metric.met]
        print(f"{metric.name:<22} {metric.shown:>10}  target {metric.target:<12} {status}")
    print(f"report written to {path}")
    return 0


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add report."""
    report = sub.add_parser(
        "report", help="write a run's self-contained HTML report (statistics, charts, targets)"
    )
    report.add_argument("run_id", metavar="RUN_ID", help="e.g. the id `hfl demo` printed")
    report.add_argument(
        "--frequency",
        default="daily",
        help="return sampling: daily (default), weekly, or intraday Ns/Nmin/Nh, which "
        "annualises by trading periods per year (printed)",
    )
    report.add_argument("--account", help="account to report (default: the run's)")
    report.add_argument("--since-ns", type=int, help="override the run's event-time start")
    report.add_argument("--until-ns", type=int, help="override the run's event-time end")
    report.add_argument("--out", help="HTML path (default var/reports/RUN_ID.html)")
    report.set_defaults(run=_report)
