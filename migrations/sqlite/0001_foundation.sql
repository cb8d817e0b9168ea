-- Foundation schema (SQLite, the embedded default). Keep in step with
-- migrations/postgres/0001_foundation.sql: same tables, columns and keys.
-- Every tenant-owned row carries tenant_id. Timestamps are Unix milliseconds.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE sites (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    lat         DOUBLE PRECISION,
    lon         DOUBLE PRECISION,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE agents (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    id             TEXT NOT NULL,
    first_seen_ms  INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL,
    last_seq       INTEGER NOT NULL,
    batches        INTEGER NOT NULL DEFAULT 0,
    seq_gaps       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE devices (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    id             TEXT NOT NULL,
    name           TEXT NOT NULL,
    site_id        TEXT NOT NULL,
    role           TEXT NOT NULL,
    mgmt_addr      TEXT NOT NULL,
    model          TEXT NOT NULL,
    os_version     TEXT NOT NULL,
    agent_id       TEXT NOT NULL,
    first_seen_ms  INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites(tenant_id, id)
);

CREATE TABLE interfaces (
    tenant_id      TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    disabled       BOOLEAN NOT NULL,
    uplink         BOOLEAN NOT NULL DEFAULT FALSE,
    last_seen_ms   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, device_id, name),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices(tenant_id, id)
);

-- One row per (tenant, entity, metric): samples reference it by id, so sample rows stay
-- narrow. The latest value is kept here for the device list.
CREATE TABLE series (
    id           INTEGER PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    entity_kind  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    metric       TEXT NOT NULL,
    last_ts_ms   INTEGER,
    last_value   DOUBLE PRECISION,
    UNIQUE (tenant_id, entity_kind, entity_id, metric)
);

CREATE TABLE samples (
    series_id  INTEGER NOT NULL REFERENCES series(id),
    ts_ms      INTEGER NOT NULL,
    value      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, ts_ms)
) WITHOUT ROWID;

CREATE TABLE events (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    id           TEXT NOT NULL,
    ts_ms        INTEGER NOT NULL,
    entity_kind  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    message      TEXT NOT NULL,
    attrs        TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX events_by_time ON events (tenant_id, ts_ms);

-- Batches already stored, for idempotent replays and sequence-gap detection.
CREATE TABLE ingested_batches (
    tenant_id    TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    received_ms  INTEGER NOT NULL,
    samples      INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, agent_id, seq)
);
