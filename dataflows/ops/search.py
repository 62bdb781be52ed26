"""`hfl walkforward` and `hfl optimize`: parameters searched over in-process backtests.

A search-space file (YAML) names config fields and their ranges, the objective (any
return statistic of `risk.performance.Performance`) and the frequency its returns are
sampled at::

    objective: sharpe            # or sortino, calmar, total_return, max_drawdown, ...
    direction: maximize
    frequency: daily
    fixed:                       # applied to every trial (declared, not searched)
      trading.instruments: [AAPL, MSFT]
    parameters:
      model.enter_long: {low: 0.5, high: 0.6}
      model.horizon_s: {low: 1, high: 5, step: 1}          # integers: int bounds
      risk.sizing.method: {choices: [volatility, inverse_vol]}

Every trial is one in-process backtest (`dataflows.ops.backtest.run_inprocess`, no store)
of the whole input with the trial's fields set; its equity is the gate's P&L snapshots,
sampled at the frequency. Optimisation uses Optuna's TPE sampler and median pruner: the
objective over the returns so far is reported every tenth of the input, and a trial
worse than the median of earlier ones at that point stops. The study lives in a journal
file (or any Optuna storage URL), so a later `hfl optimize` with the same name resumes it
and several processes (`--jobs`) or machines share it.

Overfitting: with many trials the best Sharpe is biased upwards. `deflation` computes
the deflated Sharpe ratio (Bailey and López de Prado, 2014) of the best trial from
every completed trial's per-period Sharpe ratio: the probability that its true Sharpe
is above zero after the selection among `trials`.

Walk-forward: the input's periods are cut into folds, rolling (fixed in-sample length)
or anchored (in-sample from the start); in each fold an Optuna study on the in-sample
ticks chooses the parameters, then the chosen set runs on in-sample plus out-of-sample
ticks (the models learn through the in-sample part as a live run would have) and only
the out-of-sample returns count. Chained, they are the out-of-sample equity curve.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from connectors.codec import loads
from dataflows.ops.backtest import BacktestInput, overrides_env, run_inprocess, settings_for
from risk import performance as perf
from risk.domain import Fill, PnlSnapshot, Signal
from risk.domain.error import HflError

STATISTICS = frozenset(
    f.name
    for f in fields(perf.Performance)
    if f.name not in {"frequency", "periods", "confidence", "max_drawdown_periods"}
)
REPORT_STEPS = 10  # the objective is reported to the pruner this many times per trial
SEARCH_BATCH = 250  # ticks per step of a trial (results do not depend on it; reports do)


@dataclass(frozen=True, slots=True)
class Parameter:
    """One searched config field: a float or int range, or categorical choices."""

    name: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def is_int(self) -> bool:
        """Both bounds (and the step) are whole numbers in the file."""
        return all(isinstance(v, int) for v in (self.low, self.high) if v is not None) and (
            self.step is None or isinstance(self.step, int)
        )


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """A search-space file, parsed (see the module docs)."""

    parameters: tuple[Parameter, ...]
    objective: str = "sharpe"
    direction: str = "maximize"
    frequency: str = "daily"
    fixed: Mapping[str, Any] = field(default_factory=dict)


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a search-space file.

    Raises:
        HflError: the file names no parameter, an unknown statistic or direction, or a
            parameter with neither a range nor choices.
    """
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    params = []
    for name, given in (raw.get("parameters") or {}).items():
        spec = given or {}
        if "choices" in spec:
            params.append(Parameter(name, choices=tuple(spec["choices"])))
        elif "low" in spec and "high" in spec:
            params.append(
                Parameter(
                    name, spec["low"], spec["high"], spec.get("step"), bool(spec.get("log", False))
                )
            )
        else:
            raise HflError(f"{path}: parameter {name!r} needs low/high or choices")
    if not params:
        raise HflError(f"{path}: no parameters to search")
    space = SearchSpace(
        tuple(params),
        objective=str(raw.get("objective", "sharpe")),
        direction=str(raw.get("direction", "maximize")),
        frequency=str(raw.get("frequency", "daily")),
        fixed=dict(raw.get("fixed") or {}),
    )
    if space.objective not in STATISTICS:
        raise HflError(f"{path}: objective {space.objective!r} is not one of {sorted(STATISTICS)}")
    if space.direction not in {"maximize", "minimize"}:
        raise HflError(f"{path}: direction must be maximize or minimize")
    perf.parse_frequency(space.frequency)
    return space


def suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """The trial's values of every parameter (Optuna's suggest API)."""
    chosen: dict[str, Any] = {}
    for p in space.parameters:
        if p.choices:
            chosen[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.is_int:
            step = int(p.step) if p.step is not None else 1
            chosen[p.name] = trial.suggest_int(
                p.name, int(p.low), int(p.high), step=step, log=p.log
            )  # type: ignore[arg-type]
        else:
            chosen[p.name] = trial.suggest_float(
                p.name,
                float(p.low),
                float(p.high),
                step=p.step,
                log=p.log,  # type: ignore[arg-type]
            )
    return chosen


# ------------------------------------------------------------------------ evaluation


@dataclass(slots=True)
class Activity:
    """Trading in the scored window: signals, fills, traded notional, mean equity."""

    signals: int = 0
    fills: int = 0
    notional: float = 0.0
    equity_sum: float = 0.0
    equity_marks: int = 0

    def add(self, other: Activity) -> None:
        """Accumulate `other` (another fold's window) into this one."""
        self.signals += other.signals
        self.fills += other.fills
        self.notional += other.notional
        self.equity_sum += other.equity_sum
        self.equity_marks += other.equity_marks

    @property
    def turnover(self) -> float:
        """Traded notional over the window's mean equity (times the book traded)."""
        mean = self.equity_sum / self.equity_marks if self.equity_marks else 0.0
        return self.notional / mean if mean > 0 else math.nan


@dataclass(slots=True)
class Evaluation:
    """One backtest's returns in a window and its statistics."""

    params: dict[str, Any]
    returns: np.ndarray
    returns_ts: np.ndarray
    statistics: perf.Performance
    value: float
    activity: Activity = field(default_factory=Activity)


def _statistic(stats: perf.Performance, objective: str, direction: str) -> float:
    value = float(getattr(stats, objective))
    if math.isnan(value):
        return -math.inf if direction == "maximize" else math.inf
    return value


def window_returns(
    ts: Sequence[int], equity: Sequence[float], frequency: perf.Frequency, since_ns: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Returns of the sampled equity whose period ends at or after `since_ns` (all: None),
    each against the period before it, so the first out-of-sample return starts from the
    last in-sample mark; and their end times."""
    if len(ts) == 0:
        return np.array([], dtype=np.int64), np.array([])
    times, values = perf.sample_equity(ts, equity, frequency.period_ns)
    returns = perf.simple_returns(values)
    ends = times[1:]
    if since_ns is not None:
        keep = ends >= since_ns
        return ends[keep], returns[keep]
    return ends, returns


def evaluate(
    base_env: Mapping[str, str],
    data: BacktestInput,
    params: Mapping[str, Any],
    space: SearchSpace,
    *,
    score_since_ns: int | None = None,
    report: Callable[[float, int], None] | None = None,
) -> Evaluation:
    """Backtest `data` in process with `params` (and the space's fixed fields) set; the
    objective over returns from `score_since_ns` on. `report(value, step)` is called
    every tenth of the input with the objective so far (it may raise to stop)."""
    frequency = perf.parse_frequency(space.frequency)
    env = {**base_env, **overrides_env({**space.fixed, **params})}
    settings = settings_for(env)
    marks_ts: list[int] = []
    marks: list[float] = []
    batches = -(-len(data.values) // SEARCH_BATCH)
    every = max(1, batches // REPORT_STEPS)
    calls = [0]
    since = -(2**63) if score_since_ns is None else score_since_ns
    activity = Activity()

    def on_events(events: list[object]) -> None:
        for event in events:
            if isinstance(event, PnlSnapshot):
                if marks_ts and event.ts_event < marks_ts[-1]:
                    continue  # a late snapshot (end of input) never goes backwards
                marks_ts.append(event.ts_event)
                marks.append(float(event.equity))
                if event.ts_event >= since:
                    activity.equity_sum += float(event.equity)
                    activity.equity_marks += 1
            elif isinstance(event, Fill) and event.ts_event >= since:
                activity.fills += 1
                activity.notional += float(event.quantity * event.price)
            elif isinstance(event, Signal) and event.ts_event >= since:
                activity.signals += 1
        calls[0] += 1
        if report is None or calls[0] % every or not marks_ts:
            return
        _, rets = window_returns(marks_ts, marks, frequency, score_since_ns)
        value = _statistic(perf.performance(rets, frequency), space.objective, space.direction)
        if math.isfinite(value):
            report(value, calls[0] // every)

    run_inprocess(
        settings,
        data,
        run_id="search",
        persist=False,
        progress=False,
        batch=SEARCH_BATCH,
        on_events=on_events,
    )
    ts, rets = window_returns(marks_ts, marks, frequency, score_since_ns)
    stats = perf.performance(rets, frequency)
    return Evaluation(
        dict(params),
        rets,
        ts,
        stats,
        _statistic(stats, space.objective, space.direction),
        activity,
    )


def _per_period_sharpe(returns: np.ndarray) -> float:
    if returns.size < 2:
        return math.nan
    sd = float(returns.std(ddof=1))
    return float(returns.mean()) / sd if sd > 0 else math.nan


# ----------------------------------------------------------------------------- optuna


def _objective(
    base_env: Mapping[str, str], data: BacktestInput, space: SearchSpace
) -> Callable[[Any], float]:
    import optuna

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, space)

        def report(value: float, step: int) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned

        result = evaluate(base_env, data, params, space, report=report)
        skew, kurtosis = perf.moments(result.returns) if result.returns.size else (math.nan,) * 2
        trial.set_user_attr("sharpe_per_period", _per_period_sharpe(result.returns))
        trial.set_user_attr("periods", int(result.returns.size))
        trial.set_user_attr("skew", skew)
        trial.set_user_attr("kurtosis", kurtosis)
        trial.set_user_attr("annual_sharpe", result.statistics.sharpe)
        return result.value

    return objective


def _study(name: str, storage: Any, space: SearchSpace, seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        direction=space.direction,
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=3),
    )


def storage_for(url: str | None, directory: Path, name: str) -> Any:
    """An Optuna storage: `url` as given (sqlite:///..., postgresql://...), else a journal
    file `directory/NAME.journal` that processes on this machine share."""
    if url:
        return url
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    directory.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(directory / f"{name}.journal")))


def _worker(  # noqa: PLR0917 (a process target takes its arguments by position)
    name: str,
    url: str | None,
    directory: Path,
    base_env: Mapping[str, str],
    data: BacktestInput,
    space: SearchSpace,
    trials: int,
    seed: int,
) -> None:
    study = _study(name, storage_for(url, directory, name), space, seed)
    study.optimize(_objective(base_env, data, space), n_trials=trials, catch=(HflError,))


@dataclass(slots=True)
class Deflation:
    """The best trial's Sharpe deflated by the number and spread of the trials."""

    trials: int
    best_sharpe_per_period: float
    trial_variance: float
    expected_max_sharpe: float
    deflated_sharpe: float


def deflation(trial_attrs: Sequence[Mapping[str, Any]], best: Mapping[str, Any]) -> Deflation:
    """Deflated Sharpe ratio of `best` among the completed trials' `trial_attrs`."""
    sharpes = [float(a["sharpe_per_period"]) for a in trial_attrs]
    sharpes = [s for s in sharpes if math.isfinite(s)]
    variance = float(np.var(sharpes, ddof=1)) if len(sharpes) > 1 else 0.0
    sr = float(best.get("sharpe_per_period", math.nan))
    n = max(len(sharpes), 1)
    dsr = (
        perf.deflated_sharpe_ratio(
            sr,
            trials=n,
            trial_variance=variance,
            periods=int(best.get("periods", 0)),
            skew=float(best.get("skew", math.nan)),
            kurtosis=float(best.get("kurtosis", math.nan)),
        )
        if math.isfinite(sr)
        else math.nan
    )
    return Deflation(n, sr, variance, perf.expected_max_sharpe(n, variance), dsr)


@dataclass(slots=True)
class Optimisation:
    """A study after `optimize`."""

    name: str
    best_params: dict[str, Any]
    best_value: float
    complete: int
    pruned: int
    failed: int
    deflation: Deflation


def optimize(
    name: str,
    base_env: Mapping[str, str],
    data: BacktestInput,
    space: SearchSpace,
    *,
    trials: int,
    jobs: int = 1,
    storage: str | None = None,
    directory: Path = Path("var/optuna"),
    seed: int = 1,
) -> Optimisation:
    """Run `trials` more trials of study `name` (created or resumed) in `jobs` processes."""
    import optuna

    if jobs <= 1:
        _worker(name, storage, directory, base_env, data, space, trials, seed)
    else:
        share = [trials // jobs + (i < trials % jobs) for i in range(jobs)]
        context = multiprocessing.get_context("fork")
        workers = [
            context.Process(
                target=_worker,
                args=(name, storage, directory, base_env, data, space, n, seed + i),
            )
            for i, n in enumerate(share)
            if n
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        bad = [w.exitcode for w in workers if w.exitcode != 0]
        if bad:
            raise HflError(f"{len(bad)} optimisation worker(s) failed: exit codes {bad}")
    study = _study(name, storage_for(storage, directory, name), space, seed)
    states = optuna.trial.TrialState
    done = [t for t in study.trials if t.state == states.COMPLETE]
    if not done:
        raise HflError(f"study {name!r}: no trial completed")
    best = study.best_trial
    return Optimisation(
        name=name,
        best_params=dict(best.params),
        best_value=float(best.value),  # type: ignore[arg-type]
        complete=len(done),
        pruned=sum(t.state == states.PRUNED for t in study.trials),
        failed=sum(t.state == states.FAIL for t in study.trials),
        deflation=deflation([t.user_attrs for t in done], best.user_attrs),
    )


# ------------------------------------------------------------------------ walk-forward


def periods_of(data: BacktestInput, frequency: perf.Frequency) -> tuple[np.ndarray, np.ndarray]:
    """Each tick's period index, and the sorted distinct periods."""
    stamps = np.array([int(loads(v).get("ts_event", 0)) for v in data.values], dtype=np.int64)
    buckets = stamps // frequency.period_ns
    return buckets, np.unique(buckets)


@dataclass(frozen=True, slots=True)
class Fold:
    """One walk-forward fold: period indexes [train_start, test_start) in sample and
    [test_start, test_end) out of sample."""

    train_start: int
    test_start: int
    test_end: int


def folds(count: int, *, train: int, test: int, anchored: bool) -> list[Fold]:
    """Folds over `count` periods: in-sample `train` periods (anchored: from the start,
    growing), then `test` out of sample, stepping by `test`.

    >>> folds(10, train=4, test=3, anchored=False)
    [Fold(train_start=0, test_start=4, test_end=7), Fold(train_start=3, test_start=7, test_end=10)]
    >>> [f.train_start for f in folds(10, train=4, test=3, anchored=True)]
    [0, 0]
    """
    out = []
    start = train
    while start < count:
        end = min(start + test, count)
        out.append(Fold(0 if anchored else start - train, start, end))
        start = end
    return out


def _slice(data: BacktestInput, buckets: np.ndarray, low: int, high: int) -> BacktestInput:
    keep = np.flatnonzero((buckets >= low) & (buckets < high))
    values = tuple(data.values[i] for i in keep)
    return BacktestInput(values, f"{data.label} [{low}, {high})", data.instruments)


@dataclass(slots=True)
class FoldResult:
    """What one fold chose and earned."""

    fold: Fold
    since_ns: int
    until_ns: int
    params: dict[str, Any]
    in_sample: float
    out_of_sample: float
    returns: np.ndarray
    returns_ts: np.ndarray
    activity: Activity = field(default_factory=Activity)


@dataclass(slots=True)
class WalkForward:
    """Every fold, and the chained out-of-sample returns with their statistics."""

    folds: list[FoldResult]
    returns: np.ndarray
    returns_ts: np.ndarray
    statistics: perf.Performance
    equity: np.ndarray
    activity: Activity = field(default_factory=Activity)


def _trial_progress(
    where: str, trials: int, say: Callable[[str], None]
) -> Callable[[Any, Any], None]:
    """An Optuna callback that says each finished trial, so a long fold shows progress."""
    started = time.monotonic()

    def said(_study: Any, trial: Any) -> None:
        value = "" if trial.value is None else f" {trial.value:.4f}"
        elapsed = time.monotonic() - started
        say(
            f"{where}: trial {trial.number + 1}/{trials} {trial.state.name.lower()}{value}"
            f" ({elapsed:.0f}s in this fold)"
        )

    return said


def walk_forward(
    base_env: Mapping[str, str],
    data: BacktestInput,
    space: SearchSpace,
    *,
    train: int,
    test: int,
    anchored: bool = False,
    trials: int = 8,
    seed: int = 1,
    initial_cash: float = 1.0,
    say: Callable[[str], None] = print,
) -> WalkForward:
    """Walk forward over `data` (see the module docs); `train`/`test` in periods."""
    import optuna

    frequency = perf.parse_frequency(space.frequency)
    buckets, periods = periods_of(data, frequency)
    plan = folds(periods.size, train=train, test=test, anchored=anchored)
    if not plan:
        raise HflError(f"{periods.size} periods: too few for {train} in sample")
    results = []
    for number, fold in enumerate(plan, start=1):
        lo, mid, hi = (
            periods[fold.train_start],
            periods[fold.test_start],
            periods[fold.test_end - 1] + 1,
        )
        in_sample = _slice(data, buckets, lo, mid)
        study = _study(f"fold-{number}", None, space, seed + number)
        study.optimize(
            _objective(base_env, in_sample, space),
            n_trials=trials,
            catch=(HflError,),
            callbacks=[_trial_progress(f"fold {number}/{len(plan)}", trials, say)],
        )
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not done:
            raise HflError(f"fold {number}: no in-sample trial completed")
        chosen = dict(study.best_trial.params)
        since_ns = int(mid * frequency.period_ns)
        oos = evaluate(
            base_env, _slice(data, buckets, lo, hi), chosen, space, score_since_ns=since_ns
        )
        result = FoldResult(
            fold,
            since_ns,
            int(hi * frequency.period_ns),
            chosen,
            float(study.best_value),
            oos.value,
            oos.returns,
            oos.returns_ts,
            oos.activity,
        )
        results.append(result)
        say(
            f"fold {number}/{len(plan)}: in sample {result.in_sample:.4f}, out of sample "
            f"{result.out_of_sample:.4f} with {chosen}"
        )
    returns = np.concatenate([r.returns for r in results]) if results else np.array([])
    stamps = np.concatenate([r.returns_ts for r in results]) if results else np.array([])
    equity = initial_cash * np.cumprod(1.0 + returns)
    activity = Activity()
    for result in results:
        activity.add(result.activity)
    return WalkForward(
        results, returns, stamps, perf.performance(returns, frequency), equity, activity
    )


# ------------------------------------------------------------- signal engine comparison


def buy_and_hold(
    data: BacktestInput,
    frequency: perf.Frequency,
    windows: Sequence[tuple[int, int]],
    cost_bps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-weight buy-and-hold of every instrument in each `(since_ns, until_ns)`
    window, bought at the last price before the window (paying `cost_bps`) and marked
    at each period's last price; chained returns and their period-end times."""
    stamps, prices, names = [], [], []
    for record in data.values:
        tick = loads(record)
        stamps.append(int(tick.get("ts_event", 0)))
        prices.append(float(tick.get("price", math.nan)))
        names.append(str(tick.get("instrument", "")))
    order = sorted(set(names))
    column = {name: i for i, name in enumerate(order)}
    period_ns = frequency.period_ns
    returns: list[float] = []
    ends: list[int] = []
    kept = 1.0 - cost_bps / 10_000.0  # what is left of 1 after buying
    for since_ns, until_ns in windows:
        last = np.full(len(order), math.nan)
        entry: np.ndarray | None = None
        marks: list[tuple[int, float]] = []
        bucket = None
        for ts, price, name in zip(stamps, prices, names, strict=True):
            if ts >= until_ns:
                break
            if ts >= since_ns and entry is None:
                entry = last.copy()
            b = ts // period_ns
            if entry is not None and bucket is not None and b != bucket:
                marks.append((int((bucket + 1) * period_ns), kept * _held(entry, last)))
            bucket = b
            last[column[name]] = price
        if entry is None:
            continue
        marks.append((int((bucket + 1) * period_ns), kept * _held(entry, last)))  # type: ignore[operator]
        previous = 1.0
        for end, value in marks:
            returns.append(value / previous - 1.0)
            ends.append(end)
            previous = value
    return np.array(ends, dtype=np.int64), np.array(returns)


def _held(entry: np.ndarray, last: np.ndarray) -> float:
    """Value of one unit spread equally over the instruments priced at `entry`."""
    ok = np.isfinite(entry) & (entry > 0)
    return float(np.mean(last[ok] / entry[ok])) if ok.any() else 1.0


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """One line of the comparison: a strategy's out-of-sample statistics and trading."""

    name: str
    statistics: perf.Performance
    signals: int
    trades: int
    turnover: float


def compare(
    base_env: Mapping[str, str],
    data: BacktestInput,
    spaces: Mapping[str, SearchSpace],
    *,
    train: int,
    test: int,
    anchored: bool = False,
    trials: int = 8,
    seed: int = 1,
    cost_bps: float = 0.0,
    say: Callable[[str], None] = print,
) -> list[ComparisonRow]:
    """Walk forward with each named space (same folds, same input), then buy-and-hold
    (equal weight, paying `cost_bps` once per fold) over the same out-of-sample windows.

    Every space must sample returns at the same frequency.
    """
    frequencies = {space.frequency for space in spaces.values()}
    if len(frequencies) != 1:
        raise HflError(f"the spaces sample returns at different frequencies: {frequencies}")
    frequency = perf.parse_frequency(frequencies.pop())
    rows = []
    windows: list[tuple[int, int]] = []
    for name, space in spaces.items():
        say(f"walk-forward of {name}")
        result = walk_forward(
            base_env, data, space, train=train, test=test, anchored=anchored,
            trials=trials, seed=seed, say=say,
        )  # fmt: skip
        windows = [(f.since_ns, f.until_ns) for f in result.folds]
        a = result.activity
        rows.append(ComparisonRow(name, result.statistics, a.signals, a.fills, a.turnover))
    _, returns = buy_and_hold(data, frequency, windows, cost_bps)
    n = len(windows)
    rows.append(ComparisonRow("buy-and-hold", perf.performance(returns, frequency), 0, n, n))
    return rows
