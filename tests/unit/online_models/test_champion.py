"""ModelSet: champion and shadow challengers, promotion, rollback, metrics and versions."""

from __future__ import annotations

import json
import pickle

import pytest

from online_models.champion import ModelSet, ModelSetConfig, PromotionRule
from online_models.registry import ModelConfig
from risk.domain import (
    AuditEvent,
    ModelAction,
    ModelCommand,
    ModelMetrics,
    ModelRole,
    Prediction,
)

NS = 1_000_000_000


def config(**overrides: object) -> ModelSetConfig:
    base: dict[str, object] = {
        "champion": ModelConfig(name="logistic", factory="logistic", params={}),
        "challengers": (
            ModelConfig(name="linear", factory="linear", params={}),
            ModelConfig(name="tree", factory="hoeffding_tree", params={}, sample_every=4),
        ),
        "seed": 3,
        "horizon_ns": NS,
        "metrics_interval_ns": 5 * NS,
        "promotion": PromotionRule(enabled=False),
    }
    return ModelSetConfig(**{**base, **overrides})  # type: ignore[arg-type]


def ticks(n: int) -> list[tuple[str, int, float, dict[str, float]]]:
    """A deterministic zig-zag price every 100 ms with two features."""
    out = []
    for i in range(n):
        price = 100.0 + (i % 7) * 0.1 - (i % 3) * 0.05
        out.append((f"t{i}", i * NS // 10, price, {"a": (i % 7) / 7, "b": (i % 3) / 3}))
    return out


def run(models: ModelSet, stream: list[tuple[str, int, float, dict[str, float]]]) -> list[object]:
    out: list[object] = []
    for tick_id, ts, price, features in stream:
        models.update(tick_id, ts, price, features, out)  # type: ignore[arg-type]
    return out


def command(action: ModelAction, model: str = "", command_id: str = "c1") -> ModelCommand:
    return ModelCommand(
        command_id=command_id,
        action=action,
        model=model,
        instrument="X",
        actor="alice",
        reason="test",
        ts_event=7,
        ts_init=7,
    )


def apply(models: ModelSet, cmd: ModelCommand) -> AuditEvent:
    out: list[object] = []
    models.apply(cmd, out)  # type: ignore[arg-type]
    [event] = out
    assert isinstance(event, AuditEvent)
    return event


def test_every_model_predicts_but_only_the_champion_is_returned_for_signals() -> None:
    models = ModelSet("X", config())
    out: list[object] = []

    fresh = models.update("t0", 0, 100.0, {"a": 1.0}, out)  # type: ignore[arg-type]

    assert fresh is not None and fresh.model == "logistic"
    assert {p.model for p in out if isinstance(p, Prediction)} == {"logistic", "linear", "tree"}


def test_sub_sampled_model_predicts_on_every_nth_tick_only() -> None:
    out = run(ModelSet("X", config()), ticks(400))

    fresh = [p for p in out if isinstance(p, Prediction) and p.version == 0]
    assert sum(p.model == "tree" for p in fresh) == 100
    assert sum(p.model == "logistic" for p in fresh) == 400


def test_metrics_are_reported_per_model_on_the_event_time_schedule() -> None:
    out = run(ModelSet("X", config()), ticks(200))  # 20 s of event time

    metrics = [m for m in out if isinstance(m, ModelMetrics)]
    assert sorted({m.ts_event for m in metrics}) == [5 * NS, 10 * NS, 15 * NS]
    last = {m.model: m for m in metrics if m.ts_event == 15 * NS}
    assert last["logistic"].role is ModelRole.CHAMPION
    assert set(last["logistic"].values) >= {"accuracy", "log_loss", "roc_auc", "rolling_log_loss"}
    assert set(last["linear"].values) >= {"mae", "rmse", "r2", "rolling_accuracy"}
    assert all(m.memory_bytes > 0 for m in last.values())


def test_promote_makes_the_challenger_champion_and_audits_it() -> None:
    models = ModelSet("X", config())
    run(models, ticks(20))

    event = apply(models, command(ModelAction.PROMOTE, "linear"))

    assert models.champion == "linear"
    assert (event.action, event.subject, event.actor) == ("model_promoted", "linear", "alice")
    assert json.loads(event.detail)["previous"] == "logistic"
    out: list[object] = []
    fresh = models.update("t99", 10 * NS, 100.0, {"a": 1.0}, out)  # type: ignore[arg-type]
    assert fresh is not None and fresh.model == "linear"


def test_rollback_restores_the_previous_champion() -> None:
    models = ModelSet("X", config())
    apply(models, command(ModelAction.PROMOTE, "linear"))
    apply(models, command(ModelAction.PROMOTE, "tree", "c2"))

    first = apply(models, command(ModelAction.ROLLBACK, command_id="c3"))
    second = apply(models, command(ModelAction.ROLLBACK, command_id="c4"))

    assert (first.subject, second.subject) == ("linear", "logistic")
    assert models.champion == "logistic"


@pytest.mark.parametrize(
    ("cmd", "action"),
    [
        (command(ModelAction.PROMOTE, "forest"), "model_promote_rejected"),
        (command(ModelAction.PROMOTE, "logistic"), "model_promote_rejected"),
        (command(ModelAction.ROLLBACK), "model_rollback_rejected"),
    ],
    ids=["unknown_model", "already_champion", "nothing_to_roll_back"],
)
def test_impossible_command_is_refused_and_audited(cmd: ModelCommand, action: str) -> None:
    models = ModelSet("X", config())

    event = apply(models, cmd)

    assert event.action == action
    assert models.champion == "logistic"


def test_rule_promotes_a_challenger_once_both_have_enough_labels() -> None:
    rule = PromotionRule(min_labels=50, margin=-1.0)  # any challenger beats any champion
    models = ModelSet("X", config(promotion=rule))

    out = run(models, ticks(200))

    promotion = next(e for e in out if isinstance(e, AuditEvent))
    assert (promotion.actor, promotion.action) == ("auto", "model_promoted")
    assert promotion.subject != "logistic"
    assert json.loads(promotion.detail)["previous"] == "logistic"


def test_pickled_set_resumes_like_an_uninterrupted_one() -> None:
    stream = ticks(300)
    whole = run(ModelSet("X", config()), stream)
    head = ModelSet("X", config())

    got = run(head, stream[:150])
    got += run(pickle.loads(pickle.dumps(head)), stream[150:])

    assert got == whole
