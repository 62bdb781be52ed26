"""Recovery snapshots are versioned: a store written with another state version fails closed."""

from __future__ import annotations

import pickle
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSource, run_main
from conftest import BATCH_SIZE, trading_flow, trading_runner

from connectors.kafka.record import KafkaRecord
from dataflows.flows import account, trading
from dataflows.flows.shim import StateVersionError, restore
from dataflows.settings import Settings
from risk.domain import Order


def test_a_snapshot_of_the_expected_version_restores_its_state() -> None:
    assert restore((3, pickle.dumps({"a": 1})), "flow.step", 3) == {"a": 1}


@pytest.mark.parametrize(
    ("snapshot", "stored"),
    [((1, pickle.dumps("state")), "1"), ({"an": "unversioned state"}, "none (unversioned)")],
)
def test_a_snapshot_of_another_version_is_refused_before_unpickling(
    snapshot: object, stored: str
) -> None:
    with pytest.raises(StateVersionError) as raised:
        restore(snapshot, "trading.risk_gate", 2)
    message = str(raised.value)
    assert f"'trading.risk_gate' has state version {stored}, this code expects 2" in message
    assert "move their recovery stores (under var/recovery by default) aside" in message
    assert "model.warm_start" in message


@pytest.mark.parametrize(
    "versioned", [(trading, "INSTRUMENT_STATE_VERSION"), (account, "ACCOUNT_STATE_VERSION")]
)
def test_resuming_with_a_newer_state_version_stops_the_flow_before_any_order(
    settings: Settings,
    tick_records: list[KafkaRecord],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    versioned: tuple[ModuleType, str],
) -> None:
    init_db_dir(tmp_path, 1)
    run = trading_runner(settings)
    half = len(tick_records) // 2 // BATCH_SIZE * BATCH_SIZE
    with_abort = [*tick_records[:half], TestingSource.ABORT(), *tick_records[half:]]
    before = run(with_abort, recovery_dir=tmp_path)
    assert any(isinstance(event, Order) for event in before)  # the gate has state to resume

    module, version = versioned
    stored = getattr(module, version)
    monkeypatch.setattr(module, version, stored + 1)
    out: list[object] = []
    flow = trading_flow(settings, with_abort, out, BATCH_SIZE)
    with pytest.raises(
        Exception, match=f"has state version {stored}, this code expects {stored + 1}"
    ):
        run_main(flow, epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(tmp_path)))
    assert not [event for event in out if isinstance(event, Order)]
