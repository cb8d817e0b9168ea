//! Attachments: which router each endpoint of the simulation stands on, known by the
//! source address it uses.
//!
//! The simulator serves everything on loopback, so where a packet comes from is the only
//! thing that can tell it which part of the virtual network sent it. Each endpoint (an
//! agent, the server, a test client) is handed its own address in `127.1.0.0/16`, binds
//! its sockets to it, and every simulated endpoint and relay looks the peer address up
//! here to find the router the path starts from ([`crate::Network::reach`]). On Linux all
//! of `127.0.0.0/8` is local, so these addresses need no configuration and no privilege.
//!
//! An address that is not attached (127.0.0.1, as the demo and the older tests use) is
//! outside the model and always gets through.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{PoisonError, RwLock};

/// Most endpoints one virtual ISP can attach: the host part of `127.1.0.0/16` less the
/// network and broadcast addresses.
pub const MAX_ATTACHMENTS: u32 = 65_534;
/// Longest endpoint name kept (names are for logs and errors).
pub const MAX_NAME_LEN: usize = 128;

/// Why an endpoint could not be attached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    #[error("no router {0:?}")]
    UnknownRouter(String),
    #[error("endpoint name {0:?} is empty or longer than {MAX_NAME_LEN} bytes")]
    BadName(String),
    #[error("endpoint {name:?} is already attached to router {router:?}")]
    NameTaken { name: String, router: String },
    #[error("all {MAX_ATTACHMENTS} attachment addresses are in use")]
    Exhausted,
}

/// One attached endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    /// Topology index of the router it stands on.
    pub router: usize,
    pub address: IpAddr,
}

#[derive(Debug, Default)]
struct Table {
    by_address: HashMap<IpAddr, Attachment>,
    by_name: HashMap<String, IpAddr>,
    /// Host number of the last address handed out.
    last: u32,
}

/// The registry of a running virtual ISP.
#[derive(Debug, Default)]
pub(crate) struct Attachments {
    table: RwLock<Table>,
}

/// The `n`th address of `127.1.0.0/16` (1-based).
fn nth_address(n: u32) -> IpAddr {
    let [_, _, hi, lo] = n.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(127, 1, hi, lo))
}

impl Attachments {
    /// Attaches `name` to router `router` (its index; `router_id` for messages) and
    /// returns its address. Attaching the same name to the same router again returns the
    /// same address.
    pub(crate) fn attach(
        &self,
        name: &str,
        router: usize,
        router_id: impl Fn(usize) -> String,
    ) -> Result<IpAddr, AttachError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(AttachError::BadName(
                name.chars().take(MAX_NAME_LEN).collect(),
            ));
        }
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(address) = table.by_name.get(name).copied() {
            let existing = table.by_address.get(&address).map(|a| a.router);
            return match existing {
                Some(r) if r == router => Ok(address),
                Some(r) => Err(AttachError::NameTaken {
                    name: name.to_owned(),
                    router: router_id(r),
                }),
                None => Err(AttachError::Exhausted),
            };
        }
        if table.last >= MAX_ATTACHMENTS {
            return Err(AttachError::Exhausted);
        }
        table.last += 1;
        let address = nth_address(table.last);
        table.by_name.insert(name.to_owned(), address);
        table.by_address.insert(
            address,
            Attachment {
                name: name.to_owned(),
                router,
                address,
            },
        );
        Ok(address)
    }

    /// The router the endpoint at `address` stands on; `None` outside the model.
    pub(crate) fn router_of(&self, address: IpAddr) -> Option<usize> {
        // The common case, every peer on 127.0.0.1, needs no lock.
        if !matches!(address, IpAddr::V4(v4) if v4.octets()[..2] == [127, 1]) {
            return None;
        }
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table.by_address.get(&address).map(|a| a.router)
    }

    /// Every attachment, in the order they were made.
    pub(crate) fn list(&self) -> Vec<Attachment> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<Attachment> = table.by_address.values().cloned().collect();
        out.sort_by_key(|a| a.address);
        out
    }
}

impl crate::Network {
    /// Attaches endpoint `name` to router `router` (its id) and returns the source
    /// address it must bind its sockets to; see the module documentation.
    pub fn attach(&self, name: &str, router: &str) -> Result<IpAddr, AttachError> {
        let index = self
            .index_of(router)
            .ok_or_else(|| AttachError::UnknownRouter(router.to_owned()))?;
        self.attachments.attach(name, index, |r| {
            self.model(r).map(|m| m.spec.id.clone()).unwrap_or_default()
        })
    }

    /// The router (topology index) an attached address stands on; `None` for an address
    /// outside the model.
    pub fn attached_router(&self, address: IpAddr) -> Option<usize> {
        self.attachments.router_of(address)
    }

    /// Every attached endpoint.
    pub fn attachments(&self) -> Vec<Attachment> {
        self.attachments.list()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_names_stay_put() {
        let a = Attachments::default();
        let id = |r: usize| format!("r{r}");
        let x = a.attach("agent-a", 1, id).expect("attach");
        let y = a.attach("agent-b", 2, id).expect("attach");
        assert_ne!(x, y);
        assert_eq!(x, IpAddr::V4(Ipv4Addr::new(127, 1, 0, 1)));
        assert_eq!(
            a.attach("agent-a", 1, id),
            Ok(x),
            "same place, same address"
        );
        assert_eq!(
            a.attach("agent-a", 2, id),
            Err(AttachError::NameTaken {
                name: "agent-a".into(),
                router: "r1".into()
            })
        );
        assert_eq!(a.router_of(x), Some(1));
        assert_eq!(a.router_of(y), Some(2));
        assert_eq!(a.router_of(IpAddr::V4(Ipv4Addr::LOCALHOST)), None);
        assert_eq!(a.router_of(IpAddr::V4(Ipv4Addr::new(127, 1, 9, 9))), None);
        assert!(matches!(a.attach("", 1, id), Err(AttachError::BadName(_))));
        assert_eq!(a.list().len(), 2);
        assert_eq!(nth_address(256), IpAddr::V4(Ipv4Addr::new(127, 1, 1, 0)));
    }
}
