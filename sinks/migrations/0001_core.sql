-- Core event tables: one per Kafka topic, plus runs.
-- Every table is a ReplacingMergeTree keyed by the record's natural id, so a replayed
-- record collapses onto its first copy; readers use FINAL or argMax.
-- Timestamps are DateTime64(9, 'UTC') filled from integer nanoseconds; accounted amounts
-- are Decimal(38, 9) (see risk.domain.money); `_inserted_at` is the wall-clock arrival,
-- useful for measuring persist lag and never part of a key.

CREATE TABLE IF NOT EXISTS ticks
(
    tick_id String,
    instrument LowCardinality(String),
    seq UInt64,
    kind LowCardinality(String),
    price Float64,
    size Float64,
    bid Nullable(Float64),
    ask Nullable(Float64),
    bid_size Nullable(Float64),
    ask_size Nullable(Float64),
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
-- Event time is part of the key: feeds restart sequence numbers per session.
ORDER BY (instrument, ts_event, seq)
SETTINGS non_replicated_deduplication_window = 1000
;

CREATE TABLE IF NOT EXISTS bars
(
    instrument LowCardinality(String),
    interval_s UInt32,
    open Float64,
    high Float64,
    low Float64,
    close Float64,
    volume Float64,
    vwap Float64,
    trade_count UInt64,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (instrument, interval_s, ts_event)
SETTINGS non_replicated_deduplication_window = 1000
;

CREATE TABLE IF NOT EXISTS features
(
    tick_id String,
    instrument LowCardinality(String),
    `values` Map(LowCardinality(String), Float64),
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (instrument, tick_id)
SETTINGS non_replicated_deduplication_window = 1000
;

-- A prediction is written twice (version 0 at predict time, 1 once labelled);
-- the labelled row wins whatever order the two arrive in.
CREATE TABLE IF NOT EXISTS predictions
(
    tick_id String,
    instrument LowCardinality(String),
    model LowCardinality(String),
    horizon_ns Int64,
    probability_up Float64,
    label Nullable(UInt8),
    version UInt8,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (model, instrument, tick_id)
SETTINGS non_replicated_deduplication_window = 1000
;

CREATE TABLE IF NOT EXISTS signals
(
    signal_id String,
    tick_id String,
    instrument LowCardinality(String),
    model LowCardinality(String),
    direction Int8,
    probability_up Float64,
    reference_price Float64,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY signal_id
SETTINGS non_replicated_deduplication_window = 1000
;

-- Approved and Denied share one table: `reason`/`detail` are '' when approved,
-- `client_order_id` is '' when denied.
CREATE TABLE IF NOT EXISTS risk_decisions
(
    signal_id String,
    account LowCardinality(String),
    instrument LowCardinality(String),
    side LowCardinality(String),
    quantity Decimal(38, 9),
    reference_price Nullable(Float64),
    outcome LowCardinality(String),
    reason LowCardinality(String),
    detail String,
    client_order_id String,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (account, signal_id)
SETTINGS non_replicated_deduplication_window = 1000
;

CREATE TABLE IF NOT EXISTS orders
(
    client_order_id String,
    signal_id String,
    account LowCardinality(String),
    instrument LowCardinality(String),
    side LowCardinality(String),
    quantity Decimal(38, 9),
    order_type LowCardinality(String),
    limit_price Nullable(Decimal(38, 9)),
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY client_order_id
SETTINGS non_replicated_deduplication_window = 1000
;

CREATE TABLE IF NOT EXISTS order_events
(
    event_id String,
    client_order_id String,
    account LowCardinality(String),
    instrument LowCardinality(String),
    kind LowCardinality(String),
    filled_quantity Decimal(38, 9),
    leaves_quantity Decimal(38, 9),
    reason String,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000
;

CREATE TABLE IF NOT EXISTS fills
(
    fill_id String,
    client_order_id String,
    account LowCardinality(String),
    instrument LowCardinality(String),
    side LowCardinality(String),
    quantity Decimal(38, 9),
    price Decimal(38, 9),
    fee Decimal(38, 9),
    leaves_quantity Decimal(38, 9),
    tick_id String,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY fill_id
SETTINGS non_replicated_deduplication_window = 1000
;

-- Every position update is kept, so history is queryable; the latest is
-- argMax(quantity, ts_event) per (account, instrument). Position carries no fill id:
-- several fills at one event time collapse to the last update at that time, which
-- is the position after all of them (the topic is ordered per account).
CREATE TABLE IF NOT EXISTS positions
(
    account LowCardinality(String),
    instrument LowCardinality(String),
    quantity Decimal(38, 9),
    average_price Decimal(38, 9),
    realized_pnl Decimal(38, 9),
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (account, instrument, ts_event)
SETTINGS non_replicated_deduplication_window = 1000
;

CREATE TABLE IF NOT EXISTS pnl
(
    account LowCardinality(String),
    cash Decimal(38, 9),
    realized_pnl Decimal(38, 9),
    unrealized_pnl Decimal(38, 9),
    fees Decimal(38, 9),
    equity Decimal(38, 9),
    gross_exposure Decimal(38, 9),
    net_exposure Decimal(38, 9),
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (account, ts_event)
SETTINGS non_replicated_deduplication_window = 1000
;

CREATE TABLE IF NOT EXISTS dlq
(
    failure_id String,
    topic LowCardinality(String),
    `partition` UInt32,
    `offset` Int64,
    reason LowCardinality(String),
    detail String,
    raw String,
    raw_size UInt64,
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY failure_id
SETTINGS non_replicated_deduplication_window = 1000
;

-- One row per run and state change; the highest `version` is the run's current state.
CREATE TABLE IF NOT EXISTS runs
(
    run_id String,
    started_at DateTime64(9, 'UTC'),
    finished_at Nullable(DateTime64(9, 'UTC')),
    config String,
    code_version String,
    status LowCardinality(String),
    version UInt64,
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY run_id
SETTINGS non_replicated_deduplication_window = 1000
;
