//! How many ingest connections each agent holds open at once.
//!
//! An agent needs one connection (two while it reconnects after a new revocation list
//! or a network change). Each connection costs the server TLS state, buffers and a task;
//! without a cap, one agent's certificate (or a stolen one) could open thousands and
//! exhaust what every other agent shares. Beyond the cap a new connection is closed at
//! once and counted; the agent's existing ones are untouched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Live connections per agent (certificate common name), over QUIC and HTTPS together.
#[derive(Debug)]
pub struct AgentConnections {
    max: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl AgentConnections {
    pub fn new(max: usize) -> Self {
        AgentConnections {
            max: max.max(1),
            open: Arc::default(),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Counts a new connection of `agent`, or refuses it when the agent is at the cap.
    /// The connection is counted until the guard is dropped.
    pub fn enter(&self, agent: &str) -> Option<ConnectionGuard> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(agent.to_owned()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ConnectionGuard {
            agent: agent.to_owned(),
            open: self.open.clone(),
        })
    }
}

/// One counted connection.
#[derive(Debug)]
pub struct ConnectionGuard {
    agent: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.agent) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.agent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_at_its_cap_is_refused_until_one_closes() {
        let c = AgentConnections::new(2);
        let a = c.enter("agent-a").expect("first");
        let _b = c.enter("agent-a").expect("second");
        assert!(c.enter("agent-a").is_none(), "third refused");
        let _other = c.enter("agent-b").expect("another agent is not affected");
        drop(a);
        assert!(c.enter("agent-a").is_some(), "room again after a close");
    }

    #[test]
    fn the_map_forgets_agents_with_no_connection() {
        let c = AgentConnections::new(1);
        drop(c.enter("agent-a"));
        assert!(c.open.lock().expect("lock").is_empty());
    }
}
