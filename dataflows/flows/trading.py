"""The trading dataflow: ticks → features → model → signal → risk gate → orders.

Run it with recovery on::

    python -m bytewax.run "dataflows.flows.trading:build_flow()" -r var/recovery/trading -s 2 -b 30

Inputs: `md.ticks`, `hfl.models.control` (promote/rollback, broadcast to every
instrument's models), `hfl.fills`, `hfl.order_events`, `hfl.control`, `hfl.alerts`.
Every event it makes (bars, features, predictions, model metrics and versions, drift,
audit, signals, decisions, orders, positions, P&L, dead letters) is produced to Kafka
with checked delivery. Drift detections also go to the risk gate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from connectors import topic
from connectors.codec import (
    check_sequence,
    decode_alert,
    decode_control,
    decode_fill_report,
    decode_order_report,
    decode_tick,
)
from connectors.kafka.end import END_KEY
from connectors.kafka.record import KafkaRecord
from connectors.kafka.source import EndHooks, partition_counts
from connectors.keyfile import WatchedKeyRing
from connectors.telemetry.metric import note_signals, observe_model_batch
from dataflows.flows.account import AccountInput, account_logic
from dataflows.flows.authority import CommandCheck, checked
from dataflows.flows.routing import assign_keys, key_for
from dataflows.flows.run_end import RunEnd
from dataflows.flows.sequence import END_NS, Progress, sequenced_gate
from dataflows.flows.shim import delegate
from dataflows.flows.wiring import (
    FlowIO,
    KafkaIO,
    code_version,
    dead_letter,
    observe_process,
    settle_heap,
    split_dead_letters,
    topic_decoder,
)
from dataflows.ops.model_checkpoint import load_warm_start
from dataflows.settings import Settings, load_settings
from dataflows.settings_domain import model_spec
from online_models.champion import ModelPool
from online_models.instrument import InstrumentEvent, InstrumentPipeline, ModelSpec, WarmStart
from online_models.pool import PoolState, checkpoint_pool
from risk.domain import (
    Alert,
    Bar,
    DecodeFailure,
    DriftDetected,
    ModelCheckpoint,
    ModelCommand,
    Signal,
    Tick,
)
from risk.outlier import OutlierScreen, flag_alert

TickWithOrigin = tuple[Tick, KafkaRecord]
NS_PER_S = 1_000_000_000

# Recovery snapshot version (dataflows.flows.shim) of the model step: bump it whenever the
# shape of its state changes, so a store written by older code fails closed on resume.
# The risk gate's is `dataflows.flows.account.ACCOUNT_STATE_VERSION`.
# 2: the outlier screen's per-instrument memory (risk.outlier) joined the state.
# 3: the outlier screen keeps when it last raised each flag alert.
INSTRUMENT_STATE_VERSION = 3  # InstrumentState: pipelines (bars, features, models), pool


POOL_KEY = "pool"


def model_key(*, pooled: bool, keys: Mapping[str, str] | None = None) -> Callable[[str], str]:
    """The model step's key for an instrument: itself, or one key for all when pooled;
    on several workers, the key `keys` assigns it (`routing.assign_keys`).

    Pooled models learn from every instrument, so every instrument's ticks must reach
    one state, in log order (one `md.ticks` partition): then the order in which the
    pooled model learns across instruments is the same on every replay.
    """
    if pooled:
        pool_key = (keys or {}).get(POOL_KEY, POOL_KEY)
        return lambda instrument: pool_key
    if keys:
        return keys.__getitem__
    return lambda instrument: instrument


def decode_ticks(
    instruments: frozenset[str],
    *,
    pooled: bool = False,
    keys: Mapping[str, str] | None = None,
    sequenced: bool = False,
) -> Callable[[list[KafkaRecord]], list[tuple[str, TickWithOrigin | Progress] | DecodeFailure]]:
    """Batch decoder: valid ticks keyed for the model step, everything else a dead letter.

    `sequenced` (several partitions or workers, `dataflows.flows.sequence`): after the
    batch, a `Progress` mark per partition read to every model key; a partition's
    in-band end record (key `END_KEY`) marks it ended.
    """
    key = model_key(pooled=pooled, keys=keys)
    every_key = sorted({key(name) for name in instruments})
    high: dict[int, int] = {}

    def decode(
        records: list[KafkaRecord],
    ) -> list[tuple[str, TickWithOrigin | Progress] | DecodeFailure]:
        out: list[tuple[str, TickWithOrigin | Progress] | DecodeFailure] = []
        read: dict[int, None] = {}
        for record in records:
            if sequenced:
                read[record.partition] = None
                if record.key == END_KEY and record.offset < 0:
                    high[record.partition] = END_NS
                    continue
            tick = decode_tick(record.value, instruments, origin=record)
            if isinstance(tick, DecodeFailure):
                out.append(tick)
            else:
                out.append((key(tick.instrument), (tick, record)))
                if sequenced and tick.ts_init > high.get(record.partition, -1):
                    high[record.partition] = tick.ts_init
        for partition in read:
            through = high.get(partition, -1)
            if through >= 0:
                out += [(k, Progress(partition, k, through)) for k in every_key]
        return out

    return decode


@dataclass(slots=True)
class InstrumentState:
    """The model step's state of one key: one instrument, or all of them when pooled.

    Per instrument: a sequence guard, the outlier screen (`risk.outlier`, `settings.outliers`)
    and the pipeline, built on its first tick
    (Bytewax hands a state builder no key), from its warm start if it has one;
    a used warm start is dropped so snapshots stay small. `pool` holds the pooled
    models every pipeline of this state learns into; it is pickled with them, so a
    snapshot keeps them shared. With pooled models the state checkpoints the whole
    pool on the event-time schedule (`online_models.pool`).
    """

    spec: ModelSpec
    pipelines: dict[str, InstrumentPipeline] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)
    outliers: OutlierScreen = field(default_factory=OutlierScreen)
    pool: ModelPool = field(default_factory=ModelPool)
    warm: Mapping[str, WarmStart] = field(default_factory=dict)

    def pipeline_for(self, instrument: str) -> InstrumentPipeline:
        """The instrument's pipeline, built (from its warm start, if any) on first use."""
        pipeline = self.pipelines.get(instrument)
        if pipeline is None:
            warm = self.warm.get(instrument)
            pipeline = InstrumentPipeline(instrument, self.spec, warm, self.pool)
            self.pipelines[instrument] = pipeline
            if warm is not None:
                self.warm = {k: v for k, v in self.warm.items() if k != instrument}
        return pipeline

    def pool_checkpoint(self, tick: Tick) -> ModelCheckpoint | Alert | None:
        """The pooled checkpoint due after `tick`, if one is; only with pooled models.

        Instruments whose warm start is still unused are in it as they were restored.
        """
        config = self.spec.models
        if not self.pool.checkpoint_due(tick.ts_event, config.checkpoint_interval_ns):
            return None
        sets = {**self.warm, **{name: p.warm_start() for name, p in self.pipelines.items()}}
        return checkpoint_pool(
            PoolState(pool=self.pool, sets=sets), config, tick.seq, tick.tick_id, tick.ts_event
        )


def instrument_state(
    settings: Settings, spec: ModelSpec, start: PoolState | None = None
) -> InstrumentState:
    """A fresh model-step state as the trading flow builds it for each key (and the
    in-process backtest, `dataflows.ops.backtest`): the outlier screen of
    `settings.outliers`, the models of `spec`, started from `start` (a warm start,
    `dataflows.ops.model_checkpoint.load_warm_start`; default cold)."""
    start = start or PoolState()
    return InstrumentState(
        spec, outliers=OutlierScreen(settings.outliers.config()), pool=start.pool, warm=start.sets
    )


def admitted(
    state: InstrumentState,
    tick: Tick,
    record: KafkaRecord,
    out: list[InstrumentEvent | DecodeFailure],
) -> bool:
    """Whether `tick` goes on to its models: a tick out of sequence or rejected by the
    outlier screen becomes a dead letter; a flagged one passes, its flags reported at a
    bounded rate."""
    last_seq = state.last_seq.get(tick.instrument)
    problem = check_sequence(last_seq, tick.seq)
    if problem is not None:
        out.append(dead_letter(record, problem, f"seq {tick.seq} after {last_seq}"))
        return False
    state.last_seq[tick.instrument] = tick.seq
    verdict = state.outliers.screen(tick)
    if verdict.rejected is not None:
        out.append(dead_letter(record, verdict.rejected.reason, verdict.detail))
        return False
    if verdict.flags:
        for rule, count in state.outliers.flags_due(tick, verdict):
            out.append(flag_alert(tick, rule, count, verdict.detail))
    return True


def handle_ticks(
    state: InstrumentState, batch: list[TickWithOrigin | ModelCommand]
) -> list[InstrumentEvent | DecodeFailure]:
    """Run a batch of ticks (and model commands) through their instruments' pipelines.

    Each instrument's ticks between two commands (or progress marks) go through its
    pipeline as one run (`InstrumentPipeline.update_batch`: the per-tick events, with
    features and predictions as columnar records). Pooled models, which learn across
    instruments in log order, take the ticks one at a time (`handle_ticks_per_tick`).
    """
    if state.spec.models.pooled:
        return handle_ticks_per_tick(state, batch)
    started = time.perf_counter()
    out: list[InstrumentEvent | DecodeFailure] = []
    runs: dict[str, list[Tick]] = {}

    def flush() -> None:
        for instrument, ticks in runs.items():
            produced = len(out)
            state.pipeline_for(instrument).update_batch(ticks, out)  # type: ignore[arg-type]
            signals = [e for e in out[produced:] if type(e) is Signal]
            if signals:
                ingest = {tick.tick_id: tick.ts_init for tick in ticks}
                for signal in signals:
                    note_signals((signal,), ingest[signal.tick_id])  # type: ignore[union-attr]
        runs.clear()

    for item in batch:
        if type(item) is Progress:  # several workers: pass the mark on after the events
            flush()
            out.append(item)  # type: ignore[arg-type]
            continue
        if isinstance(item, ModelCommand):
            flush()
            state.pipeline_for(item.instrument).apply(item, out)  # type: ignore[arg-type]
            continue
        tick, record = item
        if not admitted(state, tick, record, out):
            continue
        run = runs.get(tick.instrument)
        if run is None:
            run = runs[tick.instrument] = []
        run.append(tick)
    flush()
    observe_model_batch(time.perf_counter() - started, len(batch))
    return out


def handle_ticks_per_tick(
    state: InstrumentState, batch: list[TickWithOrigin | ModelCommand]
) -> list[InstrumentEvent | DecodeFailure]:
    """`handle_ticks` one tick at a time, pooled checkpoints after the tick that is due."""
    started = time.perf_counter()
    pooled = state.spec.models.pooled
    out: list[InstrumentEvent | DecodeFailure] = []
    for item in batch:
        if type(item) is Progress:  # several workers: pass the mark on after the events
            out.append(item)  # type: ignore[arg-type]
            continue
        if isinstance(item, ModelCommand):
            state.pipeline_for(item.instrument).apply(item, out)  # type: ignore[arg-type]
            continue
        tick, record = item
        if not admitted(state, tick, record, out):
            continue
        produced = len(out)
        state.pipeline_for(tick.instrument).update(tick, out)  # type: ignore[arg-type]
        if pooled and (checkpoint := state.pool_checkpoint(tick)) is not None:
            out.append(checkpoint)
        note_signals(out[produced:], tick.ts_init)
    observe_model_batch(time.perf_counter() - started, len(batch))
    return out


def close_bars(state: InstrumentState) -> list[InstrumentEvent]:
    """The end of a bounded input: every instrument's open bars, closed (in instrument
    order), so the gate marks the book to each instrument's last price."""
    out: list[InstrumentEvent] = []
    for name in sorted(state.pipelines):
        state.pipelines[name].close_bars(out)
    return out


def for_instruments(
    instruments: tuple[str, ...], *, pooled: bool = False, keys: Mapping[str, str] | None = None
) -> Callable[[ModelCommand], list[tuple[str, ModelCommand]]]:
    """One model command per instrument it addresses ('' addresses all of them), keyed
    for the model step."""
    key = model_key(pooled=pooled, keys=keys)

    def broadcast(command: ModelCommand) -> list[tuple[str, ModelCommand]]:
        targets = (command.instrument,) if command.instrument else instruments
        return [
            (key(name), replace(command, instrument=name))
            for name in targets
            if name in instruments
        ]

    return broadcast


def to_account(
    account: str, *, sequenced: bool = False
) -> Callable[[list[object]], list[tuple[str, AccountInput]]]:
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
        if sequenced:  # the marks after the events they follow
            chosen += [event for event in events if type(event) is Progress]
        return [(account, event) for event in chosen]

    return select


def _causal_order(event: Signal | Bar | DriftDetected) -> tuple[int, str]:
    return event.ts_init, event.instrument


def inbound_types(prefix: str) -> Callable[[str], type | Callable[..., object]]:
    """Which type each inbound topic carries (fills share theirs with progress markers)."""
    types: dict[str, type | Callable[..., object]] = {
        prefix + topic.FILLS: decode_fill_report,
        prefix + topic.ORDER_EVENTS: decode_order_report,
        prefix + topic.CONTROL: decode_control,
        prefix + topic.ALERTS: decode_alert,
    }
    return types.__getitem__


def tick_partitions(settings: Settings, io: FlowIO) -> int:
    """How many partitions `md.ticks` has (1 when the flow does not read Kafka)."""
    if not isinstance(io, KafkaIO):
        return 1
    name = settings.kafka.topic_prefix + topic.TICKS
    return partition_counts(settings.kafka.bootstrap, [name])[name]


def build_flow(settings: Settings | None = None, io: FlowIO | None = None) -> Dataflow:
    """Build the trading dataflow from `settings` (default: config files + environment).

    `io` (default Kafka) supplies the inputs and the output; tests pass lists. A
    bounded run (`kafka.exit_when_idle_s` > 0) ends once its market data ended and the
    risk gate holds nothing back (`dataflows.flows.run_end`).
    """
    settings = settings or load_settings()
    observe_process("trading")
    io = io or KafkaIO(settings, writer="trading")
    flow = Dataflow("trading")
    if settings.kafka.bounded:
        # A bounded run ends by its data: the fill sync never gives up on the gateway
        # before the run's guard would, so a late or restarting gateway changes nothing.
        guard_ms = int(settings.kafka.end_guard_s * 1000)
        settings = replace(settings, risk=replace(settings.risk, fill_sync_max_wait_ms=guard_ms))
    instruments = frozenset(settings.trading.instruments)
    version = code_version()
    spec = model_spec(settings, version)
    start = load_warm_start(settings, version)
    pooled = settings.model.pooled

    end = RunEnd(
        settings.kafka.end_guard_s
        if settings.kafka.bounded
        else settings.risk.fill_sync_max_wait_ms / 1000
    )
    # Several workers (a Bytewax cluster) or md.ticks partitions: instruments on balanced,
    # explicitly assigned workers, the gate on worker 0 behind the sequencer
    # (dataflows.flows.sequence); one of each: exactly the one-worker flow.
    workers = settings.bytewax.workers()
    partitions = tick_partitions(settings, io)
    in_order = workers > 1 or partitions > 1
    keys = assign_keys(frozenset({POOL_KEY}) if pooled else instruments, workers)
    model_keys = sorted(set(keys.values()))
    ticks = op.flat_map_batch(
        "decode_ticks",
        io.input(
            "ticks_in",
            flow,
            topic.TICKS,
            end=EndHooks(in_band=True) if in_order else EndHooks(ended=end.market_data_ended),
        ),
        decode_ticks(instruments, pooled=pooled, keys=keys, sequenced=in_order),
    )
    valid_ticks, bad_ticks = split_dead_letters("split_ticks", ticks)
    prefix = settings.kafka.topic_prefix
    ring = WatchedKeyRing(settings.security.keys_file).ring
    window_s = settings.security.sign_window_s
    commands, model_audits = checked(
        "check_model_commands",
        io.input(
            "model_control_in",
            flow,
            topic.MODEL_CONTROL,
            fetch_wait_ms=settings.kafka.control_fetch_wait_ms,
            end=EndHooks(may_end=end.after_market_data),
        ),
        CommandCheck(
            frozenset({prefix + topic.MODEL_CONTROL}),
            topic_decoder(lambda name: ModelCommand),
            ring,
        ),
        window_s=window_s,
    )
    valid_commands, bad_commands = split_dead_letters("split_model_commands", commands)
    model_commands = op.flat_map(
        "model_commands_by_instrument",
        valid_commands,
        for_instruments(settings.trading.instruments, pooled=pooled, keys=keys),
    )
    instrument_events = op.key_rm(
        "instrument_events",
        op.stateful_batch(
            "instrument_pipeline",
            op.merge("instrument_in", valid_ticks, model_commands),
            delegate(
                lambda: instrument_state(settings, spec, start),
                handle_ticks,
                step="trading.instrument_pipeline",
                version=INSTRUMENT_STATE_VERSION,
                finish=close_bars,
            ),
        ),
    )

    account = settings.trading.account
    gate_key = key_for(account, 0, workers)
    inbound, control_audits = checked(
        "check_inbound",
        io.input(
            "inbound_in",
            flow,
            topic.FILLS,
            topic.ORDER_EVENTS,
            topic.CONTROL,
            topic.ALERTS,
            end=EndHooks(may_end=end.may_end),
            # Not the gateway's end markers: it ends on this flow's own (a cycle).
            await_ends=False,
        ),
        CommandCheck(
            frozenset({prefix + topic.CONTROL}),
            topic_decoder(inbound_types(prefix), account=account),
            ring,
        ),
        window_s=window_s,
    )
    valid_inbound, dead = split_dead_letters("split_inbound", inbound)
    account_in = op.merge(
        "account_in",
        op.flat_map_batch(
            "account_feed", instrument_events, to_account(gate_key, sequenced=in_order)
        ),
        op.key_on("by_account", valid_inbound, lambda event: gate_key),
    )
    gate = account_logic(settings, observe=lambda state: end.note_gate(state.settling()))
    if in_order:
        hold_s = 0.0 if settings.kafka.bounded else settings.risk.fill_sync_max_wait_ms / 1000
        gate = sequenced_gate(gate, partitions, model_keys, end.market_data_ended, hold_s)
        instrument_events = op.filter(
            "no_progress_marks", instrument_events, lambda event: type(event) is not Progress
        )
    account_events = op.key_rm("account_events", op.stateful_batch("risk_gate", account_in, gate))
    io.output(
        "events_out",
        op.merge(
            "all_events",
            instrument_events,
            account_events,
            bad_ticks,
            bad_commands,
            dead,
            model_audits,
            control_audits,
        ),
    )
    settle_heap()
    return flow
