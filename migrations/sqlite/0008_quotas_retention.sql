-- Per-tenant series quota and retention of everything that grows (issue 12). Keep in
-- step with the other engine's 0008.
--
-- Every entity key an agent names creates a series row, and events, the audit log,
-- notifications and discovery rows grew without end: one tenant could make the shared
-- server keep anything it sends. NULL follows the server's [tenant_defaults] as for the
-- other settings. The indexes serve the daily retention deletes. `series` gets none:
-- ingest moves `last_ts_ms` of every series it writes, and an index on it would turn
-- those updates from heap-only into three index insertions per sample (measured: the
-- PostgreSQL CPU per sample went up 2.5 times); the daily delete scans the tenant's
-- series instead.

ALTER TABLE tenant_settings ADD COLUMN max_series BIGINT;
ALTER TABLE tenant_settings ADD COLUMN event_retention_days BIGINT;
ALTER TABLE tenant_settings ADD COLUMN audit_retention_days BIGINT;
ALTER TABLE tenant_settings ADD COLUMN notification_retention_days BIGINT;
ALTER TABLE tenant_settings ADD COLUMN discovery_retention_days BIGINT;

CREATE INDEX audit_log_by_time ON audit_log (tenant_id, ts_ms);
CREATE INDEX alert_notifications_by_time ON alert_notifications (tenant_id, ts_ms);
