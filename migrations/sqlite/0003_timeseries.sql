-- Time-series store (SQLite). Keep in step with migrations/postgres/0003_timeseries.sql:
-- the same tables, columns and keys, without partitions (retention deletes rows).
--
-- samples.series_id stops being a foreign key, as on PostgreSQL (see there why).

CREATE TABLE samples_new (
    series_id  INTEGER NOT NULL,
    ts_ms      INTEGER NOT NULL,
    value      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, ts_ms)
) WITHOUT ROWID;
INSERT INTO samples_new (series_id, ts_ms, value) SELECT series_id, ts_ms, value FROM samples;
DROP TABLE samples;
ALTER TABLE samples_new RENAME TO samples;
-- Rollups and retention read a time range across series (PostgreSQL: a BRIN index).
CREATE INDEX samples_by_time ON samples (ts_ms);

CREATE TABLE samples_1m (
    series_id     INTEGER NOT NULL,
    bucket_ms     INTEGER NOT NULL,
    sample_count  INTEGER NOT NULL,
    value_sum     DOUBLE PRECISION NOT NULL,
    value_min     DOUBLE PRECISION NOT NULL,
    value_max     DOUBLE PRECISION NOT NULL,
    value_p95     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, bucket_ms)
) WITHOUT ROWID;

CREATE TABLE samples_1h (
    series_id     INTEGER NOT NULL,
    bucket_ms     INTEGER NOT NULL,
    sample_count  INTEGER NOT NULL,
    value_sum     DOUBLE PRECISION NOT NULL,
    value_min     DOUBLE PRECISION NOT NULL,
    value_max     DOUBLE PRECISION NOT NULL,
    value_p95     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, bucket_ms)
) WITHOUT ROWID;

CREATE INDEX samples_1m_by_time ON samples_1m (bucket_ms);

CREATE TABLE rollup_state (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    level         TEXT NOT NULL,
    watermark_ms  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, level)
);

CREATE TABLE rollup_dirty (
    tenant_id  TEXT NOT NULL,
    series_id  INTEGER NOT NULL,
    hour_ms    INTEGER NOT NULL,
    gen        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, series_id, hour_ms)
);

CREATE TABLE tenant_settings (
    tenant_id              TEXT PRIMARY KEY REFERENCES tenants(id),
    raw_retention_days     INTEGER,
    minute_retention_days  INTEGER,
    hour_retention_days    INTEGER,
    max_devices            INTEGER,
    max_agents             INTEGER,
    max_samples_per_s      INTEGER,
    updated_ms             INTEGER NOT NULL
);

CREATE INDEX ingested_batches_by_time ON ingested_batches (received_ms);
