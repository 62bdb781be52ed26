"""Stage timings are kept only when the bench asks for them, and written at exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.codec import loads
from connectors.telemetry import stage


def test_record_keeps_nothing_unless_the_bench_set_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage._Log, "path", None)
    monkeypatch.setattr(stage._Log, "rows", [])

    stage.record("x", 1, 2, 3)

    assert not stage.enabled()
    assert stage._Log.rows == []


def test_records_are_written_as_json_lines_per_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(stage._Log, "path", str(tmp_path / "stages"))
    monkeypatch.setattr(stage._Log, "rows", [])

    stage.record("gateway.paper_book", 10, 25, 4)
    stage.record("gateway.ticks_in.source", 30, 30, 2000, 1_500_000)
    stage._write()

    (written,) = tmp_path.glob("stages.*")
    assert [loads(line) for line in written.read_bytes().splitlines()] == [
        ["gateway.paper_book", 10, 25, 4, None],
        ["gateway.ticks_in.source", 30, 30, 2000, 1_500_000],
    ]
