"""The report's figures on a run over the real S&P 500 replay, and its self-contained HTML."""

from __future__ import annotations

import math
import re
from pathlib import Path

import empyrical
import numpy as np
import pandas as pd
import pytest
from support.research_run import INITIAL_CASH, sp500_run

from dataflows.ops import report
from risk import performance as perf

REL = 1e-9


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> report.RunData:
    return sp500_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def analysis(run: report.RunData) -> report.Analysis:
    return report.analyse(run)


def daily_returns(ts: np.ndarray, values: np.ndarray, start: float) -> np.ndarray:
    """Last value per UTC day with pandas, `start` before the first day."""
    frame = pd.Series(values, index=pd.to_datetime(ts, utc=True))
    closes = frame.groupby(frame.index.floor("D")).last().to_numpy()
    return np.concatenate(([closes[0] / start - 1.0], closes[1:] / closes[:-1] - 1.0))


def test_report_statistics_equal_empyrical_on_the_run(
    run: report.RunData, analysis: report.Analysis
) -> None:
    returns = daily_returns(run.equity_ts, run.equity, INITIAL_CASH)
    index = daily_returns(run.benchmark_ts, run.benchmark, run.benchmark[0])
    np.testing.assert_allclose(analysis.returns, returns, rtol=REL)
    f = analysis.figures
    assert f.sharpe == pytest.approx(empyrical.sharpe_ratio(returns), rel=REL)
    assert f.sortino == pytest.approx(empyrical.sortino_ratio(returns), rel=REL)
    assert f.calmar == pytest.approx(empyrical.calmar_ratio(returns), rel=REL)
    assert f.annual_volatility == pytest.approx(empyrical.annual_volatility(returns), rel=REL)
    assert f.max_drawdown == pytest.approx(empyrical.max_drawdown(returns), rel=REL)
    alpha, beta = empyrical.alpha_beta(returns, index)
    assert (f.alpha, f.beta) == pytest.approx((alpha, beta), rel=REL)
    assert analysis.daily_var == pytest.approx(-empyrical.value_at_risk(returns, 0.01), rel=REL)


def test_report_success_metrics_follow_the_figures(analysis: report.Analysis) -> None:
    by_name = {m.name: m for m in analysis.success}
    assert len(by_name) == 9
    assert by_name["Sharpe ratio"].met is (analysis.figures.sharpe > 1.5)
    assert by_name["Win rate"].met is (analysis.trade_stats.win_rate > 0.55)
    assert by_name["Max drawdown"].met is (-analysis.figures.max_drawdown < 0.10)
    assert by_name["Annual volatility"].met is (analysis.figures.annual_volatility < 0.15)


def test_report_trades_turnover_and_exposure_follow_the_fills(
    run: report.RunData, analysis: report.Analysis
) -> None:
    assert len(analysis.trades) > 1_000
    assert analysis.trade_stats.trades == len(analysis.trades)
    # Every stock holds 400 shares long or short from the first day: always in the market.
    assert analysis.time_in_market == 1.0
    assert 0.0 < analysis.turnover < 1.0
    assert analysis.monte_carlo is not None
    assert analysis.monte_carlo.paths == report.MONTE_CARLO_PATHS
    reshuffle = analysis.trade_reshuffle
    assert reshuffle is not None
    # A permutation keeps the final equity: every path ends at the trades' total.
    total = run.initial_cash + sum(t.pnl for t in analysis.trades)
    assert reshuffle.final_equity.percentiles == pytest.approx((total,) * 5, rel=1e-9)


def test_report_html_is_self_contained_with_every_section(
    run: report.RunData, tmp_path: Path
) -> None:
    path = report.write_report(run, tmp_path / "report.html")
    text = path.read_text()
    assert re.search(r"<script[^>]+src=", text) is None  # plotly.js is inline
    assert text.count("Plotly.newPlot") >= 7
    for section in (
        "success",
        "statistics",
        "equity",
        "underwater",
        "monthly",
        "rolling",
        "exposure",
        "trades",
        "fan",
        "post-trade",
        "model",
        "scores",
    ):
        assert f'id="{section}"' in text, section
    assert "met" in text


def test_short_run_reports_undefined_figures_as_na(tmp_path: Path) -> None:
    run = sp500_run(tmp_path, days=1)
    analysis = report.analyse(run)
    assert analysis.returns.size == 1
    assert math.isnan(analysis.figures.sharpe)
    assert all(m.met is None for m in analysis.success if m.name.startswith("Sharpe"))
    text = report.render(run, analysis)
    assert "n/a" in text
    assert "too few for a Monte Carlo" in text


def test_intraday_frequency_prints_its_factor(run: report.RunData) -> None:
    hourly = perf.parse_frequency("1h")
    assert "1638 periods per year (intraday, as asked)" in hourly.describe()
