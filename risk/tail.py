"""Historical VaR and CVaR of a book that changes trade by trade, sorting as rarely as possible.

The book's P&L series is a sum of per-instrument series: holding value d more of
instrument i adds d r_i to it. The exact post-trade figures need a partial sort of the
whole series (`exact`); most budget checks only need to know the figures stay below a
budget, which upper bounds prove without sorting (`bound`), from two facts about
sample order statistics (ascending, 1-based; CVaR averages the k smallest):

- the m-th smallest of a + b is at least the m-th smallest of a plus min(b), so VaR
  and CVaR of a + d r_i exceed those of a by at most the worst one-period loss of
  d r_i;
- the sum of the k smallest of a + b is at least that of a plus that of b (CVaR is
  subadditive), so CVaR of a + d r_i exceeds that of a by at most CVaR(d r_i), which is
  d times the mean of r_i's k worst (or best, for d < 0) returns;
- and VaR never exceeds CVaR (VaR interpolates at or above the k-th smallest).

The bounds start from exact figures of a base book and add one move per instrument for
its net change since that base, so trades that cancel out (buy, then sell) also cancel
in the bound. An exact computation applies the changes and the trade to the series in
one product; when that very trade then joins the book, its exact figures become the
base.
Bounds hold to floating-point rounding.
"""

from __future__ import annotations

import numpy as np

from risk import var
from risk.var import Matrix, Vector

_UNCHANGED = (0.0, 0.0, 0.0)  # an instrument's entry in `_delta` before it changes


class HistoricalTail:
    """Exact and bounded historical VaR/CVaR (one period, money) of a changing book.

    Args:
        columns: Returns per instrument, one row per instrument, oldest sample first.
        book_pnl: The base book's P&L series (value held @ columns).
        confidence: VaR/CVaR confidence.
    """

    __slots__ = (
        "_base",
        "_book",
        "_columns",
        "_confidence",
        "_delta",
        "_exact",
        "_moves",
        "_tail_down",
        "_tail_up",
        "_worst_down",
        "_worst_up",
    )

    def __init__(self, columns: Matrix, book_pnl: Vector, confidence: float) -> None:
        self._columns = columns
        self._confidence = confidence
        self._book = book_pnl
        ordered = np.sort(columns, axis=1)
        tail = var.tail_size(columns.shape[1], confidence)
        # Per unit value held, long (down) and short (up): worst loss and CVaR.
        self._worst_down: list[float] = (-ordered[:, 0]).tolist()
        self._worst_up: list[float] = ordered[:, -1].tolist()
        self._tail_down: list[float] = (-ordered[:, :tail].mean(axis=1)).tolist()
        self._tail_up: list[float] = ordered[:, -tail:].mean(axis=1).tolist()
        # Upper bounds of the VaR and CVaR of `_book` (exact after a sort).
        self._base = var.historical_var_cvar(book_pnl, confidence)
        # Per instrument changed since the base: net value added, and its VaR and CVaR move.
        self._delta: dict[int, tuple[float, float, float]] = {}
        self._moves = (0.0, 0.0)  # Σ over `_delta` of each instrument's VaR and CVaR move
        # (index, value, VaR, CVaR, series) of the last exact post-trade book.
        self._exact: tuple[int, float, float, float, Vector] | None = None

    def _move(self, index: int, value: float) -> tuple[float, float]:
        """How much holding `value` of instrument `index` can add to VaR and to CVaR."""
        if value >= 0.0:
            return value * self._worst_down[index], value * self._tail_down[index]
        return -value * self._worst_up[index], -value * self._tail_up[index]

    def add(self, index: int, value: float) -> None:
        """Hold `value` more of instrument `index`."""
        exact, self._exact = self._exact, None
        if exact is not None and exact[0] == index and exact[1] == value:
            # That exact book holds every change since the base and this trade.
            self._base, self._book = exact[2:4], exact[4]
            self._delta.clear()
            self._moves = (0.0, 0.0)
            return
        delta = self._delta
        old, var_old, cvar_old = delta.get(index, _UNCHANGED)
        new = old + value
        var_new, cvar_new = self._move(index, new)
        delta[index] = (new, var_new, cvar_new)
        var_moves, cvar_moves = self._moves
        self._moves = (var_moves - var_old + var_new, cvar_moves - cvar_old + cvar_new)

    def bound(self, index: int, value: float) -> tuple[float, float]:
        """Upper bounds of VaR and CVaR if `value` more of instrument `index` were held."""
        old, var_old, cvar_old = self._delta.get(index, _UNCHANGED)
        var_new, cvar_new = self._move(index, old + value)
        var_moves, cvar_moves = self._moves
        base_var, base_cvar = self._base
        cvar_bound = base_cvar + cvar_moves - cvar_old + cvar_new
        return min(base_var + var_moves - var_old + var_new, cvar_bound), cvar_bound

    def exact(self, index: int, value: float) -> tuple[float, float]:
        """VaR and CVaR if `value` more of instrument `index` were held, from a sort.

        One matrix product applies every change since the base and the trade at once;
        the base itself moves only if that trade then joins the book (`add`).
        """
        held = np.zeros(len(self._columns))
        for changed, (amount, _, _) in self._delta.items():
            held[changed] = amount
        held[index] += value
        outcomes = held @ self._columns
        outcomes += self._book
        value_at_risk, shortfall = var.historical_var_cvar(outcomes, self._confidence)
        self._exact = (index, value, value_at_risk, shortfall, outcomes)
        return value_at_risk, shortfall
