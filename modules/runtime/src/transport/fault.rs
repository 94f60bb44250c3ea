//! Fault injection, for failure tests: per peer, a node can stall its
//! connection to that peer (nothing moves either way, as when a network
//! drops every packet and TCP keeps retrying), slow down what it reads,
//! throttle what it writes (a slow link), or cut the connection at once. Reached through [`Node::faults`]; nothing is
//! injected unless a test asks, and the cost when nothing is injected is
//! one atomic load per read or write.
//!
//! Every connection's socket halves are wrapped in `Faulty`, which finds
//! the peer's switches once it knows who the peer is (at once when dialing,
//! after the handshake when accepting). It also counts the bytes sent to
//! and read from each peer, for the metrics.
//!
//! [`Node::faults`]: crate::Node::faults

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::Shared;

/// The switches for one peer, and the bytes that moved (every connection
/// passes through [`Faulty`], so it is where they are counted).
#[derive(Default)]
pub(crate) struct PeerFaults {
    /// Bytes written to the peer.
    pub(crate) sent: AtomicU64,
    /// Bytes read from the peer.
    pub(crate) received: AtomicU64,
    stalled: AtomicBool,
    read_delay_us: AtomicU64,
    /// At most this many bytes per write (0: no limit)...
    write_chunk: AtomicUsize,
    /// ...each after this long.
    write_every_us: AtomicU64,
    /// Reads and writes waiting for a stall to end.
    waiting: Mutex<Vec<Waker>>,
}

impl PeerFaults {
    fn set_stalled(&self, on: bool) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        self.stalled.store(on, Ordering::Release);
        if !on {
            for waker in waiting.drain(..) {
                waker.wake();
            }
        }
    }

    /// Ready unless stalled; when stalled, wakes `cx` when the stall ends.
    fn pass(&self, cx: &Context<'_>) -> Poll<()> {
        if !self.stalled.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked again under the lock, so an end of stall is never missed.
        if !self.stalled.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        waiting.push(cx.waker().clone());
        Poll::Pending
    }

    fn read_delay(&self) -> Option<Duration> {
        match self.read_delay_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// `(bytes per write, delay before each)`, if writes are throttled.
    fn throttle(&self) -> Option<(usize, Duration)> {
        match self.write_chunk.load(Ordering::Relaxed) {
            0 => None,
            chunk => Some((
                chunk,
                Duration::from_micros(self.write_every_us.load(Ordering::Relaxed)),
            )),
        }
    }
}

/// Every peer's switches on one node.
#[derive(Default)]
pub(crate) struct Faults {
    peers: Mutex<HashMap<String, Arc<PeerFaults>>>,
}

impl Faults {
    /// The switches for `peer` (made on first use).
    pub(crate) fn peer(&self, peer: &str) -> Arc<PeerFaults> {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(peers.entry(peer.to_owned()).or_default())
    }
}

/// Where a wrapped socket finds its peer's switches, once the peer is known.
pub(crate) type FaultSlot = Arc<OnceLock<Arc<PeerFaults>>>;

pin_project_lite::pin_project! {
    /// A socket half that obeys its peer's switches.
    pub(crate) struct Faulty<S> {
        #[pin]
        inner: S,
        slot: FaultSlot,
        delay: Option<Pin<Box<Sleep>>>,
        write_delay: Option<Pin<Box<Sleep>>>,
    }
}

impl<S> Faulty<S> {
    /// Wraps `inner`; its switches are the slot's, once set.
    pub(crate) fn new(inner: S, slot: FaultSlot) -> Faulty<S> {
        Faulty {
            inner,
            slot,
            delay: None,
            write_delay: None,
        }
    }
}

impl<S: AsyncRead> AsyncRead for Faulty<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.project();
        if let Some(faults) = this.slot.get() {
            if faults.pass(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some(delay) = faults.read_delay() {
                let sleep = this
                    .delay
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
        }
        let before = buf.filled().len();
        let polled = this.inner.poll_read(cx, buf);
        if polled.is_ready() {
            *this.delay = None;
            if let Some(faults) = this.slot.get() {
                let read = buf.filled().len().saturating_sub(before);
                faults.received.fetch_add(read as u64, Ordering::Relaxed);
            }
        }
        polled
    }
}

impl<S: AsyncWrite> AsyncWrite for Faulty<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.project();
        let mut buf = buf;
        if let Some(faults) = this.slot.get() {
            if faults.pass(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some((chunk, every)) = faults.throttle() {
                let sleep = this
                    .write_delay
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                buf = &buf[..buf.len().min(chunk)];
            }
        }
        let polled = this.inner.poll_write(cx, buf);
        if let Poll::Ready(result) = &polled {
            *this.write_delay = None;
            if let (Ok(written), Some(faults)) = (result, this.slot.get()) {
                faults.sent.fetch_add(*written as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

/// Injects faults into one node's connections. For failure tests; get it
/// from [`Node::faults`](crate::Node::faults).
#[derive(Clone)]
pub struct FaultInjector {
    pub(crate) shared: Arc<Shared>,
}

impl FaultInjector {
    /// Stalls (`true`) or resumes (`false`) everything this node sends to
    /// and reads from node `peer`, as a network that drops every packet
    /// while TCP keeps retrying: nothing is lost, nothing moves. New
    /// connections to `peer` stall too, after they are made.
    pub fn stall(&self, peer: &str, on: bool) {
        self.shared.faults.peer(peer).set_stalled(on);
    }

    /// Delays every read from node `peer` by `delay` (zero: no delay).
    pub fn delay_reads(&self, peer: &str, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.shared
            .faults
            .peer(peer)
            .read_delay_us
            .store(us, Ordering::Relaxed);
    }

    /// Throttles what this node writes to node `peer`: at most `bytes` per
    /// write, each after `every` (a slow link). `bytes` 0: no throttle.
    pub fn throttle_writes(&self, peer: &str, bytes: usize, every: Duration) {
        let faults = self.shared.faults.peer(peer);
        let us = u64::try_from(every.as_micros()).unwrap_or(u64::MAX);
        faults.write_every_us.store(us, Ordering::Relaxed);
        faults.write_chunk.store(bytes, Ordering::Relaxed);
    }

    /// Cuts this node's connections to node `peer` now, as a reset would:
    /// calls waiting on them fail at once. The peer may be redialled.
    pub fn cut(&self, peer: &str) {
        self.shared.close_peer(peer, "cut by fault injection");
    }
}
