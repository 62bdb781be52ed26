"""The risk gate step in a real Bytewax flow, journaled (`risk.fill_sync: journal`):
it decides on arrival with no gateway at all, journals its input order on the real
broker, and a resume replays that order."""

from __future__ import annotations

import itertools
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from bytewax.recovery import init_db_dir
from bytewax.testing import TestingSource
from support.gate_flow import run_gate

from connectors.kafka.admin import create_topics
from connectors.kafka.gate_journal import KafkaGateJournal
from connectors.kafka.reader import read_log
from connectors.topic import COMMAND_JOURNAL, GATE_JOURNAL, TopicSpec
from dataflows.settings import Settings
from risk.domain import Order, OrderEventKind, OrdersSent
from risk.domain.decision import RiskDecision
from risk.engine.account import input_key
from risk.fill_sync import FillSyncMode
from tests.unit.risk.test_gate import TS, make_event, make_gate, make_signal

_NAMESPACES = itertools.count()


def namespace(settings: Settings) -> Settings:
    """`settings` with journals of their own (another topic prefix)."""
    prefix = f"gj{next(_NAMESPACES)}-{TS}."
    create_topics(
        settings.kafka.bootstrap,
        (
            TopicSpec(name=COMMAND_JOURNAL, partitions=1, key=""),
            TopicSpec(name=GATE_JOURNAL, partitions=1, key=""),
        ),
        prefix=prefix,
    )
    return replace(settings, kafka=replace(settings.kafka, topic_prefix=prefix))


@pytest.fixture
def settings(settings: Settings, kafka_bootstrap: str) -> Settings:
    """Journaled, one instrument, account "acc", fresh journal topics on the broker."""
    kafka = replace(settings.kafka, bootstrap=kafka_bootstrap)
    risk = replace(settings.risk, fill_sync=FillSyncMode.JOURNAL)
    trading = replace(settings.trading, instruments=("AAPL",), account="acc")
    return namespace(replace(settings, kafka=kafka, risk=risk, trading=trading))


def journal_records(settings: Settings) -> list[dict]:
    kafka = settings.kafka
    return read_log(kafka.bootstrap, kafka.topic_prefix + GATE_JOURNAL, 10)


def decided(out: list[object]) -> list[object]:
    return [o for o in out if isinstance(o, RiskDecision | Order)]


def test_signal_is_decided_with_no_gateway_and_its_key_journaled(settings: Settings) -> None:
    signal = make_signal(1, 100.0)
    out = run_gate(settings, [signal])
    # Decided with no marker at all; the promise only lets a gateway trim its ticks.
    assert [type(o).__name__ for o in out] == ["Approved", "Order", "OrdersSent"]
    assert [o.through_ns for o in out if isinstance(o, OrdersSent)] == [signal.ts_event]
    assert journal_records(settings) == [{"account": "acc", "inputs": [input_key(signal)]}]


# Two buys and the cancel of the first one's order: booked before the second buy, the
# cancel frees the working quantity the second buy's limit check counts.
FIRST, SECOND = make_signal(1, 100.0), make_signal(1, 100.0, ts=TS + 1)
_ORDER = make_gate().on_signal(FIRST)[1]
assert _ORDER is not None
CANCEL = make_event(_ORDER, OrderEventKind.CANCELED, 0)


def test_resume_replays_the_journaled_order_not_the_order_inputs_come_again(
    settings: Settings, tmp_path: Path
) -> None:
    uninterrupted = run_gate(settings, [FIRST, CANCEL, SECOND], batch_size=1)
    records = journal_records(settings)
    assert [r["inputs"] for r in records] == [[input_key(i)] for i in (FIRST, CANCEL, SECOND)]

    crashed = namespace(settings)
    store, unjournaled = tmp_path / "store", tmp_path / "unjournaled"
    store.mkdir()
    init_db_dir(store, 1)
    # The crashed run's snapshot holds FIRST; it went on to apply CANCEL, then SECOND,
    # and journaled both, and died before the next snapshot. Resumed, the inputs come
    # again in another order.
    inputs = [FIRST, TestingSource.ABORT(), SECOND, CANCEL]
    first = run_gate(crashed, inputs, recovery_dir=store, batch_size=1)
    shutil.copytree(store, unjournaled)
    writer = KafkaGateJournal(
        crashed.kafka.bootstrap, crashed.kafka.topic_prefix, crashed.kafka.message_timeout_ms
    )
    for record in records[1:]:
        writer.record("acc", record["inputs"])
    resumed = run_gate(crashed, inputs, recovery_dir=store, batch_size=1)
    assert decided(first) + decided(resumed) == decided(uninterrupted)
    assert journal_records(crashed) == records  # replayed, not journaled again

    # Without the journal's records the resumed gate decides in arrival order: otherwise.
    lost = namespace(settings)
    KafkaGateJournal(
        lost.kafka.bootstrap, lost.kafka.topic_prefix, lost.kafka.message_timeout_ms
    ).record("acc", records[0]["inputs"])
    again = run_gate(lost, inputs, recovery_dir=unjournaled, batch_size=1)
    assert decided(first) + decided(again) != decided(uninterrupted)


def test_a_fresh_gate_replays_the_journal_of_an_execution_killed_before_its_first_snapshot(
    settings: Settings,
) -> None:
    # A flow killed before its first snapshot restarts fresh: its sources read from the
    # beginning again, and the decisions of the killed execution have left. The fresh
    # gate replays that execution's journaled order, not the order inputs come in now.
    killed = run_gate(settings, [FIRST, CANCEL, SECOND], batch_size=1)
    records = journal_records(settings)
    restarted = run_gate(settings, [FIRST, SECOND, CANCEL], batch_size=1)
    assert decided(restarted) == decided(killed)
    assert journal_records(settings) == records  # replayed, not journaled again
