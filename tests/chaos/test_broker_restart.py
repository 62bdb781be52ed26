"""R4, second half: the local broker restarted mid-run (memory storage: every topic lost).

The flows must not carry on silently: each still running exits non-zero (its source
sees the log it read is gone: `LogLostError`). Then the documented procedure
(`dataflows.ops.recover`) runs as a user would: `hfl recover --confirm` (stores moved
aside, topics re-created), `hfl feed replay` of the same JSON lines, the flows
started again, `hfl reconcile`. Every table must equal golden (P&L snapshots
reported apart, see `FILL_TIMING_DEPENDENT`). Time to recover: from the broker
restart until the trading flow emits predictions for a later tick than anything
before the loss; its phases are reported too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from connectors.topic import PREDICTIONS
from tests.chaos.harness import (
    ROOT,
    Dump,
    PrivateBroker,
    Run,
    Tail,
    compare_tables,
    dump,
    tick_times,
)

LOSS_AT = 0.5
FLOWS = ("persist", "gateway", "trading")


def hfl(run: Run, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an `hfl` command in the run's namespace, recovery stores and store."""
    env = run.env | {"HFL_RECOVERY__DIRECTORY": str(run.directory / "recovery")}
    return subprocess.run(
        [sys.executable, "-m", "dataflows.commands", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_broker_restart_recovered_by_replay_equals_golden(
    private_broker: PrivateBroker,
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    golden: Dump,
    record: Callable[[str, dict[str, Any]], None],
) -> None:
    run = Run("r4-restart", private_broker.bootstrap, tmp_path_factory.mktemp("r4r"), len(lines))
    replay = run.directory / "replay.jsonl"
    run.prepare(lines)
    replay.write_bytes(b"\n".join(lines) + b"\n")
    for name in FLOWS:
        run.start(name)
    tail = Tail(run.bootstrap, run.prefix + PREDICTIONS)
    try:
        tail.advance_past(
            tick_times(lines)[int(len(lines) * LOSS_AT)], time.monotonic() + 600, run.logs
        )
        reached = tail.max_ts
    finally:
        tail.close()

    refused = hfl(run, "recover", "--confirm")  # nothing lost yet: must not start over
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "nothing to recover" in refused.stderr
    running = sorted(name for name, child in run.children.items() if child.process.poll() is None)
    lost_at = time.monotonic()
    private_broker.restart_empty()
    after_loss = run.finish(timeout_s=120)
    stopped_at = time.monotonic()
    recover = hfl(run, "recover", "--confirm")
    assert recover.returncode == 0, recover.stdout + recover.stderr
    recovered_at = time.monotonic()
    feed = hfl(run, "feed", "replay", str(replay))
    assert feed.returncode == 0, feed.stdout + feed.stderr
    published_at = time.monotonic()
    for name in FLOWS:
        run.start(name)
    tail = Tail(run.bootstrap, run.prefix + PREDICTIONS)
    try:
        tail.advance_past(reached, time.monotonic() + 600, run.logs)
    finally:
        tail.close()
    caught_up_at = time.monotonic()
    codes = run.finish()
    assert all(code == 0 for code in codes.values()), f"{codes}\n{run.logs()}"
    reconcile = hfl(run, "reconcile")
    figures, differing = compare_tables(golden, dump(run.store))
    record(
        "R4-restart",
        figures
        | {
            "differing_tables": differing,
            "running_at_loss": running,
            "exit_codes_after_loss": after_loss,
            "recover_output": recover.stdout.strip().splitlines()[-2:],
            "reconcile_consistent": reconcile.returncode == 0,
            "recovery_s_p99": round(caught_up_at - lost_at, 3),
            "phases_s": {
                "flows_exit": round(stopped_at - lost_at, 3),
                "hfl_recover": round(recovered_at - stopped_at, 3),
                "feed_replay": round(published_at - recovered_at, 3),
                "replay_to_loss_point": round(caught_up_at - published_at, 3),
            },
        },
    )
    assert running, "the loss came after every flow finished"
    assert all(after_loss[name] not in (0, None) for name in running), run.logs()
    assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr
    assert differing == []
