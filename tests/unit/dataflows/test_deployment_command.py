"""`hfl flow run`: the bytewax.run arguments a container's flow gets from its settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataflows.commands.deployment import flow_argv
from risk.domain.error import ConfigError


def test_a_single_process_flow_runs_with_recovery_and_no_cluster_flags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HFL_BYTEWAX__PROCESS_ID", raising=False)
    argv = flow_argv("gateway", Path("/app/var/recovery/gateway"))
    assert argv[0] == "dataflows.flows.gateway:build_flow()"
    assert argv[1:3] == ["-r", "/app/var/recovery/gateway"]
    assert "-i" not in argv and "-a" not in argv and "-w" not in argv


def test_a_cluster_process_gets_its_id_and_every_address_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HFL_BYTEWAX__PROCESS_ID", "1")
    monkeypatch.setenv("HFL_BYTEWAX__ADDRESSES", "trading:2101,trading-1:2101,trading-2:2101")
    argv = flow_argv("trading", Path("var/recovery/trading"))
    assert argv[argv.index("-i") + 1] == "1"
    assert argv[argv.index("-a") + 1] == "trading:2101;trading-1:2101;trading-2:2101"


def test_a_process_id_without_addresses_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HFL_BYTEWAX__PROCESS_ID", "0")
    monkeypatch.delenv("HFL_BYTEWAX__ADDRESSES", raising=False)
    with pytest.raises(ConfigError):
        flow_argv("trading", Path("var/recovery/trading"))
