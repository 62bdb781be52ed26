"""Deterministic identifiers, stable across processes and replays.

Every id is a blake2b digest of its natural key, never Python's salted `hash()`,
so the same input always yields the same id and the chain
tick → prediction → signal → decision → order → fill joins in SQL.
"""

from __future__ import annotations

from hashlib import blake2b


def stable_id(*parts: object) -> str:
    """Return a 32-hex-character id derived from `parts`.

    >>> stable_id("AAPL", 1) == stable_id("AAPL", 1)
    True
    >>> len(stable_id("x"))
    32
    """
    return _digest("\x1f".join(map(str, parts)))


def _digest(text: str) -> str:
    return blake2b(text.encode(), digest_size=16).hexdigest()


def tick_id(instrument: str, seq: int, ts_event: int) -> str:
    """Id of the tick with sequence number `seq` on `instrument` at `ts_event`.

    Event time is part of the key because feeds restart their sequence numbers per
    session: (instrument, seq) alone would merge ticks of different sessions.
    """
    return stable_id("tick", instrument, seq, ts_event)


def signal_id(instrument: str, tick: str, model: str) -> str:
    """Id of the signal `model` raised on the tick `tick`."""
    return stable_id("signal", instrument, tick, model)


def client_order_id(account: str, instrument: str, signal: str) -> str:
    """Id of the order `account` sends on `instrument` for `signal`.

    `stable_id("order", account, instrument, signal)`, spelled out: the gate asks once
    per approved signal.

    >>> client_order_id("a", "X", "s") == stable_id("order", "a", "X", "s")
    True
    """
    return _digest(f"order\x1f{account}\x1f{instrument}\x1f{signal}")


def fill_id(client_order: str, fill_seq: int) -> str:
    """Id of the `fill_seq`-th fill of an order (1-based)."""
    return stable_id("fill", client_order, fill_seq)


def order_event_id(client_order: str, event_seq: int) -> str:
    """Id of the `event_seq`-th gateway event of an order (1-based)."""
    return stable_id("order_event", client_order, event_seq)


def record_id(topic: str, partition: int, offset: int, timestamp_ns: int) -> str:
    """Id of a raw Kafka record, used for dead letters.

    The record's log timestamp joins its position because a recreated topic starts
    its offsets again at zero.
    """
    return stable_id("record", topic, partition, offset, timestamp_ns)
