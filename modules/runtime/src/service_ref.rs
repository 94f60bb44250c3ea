//! `ServiceRef<S>`: the only way one module reaches another.
//!
//! A `ServiceRef` is cheap to clone (two `Arc`s at most), `Send + Sync`, and knows one
//! of three routes, fixed when the node starts:
//!
//! - **local**: straight into the actor's actix mailbox, through its
//!   [`Endpoint`]. No serialization; per call, only what actix itself does
//!   (one envelope, one oneshot, one queue node) plus a call id, a trace
//!   id, a deadline and the call's count in the metrics.
//! - **serialized**: local, but the message and the reply go through the
//!   codec and the same dispatcher a remote node uses. A test mode that
//!   catches a message that is not really serializable.
//! - **remote**: encoded and sent to the node that hosts the service.
//!
//! Every call has a deadline: the ref's timeout (from the config, or
//! [`with_timeout`](ServiceRef::with_timeout)) counted from the call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::call::{Call, CallMeta};
use crate::call_metrics::{CallMetrics, Probe, RefMetrics};
use crate::codec;
use crate::deadline::{Deadline, Elapsed, WithDeadline};
use crate::dispatch::dispatch_encoded;
use crate::endpoint::Endpoint;
use crate::error::CallError;
use crate::service::{Outcome, Request, Service};
use crate::supervise::Slot;
use crate::transport::connection::{PendingCall, call_error};
use crate::transport::frame::{FrameError, PREFIX_LEN, REPLY_HEADER_LEN, REQUEST_HEADER_LEN};
use crate::transport::peer::{CallStart, Peer, decode_reply};
use crate::transport::replicas::Replicas;
use pin_project_lite::pin_project;

/// The deadline a call gets when nobody chose one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle to service `S`, wherever it runs.
pub struct ServiceRef<S: Service> {
    route: Arc<Route<S>>,
    timeout: Duration,
    /// The module calling through this ref, on the wire (0: a client).
    caller: u64,
    /// Where its calls are counted, if anywhere (refs a node hands out).
    metrics: Option<Arc<RefMetrics>>,
}

enum Route<S> {
    /// The endpoints the module started with (the fast path), and the slot
    /// that holds the current ones after a restart.
    Local {
        first: S,
        slot: Arc<Slot<S>>,
        /// The module's replicas on other nodes, for calls the local
        /// actor cannot take while it is restarted.
        others: Option<Arc<Replicas>>,
    },
    /// Through the codec, with frames of at most `max_frame` bytes.
    Serialized {
        slot: Arc<Slot<S>>,
        max_frame: usize,
    },
    Remote(Arc<Peer>),
    Replicated(Arc<Replicas>),
}

/// Where the calls of a [`ServiceRef`] go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Into an actor of this process.
    Local,
    /// Into an actor of this process, through the codec.
    Serialized,
    /// To another node.
    Remote {
        /// The node's name.
        node: String,
    },
    /// To one of the nodes that run a replica.
    Replicated {
        /// Their names.
        nodes: Vec<String>,
    },
}

impl<S: Service> Clone for ServiceRef<S> {
    fn clone(&self) -> Self {
        ServiceRef {
            route: Arc::clone(&self.route),
            timeout: self.timeout,
            caller: self.caller,
            metrics: self.metrics.clone(),
        }
    }
}

impl<S: Service> fmt::Debug for ServiceRef<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceRef")
            .field("service", &S::NAME)
            .field("location", &self.location())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<S: Service> ServiceRef<S> {
    /// A local ref to the actor behind `endpoints`.
    pub fn local(endpoints: S) -> Self {
        Self::from_slot(Slot::new(endpoints), None, None)
    }

    /// A local ref whose calls go through the codec both ways, as calls
    /// between nodes do, with the default frame limit
    /// ([`RuntimeConfig::max_frame_bytes`](crate::config::RuntimeConfig)).
    pub fn serialized(endpoints: S) -> Self {
        let max_frame = crate::config::RuntimeConfig::default().max_frame_bytes;
        Self::from_slot(Slot::new(endpoints), Some(max_frame), None)
    }

    /// A local ref to whichever actor `slot` holds when a call is made
    /// (supervised modules: see `supervise`); through the codec, with
    /// frames of at most `serialized` bytes, if that is given. A call the
    /// actor cannot take (it is being restarted) goes to one of `others`,
    /// the module's replicas on other nodes, if it may (not through the
    /// codec: that test mode fails it as not delivered). Such a call is
    /// counted as local in the metrics, where it was made.
    pub(crate) fn from_slot(
        slot: Arc<Slot<S>>,
        serialized: Option<usize>,
        others: Option<Arc<Replicas>>,
    ) -> Self {
        Self::with_route(match serialized {
            Some(max_frame) => Route::Serialized { slot, max_frame },
            None => Route::Local {
                first: S::clone(&slot.load()),
                slot,
                others,
            },
        })
    }

    pub(crate) fn remote(peer: Arc<Peer>) -> Self {
        Self::with_route(Route::Remote(peer))
    }

    pub(crate) fn replicated(replicas: Replicas) -> Self {
        Self::with_route(Route::Replicated(Arc::new(replicas)))
    }

    fn with_route(route: Route<S>) -> Self {
        ServiceRef {
            route: Arc::new(route),
            timeout: DEFAULT_TIMEOUT,
            caller: 0,
            metrics: None,
        }
    }

    /// The same ref, with calls that wait at most `timeout`: the per-call
    /// deadline of the design, as a ref (cheap: `r.with_timeout(d).call(m)`).
    /// A call made for another (inside [`crate::Call::scope`]) still ends by
    /// that one's deadline, if it is sooner.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        ServiceRef {
            route: Arc::clone(&self.route),
            timeout,
            caller: self.caller,
            metrics: self.metrics.clone(),
        }
    }

    /// The same ref, whose calls say that `module` makes them (on the wire,
    /// and in the metrics).
    pub(crate) fn calling_as(&self, module: &'static str) -> Self {
        ServiceRef {
            route: Arc::clone(&self.route),
            timeout: self.timeout,
            caller: crate::transport::frame::caller_id(module),
            metrics: self
                .metrics
                .as_ref()
                .map(|metrics| metrics.for_caller::<S>(module)),
        }
    }

    /// The same ref, with its calls counted in `metrics` as made by
    /// `caller`; a ref counted already stays as it is.
    pub(crate) fn measured(&self, metrics: &Arc<CallMetrics>, caller: &'static str) -> Self {
        if self.metrics.is_some() {
            return self.clone();
        }
        let location = match &*self.route {
            Route::Local { .. } => "local",
            Route::Serialized { .. } => "serialized",
            Route::Remote(_) | Route::Replicated(_) => "remote",
        };
        ServiceRef {
            metrics: Some(metrics.for_ref::<S>(caller, location)),
            ..self.clone()
        }
    }

    /// How long a call waits for its answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Where calls go.
    pub fn location(&self) -> Location {
        match &*self.route {
            Route::Local { .. } => Location::Local,
            Route::Serialized { .. } => Location::Serialized,
            Route::Remote(peer) => Location::Remote {
                node: peer.name().to_owned(),
            },
            Route::Replicated(replicas) => Location::Replicated {
                nodes: replicas.nodes(),
            },
        }
    }

    /// Sends `message` to the service; the future resolves to its outcome.
    ///
    /// The outer `Result` is the call, the inner one the service's answer.
    /// Only messages of `S` compile here.
    ///
    /// Await the future. When it is first polled is not the same on every
    /// route: a local call and a remote one with a connection up and room
    /// for it are queued when this is called; a call that goes through the
    /// codec in-process, to a replicated module, or to a node not yet
    /// connected (or with every in-flight slot taken) is sent only once
    /// polled. So a future dropped unpolled is a call that may or may not
    /// have been sent, depending on where the service runs; and a call
    /// dropped after it was sent may still run (the handler is not told).
    ///
    /// The deadline and the trace are those of the call this one is made
    /// for (see [`crate::Call::scope`]), taken when this is called: make
    /// the call inside the scope, not only await it there. Await it on the
    /// runtime's threads: a call awaited inside `spawn_blocking`, or under
    /// `Handle::block_on`, is not swept at its deadline (docs/runtime.md).
    pub fn call<M>(&self, message: M) -> CallFuture<M>
    where
        M: Request<Service = S>,
    {
        // The budget is shorter than the ref's timeout when the deadline
        // is inherited from the call this one is made for.
        let (meta, budget) = CallMeta::local_with_budget(self.timeout);
        let probe = match &self.metrics {
            Some(metrics) => metrics.probe(M::INDEX, &meta),
            None => None,
        };
        CallFuture {
            state: self.start(message, meta, budget),
            probe,
        }
    }

    // Inlined into `call`, its only caller, so that the state is built
    // where the future is (it is moved with every call otherwise).
    #[inline]
    fn start<M>(&self, message: M, meta: CallMeta, budget: Duration) -> CallState<M>
    where
        M: Request<Service = S>,
    {
        // Made for a call whose time is up: sent nowhere (a remote peer
        // would drop it unrun on arrival; a local actor would run it for
        // nobody). Not delivered, as it surely was not: a caller that
        // charged a card before must know that this call did not run.
        if budget.is_zero() {
            return CallState::failed(CallError::not_delivered(
                S::NAME,
                "no time was left for it: the call it was made for is past its deadline, so it \
                 was not sent",
            ));
        }
        match &*self.route {
            Route::Local {
                first,
                slot,
                others,
            } => {
                let deadline = meta.deadline;
                match M::endpoint(first).enqueue(Call::new(message, meta)) {
                    Ok(reply) => CallState::waiting(reply, deadline, budget),
                    // The first actor is gone: whichever the supervisor
                    // started since.
                    Err(call) => match M::endpoint(&slot.load()).enqueue(call) {
                        Ok(reply) => CallState::waiting(reply, deadline, budget),
                        Err(call) => local_down(call, others.as_ref(), self.caller),
                    },
                }
            }
            Route::Serialized { slot, max_frame } => {
                // Queued now, as a local or remote call is, not when first
                // polled: calls keep the order they were made in.
                match serialized_call(M::endpoint(&slot.load()), message, meta, budget, *max_frame)
                {
                    Ok(reply) => {
                        let max_frame = *max_frame;
                        CallState::Boxed {
                            future: Box::pin(async move {
                                serialized_reply::<M>(reply.await?, max_frame)
                            }),
                        }
                    }
                    Err(error) => CallState::failed(error),
                }
            }
            Route::Remote(peer) => {
                let deadline = meta.deadline;
                match peer.start_call(message, meta, self.caller) {
                    CallStart::Sent(call) => CallState::Remote {
                        reply: WithDeadline::expecting_a_wait(call, deadline),
                        budget,
                    },
                    CallStart::Failed(error) => CallState::failed(error),
                    CallStart::Wait(message, meta, waiting) => {
                        let peer = Arc::clone(peer);
                        let caller = self.caller;
                        CallState::Boxed {
                            future: Box::pin(async move {
                                peer.call(message, meta, caller, waiting).await
                            }),
                        }
                    }
                }
            }
            Route::Replicated(replicas) => {
                let replicas = Arc::clone(replicas);
                let caller = self.caller;
                CallState::Boxed {
                    future: Box::pin(replicas.call(message, meta, caller)),
                }
            }
        }
    }
}

pin_project! {
    /// The outcome of a call, once it comes (see [`ServiceRef::call`]).
    /// Dropped before then, the call is counted as cancelled.
    #[must_use = "await it: whether a call never polled is sent depends on where the service runs"]
    pub struct CallFuture<M: Request> {
        #[pin]
        state: CallState<M>,
        probe: Option<Probe>,
    }

    impl<M: Request> PinnedDrop for CallFuture<M> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(probe) = this.project().probe.take() {
                probe.cancelled();
            }
        }
    }
}

pin_project! {
    #[project = CallStateProj]
    enum CallState<M: Request> {
        // In the actor's mailbox.
        Local {
            #[pin]
            reply: WithDeadline<oneshot::Receiver<Outcome<M>>>,
            budget: Duration,
        },
        // Queued on a connection to another node.
        Remote {
            #[pin]
            reply: WithDeadline<PendingCall>,
            budget: Duration,
        },
        // Failed before it was sent. (Boxed: the state is as large as its
        // largest variant, and moved with every call.)
        Failed {
            error: Option<Box<CallError>>,
        },
        // On a route that needs its own future (serialized, or a first dial).
        Boxed {
            future: Pin<Box<dyn Future<Output = Result<Outcome<M>, CallError>> + Send>>,
        },
    }
}

impl<M: Request> CallFuture<M> {
    fn new(state: CallState<M>) -> Self {
        CallFuture { state, probe: None }
    }
}

impl<M: Request> CallState<M> {
    /// Waiting for a local actor's reply until `deadline`, `budget` away.
    #[inline]
    fn waiting(reply: oneshot::Receiver<Outcome<M>>, deadline: Deadline, budget: Duration) -> Self {
        CallState::Local {
            reply: WithDeadline::new(reply, deadline),
            budget,
        }
    }

    fn failed(error: CallError) -> Self {
        CallState::Failed {
            error: Some(Box::new(error)),
        }
    }
}

impl<M: Request> Future for CallFuture<M> {
    type Output = Result<Outcome<M>, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // In tail position: the outcome is written where the caller wants
        // it, not copied there.
        poll_state(this.state, this.probe, cx)
    }
}

/// Polls the call's state; when it ends, tells `probe` how.
#[inline]
fn poll_state<M: Request>(
    state: Pin<&mut CallState<M>>,
    probe: &mut Option<Probe>,
    cx: &mut Context<'_>,
) -> Poll<Result<Outcome<M>, CallError>> {
    let service = <M::Service as Service>::NAME;
    match state.project() {
        CallStateProj::Local { reply, budget } => match reply.poll(cx) {
            Poll::Pending => Poll::Pending,
            // The common case, kept apart so that the outcome is moved once.
            Poll::Ready(Ok(Ok(outcome))) => {
                if let Some(probe) = probe.take() {
                    probe.answered(outcome.is_ok());
                }
                Poll::Ready(Ok(outcome))
            }
            Poll::Ready(Ok(Err(_))) => ended(
                probe,
                Err(CallError::outcome_unknown(
                    service,
                    "no answer came: its handler panicked, or the module's actor went down before it (a panic in a handler queued ahead, logged where it ran; the module is being restarted), and whether this call ran is not known",
                )),
            ),
            Poll::Ready(Err(Elapsed)) => ended(probe, Err(CallError::timed_out(service, *budget))),
        },
        CallStateProj::Remote { reply, budget } => match reply.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Ok(reply))) => ended(probe, decode_reply::<M>(reply)),
            Poll::Ready(Ok(Err(error))) => ended(probe, Err(call_error(service, error))),
            Poll::Ready(Err(Elapsed)) => ended(probe, Err(CallError::timed_out(service, *budget))),
        },
        CallStateProj::Failed { error } => ended(
            probe,
            Err(error.take().map_or_else(
                || CallError::not_delivered(service, "the call was polled after it failed"),
                |error| *error,
            )),
        ),
        CallStateProj::Boxed { future } => {
            let result = ready!(future.as_mut().poll(cx));
            ended(probe, result)
        }
    }
}

/// A call that ended with `result`, told to its probe.
fn ended<T, E>(
    probe: &mut Option<Probe>,
    result: Result<Result<T, E>, CallError>,
) -> Poll<Result<Result<T, E>, CallError>> {
    if let Some(probe) = probe.take() {
        probe.finish(&result);
    }
    Poll::Ready(result)
}

/// Queues `call` in a local actor's mailbox; the future waits for the
/// outcome until the call's deadline, which is `budget` away.
pub(crate) fn local_call<M: Request>(
    endpoint: &Endpoint<M>,
    call: Call<M>,
    budget: Duration,
) -> CallFuture<M> {
    CallFuture::new(local_state(endpoint, call, budget))
}

/// [`local_call`]'s state: waiting for the actor, or failed.
fn local_state<M: Request>(
    endpoint: &Endpoint<M>,
    call: Call<M>,
    budget: Duration,
) -> CallState<M> {
    let deadline = call.meta().deadline;
    match endpoint.enqueue(call) {
        Ok(reply) => CallState::waiting(reply, deadline, budget),
        Err(_) => CallState::failed(CallError::not_delivered(
            <M::Service as Service>::NAME,
            "the module's actor has stopped (a handler panicked); it is being restarted",
        )),
    }
}

/// A call the local actor could not take (it stopped, and the supervisor
/// has not started it again yet): to another node's replica if the module
/// has one there and the call may go (it surely did not run here; see
/// [`Replicas::may_take_unrun`]), else not delivered. Before, it failed
/// while replicas elsewhere were up.
#[cold]
fn local_down<M: Request>(
    call: Call<M>,
    others: Option<&Arc<Replicas>>,
    caller: u64,
) -> CallState<M> {
    let (message, meta) = call.into_parts();
    match others {
        Some(others) if others.may_take_unrun(&message) => {
            let replicas = Arc::clone(others);
            CallState::Boxed {
                future: Box::pin(replicas.call(message, meta, caller)),
            }
        }
        _ => CallState::failed(CallError::not_delivered(
            <M::Service as Service>::NAME,
            "the module's actor has stopped (a handler panicked); it is being restarted",
        )),
    }
}

/// A local call whose message and outcome both make a round trip through
/// the codec and the remote dispatcher, within the frame limit calls
/// between nodes have: queues it and returns its encoded reply to come.
/// A message too large for a frame is not delivered, as between nodes.
fn serialized_call<M: Request>(
    endpoint: &Endpoint<M>,
    message: M,
    meta: CallMeta,
    budget: Duration,
    max_frame: usize,
) -> Result<crate::dispatch::BoxFuture<Result<Vec<u8>, CallError>>, CallError> {
    let service = <M::Service as Service>::NAME;
    let bytes = codec::encode(&message).map_err(|e| {
        CallError::not_delivered(service, format!("{} could not be encoded: {e}", M::NAME))
    })?;
    let len = REQUEST_HEADER_LEN - PREFIX_LEN + bytes.len();
    if len > max_frame {
        return Err(CallError::not_delivered(
            service,
            format!(
                "{} is too large to send: {}",
                M::NAME,
                FrameError::TooLarge {
                    len,
                    max: max_frame
                }
            ),
        ));
    }
    dispatch_encoded::<M>(endpoint, &bytes, meta, budget, Vec::new())
        .map_err(|rejection| CallError::rejected(service, rejection))
}

/// The outcome in a serialized call's encoded `reply`; one too large for
/// a frame is lost after the call ran, as between nodes.
fn serialized_reply<M: Request>(reply: Vec<u8>, max_frame: usize) -> Result<Outcome<M>, CallError> {
    let service = <M::Service as Service>::NAME;
    let len = REPLY_HEADER_LEN - PREFIX_LEN + reply.len();
    if len > max_frame {
        return Err(CallError::outcome_unknown(
            service,
            format!(
                "{} ran, but its reply could not be sent: {}",
                M::NAME,
                FrameError::TooLarge {
                    len,
                    max: max_frame
                }
            ),
        ));
    }
    codec::decode::<Outcome<M>>(&reply).map_err(|e| {
        CallError::outcome_unknown(
            service,
            format!("the reply to {} could not be decoded: {e}", M::NAME),
        )
    })
}
