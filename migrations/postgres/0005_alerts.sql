-- Alert engine state (ARCHITECTURE §3). Keep in step with the other engine's 0005.
--
-- alert_states holds one row per (rule, entity) that is not idle: the whole state
-- machine as JSON (so a restart resumes it exactly) plus the columns the UI filters on.
-- alert_notifications is written in the same transaction as the state that says
-- "notified": a notification exists exactly when the state records it, so a restart
-- can neither lose one nor send one twice. The notifier delivers from it.

CREATE TABLE alert_states (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    rule_id      TEXT NOT NULL,
    entity_kind  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    phase        TEXT NOT NULL,
    level        TEXT,
    since_ms     BIGINT NOT NULL,
    summary      TEXT NOT NULL,
    state        TEXT NOT NULL,
    updated_ms   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, rule_id, entity_kind, entity_id)
);
CREATE INDEX alert_states_by_phase ON alert_states (tenant_id, phase);

CREATE TABLE alert_notifications (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    ts_ms         BIGINT NOT NULL,
    rule_id       TEXT NOT NULL,
    rule_name     TEXT NOT NULL,
    entity_kind   TEXT NOT NULL,
    entity_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    level         TEXT NOT NULL,
    summary       TEXT NOT NULL,
    details       TEXT NOT NULL,
    delivered_ms  BIGINT
);
CREATE INDEX alert_notifications_by_tenant ON alert_notifications (tenant_id, id);
CREATE INDEX alert_notifications_undelivered ON alert_notifications (delivered_ms, id);
