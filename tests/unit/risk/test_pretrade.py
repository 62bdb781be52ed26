"""Unit tests for the pre-trade checks, limits and sizing."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from risk.domain.enums import DenialReason, OrderType, Side, TradingState
from risk.domain.error import ConfigError
from risk.domain.order import OrderIntent
from risk.limit import LimitBook, RiskLimits
from risk.pretrade import (
    check_gross_exposure,
    check_market_collar,
    check_order_notional,
    check_order_quantity,
    check_position,
    check_price_collar,
    check_reference_price,
    check_trading_state,
    check_zero_quantity,
    run_checks,
)
from risk.sizing import target_quantity

D = Decimal
ZERO = Decimal(0)
TS = 1_700_000_000_000_000_000


def make_limits(**overrides: object) -> RiskLimits:
    values: dict[str, object] = {
        "max_order_quantity": D(100),
        "max_order_notional": D(10_000),
        "max_position": D(150),
        "max_gross_exposure": D(50_000),
        "price_collar_pct": 0.05,
        "max_reference_age_ns": 1_000_000_000,
    }
    values.update(overrides)
    return RiskLimits(**values)  # type: ignore[arg-type]


def make_intent(**overrides: object) -> OrderIntent:
    intent = OrderIntent(
        signal_id="sig-1",
        account="acc",
        instrument="AAPL",
        side=Side.BUY,
        quantity=D(10),
        order_type=OrderType.MARKET,
        limit_price=None,
        reference_price=100.0,
        ts_event=TS,
        ts_init=TS,
    )
    return intent._replace(**overrides)  # type: ignore[arg-type]


@dataclass
class FakeExposure:
    """An ExposureView over plain dicts."""

    position: dict[str, Decimal] = field(default_factory=dict)
    working_buy: dict[str, Decimal] = field(default_factory=dict)
    working_sell: dict[str, Decimal] = field(default_factory=dict)
    others_gross: Decimal = ZERO
    reference_ts: int | None = TS

    def worst_case_long(self, instrument: str) -> Decimal:
        return self.position.get(instrument, D(0)) + self.working_buy.get(instrument, D(0))

    def worst_case_short(self, instrument: str) -> Decimal:
        return self.position.get(instrument, D(0)) - self.working_sell.get(instrument, D(0))

    def gross_exposure_excluding(self, instrument: str) -> Decimal:
        return self.others_gross

    def reference_ts_event(self, instrument: str) -> int | None:
        return self.reference_ts


# -- limits --------------------------------------------------------------------------


def test_risk_limits_invalid_values_raise_config_error_listing_all() -> None:
    with pytest.raises(ConfigError) as info:
        make_limits(max_order_quantity=D(0), price_collar_pct=float("nan"))
    assert "max_order_quantity" in str(info.value)
    assert "price_collar_pct" in str(info.value)


def test_limit_book_override_applies_only_to_its_instrument() -> None:
    tight = make_limits(max_position=D(1))
    book = LimitBook(default=make_limits(), per_instrument={"TSLA": tight})
    assert book.for_instrument("TSLA") is tight
    assert book.for_instrument("AAPL").max_position == D(150)


def test_limits_pickle_round_trip() -> None:
    book = LimitBook(default=RiskLimits.default(), per_instrument={"X": make_limits()})
    assert pickle.loads(pickle.dumps(book)) == book


# -- sizing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "price", "expected"),
    [(1, 100.0, D(100)), (-1, 100.0, D(-100)), (1, 101.0, D(99)), (-1, 101.0, D(-99)), (0, 5.0, 0)],
)
def test_target_quantity_rounds_toward_zero_to_lots(
    direction: int, price: float, expected: Decimal
) -> None:
    assert target_quantity(direction, price, target_notional=D(10_000), lot_size=D(1)) == expected


@pytest.mark.parametrize("price", [0.0, -1.0, float("nan"), float("inf")])
def test_target_quantity_bad_price_raises(price: float) -> None:
    with pytest.raises(ValueError, match="reference price"):
        target_quantity(1, price, target_notional=D(1), lot_size=D(1))


# -- single checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [("kill", DenialReason.KILL_SWITCH), ("drawdown", DenialReason.HALTED)],
)
def test_check_trading_state_halted_denies_naming_kill_switch_or_halt(
    trigger: str, expected: DenialReason
) -> None:
    denial = check_trading_state(make_intent(), FakeExposure(), TradingState.HALTED, trigger)
    assert denial is not None
    assert denial.reason is expected


def test_check_trading_state_active_allows_anything() -> None:
    assert check_trading_state(make_intent(), FakeExposure(), TradingState.ACTIVE, "") is None


@pytest.mark.parametrize(
    ("side", "quantity", "position", "working_same_side", "allowed"),
    [
        (Side.SELL, 50, 100, 0, True),  # reduces a long
        (Side.SELL, 100, 100, 0, True),  # closes it exactly
        (Side.SELL, 101, 100, 0, False),  # would cross through zero
        (Side.SELL, 60, 100, 50, False),  # with the working sell it would cross
        (Side.BUY, 10, 100, 0, False),  # adds to a long
        (Side.BUY, 40, -50, 10, True),  # reduces a short counting working buys
        (Side.BUY, 10, 0, 0, False),  # opens from flat
        (Side.SELL, 10, 0, 0, False),
    ],
)
def test_check_trading_state_reducing_allows_only_reducing_orders(
    side: Side, quantity: int, position: int, working_same_side: int, allowed: bool
) -> None:
    working = {"AAPL": D(working_same_side)}
    view = FakeExposure(
        position={"AAPL": D(position)},
        working_buy=working if side is Side.BUY else {},
        working_sell=working if side is Side.SELL else {},
    )
    intent = make_intent(side=side, quantity=D(quantity))
    denial = check_trading_state(intent, view, TradingState.REDUCING, "drift")
    assert (denial is None) is allowed
    if denial is not None:
        assert denial.reason is DenialReason.REDUCE_ONLY


def test_check_zero_quantity_zero_denies() -> None:
    denial = check_zero_quantity(make_intent(quantity=D(0)))
    assert denial is not None
    assert denial.reason is DenialReason.ZERO_QUANTITY
    assert check_zero_quantity(make_intent()) is None


def test_check_reference_price_missing_denies() -> None:
    denial = check_reference_price(make_intent(reference_price=None), None, make_limits())
    assert denial is not None
    assert denial.reason is DenialReason.NO_REFERENCE_PRICE
    assert denial.detail == "missing"


def test_check_reference_price_stale_denies_with_stale_detail() -> None:
    limits = make_limits(max_reference_age_ns=1_000)
    denial = check_reference_price(make_intent(ts_event=TS + 1_001), TS, limits)
    assert denial is not None
    assert denial.reason is DenialReason.NO_REFERENCE_PRICE
    assert denial.detail.startswith("stale")
    assert "1001 ns" in denial.detail


def test_check_reference_price_at_age_limit_passes() -> None:
    limits = make_limits(max_reference_age_ns=1_000)
    assert check_reference_price(make_intent(ts_event=TS + 1_000), TS, limits) is None


def test_check_price_collar_limit_order_outside_collar_denies() -> None:
    intent = make_intent(order_type=OrderType.LIMIT, limit_price=D("106"))
    denial = check_price_collar(intent, make_limits())
    assert denial is not None
    assert denial.reason is DenialReason.PRICE_COLLAR
    assert "6.00%" in denial.detail


def test_check_price_collar_limit_order_inside_collar_passes() -> None:
    intent = make_intent(order_type=OrderType.LIMIT, limit_price=D("95"))
    assert check_price_collar(intent, make_limits()) is None


def test_check_price_collar_market_order_passes() -> None:
    assert check_price_collar(make_intent(), make_limits()) is None


@pytest.mark.parametrize(
    ("market", "denied"),
    [(None, False), (D("100"), False), (D("95.3"), False), (D("95.2"), True), (D("106"), True)],
)
def test_check_market_collar_vets_the_reference_against_the_last_market_price(
    market: Decimal | None, denied: bool
) -> None:
    # Reference 100: inside 5 % of 95.3 (4.93 %), outside of 95.2 (5.04 %) and 106.
    denial = check_market_collar(make_intent(), market, make_limits())
    assert (denial is not None) is denied
    if denial is not None:
        assert denial.reason is DenialReason.PRICE_COLLAR
        assert f"from the last market price {market}" in denial.detail


def test_run_checks_applies_the_market_collar_after_the_order_collar() -> None:
    intent = make_intent(order_type=OrderType.LIMIT, limit_price=D("104"))
    view = FakeExposure()
    assert run_checks(intent, view, make_limits()) is None
    denial = run_checks(intent, view, make_limits(), market=D("90"))
    assert denial is not None
    assert denial.reason is DenialReason.PRICE_COLLAR
    assert "last market price 90" in denial.detail


def test_check_order_quantity_above_limit_denies() -> None:
    denial = check_order_quantity(make_intent(quantity=D(101)), make_limits())
    assert denial is not None
    assert denial.reason is DenialReason.MAX_ORDER_QUANTITY
    assert denial.detail == "quantity 101 > limit 100"


def test_check_order_quantity_at_limit_passes() -> None:
    assert check_order_quantity(make_intent(quantity=D(100)), make_limits()) is None


def test_check_order_notional_above_limit_denies() -> None:
    intent = make_intent(quantity=D(125), reference_price=100.0)
    denial = check_order_notional(intent, make_limits())
    assert denial is not None
    assert denial.reason is DenialReason.MAX_ORDER_NOTIONAL
    assert denial.detail == "notional 12500.00 > limit 10000"


def test_check_order_notional_at_limit_passes() -> None:
    assert check_order_notional(make_intent(quantity=D(100)), make_limits()) is None


def test_check_position_counts_working_buys_denies() -> None:
    view = FakeExposure(position={"AAPL": D(50)}, working_buy={"AAPL": D(95)})
    denial = check_position(make_intent(quantity=D(10)), view, make_limits())
    assert denial is not None
    assert denial.reason is DenialReason.MAX_POSITION
    assert "155" in denial.detail


def test_check_position_ignores_working_orders_on_other_side() -> None:
    view = FakeExposure(position={"AAPL": D(50)}, working_sell={"AAPL": D(95)})
    assert check_position(make_intent(quantity=D(100)), view, make_limits()) is None


def test_check_position_sell_counts_working_sells_denies() -> None:
    view = FakeExposure(position={"AAPL": D(-100)}, working_sell={"AAPL": D(40)})
    denial = check_position(make_intent(side=Side.SELL, quantity=D(20)), view, make_limits())
    assert denial is not None
    assert denial.reason is DenialReason.MAX_POSITION
    assert "-160" in denial.detail


def test_check_position_reducing_order_over_limit_passes() -> None:
    view = FakeExposure(position={"AAPL": D(-400)})
    assert check_position(make_intent(quantity=D(10)), view, make_limits()) is None


def test_check_gross_exposure_above_limit_denies() -> None:
    view = FakeExposure(others_gross=D(45_000))
    intent = make_intent(quantity=D(60))
    denial = check_gross_exposure(intent, view, make_limits())
    assert denial is not None
    assert denial.reason is DenialReason.MAX_GROSS_EXPOSURE
    assert denial.detail == "gross exposure 51000.00 > limit 50000"


def test_check_gross_exposure_reducing_order_passes_when_over_limit() -> None:
    view = FakeExposure(position={"AAPL": D(100)}, others_gross=D(90_000))
    intent = make_intent(side=Side.SELL, quantity=D(50))
    assert check_gross_exposure(intent, view, make_limits()) is None


def test_check_gross_exposure_within_limit_passes() -> None:
    view = FakeExposure(position={"AAPL": D(100)}, others_gross=D(30_000))
    assert check_gross_exposure(make_intent(quantity=D(50)), view, make_limits()) is None


# -- ordering ------------------------------------------------------------------------


def test_run_checks_all_pass_returns_none() -> None:
    assert run_checks(make_intent(), FakeExposure(), make_limits()) is None


def test_run_checks_halted_state_comes_first() -> None:
    intent = make_intent(quantity=D(0), reference_price=None)
    view = FakeExposure(reference_ts=None)
    denial = run_checks(intent, view, make_limits(), TradingState.HALTED, "kill")
    assert denial is not None
    assert denial.reason is DenialReason.KILL_SWITCH


@pytest.mark.parametrize(
    ("intent_overrides", "view", "expected"),
    [
        ({"quantity": D(0), "reference_price": None}, FakeExposure(), DenialReason.ZERO_QUANTITY),
        (
            {"quantity": D(1_000), "reference_price": None},
            FakeExposure(reference_ts=None),
            DenialReason.NO_REFERENCE_PRICE,
        ),
        (
            {"quantity": D(1_000), "order_type": OrderType.LIMIT, "limit_price": D(200)},
            FakeExposure(),
            DenialReason.PRICE_COLLAR,
        ),
        ({"quantity": D(1_000)}, FakeExposure(), DenialReason.MAX_ORDER_QUANTITY),
        (
            {"quantity": D(100), "reference_price": 1_000.0},
            FakeExposure(position={"AAPL": D(1_000)}),
            DenialReason.MAX_ORDER_NOTIONAL,
        ),
        (
            {"quantity": D(100)},
            FakeExposure(position={"AAPL": D(100)}, others_gross=D(10**9)),
            DenialReason.MAX_POSITION,
        ),
        (
            {"quantity": D(100)},
            FakeExposure(others_gross=D(45_000)),
            DenialReason.MAX_GROSS_EXPOSURE,
        ),
    ],
)
def test_run_checks_reports_first_failed_control_in_order(
    intent_overrides: dict[str, object], view: FakeExposure, expected: DenialReason
) -> None:
    denial = run_checks(make_intent(**intent_overrides), view, make_limits())
    assert denial is not None
    assert denial.reason is expected
