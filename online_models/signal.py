"""Turn predicted probabilities into direction changes, with hysteresis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from online_models.signal_event import signal_from
from online_models.signal_multifactor import MultiFactorConfig, MultiFactorEngine
from risk.domain.model import Prediction, Signal

FLAT = 0
LONG = 1
SHORT = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalConfig:
    """Probability thresholds of the long/flat/short hysteresis.

    Enter long at p >= `enter_long`, leave it at p < `exit_long`; enter short at
    p <= `enter_short`, leave it at p > `exit_short`. The gap between entry and
    exit keeps a probability hovering near a threshold from flipping the
    position every tick. No signal is raised before the model has learnt from
    `min_labelled` labels: an untrained model's probabilities are noise.

    Raises:
        ValueError: listing every problem, unless
            0 <= enter_short <= exit_short <= exit_long <= enter_long <= 1
            and min_labelled >= 0.
    """

    enter_long: float = 0.55
    exit_long: float = 0.50
    enter_short: float = 0.45
    exit_short: float = 0.50
    min_labelled: int = 200

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            msg = "invalid SignalConfig: " + "; ".join(problems)
            raise ValueError(msg)

    def problems(self) -> list[str]:
        """List what is wrong with these thresholds (empty when valid)."""
        found = [
            f"{name}={value} is outside [0, 1]"
            for name, value in (
                ("enter_long", self.enter_long),
                ("exit_long", self.exit_long),
                ("exit_short", self.exit_short),
                ("enter_short", self.enter_short),
            )
            if not 0.0 <= value <= 1.0  # also rejects NaN
        ]
        if not self.enter_long >= self.exit_long:
            found.append(f"enter_long={self.enter_long} < exit_long={self.exit_long}")
        if not self.exit_long >= self.exit_short:
            found.append(f"exit_long={self.exit_long} < exit_short={self.exit_short}")
        if not self.exit_short >= self.enter_short:
            found.append(f"exit_short={self.exit_short} < enter_short={self.enter_short}")
        if self.min_labelled < 0:
            found.append(f"min_labelled={self.min_labelled} is negative")
        return found


def next_direction(direction: int, probability_up: float, config: SignalConfig) -> int:
    """Return the direction after seeing `probability_up` while holding `direction`.

    An opposite entry threshold flips long <-> short directly; an exit threshold
    only goes flat.

    >>> cfg = SignalConfig()
    >>> [next_direction(FLAT, p, cfg) for p in (0.55, 0.52, 0.45)]
    [1, 0, -1]
    >>> [next_direction(LONG, p, cfg) for p in (0.50, 0.49, 0.45)]
    [1, 0, -1]
    >>> [next_direction(SHORT, p, cfg) for p in (0.50, 0.51, 0.55)]
    [-1, 0, 1]
    """
    if direction == LONG:
        if probability_up <= config.enter_short:
            return SHORT
        return FLAT if probability_up < config.exit_long else LONG
    if direction == SHORT:
        if probability_up >= config.enter_long:
            return LONG
        return FLAT if probability_up > config.exit_short else SHORT
    if probability_up >= config.enter_long:
        return LONG
    if probability_up <= config.enter_short:
        return SHORT
    return FLAT


class SignalState:
    """The current direction on one instrument; emits a `Signal` only when it changes.

    Picklable (Bytewax snapshots it). Labelled predictions (version 1) describe
    the past and are ignored; so is everything before `min_labelled` labels.

    >>> state = SignalState(SignalConfig(min_labelled=0))
    >>> def tick(i, p):
    ...     prediction = Prediction(tick_id=f"t{i}", instrument="AAPL", model="logistic",
    ...                             horizon_ns=5, probability_up=p, ts_event=i, ts_init=i)
    ...     signal = state.update(prediction, n_labelled=1, reference_price=100.0 + i)
    ...     return None if signal is None else signal.direction
    >>> [tick(i, p) for i, p in enumerate([0.52, 0.56, 0.51, 0.49, 0.44, 0.50, 0.60])]
    [None, 1, None, 0, -1, None, 1]
    """

    __slots__ = ("config", "direction")

    def __init__(self, config: SignalConfig | None = None) -> None:
        """Start flat under `config` (the defaults when None)."""
        self.config = config if config is not None else SignalConfig()
        self.direction = FLAT

    def update(
        self,
        prediction: Prediction,
        n_labelled: int,
        reference_price: float,
        peers: Sequence[float] = (),
    ) -> Signal | None:
        """Move the direction on `prediction`; return the `Signal` if it changed.

        Args:
            prediction: The model's fresh prediction (version 0) for a tick.
            n_labelled: Labels the model has learnt from so far.
            reference_price: The price of the prediction's tick.
            peers: The challengers' probabilities on the tick (unused here).

        Returns:
            The new `Signal`, or None when the direction is unchanged.
        """
        config = self.config
        if prediction.version != 0 or n_labelled < config.min_labelled:
            return None
        direction = next_direction(self.direction, prediction.probability_up, config)
        if direction == self.direction:
            return None
        self.direction = direction
        return signal_from(prediction, direction, reference_price)


SignalEngineConfig = SignalConfig | MultiFactorConfig
SignalEngine = SignalState | MultiFactorEngine


def signal_engine(config: SignalEngineConfig) -> SignalEngine:
    """The engine `config` configures: today's hysteresis or the multi-factor one.

    >>> [type(signal_engine(c)).__name__ for c in (SignalConfig(), MultiFactorConfig())]
    ['SignalState', 'MultiFactorEngine']
    """
    if isinstance(config, MultiFactorConfig):
        return MultiFactorEngine(config)
    return SignalState(config)
