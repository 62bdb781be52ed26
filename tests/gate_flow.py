"""Run account inputs through the risk gate step of a real Bytewax flow (flow tests)."""

from __future__ import annotations

from collections.abc import Sequence

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from dataflows.account import AccountInput, account_logic
from dataflows.settings import Settings


def run_gate(settings: Settings, inputs: Sequence[AccountInput]) -> list[object]:
    """Run account inputs, in order, through the risk gate step of a Bytewax flow."""
    account = settings.trading.account
    out: list[object] = []
    flow = Dataflow("gate_test")
    keyed = op.map(
        "by_account",
        op.input("account_in", flow, TestingSource(inputs, batch_size=100)),
        lambda event: (account, event),
    )
    decisions = op.stateful_batch("risk_gate", keyed, account_logic(settings))
    op.output("out", op.key_rm("account_events", decisions), TestingSink(out))
    run_main(flow)
    return out
