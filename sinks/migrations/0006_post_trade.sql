-- Post-trade analytics for SQL users: parameterised views over one run's event-time
-- window. Call them like tables with the window in integer nanoseconds (UTC):
--
--   SELECT * FROM post_trade_orders(since_ns = 1700000000000000000, until_ns = 1800000000000000000);
--
-- Conventions (documented in docs/post-trade.md):
-- * sign is +1 for a buy and -1 for a sell; a positive slippage or shortfall is a cost;
-- * the decision price is the price the risk gate decided on (risk_decisions), else the
--   signal's reference price; the arrival price is the instrument's first tick strictly
--   after the order's event time (what the gateway could first trade on);
-- * latency is event time from the order to its first and last fill, in nanoseconds;
-- * P&L attribution marks every fill to the instrument's last price in the window:
--   sign * quantity * (last price - fill price) - fee. For a book flat at `since_ns`
--   these contributions sum to the window's P&L, so any GROUP BY of them (instrument,
--   model version, signal) adds up to the same total.

CREATE VIEW IF NOT EXISTS post_trade_orders AS
WITH
    window_orders AS
    (
        SELECT client_order_id, signal_id, account, instrument, side,
               toFloat64(quantity) AS ordered_quantity, ts_event
        FROM orders FINAL
        WHERE ts_event >= fromUnixTimestamp64Nano({since_ns:Int64}, 'UTC')
          AND ts_event <= fromUnixTimestamp64Nano({until_ns:Int64}, 'UTC')
    ),
    order_fills AS
    (
        SELECT client_order_id,
               sum(toFloat64(quantity)) AS filled_quantity,
               sum(toFloat64(quantity) * toFloat64(price)) / nullIf(sum(toFloat64(quantity)), 0)
                   AS average_price,
               sum(toFloat64(fee)) AS fees,
               count() AS fills,
               min(ts_event) AS first_fill,
               max(ts_event) AS last_fill
        FROM fills FINAL
        WHERE client_order_id IN (SELECT client_order_id FROM window_orders)
        GROUP BY client_order_id
    ),
    decisions AS
    (
        SELECT signal_id, account, any(reference_price) AS reference_price
        FROM risk_decisions FINAL
        WHERE signal_id IN (SELECT signal_id FROM window_orders)
        GROUP BY signal_id, account
    ),
    window_signals AS
    (
        SELECT signal_id, model, reference_price, ts_event
        FROM signals FINAL
        WHERE signal_id IN (SELECT signal_id FROM window_orders)
    ),
    arrivals AS
    (
        SELECT o.client_order_id AS client_order_id, t.price AS arrival_price,
               t.ts_event AS arrival_ts
        FROM window_orders AS o
        ASOF LEFT JOIN
        (
            SELECT instrument, ts_event, price FROM ticks FINAL
            WHERE ts_event > fromUnixTimestamp64Nano({since_ns:Int64}, 'UTC')
        ) AS t
        ON t.instrument = o.instrument AND t.ts_event > o.ts_event
    ),
    versions AS
    (
        SELECT s.signal_id AS signal_id, v.version_id AS version_id
        FROM window_signals AS s
        INNER JOIN window_orders AS wo ON wo.signal_id = s.signal_id
        ASOF LEFT JOIN
        (SELECT instrument, model, version_id, created_at FROM model_versions FINAL) AS v
        ON v.instrument = wo.instrument AND v.model = s.model AND v.created_at <= s.ts_event
    )
SELECT
    o.client_order_id AS client_order_id,
    o.signal_id AS signal_id,
    o.account AS account,
    o.instrument AS instrument,
    o.side AS side,
    if(o.side = 'buy', 1, -1) AS sign,
    s.model AS model,
    v.version_id AS model_version,
    o.ordered_quantity AS ordered_quantity,
    ifNull(f.filled_quantity, 0) AS filled_quantity,
    ifNull(f.filled_quantity, 0) / o.ordered_quantity AS fill_ratio,
    coalesce(d.reference_price, s.reference_price) AS decision_price,
    a.arrival_price AS arrival_price,
    f.average_price AS average_price,
    ifNull(f.fees, 0) AS fees,
    ifNull(f.fills, 0) AS fills,
    sign * (f.average_price - decision_price) / decision_price * 1e4 AS slippage_decision_bps,
    sign * (f.average_price - a.arrival_price) / a.arrival_price * 1e4 AS slippage_arrival_bps,
    sign * (f.average_price - decision_price) * filled_quantity + fees AS shortfall,
    if(f.fills > 0, toInt64(toUnixTimestamp64Nano(f.first_fill) - toUnixTimestamp64Nano(o.ts_event)), NULL)
        AS latency_first_fill_ns,
    if(f.fills > 0, toInt64(toUnixTimestamp64Nano(f.last_fill) - toUnixTimestamp64Nano(o.ts_event)), NULL)
        AS latency_last_fill_ns,
    o.ts_event AS ts_event
FROM window_orders AS o
LEFT JOIN order_fills AS f ON f.client_order_id = o.client_order_id
LEFT JOIN decisions AS d ON d.signal_id = o.signal_id AND d.account = o.account
LEFT JOIN window_signals AS s ON s.signal_id = o.signal_id
LEFT JOIN arrivals AS a ON a.client_order_id = o.client_order_id
LEFT JOIN versions AS v ON v.signal_id = o.signal_id
SETTINGS join_use_nulls = 1
;

-- Execution quality per instrument and side: quantity-weighted slippage, its spread,
-- fill ratio, event-time latency, shortfall and fees.
CREATE VIEW IF NOT EXISTS post_trade_quality AS
SELECT
    instrument,
    side,
    count() AS orders,
    countIf(fills > 0) AS filled_orders,
    sum(filled_quantity) / sum(ordered_quantity) AS quantity_fill_ratio,
    sumIf(slippage_decision_bps * filled_quantity, fills > 0) / nullIf(sum(filled_quantity), 0)
        AS mean_slippage_decision_bps,
    quantileExactIf(0.5)(slippage_decision_bps, fills > 0) AS slippage_decision_p50_bps,
    quantileExactIf(0.95)(slippage_decision_bps, fills > 0) AS slippage_decision_p95_bps,
    sumIf(slippage_arrival_bps * filled_quantity, fills > 0 AND arrival_price IS NOT NULL)
        / nullIf(sumIf(filled_quantity, arrival_price IS NOT NULL), 0) AS mean_slippage_arrival_bps,
    quantileExactIf(0.5)(slippage_arrival_bps, fills > 0) AS slippage_arrival_p50_bps,
    quantileExactIf(0.5)(latency_first_fill_ns, fills > 0) / 1e6 AS latency_p50_ms,
    quantileExactIf(0.95)(latency_first_fill_ns, fills > 0) / 1e6 AS latency_p95_ms,
    sum(shortfall) AS total_shortfall,
    sum(fees) AS total_fees
FROM post_trade_orders(since_ns = {since_ns:Int64}, until_ns = {until_ns:Int64})
GROUP BY instrument, side
ORDER BY instrument, side
;

-- One row per fill in the window with its P&L contribution (see the header) and what
-- decided it: group by instrument, model, model_version or signal_id to attribute P&L.
CREATE VIEW IF NOT EXISTS pnl_attribution AS
WITH
    last_prices AS
    (
        SELECT instrument, argMax(price, ts_event) AS last_price
        FROM ticks FINAL
        WHERE ts_event <= fromUnixTimestamp64Nano({until_ns:Int64}, 'UTC')
        GROUP BY instrument
    ),
    decided AS
    (
        SELECT client_order_id, signal_id, model, model_version
        FROM post_trade_orders(since_ns = {since_ns:Int64}, until_ns = {until_ns:Int64})
    )
SELECT
    f.fill_id AS fill_id,
    f.account AS account,
    f.instrument AS instrument,
    f.side AS side,
    d.signal_id AS signal_id,
    d.model AS model,
    d.model_version AS model_version,
    toFloat64(f.quantity) AS quantity,
    toFloat64(f.price) AS price,
    toFloat64(f.fee) AS fee,
    p.last_price AS last_price,
    if(f.side = 'buy', 1, -1) * toFloat64(f.quantity) * (p.last_price - toFloat64(f.price))
        - toFloat64(f.fee) AS pnl,
    f.ts_event AS ts_event
FROM fills AS f FINAL
LEFT JOIN decided AS d ON d.client_order_id = f.client_order_id
LEFT JOIN last_prices AS p ON p.instrument = f.instrument
WHERE f.ts_event >= fromUnixTimestamp64Nano({since_ns:Int64}, 'UTC')
  AND f.ts_event <= fromUnixTimestamp64Nano({until_ns:Int64}, 'UTC')
SETTINGS join_use_nulls = 1
;
