"""The risk gate's command journal on the real broker (`connectors.kafka.journal`)."""

from __future__ import annotations

import uuid

import pytest

from connectors.kafka.admin import create_topics
from connectors.kafka.journal import KafkaJournal, journal_entry
from connectors.topic import COMMAND_JOURNAL, TopicSpec
from dataflows.settings import Settings
from risk.command_log import CommandPoint
from risk.domain import ControlAction
from tests.unit.dataflows.test_account import command


def new_journal(bootstrap: str) -> KafkaJournal:
    prefix = f"journal-{uuid.uuid4().hex[:8]}."
    create_topics(
        bootstrap, (TopicSpec(name=COMMAND_JOURNAL, partitions=1, key=""),), prefix=prefix
    )
    return KafkaJournal(bootstrap, prefix, Settings().kafka.message_timeout_ms)


def test_entries_are_acknowledged_at_consecutive_offsets_and_read_from_any_of_them(
    kafka_bootstrap: str,
) -> None:
    journal = new_journal(kafka_bootstrap)
    assert journal.end() == 0
    points = [CommandPoint(f"{a}-{n}", n, 100 + n) for n, a in enumerate(ControlAction)]
    for point, action in zip(points, ControlAction, strict=True):
        entry = journal_entry("acc", command(action, points.index(point)), point)
        assert journal.write(point.command_id, entry) == points.index(point)
    other = journal_entry("other", command(ControlAction.KILL, 9), CommandPoint("x", 0, 1))
    assert journal.write("x", other) == 3

    read = journal.read("acc", 1)
    assert (read.points, read.end, read.records) == (points[1:], 4, 3)
    assert journal.read("acc", 4).records == 0


def test_a_resume_from_beyond_the_journal_end_fails_closed(kafka_bootstrap: str) -> None:
    """A snapshot that read further than the journal now holds: the log was lost."""
    journal = new_journal(kafka_bootstrap)
    with pytest.raises(OSError, match="the broker lost the journal"):
        journal.read("acc", 5)
