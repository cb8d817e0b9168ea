//! Where a poller's data comes from: the RouterOS API (the primary collector) or SNMP
//! (for devices whose API the agent may not use). Both produce the same canonical
//! metrics; the poller's scheduling, breaker and telemetry do not care which.

use crate::config::{CollectorKind, RouterConfig};
use crate::routeros::{ClientError, Collector, PollOutput, RouterOsClient, SessionConfig};
use crate::snmp::{SnmpCollector, SnmpError};
use ispvm_proto::routeros::Reply;
use std::time::Duration;

/// Why a poll failed, from either collector.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    RouterOs(#[from] ClientError),
    #[error("SNMP: {0}")]
    Snmp(#[from] SnmpError),
    #[error("router {0:?} is configured for SNMP but has no [routers.snmp] section")]
    NoSnmpConfig(String),
}

pub enum Source {
    RouterOs {
        session: Box<SessionConfig>,
        client: Option<RouterOsClient>,
        collector: Box<Collector>,
    },
    Snmp(Box<SnmpCollector>),
}

impl Source {
    /// Builds the source a router's configuration asks for.
    pub fn new(
        r: &RouterConfig,
        site: String,
        poll: &crate::config::PollConfig,
        schedule: &crate::config::Schedule,
        source_address: Option<std::net::IpAddr>,
    ) -> Result<Self, SourceError> {
        match r.collector {
            CollectorKind::RouterOs => {
                let mut session =
                    SessionConfig::new(r.address, r.username.clone(), r.password.clone());
                session.connect_timeout = Duration::from_millis(poll.connect_timeout_ms);
                session.command_timeout = Duration::from_millis(poll.command_timeout_ms);
                session.max_in_flight = poll.max_in_flight;
                session.source = source_address;
                session.tls = r
                    .tls_options()
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                let collector = Collector::new(r.key.clone(), site, r.role, r.address.to_string())
                    .with_tiers(schedule.medium_every, schedule.slow_every)
                    .with_daily(schedule.daily_every);
                Ok(Source::RouterOs {
                    session: Box::new(session),
                    client: None,
                    collector: Box::new(collector),
                })
            }
            CollectorKind::Snmp => {
                let config = r
                    .snmp
                    .clone()
                    .ok_or_else(|| SourceError::NoSnmpConfig(r.key.clone()))?;
                Ok(Source::Snmp(Box::new(SnmpCollector::new(
                    r.key.clone(),
                    site,
                    r.role,
                    config,
                )?)))
            }
        }
    }

    pub fn device(&self) -> &str {
        match self {
            Source::RouterOs { collector, .. } => collector.device(),
            Source::Snmp(c) => c.device(),
        }
    }

    /// What a poll skipped by an open breaker reports.
    pub fn still_unreachable(&self) -> PollOutput {
        match self {
            Source::RouterOs { collector, .. } => collector.still_unreachable(),
            Source::Snmp(c) => c.still_unreachable(),
        }
    }

    /// What a failed poll reports (one event per outage).
    pub fn unreachable(&mut self, error: &SourceError) -> PollOutput {
        match (self, error) {
            (Source::RouterOs { collector, .. }, SourceError::RouterOs(e)) => {
                collector.unreachable(e)
            }
            (Source::Snmp(c), SourceError::Snmp(e)) => c.unreachable(e),
            (source, _) => source.still_unreachable(),
        }
    }

    /// A pushed interface change (RouterOS `/interface/listen`).
    pub fn interface_pushed(&mut self, item: &Reply) -> PollOutput {
        match self {
            Source::RouterOs { collector, .. } => collector.interface_pushed(item),
            Source::Snmp(_) => PollOutput::default(),
        }
    }

    /// Opens the RouterOS session if there is none; returns it when it is new, so the
    /// caller can subscribe to its push updates before the first poll (commands on a
    /// session are taken in order, so the subscription is in place when the poll answers).
    pub async fn connect(&mut self) -> Result<Option<RouterOsClient>, SourceError> {
        let Source::RouterOs {
            session, client, ..
        } = self
        else {
            return Ok(None);
        };
        if client.is_some() {
            return Ok(None);
        }
        let c = RouterOsClient::connect((**session).clone()).await?;
        *client = Some(c.clone());
        Ok(Some(c))
    }

    /// Polls once (after [`Source::connect`] for RouterOS).
    pub async fn poll(&mut self) -> Result<PollOutput, SourceError> {
        match self {
            Source::Snmp(c) => c.poll().await.map_err(SourceError::from),
            Source::RouterOs {
                client, collector, ..
            } => {
                let Some(c) = client.as_ref() else {
                    return Err(ClientError::Closed("no session".into()).into());
                };
                let result = collector.poll(c).await;
                if let Err(e) = &result
                    && e.breaks_session()
                {
                    *client = None;
                }
                result.map_err(SourceError::from)
            }
        }
    }
}
