//! At most one log line a second for an event that can come once per call.
//!
//! A peer that floods a node (more calls than it may have in flight, calls
//! to a method the node does not have, calls it is not allowed to make)
//! would otherwise get one warning per call: thousands of lines a second,
//! written while the node is already overloaded, burying every other line.
//! A [`LogLimit`] lets the first line through, then one a second, each
//! saying how many were left out since the one before; the metrics still
//! count every event.

use std::sync::atomic::{AtomicU64, Ordering};

/// The shortest time between two lines of one [`LogLimit`].
const INTERVAL_MS: u64 = 1_000;

/// One event's log lines, limited to one a second. Lock-free: the node's
/// threads share it.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    /// When the next line may be written, on the coarse clock (ms); 0: now.
    next_ms: AtomicU64,
    /// Events left unlogged since the last line.
    left_out: AtomicU64,
}

impl LogLimit {
    /// Whether to log this event: `Some(n)` if so, `n` being how many were
    /// left out since the last line; `None` (and it is counted) if not.
    pub(crate) fn admit(&self) -> Option<u64> {
        self.admit_at(crate::deadline::now_ms())
    }

    fn admit_at(&self, now_ms: u64) -> Option<u64> {
        let next = self.next_ms.load(Ordering::Relaxed);
        let won = now_ms >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now_ms.saturating_add(INTERVAL_MS),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok();
        if won {
            Some(self.left_out.swap(0, Ordering::Relaxed))
        } else {
            self.left_out.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Up to [`BURST`] lines a second of one event, then none until the
/// second is over, the next line saying how many were left out: for an
/// event whose first lines each tell something (a misconfigured peer's
/// refusal names what differed) but that whoever reaches a port can
/// repeat as fast as it connects.
#[derive(Debug, Default)]
pub(crate) struct BurstLimit {
    /// The current second's start (coarse clock, ms), its lines so far,
    /// and the events left out since the last line.
    window: std::sync::Mutex<(u64, u32, u64)>,
}

/// Lines a second a [`BurstLimit`] lets through.
pub(crate) const BURST: u32 = 16;

impl BurstLimit {
    /// Whether to log this event: `Some(n)` if so, `n` being how many were
    /// left out since the last line; `None` (and it is counted) if not.
    pub(crate) fn admit(&self) -> Option<u64> {
        self.admit_at(crate::deadline::now_ms())
    }

    fn admit_at(&self, now_ms: u64) -> Option<u64> {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (start, lines, left_out) = &mut *window;
        if now_ms.saturating_sub(*start) >= INTERVAL_MS {
            *start = now_ms;
            *lines = 0;
        }
        if *lines < BURST {
            *lines += 1;
            Some(std::mem::take(left_out))
        } else {
            *left_out += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_a_second_is_logged_then_nothing_until_the_next_which_says_how_many_were_left_out() {
        let limit = BurstLimit::default();
        for _ in 0..BURST {
            assert_eq!(limit.admit_at(5_000), Some(0));
        }
        assert_eq!(limit.admit_at(5_000), None);
        assert_eq!(limit.admit_at(5_999), None);
        assert_eq!(limit.admit_at(6_000), Some(2));
        for _ in 1..BURST {
            assert_eq!(limit.admit_at(6_500), Some(0));
        }
        assert_eq!(limit.admit_at(6_900), None);
    }

    #[test]
    fn the_first_event_is_logged_then_one_a_second_with_the_count_left_out() {
        let limit = LogLimit::default();
        assert_eq!(limit.admit_at(5_000), Some(0));
        assert_eq!(limit.admit_at(5_000), None);
        assert_eq!(limit.admit_at(5_999), None);
        assert_eq!(limit.admit_at(6_000), Some(2));
        assert_eq!(limit.admit_at(6_500), None);
        // A quiet spell: the next event is logged at once.
        assert_eq!(limit.admit_at(60_000), Some(1));
        assert_eq!(limit.admit_at(60_001), None);
    }
}
