//! Counters a node keeps about work it was sent: what it dropped, and why.
//! Read them with [`Node::stats`](crate::Node::stats).

use std::sync::atomic::{AtomicU64, Ordering};

/// The live counters (one set per node).
#[derive(Default)]
pub(crate) struct Counters {
    pub expired_on_arrival: AtomicU64,
    pub expired_in_service: AtomicU64,
    pub restarts: AtomicU64,
    pub calls_overloaded: AtomicU64,
    pub refused_overloaded: AtomicU64,
    pub refused_not_allowed: AtomicU64,
    pub rejected: AtomicU64,
    pub calls_served: AtomicU64,
    pub connections_turned_away: AtomicU64,
    /// The modules of this node whose actor is down: died, and not yet
    /// started again (see `supervise`). Readiness lists them.
    pub modules_down: std::sync::Mutex<std::collections::BTreeSet<&'static str>>,
}

impl Counters {
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks `module` down (its actor died) or up again.
    pub(crate) fn set_module_down(&self, module: &'static str, down: bool) {
        let mut modules = self
            .modules_down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if down {
            modules.insert(module);
        } else {
            modules.remove(module);
        }
    }

    /// The modules down now.
    pub(crate) fn modules_down(&self) -> Vec<&'static str> {
        self.modules_down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    pub(crate) fn snapshot(&self) -> NodeStats {
        NodeStats {
            expired_on_arrival: self.expired_on_arrival.load(Ordering::Relaxed),
            expired_in_service: self.expired_in_service.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            calls_overloaded: self.calls_overloaded.load(Ordering::Relaxed),
            refused_overloaded: self.refused_overloaded.load(Ordering::Relaxed),
            refused_not_allowed: self.refused_not_allowed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            calls_served: self.calls_served.load(Ordering::Relaxed),
            connections_turned_away: self.connections_turned_away.load(Ordering::Relaxed),
        }
    }
}

/// What a node has counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Calls from other nodes that arrived with no time left: not run, and
    /// answered *timed out* (every call is answered, so that its caller's
    /// place for it is freed; the caller had already given up).
    pub expired_on_arrival: u64,
    /// Calls from other nodes whose deadline passed while they waited in
    /// the actor's mailbox (dropped there, unrun) or while they ran (the
    /// handler runs on, and what it does stands): answered *timed out*.
    pub expired_in_service: u64,
    /// Times a module's actor died (a handler panicked) and was started
    /// again.
    pub restarts: u64,
    /// Calls from this node that found no room before their deadline (the
    /// peer's limit of calls in flight) and failed as overloaded.
    pub calls_overloaded: u64,
    /// Calls from other nodes refused as overloaded: the peer had more in
    /// flight here than the limit.
    pub refused_overloaded: u64,
    /// Calls refused because `[access]` does not let their caller call
    /// that service.
    pub refused_not_allowed: u64,
    /// Calls from other nodes rejected: to a method this node does not
    /// serve, or that did not decode.
    pub rejected: u64,
    /// Calls from other nodes handed to their module here (those whose
    /// deadline then passed before they ran are counted in
    /// `expired_in_service` too).
    pub calls_served: u64,
    /// Inbound connections closed unread, because as many as the node
    /// allows were in their handshake already (in all, or from the same
    /// address: see `transport::admission`).
    pub connections_turned_away: u64,
}
