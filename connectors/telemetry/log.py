"""Structured JSON logs whose lines carry the correlation ids of the events they describe.

Every line is one JSON object: ``ts`` (UTC, ISO 8601), ``level``, ``component``,
``msg`` and whichever ids the event has (``tick_id``, ``signal_id``,
``client_order_id``, ``fill_id``, plus ``account`` and ``instrument``). The ids are
the same deterministic ids the tables are keyed by, so one ``client_order_id`` finds
every log line and every row behind an order (`hfl trail`). Flows log decisions,
orders and fills, never ticks: a line per tick would cost more than the tick.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

CORRELATION_FIELDS = (
    "tick_id",
    "signal_id",
    "client_order_id",
    "fill_id",
    "account",
    "instrument",
)
_IDS_ATTR = "hfl_ids"


def correlation_ids(*events: object, **extra: object) -> dict[str, Any]:
    """Collect the correlation fields of `events` (first one wins) and `extra`.

    Empty values are left out, so a denied decision (no order id) logs none.

    >>> class Signal:
    ...     signal_id, tick_id, instrument = "s1", "t1", "AAPL"
    >>> correlation_ids(Signal(), client_order_id="o1")
    {'tick_id': 't1', 'signal_id': 's1', 'instrument': 'AAPL', 'client_order_id': 'o1'}
    """
    ids: dict[str, Any] = {}
    for name in CORRELATION_FIELDS:
        for event in events:
            value = getattr(event, name, None)
            if value:
                ids[name] = value
                break
    ids.update({name: value for name, value in extra.items() if value not in (None, "")})
    return ids


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object with its correlation ids."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self._component = component

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line: time, level, component, logger, message, ids, exception."""
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname.lower(),
            "component": self._component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(getattr(record, _IDS_ATTR, {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(component: str, stream: TextIO | None = None) -> None:
    """Send this process's `hfl.*` logs to `stream` (default stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(component))
    logger = logging.getLogger("hfl")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def log_event(logger: logging.Logger, message: str, *events: object, **extra: object) -> None:
    """Log `message` at INFO with the correlation ids of `events` and `extra`."""
    if logger.isEnabledFor(logging.INFO):
        logger.info(message, extra={_IDS_ATTR: correlation_ids(*events, **extra)})


def process_age_s() -> float:
    """Seconds since this process started (Linux `/proc`; 0.0 elsewhere).

    Start-up phases log it, so a restart's interpreter and import time is visible.
    """
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return 0.0
    return round(uptime_s - int(stat[19]) / os.sysconf("SC_CLK_TCK"), 3)
