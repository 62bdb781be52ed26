"""Research: backtests, walk-forward, optimisation and reports of finished runs."""

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


def backtest_input(args: argparse.Namespace, instruments: tuple[str, ...]) -> object:
    """The input `--simulate`/FILE name (shared by backtest, walkforward, optimize)."""
    from dataflows.ops.backtest import file_input, simulated_input

    if args.file:
        return file_input(args.file, kind=args.kind, limit=args.limit)
    return simulated_input(instruments, args.simulate, seed=args.seed, rate=args.rate)


def set_env(args: argparse.Namespace) -> dict[str, str]:
    """Settings overrides named on the command line (`--set field=value`)."""
    from dataflows.ops.backtest import overrides_env

    pairs = {}
    for item in args.set or ():
        name, _, value = item.partition("=")
        if not value:
            msg = f"--set {item!r}: expected field=value, e.g. model.enter_long=0.55"
            raise argparse.ArgumentTypeError(msg)
        pairs[name] = value
    return overrides_env(pairs)


def _backtest(args: argparse.Namespace) -> int:
    import json
    import time

    from dataflows.ops.backtest import (
        backtest_env,
        describe_scale,
        input_env,
        ledger_digest,
        ledger_rows,
        run_inprocess,
        run_kafka,
        settings_for,
    )
    from dataflows.ops.registry import keep_store
    from dataflows.ops.report import RunWindow, write_manifest

    overrides = set_env(args)
    configured = settings_for(overrides, args.config)
    data = backtest_input(args, configured.trading.instruments)
    derived = input_env(configured, data, overrides)  # type: ignore[arg-type]
    overrides |= derived
    run_id = (
        args.run_id or f"bt-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{data.digest()[:8]}"
    )
    run_dir = ROOT / "var" / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    store = Path(args.store) if args.store else run_dir / "clickhouse"
    env = backtest_env(run_id, store, len(data.values), overrides)
    if args.config:
        env["HFL_CONFIG_DIR"] = str(Path(args.config).resolve())
    settings = settings_for(env, args.config)
    print(describe_scale(settings, estimated="HFL_DATA__BAR_INTERVAL" in derived))
    if "HFL_TRADING__INSTRUMENTS" in derived:
        print(f"trading the input's instruments: {', '.join(settings.trading.instruments)}")
    if args.transport == "kafka":
        result = run_kafka(settings, env, data, run_id=run_id, run_dir=run_dir, root=ROOT)
    else:
        result = run_inprocess(settings, data, run_id=run_id, batch=args.batch)
    url = settings.clickhouse.url.reveal()
    keep_store(run_dir, url)
    window = RunWindow(
        run_id=run_id,
        account=settings.trading.account,
        initial_cash=float(settings.trading.initial_cash),
        since_ns=result.since_ns,
        until_ns=result.until_ns,
    )
    write_manifest(run_dir, window)
    result.ledger = ledger_digest(ledger_rows(url))
    print(result.render())
    from sinks.query import query

    last = query(
        url,
        "SELECT toFloat64(equity), toFloat64(realized_pnl), toFloat64(unrealized_pnl), "
        "toFloat64(fees) FROM pnl FINAL ORDER BY ts_event DESC LIMIT 1",
    )[1]
    if last:
        equity, realized, unrealized, fees = last[0]
        print(
            f"final equity {equity:,.2f} (initial {float(settings.trading.initial_cash):,.2f}): "
            f"realized {realized:,.2f}, unrealized {unrealized:,.2f}, fees {fees:,.2f}"
        )
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": run_id,
                    "transport": result.transport,
                    "ticks": result.ticks,
                    "seconds": round(result.seconds, 3),
                    "ledger": result.ledger,
                }
            )
        )
    scale = settings.data.scale()
    # Daily figures by default; an intraday run names its own frequency (factor printed).
    hint = "" if scale.is_daily else f" --frequency {scale.frequency}"
    print(f"report: hfl report {run_id}{hint}")
    return 0


def _search_base(args: argparse.Namespace) -> tuple[dict[str, str], object]:
    """The settings overrides every trial starts from, and the input."""
    import tempfile

    from dataflows.ops.backtest import backtest_env, input_env, settings_for

    overrides = set_env(args)
    if args.config:
        overrides["HFL_CONFIG_DIR"] = str(Path(args.config).resolve())
    configured = settings_for(overrides, args.config)
    data = backtest_input(args, configured.trading.instruments)
    overrides |= input_env(configured, data, overrides)  # type: ignore[arg-type]
    # Trials keep no store; the path is never opened.
    store = Path(tempfile.gettempdir()) / "hfl-search-unused"
    base = backtest_env("search", store, len(data.values), overrides)  # type: ignore[attr-defined]
    return base, data


def _compare(args: argparse.Namespace) -> int:
    from dataflows.ops.backtest import settings_for
    from dataflows.ops.search import compare, load_space

    spaces = {}
    for path in (args.space, *args.compare):
        space = load_space(path)
        name = str(space.fixed.get("model.signal.engine") or Path(path).stem)
        spaces[name if name not in spaces else f"{name} ({Path(path).stem})"] = space
    base, data = _search_base(args)
    gateway = settings_for(base, args.config).gateway
    rows = compare(
        base,
        data,  # type: ignore[arg-type]
        spaces,
        train=args.train,
        test=args.test,
        anchored=args.anchored,
        trials=args.trials,
        seed=args.seed,
        cost_bps=gateway.fee_bps + gateway.slippage_bps,
    )
    print(
        f"out of sample, walk-forward {'anchored' if args.anchored else 'rolling'} "
        f"(train {args.train}, test {args.test} periods, {args.trials} trials per fold), "
        f"after fees {gateway.fee_bps} bps + slippage {gateway.slippage_bps} bps per side"
    )
    head = (
        f"| {'strategy':<14} | {'total return':>12} | {'annual return':>13} | {'Sharpe':>7} "
        f"| {'max drawdown':>12} | {'signals':>7} | {'trades':>6} | {'turnover':>8} |"
    )
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for row in rows:
        s = row.statistics
        print(
            f"| {row.name:<14} | {s.total_return:>12.2%} | {s.annual_return:>13.2%} "
            f"| {s.sharpe:>7.3f} | {s.max_drawdown:>12.2%} | {row.signals:>7} "
            f"| {row.trades:>6} | {row.turnover:>8.2f} |"
        )
    return 0


def _walkforward(args: argparse.Namespace) -> int:
    from dataflows.ops.search import load_space, walk_forward
    from risk.performance import parse_frequency

    if args.compare:
        return _compare(args)
    space = load_space(args.space)
    base, data = _search_base(args)
    result = walk_forward(
        base,
        data,  # type: ignore[arg-type]
        space,
        train=args.train,
        test=args.test,
        anchored=args.anchored,
        trials=args.trials,
        seed=args.seed,
    )
    frequency = parse_frequency(space.frequency)
    print(
        f"walk-forward, {'anchored' if args.anchored else 'rolling'}, objective {space.objective}"
    )
    header = f"{'fold':>4}  {'out of sample from':<20} {'in sample':>10} {'out of sample':>14}"
    print(f"{header}  parameters")
    import datetime as dt

    for number, fold in enumerate(result.folds, start=1):
        day = dt.datetime.fromtimestamp(fold.since_ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M")
        scores = f"{fold.in_sample:>10.4f} {fold.out_of_sample:>14.4f}"
        print(f"{number:>4}  {day:<20} {scores}  {fold.params}")
    stats = result.statistics
    print(
        f"out-of-sample equity: {result.returns.size} {frequency.name} returns, "
        f"total return {stats.total_return:.4%}, Sharpe {stats.sharpe:.4f}, "
        f"max drawdown {stats.max_drawdown:.4%}, volatility {stats.annual_volatility:.4%}"
    )
    if args.out:
        import json

        Path(args.out).write_text(
            json.dumps(
                {
                    "ts_ns": [int(t) for t in result.returns_ts],
                    "returns": [float(r) for r in result.returns],
                    "equity": [float(e) for e in result.equity],
                    "folds": [
                        {
                            "since_ns": f.since_ns,
                            "until_ns": f.until_ns,
                            "params": f.params,
                            "in_sample": f.in_sample,
                            "out_of_sample": f.out_of_sample,
                        }
                        for f in result.folds
                    ],
                },
                indent=1,
            )
        )
        print(f"out-of-sample curve written to {args.out}")
    return 0


def _optimize(args: argparse.Namespace) -> int:
    from dataflows.ops.search import load_space, optimize

    space = load_space(args.space)
    base, data = _search_base(args)
    result = optimize(
        args.study,
        base,
        data,  # type: ignore[arg-type]
        space,
        trials=args.trials,
        jobs=args.jobs,
        storage=args.storage,
        directory=ROOT / "var" / "optuna",
        seed=args.seed,
    )
    d = result.deflation
    print(
        f"study {result.name}: {result.complete} complete, {result.pruned} pruned, "
        f"{result.failed} failed trials"
    )
    print(f"best {space.objective} {result.best_value:.6f} with {result.best_params}")
    print(
        f"deflated Sharpe ratio {d.deflated_sharpe:.4f} (best per-period Sharpe "
        f"{d.best_sharpe_per_period:.4f} against {d.expected_max_sharpe:.4f} expected from "
        f"the best of {d.trials} unskilled trials, variance {d.trial_variance:.6f})"
    )
    return 0


def _add_search(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", required=True, help="search-space YAML (docs/research.md)")
    parser.add_argument("--trials", type=int, default=8, help="trials (per fold in walkforward)")


def _add_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="replay file: CSV, Parquet or JSON Lines")
    parser.add_argument("--simulate", type=int, metavar="TICKS", help="simulated ticks instead")
    parser.add_argument("--seed", type=int, default=7, help="simulate: seed")
    parser.add_argument(
        "--rate", type=float, default=500.0, help="simulate: ticks per event second"
    )
    parser.add_argument("--kind", help="file: trade, quote or bar (default: from the columns)")
    parser.add_argument("--limit", type=int, help="file: its first N records only")
    parser.add_argument("--config", help="config folder (default: $HFL_CONFIG_DIR or ./config)")
    parser.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="override a config field, e.g. --set model.enter_long=0.55 (repeatable)",
    )


def _checked_input(parser: argparse.ArgumentParser, run: object) -> object:
    def checked(args: argparse.Namespace) -> int:
        if bool(args.file) == bool(args.simulate):
            parser.error("give one input: FILE or --simulate TICKS")
        return run(args)  # type: ignore[operator]

    return checked


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add backtest, walkforward, optimize and report."""
    backtest = sub.add_parser(
        "backtest",
        help="the trading, gateway and persist logic over a bounded input, as fast as it goes",
    )
    _add_input(backtest)
    backtest.add_argument(
        "--transport",
        choices=("inprocess", "kafka"),
        default="inprocess",
        help="inprocess: one process, no broker (default); kafka: the live flows on the broker",
    )
    backtest.add_argument("--run-id", help="default bt-<UTC time>-<input digest>")
    backtest.add_argument(
        "--store", help="ClickHouse store folder (default var/runs/RUN_ID/clickhouse)"
    )
    backtest.add_argument("--batch", type=int, default=2_000, help="inprocess: ticks per step")
    backtest.add_argument("--json", action="store_true", help="also print the result as JSON")
    backtest.set_defaults(run=_checked_input(backtest, _backtest))

    walk = sub.add_parser(
        "walkforward",
        help="choose parameters in sample, trade them out of sample, fold after fold",
    )
    _add_input(walk)
    _add_search(walk)
    walk.add_argument("--train", type=int, required=True, help="in-sample periods per fold")
    walk.add_argument("--test", type=int, required=True, help="out-of-sample periods per fold")
    walk.add_argument("--anchored", action="store_true", help="in sample from the start")
    walk.add_argument("--out", help="write the out-of-sample curve and folds as JSON")
    walk.add_argument(
        "--compare",
        nargs="+",
        metavar="SPACE",
        help="also walk forward with these spaces (e.g. another model.signal.engine) and "
        "print one out-of-sample table of all of them and buy-and-hold",
    )
    walk.set_defaults(run=_checked_input(walk, _walkforward))

    opt = sub.add_parser(
        "optimize", help="Optuna search (TPE, pruning) of config fields; deflated Sharpe printed"
    )
    _add_input(opt)
    _add_search(opt)
    opt.add_argument("--study", required=True, help="study name: the same name resumes it")
    opt.add_argument("--jobs", type=int, default=1, help="processes running trials at once")
    opt.add_argument(
        "--storage",
        help="Optuna storage URL to share across machines (default: journal file "
        "var/optuna/STUDY.journal)",
    )
    opt.set_defaults(run=_checked_input(opt, _optimize))

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
