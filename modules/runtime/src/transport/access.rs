//! Who may call whom (`[access]` in the config), checked by the node that
//! receives a call: a request carries the id of the module that made it
//! (0 for a client such as `boutique call`), and a service with an
//! allow-list refuses callers not on it, with a typed rejection, a log
//! line and a count.
//!
//! The id a request carries is the caller's claim, so it is held against
//! who the connection is with: a client (`Role::Client`) calls as a client
//! only, and a node only as one of the modules the plan places on it (or
//! as a client). The peer's node name is proven by its certificate when
//! the cluster uses TLS, and by nothing more than the cluster secret
//! otherwise.

use std::collections::HashMap;

use super::frame::caller_id;
use super::handshake::{PeerInfo, Role};
use crate::catalogue::Catalogue;
use crate::config::{CLIENT, Plan};
use crate::error::Rejection;

/// The allow-lists, by service, as caller ids.
#[derive(Default)]
pub(crate) struct Access {
    allowed: HashMap<&'static str, Vec<u64>>,
    names: HashMap<u64, &'static str>,
    /// The ids of the modules the plan places on each node.
    placed: HashMap<String, Vec<u64>>,
}

impl Access {
    /// The allow-lists of `plan`, for the modules of `catalogue`.
    pub(crate) fn from_plan(plan: &Plan, catalogue: &Catalogue) -> Access {
        let mut access = Access::default();
        for node in plan.nodes() {
            let ids = node
                .modules
                .iter()
                .map(|module| caller_id(module))
                .collect();
            access.placed.insert(node.name.clone(), ids);
        }
        for entry in catalogue.modules() {
            access.names.insert(caller_id(entry.name()), entry.name());
            if let Some(callers) = plan.allowed_callers(entry.name()) {
                let ids = callers
                    .iter()
                    .map(|caller| {
                        if caller == CLIENT {
                            0
                        } else {
                            caller_id(caller)
                        }
                    })
                    .collect();
                access.allowed.insert(entry.name(), ids);
            }
        }
        access
    }

    /// The name of caller `id`, for people.
    pub(crate) fn caller_name(&self, id: u64) -> String {
        match id {
            0 => "a client".to_owned(),
            id => match self.names.get(&id) {
                Some(name) => format!("module {name}"),
                None => format!("an unknown module ({id:#018x})"),
            },
        }
    }

    /// Whether `peer`, calling as `caller`, may call `service`.
    pub(crate) fn check(
        &self,
        service: &str,
        caller: u64,
        peer: &PeerInfo,
    ) -> Result<(), Rejection> {
        let impersonating = caller != 0
            && match peer.role {
                Role::Client => true,
                Role::Node => !self
                    .placed
                    .get(&*peer.node)
                    .is_some_and(|placed| placed.contains(&caller)),
            };
        if impersonating {
            let who = match peer.role {
                Role::Client => format!("client '{}'", peer.node),
                Role::Node => format!("node '{}'", peer.node),
            };
            return Err(Rejection::NotAllowed {
                caller: format!(
                    "{who}, calling as {}, which it does not run",
                    self.caller_name(caller)
                ),
                service: service.to_owned(),
            });
        }
        match self.allowed.get(service) {
            Some(allowed) if !allowed.contains(&caller) => Err(Rejection::NotAllowed {
                caller: self.caller_name(caller),
                service: service.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}
