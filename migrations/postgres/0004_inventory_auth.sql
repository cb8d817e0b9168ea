-- Operator-managed inventory, local users and sessions, and the audit log (issue 5).
-- Keep in step with migrations/sqlite/0004_inventory_auth.sql: same tables, columns
-- and keys. Every tenant-owned row carries tenant_id; timestamps are Unix milliseconds.

-- Operator fields of a device: the polling profile and credential set its agent uses.
-- Ingest never writes these columns, so discovery does not undo an operator's choice.
ALTER TABLE devices ADD COLUMN polling_profile_id TEXT;
ALTER TABLE devices ADD COLUMN credential_set_id TEXT;

CREATE TABLE device_tags (
    tenant_id  TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, tag),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices(tenant_id, id)
);
CREATE INDEX device_tags_by_tag ON device_tags (tenant_id, tag);

CREATE TABLE links (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    a_device      TEXT NOT NULL,
    a_interface   TEXT NOT NULL,
    b_device      TEXT NOT NULL,
    b_interface   TEXT NOT NULL,
    capacity_bps  BIGINT,
    provider      TEXT NOT NULL,
    medium        TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, a_device) REFERENCES devices(tenant_id, id),
    FOREIGN KEY (tenant_id, b_device) REFERENCES devices(tenant_id, id)
);
CREATE INDEX links_by_a ON links (tenant_id, a_device);
CREATE INDEX links_by_b ON links (tenant_id, b_device);

-- depends_on / connected_to / bgp_peer / ospf_neighbor between devices, links, sites or
-- services. Inferred edges arrive as proposals an operator accepts or rejects.
CREATE TABLE topology_edges (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    from_kind   TEXT NOT NULL,
    from_id     TEXT NOT NULL,
    to_kind     TEXT NOT NULL,
    to_id       TEXT NOT NULL,
    grp         TEXT NOT NULL,
    state       TEXT NOT NULL,
    source      TEXT NOT NULL,
    note        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, kind, from_kind, from_id, to_kind, to_id)
);
CREATE INDEX topology_edges_to ON topology_edges (tenant_id, to_kind, to_id);

CREATE TABLE services (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    id           TEXT NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE service_devices (
    tenant_id   TEXT NOT NULL,
    service_id  TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, service_id, device_id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services(tenant_id, id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices(tenant_id, id)
);
CREATE INDEX service_devices_by_device ON service_devices (tenant_id, device_id);

-- Secrets are sealed with ChaCha20-Poly1305 under the master key (never stored in
-- clear); secret_fields names which secrets the sealed value holds.
CREATE TABLE credential_sets (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    id             TEXT NOT NULL,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    username       TEXT NOT NULL,
    auth_protocol  TEXT,
    priv_protocol  TEXT,
    secret_fields  TEXT NOT NULL,
    secret         TEXT NOT NULL,
    created_ms     BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE polling_profiles (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    fast_s      BIGINT NOT NULL,
    medium_s    BIGINT NOT NULL,
    slow_s      BIGINT NOT NULL,
    max_jobs    BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- scope is a JSON selector: {all, sites, devices, links, roles, tags}.
CREATE TABLE maintenance_windows (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    starts_ms   BIGINT NOT NULL,
    ends_ms     BIGINT NOT NULL,
    scope       TEXT NOT NULL,
    comment     TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX maintenance_windows_by_end ON maintenance_windows (tenant_id, ends_ms);

-- Alert rules are JSON documents (imported and exported as they are); name, kind and
-- enabled are copies of document fields for listing and filtering.
CREATE TABLE alert_rules (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    document    TEXT NOT NULL,
    revision    BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Local users: argon2id PHC strings, one role each. platform_admin may create tenants.
CREATE TABLE users (
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    username         TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    role             TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    platform_admin   BOOLEAN NOT NULL DEFAULT FALSE,
    disabled         BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins    BIGINT NOT NULL DEFAULT 0,
    locked_until_ms  BIGINT NOT NULL DEFAULT 0,
    last_login_ms    BIGINT,
    created_ms       BIGINT NOT NULL,
    updated_ms       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, username)
);

-- Bearer sessions: only the SHA-256 of the token is kept.
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    username    TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    FOREIGN KEY (tenant_id, username) REFERENCES users(tenant_id, username)
);
CREATE INDEX sessions_by_user ON sessions (tenant_id, username);
CREATE INDEX sessions_by_expiry ON sessions (expires_ms);

-- Every change and every login attempt, written in the transaction of the change.
-- No foreign key: the log outlives what it describes.
CREATE TABLE audit_log (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    ts_ms        BIGINT NOT NULL,
    username     TEXT NOT NULL,
    action       TEXT NOT NULL,
    resource     TEXT NOT NULL,
    resource_id  TEXT NOT NULL,
    details      TEXT NOT NULL,
    remote_addr  TEXT NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, id);
