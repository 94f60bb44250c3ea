//! A call as the receiving actor sees it: the message plus who sent it, its
//! call id and its deadline.
//!
//! Handlers are written for `Call<M>`, not for `M`, so that every handler can
//! log with its call id (the same id on both nodes of a remote call) and knows
//! how long its caller is willing to wait. `Call<M>` derefs to `M`, so the
//! message's fields are read as `call.field`.
//!
//! **Deadlines across hops.** Work a handler does inside
//! [`Call::scope`] (usually its whole response future) makes calls that wait
//! no longer than the call being handled: a call's deadline is the earlier of
//! its ref's timeout and the deadline of the call it is made for. A caller
//! that gives up therefore stops the whole tree of calls it started, and no
//! node works for an answer nobody waits for. Work that must finish even
//! so (a refund after a failed step, cleaning up after a commit) runs
//! inside [`detached`], with its refs' own timeouts.
//!
//! **Traces.** Every call belongs to a trace: the calls made inside
//! [`Call::scope`] (or [`detached`] work within it) carry the trace id of
//! the call being handled and name it as their parent, across nodes too
//! (both travel in the request). A call made outside any call starts a new
//! trace, and so does [`new_trace`] (the frontend wraps each HTTP request in
//! one). [`Call::span`] carries the trace id, so every line a handler logs
//! says which trace it belongs to, on whichever node it runs.
//!
//! ```ignore
//! impl Handler<Call<GetProduct>> for CatalogActor {
//!     type Result = Result<Product, CatalogError>;
//!     fn handle(&mut self, call: Call<GetProduct>, _: &mut Context<Self>) -> Self::Result {
//!         let _span = call.span().entered();
//!         self.find(&call.id)
//!     }
//! }
//! ```

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::deadline::Deadline;
use crate::service::{Request, Service};

/// Identifies one call. Unique within the node that made the call, and carried
/// across the network, so that both sides log the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

impl CallId {
    /// A fresh id, unique in this process: the thread's number in the top
    /// 24 bits, a per-thread counter below (no atomic operation per call).
    /// Thread numbers start at a random point in each process, so that
    /// the ids of two nodes' calls, which meet in one trace as span ids,
    /// do not repeat each other's (as they would if every process counted
    /// from 1).
    #[inline]
    pub fn next() -> Self {
        static THREADS: AtomicU64 = AtomicU64::new(0);
        thread_local! {
            static NEXT: Cell<u64> = const { Cell::new(0) };
        }
        NEXT.with(|next| {
            let mut id = next.get();
            if id & COUNTER_MASK == COUNTER_MASK || id == 0 {
                // First use on this thread, or the counter ran out: take a new
                // thread number.
                let thread = process_salt().wrapping_add(THREADS.fetch_add(1, Ordering::Relaxed));
                id = (thread & THREAD_MASK) << COUNTER_BITS;
            }
            id += 1;
            next.set(id);
            CallId(id)
        })
    }
}

/// Bits of a [`CallId`] that count calls within one thread.
const COUNTER_BITS: u32 = 40;
const COUNTER_MASK: u64 = (1 << COUNTER_BITS) - 1;
/// The thread number's bits, above the counter's.
const THREAD_MASK: u64 = (1 << (64 - COUNTER_BITS)) - 1;

/// A random number drawn once per process (odd, so never 0): the top half
/// of its trace ids, and where its call ids' thread numbers start.
#[inline]
fn process_salt() -> u64 {
    static SALT: OnceLock<u64> = OnceLock::new();
    *SALT.get_or_init(|| rand::random::<u64>() | 1)
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Identifies a trace: the tree of calls one request caused, on every
/// node. Shown as 32 hex digits (as W3C trace context does). Two halves
/// rather than a `u128`, which would double the alignment of every call's
/// metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId {
    /// The top half: the salt of the process that started the trace.
    pub high: u64,
    /// The bottom half: the id of the call (or request) that started it.
    pub low: u64,
}

impl TraceId {
    /// A fresh trace id: this process's random salt in the top half, a
    /// call id below (unique in the process; no random draw per call).
    #[inline]
    pub fn new() -> TraceId {
        TraceId::starting_at(CallId::next())
    }

    /// The trace that call `id`, made outside any trace, starts.
    #[inline]
    fn starting_at(id: CallId) -> TraceId {
        TraceId {
            high: process_salt(),
            low: id.0,
        }
    }

    /// The id of the span that started a trace made by [`new_trace`] (the
    /// HTTP request's, for the shop).
    pub fn root_span(self) -> u64 {
        self.low
    }

    /// As one number (on the wire).
    pub fn to_u128(self) -> u128 {
        (u128::from(self.high) << 64) | u128::from(self.low)
    }

    /// From one number (off the wire).
    pub fn from_u128(value: u128) -> TraceId {
        TraceId {
            high: (value >> 64) as u64,
            low: value as u64,
        }
    }
}

impl Default for TraceId {
    fn default() -> Self {
        TraceId::new()
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.high, self.low)
    }
}

/// Where a call came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A module in this process.
    Local,
    /// Another node of the deployment, by name (proven in the handshake,
    /// and by its certificate under TLS).
    Remote(Arc<str>),
    /// A client of the deployment (such as `boutique call`), by the name
    /// it gave itself: not a node's, whatever it says.
    Client(Arc<str>),
}

/// Everything about a call except the message itself.
#[derive(Debug, Clone)]
pub struct CallMeta {
    /// The call id; the caller's id when the call came over the network.
    pub id: CallId,
    /// When the caller stops waiting. Work done after this is wasted.
    pub deadline: Deadline,
    /// Who made the call.
    pub origin: Origin,
    /// The trace it belongs to.
    pub trace: TraceId,
    /// The id of the call it was made for, or 0. (Its parent span as
    /// exported is that call's span: the same id, or for a call served
    /// for another node, this node's server span for it.)
    pub parent: u64,
}

thread_local! {
    /// The deadline of the call whose work is being polled on this thread,
    /// if any (set by [`Scoped`]).
    static INHERITED: Cell<Option<Deadline>> = const { Cell::new(None) };
    /// The trace, and the call, that calls made on this thread now belong
    /// to, if any (set by [`Scoped`]).
    static TRACE: Cell<Option<Enclosing>> = const { Cell::new(None) };
}

/// The call whose work is being polled on this thread, as the calls made
/// for it see it.
#[derive(Debug, Clone, Copy)]
struct Enclosing {
    /// Its trace.
    trace: TraceId,
    /// Its call id (or the trace's root span): the `parent` of the calls
    /// made for it.
    call: u64,
    /// The span its work belongs to ([`CallMeta::span_id`]): the parent
    /// span of the calls made for it.
    span: u64,
}

/// The span id that a call made now on this thread, whose `parent` is
/// `parent`, names as its parent span in exported traces: the server span
/// of the call it was made for if that call came from another node (so
/// that server-side work sits under the server span), else `parent`. The
/// call's `parent` field, logged and sent, stays the call id, so that log
/// lines link by call ids across nodes.
pub(crate) fn parent_span(parent: u64) -> u64 {
    match TRACE.with(Cell::get) {
        Some(enclosing) if enclosing.call == parent => enclosing.span,
        _ => parent,
    }
}

impl CallMeta {
    /// Metadata for a new call made from here that must finish within
    /// `timeout`, or by the deadline of the call it is made for (inside
    /// [`CallMeta::scope`]), whichever is earlier.
    #[inline]
    pub fn local(timeout: Duration) -> Self {
        Self::local_with_budget(timeout).0
    }

    /// [`CallMeta::local`], and how long the call may wait: `timeout`,
    /// unless a deadline inherited from the call it is made for leaves
    /// less (then the time left until the earlier deadline).
    #[inline]
    pub(crate) fn local_with_budget(timeout: Duration) -> (Self, Duration) {
        let own = Deadline::after(timeout);
        let (deadline, inherited) = match INHERITED.with(Cell::get) {
            Some(inherited) if inherited < own => (inherited, true),
            Some(_) => (own, true),
            None => (own, false),
        };
        let budget = if inherited {
            deadline.remaining().min(timeout)
        } else {
            timeout
        };
        let id = CallId::next();
        let (trace, parent) = match TRACE.with(Cell::get) {
            Some(enclosing) => (enclosing.trace, enclosing.call),
            None => (TraceId::starting_at(id), 0),
        };
        let meta = CallMeta {
            id,
            deadline,
            origin: Origin::Local,
            trace,
            parent,
        };
        (meta, budget)
    }

    /// Runs `work` as part of this call: calls that `work` makes wait no
    /// longer than this call's deadline.
    pub fn scope<F: Future>(&self, work: F) -> Scoped<F> {
        Scoped {
            work,
            deadline: Within::Own(self.deadline),
            trace: Some(Enclosing {
                trace: self.trace,
                call: self.id.0,
                span: self.span_id(),
            }),
        }
    }

    /// The span the work done for this call belongs to: the call's own
    /// (client) span for a call made in this process; for a call from
    /// another node, the server span this node records for it.
    pub fn span_id(&self) -> u64 {
        match self.origin {
            Origin::Local => self.id.0,
            Origin::Remote(_) | Origin::Client(_) => crate::spans::server_span_id(self.id.0),
        }
    }

    /// Time left before the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.remaining()
    }
}

/// A message `M` in flight to its service's actor, with its [`CallMeta`].
pub struct Call<M> {
    message: M,
    meta: CallMeta,
}

impl<M: Request> Call<M> {
    /// Wraps a message. The runtime does this; tests of a single actor may too.
    pub fn new(message: M, meta: CallMeta) -> Self {
        Call { message, meta }
    }

    /// The call's metadata.
    pub fn meta(&self) -> &CallMeta {
        &self.meta
    }

    /// The call id.
    pub fn id(&self) -> CallId {
        self.meta.id
    }

    /// Takes the message out, dropping the metadata.
    pub fn into_message(self) -> M {
        self.message
    }

    /// Splits the call into message and metadata.
    pub fn into_parts(self) -> (M, CallMeta) {
        (self.message, self.meta)
    }

    /// Runs `work` as part of this call: calls that `work` makes wait no
    /// longer than this call's deadline (see the module docs).
    ///
    /// ```ignore
    /// let catalog = self.catalog.clone();
    /// Box::pin(call.scope(async move { catalog.call(ListProducts {}).await }))
    /// ```
    pub fn scope<F: Future>(&self, work: F) -> Scoped<F> {
        self.meta.scope(work)
    }

    /// A `tracing` span carrying the module, message and call id, for the
    /// handler to enter so that its log lines carry them as fields.
    ///
    /// At level ERROR, though it marks no error: a span is filtered by its
    /// own level and target (`runtime::call`), not by the lines inside it,
    /// so at INFO a filter such as `warn,cart=debug` turned it off and the
    /// cart's debug lines came without their call's fields. A span writes
    /// no line of its own.
    pub fn span(&self) -> tracing::Span {
        tracing::error_span!(
            "call",
            module = <M::Service as Service>::NAME,
            message = M::NAME,
            call_id = self.meta.id.0,
            trace_id = %self.meta.trace,
        )
    }
}

/// The span of call `call_id` to `message` of `module`, for the runtime's
/// own lines about a call outside its handler (refused, dropped, failed
/// over): [`Call::span`]'s name and fields, with the trace id if the call
/// came with one (so that a request that failed can be followed to the
/// node that turned its call away). An event cannot carry a field named
/// `message` itself, which is its text's name (JSON logs then had two
/// `message` keys, and kept one).
pub(crate) fn call_span(
    module: &'static str,
    message: &'static str,
    call_id: u64,
    trace: Option<TraceId>,
) -> tracing::Span {
    let span = tracing::error_span!(
        "call",
        module,
        message,
        call_id,
        trace_id = tracing::field::Empty
    );
    if let Some(trace) = trace {
        span.record("trace_id", tracing::field::display(trace));
    }
    span
}

/// Runs `work` outside any call's deadline: the calls it makes wait as
/// long as their refs' timeouts, even inside a [`Call::scope`]. For work
/// that must be done even if the caller has given up, like a refund.
pub fn detached<F: Future>(work: F) -> Scoped<F> {
    Scoped {
        work,
        deadline: Within::Detached,
        // Still part of whatever trace encloses it.
        trace: None,
    }
}

/// The trace of the work being polled on this thread, if it is part of
/// one ([`new_trace`], a call's [`Call::scope`]): for saying it where no
/// call carries it, such as a response written by a layer inside.
pub fn current_trace() -> Option<TraceId> {
    TRACE.with(Cell::get).map(|enclosing| enclosing.trace)
}

/// Runs `work` as a new trace: the calls it makes (and the calls those
/// make, on any node) carry a fresh trace id, returned with the future,
/// and name the trace's root span (id: [`TraceId::root_span`]) as their
/// parent. For the start of a request from outside, like an HTTP request.
/// Inside a call's scope, the call's deadline still holds.
pub fn new_trace<F: Future>(work: F) -> (TraceId, Scoped<F>) {
    let trace = TraceId::new();
    let scoped = Scoped {
        work,
        deadline: Within::Inherited,
        trace: Some(Enclosing {
            trace,
            call: trace.root_span(),
            span: trace.root_span(),
        }),
    };
    (trace, scoped)
}

pin_project_lite::pin_project! {
    /// Work done for a call (see [`Call::scope`]): while it is polled,
    /// calls it makes inherit the call's deadline. Or work [`detached`]
    /// from any.
    pub struct Scoped<F> {
        #[pin]
        work: F,
        deadline: Within,
        // The trace and the parent call for calls made inside; `None`:
        // whatever encloses it.
        trace: Option<Enclosing>,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Nested scopes keep the earliest deadline; the outer one is put
        // back afterwards.
        let outer = INHERITED.with(Cell::get);
        let deadline = match (outer, *this.deadline) {
            (Some(outer), Within::Own(own)) => Some(outer.min(own)),
            (None, Within::Own(own)) => Some(own),
            (outer, Within::Inherited) => outer,
            // No deadline, whatever encloses it.
            (_, Within::Detached) => None,
        };
        INHERITED.with(|current| current.set(deadline));
        let outer_trace = TRACE.with(Cell::get);
        if let Some(trace) = *this.trace {
            TRACE.with(|current| current.set(Some(trace)));
        }
        // Put back when the poll ends, even by a panic: a panicking task
        // is caught by the executor and the thread goes on, and must not
        // go on with this call's deadline and trace (every later call on
        // it would inherit them, and fail once the deadline passed).
        let _restore = Restore {
            deadline: outer,
            trace: outer_trace,
        };
        this.work.poll(cx)
    }
}

/// The deadline of the calls a [`Scoped`] makes.
#[derive(Debug, Clone, Copy)]
enum Within {
    /// Its own, or an enclosing scope's if that is earlier.
    Own(Deadline),
    /// An enclosing scope's, if any.
    Inherited,
    /// None, whatever encloses it.
    Detached,
}

/// Puts the thread's inherited deadline and trace back as they were
/// before a [`Scoped`] poll, when dropped.
struct Restore {
    deadline: Option<Deadline>,
    trace: Option<Enclosing>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        INHERITED.with(|current| current.set(self.deadline));
        TRACE.with(|current| current.set(self.trace));
    }
}

impl<M> Deref for Call<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.message
    }
}

impl<M: fmt::Debug> fmt::Debug for Call<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("message", &self.message)
            .field("meta", &self.meta)
            .finish()
    }
}

impl<M: Request> actix::Message for Call<M> {
    type Result = Result<M::Reply, <M::Service as Service>::Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parent that a call made inside `meta.scope` names: in its
    /// metadata (logged, sent), and as its exported span's parent.
    fn parents_inside(meta: &CallMeta) -> (u64, u64) {
        let mut inside = Box::pin(meta.scope(async {
            let made = CallMeta::local(Duration::from_secs(1));
            (made.clone(), parent_span(made.parent))
        }));
        let mut context = Context::from_waker(std::task::Waker::noop());
        match inside.as_mut().poll(&mut context) {
            Poll::Ready((made, span_parent)) => {
                assert_eq!(made.trace, meta.trace, "the same trace");
                (made.parent, span_parent)
            }
            Poll::Pending => unreachable!("the work does not wait"),
        }
    }

    #[test]
    fn calls_made_for_a_call_name_it_and_the_span_of_its_work() {
        // A call made here: its id, which is its own (client) span.
        let local = CallMeta::local(Duration::from_secs(1));
        assert_eq!(parents_inside(&local), (local.id.0, local.id.0));
        // A call from another node: its id (log lines link by call ids),
        // and as a span, the server span this node records for it (not
        // the caller's client span).
        let remote = CallMeta {
            origin: Origin::Remote(Arc::from("web")),
            ..CallMeta::local(Duration::from_secs(1))
        };
        assert_eq!(
            parents_inside(&remote),
            (remote.id.0, crate::spans::server_span_id(remote.id.0))
        );
        assert_eq!(remote.span_id(), crate::spans::server_span_id(remote.id.0));
        assert_ne!(remote.span_id(), remote.id.0, "the caller's client span");
        // The server span of call 1, written down: the id rotated by half,
        // mixed with the golden ratio's bits.
        assert_eq!(crate::spans::server_span_id(1), 0x9E37_79B8_7F4A_7C15);
    }

    /// The deadline and trace of a call made inside `work`, polled once.
    fn made_inside<F: Future<Output = CallMeta>>(work: F) -> CallMeta {
        let mut work = Box::pin(work);
        let mut context = Context::from_waker(std::task::Waker::noop());
        match work.as_mut().poll(&mut context) {
            Poll::Ready(made) => made,
            Poll::Pending => unreachable!("the work does not wait"),
        }
    }

    #[test]
    fn a_new_trace_inside_a_call_keeps_its_deadline_and_detached_work_does_not() {
        let outer = CallMeta::local(Duration::from_millis(500));
        let long = || async { CallMeta::local(Duration::from_secs(60)) };
        // A new trace: a fresh trace id, the enclosing call's deadline (it
        // had none, as detached work has).
        let made = made_inside(outer.scope(async {
            let (trace, traced) = new_trace(long());
            let made = traced.await;
            assert_eq!(made.trace, trace);
            made
        }));
        assert_ne!(made.trace, outer.trace);
        assert_eq!(made.deadline, outer.deadline);
        // Detached: its own time, in the enclosing trace.
        let made = made_inside(outer.scope(detached(long())));
        assert_eq!(made.trace, outer.trace);
        assert!(made.deadline > outer.deadline);
    }

    // The service makes a message; no actor is started (its `start` and
    // `create` go unused).
    #[allow(dead_code)]
    mod pinger {
        #[derive(Debug, serde::Serialize, serde::Deserialize)]
        pub struct Ping {}

        #[derive(
            Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, thiserror::Error,
        )]
        #[error("never")]
        pub struct Never;

        crate::service! {
            /// One message.
            pub Pinger = "pinger", error Never {
                Ping -> crate::Empty,
            }
        }
    }

    /// Under a filter that keeps warnings and one module's debug lines
    /// (`warn,cart=debug`, as the config's docs suggest), a call's span is
    /// still there to give those lines their call's fields.
    #[test]
    fn a_calls_span_is_kept_under_a_filter_of_warnings() {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn,cart=debug"))
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let meta = CallMeta::local(Duration::from_secs(1));
            let call = Call::new(pinger::Ping {}, meta);
            assert!(!call.span().is_disabled());
        });
    }
}
