//! One authenticated connection between two nodes, multiplexing many calls.
//!
//! Two tasks own the socket. The *reader* parses frames: a request is
//! handed to a local actor, and the connection's *responder* task waits
//! for all of them at once, so replies go out in whatever order they
//! finish; a reply completes the waiting call with the same call id. The
//! *writer* sends the *outbox*: one buffer that callers append whole
//! frames to. Whatever was appended while the previous write was in
//! flight goes out in the next single write, so many calls in flight cost
//! few syscalls, and a frame is copied once, never allocated on its own.
//!
//! Every request is answered exactly once, or the connection ends: the
//! serving side replies even to a call it drops (expired, overloaded), so
//! the calling side always learns when a call's slot in flight is free. A
//! slot is held until then, even if the caller stopped waiting: a caller
//! that fires calls and forgets them cannot pile up work on the peer. On
//! the serving side a call counts against that limit until the writer
//! takes its reply, so the replies waiting for a peer that reads slowly
//! are bounded too (those queued, and the batch being written); a peer
//! that sends calls faster than it reads even their refusals is cut off
//! once it has more unanswered than the limit it said in its handshake
//! that it keeps to.
//!
//! When the connection ends, for any reason, every call still waiting on it
//! learns what happened to it: a frame none of whose bytes were handed to
//! the socket, in the outbox or further on in the batch being written, was
//! never sent (*not delivered*); one that was, even in part, may have run
//! (*outcome unknown*). Nothing waits for its deadline on a dead connection.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::{AbortHandle, abortable};
use futures_util::stream::FuturesUnordered;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, oneshot};

use super::Shared;
use super::frame::{
    Frame, FrameBuf, FrameReader, HEARTBEAT_FRAME, LEAVING_FRAME, NO_MORE_CALLS_FRAME,
    REQUEST_BUDGET_AT, ReplyStatus, RequestHeader,
};
use super::handshake::{PeerInfo, Role, role_name};
use super::peer::Peer;
use crate::call::{CallId, CallMeta, Origin, TraceId, call_span};
use crate::deadline::Deadline;
use crate::dispatch::{BoxFuture, Dispatch};
use crate::error::CallError;
use crate::id_map::IdMap;
use crate::log_limit::LogLimit;
use crate::service::MethodId;
use crate::stats::Counters;

/// The longest budget a remote caller may ask for (a day); more is clamped.
const MAX_BUDGET: Duration = Duration::from_secs(24 * 60 * 60);
/// An outbox buffer larger than this is not kept for reuse after a write.
const KEEP_BUFFER_BYTES: usize = 1024 * 1024;

/// An answer to a call, still encoded.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: ReplyStatus,
    pub payload: Vec<u8>,
}

/// Why a call on this connection got no reply.
#[derive(Debug, Clone)]
pub(crate) enum LinkError {
    /// The frame was never written.
    NotDelivered(Arc<str>),
    /// The frame was written; the connection ended before the reply.
    OutcomeUnknown(Arc<str>),
}

/// The receiving end of a call's reply.
pub(crate) type ReplyReceiver = oneshot::Receiver<Result<Reply, LinkError>>;
type Waiter = oneshot::Sender<Result<Reply, LinkError>>;

/// Closes the connection when dropped: held by its reader, writer and
/// responder tasks, so that a task dropped unfinished (its thread's
/// runtime stopped, or it panicked) does not leave the connection open
/// with nobody serving it.
/// Once the connection has closed, as it does before its tasks end, this
/// does nothing.
struct CloseOnDrop(Arc<Connection>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close("the task serving the connection stopped");
    }
}

/// A call of ours on this connection, waiting for its reply.
struct Entry {
    /// Who waits; `None` once the caller stopped waiting.
    waiter: Option<Waiter>,
    /// The call's slot in the peer's limit of calls in flight, held until
    /// the reply comes (or the connection ends).
    _slot: Option<OwnedSemaphorePermit>,
    /// Its deadline: the peer answers every call by then (with a timeout
    /// if it did not finish), so one unanswered long after is a peer that
    /// no longer answers (see `liveness`).
    deadline: Deadline,
}

/// Calls in flight by call id (made by this process: ids, not attacker input).
type Pending = IdMap<u64, Entry>;

/// Frames waiting for the writer.
#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    /// The request frames in `bytes`.
    calls: Vec<QueuedRequest>,
    /// How many frames in `bytes` are replies to calls that ran here
    /// (each still counts in [`Connection::serving`]).
    outcomes: usize,
    /// How many frames in `bytes` are replies, to calls that ran or not
    /// (each still counts in [`Connection::owed`]).
    replies: usize,
    closed: bool,
    /// The peer is leaving and has been told that no call follows: no
    /// request may be queued after that frame.
    no_more_calls: bool,
}

/// The batch the writer is handing to the socket: its requests, and how
/// many of its bytes the socket took. The writer updates `written` under
/// the lock in the same poll as the write, and writes nothing once the
/// connection is closed, so a frame [`Connection::close`] counts as unsent
/// is never sent, whichever threads they run on.
#[derive(Default)]
struct Batch {
    requests: Vec<QueuedRequest>,
    written: usize,
    /// The batch's length in bytes.
    len: usize,
}

/// A request frame in the outbox.
#[derive(Debug, Clone, Copy)]
struct QueuedRequest {
    call_id: u64,
    /// Where its frame starts in the outbox's bytes.
    at: usize,
    /// Its caller's deadline: the budget the frame carries is made good
    /// as it is written ([`stamp_budgets`]), not as it was queued.
    deadline: Deadline,
}

/// Writes into each request frame of `bytes` (at `requests`) whose budget
/// is not written yet (it lies at `unwritten` or after) the time its
/// caller has left now. The writer does so each time it hands bytes to
/// the socket: a frame that waited behind a slow write, or a stalled
/// link, tells the peer what is left then, not what was left when it was
/// queued, so the peer gives up when its caller does (and does not run
/// it at all once its caller has given up: a budget of 0).
fn stamp_budgets(bytes: &mut [u8], requests: &[QueuedRequest], unwritten: usize) {
    if requests.is_empty() {
        return;
    }
    let now = crate::deadline::now_ms();
    for request in requests {
        let field = request.at + REQUEST_BUDGET_AT;
        if field < unwritten {
            continue;
        }
        let budget_us =
            u64::try_from(request.deadline.remaining_at(now).as_micros()).unwrap_or(u64::MAX);
        if let Some(field) = bytes.get_mut(field..field + 8) {
            field.copy_from_slice(&budget_us.to_le_bytes());
        }
    }
}

/// What a frame given to the outbox is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A request of ours, with its call id and its caller's deadline:
    /// failed as *not delivered* if it never leaves.
    Request(u64, Deadline),
    /// The reply to a call from the peer that ran here.
    Outcome,
    /// The reply to a call from the peer that was refused without running.
    Refusal,
    /// Heartbeat, leaving, no more calls.
    Control,
}

/// What became of a frame given to the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queued {
    /// It will be written.
    Yes,
    /// The connection is closed.
    Closed,
    /// A request, refused: the peer is leaving (see [`Frame::NoMoreCalls`]).
    PeerLeaving,
}

/// A call from the peer, running in a local actor; resolves to its reply's
/// payload (already in a frame buffer) or the local call's error.
struct Delivery {
    call_id: u64,
    dispatch: Arc<dyn Dispatch>,
    /// The caller's trace, if it sent one, for the line if the call is
    /// dropped at its deadline.
    trace: Option<TraceId>,
    running: BoxFuture<Result<Vec<u8>, CallError>>,
}

impl std::future::Future for Delivery {
    type Output = (
        u64,
        Arc<dyn Dispatch>,
        Option<TraceId>,
        Result<Vec<u8>, CallError>,
    );
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.running.as_mut().poll(cx) {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready(result) => std::task::Poll::Ready((
                self.call_id,
                Arc::clone(&self.dispatch),
                self.trace,
                result,
            )),
        }
    }
}

pub(crate) struct Connection {
    peer: PeerInfo,
    dialed_by_us: bool,
    shared: Arc<Shared>,
    owner: Option<Weak<Peer>>,
    outbox: Mutex<Outbox>,
    writer_wanted: Notify,
    /// What the writer is writing (after the outbox in lock order).
    batch: Mutex<Batch>,
    /// Calls from the peer, handed from the reader to the responder task.
    arrived: Mutex<Vec<Delivery>>,
    responder: AtomicWaker,
    pending: Mutex<Pending>,
    closed: AtomicBool,
    reason: Mutex<Option<Arc<str>>>,
    reader: Mutex<Option<AbortHandle>>,
    /// The writer, stopped on close even in the middle of a stalled write.
    writer: Mutex<Option<AbortHandle>>,
    /// When bytes last arrived from the peer (coarse clock, ms).
    heard: Arc<AtomicU64>,
    /// When bytes of a reply frame last arrived and left it unfinished
    /// (coarse clock, ms; 0: never).
    reply_heard: Arc<AtomicU64>,
    /// Calls from the peer that ran or run here and whose reply the
    /// writer has not yet taken: what the in-flight limit counts. A call
    /// stops counting when the writer takes its reply, just before writing
    /// it, so the peer never hears back before its slot is free here; and
    /// replies that wait for a peer that reads slowly keep counting, so
    /// they cannot pile up past the limit.
    serving: AtomicUsize,
    /// Calls from the peer whose reply the writer has not taken yet,
    /// running or refused. A peer that keeps to its own limit of calls in
    /// flight (told in its handshake: [`PeerInfo::max_in_flight`]) never
    /// has more, since it waits for a call's reply before it counts the
    /// call's slot free; one that has more sends calls faster than it
    /// reads their replies, and is cut off before they pile up here.
    owed: AtomicUsize,
    /// Calls from the peer not yet answered: from their arrival until
    /// their reply is queued (what a graceful shutdown waits for).
    unanswered: AtomicUsize,
    /// The peer said it is shutting down: no new calls go to it.
    leaving: AtomicBool,
    /// Bytes queued in the outbox, and bytes written, since the start.
    queued_bytes: AtomicU64,
    written_bytes: AtomicU64,
    /// True while the writer waits for the socket to take bytes (its last
    /// write returned `Pending`): what the peer reads, not this node's
    /// own scheduling, holds the outbox back.
    writer_blocked: AtomicBool,
    /// Bytes written and flushed: handed to the socket. Under TLS, a write
    /// leaves its bytes in the TLS layer's buffer until a flush.
    flushed_bytes: AtomicU64,
    /// Notified after every write.
    wrote: Notify,
    /// The peer said it sends no more calls (after this node said it is
    /// leaving), and its notification.
    peer_sends_no_more_calls: AtomicBool,
    no_more_calls: Notify,
    /// The warnings about the peer's calls turned away here, one a second
    /// each at most: a peer can send thousands a second.
    warnings: TurnedAway,
}

/// The [`LogLimit`]s of a connection's warnings about calls it turns away
/// (every one is counted in the metrics).
#[derive(Debug, Default)]
struct TurnedAway {
    /// Calls to a method this node does not serve, or that do not decode.
    rejected: LogLimit,
    /// Calls the peer may not make.
    not_allowed: LogLimit,
    /// Calls past the limit of calls in flight from the peer.
    overloaded: LogLimit,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection made but not started: its tasks are started by
/// [`Prepared::start`]. Made under a peer's state lock (to install it in
/// the same step as the decision to admit it) and started after: a task
/// that cannot be started closes the connection at once, which tells the
/// peer, which takes that lock.
pub(crate) struct Prepared<R, W> {
    connection: Arc<Connection>,
    reader: FrameReader<R>,
    writer: W,
}

impl<R, W> Prepared<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    /// The connection, to install before it starts.
    pub(crate) fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }

    /// Starts the reader, writer, responder and liveness tasks.
    pub(crate) fn start(self) -> Arc<Connection> {
        let Prepared {
            connection,
            mut reader,
            writer,
        } = self;
        reader.report_progress(Arc::clone(&connection.heard));
        reader.report_reply_progress(Arc::clone(&connection.reply_heard));
        tracing::info!(
            node = %connection.shared.identity.node,
            peer = %connection.peer.node,
            addr = %connection.peer.addr,
            incarnation = connection.peer.incarnation,
            "connection up"
        );
        connection.shared.track(&connection);
        // Made while this node is leaving (a connection lost during the
        // grace, dialed again for the work it waits for): the peer is told
        // at once, as the others were when the shutdown began. (Tracked
        // before the flag is read, and the shutdown sets the flag before
        // it lists the connections it tells: none is missed.)
        if connection.shared.draining.load(Ordering::SeqCst) {
            connection.send_leaving();
        }
        connection.writer_wanted.notify_one();
        let (read, stop_reading) = abortable(read_loop(Arc::clone(&connection), reader));
        *lock(&connection.reader) = Some(stop_reading.clone());
        let reading = CloseOnDrop(Arc::clone(&connection));
        connection.shared.spawn(async move {
            let _ = read.await;
            drop(reading);
        });
        let (write, stop_writing) = abortable(write_loop(Arc::clone(&connection), writer));
        *lock(&connection.writer) = Some(stop_writing.clone());
        let writing = CloseOnDrop(Arc::clone(&connection));
        connection.shared.spawn(async move {
            let _ = write.await;
            drop(writing);
        });
        let responding = CloseOnDrop(Arc::clone(&connection));
        connection.shared.spawn({
            let connection = Arc::clone(&connection);
            async move {
                respond(connection).await;
                drop(responding);
            }
        });
        connection
            .shared
            .spawn(super::liveness::watch(Arc::clone(&connection)));
        // A close that raced the spawns above did not see them yet.
        if connection.is_closed() {
            stop_reading.abort();
            stop_writing.abort();
        }
        connection
    }
}

impl Connection {
    /// Makes the connection without starting it ([`Prepared::start`]
    /// starts it). `first` is written before anything else (the
    /// acceptor's `Welcome`).
    pub(crate) fn prepare<R, W>(
        reader: FrameReader<R>,
        writer: W,
        peer: PeerInfo,
        dialed_by_us: bool,
        shared: Arc<Shared>,
        first: Option<Vec<u8>>,
        owner: Option<Weak<Peer>>,
    ) -> Prepared<R, W>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let first = first.unwrap_or_default();
        let first_len = first.len() as u64;
        let outbox = Outbox {
            bytes: first,
            ..Outbox::default()
        };
        let connection = Arc::new(Connection {
            peer,
            dialed_by_us,
            shared,
            owner,
            outbox: Mutex::new(outbox),
            writer_wanted: Notify::new(),
            batch: Mutex::new(Batch::default()),
            arrived: Mutex::new(Vec::new()),
            responder: AtomicWaker::new(),
            pending: Mutex::new(Pending::default()),
            closed: AtomicBool::new(false),
            reason: Mutex::new(None),
            reader: Mutex::new(None),
            writer: Mutex::new(None),
            heard: Arc::new(AtomicU64::new(crate::deadline::now_ms())),
            reply_heard: Arc::new(AtomicU64::new(0)),
            serving: AtomicUsize::new(0),
            owed: AtomicUsize::new(0),
            unanswered: AtomicUsize::new(0),
            leaving: AtomicBool::new(false),
            queued_bytes: AtomicU64::new(first_len),
            written_bytes: AtomicU64::new(0),
            writer_blocked: AtomicBool::new(false),
            flushed_bytes: AtomicU64::new(0),
            wrote: Notify::new(),
            peer_sends_no_more_calls: AtomicBool::new(false),
            no_more_calls: Notify::new(),
            warnings: TurnedAway::default(),
        });
        Prepared {
            connection,
            reader,
            writer,
        }
    }

    /// Who is at the other end.
    pub(crate) fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    /// The largest frame sent on this connection: the smaller of this
    /// node's `max_frame_bytes` and the peer's, told in the handshake. A
    /// call or reply over it fails alone; a frame over the peer's limit
    /// would have closed the connection under every call on it.
    #[inline]
    pub(crate) fn send_max(&self) -> usize {
        self.shared
            .settings
            .max_frame
            .min(self.peer.max_frame as usize)
    }

    /// What the node's connections share.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// When bytes last arrived from the peer (coarse clock, ms).
    pub(crate) fn last_heard(&self) -> u64 {
        self.heard.load(Ordering::Relaxed)
    }

    /// Bytes queued for the peer and bytes written to it, since the start.
    pub(crate) fn write_progress(&self) -> (u64, u64) {
        (
            self.queued_bytes.load(Ordering::Acquire),
            self.written_bytes.load(Ordering::Acquire),
        )
    }

    /// True while the writer waits for the socket to take bytes.
    pub(crate) fn writer_is_blocked(&self) -> bool {
        self.writer_blocked.load(Ordering::Relaxed)
    }

    /// When bytes of a request or reply last arrived and left it
    /// unfinished (coarse clock, ms; 0: never): the peer's outbox is
    /// moving, and the replies behind that frame wait for it.
    pub(crate) fn last_reply_progress(&self) -> u64 {
        self.reply_heard.load(Ordering::Relaxed)
    }

    /// True while call `call_id`'s request has not all been handed to the
    /// socket: it waits in the outbox, or in the batch the writer is
    /// writing (the whole batch counts until it is written). The peer
    /// cannot be blamed yet for not answering it.
    pub(crate) fn is_unsent(&self, call_id: u64) -> bool {
        if lock(&self.outbox)
            .calls
            .iter()
            .any(|r| r.call_id == call_id)
        {
            return true;
        }
        let batch = lock(&self.batch);
        batch.written < batch.len && batch.requests.iter().any(|r| r.call_id == call_id)
    }

    /// Counts the peer as heard from at `now` (after a local pause).
    pub(crate) fn heard_at(&self, now: u64) {
        self.heard.fetch_max(now, Ordering::Relaxed);
    }

    /// True once the peer said it is shutting down.
    pub(crate) fn peer_is_leaving(&self) -> bool {
        self.leaving.load(Ordering::Acquire)
    }

    /// How many calls from the peer have arrived here and are not yet
    /// answered (none, once the connection is closed: they can no longer
    /// be answered).
    pub(crate) fn serving(&self) -> usize {
        if self.is_closed() {
            0
        } else {
            self.unanswered.load(Ordering::SeqCst)
        }
    }

    /// Waits until everything queued so far has been written and flushed
    /// to the socket, at most `limit`; true if it was.
    pub(crate) async fn flush(&self, limit: Duration) -> bool {
        let target = self.queued_bytes.load(Ordering::Acquire);
        let deadline = crate::deadline::instant_after(limit);
        loop {
            let wrote = self.wrote.notified();
            tokio::pin!(wrote);
            wrote.as_mut().enable();
            if self.flushed_bytes.load(Ordering::Acquire) >= target {
                return true;
            }
            if self.is_closed() || tokio::time::timeout_at(deadline, wrote).await.is_err() {
                return self.flushed_bytes.load(Ordering::Acquire) >= target;
            }
        }
    }

    /// Tells the peer this node is shutting down; it answers that it sends
    /// no more calls (see [`Connection::await_no_more_calls`]).
    pub(crate) fn send_leaving(&self) {
        self.enqueue(&LEAVING_FRAME, Kind::Control);
    }

    /// Waits, at most `limit`, until the peer has said it sends no more
    /// calls: every call it made before has then arrived here (frames keep
    /// their order), and been answered or refused. True if it said so;
    /// false after `limit`, or if the connection closed first.
    pub(crate) async fn await_no_more_calls(&self, limit: Duration) -> bool {
        let deadline = crate::deadline::instant_after(limit);
        loop {
            let said = self.no_more_calls.notified();
            tokio::pin!(said);
            said.as_mut().enable();
            if self.peer_sends_no_more_calls.load(Ordering::Acquire) {
                return true;
            }
            if self.is_closed() || tokio::time::timeout_at(deadline, said).await.is_err() {
                return self.peer_sends_no_more_calls.load(Ordering::Acquire);
            }
        }
    }

    /// The peer is leaving: from now on no request is queued here, and the
    /// peer is told so by a frame after every request queued before.
    fn stop_sending_calls(&self) {
        // Read without the lock by callers choosing where to send; the
        // outbox's flag is what makes the refusal exact.
        self.leaving.store(true, Ordering::Release);
        let mut outbox = lock(&self.outbox);
        if outbox.closed || outbox.no_more_calls {
            return;
        }
        outbox.no_more_calls = true;
        self.append(outbox, &NO_MORE_CALLS_FRAME, Kind::Control);
    }

    /// Queues a heartbeat.
    pub(crate) fn send_heartbeat(&self) {
        self.enqueue(&HEARTBEAT_FRAME, Kind::Control);
    }

    /// True while calls sent on it go through: it is open, and the peer
    /// is not leaving.
    pub(crate) fn takes_calls(&self) -> bool {
        !self.is_closed() && !self.peer_is_leaving()
    }

    /// True if this node opened the connection.
    pub(crate) fn dialed_by_us(&self) -> bool {
        self.dialed_by_us
    }

    /// True once the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn reason(&self) -> Arc<str> {
        lock(&self.reason)
            .clone()
            .unwrap_or_else(|| Arc::from("the connection was closed"))
    }

    /// Ends the connection (once; later calls do nothing): the reader and
    /// the writer stop, even in the middle of a stalled write, and every
    /// waiting call fails at once: *not delivered* if its frame was still in
    /// the outbox or the socket took none of its bytes, *outcome unknown*
    /// if it took some.
    pub(crate) fn close(self: &Arc<Self>, reason: impl Into<Arc<str>>) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let reason = reason.into();
        tracing::info!(
            node = %self.shared.identity.node,
            peer = %self.peer.node,
            addr = %self.peer.addr,
            %reason,
            "connection closed"
        );
        *lock(&self.reason) = Some(reason);
        let unsent = {
            let mut outbox = lock(&self.outbox);
            outbox.closed = true;
            let mut unsent = std::mem::take(&mut outbox.calls);
            let batch = lock(&self.batch);
            unsent.extend(batch.requests.iter().filter(|r| r.at >= batch.written));
            unsent
        };
        self.fail_pending(&unsent);
        self.writer_wanted.notify_one();
        self.responder.wake();
        // Whoever waits for this connection's writes or calls to finish
        // (a graceful shutdown) need not wait any longer.
        self.wrote.notify_waiters();
        self.no_more_calls.notify_waiters();
        self.shared.drained.notify_waiters();
        if let Some(reader) = lock(&self.reader).take() {
            reader.abort();
        }
        if let Some(writer) = lock(&self.writer).take() {
            writer.abort();
        }
        if let Some(peer) = self.owner.as_ref().and_then(Weak::upgrade) {
            peer.connection_closed(self);
        }
    }

    /// Appends a finished frame of `kind` to the outbox.
    fn enqueue(&self, frame: &[u8], kind: Kind) -> Queued {
        let outbox = lock(&self.outbox);
        if outbox.closed {
            return Queued::Closed;
        }
        if matches!(kind, Kind::Request(..)) && outbox.no_more_calls {
            return Queued::PeerLeaving;
        }
        self.append(outbox, frame, kind);
        Queued::Yes
    }

    /// Appends `frame` to the locked `outbox`, and wakes the writer if it
    /// had nothing to write.
    fn append(&self, mut outbox: MutexGuard<'_, Outbox>, frame: &[u8], kind: Kind) {
        let was_empty = outbox.bytes.is_empty();
        let at = outbox.bytes.len();
        outbox.bytes.extend_from_slice(frame);
        self.queued_bytes
            .fetch_add(frame.len() as u64, Ordering::AcqRel);
        match kind {
            Kind::Request(call_id, deadline) => outbox.calls.push(QueuedRequest {
                call_id,
                at,
                deadline,
            }),
            Kind::Outcome => {
                outbox.outcomes += 1;
                outbox.replies += 1;
            }
            Kind::Refusal => outbox.replies += 1,
            Kind::Control => {}
        }
        drop(outbox);
        if was_empty {
            self.writer_wanted.notify_one();
        }
    }

    /// Sends a finished request frame and returns where its reply will
    /// arrive, or why it cannot be sent.
    pub(crate) fn send_request(
        self: &Arc<Self>,
        call_id: u64,
        deadline: Deadline,
        frame: &[u8],
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<PendingCall, LinkError> {
        let (waiter, reply) = oneshot::channel();
        let entry = Entry {
            waiter: Some(waiter),
            _slot: slot,
            deadline,
        };
        // In the table before the frame is queued: its reply cannot come
        // before it is there.
        lock(&self.pending).insert(call_id, entry);
        let reason = match self.enqueue(frame, Kind::Request(call_id, deadline)) {
            Queued::Yes => {
                return Ok(PendingCall {
                    connection: Arc::clone(self),
                    call_id,
                    reply,
                    answered: false,
                });
            }
            Queued::Closed => self.reason(),
            Queued::PeerLeaving => Arc::from(format!("node '{}' is shutting down", self.peer.node)),
        };
        // Never sent: its entry (and its slot) go now.
        lock(&self.pending).remove(&call_id);
        Err(LinkError::NotDelivered(reason))
    }

    /// The call of ours on this connection longest past its deadline at
    /// `now` (coarse clock, ms), and by how long, if one is.
    pub(crate) fn most_overdue(&self, now: u64) -> Option<(u64, Duration)> {
        lock(&self.pending)
            .iter()
            .map(|(call_id, entry)| (*call_id, entry.deadline.overdue_at(now)))
            .filter(|(_, overdue)| !overdue.is_zero())
            .max_by_key(|(_, overdue)| *overdue)
    }

    fn complete(&self, call_id: u64, status: ReplyStatus, payload: &[u8]) {
        // Removing the entry frees the call's slot.
        let entry = lock(&self.pending).remove(&call_id);
        match entry.and_then(|e| e.waiter) {
            Some(waiter) => {
                // Copied out only for a call that waits (a reply to no
                // call cost a copy of up to a frame), so the read buffer
                // is free again at once.
                let _ = waiter.send(Ok(Reply {
                    status,
                    payload: payload.to_vec(),
                }));
            }
            None => tracing::debug!(
                peer = %self.peer.node,
                call_id,
                "reply to a call that is no longer waiting (it timed out)"
            ),
        }
    }

    /// Queues a reply of `status` carrying `error`, as a frame of `kind`, for
    /// a call to `service` (empty if unknown). An error that cannot be
    /// encoded within a frame is replaced by a short one that can: every
    /// call is answered, since only an answer frees the caller's slot.
    fn reply_error<T: serde::Serialize>(
        &self,
        call_id: u64,
        status: ReplyStatus,
        error: &T,
        service: &str,
        kind: Kind,
    ) {
        let max = self.send_max();
        let frame = error_frame(call_id, status, error, max).or_else(|e| {
            tracing::error!(peer = %self.peer.node, call_id, error = %e, "could not encode an error reply; a short one goes instead");
            let short =
                CallError::outcome_unknown(service, "the serving node could not encode its answer");
            error_frame(call_id, ReplyStatus::Failed, &short, max)
        });
        match frame {
            Ok(frame) => {
                self.enqueue(&frame, kind);
            }
            // Not with a service name from this build and frames of 4 KiB
            // at least; counted as answered all the same.
            Err(e) => {
                tracing::error!(peer = %self.peer.node, call_id, error = %e, "could not encode a short error reply either");
                self.owed.fetch_sub(1, Ordering::AcqRel);
                if kind == Kind::Outcome {
                    self.serving.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// Answers a call from the peer that does not run: [`reply_error`]
    /// with a refusal.
    ///
    /// [`reply_error`]: Self::reply_error
    fn refuse<T: serde::Serialize>(
        &self,
        call_id: u64,
        status: ReplyStatus,
        error: &T,
        service: &str,
    ) {
        self.reply_error(call_id, status, error, service, Kind::Refusal);
    }

    /// Answers call `call_id` (of the caller's trace, if it sent one) from
    /// the peer to `dispatch` that is turned away (`what`): counts it in
    /// `counter`, logs it within `limit` (see [`TurnedAway`]), and refuses
    /// it with `rejection`.
    fn reject<T: serde::Serialize + std::fmt::Display>(
        &self,
        (call_id, trace): (u64, Option<TraceId>),
        dispatch: &dyn Dispatch,
        rejection: &T,
        counter: &AtomicU64,
        limit: &LogLimit,
        what: &str,
    ) {
        Counters::count(counter);
        if let Some(left_out) = limit.admit() {
            call_span(dispatch.service(), dispatch.message(), call_id, trace).in_scope(|| {
                tracing::warn!(
                    peer = %self.peer.node,
                    %rejection,
                    left_out,
                    "{what} (left_out: since the last such line)"
                );
            });
        }
        self.refuse(
            call_id,
            ReplyStatus::Rejected,
            rejection,
            dispatch.service(),
        );
    }

    /// Runs a request that arrived on this connection. It counts as
    /// unanswered from here until its reply is queued; the count goes up
    /// before the shutdown flag is read, and a graceful shutdown reads the
    /// count after setting the flag: so either the shutdown waits for this
    /// call, or this call is refused as the node is shutting down.
    ///
    /// A call past the peer's own limit of calls in flight cuts the peer
    /// off instead (see [`Connection::owed`]): the refusals it would get,
    /// small as they are, would otherwise pile up here without end while
    /// it reads a little. (Pausing the reads instead could leave two nodes
    /// each waiting for the other to read.)
    fn serve(self: &Arc<Self>, header: RequestHeader, payload: Bytes) {
        let owed = self.owed.fetch_add(1, Ordering::AcqRel) + 1;
        let limit = self.peer.max_in_flight as usize;
        if owed > limit {
            let reason = format!(
                "{} '{}' has {owed} calls unanswered here, more than the {limit} it may have in flight: it does not read their replies; declared unreachable",
                role_name(self.peer.role),
                self.peer.node
            );
            return super::liveness::declare_unreachable(
                self,
                "it sends calls faster than it reads their replies",
                reason,
            );
        }
        self.unanswered.fetch_add(1, Ordering::SeqCst);
        if self.start_serving(header, payload) == Answered::Now {
            self.answered_one();
        }
    }

    /// [`serve`](Self::serve): refuses the call (answered now) or hands it
    /// to its actor (answered when it finishes).
    fn start_serving(self: &Arc<Self>, header: RequestHeader, payload: Bytes) -> Answered {
        let RequestHeader {
            call_id,
            method,
            budget_us,
            caller,
            ..
        } = header;
        // The caller's trace, if it sent one, for the lines about this call.
        let callers_trace = (header.trace != 0).then(|| TraceId::from_u128(header.trace));
        let node = &self.shared.identity.node;
        let Some(table) = self.shared.started_table() else {
            // A module that started early called out on this connection,
            // and the peer calls back before the others have started:
            // not delivered, so it may try another replica.
            let service = self.shared.service_of(MethodId(method)).unwrap_or("");
            let error = CallError::not_delivered(
                service,
                format!("node '{node}' is starting: not all its modules are up yet"),
            );
            self.refuse(call_id, ReplyStatus::Failed, &error, service);
            return Answered::Now;
        };
        let dispatch = match table.find(MethodId(method), node) {
            Ok(dispatch) => Arc::clone(dispatch),
            Err(rejection) => {
                Counters::count(&self.shared.counters.rejected);
                if let Some(left_out) = self.warnings.rejected.admit() {
                    tracing::warn!(peer = %self.peer.node, call_id, trace_id = callers_trace.map(tracing::field::display), method = %MethodId(method), %rejection, left_out, "call rejected (left_out: since the last such line)");
                }
                self.refuse(call_id, ReplyStatus::Rejected, &rejection, "");
                return Answered::Now;
            }
        };
        if let Err(rejection) = self
            .shared
            .access
            .check(dispatch.service(), caller, &self.peer)
        {
            self.reject(
                (call_id, callers_trace),
                &*dispatch,
                &rejection,
                &self.shared.counters.refused_not_allowed,
                &self.warnings.not_allowed,
                "call refused",
            );
            return Answered::Now;
        }
        if self.shared.draining.load(Ordering::SeqCst) {
            let error = CallError::not_delivered(
                dispatch.service(),
                format!("node '{node}' is shutting down"),
            );
            self.refuse(call_id, ReplyStatus::Failed, &error, dispatch.service());
            return Answered::Now;
        }
        if budget_us == 0 {
            // The caller has given up already: running it helps nobody.
            // It is still answered, so the caller's slot is freed.
            Counters::count(&self.shared.counters.expired_on_arrival);
            call_span(dispatch.service(), dispatch.message(), call_id, callers_trace).in_scope(|| {
                tracing::debug!(peer = %self.peer.node, "call dropped: it arrived past its deadline");
            });
            let error = CallError::timed_out(dispatch.service(), Duration::ZERO);
            self.refuse(call_id, ReplyStatus::Failed, &error, dispatch.service());
            return Answered::Now;
        }
        let limit = self.shared.settings.max_in_flight;
        if self.serving.fetch_add(1, Ordering::AcqRel) >= limit {
            self.serving.fetch_sub(1, Ordering::AcqRel);
            Counters::count(&self.shared.counters.refused_overloaded);
            if let Some(left_out) = self.warnings.overloaded.admit() {
                call_span(dispatch.service(), dispatch.message(), call_id, callers_trace).in_scope(|| {
                    tracing::warn!(
                        peer = %self.peer.node,
                        limit,
                        left_out,
                        "call refused: the peer has more calls in flight here than the limit (left_out: since the last such line)"
                    );
                });
            }
            let error = CallError::overloaded(
                dispatch.service(),
                format!(
                    "node '{node}' is already serving {limit} calls from node '{}'",
                    self.peer.node
                ),
            );
            self.refuse(call_id, ReplyStatus::Failed, &error, dispatch.service());
            return Answered::Now;
        }
        let budget = Duration::from_micros(budget_us).min(MAX_BUDGET);
        let meta = CallMeta {
            id: CallId(call_id),
            deadline: Deadline::after(budget),
            origin: match self.peer.role {
                Role::Client => Origin::Client(Arc::clone(&self.peer.node)),
                Role::Node => Origin::Remote(Arc::clone(&self.peer.node)),
            },
            trace: match header.trace {
                0 => TraceId::new(),
                trace => TraceId::from_u128(trace),
            },
            parent: header.parent,
        };
        let trace = meta.trace;
        let out = FrameBuf::reply(call_id, ReplyStatus::Outcome).into_inner();
        match dispatch.dispatch(&payload, meta, out) {
            Err(rejection) => {
                self.serving.fetch_sub(1, Ordering::AcqRel);
                self.reject(
                    (call_id, callers_trace),
                    &*dispatch,
                    &rejection,
                    &self.shared.counters.rejected,
                    &self.warnings.rejected,
                    "call rejected",
                );
                Answered::Now
            }
            Ok(running) => {
                Counters::count(&self.shared.counters.calls_served);
                let running = if crate::spans::enabled() {
                    Self::server_span(running, &*dispatch, trace, call_id, &self.peer.node)
                } else {
                    running
                };
                lock(&self.arrived).push(Delivery {
                    call_id,
                    dispatch,
                    trace: callers_trace,
                    running,
                });
                self.responder.wake();
                Answered::Later
            }
        }
    }

    /// Counts a call from the peer as answered (its reply is queued), and
    /// wakes a graceful shutdown waiting for the last one.
    fn answered_one(&self) {
        if self.unanswered.fetch_sub(1, Ordering::SeqCst) == 1
            && self.shared.draining.load(Ordering::SeqCst)
        {
            self.shared.drained.notify_waiters();
        }
    }

    /// Sends the reply of a call from the peer that has finished here.
    /// The call counts as unanswered until its reply is queued: a graceful
    /// shutdown that sees no call unanswered finds every reply queued. It
    /// counts against the in-flight limit until the writer takes the reply.
    fn finish(
        &self,
        call_id: u64,
        dispatch: &dyn Dispatch,
        trace: Option<TraceId>,
        result: Result<Vec<u8>, CallError>,
    ) {
        self.queue_outcome(call_id, dispatch, trace, result);
        self.answered_one();
    }

    /// Queues the reply frame of `result`.
    fn queue_outcome(
        &self,
        call_id: u64,
        dispatch: &dyn Dispatch,
        trace: Option<TraceId>,
        result: Result<Vec<u8>, CallError>,
    ) {
        let error = match result {
            Ok(reply) => match FrameBuf::from_inner(reply).finish(self.send_max()) {
                Ok(frame) => {
                    self.enqueue(&frame, Kind::Outcome);
                    return;
                }
                Err(e) => CallError::outcome_unknown(
                    dispatch.service(),
                    format!(
                        "{} ran, but its reply could not be sent: {e}",
                        dispatch.message()
                    ),
                ),
            },
            // The caller has stopped waiting; if the call was still in the
            // actor's mailbox, actix drops it unrun. The reply only frees
            // the caller's slot.
            Err(error @ CallError::TimedOut { .. }) => {
                Counters::count(&self.shared.counters.expired_in_service);
                call_span(dispatch.service(), dispatch.message(), call_id, trace)
                    .in_scope(|| tracing::debug!("call dropped: its deadline passed here"));
                error
            }
            Err(error) => error,
        };
        self.reply_error(
            call_id,
            ReplyStatus::Failed,
            &error,
            dispatch.service(),
            Kind::Outcome,
        );
    }

    /// `running`, recording a server span when it ends (span export is on).
    fn server_span(
        running: BoxFuture<Result<Vec<u8>, CallError>>,
        dispatch: &dyn Dispatch,
        trace: TraceId,
        call_id: u64,
        peer: &Arc<str>,
    ) -> BoxFuture<Result<Vec<u8>, CallError>> {
        let (service, message) = (dispatch.service(), dispatch.message());
        let peer = peer.to_string();
        let start = std::time::SystemTime::now();
        let started = std::time::Instant::now();
        Box::pin(async move {
            let result = running.await;
            crate::spans::record(crate::spans::SpanRecord {
                trace,
                span_id: crate::spans::server_span_id(call_id),
                parent: call_id,
                name: format!("{service}.{message}"),
                kind: crate::spans::SpanKind::Server,
                start,
                duration: started.elapsed(),
                attributes: vec![
                    ("boutique.service", service.into()),
                    ("boutique.message", message.into()),
                    ("boutique.peer", peer.into()),
                ],
                // As the caller's client span judges it: the service's
                // domain error is a failed call too.
                failed: match &result {
                    Ok(reply) => reply
                        .get(crate::transport::frame::REPLY_HEADER_LEN..)
                        .is_some_and(crate::codec::is_err_outcome),
                    Err(_) => true,
                },
            });
            result
        })
    }

    /// Fails calls whose frames never left, then every other waiting call.
    fn fail_pending(&self, unsent: &[QueuedRequest]) {
        let reason = self.reason();
        let mut pending = std::mem::take(&mut *lock(&self.pending));
        for request in unsent {
            if let Some(waiter) = pending.remove(&request.call_id).and_then(|e| e.waiter) {
                let _ = waiter.send(Err(LinkError::NotDelivered(Arc::clone(&reason))));
            }
        }
        for waiter in pending.into_values().filter_map(|e| e.waiter) {
            let _ = waiter.send(Err(LinkError::OutcomeUnknown(Arc::clone(&reason))));
        }
    }
}

/// The reply frame of call `call_id` with `status`, carrying `error`.
fn error_frame<T: serde::Serialize>(
    call_id: u64,
    status: ReplyStatus,
    error: &T,
    max_frame: usize,
) -> Result<Vec<u8>, String> {
    FrameBuf::reply(call_id, status)
        .encode(error)
        .map_err(|e| e.to_string())?
        .finish(max_frame)
        .map_err(|e| e.to_string())
}

/// When a call from the peer is answered: its reply queued already, or
/// once its actor has run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answered {
    Now,
    Later,
}

/// A call whose request is in the outbox or on the wire. Dropping it before
/// the reply came takes the call out of the connection's table.
pub(crate) struct PendingCall {
    connection: Arc<Connection>,
    call_id: u64,
    reply: ReplyReceiver,
    answered: bool,
}

impl PendingCall {
    /// Polls for the reply.
    pub(crate) fn poll_reply(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Reply, LinkError>> {
        use std::future::Future;
        use std::pin::Pin;
        use std::task::Poll;
        match Pin::new(&mut self.reply).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                self.answered = true;
                Poll::Ready(
                    result.unwrap_or_else(|_| {
                        Err(LinkError::OutcomeUnknown(self.connection.reason()))
                    }),
                )
            }
        }
    }
}

impl std::future::Future for PendingCall {
    type Output = Result<Reply, LinkError>;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.get_mut().poll_reply(cx)
    }
}

impl Drop for PendingCall {
    /// The caller stopped waiting: the reply, when it comes, is dropped,
    /// and frees the call's slot then.
    fn drop(&mut self) {
        if !self.answered
            && let Some(entry) = lock(&self.connection.pending).get_mut(&self.call_id)
        {
            entry.waiter = None;
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(connection: Arc<Connection>, mut reader: FrameReader<R>) {
    // Made as the node closed all its connections (a dial or an admission
    // under way): it would outlive the node. (Checked here, in a task of
    // its own, not where it was made: a lock may be held there that
    // closing takes. It was tracked before this task started, so either
    // the close found it, or this finds the flag.)
    if connection.shared.all_closed() {
        connection.close("this node has shut down");
        return;
    }
    let reason: String = loop {
        if connection.is_closed() {
            // Closed while frames read already were being handled (they
            // come without a pause at which the abort could stop this).
            return;
        }
        match reader.next().await.map(|body| body.map(Frame::parse)) {
            Ok(Some(Ok(Frame::Request { header, payload }))) => connection.serve(header, payload),
            Ok(Some(Ok(Frame::Reply {
                call_id,
                status,
                payload,
            }))) => {
                connection.complete(call_id, status, &payload);
            }
            // Its bytes were stamped as they arrived; nothing else to do.
            Ok(Some(Ok(Frame::Heartbeat))) => {}
            Ok(Some(Ok(Frame::Leaving))) => {
                tracing::info!(
                    node = %connection.shared.identity.node,
                    peer = %connection.peer.node,
                    "the peer is shutting down: no new calls go to it"
                );
                connection.stop_sending_calls();
            }
            Ok(Some(Ok(Frame::NoMoreCalls))) => {
                connection
                    .peer_sends_no_more_calls
                    .store(true, Ordering::Release);
                connection.no_more_calls.notify_waiters();
            }
            Ok(Some(Ok(Frame::Handshake { kind, .. }))) => {
                break format!("protocol error: a {kind:?} frame after the handshake");
            }
            Ok(Some(Err(e))) | Err(e) => break format!("protocol error: {e}"),
            Ok(None) => break format!("node '{}' closed the connection", connection.peer.node),
        }
    };
    connection.close(reason);
}

/// Runs the calls that arrived from the peer, all in one task: every call
/// that finishes in one round is queued before the writer next runs, so
/// their replies leave in one write.
async fn respond(connection: Arc<Connection>) {
    let mut running: FuturesUnordered<Delivery> = FuturesUnordered::new();
    std::future::poll_fn(|cx| {
        connection.responder.register(cx.waker());
        if connection.is_closed() {
            // Dropping the running calls cancels the ones not started yet.
            return std::task::Poll::Ready(());
        }
        running.extend(lock(&connection.arrived).drain(..));
        while let std::task::Poll::Ready(Some((call_id, dispatch, trace, result))) =
            running.poll_next_unpin(cx)
        {
            connection.finish(call_id, &*dispatch, trace, result);
        }
        std::task::Poll::Pending
    })
    .await;
}

async fn write_loop<W: AsyncWrite + Unpin>(connection: Arc<Connection>, mut writer: W) {
    let mut sending = Vec::new();
    'writing: loop {
        connection.writer_wanted.notified().await;
        loop {
            {
                let mut outbox = lock(&connection.outbox);
                if outbox.closed {
                    break 'writing;
                }
                std::mem::swap(&mut outbox.bytes, &mut sending);
                let mut batch = lock(&connection.batch);
                batch.requests.clear();
                std::mem::swap(&mut outbox.calls, &mut batch.requests);
                batch.written = 0;
                batch.len = sending.len();
                drop(batch);
                let replies = std::mem::take(&mut outbox.replies);
                if replies > 0 {
                    connection.owed.fetch_sub(replies, Ordering::AcqRel);
                }
                // Before the write: the peer cannot hear back before
                // these calls stop counting against its limit here.
                let ran = std::mem::take(&mut outbox.outcomes);
                if ran > 0 {
                    connection.serving.fetch_sub(ran, Ordering::AcqRel);
                }
            }
            if sending.is_empty() {
                break;
            }
            // Written piece by piece, each piece counted as it goes: the
            // liveness watcher tells a peer that reads slowly (progress)
            // from one that does not read at all (none).
            let mut start = 0;
            // The first request whose budget is not written yet.
            let mut unsent = 0;
            while start < sending.len() {
                let wrote = std::future::poll_fn(|cx| {
                    let mut batch = lock(&connection.batch);
                    // Closed (on another thread, before it read what the
                    // socket took: `closed` is set before it takes this
                    // lock): what it found unwritten must stay so, since
                    // its callers are told it was not delivered.
                    if connection.is_closed() {
                        return std::task::Poll::Ready(Err(std::io::Error::other(
                            "the connection was closed",
                        )));
                    }
                    let requests = &batch.requests[unsent..];
                    unsent += requests.partition_point(|r| r.at + REQUEST_BUDGET_AT < start);
                    stamp_budgets(&mut sending, &batch.requests[unsent..], start);
                    let wrote = std::pin::Pin::new(&mut writer).poll_write(cx, &sending[start..]);
                    if let std::task::Poll::Ready(Ok(written)) = wrote {
                        batch.written = start + written;
                    }
                    connection
                        .writer_blocked
                        .store(wrote.is_pending(), Ordering::Relaxed);
                    wrote
                })
                .await;
                let failure = match wrote {
                    Ok(0) => "the connection accepts no more bytes".to_owned(),
                    Ok(written) => {
                        start += written;
                        connection
                            .written_bytes
                            .fetch_add(written as u64, Ordering::AcqRel);
                        continue;
                    }
                    Err(e) => e.to_string(),
                };
                connection.close(format!(
                    "write to node '{}' failed: {failure}",
                    connection.peer.node
                ));
                break 'writing;
            }
            sending.clear();
            if sending.capacity() > KEEP_BUFFER_BYTES {
                sending = Vec::new();
            }
        }
        // The outbox is empty: what was written goes out now. A TLS stream
        // keeps up to its buffer of written bytes until flushed (tokio's
        // TCP stream has nothing to flush), and nothing else would send
        // them before this node's next frame: at worst the next heartbeat,
        // or never, for the last replies of a graceful shutdown.
        let written = connection.written_bytes.load(Ordering::Acquire);
        if let Err(e) = writer.flush().await {
            connection.close(format!(
                "write to node '{}' failed: {e}",
                connection.peer.node
            ));
            break 'writing;
        }
        connection.flushed_bytes.store(written, Ordering::Release);
        connection.wrote.notify_waiters();
    }
    // The writer stops only once the connection is closed, and `close`
    // fails the waiting calls, each by what the socket took of it. Not
    // again here: on another thread, in the middle of `close`, this took
    // the outbox first and failed every other call, the batch's unwritten
    // ones too, as *outcome unknown*.
    let _ = writer.shutdown().await;
}

/// Maps a link error to the caller's [`CallError`] for `service`.
pub(crate) fn call_error(service: &str, error: LinkError) -> CallError {
    match error {
        LinkError::NotDelivered(reason) => CallError::not_delivered(service, &*reason),
        LinkError::OutcomeUnknown(reason) => CallError::outcome_unknown(service, &*reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn what_the_writer_takes_is_flushed_to_the_socket() {
        use crate::fingerprint::Fingerprint;
        use crate::transport::handshake::{Identity, Secret};
        use tokio::io::AsyncReadExt;

        // A writer that keeps what it takes until flushed, as a TLS stream
        // keeps what the socket could not take yet.
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let (read_half, write_half) = tokio::io::split(ours);
        let writer = tokio::io::BufWriter::with_capacity(1 << 20, write_half);
        let identity = Identity {
            cluster: "boutique".into(),
            node: "a".into(),
            role: Role::Node,
            incarnation: 1,
            fingerprint: Fingerprint([0; 32]),
            max_in_flight: 16,
            max_frame: 4 * 1024 * 1024,
            heartbeat: Default::default(),
            secret: Arc::new(
                Secret::from_bytes("test", b"a secret of sixteen bytes".to_vec()).unwrap(),
            ),
        };
        let (_keep, shutdown) = tokio::sync::watch::channel(false);
        let stops = super::super::Stops {
            closed: shutdown.clone(),
            shutdown,
        };
        let shared = Arc::new(Shared::new(
            identity,
            super::super::Settings::from_config(&crate::config::RuntimeConfig::default()),
            stops,
            Arc::default(),
            super::super::access::Access::default(),
            None,
            crate::dispatch::DispatchTable::new(),
        ));
        let peer = PeerInfo {
            node: "b".into(),
            role: Role::Node,
            incarnation: 2,
            max_in_flight: 16,
            max_frame: 4 * 1024 * 1024,
            addr: "127.0.0.1:1".parse().unwrap(),
        };
        let first = b"the first bytes".to_vec();
        let connection = Connection::prepare(
            FrameReader::new(read_half, 1 << 20),
            writer,
            peer,
            false,
            shared,
            Some(first.clone()),
            None,
        )
        .start();

        // Unflushed, they stayed in the writer for good.
        let mut got = vec![0; first.len()];
        tokio::time::timeout(Duration::from_secs(10), theirs.read_exact(&mut got))
            .await
            .expect("the bytes written never reached the socket")
            .unwrap();
        assert_eq!(got, first);
        assert!(connection.flush(Duration::from_secs(10)).await);
        connection.close("the test is over".to_owned());
    }

    #[test]
    fn a_request_leaves_with_the_time_its_caller_has_left_then() {
        // Queued with a day's budget, as a caller whose deadline has since
        // passed (or is 5 s away) queued it.
        let mut bytes = Vec::new();
        let mut requests = Vec::new();
        for (call_id, deadline) in [
            (1, Deadline::after(Duration::ZERO)),
            (2, Deadline::after(Duration::from_secs(5))),
        ] {
            let at = bytes.len();
            let frame = FrameBuf::request(call_id, 42, 86_400_000_000)
                .encode("ping")
                .unwrap()
                .finish(1 << 20)
                .unwrap();
            bytes.extend_from_slice(&frame);
            requests.push(QueuedRequest {
                call_id,
                at,
                deadline,
            });
        }
        let budgets = |bytes: &[u8]| {
            let mut budgets = Vec::new();
            let mut rest = Bytes::copy_from_slice(bytes);
            while !rest.is_empty() {
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let body = rest.slice(4..4 + len);
                rest = rest.slice(4 + len..);
                match Frame::parse(body).unwrap() {
                    Frame::Request { header, payload } => {
                        assert_eq!(header.method, 42, "the rest of the header is untouched");
                        assert_eq!(crate::codec::decode::<String>(&payload).unwrap(), "ping");
                        budgets.push((header.call_id, header.budget_us));
                    }
                    other => panic!("{other:?}"),
                }
            }
            budgets
        };
        // The first frame handed to the socket already: only the second
        // is stamped (a field half sent must not change).
        stamp_budgets(&mut bytes, &requests, requests[1].at);
        let stamped = budgets(&bytes);
        assert_eq!(stamped[0], (1, 86_400_000_000));
        assert!(
            (4_900_000..=5_000_000).contains(&stamped[1].1),
            "{stamped:?}"
        );
        stamp_budgets(&mut bytes, &requests, 0);
        let budgets = budgets(&bytes);
        assert_eq!(budgets[0], (1, 0), "its caller has given up: run it not");
        assert_eq!(budgets[1].0, 2);
        assert!(
            (4_900_000..=5_000_000).contains(&budgets[1].1),
            "{budgets:?}"
        );
    }
}
