"""Champion and shadow challengers of one instrument: scoring, promotion, rollback, drift.

Every model of the set sees the same ticks (a slow one may see only every n-th warm
tick) and is scored prequentially on the same delayed labels; only the champion's
predictions become signals. On a schedule in event time each model's metrics are
reported, and a challenger that beats the champion by the configured margin is
promoted. Operators promote and roll back with `ModelCommand`s. Every change of
champion is an `AuditEvent`. A drift detection on the champion's error or on a watched
feature is emitted as `DriftDetected` and replaces every challenger by a fresh one
(a new version whose parent is the old), so challengers learn the new regime from
scratch while the champion keeps trading.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from online_models.checkpoint import CheckpointError, seal, unseal
from online_models.drift import DriftConfig, DriftMonitor
from online_models.pipeline import build_pipeline, selection_detail
from online_models.registry import ModelConfig, new_version, state_size_bytes
from online_models.scorer import FeatureRows, InstrumentScorer, PredictionColumns
from risk.domain.control import Alert, AuditEvent
from risk.domain.enums import AlertSeverity, ModelAction, ModelRole, ModelScope
from risk.domain.ids import stable_id
from risk.domain.model import (
    DriftDetected,
    ModelCheckpoint,
    ModelCommand,
    ModelMetrics,
    ModelVersion,
    Prediction,
)

ModelEvent = (
    Prediction | ModelMetrics | ModelVersion | DriftDetected | AuditEvent | ModelCheckpoint | Alert
)

MAX_HISTORY = 16  # champions remembered for rollback, per instrument
AUTO_ACTOR = "auto"


@dataclass(frozen=True, slots=True, kw_only=True)
class PromotionRule:
    """When a challenger replaces the champion automatically.

    Both need `min_labels` labels; the challenger's direction accuracy over the
    rolling window must beat the champion's by at least `margin`.
    """

    enabled: bool = True
    min_labels: int = 500
    margin: float = 0.02

    def prefers(self, challenger: InstrumentScorer, champion: InstrumentScorer) -> bool:
        """True when `challenger` should replace `champion` now."""
        return (
            self.enabled
            and challenger.n_labelled >= self.min_labels
            and champion.n_labelled >= self.min_labels
            and challenger.rolling_accuracy - champion.rolling_accuracy >= self.margin
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSetConfig:
    """Everything one instrument's model set is built from."""

    champion: ModelConfig
    challengers: tuple[ModelConfig, ...] = ()
    seed: int
    horizon_ns: int
    horizon_ticks: int = 0
    max_pending: int = 100_000
    rolling_window: int = 1_000
    metrics_interval_ns: int = 10_000_000_000
    promotion: PromotionRule = field(default_factory=PromotionRule)
    drift: DriftConfig = field(default_factory=DriftConfig)
    code_version: str = "unknown"
    checkpoint_interval_ns: int = 0  # event time between checkpoints; 0: none
    # A checkpoint travels as one Kafka record: keep it under the producer's
    # `message.max.bytes` (1 MB by default) or the sink would halt trading.
    checkpoint_max_bytes: int = 900_000
    mini_batch_ticks: int = 0  # > 1: learn in buckets of this many ticks (InstrumentScorer)

    @property
    def pooled(self) -> bool:
        """True when the champion or a challenger is one model shared by every instrument."""
        return any(model.scope is ModelScope.POOLED for model in (self.champion, *self.challengers))


@dataclass(slots=True, eq=False)
class ModelPool:
    """What the model sets of every instrument share when a model is pooled.

    `estimators` holds each pooled model's one estimator; `members` every model set
    learning into them (in the order of their instruments' first ticks), so a drift
    on one instrument can renew a pooled challenger in all of them; and the event-time
    schedule of the pooled checkpoint (`online_models.pool`). Pickle it together with
    its members (one Bytewax state, one checkpoint), or the sharing is lost.
    """

    estimators: dict[str, Any] = field(default_factory=dict)
    members: dict[str, ModelSet] = field(default_factory=dict)
    next_checkpoint_ns: int | None = None

    def checkpoint_due(self, ts_event: int, every_ns: int) -> bool:
        """True when a pooled checkpoint boundary has passed at `ts_event` (the first
        call only sets the first boundary); the checkpoint moves it on."""
        if every_ns <= 0:
            return False
        if self.next_checkpoint_ns is None:
            self.next_checkpoint_ns = (ts_event // every_ns + 1) * every_ns
        return ts_event >= self.next_checkpoint_ns


class _Slot:
    """One model of the set: its config, scorer, version and sub-sampling counter."""

    __slots__ = ("config", "scorer", "ticks", "version")

    def __init__(self, config: ModelConfig, scorer: InstrumentScorer, version: ModelVersion | None):
        self.config = config
        self.scorer = scorer
        self.version = version
        self.ticks = 0


class ModelSet:
    """The champion and shadow challengers of one instrument. Picklable and bounded.

    A pooled model (`ModelScope.POOLED`) is taken from `pool`, which the model sets
    of every instrument share: each instrument keeps its own pending labels and
    metrics, but they all learn into one estimator, in the order their ticks reach
    it. Such a set writes no checkpoint of its own (one instrument's checkpoint
    cannot hold a model other instruments keep changing): the pool's checkpoint
    holds every member (`online_models.pool`). A drift on any member instrument
    renews a pooled challenger in every member, unless some instrument trades it as
    its champion.

    >>> cfg = ModelSetConfig(
    ...     champion=ModelConfig(name="a", factory="logistic", params={}),
    ...     challengers=(ModelConfig(name="b", factory="linear", params={}),),
    ...     seed=0, horizon_ns=10)
    >>> models = ModelSet("X", cfg)
    >>> out = []
    >>> fresh = models.update("t0", 0, 10.0, {"f": 1.0}, out)
    >>> (fresh.model, sorted(type(e).__name__ for e in out))
    ('a', ['ModelVersion', 'ModelVersion', 'Prediction', 'Prediction'])
    """

    __slots__ = (
        "_config",
        "_drift",
        "_history",
        "_next_checkpoint_ns",
        "_next_metrics_ns",
        "_pool",
        "_slots",
        "champion",
        "instrument",
    )

    def __init__(
        self, instrument: str, config: ModelSetConfig, pool: ModelPool | None = None
    ) -> None:
        """Build every configured model; versions are announced with the first tick."""
        self.instrument = instrument
        self._config = config
        self._pool = ModelPool() if pool is None else pool
        if config.pooled:
            self._pool.members[instrument] = self
        self._slots: dict[str, _Slot] = {
            model.name: _Slot(model, self._scorer(model), None)
            for model in (config.champion, *config.challengers)
        }
        self.champion = config.champion.name
        self._history: deque[str] = deque(maxlen=MAX_HISTORY)
        self._drift = DriftMonitor(instrument, config.drift)
        self._next_metrics_ns: int | None = None
        self._next_checkpoint_ns: int | None = None

    @property
    def champion_scorer(self) -> InstrumentScorer:
        """The scorer whose predictions trade."""
        return self._slots[self.champion].scorer

    @property
    def models(self) -> tuple[str, ...]:
        """Names of every model in the set, champion first as configured."""
        return tuple(self._slots)

    def update(
        self,
        tick_id: str,
        ts_event: int,
        price: float,
        features: dict[str, float] | None,
        out: list[ModelEvent],
    ) -> Prediction | None:
        """Score one tick with every model; return the champion's fresh prediction, if any.

        Everything produced (predictions of all models, versions, metrics, drift,
        audit events) is appended to `out`.
        """
        if self._next_metrics_ns is None:
            self._announce(ts_event, out)
        champion = self.champion
        fresh: Prediction | None = None
        drifts: list[DriftDetected] = []
        for name, slot in self._slots.items():
            x = features
            every = slot.config.sample_every
            if x is not None and every > 1:
                if slot.ticks % every:  # the 1st, (every+1)-th, ... warm ticks are scored
                    x = None
                slot.ticks += 1
            predictions = slot.scorer.update(tick_id, ts_event, price, x)
            out.extend(predictions)
            if name != champion:
                continue
            for prediction in predictions:
                if prediction.version == 0:
                    fresh = prediction
                elif prediction.error is not None:
                    detected = self._drift.on_error(name, prediction.error, ts_event)
                    if detected is not None:
                        drifts.append(detected)
        if features is not None:
            drifts.extend(self._drift.on_features(champion, features, ts_event))
        self._after_tick(drifts, ts_event, out)
        return fresh

    def step(
        self,
        tick_id: str,
        ts_event: int,
        price: float,
        row: int,
        *,
        features: FeatureRows,
        sink: PredictionColumns,
        out: list[ModelEvent],
    ) -> int:
        """`update` for the batched path: predictions go to `sink` as columns.

        The same work in the same order as `update`; `row` is the index of the tick's
        warm features in `features` (-1 while they warm up). Other events go to `out`.

        Returns:
            The row of `sink` holding the champion's fresh prediction, or -1.
        """
        if self._next_metrics_ns is None:
            self._announce(ts_event, out)
        champion = self.champion
        fresh = -1
        drifts: list[DriftDetected] = []
        watch_error = self._config.drift.watch_error
        for name, slot in self._slots.items():
            r = row
            every = slot.config.sample_every
            if r >= 0 and every > 1:
                if slot.ticks % every:  # the 1st, (every+1)-th, ... warm ticks are scored
                    r = -1
                slot.ticks += 1
            start = len(sink)
            made = slot.scorer.step(tick_id, ts_event, price, r, features=features, sink=sink)
            if name != champion:
                continue
            end = len(sink)
            if made is not None:
                end -= 1
                fresh = end
            if not watch_error:
                continue
            errors = sink.errors
            for i in range(start, end):
                error = errors[i]
                if error is not None:
                    detected = self._drift.on_error(name, error, ts_event)
                    if detected is not None:
                        drifts.append(detected)
        watched = self._config.drift.features
        if row >= 0 and watched:
            values = features.select(row, watched)
            drifts.extend(self._drift.on_features(champion, values, ts_event))
        self._after_tick(drifts, ts_event, out)
        return fresh

    def _after_tick(
        self, drifts: list[DriftDetected], ts_event: int, out: list[ModelEvent]
    ) -> None:
        """What follows every scored tick: drift found renews the challengers, and the
        metrics are reported when their event-time schedule is due."""
        if drifts:
            out.extend(drifts)
            self._renew_challengers(drifts, out)
        next_metrics = self._next_metrics_ns
        if next_metrics is not None and ts_event >= next_metrics:
            self._report(ts_event, out)

    def checkpoint_due(self, ts_event: int) -> bool:
        """True when an event-time checkpoint boundary has passed at `ts_event`.

        Never for a set with pooled models (see the class docstring).
        """
        due = self._next_checkpoint_ns
        return due is not None and ts_event >= due and not self._config.pooled

    def checkpoint(self, seq: int, tick_id: str, ts_event: int) -> ModelCheckpoint | Alert:
        """Seal this whole set (models, pending labels, metrics, drift) after tick `seq`.

        The next boundary is set first, so the sealed state schedules its next
        checkpoint exactly as the set that keeps running does. A checkpoint larger
        than `checkpoint_max_bytes` is not emitted; an `Alert` says so instead.
        """
        every = self._config.checkpoint_interval_ns
        self._next_checkpoint_ns = (ts_event // every + 1) * every
        champion = self._slots[self.champion]
        version = champion.version
        return sealed_checkpoint(
            self,
            self._config,
            instrument=self.instrument,
            model=self.champion,
            models=self.models,
            version_id=version.version_id if version is not None else "",
            params_hash=champion.config.params_hash(),
            seq=seq,
            tick_id=tick_id,
            ts_event=ts_event,
        )

    def apply(self, command: ModelCommand, out: list[ModelEvent]) -> None:
        """Carry out an operator's promote or rollback; refusals are audited too."""
        match command.action:
            case ModelAction.PROMOTE:
                problem = self._promotion_problem(command.model)
                if problem:
                    out.append(
                        self._audit(command, "model_promote_rejected", problem, command.model)
                    )
                    return
                self._history.append(self.champion)
                self._switch(command.model, command, "model_promoted", command.reason, out)
            case ModelAction.ROLLBACK:
                if not self._history:
                    out.append(
                        self._audit(
                            command, "model_rollback_rejected", "no earlier champion", self.champion
                        )
                    )
                    return
                self._switch(self._history.pop(), command, "model_rolled_back", command.reason, out)

    def _promotion_problem(self, name: str) -> str:
        if name not in self._slots:
            return f"{name!r} is not a model of this set ({', '.join(self._slots)})"
        if name == self.champion:
            return f"{name!r} is already the champion"
        return ""

    def _scorer(self, model: ModelConfig) -> InstrumentScorer:
        config = self._config
        shared = None
        if model.scope is ModelScope.POOLED:
            estimators = self._pool.estimators
            shared = estimators.get(model.name)
            if shared is None:
                shared = estimators[model.name] = build_pipeline(
                    model.factory, seed=config.seed, **model.params
                )
        return InstrumentScorer(
            self.instrument,
            model_name=model.name,
            pipeline=model.factory,
            horizon_ns=config.horizon_ns,
            horizon_ticks=config.horizon_ticks,
            seed=config.seed,
            params=model.params,
            max_pending=config.max_pending,
            rolling_window=config.rolling_window,
            model=shared,
            mini_batch_ticks=config.mini_batch_ticks,
        )

    def _announce(self, ts_event: int, out: list[ModelEvent]) -> None:
        for slot in self._slots.values():
            slot.version = self._version(slot.config, "", ts_event)
            out.append(slot.version)
        interval = self._config.metrics_interval_ns
        self._next_metrics_ns = (ts_event // interval + 1) * interval
        every = self._config.checkpoint_interval_ns
        if every > 0:
            self._next_checkpoint_ns = (ts_event // every + 1) * every

    def _version(self, model: ModelConfig, parent: str, ts_event: int) -> ModelVersion:
        return new_version(
            model,
            instrument=self.instrument,
            code_version=self._config.code_version,
            parent=parent,
            created_at=ts_event,
        )

    def _renew_challengers(self, drifts: list[DriftDetected], out: list[ModelEvent]) -> None:
        """Replace every challenger by a fresh one after `drifts` on this instrument.

        A pooled challenger gets a fresh estimator in every member set of the pool,
        which all learn into it; not when some instrument trades it as champion
        (a drift elsewhere must not reset a model that trades).
        """
        for name, slot in self._slots.items():
            if name == self.champion:
                continue
            if slot.config.scope is not ModelScope.POOLED:
                self._replace(slot, drifts, out)
                continue
            members = self._pool.members.values()
            if any(member.champion == name for member in members):
                continue
            self._pool.estimators.pop(name)  # the next scorer built makes a fresh one
            for member in members:
                member._replace(member._slots[name], drifts, out)

    def _replace(self, slot: _Slot, drifts: list[DriftDetected], out: list[ModelEvent]) -> None:
        """A fresh model (a new version, parent the old) in `slot`, audited."""
        first = drifts[0]
        parent = slot.version.version_id if slot.version is not None else ""
        slot.scorer = self._scorer(slot.config)
        slot.ticks = 0
        slot.version = self._version(slot.config, parent, first.ts_event)
        out.append(slot.version)
        detail = {
            "instrument": self.instrument,
            "drift_instrument": first.instrument,
            "drift_ids": [drift.drift_id for drift in drifts],
            "scope": slot.config.scope.value,
            "parent": parent,
            "version_id": slot.version.version_id,
        }
        out.append(
            AuditEvent(
                audit_id=stable_id(
                    "audit",
                    "challenger_replaced",
                    self.instrument,
                    slot.config.name,
                    first.drift_id,
                ),
                actor=AUTO_ACTOR,
                action="challenger_replaced",
                subject=slot.config.name,
                reason="drift on " + ", ".join(f"{d.instrument} {d.stream}" for d in drifts),
                detail=json.dumps(detail, sort_keys=True),
                ts_event=first.ts_event,
                ts_init=first.ts_init,
            )
        )

    def _report(self, ts_event: int, out: list[ModelEvent]) -> None:
        interval = self._config.metrics_interval_ns
        self._next_metrics_ns = (ts_event // interval + 1) * interval
        for name, slot in self._slots.items():
            out.append(self._metrics(name, slot, ts_event))
        champion = self.champion_scorer
        rule = self._config.promotion
        candidates = [
            (slot.scorer.rolling_accuracy, name)
            for name, slot in self._slots.items()
            if name != self.champion and rule.prefers(slot.scorer, champion)
        ]
        if candidates:
            best_accuracy, best = max(candidates)
            reason = (
                f"rolling accuracy {best_accuracy:.4f} beats {champion.rolling_accuracy:.4f}"
                f" by >= {rule.margin}"
            )
            command = ModelCommand(
                command_id=stable_id("auto_promotion", self.instrument, best, ts_event),
                action=ModelAction.PROMOTE,
                model=best,
                instrument=self.instrument,
                actor=AUTO_ACTOR,
                reason=reason,
                ts_event=ts_event,
                ts_init=ts_event,
            )
            self._history.append(self.champion)
            self._switch(best, command, "model_promoted", reason, out)

    def _metrics(self, name: str, slot: _Slot, ts_event: int) -> ModelMetrics:
        scorer = slot.scorer
        version_id = slot.version.version_id if slot.version is not None else ""
        return ModelMetrics(
            metrics_id=stable_id("model_metrics", self.instrument, name, version_id, ts_event),
            instrument=self.instrument,
            model=name,
            version_id=version_id,
            role=ModelRole.CHAMPION if name == self.champion else ModelRole.CHALLENGER,
            n_labelled=scorer.n_labelled,
            n_pending=scorer.n_pending,
            evicted=scorer.evicted,
            values=scorer.metrics.values(),
            memory_bytes=state_size_bytes(scorer.model),
            detail=selection_detail(scorer.model),
            ts_event=ts_event,
            ts_init=ts_event,
        )

    def _switch(
        self, name: str, command: ModelCommand, action: str, reason: str, out: list[ModelEvent]
    ) -> None:
        previous = self.champion
        self.champion = name
        self._drift.reset_error()  # a new champion: its error stream starts now
        out.append(self._audit(command, action, reason, name, previous=previous))

    def _audit(
        self, command: ModelCommand, action: str, reason: str, subject: str, previous: str = ""
    ) -> AuditEvent:
        slot = self._slots.get(subject)
        detail = {
            "instrument": self.instrument,
            "champion": self.champion,
            "previous": previous,
            "version_id": slot.version.version_id if slot and slot.version else "",
            "command_id": command.command_id,
        }
        return AuditEvent(
            audit_id=stable_id("audit", command.command_id, self.instrument, action),
            actor=command.actor,
            action=action,
            subject=subject,
            reason=reason,
            detail=json.dumps(detail, sort_keys=True),
            ts_event=command.ts_event,
            ts_init=command.ts_init,
        )


def sealed_checkpoint(
    state: object,
    config: ModelSetConfig,
    *,
    instrument: str,
    model: str,
    models: tuple[str, ...],
    version_id: str,
    params_hash: str,
    seq: int,
    tick_id: str,
    ts_event: int,
) -> ModelCheckpoint | Alert:
    """`state` sealed as the checkpoint of `instrument` after tick `seq`, or, when it is
    larger than `config.checkpoint_max_bytes`, an `Alert` saying it was not written."""
    sealed = seal(state)
    if len(sealed.blob) > config.checkpoint_max_bytes:
        return Alert(
            alert_id=stable_id("checkpoint_oversized", instrument, ts_event),
            name="checkpoint_oversized",
            severity=AlertSeverity.WARNING,
            source="trading",
            subject=instrument,
            message=(
                f"model checkpoint of {len(sealed.blob)} bytes exceeds"
                f" checkpoint_max_bytes {config.checkpoint_max_bytes}; not written"
            ),
            ts_event=ts_event,
            ts_init=ts_event,
        )
    return ModelCheckpoint(
        checkpoint_id=stable_id("checkpoint", instrument, seq, ts_event),
        instrument=instrument,
        model=model,
        models=models,
        version_id=version_id,
        params_hash=params_hash,
        code_version=config.code_version,
        seq=seq,
        tick_id=tick_id,
        size_bytes=sealed.size_bytes,
        sha256=sealed.sha256,
        blob=sealed.blob,
        ts_event=ts_event,
        ts_init=ts_event,
    )


def restore_model_set(checkpoint: ModelCheckpoint) -> ModelSet:
    """The model set sealed in `checkpoint`, its digest verified first.

    Only for checkpoints from our own store (see `online_models.checkpoint`).

    Raises:
        CheckpointError: the digest does not match, or the blob holds something
            other than the model set of `checkpoint.instrument`.
    """
    models = unseal(checkpoint.blob, checkpoint.sha256)
    if not isinstance(models, ModelSet) or models.instrument != checkpoint.instrument:
        msg = (
            f"checkpoint {checkpoint.checkpoint_id} holds {type(models).__name__}"
            f" of {getattr(models, 'instrument', '?')!r}, not the model set of"
            f" {checkpoint.instrument!r}"
        )
        raise CheckpointError(msg)
    return models
