"""The demo summary's performance lines come from the report's analysis, at its frequency."""

from __future__ import annotations

from pathlib import Path

from support.research_run import sp500_run

from dataflows.ops.report import analyse
from dataflows.ops.summary import RunSummary


def summary(analysis: object) -> RunSummary:
    return RunSummary(
        ticks=1,
        features=1,
        predictions_labelled=0,
        accuracy=None,
        majority_baseline=None,
        signals=0,
        orders=0,
        fills=0,
        dlq=0,
        analysis=analysis,
        report_path="var/reports/x.html",
    )  # type: ignore[arg-type]


def test_summary_of_a_multi_year_run_prints_daily_statistics(tmp_path: Path) -> None:
    analysis = analyse(sp500_run(tmp_path))
    text = summary(analysis).render()
    assert "1257 x daily returns, annualised by 252 periods per year" in text
    assert f"Sharpe / Sortino       {analysis.figures.sharpe:.4f}" in text
    assert "per-second" not in text
    assert "report                 var/reports/x.html" in text


def test_summary_of_a_one_day_run_says_why_sharpe_is_na(tmp_path: Path) -> None:
    text = summary(analyse(sp500_run(tmp_path, days=1))).render()
    assert "n/a: need two or more daily returns, the run has 1" in text
    assert "Sharpe / Sortino" not in text
