"""Drawdown control: a persisted high-water mark and the day's starting equity."""

from __future__ import annotations

from risk.domain.enums import TradingState
from risk.var import drawdown

_NS_PER_DAY = 86_400 * 1_000_000_000


class DrawdownGuard:
    """Track equity against its high-water mark and the day's start; say what state follows.

    The high-water mark and the day's opening equity live in this object, which lives in
    the gate's snapshot, so a restart never resets them. Days are UTC days of event time.

    >>> guard = DrawdownGuard(soft=0.05, hard=0.10, daily_loss=0.50)
    >>> guard.update(100.0, 0), guard.update(94.0, 1), guard.update(89.0, 2)
    ((None, ''), (<TradingState.REDUCING: 'reducing'>, 'drawdown'), \
(<TradingState.HALTED: 'halted'>, 'drawdown'))
    """

    __slots__ = ("_day", "_day_start", "daily_loss", "hard", "high_water_mark", "soft")

    def __init__(self, *, soft: float, hard: float, daily_loss: float) -> None:
        self.soft = soft
        self.hard = hard
        self.daily_loss = daily_loss
        self.high_water_mark = 0.0
        self._day = -1
        self._day_start = 0.0

    def drawdown(self, equity: float) -> float:
        """Return the fractional drawdown of `equity` from the high-water mark."""
        return drawdown(equity, self.high_water_mark)

    def day_loss(self, equity: float) -> float:
        """Return the fractional loss of `equity` since the day's first observation."""
        return drawdown(equity, self._day_start)

    def update(self, equity: float, ts_event: int) -> tuple[TradingState | None, str]:
        """Record `equity` at `ts_event`; return the state it calls for and the trigger."""
        day = ts_event // _NS_PER_DAY
        if day != self._day:
            self._day, self._day_start = day, equity
        self.high_water_mark = max(self.high_water_mark, equity)
        if self.day_loss(equity) >= self.daily_loss:
            return TradingState.HALTED, "daily_loss"
        current = self.drawdown(equity)
        if current >= self.hard:
            return TradingState.HALTED, "drawdown"
        if current >= self.soft:
            return TradingState.REDUCING, "drawdown"
        return None, ""
