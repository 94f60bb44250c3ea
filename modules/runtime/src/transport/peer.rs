//! A peer: another node of the deployment, and the one connection to it.
//!
//! The connection is made lazily, by the first call. While it is up, calls
//! share it. When a dial fails or the connection is lost, the peer goes
//! *down*: calls fail at once with *not delivered* (they do not wait for their
//! deadline), while a background task redials with exponential backoff and
//! jitter until the peer is back, or until it dials us first.
//!
//! ```text
//!   Idle --first call--> Connecting --ok--> Up --lost--> Down --redial--> Connecting ...
//!                             \--failed--> Down
//! ```
//!
//! Both nodes may dial each other at the same moment. Exactly one connection
//! survives: the one dialed by the node whose name sorts first. The acceptor
//! applies the rule during the handshake, before any call uses either
//! connection, and refuses the loser as a `Duplicate`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::Shared;
use super::address::DialAddress;
use super::connection::{Connection, PendingCall, Reply, call_error};
use super::fault::{FaultSlot, Faulty};
use super::frame::{FrameBuf, FrameReader, ReplyStatus, RequestHeader};
use super::handshake::{self, HANDSHAKE_MAX_FRAME, HandshakeError, PeerInfo, Refusal};
use crate::call::CallMeta;
use crate::codec;
use crate::deadline::WithDeadline;
use crate::error::{CallError, Rejection};
use crate::service::{Outcome, Request, Service};
use crate::stats::Counters;

enum State {
    /// Never connected; the first call dials.
    Idle,
    /// A dial is in flight. During the first one, calls wait for it; during
    /// redials they fail fast with the last error.
    Connecting {
        first: bool,
        last_error: Option<Arc<str>>,
    },
    /// Connected.
    Up(Arc<Connection>),
    /// Unreachable; a redial is scheduled.
    Down { error: Arc<str> },
}

pub(crate) struct Peer {
    name: Arc<str>,
    /// Where to dial it; `None` when this node's config does not know (it
    /// listens on port 0 there). Such a peer cannot be dialled, but its
    /// connections to this node are admitted.
    addr: Option<DialAddress>,
    shared: Arc<Shared>,
    state: Mutex<State>,
    changed: Notify,
    this: Weak<Peer>,
    /// Connections installed since start (dialed or accepted).
    installed: AtomicU64,
    /// Which connector is the current one: each started takes the next
    /// number, and one that finds a newer one running stops.
    connector: AtomicU64,
    /// One permit per call that may be in flight to this peer.
    slots: Arc<Semaphore>,
    /// Calls on the slow path not yet sent (see [`Waiting`]).
    waiting: std::sync::atomic::AtomicUsize,
    /// How long connections to it have lived: a peer whose connections
    /// keep ending soon after they are made is redialled with backoff.
    lives: Mutex<Lives>,
}

/// When the current connection came up, and how many in a row ended
/// within `failure_timeout` of coming up.
#[derive(Debug, Default)]
struct Lives {
    up_since: Option<std::time::Instant>,
    short_in_a_row: u32,
}

impl Lives {
    /// A connection came up.
    fn up(&mut self) {
        self.up_since = Some(std::time::Instant::now());
    }

    /// The connection ended: how long to wait before dialing again. Zero
    /// after a connection that lived `failure_timeout` or more (a peer
    /// that restarts is dialled at once); after one that did not, or that
    /// never came up, `reconnect_min` doubling with each such in a row up
    /// to `reconnect_max`, jittered by 0.5x to 1.5x, so a peer that
    /// accepts and then drops every connection is not dialled in a loop.
    fn ended(&mut self, settings: &super::Settings) -> Duration {
        let lived = self.up_since.take().map(|since| since.elapsed());
        if lived.is_some_and(|lived| lived >= settings.failure_timeout) {
            self.short_in_a_row = 0;
            return Duration::ZERO;
        }
        self.short_in_a_row = self.short_in_a_row.saturating_add(1);
        let doublings = self.short_in_a_row.saturating_sub(1).min(16);
        let delay = settings
            .reconnect_min
            .saturating_mul(1 << doublings)
            .min(settings.reconnect_max);
        delay.mul_f64(rand::rng().random_range(0.5..1.5))
    }
}

/// How a call started (see [`Peer::start_call`]).
pub(crate) enum CallStart<M> {
    /// Queued on the connection.
    Sent(PendingCall),
    /// Not sent, and it will not be.
    Failed(CallError),
    /// The first connection is still to be made, every slot is taken, or
    /// calls made before wait to be sent: take the slow path, which waits
    /// (until the deadline). The guard keeps later calls behind it.
    Wait(M, CallMeta, Waiting),
}

/// A call on the slow path, not yet sent: while one is, later calls to the
/// peer take the slow path too, instead of being sent at once ahead of it
/// (calls from one caller keep their order, as the runtime promises). It
/// counts in [`Peer::waiting`] until it is sent or dropped.
pub(crate) struct Waiting(Arc<Peer>);

impl Waiting {
    fn new(peer: &Peer) -> Option<Waiting> {
        let peer = peer.this.upgrade()?;
        peer.waiting.fetch_add(1, Ordering::Relaxed);
        Some(Waiting(peer))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A scratch buffer larger than this is not kept for the next request.
const KEEP_SCRATCH_BYTES: usize = 1024 * 1024;

thread_local! {
    /// Where requests are encoded before they are queued, reused per thread.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What a request carries: the message, or its encoding (a call resent to
/// another replica is not encoded again).
pub(crate) enum Payload<'a, M> {
    Message(&'a M),
    Encoded(&'a [u8]),
}

/// Encodes `message` as a request frame and queues it on `connection`.
fn send<M: Request>(
    connection: &Arc<Connection>,
    message: Payload<'_, M>,
    meta: &CallMeta,
    slot: OwnedSemaphorePermit,
    caller: u64,
) -> Result<PendingCall, CallError> {
    let service = <M::Service as Service>::NAME;
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let buf = std::mem::take(&mut *scratch);
        let header = RequestHeader {
            call_id: meta.id.0,
            method: M::METHOD.0,
            // Written as the frame leaves (`connection::stamp_budgets`).
            budget_us: 0,
            caller,
            trace: meta.trace.to_u128(),
            parent: meta.parent,
        };
        let frame = FrameBuf::request_into(buf, header);
        let frame = match message {
            Payload::Message(message) => frame.encode(message).map_err(|e| {
                CallError::not_delivered(service, format!("{} could not be encoded: {e}", M::NAME))
            })?,
            Payload::Encoded(bytes) => {
                let mut frame = frame;
                frame.buf().extend_from_slice(bytes);
                frame
            }
        }
        .finish(connection.send_max());
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                return Err(CallError::not_delivered(
                    service,
                    format!("{} is too large to send: {e}", M::NAME),
                ));
            }
        };
        let sent = connection.send_request(meta.id.0, meta.deadline, &frame, Some(slot));
        // Kept for the next call unless one large call grew it: a thread
        // does not hold on to the largest frame it ever sent.
        if frame.capacity() <= KEEP_SCRATCH_BYTES {
            *scratch = frame;
        }
        sent.map_err(|e| call_error(service, e))
    })
}

/// Decodes a reply to `M`.
pub(crate) fn decode_reply<M: Request>(reply: Reply) -> Result<Outcome<M>, CallError> {
    let service = <M::Service as Service>::NAME;
    match reply.status {
        ReplyStatus::Outcome => codec::decode::<Outcome<M>>(&reply.payload).map_err(|e| {
            CallError::outcome_unknown(
                service,
                format!("{} ran, but its reply could not be decoded: {e}", M::NAME),
            )
        }),
        // The status alone says it did not run; only the reason is lost.
        ReplyStatus::Rejected => match codec::decode(&reply.payload) {
            Ok(rejection) => Err(CallError::rejected(service, rejection)),
            Err(e) => Err(CallError::rejected(
                service,
                Rejection::Unreadable {
                    detail: e.to_string(),
                },
            )),
        },
        ReplyStatus::Failed => match codec::decode::<CallError>(&reply.payload) {
            Ok(error) => Err(error),
            Err(e) => Err(CallError::outcome_unknown(
                service,
                format!("unreadable error: {e}"),
            )),
        },
    }
}

// Made once per dial and moved straight into a connection: its size is
// no cost worth a box.
#[allow(clippy::large_enum_variant)]
enum Dialed {
    Connected {
        reader: FrameReader<Faulty<super::ReadHalf>>,
        writer: Faulty<super::WriteHalf>,
        info: PeerInfo,
    },
    /// The peer already has a connection to us, or is making one.
    Duplicate,
}

impl Peer {
    pub(crate) fn new(name: &str, addr: Option<DialAddress>, shared: Arc<Shared>) -> Arc<Peer> {
        let slots = Arc::new(Semaphore::new(shared.settings.max_in_flight));
        Arc::new_cyclic(|this| Peer {
            name: Arc::from(name),
            addr,
            shared,
            state: Mutex::new(State::Idle),
            changed: Notify::new(),
            this: this.clone(),
            installed: AtomicU64::new(0),
            connector: AtomicU64::new(0),
            slots,
            waiting: std::sync::atomic::AtomicUsize::new(0),
            lives: Mutex::new(Lives::default()),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts dialing if nobody has yet (a peer is dialled on its first
    /// call; readiness checks want to know sooner).
    pub(crate) fn kick(&self) {
        let mut state = self.state();
        if matches!(&*state, State::Idle) && self.addr.is_some() {
            *state = State::Connecting {
                first: true,
                last_error: None,
            };
            drop(state);
            self.spawn_connector();
        }
    }

    /// The connection's state, for people: `up`, `leaving`, `connecting`,
    /// `down: WHY` or `idle` (never called yet).
    pub(crate) fn describe(&self) -> String {
        match &*self.state() {
            State::Idle => "idle".to_owned(),
            State::Up(connection) if connection.is_closed() => "down: connection lost".to_owned(),
            State::Up(connection) if connection.peer_is_leaving() => "leaving".to_owned(),
            State::Up(_) => "up".to_owned(),
            State::Connecting {
                last_error: None, ..
            } => "connecting".to_owned(),
            State::Connecting {
                last_error: Some(error),
                ..
            }
            | State::Down { error } => format!("down: {error}"),
        }
    }

    /// How many connections to this peer have been put in use since start.
    pub(crate) fn connections_installed(&self) -> u64 {
        self.installed.load(Ordering::Relaxed)
    }

    /// True unless the peer is known to be unreachable or leaving: worth
    /// choosing among replicas.
    pub(crate) fn is_available(&self) -> bool {
        match &*self.state() {
            State::Up(connection) => connection.takes_calls(),
            State::Idle | State::Connecting { first: true, .. } => true,
            State::Connecting { first: false, .. } | State::Down { .. } => false,
        }
    }

    /// True while this peer has never been called (idle) or the first
    /// dial to it is under way: the calls waiting for it hold no slot, so
    /// [`Peer::in_flight`] shows none, whatever may come of the dial.
    pub(crate) fn is_unsettled(&self) -> bool {
        matches!(
            &*self.state(),
            State::Idle | State::Connecting { first: true, .. }
        )
    }

    /// How many calls to this peer are in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.shared
            .settings
            .max_in_flight
            .saturating_sub(self.slots.available_permits())
    }

    /// True if a connection to this peer is up.
    pub(crate) fn is_up(&self) -> bool {
        matches!(&*self.state(), State::Up(c) if !c.is_closed())
    }

    /// True if a connection to this peer is up and the peer is not
    /// leaving: calls to it go through (what readiness and
    /// `boutique_peer_up` report).
    pub(crate) fn takes_calls(&self) -> bool {
        matches!(&*self.state(), State::Up(c) if c.takes_calls())
    }

    /// Starts a call without waiting: if the connection is up, the request
    /// is encoded and queued at once.
    pub(crate) fn start_call<M: Request>(
        &self,
        message: M,
        meta: CallMeta,
        caller: u64,
    ) -> CallStart<M> {
        let wait = |message, meta| match Waiting::new(self) {
            Some(waiting) => CallStart::Wait(message, meta, waiting),
            None => CallStart::Failed(self.unreachable::<M>("this node is shutting down")),
        };
        let connection = match &*self.state() {
            State::Up(connection) if connection.peer_is_leaving() => {
                return CallStart::Failed(self.unreachable::<M>("it is shutting down"));
            }
            State::Up(connection) if !connection.is_closed() => Arc::clone(connection),
            State::Idle | State::Connecting { first: true, .. } => {
                return wait(message, meta);
            }
            State::Up(_) => {
                return CallStart::Failed(self.unreachable::<M>("the connection was lost"));
            }
            State::Connecting { last_error, .. } => {
                let error = last_error
                    .clone()
                    .unwrap_or_else(|| Arc::from("reconnecting"));
                return CallStart::Failed(self.unreachable::<M>(&error));
            }
            State::Down { error } => return CallStart::Failed(self.unreachable::<M>(error)),
        };
        // Behind calls made before it that wait to be sent.
        if self.waiting.load(Ordering::Relaxed) > 0 {
            return wait(message, meta);
        }
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            return wait(message, meta);
        };
        match send::<M>(&connection, Payload::Message(&message), &meta, slot, caller) {
            Ok(call) => CallStart::Sent(call),
            Err(error) => CallStart::Failed(error),
        }
    }

    /// The connection to send a call to `M`'s service on, made or found by
    /// `deadline`; else the error the call fails with (*not delivered*).
    async fn connection_by<M: Request>(
        &self,
        deadline: crate::deadline::Deadline,
    ) -> Result<Arc<Connection>, CallError> {
        match WithDeadline::expecting_a_wait(self.connection(), deadline).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(self.unreachable::<M>(&error)),
            Err(_) => Err(CallError::not_delivered(
                <M::Service as Service>::NAME,
                format!("no connection to node '{}' before the deadline", self.name),
            )),
        }
    }

    fn unreachable<M: Request>(&self, why: &str) -> CallError {
        CallError::not_delivered(
            <M::Service as Service>::NAME,
            format!("node '{}' is unreachable: {why}", self.name),
        )
    }

    /// Sends `message` once the connection is up (the slow path of the
    /// first call, which may have to dial) and decodes the outcome.
    pub(crate) async fn call<M: Request>(
        &self,
        message: M,
        meta: CallMeta,
        caller: u64,
        waiting: Waiting,
    ) -> Result<Outcome<M>, CallError> {
        let service = <M::Service as Service>::NAME;
        // Encoded before any wait: the future holds bytes, not the message.
        let message = codec::encode(&message).map_err(|e| {
            CallError::not_delivered(service, format!("{} could not be encoded: {e}", M::NAME))
        })?;
        self.call_encoded::<M>(&message, meta, caller, Some(waiting))
            .await
    }

    /// [`Peer::call`] with the message already encoded.
    pub(crate) async fn call_encoded<M: Request>(
        &self,
        message: &[u8],
        meta: CallMeta,
        caller: u64,
        waiting: Option<Waiting>,
    ) -> Result<Outcome<M>, CallError> {
        let service = <M::Service as Service>::NAME;
        let budget = meta.remaining();
        let deadline = meta.deadline;
        let connection = self.connection_by::<M>(deadline).await?;
        let slot =
            match WithDeadline::expecting_a_wait(Arc::clone(&self.slots).acquire_owned(), deadline)
                .await
            {
                Ok(Ok(slot)) => slot,
                Ok(Err(_closed)) => return Err(self.unreachable::<M>("the node is shutting down")),
                Err(_) => {
                    Counters::count(&self.shared.counters.calls_overloaded);
                    return Err(CallError::overloaded(
                        service,
                        format!(
                            "{} calls to node '{}' were in flight (the limit) until the deadline",
                            self.shared.settings.max_in_flight, self.name
                        ),
                    ));
                }
            };
        // A connection or a slot that came at the deadline came too late:
        // the peer would drop the frame unrun, and the caller would hear
        // "timed out" (it may have run) of a call that surely did not.
        if deadline.has_passed() {
            Counters::count(&self.shared.counters.calls_overloaded);
            return Err(CallError::overloaded(
                service,
                format!(
                    "room to send it to node '{}' came only at its deadline: not sent",
                    self.name
                ),
            ));
        }
        // The connection closed while the call waited for a slot (its
        // calls' slots all came free at once): the one up now if the node
        // is back already, rather than a sure failure on the old; else it
        // fails at once, not delivered, saying the node is reconnecting.
        let connection = if connection.is_closed() {
            self.connection_by::<M>(deadline).await?
        } else {
            connection
        };
        let call = send::<M>(&connection, Payload::Encoded(message), &meta, slot, caller);
        // Sent (or not, for good): calls made after it may go at once.
        drop(waiting);
        let call = call?;
        match WithDeadline::expecting_a_wait(call, deadline).await {
            Ok(Ok(reply)) => decode_reply::<M>(reply),
            Ok(Err(error)) => Err(call_error(service, error)),
            Err(_) => Err(CallError::timed_out(service, budget)),
        }
    }

    /// The live connection, dialing it first if this is the first call.
    async fn connection(&self) -> Result<Arc<Connection>, Arc<str>> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.state();
                match &*state {
                    State::Up(connection) if connection.peer_is_leaving() => {
                        return Err(Arc::from("it is shutting down"));
                    }
                    State::Up(connection) if !connection.is_closed() => {
                        return Ok(Arc::clone(connection));
                    }
                    State::Up(_) => return Err(Arc::from("the connection was lost")),
                    State::Idle => {
                        *state = State::Connecting {
                            first: true,
                            last_error: None,
                        };
                        self.spawn_connector();
                    }
                    State::Connecting { first: true, .. } => {}
                    State::Connecting {
                        first: false,
                        last_error,
                    } => {
                        return Err(last_error
                            .clone()
                            .unwrap_or_else(|| Arc::from("reconnecting")));
                    }
                    State::Down { error } => return Err(Arc::clone(error)),
                }
            }
            changed.await;
        }
    }

    fn spawn_connector(&self) {
        self.spawn_connector_after(Duration::ZERO);
    }

    /// Starts a connector that waits `delay` before its first dial.
    fn spawn_connector_after(&self, delay: Duration) {
        if let Some(this) = self.this.upgrade() {
            let number = self.connector.fetch_add(1, Ordering::SeqCst) + 1;
            self.shared
                .spawn(async move { this.connector(number, delay).await });
        }
    }

    /// The connection installed in `state` ended: sets the state it leaves
    /// and returns how long to wait before dialing again ([`Lives::ended`]).
    /// Called with the state's lock held, so that a connection admitted
    /// meanwhile cannot be taken for the one that ended.
    ///
    /// Dialing at once, the peer is `Connecting`: a dial from it meanwhile
    /// is a crossing, which the naming rule settles the same way on both
    /// sides. Waiting first, it is `Down` until the wait is over: nothing
    /// dials from here meanwhile, so a dial from the peer is admitted.
    fn lost(&self, state: &mut State) -> Duration {
        let delay = self
            .lives
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .ended(&self.shared.settings);
        *state = if delay.is_zero() {
            State::Connecting {
                first: false,
                last_error: Some(Arc::from("the connection was lost; reconnecting")),
            }
        } else {
            tracing::debug!(node = %self.shared.identity.node, peer = %self.name, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "the connection ended soon after it was made; dialing again after a delay");
            State::Down {
                error: Arc::from(
                    "the connection was lost soon after it was made; dialing again shortly",
                ),
            }
        };
        delay
    }

    /// A connection to this peer came up.
    fn came_up(&self) {
        self.lives
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .up();
    }

    /// Dials until connected, backing off between failures. It is started
    /// on leaving `Idle` or `Up`, and only one runs at a time: one that
    /// wakes from its backoff to find a newer one started stops.
    async fn connector(self: Arc<Self>, number: u64, delay: Duration) {
        let settings = &self.shared.settings;
        let mut closed = self.shared.closed.clone();
        if !delay.is_zero() {
            tokio::select! {
                _ = closed.wait_for(|closed| *closed) => return self.stop_connecting(),
                _ = tokio::time::sleep(delay) => {}
            }
            // The peer may have dialed this node meanwhile, and a newer
            // connector may have taken over (its wait, its state).
            let mut state = self.state();
            if self.connector.load(Ordering::SeqCst) != number {
                return;
            }
            match &*state {
                State::Up(connection) if !connection.is_closed() => return,
                _ => {
                    *state = State::Connecting {
                        first: false,
                        last_error: Some(Arc::from("the connection was lost; reconnecting")),
                    }
                }
            }
        }
        let mut backoff = settings.reconnect_min;
        let mut failures = 0u32;
        loop {
            if self.connector.load(Ordering::SeqCst) != number {
                return;
            }
            let attempt = tokio::select! {
                biased;
                _ = closed.wait_for(|closed| *closed) => return self.stop_connecting(),
                attempt = self.dial() => attempt,
            };
            let error: Arc<str> = match attempt {
                Ok(Dialed::Connected {
                    reader,
                    writer,
                    info,
                }) => {
                    if self.connector.load(Ordering::SeqCst) != number {
                        // A newer connector dials as well (the connection
                        // was lost while this one dialed): the peer keeps
                        // the newest connection from this node and closes
                        // the older, so installing this one could leave
                        // each side holding the one the other closed.
                        // Dropped here, it closes.
                        return;
                    }
                    let connection = Connection::prepare(
                        reader,
                        writer,
                        info,
                        true,
                        Arc::clone(&self.shared),
                        None,
                        Some(self.this.clone()),
                    )
                    .start();
                    self.install_dialed(connection);
                    if failures > 0 {
                        tracing::info!(node = %self.shared.identity.node, peer = %self.name, "reconnected");
                    }
                    return;
                }
                // The peer is connecting to us, but this node is leaving
                // and takes no connections any more: its dial cannot
                // arrive. Dialed again after the backoff, once the peer's
                // own dial has failed.
                Ok(Dialed::Duplicate) if *self.shared.shutdown.borrow() => Arc::from(
                    "the peer refused a second connection while dialing this node, which is \
                     shutting down and takes none",
                ),
                Ok(Dialed::Duplicate) => {
                    // The peer is connecting to us; give it a moment to
                    // arrive, unless this node stops meanwhile (it would
                    // refuse the peer's connection: calls waiting for one
                    // fail now, not after the wait).
                    let arrived = tokio::select! {
                        biased;
                        _ = closed.wait_for(|closed| *closed) => return self.stop_connecting(),
                        arrived = self.wait_until_up(settings.connect_timeout) => arrived,
                    };
                    if arrived {
                        return;
                    }
                    Arc::from("the peer refused a second connection, but its own did not arrive")
                }
                Err(error) => error,
            };
            failures += 1;
            {
                let mut state = self.state();
                match &*state {
                    State::Up(connection) if !connection.is_closed() => return,
                    _ => {
                        *state = State::Down {
                            error: Arc::clone(&error),
                        }
                    }
                }
            }
            self.changed.notify_waiters();
            if failures == 1 {
                tracing::warn!(node = %self.shared.identity.node, peer = %self.name, %error, "peer unreachable; retrying with backoff");
            } else {
                tracing::debug!(node = %self.shared.identity.node, peer = %self.name, %error, failures, "peer still unreachable");
            }
            let jitter = rand::rng().random_range(0.5..1.5);
            tokio::select! {
                _ = closed.wait_for(|closed| *closed) => return self.stop_connecting(),
                _ = tokio::time::sleep(backoff.mul_f64(jitter)) => {}
            }
            if self.connector.load(Ordering::SeqCst) != number {
                return;
            }
            backoff = (backoff * 2).min(settings.reconnect_max);
            {
                let mut state = self.state();
                match &*state {
                    State::Up(connection) if !connection.is_closed() => return,
                    _ => {
                        *state = State::Connecting {
                            first: false,
                            last_error: Some(error),
                        }
                    }
                }
            }
        }
    }

    /// The connector stops as this node shuts down: calls waiting for a
    /// first connection fail now, as not delivered, not at their deadline.
    fn stop_connecting(&self) {
        {
            let mut state = self.state();
            if !matches!(&*state, State::Up(connection) if !connection.is_closed()) {
                *state = State::Down {
                    error: Arc::from("this node is shutting down"),
                };
            }
        }
        self.changed.notify_waiters();
    }

    pub(crate) async fn wait_until_up(&self, limit: Duration) -> bool {
        let deadline = crate::deadline::instant_after(limit);
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_up() {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.is_up();
            }
        }
    }

    /// True if this node knows where to dial the peer.
    pub(crate) fn has_address(&self) -> bool {
        self.addr.is_some()
    }

    /// One dial: TCP connect plus handshake.
    async fn dial(&self) -> Result<Dialed, Arc<str>> {
        let settings = &self.shared.settings;
        let Some(address) = &self.addr else {
            return Err(
                "its address is not known to this node (port 0 in this node's config)".into(),
            );
        };
        let stream = match address.connect(settings.connect_timeout).await {
            Ok(stream) => stream,
            // Says which address gave no answer, or that the name's lookup
            // took the time.
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(format!(
                    "{e} (connect_timeout_ms = {}); is it running, and reachable from here?",
                    settings.connect_timeout.as_millis()
                )
                .into());
            }
            Err(e) => return Err(format!("cannot connect to {address}: {e}").into()),
        };
        let addr = stream
            .peer_addr()
            .map_err(|e| format!("the connection to {address} failed at once: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (reader, writer) = match &self.shared.tls {
            None => super::split_plain(stream),
            Some(tls) => match tokio::time::timeout(
                settings.handshake_timeout,
                tls.connect(&self.name, stream),
            )
            .await
            {
                Ok(Ok(halves)) => halves,
                Ok(Err(e)) => return Err(format!("TLS with {addr} failed: {e}").into()),
                Err(_) => {
                    return Err(format!(
                        "the TLS handshake with {addr} took over {} ms",
                        settings.handshake_timeout.as_millis()
                    )
                    .into());
                }
            },
        };
        let slot = FaultSlot::new(OnceLock::from(self.shared.faults.peer(&self.name)));
        let mut writer = Faulty::new(writer, Arc::clone(&slot));
        let mut reader = FrameReader::new(Faulty::new(reader, slot), HANDSHAKE_MAX_FRAME);
        let handshake = handshake::dial(
            &mut reader,
            &mut writer,
            &self.shared.identity,
            Some(&self.name),
            addr,
        );
        match tokio::time::timeout(settings.handshake_timeout, handshake).await {
            Ok(Ok(info)) => {
                reader.set_max(settings.max_frame);
                Ok(Dialed::Connected {
                    reader,
                    writer,
                    info,
                })
            }
            Ok(Err(e)) if matches!(e.refusal(), Some(Refusal::Duplicate { .. })) => {
                Ok(Dialed::Duplicate)
            }
            // Reached, and refused (or refusing) for what it is: saying
            // so, and that trying again will not help until that changes,
            // not only that it is unreachable.
            Ok(Err(e)) => Err(match &e {
                HandshakeError::RefusedByPeer { refusal, .. } => format!(
                    "it answers at {addr} but refused this node: {refusal}; trying again will not \
                     help until that changes"
                ),
                HandshakeError::RefusedPeer { refusal, .. } => format!(
                    "it answers at {addr}, but this node refused it: {refusal}; trying again will \
                     not help until that changes"
                ),
                HandshakeError::Failed { .. } => e.to_string(),
            }
            .into()),
            Err(_) => Err(format!(
                "the handshake with {} took over {} ms",
                addr,
                settings.handshake_timeout.as_millis()
            )
            .into()),
        }
    }

    fn install_dialed(&self, connection: Arc<Connection>) {
        let (surplus, lost) = {
            let mut state = self.state();
            match &*state {
                State::Up(existing) if !existing.is_closed() => (Some(connection), None),
                // Closed before it could be installed: its close found it
                // not installed and left the state alone, so dial again
                // here, as for any lost connection. (A close from now on
                // finds it installed: the flag is set before the state is
                // looked at, and this holds the state's lock.)
                _ if connection.is_closed() => (None, Some(self.lost(&mut state))),
                _ => {
                    *state = State::Up(connection);
                    self.installed.fetch_add(1, Ordering::Relaxed);
                    self.came_up();
                    (None, None)
                }
            }
        };
        if let Some(surplus) = surplus {
            surplus.close("a connection to this node already exists");
        }
        self.changed.notify_waiters();
        if let Some(delay) = lost {
            if *self.shared.closed.borrow() {
                self.stop_connecting();
            } else {
                self.spawn_connector_after(delay);
            }
        }
    }

    /// Admits a connection this peer dialed to us, or says why not. On
    /// success the connection is started with `welcome` (the `Welcome`
    /// frame, with this node's proof) as its first frame.
    pub(crate) fn admit<R, W>(
        &self,
        info: PeerInfo,
        welcome: Vec<u8>,
        reader: FrameReader<R>,
        writer: W,
    ) -> Result<(), (Refusal, W)>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let me = self.shared.identity.node.as_str();
        let theirs_wins = &*info.node < me;
        let duplicate = || Refusal::Duplicate {
            dialer: info.node.to_string(),
            acceptor: me.to_owned(),
        };
        let (replaced, prepared) = {
            let mut state = self.state();
            let crossed = match &*state {
                // Ours and theirs crossed: the rule decides. (If theirs
                // replaces one they dialed themselves, they think it is dead.)
                State::Up(existing) => {
                    !existing.is_closed()
                        && existing.peer().incarnation == info.incarnation
                        && existing.dialed_by_us()
                }
                State::Connecting { .. } => true,
                _ => false,
            };
            if crossed && !theirs_wins {
                return Err((duplicate(), writer));
            }
            // Installed with the decision, started after the lock is let
            // go: a task that cannot start (the node's arbiter stopped)
            // closes the connection at once, which takes this lock.
            let prepared = Connection::prepare(
                reader,
                writer,
                info,
                false,
                Arc::clone(&self.shared),
                Some(welcome),
                Some(self.this.clone()),
            );
            self.installed.fetch_add(1, Ordering::Relaxed);
            self.came_up();
            let old = match std::mem::replace(
                &mut *state,
                State::Up(Arc::clone(prepared.connection())),
            ) {
                State::Up(old) => Some(old),
                _ => None,
            };
            (old, prepared)
        };
        prepared.start();
        if let Some(old) = replaced {
            old.close("replaced by a newer connection from the same node");
        }
        self.changed.notify_waiters();
        Ok(())
    }

    /// Called by a connection of this peer when it ends.
    pub(crate) fn connection_closed(&self, connection: &Arc<Connection>) {
        let lost = {
            let mut state = self.state();
            match &*state {
                State::Up(current) if Arc::ptr_eq(current, connection) => {
                    Some(self.lost(&mut state))
                }
                _ => None,
            }
        };
        if let Some(delay) = lost
            && !*self.shared.closed.borrow()
        {
            self.changed.notify_waiters();
            self.spawn_connector_after(delay);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_that_end_soon_are_redialled_with_backoff_and_long_ones_at_once() {
        let settings =
            super::super::Settings::from_config(&crate::config::RuntimeConfig::default());
        let (min, max) = (settings.reconnect_min, settings.reconnect_max);
        let mut lives = Lives::default();
        // Ended before it came up, then short-lived ones in a row: the
        // delay doubles from reconnect_min (jittered 0.5x to 1.5x) and
        // holds at reconnect_max.
        let mut delays = Vec::new();
        for _ in 0..12 {
            delays.push(lives.ended(&settings));
            lives.up();
        }
        // The defaults, 100 ms to 5 s, written out (not worked out as the
        // code does).
        const BASE_MS: [u64; 12] = [
            100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000, 5000, 5000,
        ];
        assert_eq!(
            (min, max),
            (Duration::from_millis(100), Duration::from_secs(5))
        );
        for (row, delay) in delays.iter().enumerate() {
            let base = Duration::from_millis(BASE_MS[row]);
            assert!(
                *delay >= base.mul_f64(0.5) && *delay <= base.mul_f64(1.5),
                "{row}: {delay:?} for {base:?}"
            );
        }
        assert!(delays[11] >= max.mul_f64(0.5), "{delays:?}");
        // One that lived failure_timeout: at once, and the row starts over.
        lives.up_since = Some(std::time::Instant::now() - settings.failure_timeout);
        assert_eq!(lives.ended(&settings), Duration::ZERO);
        lives.up();
        assert!(lives.ended(&settings) <= min.mul_f64(1.5));
    }
}
