//! Deadlines: every call has one, and waiting past it costs almost nothing.
//!
//! A [`Deadline`] is a point on the kernel's *coarse* monotonic clock, in
//! milliseconds: reading it is a few nanoseconds, where a precise clock read
//! is tens. Call deadlines do not need more precision than a millisecond.
//!
//! [`WithDeadline`] makes any future give up at its deadline. It does not
//! start a timer per call (a tokio timer costs a lock and a wheel insertion
//! each way, which would double the cost of a local call): the waiting call
//! is put in a per-thread table, and one sweeper task per thread wakes the
//! calls whose deadline has passed. See `sweeper`.

mod sweeper;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

pub(crate) use sweeper::Watch;

/// The tokio instant `limit` from now, or one so far ahead it never comes
/// (thirty years) if `limit` reaches past what an instant holds:
/// `Duration::MAX`, "as long as it takes", panicked as `now + limit`.
pub(crate) fn instant_after(limit: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(limit)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
}

/// A moment on the coarse monotonic clock, in milliseconds since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(u64);

/// `timeout` in whole milliseconds, a part of one counted as one.
#[inline]
fn millis_rounded_up(timeout: Duration) -> u64 {
    let part = u64::from(!timeout.subsec_nanos().is_multiple_of(1_000_000));
    timeout
        .as_secs()
        .saturating_mul(1_000)
        .saturating_add(u64::from(timeout.subsec_millis()) + part)
}

impl Deadline {
    /// The deadline `timeout` from now, rounded up to the millisecond (a
    /// timeout under one is not none).
    #[inline]
    pub fn after(timeout: Duration) -> Deadline {
        Deadline(now_ms().saturating_add(millis_rounded_up(timeout)))
    }

    /// Time left before the deadline (zero once it has passed).
    pub fn remaining(self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(now_ms()))
    }

    /// Time left before the deadline at `now_ms` on the coarse clock
    /// ([`now_ms`]), for many deadlines against one reading.
    pub(crate) fn remaining_at(self, now_ms: u64) -> Duration {
        Duration::from_millis(self.0.saturating_sub(now_ms))
    }

    /// True once the deadline has passed.
    #[inline]
    pub fn has_passed(self) -> bool {
        now_ms() >= self.0
    }

    /// How long past the deadline it is at `now_ms` (zero before it).
    pub(crate) fn overdue_at(self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.0))
    }

    fn millis(self) -> u64 {
        self.0
    }
}

/// Milliseconds on the coarse monotonic clock.
#[cfg(target_os = "linux")]
#[inline]
pub(crate) fn now_ms() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to; CLOCK_MONOTONIC_COARSE
    // exists on every Linux this builds for, and cannot fail with valid args.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now);
    }
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    seconds * 1_000 + nanos / 1_000_000
}

/// Milliseconds on the monotonic clock (elsewhere: measured from first use).
#[cfg(not(target_os = "linux"))]
pub(crate) fn now_ms() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The deadline passed before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

pin_project! {
    /// A future that gives up at a deadline: resolves to `Err(Elapsed)` if
    /// `inner` has not finished by then. Module code can use it for its own
    /// waits, e.g. `WithDeadline::new(work, call.meta().deadline)`.
    pub struct WithDeadline<F> {
        #[pin]
        inner: F,
        deadline: Deadline,
        watch: Watch,
    }
}

impl<F> WithDeadline<F> {
    /// `inner`, giving up at `deadline`. Tuned for futures that are often
    /// ready by their second poll (a local actor's answer): the deadline is
    /// only put in the sweeper's table if the first wait was not enough.
    #[inline]
    pub fn new(inner: F, deadline: Deadline) -> Self {
        WithDeadline {
            inner,
            deadline,
            watch: Watch::new(),
        }
    }

    /// `inner`, giving up at `deadline`, for futures that will certainly
    /// wait (an answer over the network): the deadline is put in the table
    /// at the first poll.
    #[inline]
    pub fn expecting_a_wait(inner: F, deadline: Deadline) -> Self {
        WithDeadline {
            inner,
            deadline,
            watch: Watch::eager(),
        }
    }
}

impl<F: Future> Future for WithDeadline<F> {
    type Output = Result<F::Output, Elapsed>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.inner.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if this.watch.poll_expired(*this.deadline, cx) {
            Poll::Ready(Err(Elapsed))
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_count_down() {
        let deadline = Deadline::after(Duration::from_secs(60));
        assert!(!deadline.has_passed());
        assert!(deadline.remaining() > Duration::from_secs(58));
        let past = Deadline::after(Duration::ZERO);
        assert!(past.has_passed());
        assert_eq!(past.remaining(), Duration::ZERO);
        assert!(!Deadline::after(Duration::MAX).has_passed());
        // Under a millisecond is not none: rounded up.
        assert_eq!(millis_rounded_up(Duration::from_micros(300)), 1);
        assert_eq!(millis_rounded_up(Duration::from_micros(1_500)), 2);
        assert_eq!(millis_rounded_up(Duration::from_millis(7)), 7);
        assert_eq!(millis_rounded_up(Duration::ZERO), 0);
        assert_eq!(millis_rounded_up(Duration::MAX), u64::MAX);
    }

    #[tokio::test]
    async fn a_future_that_never_finishes_gives_up_at_its_deadline() {
        let started = std::time::Instant::now();
        let result = WithDeadline::new(
            std::future::pending::<()>(),
            Deadline::after(Duration::from_millis(50)),
        )
        .await;
        assert_eq!(result, Err(Elapsed));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(40),
            "gave up early: {waited:?}"
        );
        assert!(waited < Duration::from_secs(5), "gave up late: {waited:?}");
    }

    #[tokio::test]
    async fn a_future_that_finishes_in_time_is_returned() {
        let result = WithDeadline::new(async { 7 }, Deadline::after(Duration::from_secs(5))).await;
        assert_eq!(result, Ok(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deadlines_hold_on_a_multi_threaded_runtime_too() {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                tokio::spawn(WithDeadline::new(
                    std::future::pending::<()>(),
                    Deadline::after(Duration::from_millis(30)),
                ))
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.await.unwrap(), Err(Elapsed));
        }
    }

    #[tokio::test]
    async fn many_waiting_futures_each_give_up() {
        let futures: Vec<_> = (0..100u64)
            .map(|i| {
                tokio::spawn(WithDeadline::new(
                    std::future::pending::<()>(),
                    Deadline::after(Duration::from_millis(10 + i % 40)),
                ))
            })
            .collect();
        for future in futures {
            assert_eq!(future.await.unwrap(), Err(Elapsed));
        }
    }
}
