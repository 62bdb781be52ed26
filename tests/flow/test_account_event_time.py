"""The risk gate step in a real Bytewax flow, booking in event time (`risk.fill_sync`),
with its operator-command journal on the real broker."""

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
from connectors.kafka.journal import JournalRead, KafkaJournal
from connectors.topic import COMMAND_JOURNAL, TopicSpec
from dataflows.settings import Settings
from risk.domain import (
    AuditEvent,
    ControlAction,
    Denied,
    Order,
    OrdersSent,
    PnlSnapshot,
    Position,
)
from risk.fill_sync import FillSyncMode
from tests.unit.dataflows.test_account import command, through
from tests.unit.risk.test_gate import TS, D, make_fill, make_signal

_NAMESPACES = itertools.count()


@pytest.fixture
def settings(settings: Settings, kafka_bootstrap: str) -> Settings:
    """Event time for one instrument, account "acc", a fresh journal topic on the broker."""
    prefix = f"journal{next(_NAMESPACES)}-{TS}."
    create_topics(
        kafka_bootstrap, (TopicSpec(name=COMMAND_JOURNAL, partitions=1, key=""),), prefix=prefix
    )
    kafka = replace(settings.kafka, bootstrap=kafka_bootstrap, topic_prefix=prefix)
    risk = replace(settings.risk, fill_sync=FillSyncMode.EVENT_TIME, fill_sync_delay_ms=1_000)
    trading = replace(settings.trading, instruments=("AAPL",), account="acc")
    return replace(settings, kafka=kafka, risk=risk, trading=trading)


def namespace(settings: Settings) -> Settings:
    """`settings` with a journal of its own (another topic prefix)."""
    prefix = f"{settings.kafka.topic_prefix}{next(_NAMESPACES)}."
    create_topics(
        settings.kafka.bootstrap,
        (TopicSpec(name=COMMAND_JOURNAL, partitions=1, key=""),),
        prefix=prefix,
    )
    return replace(settings, kafka=replace(settings.kafka, topic_prefix=prefix))


class CrashError(Exception):
    """The process dies here."""


def journal_args(settings: Settings) -> tuple[str, str, int]:
    kafka = settings.kafka
    return kafka.bootstrap, kafka.topic_prefix, kafka.message_timeout_ms


class CrashAfterWrite(KafkaJournal):
    """The real journal; the flow crashes right after entry `at` is acknowledged, before
    the batch with the command's effects leaves the gate."""

    def __init__(self, settings: Settings, at: int) -> None:
        super().__init__(*journal_args(settings))
        self._left = at

    def write(self, command_id: str, entry: AuditEvent) -> int:
        offset = super().write(command_id, entry)
        self._left -= 1
        if not self._left:
            raise CrashError(command_id)
        return offset


class CountingJournal(KafkaJournal):
    """The real journal, noting every resume read."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(*journal_args(settings))
        self.reads: list[tuple[int, JournalRead]] = []

    def read(self, account: str, start: int) -> JournalRead:
        read = super().read(account, start)
        self.reads.append((start, read))
        return read


def test_fills_in_the_last_second_are_booked_at_the_end_of_input(settings: Settings) -> None:
    signal = make_signal(1, 100.0)
    first = run_gate(settings, [signal, *through(TS + 1)])
    (order,) = [o for o in first if isinstance(o, Order)]
    fill = replace(make_fill(order, 40), leaves_quantity=D(60))  # 1 ns after the order
    last = make_signal(1, 100.0, ts=TS + 500_000_000)  # within the 1 s delay of the fill

    out = run_gate(settings, [signal, *through(TS + 1), fill, last, *through(TS + 10**9)])

    positions = [o for o in out if isinstance(o, Position)]
    assert [p.quantity for p in positions] == [D(40)]
    assert out.index(positions[0]) > max(
        i for i, o in enumerate(out) if type(o).__name__ in ("Approved", "Denied")
    )
    assert isinstance(out[-1], PnlSnapshot) and out[-1].ts_event == fill.ts_event


def decisions(out: list[object]) -> list[object]:
    """Outputs without the gate's promises (they follow batching) and its journal."""
    return [o for o in out if not isinstance(o, OrdersSent | AuditEvent)]


def journal_of(settings: Settings) -> list[AuditEvent]:
    """Every entry on the configured journal topic, as the gate wrote them."""
    from connectors.kafka.reader import read_log

    kafka = settings.kafka
    return [
        AuditEvent(**record)
        for record in read_log(kafka.bootstrap, kafka.topic_prefix + COMMAND_JOURNAL, 10)
    ]


SIGNALS = [make_signal((-1) ** n, 100.0 + n, ts=TS + 10 * n) for n in range(9)]
KILL, RESUME, REDUCE = (command(a, n) for n, a in enumerate(ControlAction))
BEFORE = [SIGNALS[0], *through(TS)]  # what the snapshot holds
AFTER = [
    *SIGNALS[1:3],
    *through(TS + 20),
    KILL,
    *SIGNALS[3:6],
    *through(TS + 50),
    RESUME,
    REDUCE,
    *SIGNALS[6:],
    *through(TS + 80),
]


def test_crash_replay_applies_commands_where_the_journal_says_in_any_interleaving(
    settings: Settings, tmp_path: Path
) -> None:
    uninterrupted = run_gate(settings, [*BEFORE, *AFTER], batch_size=1)
    journal = journal_of(settings)
    assert [e.action for e in journal] == ["control_applied"] * 3
    assert [o for o in uninterrupted if isinstance(o, AuditEvent)] == journal
    assert any(isinstance(d, Denied) for d in uninterrupted)

    commands = [KILL, RESUME, REDUCE]
    items = [a for a in AFTER if a not in commands]
    for n, replayed in enumerate(
        (
            [*commands, *items],  # read again before every item...
            [*items, *reversed(commands)],  # ...after every item and marker
            [*items[:3], REDUCE, RESUME, *items[3:7], KILL, *items[7:]],
        )
    ):
        crashed = namespace(settings)
        store = tmp_path / str(n)
        store.mkdir()
        init_db_dir(store, 1)
        # The crashed run got past the commands and journaled them; its last snapshot
        # did not. (One list: an ABORT triggers once.)
        inputs = [*BEFORE, TestingSource.ABORT(), *replayed]
        first = run_gate(crashed, inputs, recovery_dir=store, batch_size=1)
        for entry in journal:
            KafkaJournal(*journal_args(crashed)).write(entry.audit_id, entry)
        resumed = run_gate(crashed, inputs, recovery_dir=store, batch_size=1)
        assert decisions(first) + decisions(resumed) == decisions(uninterrupted)


def test_crash_after_the_journal_write_and_before_the_effects_replays_the_same_decisions(
    settings: Settings, tmp_path: Path
) -> None:
    """The window the synchronous journal closes: the kill is applied and journaled, the
    process dies before the batch with its effects is written; the resumed flow reads
    the kill again only after every later signal, and still decides as without the crash."""
    inputs = [*BEFORE, *(a for a in AFTER if a not in (RESUME, REDUCE))]
    uninterrupted = run_gate(settings, inputs, batch_size=1)
    assert any(isinstance(d, Denied) for d in uninterrupted)
    crashed = namespace(settings)
    store, unjournaled = tmp_path / "store", tmp_path / "unjournaled"
    store.mkdir()
    init_db_dir(store, 1)
    first: list[object] = []
    journal = CrashAfterWrite(crashed, at=1)
    with pytest.raises(RuntimeError) as crash:
        run_gate(crashed, inputs, recovery_dir=store, batch_size=1, journal=journal, out=first)
    assert isinstance(crash.value.__cause__, CrashError)
    assert not [o for o in first if isinstance(o, AuditEvent)]  # no effect of the kill left
    (entry,) = journal_of(crashed)
    kill_at = inputs.index(KILL)
    late = [*inputs[:kill_at], *inputs[kill_at + 1 :], KILL]
    shutil.copytree(store, unjournaled)
    resumed = run_gate(crashed, late, recovery_dir=store, batch_size=1)
    assert decisions(first) + decisions(resumed) == decisions(uninterrupted)
    assert journal_of(crashed) == [entry]  # replayed, not journaled again
    # Without the entry the kill would be applied where it is read again.
    lost = run_gate(namespace(settings), late, recovery_dir=unjournaled, batch_size=1)
    assert decisions(first) + decisions(lost) != decisions(uninterrupted)


def test_a_resume_reads_only_the_journal_entries_after_its_snapshot(
    settings: Settings, tmp_path: Path
) -> None:
    commands = [
        command(ControlAction.RESUME if n % 2 else ControlAction.KILL, n) for n in range(11)
    ]
    inputs: list[object] = []
    for n, each in enumerate(commands):
        ts = TS + 10 * n
        inputs += [make_signal((-1) ** n, 100.0 + n, ts=ts), *through(ts), each]
    inputs += [make_signal(1, 120.0, ts=TS + 200), *through(TS + 200)]
    uninterrupted = run_gate(settings, inputs, batch_size=1)
    assert isinstance(
        [o for o in uninterrupted if type(o).__name__ in ("Approved", "Denied")][-1], Denied
    )
    crashed = namespace(settings)
    init_db_dir(tmp_path, 1)
    first: list[object] = []
    with pytest.raises(RuntimeError):  # at the last command, its entry written
        journal = CrashAfterWrite(crashed, at=len(commands))
        run_gate(crashed, inputs, recovery_dir=tmp_path, batch_size=1, journal=journal, out=first)
    assert len(journal_of(crashed)) == len(commands)

    counting = CountingJournal(crashed)
    late = [*(i for i in inputs if i != commands[-1]), commands[-1]]
    resumed = run_gate(crashed, late, recovery_dir=tmp_path, batch_size=1, journal=counting)

    ((start, read),) = counting.reads
    assert (start, read.records, read.end) == (10, 1, 11)  # not the 10 before the snapshot
    assert [p.command_id for p in read.points] == [commands[-1].command_id]
    assert decisions(first) + decisions(resumed) == decisions(uninterrupted)
