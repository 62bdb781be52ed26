"""Drift detection on one instrument: the champion's prequential error and feature distributions.

River's ADWIN watches the champion's absolute prediction error (a change in how
wrong the model is); one Page-Hinkley test per configured feature watches the
feature's distribution (a change in the market itself, e.g. realized volatility
jumping in a stressed regime). Each detection is a `DriftDetected` event with a
deterministic id; the caller routes it to the risk gate and resets challengers.

Detectors only see data, never the clock, so replays detect at the same ticks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from river import drift

from risk.domain.ids import stable_id
from risk.domain.model import DriftDetected

ERROR_STREAM = "error"
FEATURE_STREAM_PREFIX = "feature:"


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftConfig:
    """Detector settings.

    Attributes:
        error_delta: ADWIN's confidence parameter (smaller: fewer, surer alarms).
        features: Names of the features to watch with Page-Hinkley.
        feature_threshold: Page-Hinkley's alarm threshold (`lambda`).
        feature_min_instances: Observations before Page-Hinkley may alarm.
    """

    error_delta: float = 0.002
    features: tuple[str, ...] = ()
    feature_threshold: float = 50.0
    feature_min_instances: int = 30


def drift_id(instrument: str, model: str, detector: str, stream: str, ts_event: int) -> str:
    """Id of a detection: stable across replays.

    >>> drift_id("X", "m", "adwin", "error", 1) == drift_id("X", "m", "adwin", "error", 1)
    True
    """
    return stable_id("drift", instrument, model, detector, stream, ts_event)


class DriftMonitor:
    """ADWIN on a model's error plus Page-Hinkley per watched feature, for one instrument.

    Bounded: ADWIN compresses its window into exponential buckets (`max_buckets`
    per level) and Page-Hinkley keeps O(1) sums. Picklable.

    >>> monitor = DriftMonitor("X", DriftConfig(features=("vol",), feature_min_instances=5,
    ...                                          feature_threshold=1.0))
    >>> events = [monitor.on_features("m", {"vol": 0.1 if i < 50 else 5.0}, i)
    ...           for i in range(100)]
    >>> fired = [e for batch in events for e in batch]
    >>> (fired[0].stream, fired[0].detector, fired[0].ts_event)
    ('feature:vol', 'page_hinkley', 50)
    """

    __slots__ = ("_adwin", "_config", "_features", "instrument")

    def __init__(self, instrument: str, config: DriftConfig) -> None:
        """Start fresh detectors for `instrument`."""
        self.instrument = instrument
        self._config = config
        self._adwin: Any = drift.ADWIN(delta=config.error_delta)  # type: ignore[no-untyped-call]
        self._features: dict[str, Any] = {
            name: drift.PageHinkley(
                min_instances=config.feature_min_instances, threshold=config.feature_threshold
            )
            for name in config.features
        }

    def reset_error(self) -> None:
        """Forget the error history (the champion changed: a new model, a new error stream)."""
        self._adwin = drift.ADWIN(delta=self._config.error_delta)  # type: ignore[no-untyped-call]

    def on_error(self, model: str, error: float, ts_event: int) -> DriftDetected | None:
        """Feed one labelled prediction's error; return a detection if ADWIN fires.

        The detection's `ts_event` (and `ts_init`) is the event time of the tick that
        resolved the label, never the wall clock.
        """
        adwin = self._adwin
        adwin.update(error)
        if not adwin.drift_detected:
            return None
        return self._detected(model, "adwin", ERROR_STREAM, float(adwin.estimation), ts_event)

    def on_features(
        self, model: str, features: dict[str, float], ts_event: int
    ) -> list[DriftDetected]:
        """Feed one feature vector; return a detection per watched feature that drifted."""
        found: list[DriftDetected] = []
        for name, detector in self._features.items():
            value = features.get(name)
            if value is None:
                continue
            detector.update(value)
            if detector.drift_detected:
                stream = FEATURE_STREAM_PREFIX + name
                found.append(self._detected(model, "page_hinkley", stream, value, ts_event))
        return found

    def _detected(
        self, model: str, detector: str, stream: str, value: float, ts_event: int
    ) -> DriftDetected:
        return DriftDetected(
            drift_id=drift_id(self.instrument, model, detector, stream, ts_event),
            instrument=self.instrument,
            model=model,
            detector=detector,
            stream=stream,
            value=value,
            ts_event=ts_event,
            ts_init=ts_event,  # detection happens at the tick's event time
        )
