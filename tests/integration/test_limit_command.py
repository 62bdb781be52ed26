"""`hfl limits set` on the real broker: the command on `hfl.control` with its audit
event (who, when, why) on `hfl.audit`, decoded as the trading flow does and applied by
the risk gate step of a real Bytewax flow from the next decision."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

from support.gate_flow import run_gate

from connectors.codec import decode_control
from connectors.kafka.admin import create_topics
from connectors.kafka.reader import read_log
from connectors.topic import AUDIT, CONTROL
from dataflows.settings import Settings
from risk.domain import Approved, DenialReason, Denied, LimitCommand
from risk.fill_sync import FillSyncMode
from tests.unit.risk.test_gate import D, make_signal

ROOT = Path(__file__).resolve().parents[2]


def test_limits_set_publishes_an_audited_command_the_gate_applies_from_the_next_decision(
    kafka_bootstrap: str,
) -> None:
    prefix = f"limits-{uuid.uuid4().hex[:8]}."
    create_topics(kafka_bootstrap, prefix=prefix)
    env = os.environ | {"HFL_KAFKA__BOOTSTRAP": kafka_bootstrap, "HFL_KAFKA__TOPIC_PREFIX": prefix}
    args = ["limits", "set", "--instrument", "AAPL", "--max-position", "50"]
    args += ["--reason", "desk cut", "--no-wait"]  # signed with the admin key (conftest)
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.commands", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "max_position 50 on AAPL sent" in done.stdout

    (envelope,) = read_log(kafka_bootstrap, prefix + CONTROL, timeout_s=10)
    command = decode_control(str(envelope["payload"]).encode())
    assert isinstance(command, LimitCommand)
    assert (command.instrument, command.max_position, command.actor) == (
        "AAPL",
        D(50),
        "pytest-admin",
    )
    (audit,) = read_log(kafka_bootstrap, prefix + AUDIT, timeout_s=10)
    assert (audit["action"], audit["actor"], audit["reason"]) == (
        "set_limits",
        "pytest-admin",
        "desk cut",
    )
    assert audit["ts_event"] == command.ts_event
    assert command.command_id in audit["detail"]

    settings = Settings()
    settings = replace(
        settings,
        risk=replace(settings.risk, fill_sync=FillSyncMode.ARRIVAL),
        trading=replace(settings.trading, account=command.account),
    )
    signals = [make_signal(1, 100.0), make_signal(1, 100.0, instrument="MSFT")]  # 100 each
    unlimited = [o for o in run_gate(settings, signals) if isinstance(o, Approved | Denied)]
    assert [type(d).__name__ for d in unlimited] == ["Approved", "Approved"]
    limited = [
        o for o in run_gate(settings, [command, *signals]) if isinstance(o, Approved | Denied)
    ]
    assert isinstance(limited[0], Denied) and limited[0].reason is DenialReason.MAX_POSITION
    assert isinstance(limited[1], Approved)  # another instrument keeps its limit
