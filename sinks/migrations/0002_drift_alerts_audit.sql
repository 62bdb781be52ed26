-- Events shared by the risk, model and observability layers: drift detections, trading
-- state changes, alerts and the audit trail of every human or automatic control action.

CREATE TABLE IF NOT EXISTS drift_events
(
    drift_id String,
    instrument LowCardinality(String),
    model LowCardinality(String),
    detector LowCardinality(String),
    stream LowCardinality(String),
    value Float64,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY drift_id
SETTINGS non_replicated_deduplication_window = 1000
;

-- Trading state transitions; instrument '' means the whole account.
CREATE TABLE IF NOT EXISTS risk_events
(
    event_id String,
    account LowCardinality(String),
    instrument LowCardinality(String),
    state LowCardinality(String),
    previous LowCardinality(String),
    trigger LowCardinality(String),
    reason String,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (account, event_id)
SETTINGS non_replicated_deduplication_window = 1000
;

CREATE TABLE IF NOT EXISTS alerts
(
    alert_id String,
    name LowCardinality(String),
    severity LowCardinality(String),
    source LowCardinality(String),
    subject String,
    message String,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY alert_id
SETTINGS non_replicated_deduplication_window = 1000
;

CREATE TABLE IF NOT EXISTS audit
(
    audit_id String,
    actor String,
    action LowCardinality(String),
    subject String,
    reason String,
    detail String,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY audit_id
SETTINGS non_replicated_deduplication_window = 1000
;
