"""Performance statistics of a run: returns at a declared frequency, risk-adjusted ratios, trades.

Every return-based figure equals `empyrical-reloaded` 0.7.1 on the same returns within
1e-9 relative (tests/unit/risk/test_performance.py, on River's real SP500Stocks and the
replayable S&P 500 price CSV). Where empyrical has no such figure the formula is given
here and in the function's docstring.

Frequency. Returns are sampled from the equity curve at a declared `Frequency`, daily by
default (the last equity of each UTC day; the run's first equity opens the first day).
Annualisation multiplies by that frequency's periods per year (252 for daily, as
empyrical). Intraday frequencies annualise only when asked for (`Frequency.intraday`),
with their factor (trading seconds per year / seconds per period) printed beside the
figure: a per-second Sharpe times sqrt(5.9 million) is not a number anyone should quote.

Conventions (as empyrical, risk-free rate 0 unless given):
- total return = prod(1 + r) - 1; annual return (CAGR) = (1 + total)^(P / n) - 1 with P
  periods per year and n returns;
- volatility = sample standard deviation (ddof 1) * sqrt(P);
- Sharpe = mean(r - rf) / std(r - rf, ddof 1) * sqrt(P); +-inf for constant returns;
- Sortino = mean(r - t) * P / downside risk, downside risk = sqrt(mean(min(r - t, 0)^2))
  * sqrt(P);
- max drawdown = min over time of wealth / running peak - 1 (negative), wealth starting at
  1 before the first return; Calmar = annual return / |max drawdown| (NaN without a loss);
- Omega = sum of (r - rf - t) above 0 / -sum of those below 0, the threshold t per
  period from an annual required return: (1 + R)^(1/P) - 1;
- tail ratio = |95th percentile| / |5th percentile| (linear interpolation);
- VaR = the `1 - confidence` percentile of r (negative for a loss); CVaR = the mean of
  the int((n - 1)(1 - confidence)) + 1 worst returns; both per period, as empyrical;
- beta = cov(r, m) / var(m) with population moments; alpha = (1 + mean(r - beta m))^P - 1
  (risk-free 0), as `empyrical.alpha_beta`.

Documented here (empyrical has none):
- drawdown duration: the longest run of consecutive periods whose wealth is below its
  running peak (a drawdown still open at the end counts up to the end), in periods;
- trades are round trips per instrument (`round_trips`): a trade opens when the position
  leaves zero and closes when it returns to zero; a fill that crosses zero closes the
  trade at that fill and opens a new one with the remainder. Its P&L is realised against
  the average entry price, minus every fee paid while it was open (an opening fill's fee
  is split by quantity when the fill crosses zero);
- win rate = trades with P&L > 0 / all closed trades; profit factor = sum of winning P&L /
  -sum of losing P&L (NaN without a loss); expectancy = mean trade P&L; average win and
  average loss = mean P&L of the winning and of the losing trades;
- turnover = mean over periods of traded notional / equity (pyfolio's definition);
  exposure = mean over periods of gross position value / equity, with the share of
  periods holding any position (time in market).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND
TRADING_DAYS_PER_YEAR = 252
TRADING_SECONDS_PER_DAY = 23_400  # 6.5 hours, a US equity session


@dataclass(frozen=True, slots=True, kw_only=True)
class Frequency:
    """The sampling frequency of returns and how many such periods make a year.

    Attributes:
        name: What is printed beside annualised figures ("daily", "1min").
        period_ns: Event time per period: equity is sampled at the end of each one.
        periods_per_year: The annualisation factor P.
        is_intraday: True when the period is shorter than a day (its factor is printed).

    >>> DAILY.periods_per_year, Frequency.intraday(60).periods_per_year
    (252.0, 98280.0)
    """

    name: str
    period_ns: int
    periods_per_year: float
    is_intraday: bool = False

    @classmethod
    def intraday(
        cls,
        seconds: int,
        *,
        trading_seconds_per_day: int = TRADING_SECONDS_PER_DAY,
        trading_days_per_year: int = TRADING_DAYS_PER_YEAR,
    ) -> Frequency:
        """Return a sub-daily frequency annualised by trading seconds per year / `seconds`."""
        if seconds <= 0 or seconds >= 86_400:
            msg = f"an intraday period must be between 1 s and a day, got {seconds} s"
            raise ValueError(msg)
        name = f"{seconds // 60}min" if seconds % 60 == 0 else f"{seconds}s"
        return cls(
            name=name,
            period_ns=seconds * NS_PER_SECOND,
            periods_per_year=trading_seconds_per_day * trading_days_per_year / seconds,
            is_intraday=True,
        )

    def describe(self) -> str:
        """Say how figures are annualised, printing the factor.

        >>> Frequency.intraday(60).describe()
        '1min returns, annualised by 98280 periods per year (intraday, as asked)'
        """
        text = f"{self.name} returns, annualised by {self.periods_per_year:.10g} periods per year"
        return text + (" (intraday, as asked)" if self.is_intraday else "")


DAILY = Frequency(name="daily", period_ns=NS_PER_DAY, periods_per_year=float(TRADING_DAYS_PER_YEAR))
WEEKLY = Frequency(name="weekly", period_ns=7 * NS_PER_DAY, periods_per_year=52.0)


def parse_frequency(text: str) -> Frequency:
    """Return the frequency named by `text`: daily, weekly, or an intraday Ns / Nmin / Nh.

    >>> parse_frequency("5min").period_ns // NS_PER_SECOND, parse_frequency("daily").name
    (300, 'daily')
    """
    lowered = text.strip().lower()
    if lowered in ("daily", "1d", "d"):
        return DAILY
    if lowered in ("weekly", "1w", "w"):
        return WEEKLY
    for suffix, seconds in (("min", 60), ("h", 3_600), ("s", 1)):
        number = lowered.removesuffix(suffix)
        if number != lowered and number.isdigit():
            return Frequency.intraday(int(number) * seconds)
    msg = f"unknown frequency {text!r}: use daily, weekly, or Ns, Nmin, Nh"
    raise ValueError(msg)


# -- sampling ------------------------------------------------------------------------------


def sample_equity(
    ts_ns: Sequence[int] | npt.NDArray[np.int64],
    equity: Sequence[float] | Vector,
    period_ns: int,
) -> tuple[npt.NDArray[np.int64], Vector]:
    """Return the equity at the end of each period that has observations, and when.

    The first observation opens the first period, so a run that spans k periods gives
    k + 1 values (k returns). Observations must be in event-time order.

    >>> day = NS_PER_DAY
    >>> ts, values = sample_equity([0, 5, day + 1, day + 2, 3 * day], [100, 101, 99, 98, 97], day)
    >>> values.tolist(), (ts // day).tolist()
    ([100.0, 101.0, 98.0, 97.0], [0, 0, 1, 3])
    """
    times = np.asarray(ts_ns, dtype=np.int64)
    values = np.asarray(equity, dtype=np.float64)
    if times.size == 0:
        return times, values
    if np.any(np.diff(times) < 0):
        msg = "equity observations must be in event-time order"
        raise ValueError(msg)
    bucket = times // period_ns
    last = np.flatnonzero(np.append(bucket[1:] != bucket[:-1], True))
    return np.concatenate((times[:1], times[last])), np.concatenate((values[:1], values[last]))


def simple_returns(equity: Sequence[float] | Vector) -> Vector:
    """Period-over-period simple returns of an equity curve.

    >>> simple_returns([100.0, 110.0, 99.0]).round(4).tolist()
    [0.1, -0.1]
    """
    values = np.asarray(equity, dtype=np.float64)
    returns: Vector = values[1:] / values[:-1] - 1.0
    return returns


# -- return statistics (equal to empyrical) ------------------------------------------------


def total_return(returns: Vector) -> float:
    """Compounded return over the whole series.

    >>> round(total_return(np.array([0.1, -0.1])), 6)
    -0.01
    """
    if returns.size == 0:
        return math.nan
    return float(np.prod(returns + 1.0)) - 1.0


def annual_return(returns: Vector, periods_per_year: float) -> float:
    """Compounded annual growth rate (CAGR).

    >>> round(annual_return(np.full(252, 0.001), 252), 6)
    0.286434
    """
    if returns.size == 0:
        return math.nan
    years = returns.size / periods_per_year
    return float((1.0 + total_return(returns)) ** (1.0 / years)) - 1.0


def annual_volatility(returns: Vector, periods_per_year: float) -> float:
    """Sample standard deviation scaled to a year; NaN with fewer than two returns.

    >>> round(annual_volatility(np.array([0.01, -0.01, 0.02, 0.0]), 252), 6)
    0.204939
    """
    if returns.size < 2:
        return math.nan
    return float(np.std(returns, ddof=1)) * math.sqrt(periods_per_year)


def sharpe_ratio(returns: Vector, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Annualised Sharpe ratio; NaN with fewer than two returns, +-inf for constant ones.

    >>> round(sharpe_ratio(np.array([0.01, 0.02, 0.0]), 252), 4)
    15.8745
    """
    if returns.size < 2:
        return math.nan
    excess = returns - risk_free
    if float(excess.max()) == float(excess.min()):  # std would be a rounding residue
        mean = float(np.mean(excess))
        return math.copysign(math.inf, mean) if mean else math.nan
    std = float(np.std(excess, ddof=1))
    return float(np.mean(excess)) / std * math.sqrt(periods_per_year)


def downside_risk(returns: Vector, periods_per_year: float, required_return: float = 0.0) -> float:
    """Annualised root mean square of the returns' shortfall below `required_return`.

    >>> round(downside_risk(np.array([0.01, -0.02, 0.0, -0.01]), 1), 6)
    0.01118
    """
    if returns.size == 0:
        return math.nan
    below = np.minimum(returns - required_return, 0.0)
    return math.sqrt(float(np.mean(below * below))) * math.sqrt(periods_per_year)


def sortino_ratio(returns: Vector, periods_per_year: float, required_return: float = 0.0) -> float:
    """Annualised mean excess return over annualised downside risk; inf without a shortfall.

    >>> round(sortino_ratio(np.array([0.01, -0.02, 0.03, 0.0, -0.01]), 252), 6)
    3.174902
    """
    if returns.size < 2:
        return math.nan
    mean = float(np.mean(returns - required_return)) * periods_per_year
    risk = downside_risk(returns, periods_per_year, required_return)
    if risk == 0.0:
        return math.copysign(math.inf, mean) if mean else math.nan
    return mean / risk


def drawdown_series(returns: Vector) -> Vector:
    """Wealth over its running peak minus one after each return (0 at a new high).

    >>> drawdown_series(np.array([0.1, -0.5, 0.2])).round(4).tolist()
    [0.0, -0.5, -0.4]
    """
    wealth = np.cumprod(np.concatenate(([1.0], returns + 1.0)))
    peaks = np.maximum.accumulate(wealth)
    series: Vector = (wealth / peaks - 1.0)[1:]
    return series


def max_drawdown(returns: Vector) -> float:
    """Largest peak-to-trough loss of the compounded returns, as a negative fraction.

    >>> round(max_drawdown(np.array([0.1, -0.5, 0.2])), 4)
    -0.5
    """
    if returns.size == 0:
        return 0.0
    return min(float(np.min(drawdown_series(returns))), 0.0)


def max_drawdown_duration(returns: Vector) -> int:
    """Longest run of consecutive periods spent below a previous peak (see module docs).

    >>> max_drawdown_duration(np.array([0.1, -0.1, 0.05, 0.1, -0.01]))
    2
    """
    longest = current = 0
    for under in (drawdown_series(returns) < 0.0).tolist():
        current = current + 1 if under else 0
        longest = max(longest, current)
    return longest


def calmar_ratio(returns: Vector, periods_per_year: float) -> float:
    """Annual return over the magnitude of the max drawdown; NaN without any drawdown.

    >>> round(calmar_ratio(np.array([0.1, -0.05, 0.02]), 252), 2)
    4238.07
    """
    worst = max_drawdown(returns)
    if worst >= 0.0:
        return math.nan
    ratio = annual_return(returns, periods_per_year) / abs(worst)
    return math.nan if math.isinf(ratio) else ratio


def omega_ratio(
    returns: Vector,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
    *,
    risk_free: float = 0.0,
    required_return: float = 0.0,
) -> float:
    """Probability-weighted gains over losses around a threshold (see module docs).

    `required_return` is annual; `periods_per_year` converts it to one period.

    >>> round(omega_ratio(np.array([0.01, -0.02, 0.03, 0.0, -0.01])), 6)
    1.333333
    """
    if returns.size < 2 or required_return <= -1.0:
        return math.nan
    threshold = (1.0 + required_return) ** (1.0 / periods_per_year) - 1.0
    if periods_per_year == 1:
        threshold = required_return
    excess = returns - risk_free - threshold
    gains = float(np.sum(excess[excess > 0.0]))
    losses = -float(np.sum(excess[excess < 0.0]))
    return gains / losses if losses > 0.0 else math.nan


def tail_ratio(returns: Vector) -> float:
    """|95th percentile| over |5th percentile| of the returns.

    >>> round(tail_ratio(np.arange(-10.0, 11.0)), 6)
    1.0
    """
    if returns.size == 0:
        return math.nan
    low, high = np.percentile(returns, [5.0, 95.0])
    with np.errstate(divide="ignore", invalid="ignore"):  # as empyrical: inf or NaN
        return float(np.abs(high) / np.abs(low))


def value_at_risk(returns: Vector, confidence: float = 0.95) -> float:
    """Historical VaR: the `1 - confidence` percentile of the returns (negative = loss).

    >>> value_at_risk(np.array([-3.0, -1.0, 0.0, 1.0, 2.0]), 0.75)
    -1.0
    """
    return float(np.percentile(returns, 100.0 * (1.0 - confidence)))


def conditional_value_at_risk(returns: Vector, confidence: float = 0.95) -> float:
    """Historical CVaR: mean of the int((n - 1)(1 - confidence)) + 1 worst returns.

    >>> conditional_value_at_risk(np.array([-3.0, -1.0, 0.0, 1.0, 2.0]), 0.75)
    -2.0
    """
    if returns.size == 0:
        return math.nan
    cutoff = int((returns.size - 1) * (1.0 - confidence))
    return float(np.mean(np.partition(returns, cutoff)[: cutoff + 1]))


def alpha_beta(returns: Vector, benchmark: Vector, periods_per_year: float) -> tuple[float, float]:
    """Annualised alpha and beta of `returns` regressed on `benchmark` (risk-free 0).

    >>> a, b = alpha_beta(np.array([0.02, -0.02, 0.04]), np.array([0.01, -0.01, 0.02]), 1)
    >>> round(a, 12), round(b, 12)
    (0.0, 2.0)
    """
    if returns.size < 2 or returns.shape != benchmark.shape:
        return math.nan, math.nan
    centered = benchmark - benchmark.mean()
    variance = float(np.mean(centered * centered))
    if variance < 1e-30:
        return math.nan, math.nan
    slope = float(np.mean(centered * returns)) / variance
    residual = float(np.mean(returns - slope * benchmark))
    return float((1.0 + residual) ** periods_per_year) - 1.0, slope


# -- trades --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Execution:
    """One fill as the trade statistics need it: signed quantity (+ buy, - sell)."""

    instrument: str
    ts_event: int
    quantity: float
    price: float
    fee: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """A closed round trip of one instrument (see module docs)."""

    instrument: str
    opened_ns: int
    closed_ns: int
    side: int  # +1 long, -1 short
    quantity: float  # largest absolute position held
    pnl: float  # realised, net of fees

    @property
    def holding_ns(self) -> int:
        """Event time the trade was open."""
        return self.closed_ns - self.opened_ns


@dataclass(slots=True)
class _OpenTrade:
    opened_ns: int
    side: int
    position: float = 0.0
    average_price: float = 0.0
    pnl: float = 0.0
    peak: float = 0.0


_QUANTITY_EPSILON = 1e-12


def round_trips(executions: Iterable[Execution]) -> list[Trade]:
    """Return the closed round trips of `executions` (in event-time order), oldest first.

    >>> fills = [Execution(instrument="A", ts_event=0, quantity=2, price=10, fee=0.1),
    ...          Execution(instrument="A", ts_event=1, quantity=-3, price=12, fee=0.3),
    ...          Execution(instrument="A", ts_event=2, quantity=1, price=11)]
    >>> [(t.side, round(t.pnl, 6)) for t in round_trips(fills)]
    [(1, 3.7), (-1, 0.9)]
    """
    open_trades: dict[str, _OpenTrade] = {}
    closed: list[Trade] = []
    for fill in executions:
        remaining, fee = fill.quantity, fill.fee
        while abs(remaining) > _QUANTITY_EPSILON:
            trade = open_trades.get(fill.instrument)
            if trade is None:
                trade = _OpenTrade(opened_ns=fill.ts_event, side=1 if remaining > 0 else -1)
                open_trades[fill.instrument] = trade
            if (remaining > 0) == (trade.side > 0):  # adds to the position
                new_position = trade.position + remaining
                trade.average_price = (
                    trade.average_price * trade.position + fill.price * remaining
                ) / new_position
                trade.position = new_position
                trade.peak = max(trade.peak, abs(new_position))
                trade.pnl -= fee
                break
            closing = -remaining if abs(remaining) <= abs(trade.position) else trade.position
            share = closing / -remaining  # of this fill's quantity (and fee) used to close
            trade.pnl += closing * (fill.price - trade.average_price) - fee * share
            trade.position -= closing
            remaining += closing
            fee -= fee * share
            if abs(trade.position) <= _QUANTITY_EPSILON:
                closed.append(
                    Trade(
                        instrument=fill.instrument,
                        opened_ns=trade.opened_ns,
                        closed_ns=fill.ts_event,
                        side=trade.side,
                        quantity=trade.peak,
                        pnl=trade.pnl,
                    )
                )
                del open_trades[fill.instrument]
    return closed


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeStatistics:
    """Win rate, profit factor, expectancy and average win/loss of closed trades."""

    trades: int
    win_rate: float
    profit_factor: float
    expectancy: float
    average_win: float
    average_loss: float


def trade_statistics(pnl: Sequence[float] | Vector) -> TradeStatistics:
    """Summarise closed trades' P&L (see module docs for the formulas).

    >>> s = trade_statistics([3.0, -1.0, 2.0, -2.0])
    >>> s.win_rate, s.profit_factor, s.expectancy, s.average_win, s.average_loss
    (0.5, 1.6666666666666667, 0.5, 2.5, -1.5)
    """
    values = np.asarray(pnl, dtype=np.float64)
    wins, losses = values[values > 0.0], values[values < 0.0]
    gross_loss = -float(losses.sum())
    return TradeStatistics(
        trades=int(values.size),
        win_rate=wins.size / values.size if values.size else math.nan,
        profit_factor=float(wins.sum()) / gross_loss if gross_loss > 0.0 else math.nan,
        expectancy=float(values.mean()) if values.size else math.nan,
        average_win=float(wins.mean()) if wins.size else math.nan,
        average_loss=float(losses.mean()) if losses.size else math.nan,
    )


def turnover(traded_notional: Vector, equity: Vector) -> float:
    """Mean per-period traded notional over equity (pyfolio's turnover).

    >>> turnover(np.array([50.0, 0.0, 100.0]), np.array([100.0, 100.0, 200.0]))
    0.3333333333333333
    """
    if traded_notional.size == 0:
        return math.nan
    return float(np.mean(traded_notional / equity))


def exposure(gross_value: Vector, equity: Vector) -> tuple[float, float]:
    """Mean gross exposure (position value / equity) and the share of periods in the market.

    >>> exposure(np.array([0.0, 50.0, 150.0]), np.array([100.0, 100.0, 100.0]))
    (0.6666666666666666, 0.6666666666666666)
    """
    if gross_value.size == 0:
        return math.nan, math.nan
    return float(np.mean(np.abs(gross_value) / equity)), float(np.mean(gross_value != 0.0))


# -- everything at once --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Performance:
    """Every return statistic of one return series at one frequency (NaN when undefined)."""

    frequency: Frequency
    periods: int
    total_return: float
    annual_return: float
    annual_volatility: float
    sharpe: float
    sortino: float
    calmar: float
    omega: float
    max_drawdown: float
    max_drawdown_periods: int
    tail_ratio: float
    var: float
    cvar: float
    confidence: float
    alpha: float
    beta: float


def performance(
    returns: Vector,
    frequency: Frequency = DAILY,
    *,
    benchmark: Vector | None = None,
    confidence: float = 0.95,
) -> Performance:
    """Compute every return statistic of `returns` sampled at `frequency`.

    >>> p = performance(np.array([0.01, -0.02, 0.03, 0.0, -0.01]))
    >>> p.periods, round(p.sharpe, 6), round(p.max_drawdown, 6)
    (5, 1.650553, -0.02)
    """
    per_year = frequency.periods_per_year
    alpha, beta = (
        alpha_beta(returns, benchmark, per_year) if benchmark is not None else (math.nan, math.nan)
    )
    many = returns.size > 0
    return Performance(
        frequency=frequency,
        periods=int(returns.size),
        total_return=total_return(returns),
        annual_return=annual_return(returns, per_year),
        annual_volatility=annual_volatility(returns, per_year),
        sharpe=sharpe_ratio(returns, per_year),
        sortino=sortino_ratio(returns, per_year),
        calmar=calmar_ratio(returns, per_year) if many else math.nan,
        omega=omega_ratio(returns, per_year),
        max_drawdown=max_drawdown(returns) if many else math.nan,
        max_drawdown_periods=max_drawdown_duration(returns),
        tail_ratio=tail_ratio(returns),
        var=value_at_risk(returns, confidence) if many else math.nan,
        cvar=conditional_value_at_risk(returns, confidence),
        confidence=confidence,
        alpha=alpha,
        beta=beta,
    )


# -- selection bias ------------------------------------------------------------------------

EULER_MASCHERONI = 0.5772156649015329


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, periods: int, skew: float, kurtosis: float
) -> float:
    """Probability that the true Sharpe exceeds `benchmark` (Bailey and López de Prado, 2012).

    PSR = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - skew SR + (kurtosis - 1) / 4 SR^2)), with
    per-period (not annualised) Sharpe ratios, T returns, and Pearson kurtosis (3 for a
    normal distribution).

    >>> round(probabilistic_sharpe_ratio(0.1, 0.0, 250, 0.0, 3.0), 6)
    0.942261
    """
    denominator = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if periods < 2 or denominator <= 0.0:
        return math.nan
    z = (sharpe - benchmark) * math.sqrt(periods - 1) / math.sqrt(denominator)
    return NormalDist().cdf(z)


def expected_max_sharpe(trials: int, variance: float) -> float:
    """Expected maximum of `trials` Sharpe ratios with zero mean and `variance` across trials.

    SR0 = sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e))), g the Euler-Mascheroni
    constant (Bailey and López de Prado, 2014, "The Deflated Sharpe Ratio").

    >>> round(expected_max_sharpe(100, 1.0), 4)
    2.5306
    """
    if trials < 2:
        return 0.0
    normal = NormalDist()
    gamma = EULER_MASCHERONI
    return math.sqrt(variance) * (
        (1.0 - gamma) * normal.inv_cdf(1.0 - 1.0 / trials)
        + gamma * normal.inv_cdf(1.0 - 1.0 / (trials * math.e))
    )


def deflated_sharpe_ratio(
    sharpe: float,
    *,
    trials: int,
    trial_variance: float,
    periods: int,
    skew: float,
    kurtosis: float,
) -> float:
    """Probability that the best of `trials` strategies has a true Sharpe above zero.

    The probabilistic Sharpe ratio against the Sharpe the best of `trials` unskilled
    strategies would show by luck (`expected_max_sharpe`). All Sharpe figures and the
    variance across trials are per period, not annualised.
    """
    threshold = expected_max_sharpe(trials, trial_variance)
    return probabilistic_sharpe_ratio(sharpe, threshold, periods, skew, kurtosis)


def moments(returns: Vector) -> tuple[float, float]:
    """Skewness and Pearson kurtosis (population moments, as scipy.stats' biased defaults).

    >>> moments(np.array([1.0, 2.0, 3.0, 4.0]))
    (0.0, 1.64)
    """
    centred = returns - returns.mean()
    variance = float(np.mean(centred**2))
    if variance == 0.0:
        return math.nan, math.nan
    skew = float(np.mean(centred**3)) / variance**1.5
    kurtosis = float(np.mean(centred**4)) / variance**2
    return skew, kurtosis
