-- Incidents (issue 13). Keep in step with the other engine's 0009.
--
-- incidents holds each incident whole as JSON (root cause, evidence, impact, members,
-- suppressed alerts, timeline, acknowledgement), so a restarted correlator resumes it
-- exactly, plus the columns the API filters and sorts on. The id is a per-tenant
-- number the correlator hands out and never reuses.
--
-- incident_transitions is written in the same transaction as the incident it belongs
-- to, keyed by (incident, number): a transition is recorded exactly once however often
-- a save is retried, which is what lets the notifier send each exactly once.

CREATE TABLE incidents (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    id           BIGINT NOT NULL,
    state        TEXT NOT NULL,
    severity     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    title        TEXT NOT NULL,
    confidence   DOUBLE PRECISION NOT NULL,
    opened_ms    BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL,
    resolved_ms  BIGINT,
    body         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX incidents_by_state ON incidents (tenant_id, state, opened_ms);
CREATE INDEX incidents_by_update ON incidents (tenant_id, updated_ms);

CREATE TABLE incident_transitions (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    incident_id   BIGINT NOT NULL,
    seq           BIGINT NOT NULL,
    transition    TEXT NOT NULL,
    at_ms         BIGINT NOT NULL,
    delivered_ms  BIGINT,
    PRIMARY KEY (tenant_id, incident_id, seq)
);
CREATE INDEX incident_transitions_undelivered ON incident_transitions (delivered_ms, at_ms);
