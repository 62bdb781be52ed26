"""`hfl reconcile`: orders and fills in the Kafka log against ClickHouse and each other.

Run it at startup (or any time): the log is the record, the store must converge to
it. Orders or fills the log has and the store lacks are persistence lag (or loss, if
they stay); rows the store has and the log lacks mean the log was lost or recreated;
fills of an order the log never saw, or more filled than ordered, mean the venue and
the log disagree. Exit code 0 only when nothing but lag was found.

`hfl up` runs it automatically before trading resumes (`reconcile_at_startup`):
every result is written as an `AuditEvent`; lag is only reported (the persist flow
catches up); a mismatch, or a reconciliation that could not run, also raises a
critical `reconciliation_mismatch` alert and exits 1, on which `hfl up` starts the
trading flow halted (`risk.start_halted`, applied by the gate before any input)
until an operator looked and ran `hfl resume --confirm`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal

from connectors.codec import encode, is_progress_marker
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.reader import Record, read_log
from connectors.topic import FILLS, ORDERS
from dataflows.flows.routing import to_outbound
from dataflows.settings import Settings
from risk.domain import Alert, AlertSeverity, AuditEvent
from risk.domain.ids import stable_id
from sinks.query import QueryError, QueryRefusedError, query


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconciliation:
    """What disagrees between the log and the store (counts; ids of the first few)."""

    orders_in_log: int
    fills_in_log: int
    orders_missing_in_store: list[str]
    fills_missing_in_store: list[str]
    orders_unknown_to_log: list[str]
    fills_unknown_to_log: list[str]
    orphan_fills: list[str]
    overfilled_orders: list[str]

    @property
    def consistent(self) -> bool:
        """True when the only differences are rows the store has not caught up with."""
        return not (
            self.orders_unknown_to_log
            or self.fills_unknown_to_log
            or self.orphan_fills
            or self.overfilled_orders
        )

    @property
    def lagging(self) -> bool:
        """True when the store lacks orders or fills the log has (persistence lag)."""
        return bool(self.orders_missing_in_store or self.fills_missing_in_store)

    def counts(self) -> dict[str, int]:
        """How many ids each finding holds."""
        return {k: v if isinstance(v, int) else len(v) for k, v in asdict(self).items()}


def reconcile(
    log_orders: Iterable[Record],
    log_fills: Iterable[Record],
    store_order_ids: Iterable[str],
    store_fill_ids: Iterable[str],
) -> Reconciliation:
    """Compare orders and fills of the log with the store's ids and with each other.

    >>> order = {"client_order_id": "o1", "quantity": "5"}
    >>> fill = {"fill_id": "f1", "client_order_id": "o1", "quantity": "6"}
    >>> r = reconcile([order], [fill], [], ["f1", "f9"])
    >>> r.orders_missing_in_store, r.fills_unknown_to_log, r.overfilled_orders
    (['o1'], ['f9'], ['o1'])
    """
    quantity = {o["client_order_id"]: Decimal(o["quantity"]) for o in log_orders}
    filled: dict[str, Decimal] = defaultdict(Decimal)
    fills = {}
    for fill in log_fills:
        if fill["fill_id"] not in fills:
            fills[fill["fill_id"]] = fill
            filled[fill["client_order_id"]] += Decimal(fill["quantity"])
    stored_orders, stored_fills = set(store_order_ids), set(store_fill_ids)
    return Reconciliation(
        orders_in_log=len(quantity),
        fills_in_log=len(fills),
        orders_missing_in_store=sorted(quantity.keys() - stored_orders),
        fills_missing_in_store=sorted(fills.keys() - stored_fills),
        orders_unknown_to_log=sorted(stored_orders - quantity.keys()),
        fills_unknown_to_log=sorted(stored_fills - fills.keys()),
        orphan_fills=sorted(
            f for f, fill in fills.items() if fill["client_order_id"] not in quantity
        ),
        overfilled_orders=sorted(o for o, q in filled.items() if o in quantity and q > quantity[o]),
    )


# How long one consume call may wait. `consume` returns only once it has its whole batch
# or its timeout passed, never at the end of the log, so a long wait here would be spent
# in full on every log shorter than a batch.


def stored_ids(url: str, table: str, column: str, account: str) -> list[str]:
    """Ids in `table` of `account`; none when the store has no such table yet."""
    # The read-only guard admits only the project's tables, not system.tables: ask for
    # the rows and treat ClickHouse's "unknown table" as none.
    try:
        _, rows = query(url, f"SELECT {column} FROM {table} FINAL WHERE account = '{account}'")
    except QueryRefusedError:
        raise
    except QueryError as exc:
        if "UNKNOWN_TABLE" in str(exc) or "Unknown table" in str(exc):
            return []
        raise
    return [row[0] for row in rows]


def reconcile_system(settings: Settings) -> Reconciliation:
    """Reconcile the configured namespace's log with the configured store."""
    kafka, url = settings.kafka, settings.clickhouse.url.reveal()
    account = settings.trading.account
    return reconcile(
        [
            o
            for o in read_log(kafka.bootstrap, kafka.topic_prefix + ORDERS)
            if not is_progress_marker(o) and o["account"] == account and "cancel_id" not in o
        ],
        [
            f
            for f in read_log(kafka.bootstrap, kafka.topic_prefix + FILLS)
            if not is_progress_marker(f) and f["account"] == account
        ],
        stored_ids(url, "orders", "client_order_id", account),
        stored_ids(url, "fills", "fill_id", account),
    )


STARTUP_ACTOR = "hfl up"


def reconcile_at_startup(settings: Settings) -> Reconciliation | None:
    """Reconcile before trading resumes; audit the result, alert on a mismatch.

    Returns the reconciliation, or None when it could not run (which the caller must
    treat as a mismatch: trading never resumes unreconciled).
    """
    account, now = settings.trading.account, time.time_ns()
    try:
        result: Reconciliation | None = reconcile_system(settings)
    except Exception as exc:  # whatever stopped it, trading must not start unreconciled
        result, finding = None, f"could not reconcile: {exc}"
    else:
        finding = "consistent" if result.consistent else "mismatch"
    detail = {"finding": finding} | (result.counts() if result else {})
    events: list[object] = [
        AuditEvent(
            audit_id=stable_id("audit", "startup_reconciliation", account, now),
            actor=STARTUP_ACTOR,
            action="startup_reconciliation",
            subject=account,
            reason=finding,
            detail=encode(detail).decode(),
            ts_event=now,
            ts_init=now,
        )
    ]
    halt = result is None or not result.consistent
    if halt:
        events.append(
            Alert(
                alert_id=stable_id("alert", "reconciliation_mismatch", account, now),
                name="reconciliation_mismatch",
                severity=AlertSeverity.CRITICAL,
                source=STARTUP_ACTOR,
                subject=account,
                message=f"startup reconciliation: {finding} {encode(detail).decode()}",
                ts_event=now,
                ts_init=now,
            )
        )
    kafka = settings.kafka
    producer = CheckedProducer(kafka.bootstrap, message_timeout_ms=kafka.message_timeout_ms)
    producer.send(record for _, record in to_outbound(kafka.topic_prefix)(events))
    return result
