"""Metric contract: names say component, quantity and unit; no label is unbounded; the
Prometheus rules and Grafana dashboards parse and use only metrics we export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import Metric

import connectors.telemetry.metric
from dashboard.alert import ALERT_NAMES
from dashboard.config import DashboardConfig
from dashboard.exporter import RISK_FIGURES, SnapshotCollector
from dashboard.health import CHECK_NAMES
from risk.domain.enums import DenialReason, TradingState

NAME = re.compile(r"^hfl_(pipeline|persist|model|process|trading|risk|health|alerts|feed)_[a-z_]+$")
# "_up" is a 0/1 boolean, as in Prometheus's own `up`.
UNITS = (
    "_total",
    "_seconds",
    "_records",
    "_bytes",
    "_usd",
    "_ratio",
    "_quantity",
    "_state",
    "_up",
    "_score",
    "_value",
)  # "_score" and "_value" are dimensionless: model scores, the gate's mixed risk figures
INSTRUMENTS = ("AAPL", "MSFT")
CONFIG = DashboardConfig(
    clickhouse_url="chdb://memory",
    bootstrap="127.0.0.1:1",
    instruments=INSTRUMENTS,
    models=("logistic",),
    score_names=("accuracy", "rolling_accuracy"),
    max_gross_exposure=1000.0,
    max_position=10.0,
)
# Every label each family may carry, and the values allowed where they are closed sets.
BOUNDED_VALUES = {
    "instrument": {*INSTRUMENTS, ""},
    "model": {"logistic"},
    "state": set(TradingState),
    "reason": set(DenialReason),
    "check": set(CHECK_NAMES),
    "name": set(ALERT_NAMES),
    "limit": {"max_position", "max_gross_exposure", *RISK_FIGURES},
    "metric": {"accuracy", "rolling_accuracy", *RISK_FIGURES},
}
# venue: one of the supported venue clients; kind and quantile: closed sets in the code.
FLOW_LABELS = {"step", "table", "reason", "component", "le", "venue", "kind", "quantile"}


def hostile_snapshot(n: int) -> dict[str, object]:
    """A snapshot whose data would create `n` series per family if labels followed data."""
    return {
        "account": "paper-1",
        "equity": {"equity": 1.0, "drawdown": 0.0, "gross": 5.0},
        "positions": [
            {"instrument": f"X{i}", "quantity": 1.0, "utilization": 0.1} for i in range(n)
        ]
        + [{"instrument": "AAPL", "quantity": 3.0, "utilization": 0.3}],
        "risk": {
            "state": {"state": "halted"},
            "denials": {f"reason{i}": 1 for i in range(n)} | {"kill_switch": 2},
            "approved": 4,
            "gross_utilization": 0.005,
            "metrics": [
                {"metric": f"stress_{i}", "value": 0.1, "limit_value": 1.0} for i in range(n)
            ]
            + [{"metric": "var_hist", "value": 0.01, "limit_value": 0.02}],
        },
        "models": {
            "scores": [
                {
                    "model": model,
                    "instrument": instrument,
                    "n_labelled": 10,
                    "memory_bytes": 2048,
                    "scores": {f"s{i}": 0.1 for i in range(min(n, 20))} | {"accuracy": 0.6},
                }
                for model, instrument in [(f"m{i}", "AAPL") for i in range(n)]
                + [("logistic", f"X{i}") for i in range(n)]
                + [("logistic", "AAPL")]
            ],
            "drift_total": 3,
        },
        "pipeline": {"ticks": 7, "tick_age_s": 1.5},
    }


def collect(n: int) -> list[Metric]:
    collector = SnapshotCollector(
        CONFIG,
        lambda: hostile_snapshot(n),
        lambda: dict.fromkeys(CHECK_NAMES, True),
        lambda: dict.fromkeys(ALERT_NAMES, 0),
    )
    return list(collector.collect())


def flow_families() -> list[Metric]:
    return [family for family in REGISTRY.collect() if family.name.startswith("hfl_")]


def test_snapshot_series_count_does_not_grow_with_data_cardinality() -> None:
    small = sum(len(family.samples) for family in collect(1))
    large = sum(len(family.samples) for family in collect(5_000))
    assert small == large


def test_snapshot_label_values_come_from_closed_sets() -> None:
    for family in collect(100):
        for sample in family.samples:
            for label, value in sample.labels.items():
                assert value in BOUNDED_VALUES[label], (family.name, label, value)


def test_snapshot_families_carry_their_values() -> None:
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in collect(3)
        for s in family.samples
    }
    assert samples["hfl_risk_trading_state", (("state", "halted"),)] == 1.0
    assert samples["hfl_risk_denials_total", (("reason", "kill_switch"),)] == 2
    assert samples["hfl_trading_position_quantity", (("instrument", "AAPL"),)] == 3.0
    logistic_aapl = (("instrument", "AAPL"), ("metric", "accuracy"), ("model", "logistic"))
    assert samples["hfl_model_prequential_score", logistic_aapl] == 0.6
    assert samples["hfl_risk_metric_value", (("metric", "var_hist"),)] == 0.01
    utilization = (("instrument", ""), ("limit", "var_hist"))
    assert samples["hfl_risk_limit_utilization_ratio", utilization] == 0.5


@pytest.mark.parametrize("family", [*collect(1), *flow_families()], ids=lambda f: f.name)
def test_metric_names_say_component_quantity_and_unit(family: Metric) -> None:
    assert NAME.match(family.name), family.name
    exposed = family.name + ("_total" if family.type == "counter" else "")
    assert exposed.endswith(UNITS), exposed


def test_flow_metrics_use_only_bounded_label_names() -> None:
    connectors.telemetry.metric.count_batch(
        connectors.telemetry.metric.RECORDS_IN, "trading.ticks_in", 3
    )
    for family in flow_families():
        for sample in family.samples:
            assert set(sample.labels) <= FLOW_LABELS, (family.name, sample.labels)


def test_multiprocess_registry_reads_an_empty_directory(tmp_path: object) -> None:
    registry = connectors.telemetry.metric.multiprocess_registry(str(tmp_path))
    assert isinstance(registry, CollectorRegistry)
    assert list(registry.collect()) == []


DOCKER = Path(__file__).resolve().parents[3] / "docker"
METRIC = re.compile(r"\bhfl_[a-z_]+\b")
SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def exported_names() -> set[str]:
    names = set()
    families = [*collect(1), *(f for f in REGISTRY.collect() if f.name.startswith("hfl_"))]
    for family in families:
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def rules() -> list[dict[str, object]]:
    document = yaml.safe_load((DOCKER / "prometheus" / "rules.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_rule_has_name_expression_severity_and_summary() -> None:
    for rule in rules():
        assert set(rule) >= {"alert", "expr", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("info", "warning", "critical")  # type: ignore[index]
        assert rule["annotations"]["summary"]  # type: ignore[index]


def test_rules_cover_the_issue_alerts_under_the_engine_names() -> None:
    names = {rule["alert"] for rule in rules()}
    assert {"drawdown", "kill_switch", "stale_data", "persist_lag", "dlq_rate", "drift"} <= names
    engine_names = names & set(ALERT_NAMES)
    assert engine_names == {
        "drawdown",
        "kill_switch",
        "stale_data",
        "persist_lag",
        "consumer_lag",
        "dlq_rate",
        "drift",
    }


def test_rules_reference_only_exported_metrics() -> None:
    exported = exported_names()
    for rule in rules():
        for name in METRIC.findall(str(rule["expr"])):
            assert name in exported, (rule["alert"], name)


def test_grafana_panels_reference_only_exported_metrics() -> None:
    exported = exported_names()
    board = json.loads((DOCKER / "grafana" / "dashboards" / "hfl.json").read_text())
    assert len(board["panels"]) >= 20
    for panel in board["panels"]:
        for target in panel["targets"]:
            for name in METRIC.findall(target["expr"]):
                assert name in exported, (panel["title"], name)


def test_dead_letter_reasons_are_counted_per_batch_by_reason() -> None:
    before = REGISTRY.get_sample_value("hfl_pipeline_dead_letters_total", {"reason": "oversized"})
    connectors.telemetry.metric.count_reasons(
        connectors.telemetry.metric.DEAD_LETTERS, ["oversized", "non_finite", "oversized"]
    )
    after = REGISTRY.get_sample_value("hfl_pipeline_dead_letters_total", {"reason": "oversized"})
    assert after - (before or 0.0) == 2
