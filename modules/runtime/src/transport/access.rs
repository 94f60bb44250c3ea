//! Who may call whom (`[access]` in the config), checked by the node that
//! receives a call: a request carries the id of the module that made it
//! (0 for a client such as `boutique call`), and a service with an
//! allow-list refuses callers not on it, with a typed rejection, a log
//! line and a count.

use std::collections::HashMap;

use super::frame::caller_id;
use crate::catalogue::Catalogue;
use crate::config::{CLIENT, Plan};
use crate::error::Rejection;

/// The allow-lists, by service, as caller ids.
#[derive(Default)]
pub(crate) struct Access {
    allowed: HashMap<&'static str, Vec<u64>>,
    names: HashMap<u64, &'static str>,
}

impl Access {
    /// The allow-lists of `plan`, for the modules of `catalogue`.
    pub(crate) fn from_plan(plan: &Plan, catalogue: &Catalogue) -> Access {
        let mut access = Access::default();
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

    /// Whether caller `id` may call `service`.
    pub(crate) fn check(&self, service: &str, caller: u64) -> Result<(), Rejection> {
        match self.allowed.get(service) {
            Some(allowed) if !allowed.contains(&caller) => Err(Rejection::NotAllowed {
                caller: self.caller_name(caller),
                service: service.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}
