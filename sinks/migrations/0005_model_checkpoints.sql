-- Model checkpoints: the pickled state of an instrument's model set (champion,
-- challengers, pending labels, metrics, drift detectors) on a schedule in event time,
-- so a fresh trading flow can warm-start from it (`model.warm_start`). `blob` is the
-- zlib-compressed pickle in base64, `sha256` the digest of the compressed bytes,
-- verified before anything is unpickled. Trusted input: written only by our own flows.
CREATE TABLE IF NOT EXISTS model_checkpoints
(
    checkpoint_id String,
    instrument LowCardinality(String),
    model LowCardinality(String),
    models Array(String),
    version_id String,
    params_hash String,
    code_version LowCardinality(String),
    seq UInt64,
    tick_id String,
    size_bytes UInt64,
    sha256 String,
    blob String CODEC(ZSTD(3)),
    ts_event DateTime64(9, 'UTC'),
    ts_init DateTime64(9, 'UTC'),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (instrument, ts_event, checkpoint_id)
SETTINGS non_replicated_deduplication_window = 1000
;
