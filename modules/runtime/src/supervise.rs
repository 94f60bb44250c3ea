//! Supervision: a module whose actor dies (a handler panicked) is started
//! again, fresh, from its constructor, while the refs to it stay valid.
//!
//! A module's local endpoints live in a [`Slot`] that every local ref and
//! the remote dispatcher read on each call (one atomic load). A supervisor
//! task per module checks every 50 ms that the actor is alive; when it is
//! not, it runs the module's `start` again with the same config and puts
//! the new endpoints in the slot.
//!
//! What callers see: the call whose handler panicked, and every call that
//! was queued behind it, fail with *outcome unknown* ("the module's actor
//! stopped before answering"); calls made while the module is down fail at
//! once as *not delivered*; calls after the restart reach the new actor.
//! Each restart is logged (the panic itself is printed by Rust's panic
//! hook) and counted in [`NodeStats::restarts`](crate::NodeStats::restarts).
//!
//! A module that keeps crashing is not restarted in a tight loop: after
//! three crashes within ten seconds, each restart waits twice as long as
//! the one before (100 ms, 200 ms, ... up to 5 s).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::module::{Module, StartContext};
use crate::service::Service;
use crate::stats::Counters;

/// How often the supervisor looks at its actor.
const CHECK_EVERY: Duration = Duration::from_millis(50);
/// This many crashes within [`CRASH_WINDOW`] start the backoff.
const CRASHES_BEFORE_BACKOFF: usize = 3;
const CRASH_WINDOW: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Where a module's current local endpoints are.
pub(crate) struct Slot<S> {
    current: ArcSwap<S>,
}

impl<S: Service> Slot<S> {
    /// A slot holding `endpoints`.
    pub(crate) fn new(endpoints: S) -> Arc<Slot<S>> {
        Arc::new(Slot {
            current: ArcSwap::from_pointee(endpoints),
        })
    }

    /// The current endpoints.
    #[inline]
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<S>> {
        self.current.load()
    }

    fn replace(&self, endpoints: S) {
        self.current.store(Arc::new(endpoints));
    }
}

/// The delay before the next restart, given when the recent crashes were.
fn backoff(crashes: &VecDeque<Instant>) -> Duration {
    let over = crashes.len().saturating_sub(CRASHES_BEFORE_BACKOFF - 1);
    if over == 0 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(over - 1).unwrap_or(u32::MAX).min(16);
    BACKOFF_MIN.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

/// Watches module `M`'s actor and restarts it when it dies, until the node
/// stops.
pub(crate) async fn supervise<M: Module>(
    slot: Arc<Slot<M::Service>>,
    config: impl Fn() -> Result<M::Config, crate::module::StartError>,
    ctx: StartContext,
    counters: Arc<Counters>,
) {
    let name = <M::Service as Service>::NAME;
    let stopped = ctx.stopped();
    tokio::pin!(stopped);
    let mut crashes: VecDeque<Instant> = VecDeque::new();
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        if slot.load().is_running() {
            continue;
        }
        let now = Instant::now();
        crashes.push_back(now);
        while crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW)
        {
            crashes.pop_front();
        }
        let delay = backoff(&crashes);
        Counters::count(&counters.restarts);
        tracing::error!(
            module = name,
            node = ctx.node(),
            crashes_in_10s = crashes.len(),
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "the module's actor stopped (a handler panicked); restarting it with fresh state"
        );
        if !delay.is_zero() {
            tokio::select! {
                _ = &mut stopped => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        let started = match config() {
            Ok(config) => M::start(config, ctx.clone()).await,
            Err(error) => Err(error),
        };
        match started {
            Ok(endpoints) => {
                slot.replace(endpoints);
                tracing::info!(module = name, node = ctx.node(), "module restarted");
            }
            // Tried again at the next check, with the backoff.
            Err(error) => {
                tracing::error!(module = name, node = ctx.node(), %error, "the module could not be restarted")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_after_three_crashes_in_a_row() {
        let now = Instant::now();
        let crashes = |n: usize| (0..n).map(|_| now).collect::<VecDeque<_>>();
        assert_eq!(backoff(&crashes(1)), Duration::ZERO);
        assert_eq!(backoff(&crashes(2)), Duration::ZERO);
        assert_eq!(backoff(&crashes(3)), Duration::from_millis(100));
        assert_eq!(backoff(&crashes(4)), Duration::from_millis(200));
        assert_eq!(backoff(&crashes(5)), Duration::from_millis(400));
        assert_eq!(backoff(&crashes(40)), BACKOFF_MAX);
    }
}
