-- Incident notifications (issue 13). Keep in step with the other engine's 0010.
--
-- notification_channels: where a tenant's incident transitions are sent. spec is the
-- channel's non-secret settings as JSON (kind, webhook or email settings, filter);
-- secret is sealed under the master key, bound to (tenant, channel), and never read
-- back through the API; secret_fields names what it holds.
--
-- notification_deliveries: one row per (transition, channel), written before anything
-- is sent, so a restart finds every delivery it owes and none twice. state is pending,
-- sent, failed, silenced (an acknowledgement silenced the incident) or maintenance
-- (what failed is inside an active maintenance window); attempts and last_error say
-- what happened. channel_id is kept without a foreign key: deleting a channel keeps
-- its history.
--
-- incident_transitions.planned_ms: when the notifier turned the transition into its
-- deliveries; delivered_ms is set once every one of them is final.

CREATE TABLE notification_channels (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    id             TEXT NOT NULL,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    spec           TEXT NOT NULL,
    secret_fields  TEXT NOT NULL DEFAULT '',
    secret         TEXT,
    created_ms     INTEGER NOT NULL,
    updated_ms     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE notification_deliveries (
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    incident_id      INTEGER NOT NULL,
    seq              INTEGER NOT NULL,
    channel_id       TEXT NOT NULL,
    transition       TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    last_error       TEXT,
    sent_ms          INTEGER,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, incident_id, seq, channel_id)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (state, next_attempt_ms);

ALTER TABLE incident_transitions ADD COLUMN planned_ms INTEGER;
CREATE INDEX incident_transitions_unplanned ON incident_transitions (planned_ms, at_ms);
