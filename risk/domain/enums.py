"""Enumerations shared by every message type."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """Which way an order or fill trades."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self is Side.BUY else -1


class TickKind(StrEnum):
    """A trade print or a top-of-book quote."""

    TRADE = "trade"
    QUOTE = "quote"


class OrderType(StrEnum):
    """How an order is priced."""

    MARKET = "market"
    LIMIT = "limit"


class OrderEventKind(StrEnum):
    """What happened to an order at the gateway.

    EXPIRED: its time in force ran out before it filled (the rest will never fill).
    """

    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        """True when the order can no longer fill."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        OrderEventKind.FILLED,
        OrderEventKind.CANCELED,
        OrderEventKind.REJECTED,
        OrderEventKind.EXPIRED,
    }
)


class DenialReason(StrEnum):
    """Why the risk gate denied an order intent."""

    KILL_SWITCH = "kill_switch"
    ZERO_QUANTITY = "zero_quantity"
    NO_REFERENCE_PRICE = "no_reference_price"
    PRICE_COLLAR = "price_collar"
    MAX_ORDER_QUANTITY = "max_order_quantity"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION = "max_position"
    MAX_GROSS_EXPOSURE = "max_gross_exposure"
    HALTED = "halted"
    REDUCE_ONLY = "reduce_only"
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    ORDER_RATE = "order_rate"
    MAX_OPEN_ORDERS = "max_open_orders"
    SELF_MATCH = "self_match"
    MAX_NET_EXPOSURE = "max_net_exposure"
    CONCENTRATION = "concentration"
    GROUP_CONCENTRATION = "group_concentration"
    VOLATILITY = "volatility"
    CORRELATION = "correlation"
    BETA = "beta"
    VAR_BUDGET = "var_budget"
    CVAR_BUDGET = "cvar_budget"


class DecodeReason(StrEnum):
    """Why an input record was rejected before it reached any logic."""

    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NON_FINITE = "non_finite"
    NON_POSITIVE_PRICE = "non_positive_price"
    NEGATIVE_SIZE = "negative_size"
    CROSSED_QUOTE = "crossed_quote"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    UNKNOWN_ACCOUNT = "unknown_account"
    DUPLICATE_SEQUENCE = "duplicate_sequence"
    BACKWARDS_SEQUENCE = "backwards_sequence"
    # the outlier screen's rules (risk.outlier) when their action is to dead-letter
    OUTLIER_PRICE_JUMP = "outlier_price_jump"
    OUTLIER_CROSSED_QUOTE = "outlier_crossed_quote"
    OUTLIER_LOCKED_QUOTE = "outlier_locked_quote"
    OUTLIER_ZERO_SIZE = "outlier_zero_size"
    OUTLIER_STALE_TIMESTAMP = "outlier_stale_timestamp"
    OUTLIER_FUTURE_TIMESTAMP = "outlier_future_timestamp"
    OUTLIER_OUT_OF_ORDER = "outlier_out_of_order"
    # A command on a control topic that failed verification (risk.access.Refusal).
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    REVOKED_KEY = "revoked_key"
    FORBIDDEN = "forbidden"
    STALE = "stale"
    REPLAYED = "replayed"


class ControlAction(StrEnum):
    """Operator commands carried on `hfl.control`.

    KILL halts the account (or one instrument) and cancels its working orders, RESUME
    returns it to ACTIVE, REDUCE allows only position-reducing orders.
    """

    KILL = "kill"
    RESUME = "resume"
    REDUCE = "reduce"


class TradingState(StrEnum):
    """What an account (or one of its instruments) may trade.

    ACTIVE trades normally, REDUCING allows only position-reducing orders, HALTED
    denies everything but cancels.
    """

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"

    @property
    def severity(self) -> int:
        """0 for ACTIVE, 1 for REDUCING, 2 for HALTED: the stricter state wins."""
        return _SEVERITY[self]


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


class AlertSeverity(StrEnum):
    """How urgently an alert needs a human."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class ModelScope(StrEnum):
    """Whether a model learns from one instrument, or one model from all (pooled)."""

    PER_INSTRUMENT = "per_instrument"
    POOLED = "pooled"


class ModelRole(StrEnum):
    """Whether a model's predictions trade (champion) or only get scored (challenger)."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"


class ModelAction(StrEnum):
    """Operator commands on the models of the trading flow, carried on `hfl.models.control`."""

    PROMOTE = "promote"
    ROLLBACK = "rollback"
