"""Reference prices and each instrument's worst case, the numbers every check prices.

The worst case of an instrument is its position plus its net working quantity: what
the position becomes if every working order fills. Fills move quantity from working to
position and leave it unchanged, so only approvals and releases move it, which is what
makes the gate's decisions independent of when fills arrive (see `risk.gate`).
"""

from __future__ import annotations

from decimal import Decimal

from risk.book import ZERO, Book
from risk.budget import BookExposure
from risk.domain.money import quantize
from risk.limit import LimitProvider

_INF = float("inf")


class Exposure:
    """The account's reference prices and worst-case positions (an `ExposureView`).

    Each worst case is kept exact (`net`) and as a float (`net_float`) for the checks
    that judge in floats (shares of equity, the gross screen): converting a Decimal
    costs about 0.2 us, and the checks read every instrument's on every signal. Prices
    are kept as the data gave them (`price`) and as the checks quantise them
    (`price_decimal`), each with its event time (`ts`).

    Beside the reference (the price each signal was decided on) each instrument has its
    last market price from the trading flow's own ticks (`market`: the last 1 s bar's
    close, quantised, and the bar's event time), independent of any signal: the price
    collar vets a signal's price against it (`risk.pretrade.check_market_collar`).
    """

    __slots__ = ("_book", "market", "net", "net_float", "price", "price_decimal", "ts")

    def __init__(self, book: Book) -> None:
        self._book = book
        self.price: dict[str, float] = {}
        self.price_decimal: dict[str, Decimal] = {}
        self.ts: dict[str, int] = {}
        self.net: dict[str, Decimal] = {}
        self.net_float: dict[str, float] = {}
        self.market: dict[str, tuple[Decimal, int]] = {}

    def on_market_price(self, instrument: str, price: float, ts_event: int) -> None:
        """Take `price` (a bar's close at `ts_event`) as `instrument`'s last market price,
        unless it is older than the one held or not positive and finite."""
        if not 0.0 < price < _INF:
            return
        held = self.market.get(instrument)
        if held is None or ts_event >= held[1]:
            self.market[instrument] = (quantize(price), ts_event)

    def market_price(self, instrument: str, ts_event: int, max_age_ns: int) -> Decimal | None:
        """`instrument`'s last market price if it is at most `max_age_ns` older than
        `ts_event` (and not later than it), else None: no market price to vet against."""
        held = self.market.get(instrument)
        if held is None or not 0 <= ts_event - held[1] <= max_age_ns:
            return None
        return held[0]

    def on_reference_price(self, instrument: str, price: float, ts_event: int) -> bool:
        """Take `price` as `instrument`'s reference unless it would make it worse.

        Older-than-current prices (out-of-order data) and prices that are not positive
        and finite are ignored; returns whether the price was taken.
        """
        if not 0.0 < price < _INF:
            return False
        last_ts = self.ts.get(instrument)
        if last_ts is not None and ts_event < last_ts:
            return False
        self.price[instrument] = price
        self.price_decimal[instrument] = quantize(price)
        self.ts[instrument] = ts_event
        return True

    def reference_ts_event(self, instrument: str) -> int | None:
        """Return the event time of `instrument`'s reference price, if any."""
        return self.ts.get(instrument)

    def worst_case(self, instrument: str) -> Decimal:
        """Return the position if every working order on `instrument` fills."""
        return self.net.get(instrument, ZERO)

    # Both sides of the `ExposureView` are the one net figure: any bound that tells buys
    # from sells changes when a fill arrives.
    worst_case_long = worst_case
    worst_case_short = worst_case

    def set(self, instrument: str, net: Decimal, net_float: float) -> None:
        """Make `net` (`net_float`) the worst case of `instrument`."""
        if net:
            self.net[instrument] = net
            self.net_float[instrument] = net_float
        else:
            self.net.pop(instrument, None)
            self.net_float.pop(instrument, None)

    def add(self, instrument: str, signed: Decimal) -> None:
        """Add `signed` to the worst case of `instrument`."""
        net = self.net.get(instrument, ZERO) + signed
        self.set(instrument, net, float(net))

    def gross_exposure_excluding(self, instrument: str) -> Decimal:
        """Return Σ |worst case| * reference over every instrument but `instrument`.

        An instrument without a reference yet is priced at the book's mark.
        """
        gross = ZERO
        prices = self.price_decimal
        for name, net in self.net.items():
            if name != instrument:
                price = prices.get(name)
                gross += abs(net) * (self._book.mark_price(name) if price is None else price)
        return gross

    def after_order(
        self, instrument: str, worst: float, delta: float, group: str, limits: LimitProvider
    ) -> BookExposure:
        """The book's exposure once an order takes `instrument`'s worst case to `worst`,
        by `delta` (floats: these feed share-of-equity limits, not accounting);
        `group` is the instrument's group ("" for none).

        For a buy every working buy is assumed filled and every working sell canceled
        (and the other way round for a sell): the net exposure that order could reach.
        """
        prices = self.price
        price = prices[instrument]
        net = delta * price
        group_value = 0.0
        for_instrument = limits.for_instrument
        seen = False
        for name, held in self.net_float.items():
            held_price = prices.get(name, 0.0)
            net += held * held_price
            if group and for_instrument(name).group == group:
                mine = name == instrument
                seen = seen or mine
                group_value += abs(held + (delta if mine else 0.0)) * held_price
        if group and not seen:
            group_value += abs(delta) * price
        return BookExposure(net, worst * price, group_value)
