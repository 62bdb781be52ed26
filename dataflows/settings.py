"""One `Settings` tree built from `config/*.yaml` and `HFL_*` environment variables.

Environment variables override YAML: `HFL_<SECTION>__<FIELD>` (double underscore
between levels, e.g. `HFL_KAFKA__BOOTSTRAP=127.0.0.1:9092`), plus the shortcut
`HFL_CLICKHOUSE_URL`. Every field is validated at once; a `ConfigError` lists every
problem found.

The config directory (`$HFL_CONFIG_DIR`, default `./config`) must exist and be
readable: a misspelt path is an error, never a silent run on defaults. The built-in
defaults alone are used only when asked for: `HFL_CONFIG_DIR=builtin`. A bool setting
takes `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`, any case); anything else,
such as `maybe`, is listed with the other problems.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import yaml

from connectors.kafka.security import KafkaSecurity
from connectors.kafka.security import use as use_kafka_security
from risk.domain.enums import ModelScope, TradingState
from risk.domain.error import ConfigError
from risk.fill_sync import FillSyncMode
from risk.outlier import OutlierAction, OutlierConfig, OutlierRule
from risk.sizing import SizingMethod
from risk.state import default_alert_states
from risk.timescale import AUTO, TICK, TimeScale, parse_interval

T = TypeVar("T")
CONFIG_FILES = ("trading.yaml", "risk.yaml", "models.yaml")
BUILTIN = "builtin"  # HFL_CONFIG_DIR value (or config_dir) that asks for the built-in defaults
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class Secret(str):
    """A string that never shows itself in `repr` or logs.

    >>> Secret("hunter2")
    ***
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "***"

    def reveal(self) -> str:
        """Return the secret value."""
        return str.__str__(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaSecuritySettings:
    """Transport security of every Kafka client (Docker mode: SASL/SCRAM, TLS).

    `protocol` PLAINTEXT (the local broker), SSL, SASL_PLAINTEXT or SASL_SSL; the
    password usually comes from a file (`HFL_KAFKA__SECURITY__PASSWORD_FILE`).
    """

    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    username: str = ""
    password: Secret = field(default_factory=Secret)
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    check_hostname: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaSettings:
    """Where the broker is and how flows read and write it."""

    bootstrap: str = "127.0.0.1:19092"
    topic_prefix: str = ""
    batch_size: int = 2000
    idle_backoff_ms: float = 1.0
    exit_when_idle_s: float = 0.0
    drain_file: str = ""
    # A bounded run ends by its data (`connectors.kafka.end`): each flow finishes at the
    # end-of-stream markers of the writers of this run (`end_writers`); `end_guard_s`
    # without any record while markers are missing fails the flow loudly.
    bounded: bool = False
    end_writers: tuple[str, ...] = ("feed", "trading", "gateway")
    end_guard_s: float = 600.0
    fetch_wait_ms: int = 5
    # Inputs off the latency path that are rarely written (the trading flow's model
    # commands): the local broker answers an empty fetch only when its wait ends, so
    # each consumer costs it ~1000 / wait fetches per second; 100 ms makes that 10.
    control_fetch_wait_ms: int = 100
    message_timeout_ms: int = 30_000
    # Topic layout `hfl topics create` applies (existing topics are left as they are):
    # md.ticks partitions (keyed by instrument), and every topic's replication factor and
    # min.insync.replicas (1/1 on one broker; 3/2 in the compose cluster profile).
    ticks_partitions: int = 1
    replication_factor: int = 1
    min_insync_replicas: int = 1
    security: KafkaSecuritySettings = field(default_factory=KafkaSecuritySettings)

    def topic_layout(self) -> dict[str, Any]:
        """`connectors.kafka.admin.create_topics` keywords for this layout.

        >>> KafkaSettings(ticks_partitions=6).topic_layout()["partitions"]
        {'md.ticks': 6}
        """
        from connectors.topic import TICKS

        return {
            "prefix": self.topic_prefix,
            "partitions": {TICKS: self.ticks_partitions},
            "replication_factor": self.replication_factor,
            "min_insync_replicas": self.min_insync_replicas,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerSettings:
    """The local Tansu broker started by `hfl broker start`."""

    host: str = "127.0.0.1"
    port: int = 19092


@dataclass(frozen=True, slots=True, kw_only=True)
class ClickHouseSettings:
    """The store: `chdb:///abs/dir`, `chdb://memory` or `http(s)://user:pass@host:port/db`."""

    url: Secret = field(default_factory=Secret)
    # A ClickHouse cluster name (compose cluster profile: `hfl`): migrations create
    # replicated tables ON CLUSTER plus Distributed `<table>_all` tables; empty: one server.
    cluster: str = ""
    flush_rows: int = 50_000
    flush_interval_s: float = 1.0
    # Chaos suite only (R5): acknowledgement journal path and injected faults
    # (sinks.ack_journal, sinks.fault); empty turns each off.
    ack_journal: str = ""
    faults: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSettings:
    """A process's own Prometheus endpoint (`hfl flow run`, `hfl feed`); port 0: none.

    Local mode shares one multiprocess directory served by the dashboard instead; in
    containers each process serves its own `/metrics` on `host:port` (compose: 0.0.0.0:9100).
    """

    host: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class BytewaxSettings:
    """How `hfl flow run` joins a Bytewax cluster: `-i process_id -a addresses` when
    `process_id` >= 0 (one process per container, addresses `host:port` in process order),
    `-w workers_per_process` workers in each process."""

    process_id: int = -1
    addresses: tuple[str, ...] = ()
    workers_per_process: int = 1

    def workers(self) -> int:
        """Workers of the whole cluster (worker `i*w … i*w+w-1` run in process `i`).

        >>> BytewaxSettings(process_id=0, addresses=("a:1", "b:1")).workers()
        2
        """
        processes = len(self.addresses) if self.process_id >= 0 else 1
        return processes * self.workers_per_process


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoverySettings:
    """Bytewax recovery: store location and intervals."""

    directory: str = "var/recovery"
    snapshot_interval_s: int = 2
    backup_interval_s: int = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedSettings:
    """The simulated feed's defaults."""

    symbols: tuple[str, ...] = (
        "AAPL",
        "MSFT",
        "AMZN",
        "GOOG",
        "META",
        "NVDA",
        "JPM",
        "XOM",
        "JNJ",
        "WMT",
    )
    ticks_per_second: float = 500.0
    seed: int = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSettings:
    """What the input is: its time scale, and whether it is a live venue feed.

    `bar_interval` is the event time between two samples of one instrument: `auto`
    (estimated from the input's event times by whoever reads the input first: `hfl
    backtest`, walk-forward and optimisation; a flow given no estimate runs at the
    tick-data scale, `risk.timescale.TICK`) or declared: `1d`, `1m`, `1s`, `250ms`.
    Every setting documented "null: from the bar interval" derives from it
    (`risk.timescale.TimeScale`), so daily bars, minute bars and ticks all run with
    the shipped configuration. `live`: the ticks come from a venue as they happen
    (`hfl feed live`); checks that compare event time with receipt time
    (`outliers.stale_timestamp`) apply only then, since a replay of old data is all
    "stale".
    """

    bar_interval: str = AUTO
    live: bool = False

    def __post_init__(self) -> None:
        if self.bar_interval != AUTO:
            parse_interval(self.bar_interval)  # listed with the other problems at load time

    def scale(self) -> TimeScale:
        """The declared interval's scale; `auto` not yet estimated: tick data."""
        if self.bar_interval == AUTO:
            return TICK
        return TimeScale(parse_interval(self.bar_interval))


@dataclass(frozen=True, slots=True, kw_only=True)
class OutlierSettings:
    """The trading flow's outlier screen of every tick (`risk.outlier`).

    Per rule an action: `dead_letter` (to `hfl.dlq` with reason `outlier_<rule>`), `flag`
    (the tick passes; an `outlier_flag` alert per instrument and rule at most every
    `flag_alert_interval_s` of event time, counting the flags) or `off`.
    """

    price_jump: OutlierAction = OutlierAction.DEAD_LETTER
    crossed_quote: OutlierAction = OutlierAction.DEAD_LETTER
    locked_quote: OutlierAction = OutlierAction.FLAG
    zero_size: OutlierAction = OutlierAction.DEAD_LETTER
    stale_timestamp: OutlierAction | None = None  # null: flag on a live feed, off otherwise
    future_timestamp: OutlierAction = OutlierAction.FLAG
    out_of_order: OutlierAction = OutlierAction.DEAD_LETTER
    # price_jump: |log move| >= min_jump_ratio AND robust z (median/MAD of the last
    # `window` accepted moves, once `min_history` are known) >= mad_threshold; a new
    # level is accepted at the `confirm_ticks`-th tick that agrees with it.
    mad_threshold: float = 10.0
    min_jump_ratio: float = 0.25
    window: int = 100
    min_history: int = 20
    confirm_ticks: int = 2
    max_age_s: float = 60.0  # stale_timestamp: received this long after the venue's time
    max_skew_s: float = 5.0  # future_timestamp: the venue's time this far ahead of receipt
    flag_alert_interval_s: float = 60.0

    def __post_init__(self) -> None:
        self._thresholds({})  # invalid thresholds fail at load time, listed with the others

    def config(self) -> OutlierConfig:
        """The screen's configuration."""
        return self._thresholds(
            {
                rule: OutlierAction(getattr(self, rule.value) or OutlierAction.OFF)
                for rule in OutlierRule
            }
        )

    def _thresholds(self, actions: dict[OutlierRule, OutlierAction]) -> OutlierConfig:
        return OutlierConfig(
            window=self.window,
            min_history=self.min_history,
            mad_threshold=self.mad_threshold,
            min_jump_ratio=self.min_jump_ratio,
            confirm_ticks=self.confirm_ticks,
            max_age_ns=int(self.max_age_s * 1e9),
            max_skew_ns=int(self.max_skew_s * 1e9),
            flag_alert_interval_ns=int(self.flag_alert_interval_s * 1e9),
            actions=actions,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingSettings:
    """The account that trades and how signals become orders."""

    account: str = "paper-1"
    instruments: tuple[str, ...] = FeedSettings().symbols
    initial_cash: Decimal = Decimal("1000000")
    target_notional: Decimal = Decimal("10000")
    lot_size: Decimal = Decimal("1")
    pnl_interval_s: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    """The paper broker's event-time latency, slippage and fees."""

    latency_ms: float = 50.0
    slippage_bps: float = 1.0
    fee_bps: float = 0.5
    # How far the gateway may run ahead of the trading flow (event time, and ticks per
    # instrument) and still fill a late order exactly as if it had arrived on time;
    # null: from the bar interval (60 bars, at least 60 s).
    tick_buffer_s: float | None = None
    max_buffered_ticks: int = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitSettings:
    """Pre-trade limits for one account or instrument."""

    max_order_quantity: Decimal = Decimal("5000")
    max_order_notional: Decimal = Decimal("50000")
    max_position: Decimal = Decimal("5000")
    max_gross_exposure: Decimal = Decimal("250000")
    price_collar_pct: float = 5.0
    max_reference_age_ms: int | None = None  # null: from the bar interval
    max_concentration_pct: float = 100.0
    group: str = ""
    max_volatility_pct: float = 1_000.0
    scale_on_volatility: bool = False
    max_correlation: float = 0.3
    time_in_force_ms: int | None = None  # null: from the bar interval (5 bars, at least 5 s)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountLimitSettings:
    """Limits on the account as a whole; percentages are of equity."""

    max_open_orders: int = 1_000
    max_net_exposure: Decimal = Decimal("10000000")
    max_group_concentration_pct: float = 100.0
    var_budget_pct: float = 2.0
    cvar_budget_pct: float = 3.0
    max_beta: float = 0.5
    drawdown_soft_pct: float = 5.0
    drawdown_hard_pct: float = 10.0
    daily_loss_pct: float = 5.0
    max_orders_per_window: int = 100
    order_window_ms: int = 1_000
    max_fills_without_human: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskModelSettings:
    """How the portfolio risk figures are sampled and scheduled (see risk.monitor).

    `sample_interval_ms`, `periods_per_day` and `recompute_interval_ms` null: from the
    bar interval (a sample per bar, annualised at the data's own frequency)."""

    window: int = 250
    min_samples: int = 30
    sample_interval_ms: int | None = None
    periods_per_day: float | None = None
    confidence: float = 0.99
    ewma_decay: float = 0.94
    recompute_interval_ms: int | None = None
    market_proxy: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SizingSettings:
    """How signals become target positions (see risk.sizing.SizingMethod).

    `gross_notional` caps the gross capital of the portfolio methods, which also run
    the book at `volatility_target_pct`; empty: `target_notional` per instrument.
    """

    method: SizingMethod = SizingMethod.VOL_TARGET
    gross_notional: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StartHaltSettings:
    """A halt the risk gate applies before its first input, set by whoever starts the
    trading flow (`hfl up` after a failed startup reconciliation); no `reason`: none.

    `at_ns` (when it was decided) makes each halt distinct: the gate applies one once,
    so a restart with the same flag does not undo an operator's `hfl resume`.
    """

    reason: str = ""
    actor: str = ""
    at_ns: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskSettings:
    """Account limits, per-instrument overrides, and what automatic triggers do.

    `drift_action` is the state a drifting instrument enters (null: ignore drift);
    `alert_actions` maps alert names to the state they put the account (or the
    alert's instrument) in. `fill_sync` says when fills are booked (`risk.fill_sync`):
    `journal` books them as they come and journals the order of every input per batch
    so a resume replays it (the wait for a lost journaled input is
    `fill_sync_max_wait_ms`); `event_time` books each fill `fill_sync_delay_ms` after
    its event time, holding a decision until the gateway's markers show those fills are
    in, for at most `fill_sync_max_wait_ms` of wall time (then a `gateway_lag` alert);
    `arrival` books them as they come, unjournaled; `auto` (the default) is `event_time`
    in a bounded replay with the gateway and `journal` otherwise, i.e. in a live run
    (`dataflows.flows.account.fill_sync_mode`; the in-process backtest, which has no
    input journal, books in event time). `start_halted` is a halt applied
    before the first input (`StartHaltSettings`). `stress_scenarios` adds
    named scenarios to the built-in ones: instrument (or "*" for all) -> return in
    percent, plus "market" for a market move applied through each instrument's beta.
    """

    limits: LimitSettings = field(default_factory=LimitSettings)
    per_instrument: dict[str, LimitSettings] = field(default_factory=dict)
    account: AccountLimitSettings = field(default_factory=AccountLimitSettings)
    model: RiskModelSettings = field(default_factory=RiskModelSettings)
    stress_scenarios: dict[str, dict[str, float]] = field(default_factory=dict)
    volatility_target_pct: float | None = 15.0
    sizing: SizingSettings = field(default_factory=SizingSettings)
    drift_action: TradingState | None = TradingState.REDUCING
    alert_actions: dict[str, TradingState] = field(default_factory=default_alert_states)
    fill_sync: FillSyncMode = FillSyncMode.AUTO
    fill_sync_delay_ms: int = 1_000
    fill_sync_max_wait_ms: int = 10_000
    start_halted: StartHaltSettings = field(default_factory=StartHaltSettings)


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineSettings:
    """One named model: its factory in `online_models.pipeline.PIPELINES` and parameters.

    `sample_every` > 1 runs the model on every n-th warm tick only (for models too
    slow per tick, such as the forest); labels still resolve on every tick.
    `scope: pooled` makes it one model learning from every instrument's labels.
    """

    factory: str = "logistic"
    params: dict[str, float] = field(default_factory=dict)
    sample_every: int = 1
    scope: ModelScope = ModelScope.PER_INSTRUMENT


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalSettings:
    """Which engine turns predictions into target changes (`model.signal`).

    `hysteresis`: today's thresholds on the champion's probability (`model.enter_long`
    ...). `multifactor`: model scores, momentum, mean-reversion z-score and volatility
    regime weighted into an expected edge in bps, traded only above the gateway's fees +
    slippage, with a minimum hold and a turnover budget counted in the instrument's
    ticks (`online_models.signal_multifactor`). Empty `weights`: learned online.
    """

    engine: str = "multifactor"
    edge_multiple: float = 1.0
    horizon_ticks: int = 20
    momentum_ticks: int = 20
    mean_ticks: int = 50
    vol_short_ticks: int = 20
    vol_long_ticks: int = 200
    weights: tuple[float, ...] = ()
    forgetting: float = 0.999
    ridge: float = 1.0
    refit_ticks: int = 10
    min_learned: int = 100
    min_hold_ticks: int = 20
    turnover_window_ticks: int = 1_000
    max_turnover: float = 8.0

    def __post_init__(self) -> None:
        if self.engine not in {"hysteresis", "multifactor"}:
            msg = f"model.signal.engine={self.engine!r}: expected hysteresis or multifactor"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class PromotionSettings:
    """When a challenger replaces the champion on an instrument.

    Both must have at least `min_labels` labels, and the challenger's direction
    accuracy over its latest `min_labels` labels must beat the champion's by `margin`.
    `enabled: false` leaves promotion to `hfl models promote`.
    """

    enabled: bool = True
    min_labels: int = 500
    margin: float = 0.02


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftSettings:
    """Drift detectors: ADWIN on the champion's prequential error, Page-Hinkley on features."""

    watch_error: bool = False
    error_delta: float = 0.002
    features: tuple[str, ...] = ("realized_vol_20",)
    feature_threshold: float = 1000.0
    feature_min_instances: int = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSettings:
    """The online models (champion and shadow challengers), their evaluation and signals."""

    pipeline: str = "logistic"  # the champion: a key of `pipelines`
    challengers: tuple[str, ...] = ()
    pipelines: dict[str, PipelineSettings] = field(
        default_factory=lambda: {"logistic": PipelineSettings(params={"learning_rate": 0.01})}
    )
    seed: int = 42
    horizon_s: float = 5.0
    horizon_ticks: int = 0  # > 0: label after this many of the instrument's ticks instead
    max_pending: int = 100_000
    rolling_window: int = 1_000
    metrics_interval_s: float | None = None  # null: from the bar interval
    promotion: PromotionSettings = field(default_factory=PromotionSettings)
    signal: SignalSettings = field(default_factory=SignalSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    checkpoint_interval_s: float | None = None  # between model checkpoints; 0: none; null: derived
    checkpoint_max_bytes: int = 900_000
    warm_start: str = ""  # "latest" or a checkpoint id: a fresh flow starts from it
    mini_batch_ticks: int = 0  # > 1: linear models learn per bucket of ticks (learn_many)
    enter_long: float = 0.55
    exit_long: float = 0.50
    enter_short: float = 0.45
    exit_short: float = 0.50
    min_labelled: int | None = None  # null: from the bar interval (200 ticks, 20 daily bars)

    def __post_init__(self) -> None:
        unknown = [
            name for name in (self.pipeline, *self.challengers) if name not in self.pipelines
        ]
        if unknown:
            known = ", ".join(sorted(self.pipelines))
            msg = f"model pipelines {unknown} are not configured (known: {known})"
            raise ValueError(msg)

    @property
    def pooled(self) -> bool:
        """True when the champion or a challenger is pooled across instruments."""
        return any(
            self.pipelines[name].scope is ModelScope.POOLED
            for name in (self.pipeline, *self.challengers)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardSettings:
    """The dashboard, its exporter and alert engine (`hfl dashboard`)."""

    host: str = "127.0.0.1"
    port: int = 8050
    # Reads without a key: only on a loopback bind (refused otherwise at start).
    open_read: bool = False
    origins: tuple[str, ...] = ()
    read_limit: str = "2000/second"
    write_limit: str = "10/second"
    sql_limit: str = "60/minute"
    # The SQL console's own ClickHouse URL (Docker: the hfl_sql user); empty: the store's.
    sql_url: Secret = field(default_factory=Secret)
    refresh_s: float = 0.5
    metrics_dir: str = ""
    webhook_url: str = ""
    stale_data_s: float | None = None  # null: from the bar interval (10 s, or 5 bars)
    persist_lag_s: float = 30.0
    max_drawdown_ratio: float = 0.10


@dataclass(frozen=True, slots=True, kw_only=True)
class SecuritySettings:
    """API keys, and how signed commands on the control topics are checked.

    `keys_file` (relative paths from the working directory) holds the keys as salted
    hashes (`hfl keys`); `api_key` is this caller's own key for signing commands
    (`HFL_API_KEY` or `HFL_API_KEY_FILE`); `sign_window_s` how far a command's signed
    time may be from its log time.
    """

    keys_file: str = "var/keys.json"
    api_key: Secret = field(default_factory=Secret)
    sign_window_s: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything configurable, validated at once."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    data: DataSettings = field(default_factory=DataSettings)
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    clickhouse: ClickHouseSettings = field(default_factory=ClickHouseSettings)
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    bytewax: BytewaxSettings = field(default_factory=BytewaxSettings)
    feed: FeedSettings = field(default_factory=FeedSettings)
    trading: TradingSettings = field(default_factory=TradingSettings)
    outliers: OutlierSettings = field(default_factory=OutlierSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    risk: RiskSettings = field(default_factory=RiskSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)

    def __post_init__(self) -> None:
        # Settings left null take the data's time scale at once (`derive_time_scale`), so
        # no caller ever sees a null one; a value already set is kept, also by `replace`.
        for name, value in _time_scale_parts(self, self.data.scale()).items():
            object.__setattr__(self, name, value)


def masked(settings: Settings) -> dict[str, Any]:
    """`settings` as plain data with every `Secret` shown as ``***`` (the runs row, logs).

    >>> masked(Settings(clickhouse=ClickHouseSettings(url=Secret("http://u:pw@h/db"))))["clickhouse"]["url"]
    '***'
    """

    def walk(value: Any) -> Any:
        if isinstance(value, Secret):
            return "***" if value else ""
        if is_dataclass(value) and not isinstance(value, type):
            return {f.name: walk(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [walk(item) for item in value]
        return value

    result: dict[str, Any] = walk(settings)
    return result


def secret_values(settings: Settings) -> list[str]:
    """Every non-empty `Secret` of `settings`, revealed (for scanning output for leaks)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Secret):
            if value:
                found.append(value.reveal())
        elif is_dataclass(value) and not isinstance(value, type):
            for f in fields(value):
                walk(getattr(value, f.name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(settings)
    return found


def kafka_security(section: KafkaSecuritySettings) -> KafkaSecurity:
    """The connectors' view of the Kafka security settings (the password revealed)."""
    return KafkaSecurity(
        protocol=section.protocol,
        mechanism=section.mechanism,
        username=section.username,
        password=section.password.reveal(),
        ca_file=section.ca_file,
        cert_file=section.cert_file,
        key_file=section.key_file,
        check_hostname=section.check_hostname,
    )


def default_clickhouse_url(root: Path) -> str:
    """The embedded store under `./var/` of the project root."""
    return f"chdb://{(root / 'var' / 'clickhouse').resolve()}"


def load_settings(
    config_dir: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build and validate `Settings` from YAML files and the environment.

    Args:
        config_dir: folder with `trading.yaml`, `risk.yaml`, `models.yaml`; default
            `$HFL_CONFIG_DIR` or `./config`. The folder must exist and be readable
            (files missing from it are skipped); `"builtin"` reads no folder and
            starts from the built-in defaults.
        env: environment to read `HFL_*` overrides from; default `os.environ`.

    Raises:
        ConfigError: listing every invalid field.
    """
    env = os.environ if env is None else env
    where = str(config_dir or env.get("HFL_CONFIG_DIR") or "config")
    data: dict[str, Any] = {}
    errors: list[str] = []
    if where != BUILTIN:
        folder = Path(where)
        if _readable_dir(folder, errors):
            for name in CONFIG_FILES:
                path = folder / name
                if path.exists():
                    _merge_yaml(path, data, errors)
    _merge_env(env, data)
    _local_bootstrap(data)
    _merge_env_files(env, data, errors)
    settings = _build(Settings, data, "", errors)
    transport = kafka_security(settings.kafka.security)
    errors.extend(transport.problems())
    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))
    # Every Kafka client this process opens from now on authenticates this way.
    use_kafka_security(transport)
    if not settings.clickhouse.url:
        url = Secret(default_clickhouse_url(Path.cwd()))
        settings = replace(settings, clickhouse=replace(settings.clickhouse, url=url))
    return derive_time_scale(settings)


def _unset(value: T | None, derived: T) -> T:
    return derived if value is None else value


def derive_time_scale(settings: Settings, scale: TimeScale | None = None) -> Settings:
    """`settings` with every setting left null filled from the data's time scale.

    `scale` defaults to `data.bar_interval`'s (`auto`, not yet estimated: tick data).
    Values set in a file or the environment are kept as they are. `Settings` applies it
    to itself when built, so its fields are never null.

    >>> day = Settings(data=DataSettings(bar_interval="1d"))
    >>> day.risk.model.periods_per_day, day.risk.limits.time_in_force_ms, day.model.min_labelled
    (1.0, 432000000, 20)
    >>> tick = derive_time_scale(Settings())
    >>> tick.risk.model.periods_per_day, tick.outliers.stale_timestamp
    (23400.0, <OutlierAction.OFF: 'off'>)
    """
    return replace(settings, **_time_scale_parts(settings, scale or settings.data.scale()))


def _time_scale_parts(settings: Settings, scale: TimeScale) -> dict[str, Any]:
    ms, s = 1_000_000, 1e9
    risk, model = settings.risk, settings.model

    def limits(given: LimitSettings, tif_ms: int, age_ms: int) -> LimitSettings:
        return replace(
            given,
            time_in_force_ms=_unset(given.time_in_force_ms, tif_ms),
            max_reference_age_ms=_unset(given.max_reference_age_ms, age_ms),
        )

    # An instrument's own limits inherit the account's where they leave these null.
    account = limits(risk.limits, scale.time_in_force_ns // ms, scale.reference_age_ns // ms)
    inherited = (account.time_in_force_ms or 0, account.max_reference_age_ms or 0)
    risk = replace(
        risk,
        limits=account,
        per_instrument={
            name: limits(given, *inherited) for name, given in risk.per_instrument.items()
        },
        model=replace(
            risk.model,
            sample_interval_ms=_unset(risk.model.sample_interval_ms, scale.sample_ns // ms),
            periods_per_day=_unset(risk.model.periods_per_day, scale.periods_per_day),
            recompute_interval_ms=_unset(
                risk.model.recompute_interval_ms, scale.recompute_ns // ms
            ),
        ),
    )
    model = replace(
        model,
        metrics_interval_s=_unset(model.metrics_interval_s, scale.metrics_ns / s),
        checkpoint_interval_s=_unset(model.checkpoint_interval_s, scale.checkpoint_ns / s),
        min_labelled=_unset(model.min_labelled, scale.min_labelled),
    )
    live = OutlierAction.FLAG if settings.data.live else OutlierAction.OFF
    return {
        "risk": risk,
        "model": model,
        "gateway": replace(
            settings.gateway,
            tick_buffer_s=_unset(settings.gateway.tick_buffer_s, scale.tick_buffer_ns / s),
        ),
        "outliers": replace(
            settings.outliers, stale_timestamp=_unset(settings.outliers.stale_timestamp, live)
        ),
        "dashboard": replace(
            settings.dashboard,
            stale_data_s=_unset(settings.dashboard.stale_data_s, scale.stale_ns / s),
        ),
    }


def _readable_dir(folder: Path, errors: list[str]) -> bool:
    """Whether `folder` is a readable directory; if not, say so in `errors`."""
    hint = f"set HFL_CONFIG_DIR to the folder with {', '.join(CONFIG_FILES)}, or to"
    hint += f" {BUILTIN!r} for the built-in defaults"
    if not folder.is_dir():
        problem = "is not a directory" if folder.exists() else "does not exist"
        errors.append(f"config directory {str(folder.resolve())!r} {problem} ({hint})")
        return False
    if not os.access(folder, os.R_OK | os.X_OK):
        errors.append(f"config directory {str(folder.resolve())!r} is not readable ({hint})")
        return False
    return True


def _local_bootstrap(data: dict[str, Any]) -> None:
    """Point the clients at the local broker (`broker.host`/`broker.port`) unless
    `kafka.bootstrap` names another: one setting moves server and clients together.

    >>> data = {"broker": {"port": "19999"}}
    >>> _local_bootstrap(data); data["kafka"]["bootstrap"]
    '127.0.0.1:19999'
    """
    kafka = data.setdefault("kafka", {})
    if not isinstance(kafka, dict) or kafka.get("bootstrap"):
        return
    broker = data.get("broker") or {}
    if not isinstance(broker, Mapping):
        return
    default = BrokerSettings()
    kafka["bootstrap"] = f"{broker.get('host', default.host)}:{broker.get('port', default.port)}"


def _merge_yaml(path: Path, data: dict[str, Any], errors: list[str]) -> None:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        errors.append(f"{path}: not valid YAML ({exc})")
        return
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(f"{path}: cannot be read ({exc})")
        return
    if not isinstance(loaded, dict):
        errors.append(f"{path}: top level must be a mapping")
        return
    _deep_merge(data, loaded)


def _deep_merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    for key, value in source.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value


def _merge_env(env: Mapping[str, str], data: dict[str, Any]) -> None:
    if url := env.get("HFL_CLICKHOUSE_URL"):
        data.setdefault("clickhouse", {})["url"] = url
    for name, value in env.items():
        if not name.startswith("HFL_") or "__" not in name or _secret_file_path(name):
            continue
        path = name[4:].lower().split("__")
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value


def _merge_env_files(env: Mapping[str, str], data: dict[str, Any], errors: list[str]) -> None:
    """`HFL_<PATH>_FILE=/run/secrets/x` sets `<path>` to the file's content (Docker
    secrets): `HFL_CLICKHOUSE_URL_FILE`, `HFL_API_KEY_FILE`, `HFL_A__B_FILE` for `a.b`.
    `HFL_API_KEY` itself is `security.api_key`."""
    if key := env.get("HFL_API_KEY"):
        data.setdefault("security", {})["api_key"] = key
    for name, value in env.items():
        path = _secret_file_path(name)
        if not path:
            continue
        try:
            secret = Path(value).read_text(encoding="utf-8").strip()
        except OSError as exc:
            errors.append(f"{name}: cannot read {value} ({exc.strerror})")
            continue
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = secret


def _secret_file_path(name: str) -> list[str]:
    """The settings path a `HFL_…_FILE` variable fills, when it names a `Secret` field.

    >>> _secret_file_path("HFL_KAFKA__SECURITY__PASSWORD_FILE")
    ['kafka', 'security', 'password']
    >>> _secret_file_path("HFL_SECURITY__KEYS_FILE")  # a setting that is itself a path
    []
    """
    if not name.startswith("HFL_") or not name.endswith("_FILE"):
        return []
    stem = name[4:-5]
    special = {"CLICKHOUSE_URL": ["clickhouse", "url"], "API_KEY": ["security", "api_key"]}
    path = special.get(stem) or stem.lower().split("__")
    kind: Any = Settings
    for part in path:
        hints = typing.get_type_hints(kind) if is_dataclass(kind) else {}
        if part not in hints:
            return []
        kind = hints[part]
    return path if kind is Secret else []


def _build(cls: type[T], data: Any, where: str, errors: list[str]) -> T:
    if not isinstance(data, Mapping):
        errors.append(f"{where or 'settings'}: expected a mapping, got {data!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    errors.extend(f"{where}{key}: unknown setting" for key in data if key not in known)
    values = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            values[f.name] = _coerce(hints[f.name], data[f.name], f"{where}{f.name}", errors)
        elif f.default is MISSING and f.default_factory is MISSING:
            errors.append(f"{where}{f.name}: required")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        errors.append(f"{where or 'settings'}: {exc}")
        return cls()


def _coerce(kind: Any, value: Any, where: str, errors: list[str]) -> Any:
    origin = typing.get_origin(kind)
    if is_dataclass(kind):
        return _build(kind, value, f"{where}.", errors)  # type: ignore[arg-type]
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            errors.append(f"{where}: expected a list, got {value!r}")
            return ()
        return tuple(_coerce(typing.get_args(kind)[0], item, where, errors) for item in items)
    if origin is dict:
        value_kind = typing.get_args(kind)[1]
        if not isinstance(value, Mapping):
            errors.append(f"{where}: expected a mapping, got {value!r}")
            return {}
        return {str(k): _coerce(value_kind, v, f"{where}.{k}", errors) for k, v in value.items()}
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in typing.get_args(kind):
            return None
        return _coerce(typing.get_args(kind)[0], value, where, errors)
    return _scalar(kind, value, where, errors)


def _bool(value: Any) -> bool:
    """A bool from YAML (`true`) or the environment (`"true"`); anything else is invalid.

    >>> _bool("Yes"), _bool(0), _bool(True)
    (True, False, True)
    >>> _bool("maybe")
    Traceback (most recent call last):
    ...
    ValueError: expected true/false, yes/no, on/off or 1/0
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true/false, yes/no, on/off or 1/0")


def _scalar(kind: Any, value: Any, where: str, errors: list[str]) -> Any:
    try:
        if kind is bool:
            return _bool(value)
        if kind is Decimal:
            number = Decimal(str(value))
            if not number.is_finite():
                raise ValueError("not finite")
            return number
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("not a whole number")
            return int(value)
        if kind is float:
            return float(value)
        if kind in (str, Secret):
            return kind(value)
        if isinstance(kind, type) and issubclass(kind, StrEnum):
            return kind(value)
    except (ValueError, TypeError, InvalidOperation) as exc:
        errors.append(f"{where}: {value!r} is not a valid {kind.__name__} ({exc})")
        return None
    return value
