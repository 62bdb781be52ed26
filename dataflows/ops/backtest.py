"""`hfl backtest`: the live trading, gateway and persist logic over a bounded input.

Two transports, one code path:

- `kafka`: what a live run does. The local broker, the three flows as processes
  (`dataflows.ops.process`) in a bounded run of their own topic namespace, the input
  published to `md.ticks` as fast as the broker takes it, then the feed's end marker
  (`connectors.kafka.end`); every flow ends by its data.
- `inprocess`: no broker. The trading flow's own step functions (`decode_ticks`,
  `handle_ticks`, `to_account` and the account engine `account_logic` builds on), the
  gateway flow's (`valid_ticks`, `by_instrument`, `handle`) in one loop, batch by batch,
  each batch's orders and promises handed to the books and their fills and progress
  markers back to the gate until neither has anything more to say. The risk gate books
  fills in event time (`risk.fill_sync`), so what it decides depends only on the input,
  never on which transport carried the fills: the parity test
  (`tests/integration/test_backtest_parity.py`) holds the two byte-identical. The rows
  go to ClickHouse through the real persist flow (`dataflows.flows.persist.build_flow`),
  run under Bytewax with its input fed by this loop (`FlowIO`), so the store is the same;
  it runs in a forked child fed through a pipe, so persisting uses the second core.

Both feed the same encoded tick records, with `ts_init` equal to `ts_event` (a live
feed stamps its send time; a backtest has none), and run with the gateway keeping
every tick the gate may still need (`backtest_env`): a replay at full speed must not
lose a fill because the tick stream ran ahead of the gate.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from connectors import topic
from connectors.codec import encode, loads
from connectors.feeds.replay import read_records
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.record import KafkaRecord
from dataflows.flows import gateway as gateway_flow
from dataflows.flows.account import account_engine, make_account_state
from dataflows.flows.routing import to_outbound
from dataflows.flows.trading import (
    InstrumentState,
    close_bars,
    decode_ticks,
    handle_ticks,
    instrument_state,
    to_account,
)
from dataflows.flows.wiring import code_version
from dataflows.settings import Settings, load_settings
from dataflows.settings_domain import model_spec, paper_config
from risk.domain import (
    Approved,
    CancelOrder,
    DecodeFailure,
    Denied,
    Fill,
    FillsThrough,
    Order,
    OrderEvent,
    OrdersSent,
    PnlSnapshot,
    Position,
    Signal,
)
from risk.domain.error import HflError
from risk.fill_sync import FillSyncMode
from risk.timescale import (
    AUTO,
    TimeScale,
    estimate_interval_ns,
    format_interval,
    rounded_interval,
)

NS_PER_S = 1_000_000_000
# Simulated inputs start at a fixed event time, so the same seed is the same input.
SIMULATION_START_NS = 1_700_000_000 * NS_PER_S
BATCH = 2_000  # ticks per step: the Kafka source's `batch_size` default
TRANSPORTS = ("inprocess", "kafka")
# What the parity test and `hfl backtest` compare: table -> its key columns.
LEDGER_TABLES: dict[str, str] = {
    "risk_decisions": "account, signal_id",
    "orders": "client_order_id",
    "fills": "fill_id",
    "order_events": "event_id",
    "positions": "account, instrument, ts_event",
    "pnl": "account, ts_event",
}


@dataclass(frozen=True, slots=True)
class BacktestInput:
    """A bounded input: encoded tick records in `md.ticks` order, `ts_init == ts_event`."""

    values: tuple[bytes, ...]
    label: str
    instruments: tuple[str, ...] = ()

    def interval_ns(self) -> int | None:
        """The input's sampling interval estimated from its first event times per
        instrument (`risk.timescale.estimate_interval_ns`); None: no two distinct times."""
        records = map(loads, self.values)
        pairs = ((str(r.get("instrument", "")), int(r["ts_event"])) for r in records)
        return estimate_interval_ns(pairs)

    def digest(self) -> str:
        """sha256 of the records, in order: the same digest is the same input."""
        sha = hashlib.sha256()
        for value in self.values:
            sha.update(value)
            sha.update(b"\n")
        return sha.hexdigest()


def _encoded(records: Iterable[dict[str, Any] | bytes]) -> tuple[tuple[bytes, ...], list[str]]:
    values: list[bytes] = []
    names: dict[str, None] = {}
    for record in records:
        if isinstance(record, bytes):
            values.append(record)
            continue
        stamped = {**record, "ts_init": record["ts_event"]}
        names.setdefault(str(stamped.get("instrument", "")), None)
        values.append(encode(stamped))
    return tuple(values), list(names)


def file_input(
    path: str | Path, kind: str | None = None, limit: int | None = None
) -> BacktestInput:
    """A replay file (CSV, Parquet or JSON Lines, `connectors.feeds.replay`) as input."""
    records: Iterable[dict[str, Any] | bytes] = read_records(Path(path), kind=kind)  # type: ignore[arg-type]
    if limit is not None:
        records = (r for i, r in zip(range(limit), records, strict=False))
    values, names = _encoded(records)
    if not values:
        raise HflError(f"{path}: no records to back-test")
    return BacktestInput(values, str(path), tuple(names))


def simulated_input(symbols: Sequence[str], ticks: int, *, seed: int, rate: float) -> BacktestInput:
    """`ticks` simulated ticks (`connectors.feeds.simulator`) from a fixed start time."""
    config = SimulationConfig(
        symbols=tuple(symbols), seed=seed, start_ns=SIMULATION_START_NS, ticks_per_second=rate
    )
    values, names = _encoded(simulate(config, ticks))
    return BacktestInput(values, f"simulate seed={seed} ticks={ticks} rate={rate:g}", tuple(names))


def backtest_env(
    run_id: str, store: Path, ticks: int, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment (settings overrides) of one backtest, for either transport.

    A bounded run in the run's own topic namespace and store; the gateway keeps every
    tick until the gate's promise passes it (`InstrumentBook.orders_sent`) instead of
    evicting by age or count, so however far the replayed ticks run ahead of the gate,
    an order decided at t can fill on the first tick after t plus the latency.
    """
    return {
        "HFL_KAFKA__TOPIC_PREFIX": f"{run_id}.",
        "HFL_KAFKA__BOUNDED": "1",
        "HFL_KAFKA__END_WRITERS": "feed,trading,gateway",
        "HFL_CLICKHOUSE_URL": f"chdb://{store.resolve()}",
        "HFL_RUN_ID": run_id,
        "HFL_GATEWAY__TICK_BUFFER_S": str(10**9),
        "HFL_GATEWAY__MAX_BUFFERED_TICKS": str(max(ticks, 1) + 1),
        **(overrides or {}),
    }


def input_env(
    settings: Settings, data: BacktestInput, overrides: Mapping[str, str]
) -> dict[str, str]:
    """What a backtest of `data` sets beside `overrides`, given the settings without it.

    `data.bar_interval: auto` becomes the interval estimated from the input, so every
    time scale of the run (and of each flow process, which reads it from the
    environment) is the data's own. When `trading.instruments` is not named in
    `overrides` and the input holds instruments the configuration does not trade, the
    run trades the input's instruments (rather than dead-letter them).
    """
    env: dict[str, str] = {}
    if settings.data.bar_interval == AUTO and (interval := data.interval_ns()) is not None:
        env["HFL_DATA__BAR_INTERVAL"] = format_interval(rounded_interval(interval))
    key = "HFL_TRADING__INSTRUMENTS"
    if key not in overrides and not set(data.instruments) <= set(settings.trading.instruments):
        env[key] = ",".join(data.instruments)
    return env


def describe_scale(settings: Settings, estimated: bool) -> str:
    """The run's time scale in one line (its annualisation factor included)."""
    scale = settings.data.scale()
    source = "estimated from the input" if estimated else "declared"
    if settings.data.bar_interval == AUTO:
        source = "auto, no estimate: tick data"
    return TimeScale(scale.interval_ns, source).describe()


def settings_for(env: Mapping[str, str], config_dir: str | Path | None = None) -> Settings:
    """The settings a flow of this backtest reads: config files, environment, `env`."""
    return load_settings(config_dir, env={**os.environ, **env})


def overrides_env(overrides: Mapping[str, object]) -> dict[str, str]:
    """Dotted config fields (`model.enter_long`) as `HFL_MODEL__ENTER_LONG` variables.

    >>> overrides_env({"model.enter_long": 0.55, "risk.sizing.method": "inverse_vol"})
    {'HFL_MODEL__ENTER_LONG': '0.55', 'HFL_RISK__SIZING__METHOD': 'inverse_vol'}
    """
    return {
        "HFL_" + name.upper().replace(".", "__"): _env_value(v) for name, v in overrides.items()
    }


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


# ---------------------------------------------------------------- the in-process loop


@dataclass(slots=True)
class Counts:
    """What a run made, by kind."""

    ticks: int = 0
    signals: int = 0
    approved: int = 0
    denied: int = 0
    orders: int = 0
    fills: int = 0
    dead_letters: int = 0

    def add(self, events: Iterable[object]) -> None:
        """Count `events`."""
        for event in events:
            match event:
                case Signal():
                    self.signals += 1
                case Approved():
                    self.approved += 1
                case Denied():
                    self.denied += 1
                case Order():
                    self.orders += 1
                case Fill():
                    self.fills += 1
                case DecodeFailure():
                    self.dead_letters += 1


class InProcessEngine:
    """The trading and gateway flows' steps in one loop (see the module docs).

    `step(records)` takes one batch of `md.ticks` records and returns every event the
    two flows would have produced for it (progress markers and promises included, as
    they would be on Kafka); `finish()` is the end of input (`on_eof` of the gate).
    """

    def __init__(self, settings: Settings) -> None:
        if settings.kafka.bounded:
            # As the bounded trading flow does: the wait never gives up on the gateway.
            guard_ms = int(settings.kafka.end_guard_s * 1000)
            settings = replace(
                settings, risk=replace(settings.risk, fill_sync_max_wait_ms=guard_ms)
            )
        if settings.model.warm_start:
            raise HflError("an in-process backtest starts its models cold (model.warm_start)")
        fill_sync = settings.risk.fill_sync
        if fill_sync is FillSyncMode.JOURNAL:
            raise HflError("an in-process backtest has no input journal (risk.fill_sync: journal)")
        if fill_sync is FillSyncMode.AUTO:
            # As `auto` resolves for a bounded replay with the gateway (the kafka transport).
            settings = replace(
                settings, risk=replace(settings.risk, fill_sync=FillSyncMode.EVENT_TIME)
            )
        instruments = frozenset(settings.trading.instruments)
        pooled = settings.model.pooled
        self._decode = decode_ticks(instruments, pooled=pooled)
        self._spec = model_spec(settings, code_version())
        self._settings = settings
        self._states: dict[str, InstrumentState] = {}
        self._select = to_account(settings.trading.account)
        self._account = make_account_state(settings, 0)
        self._engine = account_engine(None)
        self._gateway_ticks = gateway_flow.valid_ticks(instruments)
        self._requests = gateway_flow.by_instrument(instruments)
        self._paper = paper_config(settings)
        self._books: dict[str, gateway_flow.BookState] = {}
        self.event_time = settings.risk.fill_sync is FillSyncMode.EVENT_TIME

    def step(self, records: list[KafkaRecord]) -> list[object]:
        """One batch of tick records through both flows; every event made."""
        out: list[object] = []
        by_key: dict[str, list[Any]] = {}
        for item in self._decode(records):
            if isinstance(item, DecodeFailure):
                out.append(item)
                continue
            key, tick = item
            by_key.setdefault(key, []).append(tick)
        instrument_events: list[object] = []
        for key, batch in by_key.items():
            state = self._states.get(key)
            if state is None:
                # As the trading flow builds it (`trading.build_flow`, instrument_pipeline).
                state = self._states[key] = instrument_state(self._settings, self._spec)
            instrument_events.extend(handle_ticks(state, batch))
        out.extend(instrument_events)
        reports = self._books_step(self._gateway_ticks(records))
        out.extend(reports)
        gate_in: list[Any] = [event for _, event in self._select(instrument_events)]
        self._exchange([*gate_in, *_reports(reports)], out)
        return out

    def finish(self) -> list[object]:
        """The end of input: every instrument's last bars close (as the trading flow's
        model step ends, `trading.close_bars`) and go to the gate; then every fill still
        held is booked, with a last P&L."""
        closed: list[object] = []
        for key in sorted(self._states):
            closed.extend(close_bars(self._states[key]))
        out: list[object] = [*closed]
        self._exchange([event for _, event in self._select(closed)], out)
        finished = self._engine.finish(self._account)
        out.extend(finished)
        self._exchange([], out, decided=finished)
        return out

    def _exchange(
        self, gate_in: list[Any], out: list[object], decided: list[object] | None = None
    ) -> None:
        """The gate decides on `gate_in`; its orders and promises go to the books, their
        reports back to the gate, until nothing more comes back."""
        pending: list[object] | None = decided
        while True:
            if pending is None:
                pending = self._engine.handle(self._account, gate_in)
                out.extend(pending)
            requests = [
                keyed
                for event in pending
                if isinstance(event, Order | CancelOrder | OrdersSent)
                for keyed in self._requests(event)
            ]
            if not requests:
                return
            reports = self._books_step(requests)
            out.extend(reports)
            gate_in, pending = _reports(reports), None
            if not gate_in:
                return

    def _books_step(self, keyed: list[tuple[str, Any]]) -> list[object]:
        """Hand each book its items, in order, as the gateway's stateful step would."""
        by_key: dict[str, list[Any]] = {}
        for key, item in keyed:
            by_key.setdefault(key, []).append(item)
        out: list[object] = []
        for key, batch in by_key.items():
            book = self._books.get(key)
            if book is None:
                book = self._books[key] = gateway_flow.BookState(self._paper)
            out.extend(gateway_flow.handle(book, batch))
        return out


def _reports(events: Iterable[object]) -> list[Any]:
    return [e for e in events if isinstance(e, Fill | OrderEvent | FillsThrough)]


def tick_records(values: Sequence[bytes], prefix: str = "") -> Iterator[KafkaRecord]:
    """The input as records read from `md.ticks`, keyed by nothing, at offsets 0..n-1."""
    name = prefix + topic.TICKS
    for offset, value in enumerate(values):
        yield KafkaRecord(name, 0, offset, None, value, 0)


# ----------------------------------------------------------------------- progress


class Progress:
    """One stderr line: ticks done, rate, % and the estimated time left."""

    def __init__(
        self, total: int, label: str, stream: TextIO | None = None, interval_s: float = 0.5
    ) -> None:
        self.total, self.label = total, label
        self.done = 0
        self._stream = sys.stderr if stream is None else stream
        self._interval_s = interval_s
        self._started = self._last = time.monotonic()

    def advance(self, count: int) -> None:
        """Count `count` more ticks; redraw at most every interval."""
        self.done += count
        now = time.monotonic()
        if now - self._last >= self._interval_s:
            self._last = now
            self._stream.write("\r" + self.line(now - self._started))
            self._stream.flush()

    def line(self, elapsed_s: float) -> str:
        """The progress line after `elapsed_s`.

        >>> p = Progress(1000, "ticks")
        >>> p.done = 250
        >>> p.line(5.0)
        'ticks: 250/1,000 (25.0%), 50 ticks/s, ETA 15s   '
        """
        rate = self.done / elapsed_s if elapsed_s > 0 else 0.0
        eta = _duration((self.total - self.done) / rate) if rate > 0 else "?"
        share = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"{self.label}: {self.done:,}/{self.total:,} ({share:.1f}%), "
            f"{rate:,.0f} ticks/s, ETA {eta}   "
        )

    def close(self) -> float:
        """End the line; return the seconds since the start."""
        elapsed = time.monotonic() - self._started
        self._stream.write("\r" + self.line(elapsed).replace("ETA 0s", "done") + "\n")
        self._stream.flush()
        return elapsed


def _duration(seconds: float) -> str:
    """
    >>> _duration(75.2), _duration(4000)
    ('1m15s', '1h06m')
    """
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


# --------------------------------------------------------------------------- runs


@dataclass(slots=True)
class BacktestResult:
    """One finished backtest."""

    run_id: str
    transport: str
    input_label: str
    input_sha256: str
    ticks: int
    seconds: float
    store_url: str
    since_ns: int
    until_ns: int
    counts: Counts = field(default_factory=Counts)
    ledger: dict[str, str] = field(default_factory=dict)

    @property
    def ticks_per_s(self) -> float:
        """Input ticks per second of wall time."""
        return self.ticks / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        """The lines `hfl backtest` prints."""
        c = self.counts
        lines = [
            f"run {self.run_id} ({self.transport}) on {self.input_label}",
            f"input sha256 {self.input_sha256}",
            f"{self.ticks:,} ticks in {self.seconds:.2f}s: {self.ticks_per_s:,.0f} ticks/s",
        ]
        if self.transport == "inprocess":
            lines.append(
                f"signals {c.signals:,}  approved {c.approved:,}  denied {c.denied:,}  "
                f"orders {c.orders:,}  fills {c.fills:,}  dead letters {c.dead_letters:,}"
            )
        lines.append(f"store {self.store_url}")
        lines += [f"  {table:<15} sha256 {digest}" for table, digest in self.ledger.items()]
        return "\n".join(lines)


def run_inprocess(
    settings: Settings,
    data: BacktestInput,
    *,
    run_id: str,
    persist: bool = True,
    batch: int = BATCH,
    progress: bool = True,
    on_events: Callable[[list[object]], None] | None = None,
) -> BacktestResult:
    """Run `data` through the in-process engine; with `persist`, into the configured
    store through the persist flow (Bytewax, in this process). `on_events` sees every
    batch's events (walk-forward and optimisation read P&L from it without a store)."""
    quiet_logs()
    engine = InProcessEngine(settings)
    counts = Counts()
    prefix = settings.kafka.topic_prefix
    route = to_outbound(prefix)
    bar = Progress(len(data.values), f"backtest {run_id}") if progress else None
    started = time.monotonic()

    def events() -> Iterator[list[object]]:
        records = list(tick_records(data.values, prefix))
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            produced = engine.step(chunk)
            counts.add(produced)
            counts.ticks += len(chunk)
            if bar is not None:
                bar.advance(len(chunk))
            yield [*chunk, *produced]
        produced = engine.finish()
        counts.add(produced)
        yield produced

    def records() -> Iterator[KafkaRecord]:
        offsets: dict[str, int] = {}
        for items in events():
            ticks = [item for item in items if isinstance(item, KafkaRecord)]
            others = [item for item in items if not isinstance(item, KafkaRecord)]
            if on_events is not None:
                on_events(others)
            yield from ticks
            for name, out in route(others):
                offset = offsets.get(name, 0)
                offsets[name] = offset + 1
                yield KafkaRecord(name, 0, offset, out.key, out.value, 0)

    if persist:
        _persist_beside(settings, run_id, records())
    else:
        for items in events():
            if on_events is not None:
                on_events([item for item in items if not isinstance(item, KafkaRecord)])
    if bar is not None:
        bar.close()
    seconds = time.monotonic() - started
    since, until = _window(data)
    url = settings.clickhouse.url.reveal()
    return BacktestResult(
        run_id=run_id,
        transport="inprocess",
        input_label=data.label,
        input_sha256=data.digest(),
        ticks=len(data.values),
        seconds=seconds,
        store_url=url if persist else "",
        since_ns=since,
        until_ns=until,
        counts=counts,
    )


def quiet_logs() -> None:
    """Warnings and errors only: a live flow logs every order and fill, a backtest of a
    million ticks would spend its time writing them."""
    import logging

    for name in ("hfl.gateway", "hfl.trading", "hfl.persist"):
        logging.getLogger(name).setLevel(logging.WARNING)


class _StreamIO:
    """A `FlowIO` whose one input is an iterator of records and whose output is a list."""

    def __init__(self, records: Iterator[KafkaRecord], sink: list[object]) -> None:
        self._records = records
        self._sink = sink

    def input(self, step_id: str, flow: Any, *topics: str, **_: Any) -> Any:
        import bytewax.operators as op
        from bytewax.testing import TestingSource

        return op.input(step_id, flow, TestingSource(self._records, batch_size=BATCH))

    def output(self, step_id: str, events: Any) -> None:
        import bytewax.operators as op
        from bytewax.testing import TestingSink

        op.output(step_id, events, TestingSink(self._sink))


def _persist(settings: Settings, run_id: str, records: Iterator[KafkaRecord]) -> None:
    """Run the persist flow over `records` in this process (its run id from the env)."""
    from bytewax.testing import run_main

    from dataflows.flows import persist

    dead: list[object] = []
    previous = os.environ.get("HFL_RUN_ID")
    os.environ["HFL_RUN_ID"] = run_id
    try:
        flow = persist.build_flow(settings, _StreamIO(records, dead))  # type: ignore[arg-type]
    finally:
        if previous is None:
            os.environ.pop("HFL_RUN_ID", None)
        else:
            os.environ["HFL_RUN_ID"] = previous
    run_main(flow)
    if dead:
        raise HflError(f"persist dead-lettered {len(dead)} of the run's own records")


def _persist_beside(settings: Settings, run_id: str, records: Iterator[KafkaRecord]) -> None:
    """The persist flow in a child process fed through a pipe, batch by batch, while
    this process runs the trading and gateway steps: the two use both cores, as the
    flows of a live run do, and no broker sits between them. The child gets the same
    records, in the same order, as `_persist` in this process would."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_persist_child, args=(settings, run_id, receiver))
    child.start()
    receiver.close()
    try:
        chunk: list[tuple[str, int, bytes | None, bytes]] = []
        for record in records:
            chunk.append((record.topic, record.offset, record.key, record.value))
            if len(chunk) >= BATCH:
                sender.send(chunk)
                chunk = []
        if chunk:
            sender.send(chunk)
        sender.send(None)
    except BrokenPipeError:
        pass  # the child failed: its exit code says so below
    finally:
        sender.close()
        child.join()
    if child.exitcode != 0:
        raise HflError(f"the persist process failed (exit {child.exitcode})")


def _persist_child(settings: Settings, run_id: str, receiver: Any) -> None:
    def records() -> Iterator[KafkaRecord]:
        while (chunk := receiver.recv()) is not None:
            for name, offset, key, value in chunk:
                yield KafkaRecord(name, 0, offset, key, value, 0)

    quiet_logs()
    _persist(settings, run_id, records())


def _window(data: BacktestInput) -> tuple[int, int]:
    """The input's first and last event time (for the report's window)."""
    from connectors.codec import loads

    first = loads(data.values[0]).get("ts_event", 0)
    last = loads(data.values[-1]).get("ts_event", 0)
    return int(first), int(last)


def run_kafka(
    settings: Settings,
    env: Mapping[str, str],
    data: BacktestInput,
    *,
    run_id: str,
    run_dir: Path,
    root: Path,
    timeout_s: float = 3600.0,
    progress: bool = True,
) -> BacktestResult:
    """Run `data` through the broker and the three flows as processes, as live runs."""
    from connectors.broker import broker_status, start_broker, stop_broker
    from connectors.feeds.publisher import publish
    from connectors.kafka.admin import create_topics
    from connectors.kafka.end import FEED, write_end
    from connectors.kafka.producer import CheckedProducer
    from dataflows.ops.process import FLOWS, start_flow, stop, wait_all

    broker = settings.broker
    pid_file = root / "var" / "broker.pid"
    local = settings.kafka.bootstrap == f"{broker.host}:{broker.port}"
    # Another broker named by `kafka.bootstrap` is used as it is; the local one is
    # started (and stopped again) when it does not run.
    own_broker = local and not broker_status(broker.host, broker.port, pid_file).running
    if own_broker:
        start_broker(broker.host, broker.port, pid_file, root / "var" / "broker.log")
    children = []
    try:
        kafka = settings.kafka
        create_topics(kafka.bootstrap, prefix=kafka.topic_prefix)
        started = time.monotonic()
        children = [start_flow(name, settings, run_dir, env) for name in FLOWS]
        producer = CheckedProducer(kafka.bootstrap, linger_ms=5.0)
        name = kafka.topic_prefix + topic.TICKS
        bar = Progress(len(data.values), f"published ({run_id})") if progress else None
        for start in range(0, len(data.values), BATCH):
            chunk = data.values[start : start + BATCH]
            publish(chunk, producer, name, flush_every=BATCH)
            if bar is not None:
                bar.advance(len(chunk))
        write_end(producer, kafka.bootstrap, FEED, [name])
        del producer  # its connections close now, not when the broker is gone
        if bar is not None:
            bar.close()
        codes = wait_all(children, timeout_s)
        seconds = time.monotonic() - started
    finally:
        for child in children:
            stop(child)
        if own_broker:
            stop_broker(pid_file)
    failed = {n: c for n, c in codes.items() if c != 0}
    if failed:
        tails = "\n".join(f"--- {c.name}\n{c.tail()}" for c in children if c.name in failed)
        raise HflError(f"flows did not end cleanly: {failed}\n{tails}")
    since, until = _window(data)
    return BacktestResult(
        run_id=run_id,
        transport="kafka",
        input_label=data.label,
        input_sha256=data.digest(),
        ticks=len(data.values),
        seconds=seconds,
        store_url=settings.clickhouse.url.reveal(),
        since_ns=since,
        until_ns=until,
    )


def ledger_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the compared tables (`LEDGER_TABLES`), all columns but the insert
    time, in key order: what two runs of one input must agree on."""
    from sinks.query import query

    out: dict[str, list[tuple[Any, ...]]] = {}
    for table, key in LEDGER_TABLES.items():
        columns, rows = query(url, f"SELECT * FROM {table} FINAL ORDER BY {key}")
        kept = [i for i, name in enumerate(columns) if name != "_inserted_at"]
        out[table] = [tuple(row[i] for i in kept) for row in rows]
    return out


def ledger_digest(rows: Mapping[str, list[tuple[Any, ...]]]) -> dict[str, str]:
    """sha256 per table of its rows' text (with the row count)."""
    return {
        table: f"{hashlib.sha256(repr(r).encode()).hexdigest()[:16]} ({len(r):,} rows)"
        for table, r in rows.items()
    }


def final_pnl(events: Iterable[object]) -> PnlSnapshot | None:
    """The last P&L snapshot among `events`."""
    last = None
    for event in events:
        if isinstance(event, PnlSnapshot):
            last = event
    return last


__all__ = [
    "BATCH",
    "TRANSPORTS",
    "BacktestInput",
    "BacktestResult",
    "Counts",
    "InProcessEngine",
    "Position",
    "backtest_env",
    "file_input",
    "final_pnl",
    "ledger_digest",
    "ledger_rows",
    "overrides_env",
    "run_inprocess",
    "run_kafka",
    "settings_for",
    "simulated_input",
]
