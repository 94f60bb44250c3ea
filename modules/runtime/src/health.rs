//! Readiness: can this node do its work? It can when its modules have
//! started (a node exists only once they have) and none is down (died, and
//! not yet started again), it is not shutting down, and every module they
//! call that runs elsewhere has at least one replica this node is
//! connected to.
//! Asking also starts dialing peers not called yet, so a fresh node turns
//! ready without waiting for its first call. Served as `/readyz` by the
//! binary's admin endpoint.

use std::sync::Arc;

use crate::transport::peer::Peer;

/// A module this node runs that calls a module on other nodes.
pub(crate) struct Need {
    /// The calling module, here.
    pub caller: &'static str,
    /// The module it calls.
    pub callee: &'static str,
    /// The nodes that run the callee.
    pub peers: Vec<Arc<Peer>>,
}

/// What stands between this node and readiness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    /// One line per unmet need; empty when ready.
    pub problems: Vec<String>,
}

impl Readiness {
    /// True if nothing stands in the way.
    pub fn is_ready(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `needs`, kicking idle peers into dialing.
pub(crate) fn check(needs: &[Need]) -> Readiness {
    let mut problems = Vec::new();
    for need in needs {
        if need.peers.iter().any(|peer| peer.takes_calls()) {
            continue;
        }
        let states: Vec<String> = need
            .peers
            .iter()
            .map(|peer| {
                peer.kick();
                format!("node '{}' {}", peer.name(), peer.describe())
            })
            .collect();
        let states = if states.is_empty() {
            "no node this one can dial runs it".to_owned()
        } else {
            states.join("; ")
        };
        problems.push(format!(
            "{} calls {}, and no replica of it is reachable ({states})",
            need.caller, need.callee
        ));
    }
    Readiness { problems }
}
