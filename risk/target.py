"""Target positions: how much the gate wants to hold in each instrument.

`vol_target` sizes each signal alone when it arrives (`risk.sizing.target_quantity`,
volatility-targeted when a volatility target is set); the portfolio methods hold the
targets `Sizer.rebalance` builds from every instrument's latest view on the risk
model's schedule (`risk.optimizer`). Either way a target above the instrument's
volatility limit is scaled down when the limits say so.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from risk import optimizer
from risk.book import ZERO
from risk.domain.money import quantize, quantize_lot
from risk.limit import RiskLimits
from risk.monitor import PortfolioRisk
from risk.sizing import SizingMethod, target_quantity, volatility_target_notional


class Sizer:
    """The account's sizing: the method, its parameters, and what it keeps between signals."""

    __slots__ = (
        "_notionals",
        "_targets",
        "_views",
        "gross_notional",
        "lot_size",
        "method",
        "per_signal",
        "target_notional",
        "volatility_target",
    )

    def __init__(
        self,
        method: SizingMethod,
        *,
        target_notional: Decimal,
        lot_size: Decimal,
        volatility_target: float | None,
        gross_notional: Decimal,
    ) -> None:
        self.method = method
        # Each signal sized alone (`vol_target`), not the whole book; read per signal.
        self.per_signal = method is SizingMethod.VOL_TARGET
        self.target_notional = target_notional
        self.lot_size = lot_size
        self.volatility_target = volatility_target
        # Portfolio sizing: the most gross capital the book deploys.
        self.gross_notional = gross_notional
        # Portfolio sizing: each instrument's latest view (signal direction) and the
        # target positions built from them on the risk model's schedule.
        self._views: dict[str, int] = {}
        self._targets: dict[str, Decimal] = {}
        # Per instrument: (equity, volatility, notional) of the last `_notional`.
        self._notionals: dict[str, tuple[float, float | None, Decimal]] = {}

    def note_view(self, instrument: str, direction: int) -> None:
        """Keep `direction` as `instrument`'s view for the next rebalance."""
        self._views[instrument] = direction

    def target(
        self,
        direction: int,
        reference: float,
        instrument: str,
        limits: RiskLimits,
        *,
        volatility: float | None,
        equity: float,
    ) -> Decimal:
        """The signal's target position, scaled down above the instrument's volatility
        limit when so configured.

        `vol_target` sizes the signal alone: volatility-targeted (capped at
        `target_notional`) when `volatility_target` is set. Portfolio methods hold the
        instrument's target from the last `rebalance` (the signal's direction counts
        from the next one on). `volatility` is the instrument's realised volatility.
        """
        if self.per_signal:
            target = target_quantity(
                direction,
                reference,
                target_notional=self._notional(instrument, volatility, equity),
                lot_size=self.lot_size,
            )
        else:
            target = self._targets.get(instrument, ZERO)
        if (
            limits.scale_on_volatility
            and target
            and volatility is not None
            and volatility > limits.max_volatility
        ):
            factor = quantize(limits.max_volatility / volatility)
            target = quantize_lot(target * factor, self.lot_size)
        return target

    def _notional(self, instrument: str, volatility: float | None, equity: float) -> Decimal:
        """What one signal on `instrument` may hold: `target_notional`, or with a
        volatility target `volatility_target_notional`, kept per instrument until the
        equity or the volatility it was computed from changes (once a second at most).
        """
        if self.volatility_target is None:
            return self.target_notional
        kept = self._notionals.get(instrument)
        if kept is not None and kept[0] == equity and kept[1] == volatility:
            return kept[2]
        notional = volatility_target_notional(
            equity, self.volatility_target, volatility, cap=self.target_notional
        )
        self._notionals[instrument] = (equity, volatility, notional)
        return notional

    def rebalance(self, risk: PortfolioRisk, equity: float, prices: dict[str, float]) -> None:
        """Rebuild the portfolio's target positions from the views and the new returns.

        Portfolio sizing only: `risk.optimizer.portfolio_weights` on the risk model's
        return window, scaled to the volatility target (at most `gross_notional`), in
        whole lots at the latest reference `prices`. Instruments without a view, or
        without a price, get no position.
        """
        returns = risk.returns()
        if self.per_signal or returns is None:
            return
        names = risk.instruments[: returns.shape[1]]
        directions = np.array([self._views.get(name, 0) for name in names], dtype=np.float64)
        weights = optimizer.portfolio_weights(self.method, directions, returns)
        capital = optimizer.portfolio_capital(
            weights,
            returns,
            risk.periods_per_year,
            equity=equity,
            volatility_target=self.volatility_target,
            cap=self.gross_notional,
        )
        priced = {name: prices[name] for name in names if name in prices}
        chosen = {
            name: float(weight)
            for name, weight in zip(names, weights, strict=True)
            if weight and name in priced
        }
        self._targets = optimizer.target_positions(chosen, capital, priced, self.lot_size)
