"""The trading dataflow: ticks → features → model → signal → risk gate → orders.

Run it with recovery on::

    python -m bytewax.run "dataflows.trading:build_flow()" -r var/recovery/trading -s 2 -b 30

Inputs: `md.ticks`, `hfl.models.control` (promote/rollback, broadcast to every
instrument's models), `hfl.fills`, `hfl.order_events`, `hfl.control`, `hfl.alerts`.
Every event it makes (bars, features, predictions, model metrics and versions, drift,
audit, signals, decisions, orders, positions, P&L, dead letters) is produced to Kafka
with checked delivery. Drift detections also go to the risk gate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from connectors import topic
from connectors.codec import Rejected, check_sequence, decode_fill_report, decode_tick
from connectors.kafka.record import KafkaRecord
from dataflows.account import AccountInput, handle_account, make_account_state
from dataflows.persist import code_version
from dataflows.settings import Settings, load_settings
from dataflows.shim import delegate
from dataflows.wiring import (
    FlowIO,
    KafkaIO,
    dead_letter,
    observe_process,
    split_dead_letters,
    topic_decoder,
)
from online_models.champion import ModelSetConfig, PromotionRule
from online_models.drift import DriftConfig
from online_models.instrument import InstrumentEvent, InstrumentPipeline, ModelSpec
from online_models.registry import ModelConfig
from online_models.signal import SignalConfig
from risk.domain import (
    Alert,
    Bar,
    ControlCommand,
    DecodeFailure,
    DriftDetected,
    ModelCommand,
    OrderEvent,
    Signal,
    Tick,
)
from sinks.metric import note_signals, observe_model_batch

TickWithOrigin = tuple[Tick, KafkaRecord]
NS_PER_S = 1_000_000_000


def model_config(settings: Settings, name: str) -> ModelConfig:
    """The configured model `name` (a key of `model.pipelines`)."""
    pipeline = settings.model.pipelines[name]
    return ModelConfig(
        name=name,
        factory=pipeline.factory,
        params=pipeline.params,
        sample_every=pipeline.sample_every,
    )


def model_spec(settings: Settings, code_version: str = "unknown") -> ModelSpec:
    """The models and signal configuration every instrument pipeline is built from."""
    model = settings.model
    promotion, drift = model.promotion, model.drift
    return ModelSpec(
        models=ModelSetConfig(
            champion=model_config(settings, model.pipeline),
            challengers=tuple(model_config(settings, name) for name in model.challengers),
            seed=model.seed,
            horizon_ns=int(model.horizon_s * NS_PER_S),
            horizon_ticks=model.horizon_ticks,
            max_pending=model.max_pending,
            rolling_window=model.rolling_window,
            metrics_interval_ns=int(model.metrics_interval_s * NS_PER_S),
            promotion=PromotionRule(
                enabled=promotion.enabled, min_labels=promotion.min_labels, margin=promotion.margin
            ),
            drift=DriftConfig(
                watch_error=drift.watch_error,
                error_delta=drift.error_delta,
                features=drift.features,
                feature_threshold=drift.feature_threshold,
                feature_min_instances=drift.feature_min_instances,
            ),
            code_version=code_version,
        ),
        signal=SignalConfig(
            enter_long=model.enter_long,
            exit_long=model.exit_long,
            enter_short=model.enter_short,
            exit_short=model.exit_short,
            min_labelled=model.min_labelled,
        ),
    )


def decode_ticks(
    instruments: frozenset[str],
) -> Callable[[list[KafkaRecord]], list[tuple[str, TickWithOrigin] | DecodeFailure]]:
    """Batch decoder: valid ticks keyed by instrument, everything else a dead letter."""

    def decode(records: list[KafkaRecord]) -> list[tuple[str, TickWithOrigin] | DecodeFailure]:
        out: list[tuple[str, TickWithOrigin] | DecodeFailure] = []
        for record in records:
            try:
                tick = decode_tick(record.value, instruments)
            except Rejected as rejected:
                out.append(dead_letter(record, rejected))
            else:
                out.append((tick.instrument, (tick, record)))
        return out

    return decode


@dataclass(slots=True)
class InstrumentState:
    """Sequence guard plus the instrument's pipeline, built on its first tick.

    Bytewax hands a state builder no key, so the pipeline learns its instrument
    from the first tick routed to it.
    """

    spec: ModelSpec
    pipeline: InstrumentPipeline | None = None
    last_seq: int | None = None


def handle_ticks(
    state: InstrumentState, batch: list[TickWithOrigin | ModelCommand]
) -> list[InstrumentEvent | DecodeFailure]:
    """Run a batch of one instrument's ticks (and model commands) through its pipeline."""
    started = time.perf_counter()
    out: list[InstrumentEvent | DecodeFailure] = []
    for item in batch:
        if isinstance(item, ModelCommand):
            if state.pipeline is None:
                state.pipeline = InstrumentPipeline(item.instrument, state.spec)
            state.pipeline.apply(item, out)  # type: ignore[arg-type]
            continue
        tick, record = item
        problem = check_sequence(state.last_seq, tick.seq)
        if problem is not None:
            detail = f"seq {tick.seq} after {state.last_seq}"
            out.append(dead_letter(record, Rejected(problem, detail)))
            continue
        state.last_seq = tick.seq
        if state.pipeline is None:
            state.pipeline = InstrumentPipeline(tick.instrument, state.spec)
        produced = len(out)
        state.pipeline.update(tick, out)  # type: ignore[arg-type]
        note_signals(out[produced:], tick.ts_init)
    observe_model_batch(time.perf_counter() - started, len(batch))
    return out


def for_instruments(
    instruments: tuple[str, ...],
) -> Callable[[ModelCommand], list[tuple[str, ModelCommand]]]:
    """Key a model command by every instrument it addresses ('' addresses all of them)."""

    def broadcast(command: ModelCommand) -> list[tuple[str, ModelCommand]]:
        targets = (command.instrument,) if command.instrument else instruments
        return [
            (name, replace(command, instrument=name)) for name in targets if name in instruments
        ]

    return broadcast


def to_account(account: str) -> Callable[[list[object]], list[tuple[str, AccountInput]]]:
    """Select what the account gate needs from instrument events: signals, 1 s bars and
    drift detections (which may restrict the instrument).

    `stateful_batch` emits a batch's output grouped by instrument; sorting by the
    causing tick's time (stable, so one tick's bar stays before its signal) hands the
    gate the same sequence however the input happened to be batched.
    """

    def select(events: list[object]) -> list[tuple[str, AccountInput]]:
        chosen = [
            event
            for event in events
            if isinstance(event, Signal | DriftDetected)
            or (isinstance(event, Bar) and event.interval_s == 1)
        ]
        chosen.sort(key=_causal_order)
        return [(account, event) for event in chosen]

    return select


def _causal_order(event: Signal | Bar | DriftDetected) -> tuple[int, str]:
    return event.ts_init, event.instrument


def inbound_types(prefix: str) -> Callable[[str], type | Callable[[bytes], object]]:
    """Which type each inbound topic carries (fills share theirs with progress markers)."""
    types: dict[str, type | Callable[[bytes], object]] = {
        prefix + topic.FILLS: decode_fill_report,
        prefix + topic.ORDER_EVENTS: OrderEvent,
        prefix + topic.CONTROL: ControlCommand,
        prefix + topic.ALERTS: Alert,
    }
    return types.__getitem__


def build_flow(settings: Settings | None = None, io: FlowIO | None = None) -> Dataflow:
    """Build the trading dataflow from `settings` (default: config files + environment).

    `io` (default Kafka) supplies the inputs and the output; tests pass lists.
    """
    settings = settings or load_settings()
    observe_process("trading")
    io = io or KafkaIO(settings)
    flow = Dataflow("trading")
    instruments = frozenset(settings.trading.instruments)
    spec = model_spec(settings, code_version())

    ticks = op.flat_map_batch(
        "decode_ticks",
        io.input("ticks_in", flow, topic.TICKS),
        decode_ticks(instruments),
    )
    valid_ticks, bad_ticks = split_dead_letters("split_ticks", ticks)
    commands = op.flat_map_batch(
        "decode_model_commands",
        io.input("model_control_in", flow, topic.MODEL_CONTROL),
        topic_decoder(lambda name: ModelCommand),
    )
    valid_commands, bad_commands = split_dead_letters("split_model_commands", commands)
    model_commands = op.flat_map(
        "model_commands_by_instrument",
        valid_commands,
        for_instruments(settings.trading.instruments),
    )
    instrument_events = op.key_rm(
        "instrument_events",
        op.stateful_batch(
            "instrument_pipeline",
            op.merge("instrument_in", valid_ticks, model_commands),
            delegate(lambda: InstrumentState(spec), handle_ticks),
        ),
    )

    account = settings.trading.account
    inbound = op.flat_map_batch(
        "decode_inbound",
        io.input("inbound_in", flow, topic.FILLS, topic.ORDER_EVENTS, topic.CONTROL, topic.ALERTS),
        topic_decoder(inbound_types(settings.kafka.topic_prefix), account=account),
    )
    valid_inbound, dead = split_dead_letters("split_inbound", inbound)
    account_in = op.merge(
        "account_in",
        op.flat_map_batch("account_feed", instrument_events, to_account(account)),
        op.key_on("by_account", valid_inbound, lambda event: account),
    )
    account_events = op.key_rm(
        "account_events",
        op.stateful_batch(
            "risk_gate",
            account_in,
            delegate(lambda: make_account_state(settings), handle_account),
        ),
    )
    io.output(
        "events_out",
        op.merge("all_events", instrument_events, account_events, bad_ticks, bad_commands, dead),
    )
    return flow
