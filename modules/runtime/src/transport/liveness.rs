//! Liveness: every node connection carries heartbeats both ways, and a peer
//! that stays silent too long is declared unreachable.
//!
//! Each side sends a heartbeat frame every `heartbeat_interval` (500 ms by
//! default), and its reader stamps the time of every read that brings bytes:
//! not only whole frames, so a peer busy sending one large message is not
//! silent. Every 100 ms a watcher looks at the silence: longer than
//! `failure_timeout` (2.5 s by default) and the connection is closed, which
//! fails every call waiting on it at once (*not delivered* if its frame never
//! left, *outcome unknown* if it did), not at the calls' deadlines. The peer
//! is then redialled with backoff, as after any lost connection.
//!
//! With the defaults, a peer that is killed, stalled or cut off is declared
//! unreachable 2.5 to 2.6 s after the last byte it sent; a peer stalled for
//! 1 s (a pause, a long collection) has gone at most 1.5 s without a word,
//! and is not.
//!
//! The same watcher looks the other way: a peer that keeps sending but
//! reads nothing (what this node writes to it stops moving while more is
//! queued) would have replies wait here until the failure timeout, as
//! many as the limit of calls in flight allows (each as large as a frame
//! may be). When nothing queued for it has been written for
//! `failure_timeout`, or sooner when what waits for it has passed
//! [`BACKLOG_FRAMES`] frames of the largest size (256 MiB with the
//! default 4 MiB frames) and did not move since the last look, it is
//! declared unreachable the same way. A peer that reads, however slowly,
//! makes progress and is left alone by the watcher; its connection bounds
//! what it can pile up: its calls count against the in-flight limit until
//! the writer takes their replies, and a peer that sends calls faster than
//! it reads even their refusals is cut off as soon as it has more
//! unanswered than it said it may have in flight (`Connection::serve`).
//!
//! And a peer that sends heartbeats but answers no calls (stuck, or
//! broken): a node answers every call by its deadline, with a timeout if
//! its work did not finish, so a call of ours still unanswered a failure
//! timeout past its deadline means the peer has stopped answering. It is
//! declared unreachable too; before, its calls held their slots until the
//! connection ended, and once they were all taken every call to it failed
//! as overloaded at its deadline. A call is judged from the later of its
//! deadline and the first look that finds its request written (one
//! waiting here behind a large frame on a slow link has not reached the
//! peer), and not while a large request or reply from the peer is
//! arriving (the peer's answer may wait behind it in its outbox; before,
//! only a reply counted, and a peer sending its own large call was cut off
//! with the answer it owed queued behind it). What the kernel's socket buffers hold is not seen: over a
//! link so slow that they take longer than a failure timeout to drain,
//! raise `failure_timeout_ms`.
//!
//! A *local* pause (this process stopped, or starved of CPU) must not be
//! blamed on the peers: if the watcher wakes much later than it asked to,
//! it restarts the silence count instead of judging by it, and judges no
//! call overdue until a failure timeout after it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::connection::Connection;
use crate::deadline::now_ms;

/// A watcher that wakes this many check periods late was paused itself
/// (or half the failure timeout late, if that is less).
const PAUSED_AFTER_CHECKS: u64 = 8;
/// What may wait to be written to a peer, in frames of the largest size
/// allowed, before a look that finds it not moving cuts the peer off at
/// once rather than after the failure timeout. (The replies that wait are
/// bounded by the limits of calls in flight, but with the defaults that is
/// up to twice 1,024 frames of up to 4 MiB: those the writer holds and
/// those queued behind them.)
pub(crate) const BACKLOG_FRAMES: u64 = 64;

/// The silence is looked at this often at least.
const MAX_CHECK_PERIOD: Duration = Duration::from_millis(100);

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Whether a look at `now` sends a heartbeat, the last having gone at
/// `last_sent`: at the last look before `interval` has passed, so that no
/// two are further apart than the interval (looks come every `check`
/// ms). Sent once the interval had passed, they went up to a look later:
/// every 300 ms at 250, which left a failure timeout of 500 ms less than
/// twice their spacing.
fn heartbeat_due(now: u64, last_sent: Option<u64>, interval: u64, check: u64) -> bool {
    last_sent.is_none_or(|sent| now.saturating_sub(sent).saturating_add(check) > interval)
}

/// How late a look may come before this node counts itself paused (its
/// peers' silence meanwhile not held against them): eight looks, or half
/// the failure timeout if less (at 8 looks of 100 ms, a pause of 600 ms
/// was taken for a peer's silence of more than a timeout of 500), and
/// never less than two looks.
fn pause_after(check: u64, timeout: u64) -> u64 {
    (check.saturating_mul(PAUSED_AFTER_CHECKS))
        .min(timeout / 2)
        .max(check.saturating_mul(2))
}

/// Sends heartbeats on `connection` and closes it when the peer falls
/// silent; returns when the connection is closed.
pub(crate) async fn watch(connection: Arc<Connection>) {
    let settings = &connection.shared().settings;
    let interval = millis(settings.heartbeat_interval).max(1);
    let timeout = millis(settings.failure_timeout);
    let max_backlog = u64::try_from(settings.max_frame)
        .unwrap_or(u64::MAX)
        .saturating_mul(BACKLOG_FRAMES);
    let check_every = Duration::from_millis((interval / 2).max(1)).min(MAX_CHECK_PERIOD);
    let mut ticker = tokio::time::interval(check_every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_check = now_ms();
    let mut last_sent: Option<u64> = None;
    // Since when what is queued for the peer has not moved, if it has not.
    let mut stuck_since: Option<u64> = None;
    let mut last_written = connection.write_progress().1;
    // When this node last resumed from a pause of its own: replies that
    // came meanwhile wait unread, and calls are not judged overdue until
    // the reader has had a failure timeout to catch up.
    let mut resumed_at: Option<u64> = None;
    // The most overdue call, and the first look that found its request
    // written: the peer is judged from then at the earliest.
    let mut overdue_call: Option<(u64, u64)> = None;
    loop {
        ticker.tick().await;
        if connection.is_closed() {
            return;
        }
        let now = now_ms();
        let late = now.saturating_sub(last_check);
        if late > pause_after(millis(check_every), timeout) {
            tracing::warn!(
                node = %connection.shared().identity.node,
                peer = %connection.peer().node,
                paused_ms = late,
                "this node was paused or starved; peers are not judged on that silence"
            );
            connection.heard_at(now);
            stuck_since = None;
            resumed_at = Some(now);
        }
        last_check = now;
        if heartbeat_due(now, last_sent, interval, millis(check_every)) {
            connection.send_heartbeat();
            last_sent = Some(now);
        }
        let silent = now.saturating_sub(connection.last_heard());
        if silent > timeout {
            let reason = format!(
                "node '{}' sent nothing for {silent} ms (failure timeout {timeout} ms): declared unreachable",
                connection.peer().node
            );
            return declare_unreachable(&connection, "it sent nothing", reason);
        }
        // A peer answers every call by its deadline (a timeout, if the
        // work did not finish): one that still owes an answer a failure
        // timeout past it has stopped answering, though it may still send
        // heartbeats. Its calls would hold their slots until the
        // connection ended, and the calls after them fail as overloaded.
        let caught_up = resumed_at.is_none_or(|at| now.saturating_sub(at) > timeout);
        let most_overdue = connection.most_overdue(now);
        // A request seen written stays written: looked for in the
        // outbox only while the call is new to this watch.
        let written_since = match (most_overdue, overdue_call) {
            (Some((call_id, _)), Some((seen, since))) if seen == call_id => Some(since),
            (Some((call_id, _)), _) if !connection.is_unsent(call_id) => {
                overdue_call = Some((call_id, now));
                Some(now)
            }
            _ => {
                overdue_call = None;
                None
            }
        };
        let answering = now.saturating_sub(connection.last_reply_progress()) <= timeout;
        if caught_up
            && !answering
            && let (Some((call_id, overdue)), Some(since)) = (most_overdue, written_since)
            && millis(overdue).min(now.saturating_sub(since)) > timeout
        {
            let reason = format!(
                "node '{}' has not answered call {call_id}, {} ms past its deadline (failure timeout {timeout} ms): declared unreachable",
                connection.peer().node,
                millis(overdue)
            );
            return declare_unreachable(&connection, "it answers no calls", reason);
        }
        let (queued, written) = connection.write_progress();
        let waiting = queued.saturating_sub(written);
        let moving = written != last_written;
        // Not moving because the socket takes nothing, not because this
        // node's thread was busy (the writer shares it with this watcher).
        if waiting > max_backlog && !moving && connection.writer_is_blocked() {
            let reason = format!(
                "node '{}' left {waiting} bytes unread (limit {max_backlog}): declared unreachable",
                connection.peer().node
            );
            return declare_unreachable(
                &connection,
                "it reads too little of what this node sends",
                reason,
            );
        }
        if waiting > 0 && !moving {
            let stuck = now.saturating_sub(*stuck_since.get_or_insert(now));
            if stuck > timeout {
                let reason = format!(
                    "node '{}' read nothing this node sent for {stuck} ms ({waiting} bytes waiting; failure timeout {timeout} ms): declared unreachable",
                    connection.peer().node
                );
                return declare_unreachable(
                    &connection,
                    "it reads nothing this node sends",
                    reason,
                );
            }
        } else {
            stuck_since = None;
        }
        last_written = written;
    }
}

/// Logs why the peer of `connection` is declared unreachable, and closes
/// the connection with `reason`: every call waiting on it fails now.
pub(crate) fn declare_unreachable(connection: &Arc<Connection>, why: &str, reason: String) {
    tracing::warn!(
        node = %connection.shared().identity.node,
        peer = %connection.peer().node,
        %reason,
        "peer declared unreachable: {why}; pending calls to it fail now"
    );
    connection.close(reason);
}

#[cfg(test)]
mod tests {
    use super::{heartbeat_due, pause_after};

    /// The times of the heartbeats sent by looks every `check` ms over
    /// `until` ms, at heartbeat interval `interval`.
    fn sent(interval: u64, check: u64, until: u64) -> Vec<u64> {
        let mut last = None;
        let mut times = Vec::new();
        for now in (0..=until).step_by(usize::try_from(check).unwrap()) {
            if heartbeat_due(now, last, interval, check) {
                times.push(now);
                last = Some(now);
            }
        }
        times
    }

    #[test]
    fn no_two_heartbeats_are_further_apart_than_the_interval() {
        for (interval, check) in [(250, 100), (500, 100), (1_000, 100), (300, 100), (2, 1)] {
            let times = sent(interval, check, 10_000);
            let widest = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
            assert!(widest <= interval, "{interval}/{check}: {widest} ms apart");
            // Nor much closer: at most a look early.
            assert!(
                widest + check > interval,
                "{interval}/{check}: {widest} ms apart"
            );
        }
    }

    #[test]
    fn a_pause_is_told_from_a_peers_silence_within_half_the_failure_timeout() {
        // The defaults: looks every 100 ms, a timeout of 2.5 s.
        assert_eq!(pause_after(100, 2_500), 800);
        // A timeout of 500 ms: a pause of 600 ms was not one.
        assert_eq!(pause_after(100, 500), 250);
        // Never under two looks.
        assert_eq!(pause_after(1, 2), 2);
    }
}
