"""Tests for file replay, pacing, progress reporting and the S&P 500 price writer."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.codec import Rejected, decode_tick, encode
from connectors.feeds.progress import Progress, tracked
from connectors.feeds.replay import FileKind, ReplayFormatError, paced, read_records
from connectors.feeds.sp500 import write_sp500_prices
from risk.domain import DecodeReason, TickKind

T0 = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


def dicts(path: Path, **kwargs: Any) -> list[dict[str, Any]]:
    records = list(read_records(path, **kwargs))
    assert all(isinstance(record, dict) for record in records)
    return records  # type: ignore[return-value]


def reason(record: dict[str, Any]) -> DecodeReason | None:
    try:
        decode_tick(encode(record))
    except Rejected as exc:
        return exc.reason
    return None


def test_read_records_trade_csv_sorts_by_time_and_numbers_seq_per_instrument(
    tmp_path: Path,
) -> None:
    path = write_csv(
        tmp_path / "trades.csv",
        """
Symbol,Timestamp,Price,Volume
BBB,2024-01-02T14:30:02Z,20.5,3
AAA,2024-01-02T14:30:00Z,10.0,100
AAA,2024-01-02T14:30:01.5Z,10.25,50
""",
    )
    records = dicts(path)
    assert [(r["instrument"], r["seq"], r["price"]) for r in records] == [
        ("AAA", 1, 10.0),
        ("AAA", 2, 10.25),
        ("BBB", 1, 20.5),
    ]
    assert [r["ts_event"] for r in records] == [T0, T0 + 1_500_000_000, T0 + 2_000_000_000]
    ticks = [decode_tick(encode(r), frozenset({"AAA", "BBB"})) for r in records]
    assert all(t.kind is TickKind.TRADE and t.ts_init == t.ts_event for t in ticks)
    assert ticks[0].size == 100.0


def test_read_records_quote_csv_is_detected_and_validates(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "quotes.csv",
        f"""
instrument,ts_event,bid,ask,bid_size,ask_size
AAA,{T0},9.99,10.01,200,300
AAA,{T0 + 1},9.98,10.00,100,100
""",
    )
    records = dicts(path)
    ticks = [decode_tick(encode(r)) for r in records]
    assert [t.kind for t in ticks] == [TickKind.QUOTE] * 2
    assert ticks[0].price == pytest.approx(10.0) and ticks[0].ask_size == 300.0
    assert [t.seq for t in ticks] == [1, 2]
    assert [t.ts_event for t in ticks] == [T0, T0 + 1]  # exact to the nanosecond


def test_read_records_parquet_bars_become_four_trades_inside_each_bar(tmp_path: Path) -> None:
    minute = 60_000_000_000
    table = pa.table(
        {
            "ticker": ["AAA", "AAA", "BBB"],
            "ts": [T0, T0 + minute, T0],
            "open": [10.0, 11.0, 50.0],
            "high": [12.0, 11.5, 51.0],
            "low": [9.0, 10.0, 48.0],
            "close": [11.0, 10.5, 49.0],
            "volume": [400.0, 800.0, 40.0],
        }
    )
    pq.write_table(table, tmp_path / "bars.parquet")
    records = dicts(tmp_path / "bars.parquet")
    aaa = [r for r in records if r["instrument"] == "AAA"]
    # Up bar: open, low, high, close; down bar: open, high, low, close.
    assert [r["price"] for r in aaa] == [10.0, 9.0, 12.0, 11.0, 11.0, 11.5, 10.0, 10.5]
    assert [r["ts_event"] - T0 for r in aaa[:4]] == [0, minute // 4, minute // 2, 3 * minute // 4]
    assert [r["size"] for r in aaa] == [100.0] * 4 + [200.0] * 4
    assert [r["seq"] for r in aaa] == list(range(1, 9))
    assert [r["ts_event"] for r in records] == sorted(r["ts_event"] for r in records)
    assert all(reason(r) is None for r in records)


def test_read_records_given_seq_and_epoch_seconds_are_kept_and_scaled(tmp_path: Path) -> None:
    table = pa.table({"symbol": ["AAA", "AAA"], "time": [1_704_205_800, 1_704_205_801],
                      "price": [1.0, 2.0], "size": [1.0, 1.0], "seq": [7, 8]})  # fmt: skip
    pq.write_table(table, tmp_path / "trades.pq")
    records = dicts(tmp_path / "trades.pq")
    assert [r["seq"] for r in records] == [7, 8]
    assert [r["ts_event"] for r in records] == [T0, T0 + 1_000_000_000]


def test_read_records_dates_and_close_column_replay_as_daily_trades(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "daily.csv", "date,Name,close\n2024-01-03,AAA,5\n2024-01-02,AAA,4")
    records = dicts(path)
    midnight = int(datetime(2024, 1, 2, tzinfo=UTC).timestamp()) * 1_000_000_000
    assert [(r["ts_event"], r["price"], r["size"]) for r in records] == [
        (midnight, 4.0, 1.0),
        (midnight + 86_400_000_000_000, 5.0, 1.0),
    ]


def test_read_records_bad_csv_values_are_rejected_with_precise_reasons(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        f"""
instrument,ts,price,size
AAA,{T0},NaN,1
AAA,{T0 + 1},1.0,inf
AAA,{T0 + 2},,1
AAA,{T0 + 3},-1.0,1
AAA,{T0 + 4},1.0,-5
AAA,{T0 + 5},1.0,2
""",
    )
    assert [reason(r) for r in dicts(path)] == [
        DecodeReason.NON_FINITE,
        DecodeReason.NON_FINITE,
        DecodeReason.MISSING_FIELD,
        DecodeReason.NON_POSITIVE_PRICE,
        DecodeReason.NEGATIVE_SIZE,
        None,
    ]


def test_read_records_jsonl_passes_lines_through_as_raw_bytes(tmp_path: Path) -> None:
    lines = [
        b'{"instrument":"AAA","seq":1,"price":NaN}',
        b"{not json",
        b'{"instrument":"AAA","seq":1,"size":-1}',
        b"x" * 70_000,
        b'  {"spaced": true}  ',
    ]
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b"\n".join(lines[:2]) + b"\r\n\n" + b"\n".join(lines[2:]) + b"\n")
    assert list(read_records(path)) == lines


def test_read_records_forced_kind_overrides_detection(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "mixed.csv", f"instrument,ts,price,bid,ask\nAAA,{T0},1.0,0.9,1.1")
    assert dicts(path)[0]["kind"] == "trade"
    assert dicts(path, kind="quote")[0]["kind"] == "quote"
    assert next(read_records(path, kind=FileKind.JSONL)) == b"instrument,ts,price,bid,ask"


def test_read_records_unknown_layout_raises_format_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "odd.csv", f"instrument,ts,colour\nAAA,{T0},red")
    with pytest.raises(ReplayFormatError, match="no price"):
        list(read_records(path))
    for kind in ("bar", "trade"):
        with pytest.raises(ReplayFormatError, match="missing"):
            list(read_records(path, kind=kind))


def test_read_records_gzipped_csv_and_jsonl_are_read(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "t.csv.gz", "wt") as out:
        out.write(f"instrument,ts,price\nAAA,{T0},1.5\n")
    with gzip.open(tmp_path / "t.jsonl.gz", "wb") as raw:
        raw.write(b'{"a":1}\n')
    assert dicts(tmp_path / "t.csv.gz")[0]["price"] == 1.5
    assert list(read_records(tmp_path / "t.jsonl.gz")) == [b'{"a":1}']


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now_ns = 1_000
        self.sleeps: list[float] = []

    def clock(self) -> int:
        return self.now_ns

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_ns += int(seconds * 1e9)


def records_at(*offsets_ms: int) -> list[dict[str, int]]:
    return [{"ts_event": T0 + offset * 1_000_000} for offset in offsets_ms]


def test_paced_without_speed_never_sleeps() -> None:
    fake = FakeTime()
    records = records_at(0, 1_000, 5_000)
    assert list(paced(records, None, clock=fake.clock, sleep=fake.sleep)) == records
    assert fake.sleeps == []


def test_paced_at_double_speed_sleeps_half_the_event_gaps() -> None:
    fake = FakeTime()
    records = records_at(0, 1_000, 1_000, 5_000)
    assert list(paced(records, 2.0, clock=fake.clock, sleep=fake.sleep)) == records
    assert fake.sleeps == pytest.approx([0.5, 2.0])


def test_paced_skips_tiny_sleeps_without_drifting() -> None:
    fake = FakeTime()
    records = records_at(*range(0, 11))  # 1 ms apart, below the 2 ms threshold
    list(paced(records, 1.0, clock=fake.clock, sleep=fake.sleep, min_sleep_ns=2_000_000))
    assert sum(fake.sleeps) == pytest.approx(0.010 - 0.0, abs=0.002)
    assert all(s >= 0.002 for s in fake.sleeps)


def test_paced_raw_bytes_use_their_ts_event_and_malformed_lines_pass_at_once() -> None:
    fake = FakeTime()
    raw = [b'{"ts_event":%d}' % T0, b"{broken", b'{"ts_event":%d}' % (T0 + 3_000_000_000)]
    assert list(paced(raw, 1.0, clock=fake.clock, sleep=fake.sleep)) == raw
    assert fake.sleeps == pytest.approx([3.0])


def test_paced_with_non_positive_speed_raises() -> None:
    with pytest.raises(ValueError, match="speed"):
        paced([], 0.0)


def test_progress_draws_one_rewritten_line_per_interval() -> None:
    stream, now = io.StringIO(), [0.0]
    progress = Progress(4, label="ticks", stream=stream, interval_s=0.5, clock=lambda: now[0])
    for _ in tracked(range(4), progress):
        now[0] += 0.25
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n")
    assert "ticks: 2 done, 4/s, 50.0%" in text
    assert "ticks: 4 done" in text and "100.0%" in text


def test_progress_closed_twice_ends_with_one_average_rate_line() -> None:
    stream, now = io.StringIO(), [0.0]
    with Progress(4, label="ticks", stream=stream, clock=lambda: now[0]) as progress:
        for _ in tracked(range(4), progress):
            now[0] += 0.5
    text = stream.getvalue()
    assert text.count("\n") == 1
    assert text.endswith("ticks: 4 done, 2/s, 100.0%   \n")


def test_sp500_prices_replay_as_valid_daily_trades(tmp_path: Path) -> None:
    path = tmp_path / "sp500.csv"
    rows = write_sp500_prices(path)
    records = dicts(path)
    ticks = [decode_tick(encode(r), None) for r in records]
    assert rows == len(ticks) == 1_257 * 10
    assert len({t.instrument for t in ticks}) == 10
    first = datetime.fromtimestamp(ticks[0].ts_event / 1e9, tz=UTC)
    assert (first.date().isoformat(), first.hour) == ("2013-02-11", 21)  # 16:00 EST
    last_seq = {t.instrument: t.seq for t in ticks}
    assert set(last_seq.values()) == {1_257}
    assert [t.ts_event for t in ticks] == sorted(t.ts_event for t in ticks)
