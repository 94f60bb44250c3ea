//! Every address a deployment listens on, checked for clashes before
//! anything starts: a node's listen and admin addresses, and the
//! addresses its modules listen on themselves (the frontend's web server).
//!
//! Two listeners clash when they have the same address (on any nodes: the
//! config cannot tell machines apart, and the same address twice is
//! usually a slip), or, on one node, the same port on addresses that
//! overlap (`0.0.0.0:8080` takes `127.0.0.1:8080` too). The one exception:
//! a module's replicas share its config section, so they have the same
//! address on purpose, each on its own node.
//!
//! `boutique up` runs every node on one machine: there, [`Hosts::One`],
//! every node is one host, and the exception goes (replicas of the
//! frontend on one `listen` address cannot all bind it).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// Something that listens.
pub(super) struct Listener {
    /// The node it runs on.
    pub node: String,
    /// The module it belongs to, if it is a module's own listener.
    pub module: Option<&'static str>,
    /// How the error names it: `web`, `web (admin)`, `web (frontend)`.
    pub label: String,
    /// Where.
    pub addr: SocketAddr,
}

impl Listener {
    /// A node's listen address.
    pub fn node(node: &str, addr: SocketAddr) -> Listener {
        Listener {
            node: node.to_owned(),
            module: None,
            label: node.to_owned(),
            addr,
        }
    }

    /// A node's admin address.
    pub fn admin(node: &str, addr: SocketAddr) -> Listener {
        Listener {
            node: node.to_owned(),
            module: None,
            label: format!("{node} (admin)"),
            addr,
        }
    }

    /// A module's own address, on a node that runs it.
    pub fn module(node: &str, module: &'static str, addr: SocketAddr) -> Listener {
        Listener {
            node: node.to_owned(),
            module: Some(module),
            label: format!("{node} ({module})"),
            addr,
        }
    }
}

/// Where the nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hosts {
    /// Each on a machine of its own, as far as the config can tell.
    Separate,
    /// All on this one (`boutique up`).
    One,
}

/// Adds a problem for every clash among `listeners` (port 0, a port the
/// system picks, never clashes) with the nodes on `hosts`.
pub(super) fn check(listeners: &[Listener], hosts: Hosts, problems: &mut Vec<String>) {
    let fixed: Vec<&Listener> = listeners.iter().filter(|l| l.addr.port() != 0).collect();
    let mut by_address: BTreeMap<SocketAddr, Vec<&Listener>> = BTreeMap::new();
    for listener in &fixed {
        by_address.entry(listener.addr).or_default().push(listener);
    }
    for (addr, sharing) in &by_address {
        // One module's listener, each on a node of its own.
        let nodes: BTreeSet<&str> = sharing.iter().map(|l| l.node.as_str()).collect();
        let replicas_of_one_module = hosts == Hosts::Separate
            && nodes.len() == sharing.len()
            && sharing
                .first()
                .and_then(|first| first.module)
                .is_some_and(|module| sharing.iter().all(|l| l.module == Some(module)));
        if sharing.len() > 1 && !replicas_of_one_module {
            let labels: Vec<String> = sharing.iter().map(|l| format!("'{}'", l.label)).collect();
            problems.push(format!(
                "nodes {} all listen on {addr}; each node, admin endpoint and module listener needs its own address",
                labels.join(", ")
            ));
        }
    }
    for (i, a) in fixed.iter().enumerate() {
        for b in &fixed[i + 1..] {
            let overlapping = a.addr.ip().is_unspecified() || b.addr.ip().is_unspecified();
            let one_host = a.node == b.node || hosts == Hosts::One;
            if one_host && a.addr.port() == b.addr.port() && a.addr != b.addr && overlapping {
                let host = if a.node == b.node {
                    format!("node '{}'", a.node)
                } else {
                    "on one machine".to_owned()
                };
                problems.push(format!(
                    "{host}: '{}' listens on {} and '{}' on {}, one port on addresses that overlap; \
                     give one of them another port",
                    a.label, a.addr, b.label, b.addr
                ));
            }
        }
    }
}
