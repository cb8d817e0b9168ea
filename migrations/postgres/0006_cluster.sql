-- The agents' cluster reports (issue 6). Keep in step with the other engine's 0006.
--
-- One row per agent: the newest report it sent (by the agent's own generated_ms, so a
-- batch replayed from an agent's disk buffer never replaces a newer report). The report
-- is JSON (ispvm_proto::ClusterReport): members as the agent sees them, the routers it
-- polls, the reachability verdicts it relays. The server merges the rows of a tenant
-- into the cluster view and the reachability matrix, and rebuilds both from here after
-- a restart.

CREATE TABLE cluster_reports (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    agent_id      TEXT NOT NULL,
    generated_ms  BIGINT NOT NULL,
    received_ms   BIGINT NOT NULL,
    report        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, agent_id)
);
