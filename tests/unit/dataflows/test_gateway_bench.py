"""`hfl bench gateway` prints both runs' snapshot figures as JSON on its last line."""

from __future__ import annotations

import orjson
import pytest

from dataflows.commands import main


def test_bench_gateway_trims_snapshots_and_fills_identically(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "gateway", "--ticks", "4000", "--lead-s", "1"]) == 0

    figures = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    full, trimmed = figures["full"], figures["trimmed"]
    assert figures["outputs_identical"] is True
    assert figures["fills"] > 0
    assert full["snapshots"] == trimmed["snapshots"] > 0
    assert trimmed["snapshot_kb_max"] < full["snapshot_kb_max"]
    assert trimmed["buffered_ticks_max"] < full["buffered_ticks_max"]
