-- Feeds (issue 18): candles from the venues' REST history (`hfl ingest history`), and
-- where each live tick came from (venue, its trade id / sequence, flags such as failover).
-- A candle is keyed by venue, instrument, interval and open time: the same candle fetched
-- again (a resumed or overlapping run) collapses onto one row, the latest fetch winning
-- (a venue may still revise its newest candle); inserts carry a token made from the
-- venue's values, so a page fetched twice is not even written twice.

CREATE TABLE IF NOT EXISTS history_bars
(
    venue LowCardinality(String),
    instrument LowCardinality(String),
    interval_s UInt32,
    open Float64,
    high Float64,
    low Float64,
    close Float64,
    volume Float64,
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ts_init)
ORDER BY (venue, instrument, interval_s, ts_event)
SETTINGS non_replicated_deduplication_window = 1000
;

ALTER TABLE ticks ADD COLUMN IF NOT EXISTS venue LowCardinality(String) DEFAULT '' AFTER kind;
ALTER TABLE ticks ADD COLUMN IF NOT EXISTS venue_trade_id Nullable(Int64) AFTER venue;
ALTER TABLE ticks ADD COLUMN IF NOT EXISTS venue_seq Nullable(Int64) AFTER venue_trade_id;
ALTER TABLE ticks ADD COLUMN IF NOT EXISTS flags Array(LowCardinality(String)) AFTER venue_seq;
