"""Performance statistics against empyrical-reloaded on real series, and trade statistics.

Series: River's `SP500Stocks` (1,257 real daily returns of ten stocks, in percent) and
the S&P 500 price CSV that replay tests feed (`connectors.feeds.sp500`), resampled
daily from its tick timestamps by `sample_equity`. Every return statistic must equal
empyrical's within 1e-9 relative. Trade statistics have no empyrical counterpart: they
are checked against their documented formulas and against cash accounting.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import empyrical
import numpy as np
import pandas as pd
import pytest
from river.datasets import SP500Stocks

from connectors.feeds.sp500 import write_sp500_prices
from risk import performance as perf

REL = 1e-9
DAILY = perf.DAILY.periods_per_year


@pytest.fixture(scope="module")
def stocks() -> pd.DataFrame:
    """The ten stocks' daily simple returns as fractions, one column per stock."""
    rows = [x for x, _ in SP500Stocks()]  # type: ignore[no-untyped-call]
    return pd.DataFrame(rows) / 100.0


@pytest.fixture(scope="module")
def csv_equity(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """An equal-quantity buy-and-hold book's (ts_ns, equity) at every tick of the CSV."""
    path = tmp_path_factory.mktemp("sp500") / "sp500.csv"
    write_sp500_prices(path)
    prices: dict[str, float] = {}
    times, equity = [], []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            prices[row["instrument"]] = float(row["price"])
            times.append(int(row["ts"]))
            equity.append(sum(prices.values()))
    return np.array(times, dtype=np.int64), np.array(equity)


@pytest.fixture(scope="module")
def series(
    stocks: pd.DataFrame, csv_equity: tuple[np.ndarray, np.ndarray]
) -> dict[str, np.ndarray]:
    """Named real return series: each stock, a long/short book, and the CSV book daily."""
    named = {str(name): stocks[name].to_numpy() for name in stocks}
    weights = np.linspace(-0.5, 1.2, stocks.shape[1])
    named["long_short_book"] = stocks.to_numpy() @ weights
    ts, equity = csv_equity
    _, daily = perf.sample_equity(ts, equity, perf.DAILY.period_ns)
    named["csv_buy_and_hold"] = perf.simple_returns(daily)[1:]  # drop the partial first day
    return named


def market(stocks: pd.DataFrame) -> np.ndarray:
    return stocks.mean(axis=1).to_numpy()  # type: ignore[no-any-return]


Stat = Callable[[np.ndarray], float]

CASES: list[tuple[str, Stat, Stat]] = [
    ("total_return", perf.total_return, empyrical.cum_returns_final),
    (
        "annual_return",
        lambda r: perf.annual_return(r, DAILY),
        lambda r: empyrical.annual_return(r, period="daily"),
    ),
    (
        "annual_volatility",
        lambda r: perf.annual_volatility(r, DAILY),
        lambda r: empyrical.annual_volatility(r, period="daily"),
    ),
    ("sharpe", lambda r: perf.sharpe_ratio(r, DAILY), empyrical.sharpe_ratio),
    ("sortino", lambda r: perf.sortino_ratio(r, DAILY), empyrical.sortino_ratio),
    (
        "sortino_required_return",
        lambda r: perf.sortino_ratio(r, DAILY, 0.0005),
        lambda r: empyrical.sortino_ratio(r, required_return=0.0005),
    ),
    ("downside_risk", lambda r: perf.downside_risk(r, DAILY), empyrical.downside_risk),
    ("calmar", lambda r: perf.calmar_ratio(r, DAILY), empyrical.calmar_ratio),
    ("omega", lambda r: perf.omega_ratio(r, DAILY), empyrical.omega_ratio),
    (
        "omega_required_return",
        lambda r: perf.omega_ratio(r, DAILY, required_return=0.08),
        lambda r: empyrical.omega_ratio(r, required_return=0.08),
    ),
    ("max_drawdown", perf.max_drawdown, empyrical.max_drawdown),
    ("tail_ratio", perf.tail_ratio, empyrical.tail_ratio),
    ("var_95", perf.value_at_risk, lambda r: empyrical.value_at_risk(r, cutoff=0.05)),
    (
        "var_99",
        lambda r: perf.value_at_risk(r, 0.99),
        lambda r: empyrical.value_at_risk(r, cutoff=0.01),
    ),
    (
        "cvar_95",
        perf.conditional_value_at_risk,
        lambda r: empyrical.conditional_value_at_risk(r, cutoff=0.05),
    ),
    (
        "cvar_99",
        lambda r: perf.conditional_value_at_risk(r, 0.99),
        lambda r: empyrical.conditional_value_at_risk(r, cutoff=0.01),
    ),
]


@pytest.mark.parametrize(("name", "ours", "reference"), CASES, ids=[c[0] for c in CASES])
def test_return_statistic_equals_empyrical_on_real_series(
    series: dict[str, np.ndarray], name: str, ours: Stat, reference: Stat
) -> None:
    for label, returns in series.items():
        expected = float(reference(returns))
        assert ours(returns) == pytest.approx(expected, rel=REL, nan_ok=True), (name, label)


@pytest.mark.parametrize("window", [21, 63, 250])
def test_sharpe_sortino_drawdown_on_short_windows_equal_empyrical(
    series: dict[str, np.ndarray], window: int
) -> None:
    for label, returns in series.items():
        part = returns[-window:]
        assert perf.sharpe_ratio(part, DAILY) == pytest.approx(
            empyrical.sharpe_ratio(part), rel=REL
        ), label
        assert perf.sortino_ratio(part, DAILY) == pytest.approx(
            empyrical.sortino_ratio(part), rel=REL
        ), label
        assert perf.max_drawdown(part) == pytest.approx(empyrical.max_drawdown(part), rel=REL)


def test_alpha_beta_against_equal_weighted_market_equal_empyrical(
    series: dict[str, np.ndarray], stocks: pd.DataFrame
) -> None:
    benchmark = market(stocks)
    for label, returns in series.items():
        if label == "csv_buy_and_hold":
            continue  # one day shorter: aligned separately below
        alpha, beta = perf.alpha_beta(returns, benchmark, DAILY)
        expected_alpha, expected_beta = empyrical.alpha_beta(returns, benchmark)
        assert beta == pytest.approx(expected_beta, rel=REL), label
        assert alpha == pytest.approx(expected_alpha, rel=REL), label


def test_alpha_beta_of_csv_book_against_river_market_equal_empyrical(
    series: dict[str, np.ndarray], stocks: pd.DataFrame
) -> None:
    returns = series["csv_buy_and_hold"]
    benchmark = market(stocks)[-returns.size :]
    alpha, beta = perf.alpha_beta(returns, benchmark, DAILY)
    expected_alpha, expected_beta = empyrical.alpha_beta(returns, benchmark)
    assert (alpha, beta) == pytest.approx((expected_alpha, expected_beta), rel=REL)


def test_weekly_and_intraday_factors_equal_empyrical_with_that_annualization(
    series: dict[str, np.ndarray],
) -> None:
    returns = series["long_short_book"]
    minute = perf.Frequency.intraday(60)
    for frequency in (perf.WEEKLY, minute):
        factor = frequency.periods_per_year
        assert perf.sharpe_ratio(returns, factor) == pytest.approx(
            empyrical.sharpe_ratio(returns, annualization=factor), rel=REL
        )
        assert perf.annual_volatility(returns, factor) == pytest.approx(
            empyrical.annual_volatility(returns, annualization=factor), rel=REL
        )
    assert minute.periods_per_year == 252 * 23_400 / 60
    assert "98280 periods per year" in minute.describe()


def test_performance_bundle_equals_the_single_functions(
    series: dict[str, np.ndarray], stocks: pd.DataFrame
) -> None:
    returns = series["long_short_book"]
    figures = perf.performance(returns, benchmark=market(stocks), confidence=0.99)
    assert figures.sharpe == pytest.approx(empyrical.sharpe_ratio(returns), rel=REL)
    assert figures.calmar == pytest.approx(empyrical.calmar_ratio(returns), rel=REL)
    assert figures.cvar == pytest.approx(
        empyrical.conditional_value_at_risk(returns, cutoff=0.01), rel=REL
    )
    assert figures.beta == pytest.approx(empyrical.beta(returns, market(stocks)), rel=REL)
    assert figures.periods == returns.size


def test_sample_equity_daily_equals_pandas_last_per_utc_day(
    csv_equity: tuple[np.ndarray, np.ndarray],
) -> None:
    ts, equity = csv_equity
    times, sampled = perf.sample_equity(ts, equity, perf.DAILY.period_ns)
    frame = pd.Series(equity, index=pd.to_datetime(ts, utc=True))
    expected = frame.groupby(frame.index.floor("D")).last().to_numpy()
    assert sampled[0] == equity[0]
    np.testing.assert_array_equal(sampled[1:], expected)
    assert times.size == sampled.size


def test_sample_equity_out_of_order_raises() -> None:
    with pytest.raises(ValueError, match="event-time order"):
        perf.sample_equity([2, 1], [1.0, 2.0], 10)


def test_max_drawdown_duration_counts_longest_underwater_run() -> None:
    returns = np.array([0.1, -0.2, 0.05, 0.05, 0.2, -0.01, -0.01, 0.0, 0.0, 0.0])
    # Underwater after the -0.2 for 3 periods (recovered by +0.2), then 5 periods to the end.
    assert perf.max_drawdown_duration(returns) == 5
    assert perf.max_drawdown_duration(np.array([0.01, 0.02])) == 0


def test_max_drawdown_duration_on_real_series_matches_drawdown_series(
    series: dict[str, np.ndarray],
) -> None:
    for label, returns in series.items():
        underwater = empyrical.stats.drawdown_series(returns) < 0
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate(([0], underwater, [0])))))[::2]
        expected = int(runs.max()) if runs.size else 0
        assert perf.max_drawdown_duration(returns) == expected, label


def test_trade_statistics_follow_their_documented_formulas() -> None:
    pnl = np.array([12.0, -4.0, 0.0, 7.5, -1.5, -6.0, 3.0])
    stats = perf.trade_statistics(pnl)
    assert stats.trades == 7
    assert stats.win_rate == 3 / 7
    assert stats.profit_factor == pytest.approx((12 + 7.5 + 3) / (4 + 1.5 + 6), rel=REL)
    assert stats.expectancy == pytest.approx(pnl.mean(), rel=REL)
    assert stats.average_win == pytest.approx(22.5 / 3, rel=REL)
    assert stats.average_loss == pytest.approx(-11.5 / 3, rel=REL)


def test_trade_statistics_without_losses_has_no_profit_factor() -> None:
    stats = perf.trade_statistics([1.0, 2.0])
    assert math.isnan(stats.profit_factor)
    assert math.isnan(stats.average_loss)
    assert math.isnan(perf.trade_statistics([]).win_rate)


def momentum_fills(path: Path) -> list[perf.Execution]:
    """Fills of a rule on the real CSV: hold +q after an up day, -q after a down day."""
    previous: dict[str, float] = {}
    position: dict[str, float] = {}
    fills: list[perf.Execution] = []
    with open(path, newline="") as handle:
        for seq, row in enumerate(csv.DictReader(handle)):
            name, price, ts = row["instrument"], float(row["price"]), int(row["ts"])
            if name in previous:
                target = (1 + seq % 3) * (1.0 if price > previous[name] else -1.0)
                delta = target - position.get(name, 0.0)
                if delta:
                    fee = 0.0005 * abs(delta) * price
                    fills.append(
                        perf.Execution(
                            instrument=name, ts_event=ts, quantity=delta, price=price, fee=fee
                        )
                    )
                    position[name] = target
            previous[name] = price
    for name, held in position.items():  # flatten at the last price
        if held:
            fills.append(
                perf.Execution(instrument=name, ts_event=ts, quantity=-held, price=previous[name])
            )
    return fills


def test_round_trips_on_real_prices_sum_to_cash_pnl(tmp_path: Path) -> None:
    path = tmp_path / "sp500.csv"
    write_sp500_prices(path)
    fills = momentum_fills(path)
    trades = perf.round_trips(fills)
    cash = -sum(f.quantity * f.price for f in fills) - sum(f.fee for f in fills)
    assert len(trades) > 1_000
    assert sum(t.pnl for t in trades) == pytest.approx(cash, rel=1e-9)
    assert all(t.closed_ns >= t.opened_ns for t in trades)
    assert {t.side for t in trades} == {1, -1}


def test_round_trips_split_a_crossing_fill_and_its_fee() -> None:
    fills = [
        perf.Execution(instrument="A", ts_event=1, quantity=-2, price=10.0, fee=0.2),
        perf.Execution(instrument="A", ts_event=2, quantity=1, price=9.0),
        perf.Execution(instrument="A", ts_event=3, quantity=4, price=8.0, fee=0.4),
        perf.Execution(instrument="A", ts_event=4, quantity=-3, price=9.0, fee=0.3),
        perf.Execution(instrument="B", ts_event=5, quantity=1, price=5.0),
    ]
    trades = perf.round_trips(fills)
    # Short 2 @10 covered 1 @9 and 1 @8 (fee 0.4 * 1/4); long 3 @8 sold @9 (fee 0.3 + 0.3).
    assert [(t.side, t.quantity, t.opened_ns, t.closed_ns) for t in trades] == [
        (-1, 2, 1, 3),
        (1, 3, 3, 4),
    ]
    assert trades[0].pnl == pytest.approx(1.0 + 2.0 - 0.2 - 0.1, rel=REL)
    assert trades[1].pnl == pytest.approx(3.0 - 0.3 - 0.3, rel=REL)


def test_turnover_and_exposure_follow_their_documented_formulas() -> None:
    equity = np.array([100.0, 110.0, 90.0, 100.0])
    assert perf.turnover(np.array([10.0, 0.0, 45.0, 20.0]), equity) == pytest.approx(
        (0.1 + 0.0 + 0.5 + 0.2) / 4, rel=REL
    )
    gross, in_market = perf.exposure(np.array([0.0, 55.0, -45.0, 0.0]), equity)
    assert gross == pytest.approx((0.5 + 0.5) / 4, rel=REL)
    assert in_market == 0.5


def test_deflated_sharpe_reproduces_the_papers_worked_example() -> None:
    # Bailey and López de Prado (2014), "The Deflated Sharpe Ratio", section 4: annual
    # Sharpe 2.5 over five years of daily returns, 100 trials with annualised Sharpe
    # variance 0.5, skew -3, kurtosis 10: DSR = 0.9004.
    dsr = perf.deflated_sharpe_ratio(
        2.5 / math.sqrt(250),
        trials=100,
        trial_variance=0.5 / 250,
        periods=1250,
        skew=-3.0,
        kurtosis=10.0,
    )
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_moments_and_probabilistic_sharpe_equal_scipy_on_real_series(
    series: dict[str, np.ndarray],
) -> None:
    from scipy import stats

    for label, returns in series.items():
        skew, kurtosis = perf.moments(returns)
        assert skew == pytest.approx(stats.skew(returns), rel=REL), label
        assert kurtosis == pytest.approx(stats.kurtosis(returns, fisher=False), rel=REL), label
        sharpe = float(np.mean(returns) / np.std(returns, ddof=1))
        z = (
            sharpe
            * math.sqrt(returns.size - 1)
            / math.sqrt(1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2)
        )
        expected = stats.norm.cdf(z)
        assert perf.probabilistic_sharpe_ratio(
            sharpe, 0.0, returns.size, skew, kurtosis
        ) == pytest.approx(expected, rel=1e-9), label


def test_expected_max_sharpe_grows_with_trials_and_is_zero_for_one() -> None:
    values = [perf.expected_max_sharpe(n, 1.0) for n in (2, 10, 100, 1000)]
    assert values == sorted(values)
    assert perf.expected_max_sharpe(1, 1.0) == 0.0
