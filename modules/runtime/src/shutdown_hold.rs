//! Shutdown holds: work outside a module's actor that a graceful shutdown
//! waits for.
//!
//! A node's graceful shutdown (`Node::shutdown_gracefully`) drains the
//! calls it serves, but some modules own work that is no call: the
//! frontend's web server has HTTP requests in flight, and each may still
//! be calling other modules. Such a module takes a [`ShutdownHold`] when it
//! starts and drops it once that work is done (after
//! [`StartContext::stopped`] told it to stop); the node waits, for at most
//! its grace period, until every hold is dropped before it closes its
//! connections and returns.
//!
//! Work that begins later, one piece at a time, takes a hold for each
//! piece through a [`ShutdownHolder`] kept from the start: the checkout
//! module holds the shutdown while an order is being placed, since the
//! web server that asked for it may have stopped waiting.
//!
//! [`StartContext::stopped`]: crate::StartContext::stopped

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The holds of one node.
#[derive(Debug, Default)]
pub(crate) struct ShutdownHolds {
    held: AtomicUsize,
    released: Notify,
}

impl ShutdownHolds {
    /// A new hold on `holds`.
    pub(crate) fn hold(holds: &Arc<ShutdownHolds>) -> ShutdownHold {
        holds.held.fetch_add(1, Ordering::AcqRel);
        ShutdownHold {
            holds: Arc::clone(holds),
        }
    }

    /// How many holds are not yet dropped.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Waits until every hold is dropped, or `deadline`; returns how many
    /// are still held then.
    pub(crate) async fn released_by(&self, deadline: tokio::time::Instant) -> usize {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let held = self.held();
            if held == 0 || tokio::time::timeout_at(deadline, released).await.is_err() {
                return self.held();
            }
        }
    }
}

/// Takes [`ShutdownHold`]s on a node's graceful shutdown, for as long as a
/// module's work needs: get one from [`StartContext::shutdown_holder`] and
/// keep it. Cloning it is cheap.
///
/// [`StartContext::shutdown_holder`]: crate::StartContext::shutdown_holder
#[derive(Debug, Clone)]
pub struct ShutdownHolder {
    holds: Arc<ShutdownHolds>,
}

impl ShutdownHolder {
    /// A holder of `holds`.
    pub(crate) fn new(holds: &Arc<ShutdownHolds>) -> ShutdownHolder {
        ShutdownHolder {
            holds: Arc::clone(holds),
        }
    }

    /// Holds the shutdown open until the hold is dropped (for at most the
    /// grace period). A hold taken once the node has stopped waiting for
    /// holds holds nothing.
    pub fn hold(&self) -> ShutdownHold {
        ShutdownHolds::hold(&self.holds)
    }
}

/// Holds the node's graceful shutdown open until dropped (see the module
/// documentation); get one from [`StartContext::hold_shutdown`].
///
/// [`StartContext::hold_shutdown`]: crate::StartContext::hold_shutdown
#[derive(Debug)]
#[must_use = "the shutdown is held only as long as the hold is kept"]
pub struct ShutdownHold {
    holds: Arc<ShutdownHolds>,
}

impl Drop for ShutdownHold {
    fn drop(&mut self) {
        self.holds.held.fetch_sub(1, Ordering::AcqRel);
        self.holds.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_wait_ends_when_the_last_hold_is_dropped_or_at_the_deadline() {
        let holds = Arc::new(ShutdownHolds::default());
        let soon = || tokio::time::Instant::now() + Duration::from_secs(30);
        assert_eq!(holds.released_by(soon()).await, 0, "nothing held");

        let (first, second) = (ShutdownHolds::hold(&holds), ShutdownHolds::hold(&holds));
        let past = tokio::time::Instant::now();
        assert_eq!(holds.released_by(past).await, 2, "the deadline has passed");

        let waiting = tokio::spawn({
            let holds = Arc::clone(&holds);
            async move { holds.released_by(soon()).await }
        });
        tokio::task::yield_now().await; // It waits, two held.
        drop(first);
        tokio::task::yield_now().await; // It wakes, and waits on.
        assert!(!waiting.is_finished(), "one is still held");
        drop(second);
        assert_eq!(waiting.await.unwrap(), 0);
    }
}
