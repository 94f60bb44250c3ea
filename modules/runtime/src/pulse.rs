//! The node's pulse: proof that its main thread still runs.
//!
//! A node's modules, its connections and its own watchers (liveness, the
//! supervisors) all run on one thread, the node's actix system; its admin
//! endpoints run on a thread of their own, so that they answer while the
//! node is busy. That also let them answer "ok" and "ready" while the main
//! thread was stuck (a handler blocking it, a deadlock): peers had long
//! declared the node dead, every call to it failed, and no probe said so.
//!
//! So each look (a probe of `/healthz` or `/readyz`) asks the main thread
//! to answer, by handing it a task that says it ran, and reads how long
//! the oldest question still unanswered has waited: past
//! [`UNREADY_AFTER`] the node is not ready, past [`UNHEALTHY_AFTER`] it is
//! not healthy (`/healthz` fails, and Kubernetes restarts it). A healthy
//! thread answers within microseconds, so a look finds none waiting; a
//! stuck one is found by the looks after the one it left unanswered.
//!
//! Asked, not stamped on a timer: a timer kept pending on the main thread
//! (a stamp every 250 ms) cost every local call about 2% (measured: the
//! calls' own timeouts share its timer wheel).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A main thread silent this long makes the node unready (its peers give
/// up on a silent one after `failure_timeout_ms`, 2.5 s by default).
pub const UNREADY_AFTER: Duration = Duration::from_secs(3);
/// A main thread silent this long makes the node unhealthy: stuck, not
/// slow.
pub const UNHEALTHY_AFTER: Duration = Duration::from_secs(15);

/// Whether the node's main thread answers.
pub struct Pulse {
    since: Instant,
    /// Milliseconds from `since` to when the question now unanswered was
    /// asked, plus one; 0 when none is.
    asked_ms: AtomicU64,
    /// The main thread, to hand questions to.
    main_thread: actix_rt::ArbiterHandle,
}

impl Pulse {
    /// A pulse of the current thread (the node's actix system).
    pub(crate) fn start() -> Arc<Pulse> {
        Arc::new(Pulse {
            since: Instant::now(),
            asked_ms: AtomicU64::new(0),
            main_thread: actix_rt::Arbiter::current(),
        })
    }

    /// How long the main thread has left a question unanswered (zero if
    /// none waits; this look asks one then).
    pub fn silent_for(self: &Arc<Self>) -> Duration {
        let now = u64::try_from(self.since.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1);
        match self
            .asked_ms
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                let answered = Arc::clone(self);
                // Not handed over: the node has stopped (its thread gone),
                // and the question stays unanswered.
                self.main_thread.spawn(async move {
                    answered.asked_ms.store(0, Ordering::Release);
                });
                Duration::ZERO
            }
            Err(asked) => Duration::from_millis(now.saturating_sub(asked)),
        }
    }
}
