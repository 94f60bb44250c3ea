//! The receiving end of an encoded call: from bytes to an actor and back.
//!
//! A node keeps a [`DispatchTable`] from [`MethodId`] to a [`Dispatch`] for
//! every message of every service it hosts. When a call arrives as bytes, the
//! table finds its dispatcher, which decodes the message, sends it to the
//! actor's mailbox exactly as a local call would, and encodes the outcome.
//! A method the node does not know, or a payload that does not decode, is a
//! typed [`Rejection`]; the actor never sees it.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use crate::call::{Call, CallMeta};
use crate::codec;
use crate::endpoint::Endpoint;
use crate::error::{CallError, Rejection};
use crate::id_map::IdMap;
use crate::service::{MethodId, Request, Service};
use crate::service_ref::{CallFuture, local_call};
use crate::supervise::Slot;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs one kind of message that arrived encoded.
pub trait Dispatch: Send + Sync {
    /// The service's name.
    fn service(&self) -> &'static str;
    /// The message's name.
    fn message(&self) -> &'static str;
    /// Decodes `payload` and sends it to the actor. The future appends the
    /// encoded outcome (`Result<Reply, Error>`) to `out` and returns it, or
    /// fails with the [`CallError`] the local call produced.
    fn dispatch(
        &self,
        payload: &[u8],
        meta: CallMeta,
        out: Vec<u8>,
    ) -> Result<BoxFuture<Result<Vec<u8>, CallError>>, Rejection>;
}

/// The [`Dispatch`] of message `M`: owns the actor endpoint for `M`.
pub struct Dispatcher<M: Request> {
    slot: Arc<Slot<M::Service>>,
    _message: PhantomData<fn(M)>,
}

impl<M: Request> Dispatcher<M> {
    /// A dispatcher that delivers to the actor in `slot` (whichever one it
    /// holds when a call comes).
    pub(crate) fn new(slot: Arc<Slot<M::Service>>) -> Self {
        Dispatcher {
            slot,
            _message: PhantomData,
        }
    }
}

impl<M: Request> Dispatch for Dispatcher<M> {
    fn service(&self) -> &'static str {
        <M::Service as Service>::NAME
    }

    fn message(&self) -> &'static str {
        M::NAME
    }

    fn dispatch(
        &self,
        payload: &[u8],
        meta: CallMeta,
        out: Vec<u8>,
    ) -> Result<BoxFuture<Result<Vec<u8>, CallError>>, Rejection> {
        let budget = meta.remaining();
        let endpoints = self.slot.load();
        dispatch_encoded::<M>(M::endpoint(&endpoints), payload, meta, budget, out)
    }
}

/// Decodes `payload` as `M`, queues it for `endpoint`, and returns the
/// future that appends the encoded outcome to `out`.
///
/// The future is boxed here, straight from its parts: every move of an
/// unboxed future on its way into a box (out of a `Result`, into an
/// `async` block) is a copy of it.
pub(crate) fn dispatch_encoded<M: Request>(
    endpoint: &Endpoint<M>,
    payload: &[u8],
    meta: CallMeta,
    budget: Duration,
    out: Vec<u8>,
) -> Result<BoxFuture<Result<Vec<u8>, CallError>>, Rejection> {
    let message: M = codec::decode(payload).map_err(|e| Rejection::Undecodable {
        message: M::NAME.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(Box::pin(EncodedReply {
        delivery: local_call(endpoint, Call::new(message, meta), budget),
        out: Some(out),
    }))
}

pin_project! {
    /// A call delivered to a local actor, whose outcome is encoded into
    /// `out` when it comes.
    struct EncodedReply<M: Request> {
        #[pin]
        delivery: CallFuture<M>,
        out: Option<Vec<u8>>,
    }
}

impl<M: Request> Future for EncodedReply<M> {
    type Output = Result<Vec<u8>, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = match this.delivery.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(outcome) => outcome?,
        };
        let mut out = this.out.take().unwrap_or_default();
        codec::encode_into(&outcome, &mut out).map_err(|e| {
            CallError::outcome_unknown(
                <M::Service as Service>::NAME,
                format!("the reply to {} ran but could not be encoded: {e}", M::NAME),
            )
        })?;
        Poll::Ready(Ok(out))
    }
}

/// Every method a node can run, and the names of every method its build knows.
#[derive(Default, Clone)]
pub struct DispatchTable {
    hosted: IdMap<MethodId, Arc<dyn Dispatch>>,
    known: IdMap<MethodId, (&'static str, &'static str)>,
}

impl DispatchTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `method` exists in this build (hosted here or not).
    pub(crate) fn know(&mut self, method: MethodId, service: &'static str, message: &'static str) {
        self.known.insert(method, (service, message));
    }

    /// Adds the local endpoints of service `S`.
    pub fn host<S: Service>(&mut self, service: &S) {
        self.host_slot(&Slot::new(service.clone()));
    }

    /// Adds the endpoints in `slot`, whichever they are when a call comes.
    pub(crate) fn host_slot<S: Service>(&mut self, slot: &Arc<Slot<S>>) {
        for info in S::messages() {
            self.known.insert(info.method, (S::NAME, info.name));
            self.hosted.insert(info.method, (info.dispatcher)(slot));
        }
    }

    /// The dispatcher for `method`, or why there is none.
    pub fn find(&self, method: MethodId, node: &str) -> Result<&Arc<dyn Dispatch>, Rejection> {
        if let Some(dispatch) = self.hosted.get(&method) {
            return Ok(dispatch);
        }
        Err(match self.known.get(&method) {
            Some((service, _)) => Rejection::NotHosted {
                service: (*service).to_owned(),
                node: node.to_owned(),
            },
            None => Rejection::UnknownMethod { method: method.0 },
        })
    }

    /// The service and message names of `method`, if this build knows it.
    pub fn names(&self, method: MethodId) -> Option<(&'static str, &'static str)> {
        self.known.get(&method).copied()
    }
}
