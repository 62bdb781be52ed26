"""Run account inputs through the risk gate step of a real Bytewax flow (flow tests)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig
from bytewax.testing import TestingSink, TestingSource, run_main

from dataflows.flows.account import AccountInput, CommandJournal, GateJournal, account_logic
from dataflows.settings import Settings


def run_gate(
    settings: Settings,
    inputs: Sequence[AccountInput | object],
    *,
    batch_size: int = 100,
    recovery_dir: Path | None = None,
    journal: CommandJournal | None = None,
    out: list[object] | None = None,
    inputs_journal: GateJournal | None = None,
) -> list[object]:
    """Run account inputs, in order, through the risk gate step of a Bytewax flow.

    With `recovery_dir` each batch is an epoch with its snapshot, so an ABORT in the
    inputs resumes where it stopped; `journal`: the gate's command journal and
    `inputs_journal` its input journal (default: on the configured broker); `out`: where
    outputs go (kept if the run fails).
    """
    account = settings.trading.account
    out = [] if out is None else out
    flow = Dataflow("gate_test")
    keyed = op.map(
        "by_account",
        op.input("account_in", flow, TestingSource(inputs, batch_size=batch_size)),
        lambda event: (account, event),
    )
    decisions = op.stateful_batch(
        "risk_gate", keyed, account_logic(settings, journal, inputs=inputs_journal)
    )
    op.output("out", op.key_rm("account_events", decisions), TestingSink(out))
    if recovery_dir is None:
        run_main(flow)
    else:
        recovery = RecoveryConfig(str(recovery_dir))
        run_main(flow, epoch_interval=datetime.timedelta(0), recovery_config=recovery)
    return out
