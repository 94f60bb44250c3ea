//! The node's pulse: proof that its main thread still runs.
//!
//! A node's modules, its connections and its own watchers (liveness, the
//! supervisors) all run on one thread, the node's actix system; its admin
//! endpoints run on a thread of their own, so that they answer while the
//! node is busy. That also let them answer "ok" and "ready" while the main
//! thread was stuck (a handler blocking it, a deadlock): peers had long
//! declared the node dead, every call to it failed, and no probe said so.
//!
//! So a task on the main thread stamps the time every [`BEAT`], and the
//! admin thread reads how long ago the last stamp was: past
//! [`UNREADY_AFTER`] the node is not ready, past [`UNHEALTHY_AFTER`] it is
//! not healthy (`/healthz` fails, and Kubernetes restarts it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How often the main thread stamps its pulse.
pub const BEAT: Duration = Duration::from_millis(250);
/// A main thread silent this long makes the node unready (its peers give
/// up on a silent one after `failure_timeout_ms`, 2.5 s by default).
pub const UNREADY_AFTER: Duration = Duration::from_secs(3);
/// A main thread silent this long makes the node unhealthy: stuck, not
/// slow.
pub const UNHEALTHY_AFTER: Duration = Duration::from_secs(15);

/// When the main thread last ran.
pub struct Pulse {
    since: Instant,
    /// Milliseconds from `since` to the last stamp.
    last_ms: AtomicU64,
}

impl Pulse {
    /// Starts stamping on the current thread (the node's actix system),
    /// until `closed` says the node has closed.
    pub(crate) fn start(mut closed: watch::Receiver<bool>) -> Arc<Pulse> {
        let pulse = Arc::new(Pulse {
            since: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        let stamping = Arc::clone(&pulse);
        actix_rt::spawn(async move {
            loop {
                stamping.stamp();
                tokio::select! {
                    _ = closed.wait_for(|closed| *closed) => return,
                    _ = tokio::time::sleep(BEAT) => {}
                }
            }
        });
        pulse
    }

    fn stamp(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the main thread has not stamped for.
    pub fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.since.elapsed().saturating_sub(last)
    }
}
