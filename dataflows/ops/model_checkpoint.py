"""Model checkpoints in ClickHouse: list them (`hfl models checkpoints`), warm-start from them.

The trading flow emits a `ModelCheckpoint` per instrument on its event-time schedule,
or, with pooled models, one for the whole pool (instrument `*`, `online_models.pool`);
the persist flow writes it to `model_checkpoints` like any other event, so the
checkpoint is as durable as the store and works the same on embedded chDB and on a
server. A fresh trading flow with `model.warm_start` set reads the chosen checkpoints
once at start-up, verifies each digest before unpickling (fail closed: a mismatch stops
the flow with `CheckpointError`) and starts those instruments' models from them.
"""

from __future__ import annotations

import logging

from dataflows.ops.model_command import quoted
from dataflows.settings import Settings
from online_models.champion import restore_model_set
from online_models.checkpoint import CheckpointError
from online_models.instrument import WarmStart
from online_models.pool import POOL, PoolState, restore_pool
from risk.domain import ModelCheckpoint
from sinks.query import format_table, query, reader

LOG = logging.getLogger("hfl.trading.warm_start")

LATEST = "latest"

LIST_SQL = """
SELECT checkpoint_id, instrument, model, version_id, seq, size_bytes, sha256, code_version,
       ts_event
FROM model_checkpoints FINAL
{where}
ORDER BY instrument, ts_event DESC
LIMIT {per_instrument} BY instrument
"""

LOAD_SQL = """
SELECT checkpoint_id, instrument, model, models, version_id, params_hash, code_version, seq,
       tick_id, size_bytes, sha256, blob, toUnixTimestamp64Nano(ts_event) AS ts_event,
       toUnixTimestamp64Nano(ts_init) AS ts_init
FROM model_checkpoints FINAL
WHERE {where}
ORDER BY instrument, ts_event DESC, seq DESC
LIMIT 1 BY instrument
"""


def list_checkpoints(settings: Settings, instrument: str = "", per_instrument: int = 10) -> str:
    """The newest `per_instrument` checkpoints of each instrument (or of one), as a table."""
    where = f"WHERE instrument = {quoted(instrument)}" if instrument else ""
    columns, rows = query(
        settings.clickhouse.url.reveal(),
        LIST_SQL.format(where=where, per_instrument=int(per_instrument)),
    )
    return format_table(columns, rows)


def load_warm_start(settings: Settings, code_version: str) -> PoolState:
    """The models to start from, as `model.warm_start` chooses.

    Nothing when warm start is off. `latest` takes each configured instrument's
    newest checkpoint, or with pooled models the pool's newest; any other value is one
    checkpoint id (of one instrument, or of the pool).
    An embedded store is read through the persist flow's query server, never opened
    here (that would lock the persist flow out). A checkpoint written by other code
    than `code_version` still loads, with a warning: its classes must still unpickle.

    Raises:
        CheckpointError: the chosen checkpoint does not exist, or a digest does not
            match (nothing is unpickled then).
        QueryError: the store cannot be read.
    """
    choice = settings.model.warm_start
    if not choice:
        return PoolState()
    pooled = settings.model.pooled
    names = (POOL,) if pooled else settings.trading.instruments
    instruments = ", ".join(quoted(name) for name in names)
    where = f"instrument IN ({instruments})"
    if choice != LATEST:
        where += f" AND checkpoint_id = {quoted(choice)}"
    columns, rows = reader(settings.clickhouse.url.reveal())(LOAD_SQL.format(where=where))
    if not rows:
        msg = f"model.warm_start={choice!r}: no such checkpoint for {instruments}"
        raise CheckpointError(msg)
    checkpoints = [
        ModelCheckpoint(**fields | {"models": tuple(fields["models"])})
        for fields in (dict(zip(columns, row, strict=True)) for row in rows)
    ]
    start = (
        restore_pool(checkpoints[0])
        if pooled
        else PoolState(
            sets={
                checkpoint.instrument: WarmStart(
                    models=restore_model_set(checkpoint), after_seq=checkpoint.seq
                )
                for checkpoint in checkpoints
            }
        )
    )
    for checkpoint in checkpoints:
        if checkpoint.code_version != code_version:
            LOG.warning(
                "warm start of %s from checkpoint %s written by code %s",
                checkpoint.instrument,
                checkpoint.checkpoint_id,
                checkpoint.code_version,
            )
        LOG.info(
            "warm start of %s from checkpoint %s (at seq %d, champion %s)",
            checkpoint.instrument,
            checkpoint.checkpoint_id,
            checkpoint.seq,
            checkpoint.model,
        )
    return start
