//! The notifier's outbox: transitions turned into deliveries (stored before anything is
//! sent), attempts and their outcomes, and the transitions marked delivered once every
//! delivery is final.

use super::{BeginWrite, Store, StoreError, TenantStore, on_pool, stored_word};
use crate::notify::delivery::{
    AttemptOutcome, DeliveryFilter, DeliveryKey, DeliveryRow, DeliveryState, DueDelivery,
    UnplannedTransition,
};

type DeliveryTuple = (
    i64,
    i64,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    i64,
    i64,
);

/// Sets `delivered_ms` of a transition none of whose deliveries is pending any more.
macro_rules! mark_delivered {
    ($tx:ident, $tenant:expr, $incident:expr, $seq:expr, $now:expr) => {
        sqlx::query(
            "UPDATE incident_transitions SET delivered_ms = $4 \
             WHERE tenant_id = $1 AND incident_id = $2 AND seq = $3 AND delivered_ms IS NULL AND planned_ms IS NOT NULL \
               AND NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.tenant_id = $1 \
                 AND d.incident_id = $2 AND d.seq = $3 AND d.state = 'pending')",
        )
        .bind($tenant)
        .bind($incident)
        .bind($seq)
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    };
}

impl Store {
    /// Transitions of any tenant not yet turned into deliveries, oldest first.
    pub async fn unplanned_transitions(
        &self,
        limit: i64,
    ) -> Result<Vec<UnplannedTransition>, StoreError> {
        let rows: Vec<(String, i64, i64, String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT tenant_id, incident_id, seq, transition, at_ms FROM incident_transitions \
                 WHERE planned_ms IS NULL ORDER BY at_ms, tenant_id, incident_id, seq LIMIT $1",
            )
            .bind(limit).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|(tenant, incident, seq, transition, at_ms)| {
                Ok(UnplannedTransition {
                    tenant,
                    incident,
                    seq,
                    transition: stored_word("transition", &transition)?,
                    at_ms,
                })
            })
            .collect()
    }

    /// Pending deliveries of any tenant due at `now_ms`, the longest waiting first.
    pub async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let rows: Vec<(String, i64, i64, String, String, i64, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT d.tenant_id, d.incident_id, d.seq, d.channel_id, d.transition, t.at_ms, d.attempts \
                 FROM notification_deliveries d JOIN incident_transitions t \
                   ON t.tenant_id = d.tenant_id AND t.incident_id = d.incident_id AND t.seq = d.seq \
                 WHERE d.state = 'pending' AND d.next_attempt_ms <= $1 \
                 ORDER BY d.next_attempt_ms, d.tenant_id, d.incident_id, d.seq, d.channel_id LIMIT $2",
            )
            .bind(now_ms).bind(limit).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(
                |(tenant, incident, seq, channel, transition, at_ms, attempts)| {
                    Ok(DueDelivery {
                        key: DeliveryKey {
                            tenant,
                            incident,
                            seq,
                            channel,
                        },
                        transition: stored_word("transition", &transition)?,
                        at_ms,
                        attempts,
                    })
                },
            )
            .collect()
    }

    /// When the earliest pending delivery is due, if any (the worker sleeps until then).
    pub async fn next_delivery_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar("SELECT MIN(next_attempt_ms) FROM notification_deliveries WHERE state = 'pending'")
                .fetch_one(pool).await?
        }))
    }
}

impl TenantStore<'_> {
    /// Turns one transition into its deliveries, one per channel with the state it
    /// starts in, and marks the transition planned (and delivered when none is
    /// pending), in one transaction. A delivery stored before is left as it is.
    pub async fn plan_deliveries(
        &self,
        t: &UnplannedTransition,
        deliveries: &[(String, DeliveryState)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            for (channel, state) in deliveries {
                sqlx::query(
                    "INSERT INTO notification_deliveries (tenant_id, incident_id, seq, channel_id, transition, state, \
                       attempts, next_attempt_ms, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7, $7) \
                     ON CONFLICT (tenant_id, incident_id, seq, channel_id) DO NOTHING",
                )
                .bind(self.tenant).bind(t.incident).bind(t.seq).bind(channel).bind(t.transition.as_str())
                .bind(state.as_str()).bind(now_ms)
                .execute(&mut *tx).await?;
            }
            sqlx::query(
                "UPDATE incident_transitions SET planned_ms = $4 WHERE tenant_id = $1 AND incident_id = $2 AND seq = $3",
            )
            .bind(self.tenant).bind(t.incident).bind(t.seq).bind(now_ms)
            .execute(&mut *tx).await?;
            mark_delivered!(tx, self.tenant, t.incident, t.seq, now_ms);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records what an attempt came to; a delivery no longer pending is left alone. Marks
    /// the transition delivered when this was its last pending delivery.
    pub async fn record_attempt(
        &self,
        key: &DeliveryKey,
        outcome: &AttemptOutcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (state, error, next, counts, sent) = match outcome {
            AttemptOutcome::Sent => (DeliveryState::Sent, None, now_ms, 1, Some(now_ms)),
            AttemptOutcome::Retry {
                error,
                next_attempt_ms,
            } => (
                DeliveryState::Pending,
                Some(error.as_str()),
                *next_attempt_ms,
                1,
                None,
            ),
            AttemptOutcome::Failed { error } => {
                (DeliveryState::Failed, Some(error.as_str()), now_ms, 1, None)
            }
            AttemptOutcome::Held(s) => (*s, None, now_ms, 0, None),
        };
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE notification_deliveries SET state = $5, attempts = attempts + $6, next_attempt_ms = $7, \
                   last_error = COALESCE($8, last_error), sent_ms = COALESCE($9, sent_ms), updated_ms = $10 \
                 WHERE tenant_id = $1 AND incident_id = $2 AND seq = $3 AND channel_id = $4 AND state = 'pending'",
            )
            .bind(self.tenant).bind(key.incident).bind(key.seq).bind(&key.channel)
            .bind(state.as_str()).bind(counts).bind(next).bind(error).bind(sent).bind(now_ms)
            .execute(&mut *tx).await?;
            mark_delivered!(tx, self.tenant, key.incident, key.seq, now_ms);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deliveries newest incident first, then by transition and channel, after the
    /// cursor `(incident, seq, channel)`, at most `limit` (one more is fetched to tell
    /// whether more exist).
    pub async fn deliveries_page(
        &self,
        filter: &DeliveryFilter,
        after: Option<&(i64, i64, String)>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let (ai, aseq, ach) = match after {
            Some((i, s, c)) => (Some(*i), Some(*s), Some(c.as_str())),
            None => (None, None, None),
        };
        let rows: Vec<DeliveryTuple> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT incident_id, seq, transition, channel_id, state, attempts, next_attempt_ms, last_error, sent_ms, \
                   created_ms, updated_ms FROM notification_deliveries \
                 WHERE tenant_id = $1 AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR incident_id = $3) \
                   AND ($4 IS NULL OR channel_id = $4) \
                   AND ($5 IS NULL OR incident_id < $5 OR (incident_id = $5 AND (seq > $6 OR (seq = $6 AND channel_id > $7)))) \
                 ORDER BY incident_id DESC, seq, channel_id LIMIT $8",
            )
            .bind(self.tenant).bind(filter.state.map(DeliveryState::as_str)).bind(filter.incident)
            .bind(filter.channel.as_deref()).bind(ai).bind(aseq).bind(ach).bind(limit)
            .fetch_all(pool).await?
        });
        rows.into_iter()
            .map(
                |(
                    incident_id,
                    seq,
                    transition,
                    channel_id,
                    state,
                    attempts,
                    next_attempt_ms,
                    last_error,
                    sent_ms,
                    created_ms,
                    updated_ms,
                )| {
                    let delivery_id = DeliveryKey {
                        tenant: self.tenant.to_owned(),
                        incident: incident_id,
                        seq,
                        channel: channel_id.clone(),
                    }
                    .delivery_id();
                    Ok(DeliveryRow {
                        delivery_id,
                        incident_id,
                        seq,
                        transition: stored_word("transition", &transition)?,
                        channel_id,
                        state: stored_word("state", &state)?,
                        attempts,
                        next_attempt_ms,
                        last_error,
                        sent_ms,
                        created_ms,
                        updated_ms,
                    })
                },
            )
            .collect()
    }

    /// How many notifications were sent about an incident (deliveries in state `sent`,
    /// over every channel and transition): what a scenario runner counts.
    pub async fn notifications_sent(&self, incident: i64) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self.store, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM notification_deliveries WHERE tenant_id = $1 AND incident_id = $2 AND state = 'sent'",
            )
            .bind(self.tenant).bind(incident).fetch_one(pool).await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Whether every transition of the tenant has been handed to its channels and every
    /// delivery is final (tests and runners wait on it).
    pub async fn notifications_settled(&self) -> Result<bool, StoreError> {
        let open: i64 = on_pool!(self.store, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM incident_transitions WHERE tenant_id = $1 AND delivered_ms IS NULL",
            )
            .bind(self.tenant).fetch_one(pool).await?
        });
        Ok(open == 0)
    }
}

impl TenantStore<'_> {
    /// The scopes of the maintenance windows active at `now_ms`, and every device with
    /// its site, role and tags: what [`crate::notify::hold::in_maintenance`] judges by.
    pub async fn maintenance_view(
        &self,
        now_ms: i64,
    ) -> Result<crate::notify::hold::MaintenanceView, StoreError> {
        let scopes: Vec<String> = on_pool!(self.store, pool => {
            sqlx::query_scalar(
                "SELECT scope FROM maintenance_windows WHERE tenant_id = $1 AND starts_ms <= $2 AND ends_ms > $2 ORDER BY id",
            )
            .bind(self.tenant).bind(now_ms).fetch_all(pool).await?
        });
        let mut view = crate::notify::hold::MaintenanceView::default();
        for s in scopes {
            let scope = serde_json::from_str(&s).map_err(|source| StoreError::Document {
                what: "maintenance scope",
                source,
            })?;
            view.scopes.push(scope);
        }
        if view.scopes.is_empty() {
            return Ok(view);
        }
        let devices: Vec<(String, String, String)> = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT id, site_id, role FROM devices WHERE tenant_id = $1")
                .bind(self.tenant).fetch_all(pool).await?
        });
        let tags: Vec<(String, String)> = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT device_id, tag FROM device_tags WHERE tenant_id = $1")
                .bind(self.tenant).fetch_all(pool).await?
        });
        let links: Vec<(String, String, String)> = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT id, a_device, b_device FROM links WHERE tenant_id = $1")
                .bind(self.tenant).fetch_all(pool).await?
        });
        for (id, site, role) in devices {
            let dev = view.devices.entry(id.clone()).or_default();
            dev.site = site;
            dev.role = role.parse().ok();
        }
        for (device, tag) in tags {
            view.devices.entry(device).or_default().tags.push(tag);
        }
        for (id, a, b) in links {
            view.links.insert(id, [a, b]);
        }
        Ok(view)
    }
}
