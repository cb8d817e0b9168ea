-- Time-series store (PostgreSQL). Keep in step with migrations/sqlite/0003_timeseries.sql:
-- same tables, columns and keys; only the partitioning differs.
--
-- Raw samples move to a table partitioned by day on ts_ms. The server creates daily
-- partitions ahead (and on demand when an agent replays older data) and drops whole
-- partitions once they are older than the longest raw retention of any tenant; a
-- tenant with a shorter retention has its older rows deleted. Rows are narrow
-- (series id, time, value): the series row carries tenant, entity and metric.
--
-- samples.series_id is deliberately not a foreign key: a per-row referential check
-- would cost more than the insert itself at the ingest rates the store is built for.
-- The store is the only writer, resolves series ids inside the batch transaction and
-- never deletes a series row while samples may reference it.

ALTER TABLE samples RENAME TO samples_legacy;
ALTER INDEX samples_pkey RENAME TO samples_legacy_pkey;

CREATE TABLE samples (
    series_id  BIGINT NOT NULL,
    ts_ms      BIGINT NOT NULL,
    value      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, ts_ms)
) PARTITION BY RANGE (ts_ms);

-- Catches rows whose day has no partition (replays older than the on-demand window).
-- Creating a day's partition moves that day's rows out of it first.
CREATE TABLE samples_default PARTITION OF samples DEFAULT;

INSERT INTO samples (series_id, ts_ms, value)
    SELECT series_id, ts_ms, value FROM samples_legacy;
DROP TABLE samples_legacy;

-- Rollups and retention read a time range across all series of a tenant. Rows arrive in
-- roughly time order, so a BRIN index (a few pages per partition, nearly free to
-- maintain) narrows such a scan to the recent pages; per-series reads use the key.
CREATE INDEX samples_by_time ON samples USING BRIN (ts_ms);

-- The latest value is updated on every batch: leave room on each page so the update
-- stays a heap-only tuple (no index writes).
ALTER TABLE series SET (fillfactor = 70);

-- Rollups: one row per series and bucket (1 minute, 1 hour). The average is
-- value_sum / sample_count, so buckets can be combined. p95 is percentile_cont(0.95) of
-- the raw values of a minute, and of the minute averages of an hour (see
-- server/src/store/rollup.rs). The primary key serves the UI's range reads.
CREATE TABLE samples_1m (
    series_id     BIGINT NOT NULL,
    bucket_ms     BIGINT NOT NULL,
    sample_count  BIGINT NOT NULL,
    value_sum     DOUBLE PRECISION NOT NULL,
    value_min     DOUBLE PRECISION NOT NULL,
    value_max     DOUBLE PRECISION NOT NULL,
    value_p95     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, bucket_ms)
);

CREATE TABLE samples_1h (
    series_id     BIGINT NOT NULL,
    bucket_ms     BIGINT NOT NULL,
    sample_count  BIGINT NOT NULL,
    value_sum     DOUBLE PRECISION NOT NULL,
    value_min     DOUBLE PRECISION NOT NULL,
    value_max     DOUBLE PRECISION NOT NULL,
    value_p95     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, bucket_ms)
);

-- Hour buckets are built from a time range of minute buckets across series.
CREATE INDEX samples_1m_by_time ON samples_1m USING BRIN (bucket_ms);

-- How far each tenant's rollups are complete: buckets before the watermark have been
-- computed (a bucket is computed once it ended the rollup lateness ago).
CREATE TABLE rollup_state (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    level         TEXT NOT NULL,
    watermark_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, level)
);

-- Hours of a series that received samples too late for the regular recompute window
-- (agent replays): recomputed by the next rollup run. gen changes on every new mark, so
-- a run deletes only the marks it has seen.
CREATE TABLE rollup_dirty (
    tenant_id  TEXT NOT NULL,
    series_id  BIGINT NOT NULL,
    hour_ms    BIGINT NOT NULL,
    gen        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, series_id, hour_ms)
);

-- Per-tenant retention and quotas; NULL means "the server's default" (server config
-- [tenant_defaults]), so changing a default reaches every tenant that did not override it.
CREATE TABLE tenant_settings (
    tenant_id              TEXT PRIMARY KEY REFERENCES tenants(id),
    raw_retention_days     BIGINT,
    minute_retention_days  BIGINT,
    hour_retention_days    BIGINT,
    max_devices            BIGINT,
    max_agents             BIGINT,
    max_samples_per_s      BIGINT,
    updated_ms             BIGINT NOT NULL
);

-- Batch claims are kept as long as raw samples; retention finds old ones by time.
CREATE INDEX ingested_batches_by_time ON ingested_batches (received_ms);
