"""Replay recorded market data files as tick records, optionally paced in event time.

Supported inputs:

- JSON Lines (`.jsonl`, `.ndjson`, optionally `.gz`): each line is passed through as raw
  bytes, unmodified, so bad records reach the validator and are dead-lettered there.
- CSV (`.csv`, `.csv.gz`, ...) or Parquet (`.parquet`, `.pq`) tables of trades, quotes or
  OHLCV bars, detected from the column names (case-insensitive aliases below) unless
  `kind` says which.

Table rows become dicts in the `decode_tick` shape, stably sorted by event time. Missing
`seq` values are numbered per instrument from 1. A null cell drops its key (the validator
then reports `missing_field`); a non-finite number is written as the string "NaN"/"inf"/
"-inf" so the validator reports `non_finite` (orjson would turn NaN into null, i.e.
`wrong_type`). Timestamps may be integers (ns; smaller magnitudes are read as s, ms or
µs), ISO datetimes (naive means UTC) or dates (midnight UTC). Records carry
`ts_init == ts_event`; the publisher restamps `ts_init` when it sends.
"""

from __future__ import annotations

import gzip
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from connectors.codec import loads
from risk.domain.error import HflError

R = TypeVar("R")

NS_PER_S = 1_000_000_000
DEFAULT_BAR_NS = 60 * NS_PER_S
BUILD_ROWS = 16_384
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})

# Canonical field -> accepted column names (lower case), first match wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "instrument": ("instrument", "symbol", "ticker", "sym", "name"),
    "ts": ("ts_event", "ts", "timestamp", "time", "datetime", "date"),
    "seq": ("seq", "sequence"),
    "kind": ("kind",),
    "price": ("price", "last", "trade_price"),
    "size": ("size", "volume", "qty", "quantity"),
    "bid": ("bid", "bid_price", "bid_px"),
    "ask": ("ask", "ask_price", "ask_px", "offer"),
    "bid_size": ("bid_size", "bid_qty", "bid_sz", "bidsize"),
    "ask_size": ("ask_size", "ask_qty", "ask_sz", "asksize"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close", "adj_close"),
}
_FLOAT_FIELDS = (
    "price", "size", "bid", "ask", "bid_size", "ask_size", "open", "high", "low", "close",
)  # fmt: skip
_OPTIONAL_FIELDS = ("bid", "ask", "bid_size", "ask_size")


class FileKind(StrEnum):
    """What a replayed file holds."""

    TRADE = "trade"
    QUOTE = "quote"
    BAR = "bar"
    JSONL = "jsonl"


_KEYS = frozenset({"instrument", "ts"})
_REQUIRED = {
    FileKind.TRADE: _KEYS,
    FileKind.QUOTE: _KEYS | {"bid", "ask"},
    FileKind.BAR: _KEYS | {"open", "high", "low", "close"},
}


class ReplayFormatError(HflError):
    """A replay file cannot be interpreted (unknown layout, missing timestamps)."""


def read_records(
    path: str | Path, *, kind: str | None = None, bar_ns: int | None = None
) -> Iterator[dict[str, Any] | bytes]:
    """Yield the tick records of a recorded file in event-time order.

    Args:
        path: a `.jsonl`/`.ndjson`, CSV or Parquet file (see the module docstring).
        kind: "trade", "quote", "bar" or "jsonl"; detected from the file when None.
        bar_ns: bar length for OHLCV files; when None, the smallest gap between two
            bars of one instrument (one minute if there is a single bar).

    Raises:
        ReplayFormatError: the columns match no known layout, or a timestamp is null.
    """
    path = Path(path)
    forced = FileKind(kind) if kind is not None else None
    if forced is FileKind.JSONL or (forced is None and _is_jsonl(path)):
        yield from _lines(path)
        return
    table = _read_table(path)
    fields = _resolve(table.column_names)
    yield from _table_records(table, fields, forced or detect_kind(fields), bar_ns)


def _is_jsonl(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return bool(suffixes) and suffixes[-1] in JSONL_SUFFIXES


def _lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        for line in stream:
            raw = line.rstrip(b"\r\n")
            if raw:
                yield raw


def _read_table(path: Path) -> pa.Table:
    if any(s.lower() in PARQUET_SUFFIXES for s in path.suffixes):
        return pq.read_table(path)
    names = pacsv.open_csv(path).schema.names
    # Pin numeric columns to float64 so a first block of integers cannot fix the type.
    floats = {name for name in names if _canonical(name) in _FLOAT_FIELDS}
    options = pacsv.ConvertOptions(
        column_types={name: pa.float64() for name in floats},
        null_values=[""],
        strings_can_be_null=True,
    )
    return pacsv.read_csv(path, convert_options=options)


def _canonical(column: str) -> str | None:
    lowered = column.strip().lower()
    for field, aliases in ALIASES.items():
        if lowered in aliases:
            return field
    return None


def _resolve(columns: list[str]) -> dict[str, str]:
    """Map each canonical field to the file's column, preferring earlier aliases."""
    lowered = {column.strip().lower(): column for column in columns}
    found = {}
    for field, aliases in ALIASES.items():
        for alias in aliases:
            if alias in lowered:
                found[field] = lowered[alias]
                break
    return found


def detect_kind(fields: dict[str, str] | Iterable[str]) -> FileKind:
    """Guess the file layout from its canonical field names.

    >>> detect_kind(["instrument", "ts", "open", "high", "low", "close"])
    <FileKind.BAR: 'bar'>
    >>> detect_kind(["instrument", "ts", "bid", "ask"])
    <FileKind.QUOTE: 'quote'>
    """
    present = set(fields)
    if {"instrument", "ts"} - present:
        raise ReplayFormatError(f"need instrument and timestamp columns, found {sorted(present)}")
    if {"open", "high", "low", "close"} <= present:
        return FileKind.BAR
    if "price" in present or "close" in present:
        return FileKind.TRADE
    if {"bid", "ask"} <= present:
        return FileKind.QUOTE
    raise ReplayFormatError(f"no price, bid/ask or OHLC columns in {sorted(present)}")


@dataclass(slots=True, kw_only=True)
class _Frame:
    """Columns of a table being turned into records (nulls: per-field null masks)."""

    ts: np.ndarray
    codes: np.ndarray
    names: np.ndarray
    kinds: np.ndarray | None
    values: dict[str, np.ndarray]
    nulls: dict[str, np.ndarray]


def _table_records(
    table: pa.Table, fields: dict[str, str], kind: FileKind, bar_ns: int | None
) -> Iterator[dict[str, Any]]:
    missing = set(_REQUIRED[kind] - fields.keys())
    if kind is FileKind.TRADE and not fields.keys() & {"price", "close"}:
        missing.add("price")
    if missing:
        raise ReplayFormatError(f"missing {sorted(missing)} columns in {table.column_names}")
    instruments = pc.cast(table.column(fields["instrument"]), pa.string())
    frame = _Frame(
        ts=timestamps_ns(table.column(fields["ts"])),
        codes=np.asarray(instruments.dictionary_encode().combine_chunks().indices.to_numpy(False)),
        names=np.asarray(instruments.to_numpy(zero_copy_only=False), dtype=object),
        kinds=None,
        values={},
        nulls={"instrument": np.asarray(instruments.is_null().to_numpy())},
    )
    for field in fields.keys() & {*_FLOAT_FIELDS, "seq"}:
        column = table.column(fields[field])
        frame.values[field] = column.to_numpy().astype(np.float64)
        frame.nulls[field] = np.asarray(column.is_null().to_numpy())
    if kind is FileKind.BAR:
        bar = bar_ns if bar_ns is not None else _bar_length_ns(frame.ts, frame.codes)
        frame = _expand_bars(frame, bar)
    else:
        if "kind" in fields:
            frame.kinds = np.asarray(table.column(fields["kind"]).to_numpy(False), dtype=object)
        _fill_trade_or_quote(frame, kind)
    return _build(frame, kind)


def timestamps_ns(column: pa.ChunkedArray) -> np.ndarray:
    """Convert a timestamp column (ints, floats, datetimes, dates or ISO strings) to ns."""
    if column.null_count:
        raise ReplayFormatError("timestamp column has nulls: cannot order the replay")
    kind = column.type
    if pa.types.is_integer(kind):
        whole: np.ndarray = np.asarray(column.to_numpy(), dtype=np.int64)
        scaled: np.ndarray = whole * _epoch_scale(whole)  # integer maths: ns need 64 bits
        return scaled
    if pa.types.is_floating(kind):
        seconds_or_so: np.ndarray = np.asarray(column.to_numpy(), dtype=np.float64)
        rounded: np.ndarray = np.rint(seconds_or_so * _epoch_scale(seconds_or_so))
        return rounded.astype(np.int64)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        as_ns = pc.cast(column, pa.timestamp("ns", tz=getattr(kind, "tz", None)))
        return np.asarray(pc.cast(as_ns, pa.int64()).to_numpy(), dtype=np.int64)
    text = column.to_pylist()
    try:
        return np.array([_iso_ns(value) for value in text], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise ReplayFormatError(f"unreadable timestamp in {text[:3]}...: {exc}") from exc


def _epoch_scale(values: np.ndarray) -> int:
    """Guess the unit of epoch numbers from their magnitude (ns from 1973 on)."""
    peak = float(np.abs(values).max()) if len(values) else 0.0
    for limit, scale in ((1e11, NS_PER_S), (1e14, 1_000_000), (1e17, 1_000)):
        if peak < limit:
            return scale
    return 1


def _iso_ns(text: str) -> int:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    whole = int(moment.replace(microsecond=0).timestamp())
    return whole * NS_PER_S + moment.microsecond * 1_000


def _bar_length_ns(ts: np.ndarray, codes: np.ndarray) -> int:
    order = np.lexsort((ts, codes))
    same = codes[order][1:] == codes[order][:-1]
    gaps = np.diff(ts[order])[same]
    gaps = gaps[gaps > 0]
    return int(gaps.min()) if len(gaps) else DEFAULT_BAR_NS


def _expand_bars(frame: _Frame, bar_ns: int) -> _Frame:
    """Turn each bar into four trades O, L, H, C (up bar) or O, H, L, C (down bar).

    The trades sit at the bar start plus 0, 1/4, 1/2 and 3/4 of the bar length. A
    given `seq` column numbers bars, not the ticks made from them, so it is dropped.
    """
    values, nulls = frame.values, frame.nulls
    o, h, low, c = (values[name] for name in ("open", "high", "low", "close"))
    up = c >= o
    extreme_null = nulls["low"] | nulls["high"]
    prices = np.stack([o, np.where(up, low, h), np.where(up, h, low), c], axis=1)
    price_null = np.stack([nulls["open"], extreme_null, extreme_null, nulls["close"]], axis=1)
    n = len(frame.ts)
    if "size" in values:
        size, size_null = np.repeat(values["size"] / 4.0, 4), np.repeat(nulls["size"], 4)
    else:
        size, size_null = np.ones(4 * n), np.zeros(4 * n, dtype=bool)
    offsets = np.arange(4, dtype=np.int64) * (bar_ns // 4)
    return _Frame(
        ts=(frame.ts[:, None] + offsets[None, :]).ravel(),
        codes=np.repeat(frame.codes, 4),
        names=np.repeat(frame.names, 4),
        kinds=None,
        values={"price": prices.ravel(), "size": size},
        nulls={
            "price": price_null.ravel(),
            "size": size_null,
            "instrument": np.repeat(nulls["instrument"], 4),
        },
    )


def _fill_trade_or_quote(frame: _Frame, kind: FileKind) -> None:
    values, nulls, n = frame.values, frame.nulls, len(frame.ts)
    if "price" not in values and "close" in values:
        values["price"], nulls["price"] = values["close"], nulls["close"]
    for name in ("open", "high", "low", "close"):
        values.pop(name, None)
        nulls.pop(name, None)
    if kind is FileKind.QUOTE and "price" not in values:
        values["price"] = (values["bid"] + values["ask"]) / 2.0
        nulls["price"] = nulls["bid"] | nulls["ask"]
    if "size" not in values:
        size = 0.0 if kind is FileKind.QUOTE else 1.0
        values["size"], nulls["size"] = np.full(n, size), np.zeros(n, dtype=bool)


def _build(frame: _Frame, kind: FileKind) -> Iterator[dict[str, Any]]:
    """Sort the frame by event time and yield one record dict per row.

    Dicts are made `BUILD_ROWS` at a time: materialising millions at once costs more in
    garbage-collector passes than in building them.
    """
    order = np.argsort(frame.ts, kind="stable")
    n = len(order)
    nulls = {name: mask[order] for name, mask in frame.nulls.items()}
    if "seq" in frame.values:
        seq = np.where(nulls["seq"], 0, frame.values["seq"][order]).astype(np.int64)
    else:
        seq, nulls["seq"] = sequence_numbers(frame.codes[order]), np.zeros(n, dtype=bool)
    keys = ["instrument", "seq", "kind"]
    kind_value = FileKind.TRADE.value if kind is FileKind.BAR else kind.value
    kinds = frame.kinds[order] if frame.kinds is not None else np.full(n, kind_value, object)
    columns: list[np.ndarray] = [frame.names[order], seq, kinds]
    bad = nulls["instrument"] | nulls["seq"]
    for field in ("price", "size", *_OPTIONAL_FIELDS):
        if field in frame.values:
            keys.append(field)
            columns.append(frame.values[field][order])
            bad |= ~np.isfinite(columns[-1])
    ts = frame.ts[order]
    keys += ["ts_event", "ts_init"]
    columns += [ts, ts]
    for start in range(0, n, BUILD_ROWS):
        stop = min(start + BUILD_ROWS, n)
        lists = [column[start:stop].tolist() for column in columns]
        records = [dict(zip(keys, row, strict=True)) for row in zip(*lists, strict=True)]
        for row in np.flatnonzero(bad[start:stop]).tolist():
            at = start + row
            _mark_bad(records[row], {name for name, mask in nulls.items() if mask[at]})
        yield from records


def _mark_bad(record: dict[str, Any], null_fields: set[str]) -> None:
    """Drop null fields and spell non-finite numbers so the validator names them."""
    for name in null_fields:
        record.pop(name, None)
    for name, value in record.items():
        if type(value) is float and not math.isfinite(value):
            record[name] = "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def sequence_numbers(codes: np.ndarray) -> np.ndarray:
    """Number rows 1, 2, 3... within each instrument code, in row order.

    >>> sequence_numbers(np.array([0, 1, 0, 0, 1])).tolist()
    [1, 1, 2, 3, 2]
    """
    n = len(codes)
    by_code = np.argsort(codes, kind="stable")
    sorted_codes = codes[by_code]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    seq = np.empty(n, dtype=np.int64)
    seq[by_code] = np.arange(n) - group_start + 1
    return seq


def paced(
    records: Iterable[R],
    speed: float | None,
    *,
    clock: Callable[[], int] = time.monotonic_ns,
    sleep: Callable[[float], object] = time.sleep,
    min_sleep_ns: int = 200_000,
) -> Iterator[R]:
    """Yield `records`, sleeping so event-time gaps are replayed divided by `speed`.

    `speed=None` (or infinite) replays as fast as possible; `speed=1.0` in real time,
    `speed=10.0` ten times faster. The schedule is absolute from the first record, so
    skipped short sleeps never accumulate drift. Records without a readable integer
    `ts_event` (e.g. malformed raw lines) are yielded at once.
    """
    if speed is None or math.isinf(speed):
        return iter(records)
    if not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    return _paced(records, speed, clock, sleep, min_sleep_ns)


def _paced(
    records: Iterable[R],
    speed: float,
    clock: Callable[[], int],
    sleep: Callable[[float], object],
    min_sleep_ns: int,
) -> Iterator[R]:
    first_event: int | None = None
    first_wall = 0
    for record in records:
        ts_event = event_time_ns(record)
        if ts_event is not None:
            if first_event is None:
                first_event, first_wall = ts_event, clock()
            else:
                wait_ns = first_wall + (ts_event - first_event) / speed - clock()
                if wait_ns >= min_sleep_ns:
                    sleep(wait_ns / NS_PER_S)
        yield record


def event_time_ns(record: object) -> int | None:
    """Read `ts_event` from a record dict or raw JSON bytes; None when absent or bad.

    >>> event_time_ns(b'{"ts_event": 5}'), event_time_ns(b"not json")
    (5, None)
    """
    if isinstance(record, bytes | bytearray | memoryview):
        try:
            record = loads(bytes(record))
        except ValueError:
            return None
    if isinstance(record, dict):
        value = record.get("ts_event")
        return value if type(value) is int else None
    return None
