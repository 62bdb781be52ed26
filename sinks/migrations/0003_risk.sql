-- Risk management: cancel requests the gate sends on a kill, and the account's
-- real-time portfolio risk figures (VaR, CVaR, volatility, beta, drawdown, exposures,
-- limit utilisation, stress scenarios), one row per figure and computation time.

-- Cancel requests travel on hfl.orders beside the orders; `cancel_id` tells them apart.
CREATE TABLE IF NOT EXISTS order_cancels
(
    cancel_id String,
    client_order_id String,
    account LowCardinality(String),
    instrument LowCardinality(String),
    reason String,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY cancel_id
SETTINGS non_replicated_deduplication_window = 1000
;

-- `metric` is a bounded name (var_hist_99, cvar_ewma_99, volatility, beta, drawdown,
-- stress_market_down_10...); `limit_value` its configured limit (0 when it has none).
CREATE TABLE IF NOT EXISTS risk_metrics
(
    metrics_id String,
    account LowCardinality(String),
    metric LowCardinality(String),
    value Float64,
    limit_value Float64,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (account, metric, ts_event, metrics_id)
SETTINGS non_replicated_deduplication_window = 1000
;
