"""Trading, risk and model metrics derived from the latest snapshot, for ``/metrics``.

The values live in ClickHouse (P&L, positions, decisions, predictions, drift), so they
are read there once per refresh rather than threaded through the pure core. Labels
are bounded by construction: instruments and models only from the configuration,
trading states and denial reasons from their enums, checks and alert names from
fixed lists. Anything else is dropped, never turned into a new series.
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
    ("var", "hfl_risk_var_ratio", "Historical 95% VaR of per-snapshot equity returns."),
    ("cvar", "hfl_risk_cvar_ratio", "Historical 95% CVaR (expected shortfall), same returns."),
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
        gross = snapshot.get("risk", {}).get("gross_utilization")
        if gross is not None:
            utilization.add_metric(["max_gross_exposure", ""], gross)
        yield positions
        yield utilization

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
        accuracy = GaugeMetricFamily(
            "hfl_model_prequential_accuracy_ratio",
            "Share of labelled predictions on the right side of 0.5 (predict, then learn).",
            labels=["model"],
        )
        scored = CounterMetricFamily(
            "hfl_model_predictions_scored", "Predictions whose label is known.", labels=["model"]
        )
        for row in models.get("scores", []):
            if row["model"] in self._models:
                accuracy.add_metric([row["model"]], row["accuracy"])
                scored.add_metric([row["model"]], row["scored"])
        drift = CounterMetricFamily("hfl_model_drift_alarms", "Drift detections in the run.")
        drift.add_metric([], models.get("drift_total", 0))
        yield accuracy
        yield scored
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
