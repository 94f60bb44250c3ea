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
//! once as *not delivered*, unless the module has replicas on other nodes
//! and the call may move there (see `transport::replicas`): then it goes
//! to one of them; calls after the restart reach the new actor.
//! Each restart is logged and counted in
//! [`NodeStats::restarts`](crate::NodeStats::restarts); the panic itself
//! is logged and counted by the runtime's panic hook ([`crate::panics`]).
//! A panic in a handler's plain future (`ResponseFuture`) does not stop
//! the actor, and nothing is restarted: that call alone fails (see
//! [`crate::panics`]).
//!
//! A module that keeps crashing is not restarted in a tight loop: from
//! the third crash in a row (each within ten seconds of the restart before
//! it), each restart waits twice as long as the one before (100 ms,
//! 200 ms, ... up to 5 s, and 5 s from then on); a module that ran ten
//! seconds since its last restart starts afresh. A restart that fails (its
//! `start` returned an error) is tried again with the same backoff, and is
//! not counted as another crash.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::module::{Module, StartContext};
use crate::service::Service;
use crate::stats::Counters;

/// How often the supervisor looks at its actor.
const CHECK_EVERY: Duration = Duration::from_millis(50);
/// From this crash in a row on, restarts wait.
const CRASHES_BEFORE_BACKOFF: u32 = 3;
/// A module that ran this long since its last restart starts a new row.
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

/// A module's crashes in a row, and the delay each restart waits.
#[derive(Debug)]
struct CrashRow {
    /// Crashes in this row.
    crashes: u32,
    /// When the module was last started.
    started: Instant,
}

impl CrashRow {
    fn new(now: Instant) -> Self {
        CrashRow {
            crashes: 0,
            started: now,
        }
    }

    /// The module crashed at `now`: how long to wait before restarting it.
    fn crashed(&mut self, now: Instant) -> Duration {
        if now.saturating_duration_since(self.started) >= CRASH_WINDOW {
            self.crashes = 0;
        }
        self.crashes = self.crashes.saturating_add(1);
        let Some(over) = self.crashes.checked_sub(CRASHES_BEFORE_BACKOFF) else {
            return Duration::ZERO;
        };
        BACKOFF_MIN
            .saturating_mul(1 << over.min(16))
            .min(BACKOFF_MAX)
    }

    /// The module was started again at `now`.
    fn restarted(&mut self, now: Instant) {
        self.started = now;
    }
}

/// The wait before trying again a restart that failed after `delay`.
fn retry_delay(delay: Duration) -> Duration {
    delay.saturating_mul(2).clamp(BACKOFF_MIN, BACKOFF_MAX)
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
    // Not `stopped`: a graceful shutdown's work (a checkout storing its
    // order) may need the module until the node closes.
    let stopped = ctx.closed();
    tokio::pin!(stopped);
    let mut row = CrashRow::new(Instant::now());
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        if slot.load().is_running() {
            continue;
        }
        let mut delay = row.crashed(Instant::now());
        counters.set_module_down(name, true);
        tracing::error!(
            module = name,
            node = ctx.node(),
            crashes_in_a_row = row.crashes,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "the module's actor stopped (a handler panicked); restarting it with fresh state"
        );
        loop {
            if !delay.is_zero() {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            // A module that listens itself (the shop's web server) is not
            // started again once the node is stopping: its address is the
            // old server's until that has drained, and a new one would
            // only be stopped.
            let config = config();
            if ctx.is_stopping()
                && config
                    .as_ref()
                    .is_ok_and(|config| !M::listen_addresses(config).is_empty())
            {
                tracing::info!(
                    module = name,
                    node = ctx.node(),
                    "the node is stopping: a module that listens is not restarted"
                );
                return;
            }
            // A start that panics is a start that failed (tried again,
            // with backoff): before, the panic ended this task, and the
            // module stayed down for good, the node unready. One that
            // hangs still gives way to the node's close.
            let started = match config {
                Ok(config) => {
                    let start = PanicCaught(Box::pin(M::start(config, ctx.clone())));
                    tokio::select! {
                        _ = &mut stopped => return,
                        started = start => {
                            started.unwrap_or_else(|_| Err(crate::module::StartError::Failed(
                                "its start panicked (the line above says where)".to_owned(),
                            )))
                        }
                    }
                }
                Err(error) => Err(error),
            };
            match started {
                Ok(endpoints) => {
                    slot.replace(endpoints);
                    counters.set_module_down(name, false);
                    // Counted once back (and after it is no longer down):
                    // a module that crashed and was not started again
                    // (the node stopping, its start failing still) was not
                    // restarted.
                    Counters::count(&counters.restarts);
                    row.restarted(Instant::now());
                    tracing::info!(module = name, node = ctx.node(), "module restarted");
                    break;
                }
                Err(error) => {
                    delay = retry_delay(delay);
                    tracing::error!(
                        module = name,
                        node = ctx.node(),
                        %error,
                        retry_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "the module could not be restarted; trying again"
                    );
                }
            }
        }
    }
}

/// A future whose panic, while polled, is caught as `Err(())` (the line
/// about it is the panic hook's). futures-util has one, behind a feature
/// that would add to every build for this one use.
struct PanicCaught<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for PanicCaught<F> {
    type Output = Result<F::Output, ()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Ok(output)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(Err(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_from_the_third_crash_in_a_row_and_hold_at_the_most() {
        // A module that crashes as soon as it is started, every time.
        let mut now = Instant::now();
        let mut row = CrashRow::new(now);
        let mut delays = Vec::new();
        for _ in 0..14 {
            let delay = row.crashed(now);
            delays.push(delay.as_millis());
            now += delay;
            row.restarted(now);
        }
        assert_eq!(
            delays,
            [
                0, 0, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000, 5000, 5000
            ],
            "the delays must not fall back while it keeps crashing"
        );
        // One that then runs ten seconds starts a new row.
        now += CRASH_WINDOW;
        assert_eq!(row.crashed(now), Duration::ZERO);
        assert_eq!(row.crashes, 1);
    }

    #[test]
    fn a_failed_restart_is_tried_again_later_and_later() {
        assert_eq!(retry_delay(Duration::ZERO), BACKOFF_MIN);
        assert_eq!(retry_delay(BACKOFF_MIN), BACKOFF_MIN * 2);
        assert_eq!(retry_delay(BACKOFF_MAX), BACKOFF_MAX);
    }
}
