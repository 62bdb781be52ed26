"""What the online models produce: features, predictions and signals."""

from __future__ import annotations

from dataclasses import dataclass

from risk.domain.enums import ModelAction, ModelRole


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureVector:
    """The warm features of one instrument right after tick `tick_id`."""

    tick_id: str
    instrument: str
    values: dict[str, float]
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """A model's probability that the forward return over the horizon is positive.

    Emitted twice: at predict time (`version` 0, `label` None) and once the horizon
    has elapsed in event time (`version` 1, `label` 1 for up, 0 otherwise), so the
    persisted row ends up with its realised outcome. A regressor also gives its
    forecast `expected_return` (its `probability_up` is then the forecast's sign:
    1, 0 or 0.5). Version 1 adds `realized_return` (price after the horizon over
    the price then, minus one) and `error`: `|label - probability_up|` for a
    classifier, `|realized_return - expected_return|` for a regressor. `horizon_ns` is
    0 when the horizon is counted in ticks (`model.horizon_ticks`).
    """

    tick_id: str
    instrument: str
    model: str
    horizon_ns: int
    probability_up: float
    expected_return: float | None = None
    label: int | None = None
    realized_return: float | None = None
    error: float | None = None
    version: int = 0
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureBatch:
    """Feature vectors of one instrument from one input batch, in one record, as columns.

    Row i is the `FeatureVector` with `tick_ids[i]`, this `instrument`, the values
    `dict(zip(names, values[i]))` and `ts_events[i]`/`ts_inits[i]`; rows keep the
    order the vectors were made in. The persist flow explodes a batch into exactly
    those rows. `ts_event` and `ts_init` are the latest of the rows' (what a consumer
    following the topic's progress reads).
    """

    instrument: str
    names: tuple[str, ...]
    tick_ids: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    ts_events: tuple[int, ...]
    ts_inits: tuple[int, ...]
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionBatch:
    """Predictions of one instrument from one input batch, in one record, as columns.

    Row i is the `Prediction` of `tick_ids[i]`, `models[i]`, `horizons_ns[i]`, ...
    `ts_inits[i]` (each column named after its `Prediction` field), in the order
    they were made; the persist flow explodes a batch into exactly those rows.
    `ts_event` and `ts_init` are the latest of the rows'.
    """

    instrument: str
    tick_ids: tuple[str, ...]
    models: tuple[str, ...]
    horizons_ns: tuple[int, ...]
    probabilities_up: tuple[float, ...]
    expected_returns: tuple[float | None, ...]
    labels: tuple[int | None, ...]
    realized_returns: tuple[float | None, ...]
    errors: tuple[float | None, ...]
    versions: tuple[int, ...]
    ts_events: tuple[int, ...]
    ts_inits: tuple[int, ...]
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """A change of the desired direction on an instrument: -1 short, 0 flat, +1 long."""

    signal_id: str
    tick_id: str
    instrument: str
    model: str
    direction: int
    probability_up: float
    reference_price: float
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftDetected:
    """A drift detector fired for `model` on `instrument`.

    `detector` names the detector (e.g. "adwin", "page_hinkley"), `stream` what it
    watched ("error" for prequential error, "feature:<name>" for a feature).
    Produced by `online_models`, routed to `hfl.events.drift`, and consumed by the
    risk gate, which may move the instrument to REDUCING.
    """

    drift_id: str
    instrument: str
    model: str
    detector: str
    stream: str
    value: float
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelMetrics:
    """Prequential scores of one model on one instrument at event time `ts_event`.

    `values` holds the cumulative metrics (accuracy, log_loss, roc_auc for
    classifiers; mae, rmse, r2 for regressors) and each as `rolling_<name>` over the
    latest labels, plus `rolling_accuracy` (direction hits) for both kinds.
    `memory_bytes` is the size of the model's state pickled without memoisation
    (`online_models.registry.state_size_bytes`): deterministic, unlike a resident-size
    estimate, which changes with dict capacities after a restore. `detail` says what
    an adaptive model currently chooses (a bandit's arm, an ensemble's weights).
    """

    metrics_id: str
    instrument: str
    model: str
    version_id: str
    role: ModelRole
    n_labelled: int
    n_pending: int
    evicted: int
    values: dict[str, float]
    memory_bytes: int
    detail: str
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersion:
    """A model instance created on an instrument: what it is and where it came from.

    `params_hash` identifies factory and parameters; `parent` is the version it
    replaced (after a drift), or empty. `created_at` is event time.
    """

    version_id: str
    instrument: str
    model: str
    factory: str
    params: str
    params_hash: str
    code_version: str
    parent: str
    created_at: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCheckpoint:
    """The pickled state of one instrument's model set, taken after tick `seq`.

    `blob` is the zlib-compressed pickle in base64; `sha256` the hex digest of the
    compressed bytes (`size_bytes` long), checked before anything is unpickled.
    `model`, `version_id` and `params_hash` name the champion when it was taken;
    `models` every model of the set. A fresh trading flow warm-starts from it.
    """

    checkpoint_id: str
    instrument: str
    model: str
    models: tuple[str, ...]
    version_id: str
    params_hash: str
    code_version: str
    seq: int
    tick_id: str
    size_bytes: int
    sha256: str
    blob: str
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCommand:
    """Promote `model` to champion, or roll the champion back, on `instrument` ('' = all)."""

    command_id: str
    action: ModelAction
    model: str
    instrument: str
    actor: str
    reason: str
    ts_event: int
    ts_init: int
