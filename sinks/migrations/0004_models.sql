-- Online models: every prediction row gets its realised outcome and error (version 1
-- of the ReplacingMergeTree row), plus the model registry and live prequential metrics.

ALTER TABLE predictions ADD COLUMN IF NOT EXISTS expected_return Nullable(Float64) AFTER probability_up;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS realized_return Nullable(Float64) AFTER label;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS error Nullable(Float64) AFTER realized_return;

-- One row per model instance created on an instrument (at start, or replacing a
-- challenger after a drift: `parent` is the version it replaced).
CREATE TABLE IF NOT EXISTS model_versions
(
    version_id String,
    instrument LowCardinality(String),
    model LowCardinality(String),
    factory LowCardinality(String),
    params String,
    params_hash String,
    code_version LowCardinality(String),
    parent String,
    created_at DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version_id
SETTINGS non_replicated_deduplication_window = 1000
;

-- Prequential scores per model and instrument on a schedule in event time: the
-- cumulative metrics and `rolling_<name>` over the latest labels, memory use, and
-- what an adaptive model currently chooses (`detail`). The metrics exporter reads
-- the latest row per (instrument, model).
CREATE TABLE IF NOT EXISTS model_metrics
(
    metrics_id String,
    instrument LowCardinality(String),
    model LowCardinality(String),
    version_id String,
    role LowCardinality(String),
    n_labelled UInt64,
    n_pending UInt64,
    evicted UInt64,
    `values` Map(LowCardinality(String), Float64),
    memory_bytes UInt64,
    detail String,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (instrument, model, ts_event, metrics_id)
SETTINGS non_replicated_deduplication_window = 1000
;
