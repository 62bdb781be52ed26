"""`hfl recover --confirm`: start the flows over after the broker lost its log.

The local broker keeps topics in memory, so a restart loses every record. The flows
then refuse to resume (`connectors.kafka.source.check_resume`): their recovery
stores point into a log that no longer exists, and no offset in the new, empty log
would be right. Resuming anyway would silently skip or repeat data.

The recovery procedure restarts the system from a consistent point, the beginning:

1. stop the flows (`hfl up` Ctrl-C) and start the broker (`hfl broker start`);
2. ``hfl recover --confirm`` checks that the recovery stores really no longer fit
   the broker (else it refuses), moves every flow's store aside to
   ``<recovery dir>/lost-<UTC time>/`` (kept, never deleted), initialises empty
   ones, and deletes and re-creates every topic of the namespace, so that records
   written after the loss (alerts of the failing flows) do not mix with the replay;
3. re-publish the feed from its source, byte for byte
   (``hfl feed replay ticks.jsonl``);
4. start the flows (``hfl up``). They replay the whole input deterministically: the
   same ids, orders and fills; ClickHouse absorbs the rows it already has
   (ReplacingMergeTree, read with ``FINAL``);
5. ``hfl reconcile`` once they caught up: the log and the store must agree.

All flows start over together because each reads the others' output topics. Control
commands sent before the loss (kill, resume, model promotions) are not in the feed:
send them again. With a real venue, re-sent orders carry their original
`client_order_id`, which the venue must reject as duplicates; the paper broker
rebuilds its book from the replay.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from connectors.kafka.admin import create_topics, delete_topics
from connectors.kafka.reader import end_offsets
from connectors.kafka.source import ResumeError, check_resume_at
from connectors.topic import ALL_TOPICS
from dataflows.ops.process import FLOWS, init_recovery
from dataflows.ops.recovery_store import resumable
from dataflows.settings import Settings
from risk.domain.error import HflError


@dataclass(frozen=True, slots=True, kw_only=True)
class StartedOver:
    """What `recover_lost_log` did: why, where the old stores went, topics re-created."""

    problems: dict[str, str]
    archive: Path
    topics: list[str]


def misfits(bootstrap: str, recovery_root: Path) -> dict[str, str]:
    """Per flow whose recovery store no longer fits the broker's log, the reason.

    The same check a flow makes before it resumes; flows without a store (or whose
    store has not recorded an execution yet) fit.
    """
    problems: dict[str, str] = {}
    for flow in FLOWS:
        store = recovery_root / flow
        state = resumable(store) if (store / "part-0.sqlite3").exists() else None
        for (_, index), offsets in sorted((state.offsets if state else {}).items()):
            try:
                check_resume_at(bootstrap, index, list(offsets), offsets)
            except ResumeError as exc:
                problems[flow] = str(exc)
                break
    return problems


def recover_lost_log(settings: Settings, recovery_root: Path) -> StartedOver:
    """Set the stores and topics up to start over after the broker lost its log.

    Raises:
        HflError: every store still fits the log (nothing was lost: refusing to throw
            recovery state away), or a re-created topic is not empty.
    """
    kafka = settings.kafka
    problems = misfits(kafka.bootstrap, recovery_root)
    if not problems:
        msg = (
            "every recovery store still fits the broker's log: nothing to recover. "
            "`hfl recover` is only for a broker that lost its data."
        )
        raise HflError(msg)
    archive = recovery_root / time.strftime("lost-%Y%m%dT%H%M%SZ", time.gmtime())
    for flow in FLOWS:
        if (recovery_root / flow).exists():
            archive.mkdir(parents=True, exist_ok=True)
            shutil.move(recovery_root / flow, archive / flow)
        init_recovery(recovery_root / flow)
    names = [kafka.topic_prefix + spec.name for spec in ALL_TOPICS]
    delete_topics(kafka.bootstrap, names)
    create_topics(kafka.bootstrap, **kafka.topic_layout())
    _check_empty(kafka.bootstrap, names)
    return StartedOver(problems=problems, archive=archive, topics=names)


def _check_empty(bootstrap: str, names: list[str]) -> None:
    full = [name for name, end in end_offsets(bootstrap, names).items() if end > 0]
    if full:
        raise HflError(f"topics not empty after re-creating them: {', '.join(full)}")
