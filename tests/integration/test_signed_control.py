"""Signed control commands end to end on the real broker (issue 15, item 2).

A kill signed with a trader's key halts the account. An unsigned kill, a forged
signature, a kill signed by a viewer's key and a replay of an earlier (valid) kill
each leave the state as it was and appear in `hfl.dlq` and `hfl.audit` with their
reason; the replay comes after a resume, so a wrong acceptance would show as a halt.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import orjson
import pytest
from test_end_to_end import hfl, run_env
from test_kill_switch import read_topic, start, wait_for

from connectors import topic
from connectors.codec import encode
from connectors.kafka.admin import create_topics
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord
from dataflows.ops.control import control_events
from dataflows.ops.process import stop
from dataflows.ops.signing import Signer
from dataflows.settings import load_settings
from risk.access import Role, parse_token
from risk.domain import ControlAction

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _command(action: ControlAction, reason: str) -> bytes:
    command, _ = control_events("paper-1", action, reason, "someone", ts_event=time.time_ns())
    return encode(command)


def test_only_a_fresh_command_signed_by_a_permitted_key_takes_effect(
    kafka_bootstrap: str, tmp_path: Path, api_keys: dict[Role, str]
) -> None:
    prefix = f"signed-{uuid.uuid4().hex[:8]}."
    env = run_env(kafka_bootstrap, prefix, tmp_path / "unused-clickhouse")
    settings = load_settings(ROOT / "config", env={**os.environ, **env})
    control = prefix + topic.CONTROL
    create_topics(kafka_bootstrap, prefix=prefix)
    producer = CheckedProducer(kafka_bootstrap)

    def send(value: bytes) -> None:
        producer.send([OutboundRecord(control, b"paper-1", value)])

    def signed(role: Role, value: bytes) -> bytes:
        record = OutboundRecord(control, b"paper-1", value)
        return Signer(settings, parse_token(api_keys[role])).sign([record])[0].value

    def states() -> list[str]:
        return [str(e["state"]) for e in read_topic(kafka_bootstrap, prefix + topic.RISK_EVENTS)]

    trading = start("trading", env, tmp_path)
    try:
        kill = signed(Role.TRADER, _command(ControlAction.KILL, "trader kill"))
        forged = orjson.loads(signed(Role.TRADER, _command(ControlAction.KILL, "forged")))
        forged["sig"] = "0" * 64
        send(_command(ControlAction.KILL, "unsigned kill"))
        send(orjson.dumps(forged))
        send(signed(Role.VIEWER, _command(ControlAction.KILL, "viewer kill")))
        wait_for(kafka_bootstrap, prefix + topic.DLQ, lambda records: len(records) >= 3)
        assert states() == [], "a refused command changed the trading state"

        send(kill)
        wait_for(kafka_bootstrap, prefix + topic.RISK_EVENTS, lambda events: len(events) >= 1)
        send(signed(Role.ADMIN, _command(ControlAction.RESUME, "admin resume")))
        wait_for(kafka_bootstrap, prefix + topic.RISK_EVENTS, lambda events: len(events) >= 2)
        send(kill)  # the trader's kill again, byte for byte
        dead = wait_for(kafka_bootstrap, prefix + topic.DLQ, lambda records: len(records) >= 4)
        audit = wait_for(
            kafka_bootstrap,
            prefix + topic.AUDIT,
            lambda rows: sum(r["action"] == "command_refused" for r in rows) >= 4,
        )
        time.sleep(2)  # anything the replay could still have caused
        assert states() == ["halted", "active"]
    finally:
        stop(trading)

    assert [(d["topic"], d["reason"]) for d in dead] == [
        (control, "unsigned"),
        (control, "bad_signature"),
        (control, "forbidden"),
        (control, "replayed"),
    ]
    refused = [(a["actor"], a["reason"]) for a in audit if a["action"] == "command_refused"]
    assert refused == [
        ("unknown", "unsigned"),
        ("pytest-trader", "bad_signature"),
        ("pytest-viewer", "forbidden"),
        ("pytest-trader", "replayed"),
    ]
    verified = [(a["actor"], a["reason"]) for a in audit if a["action"] == "command_verified"]
    assert verified == [("pytest-trader", "kill"), ("pytest-admin", "resume")]
    applied = [a["reason"] for a in audit if a["action"] == "control_applied"]
    assert applied == ["kill by pytest-trader: trader kill", "resume by pytest-admin: admin resume"]


def test_key_changes_are_audited_and_the_file_keeps_no_token(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"keys-{uuid.uuid4().hex[:8]}."
    create_topics(kafka_bootstrap, prefix=prefix)
    keys = tmp_path / "keys.json"
    env = {
        "HFL_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "HFL_KAFKA__TOPIC_PREFIX": prefix,
        "HFL_SECURITY__KEYS_FILE": str(keys),
    }
    created = hfl(env, "keys", "create", "--role", "trader", "--name", "carol")
    token = created.strip().splitlines()[-1]
    rotated = hfl(env, "keys", "rotate", "--name", "carol").strip().splitlines()[-1]
    hfl(env, "keys", "revoke", "--name", "carol")
    text = keys.read_text()
    assert token not in text and rotated not in text
    assert parse_token(token).secret not in text and parse_token(rotated).secret not in text
    assert "revoked" in hfl(env, "keys", "list") and "active" not in hfl(env, "keys", "list")
    audit = wait_for(kafka_bootstrap, prefix + topic.AUDIT, lambda rows: len(rows) >= 3)
    assert [(a["action"], a["subject"]) for a in audit] == [
        ("key_created", "carol"),
        ("key_rotated", "carol"),
        ("key_revoked", "carol"),
    ]
