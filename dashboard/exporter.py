"""Trading, risk and model metrics derived from the latest snapshot, for ``/metrics``.

The values live in ClickHouse (P&L, positions, decisions, predictions, drift), so they
are read there once per refresh rather than threaded through the pure core. Labels
are bounded by construction: instruments and models only from the configuration,
trading states and denial reasons from their enums, score names from the configured
evaluators, risk figures, checks and alert names from fixed lists. Anything else is
dropped, never turned into a new series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dashboard.config import DashboardConfig
from risk.domain.enums import DenialReason, TradingState

Snapshot = dict[str, Any]
_TRADING_GAUGES = (
    ("equity", "hfl_trading_equity_usd", "Account equity (cash plus marked positions)."),
    ("realized", "hfl_trading_realized_pnl_usd", "Realized P&L of the run."),
    ("unrealized", "hfl_trading_unrealized_pnl_usd", "Unrealized P&L of open positions."),
    ("gross", "hfl_trading_gross_exposure_usd", "Sum of absolute position values."),
    ("net", "hfl_trading_net_exposure_usd", "Signed sum of position values."),
    ("drawdown", "hfl_trading_drawdown_ratio", "Fall of equity from its peak in the run."),
)
# The risk gate's account-wide figures (`risk_metrics`), each with its configured limit.
RISK_FIGURES = (
    "var_hist",
    "var_ewma",
    "cvar_hist",
    "cvar_ewma",
    "beta",
    "drawdown",
    "daily_loss",
    "open_orders",
    "order_rate",
    "fills_since_human",
)


class SnapshotCollector(Collector):
    """Turn the latest snapshot and health checks into metric families at scrape time."""

    def __init__(
        self,
        config: DashboardConfig,
        latest: Callable[[], Snapshot | None],
        checks: Callable[[], dict[str, bool]],
        alerts_fired: Callable[[], dict[str, int]],
    ) -> None:
        self._instruments = frozenset(config.instruments)
        self._models = frozenset(config.models)
        self._scores = frozenset(config.score_names)
        self._latest = latest
        self._checks = checks
        self._alerts_fired = alerts_fired

    def collect(self) -> Iterator[Metric]:
        """Yield every family; empty families while no snapshot was read yet."""
        snapshot = self._latest() or {}
        yield from self._trading(snapshot)
        yield from self._risk(snapshot)
        yield from self._models_families(snapshot)
        yield from self._health_and_alerts(snapshot)

    def _trading(self, snapshot: Snapshot) -> Iterator[Metric]:
        equity = snapshot.get("equity", {})
        for key, name, documentation in _TRADING_GAUGES:
            family = GaugeMetricFamily(name, documentation)
            if equity.get(key) is not None:
                family.add_metric([], float(equity[key]))
            yield family
        positions = GaugeMetricFamily(
            "hfl_trading_position_quantity", "Position per instrument.", labels=["instrument"]
        )
        utilization = GaugeMetricFamily(
            "hfl_risk_limit_utilization_ratio",
            "Use of a limit: gross exposure, or one instrument's position.",
            labels=["limit", "instrument"],
        )
        for row in snapshot.get("positions", []):
            if row["instrument"] in self._instruments:
                positions.add_metric([row["instrument"]], row["quantity"])
                if row.get("utilization") is not None:
                    utilization.add_metric(["max_position", row["instrument"]], row["utilization"])
        risk = snapshot.get("risk", {})
        if risk.get("gross_utilization") is not None:
            utilization.add_metric(["max_gross_exposure", ""], risk["gross_utilization"])
        figures = GaugeMetricFamily(
            "hfl_risk_metric_value",
            "The risk gate's latest account figure (VaR/CVaR/drawdown as fractions of equity).",
            labels=["metric"],
        )
        for row in risk.get("metrics", []):
            if row["metric"] in RISK_FIGURES:
                figures.add_metric([row["metric"]], row["value"])
                if row["limit_value"] > 0:
                    utilization.add_metric([row["metric"], ""], row["value"] / row["limit_value"])
        yield positions
        yield utilization
        yield figures

    def _risk(self, snapshot: Snapshot) -> Iterator[Metric]:
        risk = snapshot.get("risk", {})
        current = risk.get("state", {}).get("state", TradingState.ACTIVE)
        state = GaugeMetricFamily(
            "hfl_risk_trading_state", "1 for the account's current trading state.", labels=["state"]
        )
        for value in TradingState:
            state.add_metric([value], 1.0 if value == current else 0.0)
        yield state
        denials = CounterMetricFamily(
            "hfl_risk_denials",
            "Orders denied by the risk gate in the run, by reason.",
            labels=["reason"],
        )
        counted = risk.get("denials", {})
        for reason in DenialReason:
            denials.add_metric([reason], counted.get(reason, 0))
        yield denials
        approved = CounterMetricFamily("hfl_risk_approvals", "Orders approved in the run.")
        approved.add_metric([], risk.get("approved", 0))
        yield approved

    def _models_families(self, snapshot: Snapshot) -> Iterator[Metric]:
        models = snapshot.get("models", {})
        labels = ["model", "instrument"]
        score = GaugeMetricFamily(
            "hfl_model_prequential_score",
            "Prequential score (River metric, predict then learn), cumulative or rolling_.",
            labels=[*labels, "metric"],
        )
        scored = CounterMetricFamily(
            "hfl_model_predictions_scored", "Predictions whose label is known.", labels=labels
        )
        memory = GaugeMetricFamily(
            "hfl_model_memory_bytes", "Memory of the model as River measures it.", labels=labels
        )
        for row in models.get("scores", []):
            key = [row["model"], row["instrument"]]
            if row["model"] in self._models and row["instrument"] in self._instruments:
                scored.add_metric(key, row["n_labelled"])
                memory.add_metric(key, row["memory_bytes"])
                for name, value in row["scores"].items():
                    if name in self._scores:
                        score.add_metric([*key, name], value)
        drift = CounterMetricFamily("hfl_model_drift_alarms", "Drift detections in the run.")
        drift.add_metric([], models.get("drift_total", 0))
        yield score
        yield scored
        yield memory
        yield drift

    def _health_and_alerts(self, snapshot: Snapshot) -> Iterator[Metric]:
        pipeline = snapshot.get("pipeline", {})
        ticks = CounterMetricFamily("hfl_pipeline_ticks_stored", "Ticks persisted in the run.")
        ticks.add_metric([], pipeline.get("ticks", 0))
        yield ticks
        age = GaugeMetricFamily(
            "hfl_pipeline_last_tick_age_seconds", "Wall clock minus the newest tick's ingest time."
        )
        if pipeline.get("tick_age_s") is not None:
            age.add_metric([], pipeline["tick_age_s"])
        yield age
        up = GaugeMetricFamily(
            "hfl_health_check_up", "1 when a health check passes.", labels=["check"]
        )
        for name, ok in self._checks().items():
            up.add_metric([name], 1.0 if ok else 0.0)
        yield up
        fired = CounterMetricFamily(
            "hfl_alerts_fired", "Alerts the in-process engine fired, by name.", labels=["name"]
        )
        for name, count in self._alerts_fired().items():
            fired.add_metric([name], count)
        yield fired
