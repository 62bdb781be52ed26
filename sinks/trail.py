"""Everything behind one order: its log lines in every component and its rows in every table.

`hfl trail <client_order_id>` follows the ids the way the data flowed: order →
signal → tick, then prints the JSON log lines that carry any of those ids and the
rows of each table in causal order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from connectors.codec import JSONDecodeError, loads

Query = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]
_ID = re.compile(r"^[0-9a-f]{32}$")

# (table, id column it is looked up by); ts columns print as event time.
TRAIL_TABLES = (
    ("ticks", "tick_id"),
    ("predictions", "tick_id"),
    ("signals", "signal_id"),
    ("risk_decisions", "signal_id"),
    ("orders", "client_order_id"),
    ("order_events", "client_order_id"),
    ("fills", "client_order_id"),
)


def _one(query: Query, sql: str) -> str:
    _, rows = query(sql)
    return str(rows[0][0]) if rows else ""


def chain_ids(query: Query, client_order_id: str) -> dict[str, str]:
    """The signal and tick behind an order (empty strings when not found).

    Raises:
        ValueError: `client_order_id` is not an id (ids are 32 hex characters).
    """
    if not _ID.match(client_order_id):
        raise ValueError(f"{client_order_id!r} is not a client_order_id (32 hex characters)")
    signal = _one(
        query,
        f"SELECT signal_id FROM orders FINAL WHERE client_order_id = '{client_order_id}' "
        "UNION ALL SELECT signal_id FROM risk_decisions FINAL "
        f"WHERE client_order_id = '{client_order_id}' LIMIT 1",
    )
    tick = signal and _one(
        query, f"SELECT tick_id FROM signals FINAL WHERE signal_id = '{signal}' LIMIT 1"
    )
    return {"client_order_id": client_order_id, "signal_id": signal, "tick_id": tick}


def trail_rows(query: Query, ids: dict[str, str]) -> Iterator[tuple[str, list[str], list[Any]]]:
    """Each table's rows for the chain, as (table, columns, rows)."""
    for table, column in TRAIL_TABLES:
        value = ids.get(column, "")
        if not value:
            continue
        columns, rows = query(
            f"SELECT * EXCEPT (_inserted_at) FROM {table} FINAL WHERE {column} = '{value}' "
            "ORDER BY ts_event"
        )
        yield table, columns, rows


def _belongs(line: dict[str, Any], ids: dict[str, str]) -> bool:
    # A tick can fill several orders: its lines about other orders are not this trail.
    order = line.get("client_order_id")
    if order is not None:
        return bool(order == ids.get("client_order_id"))
    return any(line.get(name) == value for name, value in ids.items() if value)


def trail_logs(files: Iterable[Path], ids: dict[str, str]) -> Iterator[str]:
    """JSON lines of `files` about the chain `ids`, sorted by their timestamp.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "trading.log"
    >>> lines = ['{"ts":"2","client_order_id":"o1"}', "noise", '{"ts":"1","tick_id":"t1"}',
    ...          '{"ts":"3","tick_id":"t1","client_order_id":"o2"}']
    >>> _ = path.write_text("\\n".join(lines))
    >>> list(trail_logs([path], {"client_order_id": "o1", "tick_id": "t1"}))
    ['{"ts":"1","tick_id":"t1"}', '{"ts":"2","client_order_id":"o1"}']
    """
    needles = [value for value in ids.values() if value]
    found = []
    for path in files:
        with path.open(errors="replace") as handle:
            for text in handle:
                if text.startswith("{") and any(needle in text for needle in needles):
                    try:
                        line = loads(text)
                    except JSONDecodeError:
                        continue
                    if _belongs(line, ids):
                        found.append((str(line.get("ts", "")), text.rstrip("\n")))
    return (text for _, text in sorted(found))
