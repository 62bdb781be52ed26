"""Drift detection on one instrument: the champion's prequential error and feature distributions.

River's ADWIN watches the champion's absolute prediction error and reports a rise
(a model getting worse; an improvement is no alarm). One Page-Hinkley test per
configured feature watches that feature for an upward shift (the market itself
changing, e.g. realized volatility jumping in a stressed regime). Each detection is
a `DriftDetected` event with a deterministic id; the caller routes it to the risk
gate and renews challengers.

The feature test is one-sided and runs on z-scores against a frozen baseline:
tick-level risk features are right-skewed and strongly autocorrelated, and a
two-sided test on raw values false-alarms on them (measured on the simulator: a
symmetric test with threshold 50 fired every ~60 s in a calm regime). With the
defaults (baseline 2,000 ticks, threshold 1,000, `delta` 0.5 standard deviations),
a calm-to-stressed switch is detected within 100 ticks (2 s at 50 ticks/s) and the
calm regime raised no alarm, on ten seeds (`tests/unit/test_drift.py`).

The error test is honest but jumpy on tick data: a direction classifier's error
wanders as SGD moves its weights, and ADWIN reports every lasting rise (measured on
the same calm streams: a rise every ~40 s even at `delta` 1e-5). It is therefore off
in `config/models.yaml` (`watch_error: false`), so that only real market change
restricts trading; switch it on where labels are less noisy (bars, longer horizons).

Detectors only see data, never the clock, so replays detect at the same ticks.
"""

from __future__ import annotations

import math
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
        watch_error: Whether ADWIN watches the champion's error at all.
        error_delta: ADWIN's confidence parameter (smaller: fewer, surer alarms).
        features: Names of the features to watch with Page-Hinkley.
        feature_threshold: Page-Hinkley's alarm threshold (`lambda`), in standard
            deviations of the feature's baseline.
        feature_min_instances: Values that form a feature's baseline (its mean and
            standard deviation) before Page-Hinkley watches it.
    """

    watch_error: bool = True
    error_delta: float = 0.002
    features: tuple[str, ...] = ()
    feature_threshold: float = 1000.0
    feature_min_instances: int = 2000


def drift_id(instrument: str, model: str, detector: str, stream: str, ts_event: int) -> str:
    """Id of a detection: stable across replays.

    >>> drift_id("X", "m", "adwin", "error", 1) == drift_id("X", "m", "adwin", "error", 1)
    True
    """
    return stable_id("drift", instrument, model, detector, stream, ts_event)


class _Standardised:
    """Page-Hinkley on a feature's z-score against a frozen baseline.

    Page-Hinkley's `delta` and `threshold` are in the units of its input, and raw
    features differ by orders of magnitude (a per-tick volatility is ~1e-5, an RSI
    ~50), so each feature is first standardised by the mean and standard deviation
    of its first `baseline_n` values (Welford). After an alarm the baseline and the
    test start again, so the new regime becomes the reference.
    """

    __slots__ = ("_count", "_m2", "_mean", "_std", "baseline_n", "detector", "threshold")

    def __init__(self, baseline_n: int, threshold: float) -> None:
        self.baseline_n = baseline_n
        self.threshold = threshold
        self.detector: Any = drift.PageHinkley(
            min_instances=1, delta=0.5, threshold=threshold, mode="up"
        )
        self._count = 0
        self._mean = self._m2 = 0.0
        self._std: float | None = None

    def update(self, value: float) -> bool:
        """Feed `value`; True when the test fires (then everything starts again)."""
        std = self._std
        if std is None:
            self._count += 1
            delta = value - self._mean
            self._mean += delta / self._count
            self._m2 += delta * (value - self._mean)
            if self._count == self.baseline_n:
                self._std = math.sqrt(self._m2 / self._count) or 1.0
            return False
        detector = self.detector
        detector.update((value - self._mean) / std)
        if not detector.drift_detected:
            return False
        self.__init__(self.baseline_n, self.threshold)  # type: ignore[misc]
        return True


class DriftMonitor:
    """ADWIN on a model's error plus Page-Hinkley per watched feature, for one instrument.

    Bounded: ADWIN compresses its window into exponential buckets (`max_buckets`
    per level) and Page-Hinkley keeps O(1) sums. Picklable.

    >>> monitor = DriftMonitor("X", DriftConfig(features=("vol",), feature_min_instances=5,
    ...                                          feature_threshold=1.0))
    >>> # The baseline is flat (std 0, so z-scores are in raw units); 5.0 is a jump.
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
        self._features = {
            name: _Standardised(config.feature_min_instances, config.feature_threshold)
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
        if not self._config.watch_error:
            return None
        adwin = self._adwin
        before = adwin.estimation
        adwin.update(error)
        # ADWIN flags any change of the mean; a model that got better is no alarm.
        if not adwin.drift_detected or adwin.estimation <= before:
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
            if detector.update(value):
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
