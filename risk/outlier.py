"""Outlier screening of market data, per instrument: pure rules, one verdict per tick.

Each rule names one way a tick can be wrong; each has an action: dead-letter the tick
(reason `outlier_<rule>`), pass it with a flag, or ignore the rule.

- `price_jump`: the log move from the last accepted price is both large in absolute
  terms (>= `min_jump_ratio`) and large against the instrument's own recent moves
  (robust z = |r - median| / (1.4826 * MAD) >= `mad_threshold`). Both must hold, so a
  calm instrument's ordinary 2 % day is not a "10 sigma" outlier, and a volatile one's
  30 % bad print still is. A level the market really moved to is accepted at the
  `confirm_ticks`-th tick in a row that agrees with it (within `min_jump_ratio`): a
  crash or an unadjusted split costs `confirm_ticks - 1` ticks, never the rest of the
  stream.
- `crossed_quote` (bid > ask), `locked_quote` (bid == ask).
- `zero_size`: a trade of zero or negative size, or a negative quote size.
- `stale_timestamp`: received more than `max_age_ns` after the venue's event time.
- `future_timestamp`: the venue's event time is more than `max_skew_ns` after receipt.
- `out_of_order`: the venue's sequence went backwards for this instrument, venue and
  kind: the venue's trade id for trades, its sequence or update id for quotes (taken from
  the tick unless the caller passes one); ticks without one are not checked.
  Event time alone is not checked: after a failover the secondary venue's clock may
  sit slightly behind the primary's, and our own `seq` already orders the stream.

Logic reads time only from the tick (`ts_event`, `ts_init`), so a replay screens the same.
State is a small bounded object per instrument and pickles.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from statistics import median

from risk.domain.control import Alert
from risk.domain.enums import AlertSeverity, DecodeReason, TickKind
from risk.domain.ids import stable_id
from risk.domain.market import Tick

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
NS_PER_S = 1_000_000_000


class OutlierRule(StrEnum):
    """One way a tick can be wrong."""

    PRICE_JUMP = "price_jump"
    CROSSED_QUOTE = "crossed_quote"
    LOCKED_QUOTE = "locked_quote"
    ZERO_SIZE = "zero_size"
    STALE_TIMESTAMP = "stale_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    OUT_OF_ORDER = "out_of_order"

    @property
    def reason(self) -> DecodeReason:
        """The dead-letter reason: `outlier_<rule>`."""
        return DecodeReason(f"outlier_{self.value}")


class OutlierAction(StrEnum):
    """What a rule does with a tick it catches."""

    DEAD_LETTER = "dead_letter"
    FLAG = "flag"
    OFF = "off"


DEFAULT_ACTIONS: Mapping[OutlierRule, OutlierAction] = {
    OutlierRule.PRICE_JUMP: OutlierAction.DEAD_LETTER,
    OutlierRule.CROSSED_QUOTE: OutlierAction.DEAD_LETTER,
    OutlierRule.LOCKED_QUOTE: OutlierAction.FLAG,
    OutlierRule.ZERO_SIZE: OutlierAction.DEAD_LETTER,
    OutlierRule.STALE_TIMESTAMP: OutlierAction.FLAG,
    OutlierRule.FUTURE_TIMESTAMP: OutlierAction.FLAG,
    OutlierRule.OUT_OF_ORDER: OutlierAction.DEAD_LETTER,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class OutlierConfig:
    """Thresholds and the action of every rule (defaults: see `DEFAULT_ACTIONS`)."""

    window: int = 100
    min_history: int = 20
    mad_threshold: float = 10.0
    min_jump_ratio: float = 0.25
    confirm_ticks: int = 2
    max_age_ns: int = 60 * NS_PER_S
    max_skew_ns: int = 5 * NS_PER_S
    flag_alert_interval_ns: int = 60 * NS_PER_S  # per instrument and rule, in event time
    actions: Mapping[OutlierRule, OutlierAction] = field(
        default_factory=lambda: dict(DEFAULT_ACTIONS)
    )

    def __post_init__(self) -> None:
        if self.window < 2 or self.min_history < 2 or self.min_history > self.window:
            raise ValueError("need 2 <= min_history <= window")
        if self.mad_threshold <= 0 or self.min_jump_ratio <= 0 or self.confirm_ticks < 1:
            raise ValueError("mad_threshold, min_jump_ratio and confirm_ticks must be positive")
        if self.max_age_ns <= 0 or self.max_skew_ns <= 0 or self.flag_alert_interval_ns < 0:
            raise ValueError("max_age, max_skew must be positive, flag_alert_interval >= 0")

    def action(self, rule: OutlierRule) -> OutlierAction:
        """The configured action of `rule` (the default one when not configured)."""
        return self.actions.get(rule, DEFAULT_ACTIONS[rule])


@dataclass(frozen=True, slots=True, kw_only=True)
class OutlierVerdict:
    """What the screen decided: the rule that dead-letters the tick, and flags it keeps."""

    rejected: OutlierRule | None = None
    flags: tuple[OutlierRule, ...] = ()
    detail: str = ""

    @property
    def clean(self) -> bool:
        """True when no rule caught the tick."""
        return self.rejected is None and not self.flags


CLEAN = OutlierVerdict()


@dataclass(slots=True)
class InstrumentScreen:
    """The screen's memory of one instrument (bounded: `window` moves)."""

    moves: deque[float]
    last_price: float | None = None
    candidate: list[float] = field(default_factory=list)
    last_seq: dict[str, int] = field(default_factory=dict)


class OutlierScreen:
    """Screen ticks per instrument with the configured rules.

    >>> from risk.domain.enums import DecodeReason, TickKind
    >>> def trade(price, n):
    ...     return Tick(tick_id=str(n), instrument="X", seq=n, kind=TickKind.TRADE,
    ...                 price=price, size=1.0, ts_event=n, ts_init=n)
    >>> screen = OutlierScreen(OutlierConfig(min_history=3))
    >>> [screen.screen(trade(p, n)).rejected for n, p in enumerate([100, 101, 100, 101, 100])]
    [None, None, None, None, None]
    >>> screen.screen(trade(1000.0, 9)).rejected.reason.value
    'outlier_price_jump'
    """

    def __init__(self, config: OutlierConfig | None = None) -> None:
        self.config = config or OutlierConfig()
        self.instruments: dict[str, InstrumentScreen] = {}
        # (instrument, rule) -> [event time of its last flag alert, flags since]
        self.flag_alerts: dict[tuple[str, str], list[int]] = {}

    def flags_due(self, tick: Tick, verdict: OutlierVerdict) -> list[tuple[OutlierRule, int]]:
        """The flag alerts `verdict` makes due: (rule, flags it covers) per rule.

        A flagged tick passes; its flag is reported as an alert at most once per
        `flag_alert_interval_ns` of event time per instrument and rule, counting the
        flags since the previous alert, so a venue that locks its quotes all day raises
        one alert a minute, not one per tick. Bounded: one entry per instrument and rule.
        """
        due: list[tuple[OutlierRule, int]] = []
        for rule in verdict.flags:
            entry = self.flag_alerts.setdefault((tick.instrument, rule.value), [-(2**62), 0])
            entry[1] += 1
            if tick.ts_event - entry[0] >= self.config.flag_alert_interval_ns:
                due.append((rule, entry[1]))
                entry[0], entry[1] = tick.ts_event, 0
        return due

    def screen(self, tick: Tick, venue_seq: int | None = None) -> OutlierVerdict:
        """Screen one tick; update the instrument's memory only with what is accepted."""
        cfg = self.config
        state = self.instruments.get(tick.instrument)
        if state is None:
            state = self.instruments[tick.instrument] = InstrumentScreen(
                moves=deque(maxlen=cfg.window)
            )
        caught: list[tuple[OutlierRule, str]] = []
        kind = f"{tick.venue}:{tick.kind.value}" if tick.venue else tick.kind.value
        if venue_seq is None:
            venue_seq = tick.venue_trade_id if tick.kind is TickKind.TRADE else tick.venue_seq
        if tick.bid is not None and tick.ask is not None:
            if tick.bid > tick.ask:
                caught.append((OutlierRule.CROSSED_QUOTE, f"bid {tick.bid} > ask {tick.ask}"))
            elif tick.bid == tick.ask:
                caught.append((OutlierRule.LOCKED_QUOTE, f"bid = ask = {tick.bid}"))
        if (tick.kind is TickKind.TRADE and tick.size <= 0.0) or (
            (tick.bid_size is not None and tick.bid_size < 0.0)
            or (tick.ask_size is not None and tick.ask_size < 0.0)
        ):
            caught.append((OutlierRule.ZERO_SIZE, f"size {tick.size}"))
        age = tick.ts_init - tick.ts_event
        if age > cfg.max_age_ns:
            caught.append((OutlierRule.STALE_TIMESTAMP, f"{age / NS_PER_S:.3f}s old"))
        elif -age > cfg.max_skew_ns:
            caught.append((OutlierRule.FUTURE_TIMESTAMP, f"{-age / NS_PER_S:.3f}s ahead"))
        last_seq = state.last_seq.get(kind)
        if venue_seq is not None and last_seq is not None and venue_seq <= last_seq:
            caught.append((OutlierRule.OUT_OF_ORDER, f"venue seq {venue_seq} after {last_seq}"))
        jump = self._jump(state, tick.price)
        if jump is not None:
            caught.append((OutlierRule.PRICE_JUMP, jump))

        rejected: OutlierRule | None = None
        flags: list[OutlierRule] = []
        details: list[str] = []
        for rule, detail in caught:
            action = cfg.action(rule)
            if action is OutlierAction.OFF:
                continue
            details.append(f"{rule.value}: {detail}")
            if action is OutlierAction.DEAD_LETTER and rejected is None:
                rejected = rule
            elif action is OutlierAction.FLAG:
                flags.append(rule)
        if rejected is None:
            self._accept(state, tick, kind, venue_seq, jumped=jump is not None)
        if rejected is None and not flags:
            return CLEAN
        return OutlierVerdict(rejected=rejected, flags=tuple(flags), detail="; ".join(details))

    def _jump(self, state: InstrumentScreen, price: float) -> str | None:
        """Describe the price jump `price` makes, or None when it is an ordinary move."""
        cfg = self.config
        if state.last_price is None or price <= 0.0:
            return None
        move = math.log(price / state.last_price)
        if abs(move) < cfg.min_jump_ratio or len(state.moves) < cfg.min_history:
            state.candidate.clear()
            return None
        centre = median(state.moves)
        mad = median(abs(m - centre) for m in state.moves)
        scale = MAD_TO_SIGMA * mad
        z = math.inf if scale == 0.0 else abs(move - centre) / scale
        if z < cfg.mad_threshold:
            state.candidate.clear()
            return None
        # a new level is real once `confirm_ticks` ticks in a row agree with it
        if state.candidate and abs(math.log(price / state.candidate[-1])) >= cfg.min_jump_ratio:
            state.candidate.clear()
        state.candidate.append(price)
        if len(state.candidate) >= cfg.confirm_ticks:
            state.candidate.clear()
            state.last_price = price  # the market moved there: stop measuring from before
            return None
        return f"log move {move:+.4f}, robust z {z:.1f} >= {cfg.mad_threshold}"

    @staticmethod
    def _accept(
        state: InstrumentScreen, tick: Tick, kind: str, venue_seq: int | None, *, jumped: bool
    ) -> None:
        if state.last_price is not None and tick.price > 0.0 and not jumped:
            state.moves.append(math.log(tick.price / state.last_price))
        if tick.price > 0.0 and not jumped:
            state.last_price = tick.price
        if venue_seq is not None:
            state.last_seq[kind] = venue_seq


def flag_alert(tick: Tick, rule: OutlierRule, count: int, detail: str) -> Alert:
    """The `outlier_flag` alert for `count` ticks of `tick.instrument` that `rule` flagged
    (this one the latest); deterministic, so a replay raises the same alert."""
    return Alert(
        alert_id=stable_id("outlier_flag", tick.instrument, rule.value, tick.tick_id),
        name="outlier_flag",
        severity=AlertSeverity.WARNING,
        source="trading",
        subject=tick.instrument,
        message=(
            f"{rule.value}: {count} tick(s) flagged and passed, latest {tick.tick_id}: {detail}"
        ),
        ts_event=tick.ts_event,
        ts_init=tick.ts_init,
    )
