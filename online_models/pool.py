"""Checkpoints of pooled models: the pool and every instrument's model set, sealed as one.

A pooled estimator learns from every instrument in `md.ticks` log order, so no
single instrument's checkpoint can hold it: the others keep changing it. A pooled
checkpoint is therefore one record for the whole pool (instrument `POOL`), taken on
the same event-time schedule (`model.checkpoint_interval_s`), sealed the same way
(deterministic bytes, sha256 verified before unpickling, trusted input only). It holds,
pickled together so the sharing survives:

- the pool: each pooled model's one estimator, and the schedule of the next checkpoint;
- per instrument the pool had seen, its whole model set (per-instrument models, and
  for the pooled ones that instrument's scorer: pending labels, metrics; its drift
  detectors, champion history) with `after_seq`, the last of its ticks the models learnt.

Every `after_seq` is taken at one point of the log, so a fresh flow that replays the
log from its start and gives each instrument's models only its ticks after `after_seq`
feeds the pooled estimator exactly the ticks, in exactly the order, the uninterrupted
flow fed it after that point: the warm-started models predict bit-identically.
Instruments first seen after the checkpoint start fresh model sets on the restored pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from online_models.champion import ModelPool, ModelSetConfig, sealed_checkpoint
from online_models.checkpoint import CheckpointError, unseal
from online_models.instrument import WarmStart
from risk.domain import Alert, ModelCheckpoint

POOL = "*"  # the instrument of a pooled checkpoint: every instrument of the pool


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolState:
    """The models of a model step to start from: the pool and each instrument's models."""

    pool: ModelPool = field(default_factory=ModelPool)
    sets: Mapping[str, WarmStart] = field(default_factory=dict)


def checkpoint_pool(
    state: PoolState, config: ModelSetConfig, seq: int, tick_id: str, ts_event: int
) -> ModelCheckpoint | Alert:
    """Seal `state` as the pooled checkpoint taken at tick `seq` (`tick_id`, `ts_event`).

    The pool's next boundary is set first, so the sealed pool schedules its next
    checkpoint exactly as the running one does.
    """
    every = config.checkpoint_interval_ns
    state.pool.next_checkpoint_ns = (ts_event // every + 1) * every
    pooled = tuple(state.pool.estimators)
    return sealed_checkpoint(
        state,
        config,
        instrument=POOL,
        model=config.champion.name,
        models=pooled,
        version_id="",
        params_hash=config.champion.params_hash(),
        seq=seq,
        tick_id=tick_id,
        ts_event=ts_event,
    )


def restore_pool(checkpoint: ModelCheckpoint) -> PoolState:
    """The pool sealed in `checkpoint`, its digest verified first.

    Raises:
        CheckpointError: the digest does not match, or the blob holds something
            other than a pool whose members are the model sets it lists.
    """
    state = unseal(checkpoint.blob, checkpoint.sha256)
    if (
        checkpoint.instrument != POOL
        or not isinstance(state, PoolState)
        or any(warm.models is not state.pool.members.get(name) for name, warm in state.sets.items())
    ):
        msg = (
            f"checkpoint {checkpoint.checkpoint_id} of {checkpoint.instrument!r} holds"
            f" {type(state).__name__}, not a pool of model sets"
        )
        raise CheckpointError(msg)
    return state
