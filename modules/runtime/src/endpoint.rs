//! Endpoints: one message type's way into a local actor's mailbox.
//!
//! A service's local endpoints (the struct [`service!`](crate::service!)
//! declares) hold one [`Endpoint`] per message. An endpoint erases the
//! actor's type, as actix's `Recipient` does, but sends through the actor's
//! own `AddressSender` (exported by actix in `actix::dev::channel`): the
//! message is queued when the call is made, and what the caller keeps is
//! the reply's oneshot receiver, 8 bytes.
//!
//! Why not `Recipient::send`: its request future is 232 bytes (it keeps the
//! message, for a full mailbox, and a `Sleep` for a timeout the runtime
//! never sets, since deadlines are enforced by [`deadline`](crate::deadline)),
//! and every `.await` moves the whole call future, which then took a call
//! to `memcpy`. With an endpoint the call future is under 128 bytes and
//! moved inline (measured with callgrind: docs/performance.md).
//!
//! A full mailbox behaves as it does for a `Recipient`: the call is queued
//! all the same, through a fresh sender, so no call is lost to a burst.
//! The runtime's mailboxes have no capacity, so none is ever full unless
//! its actor sets one (see [`start_actor`]).

use std::fmt;
use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::dev::channel::{self, AddressSender};
use actix::prelude::SendError;
use actix::{Actor, Handler};
use tokio::sync::oneshot;

use crate::call::Call;
use crate::service::{Outcome, Request};

/// Starts the actor `make` returns on the current arbiter, and returns the
/// sender that endpoints are made from. `make` gets the actor's context
/// before it runs, as in actix's `Actor::create`. Called by a service's
/// `start` and `create` (see [`service!`](crate::service!)).
///
/// The mailbox has no capacity (actix's 0): an endpoint queues every call
/// whether or not the mailbox is full, as `Recipient::send` did, so a
/// capacity would bound nothing and only cost each call past it a fresh
/// sender (two allocations). Calls between nodes are bounded by the
/// transport (`max_in_flight_per_peer`); an actor that sets a capacity of
/// its own still gets every call.
pub fn start_actor<A>(make: impl FnOnce(&mut actix::Context<A>) -> A) -> AddressSender<A>
where
    A: Actor<Context = actix::Context<A>>,
{
    let (sender, receiver) = channel::channel(0);
    let mut context = actix::Context::with_receiver(receiver);
    let actor = make(&mut context);
    context.run(actor);
    sender
}

/// The way into a local actor for message `M`.
pub struct Endpoint<M: Request> {
    mailbox: Arc<dyn Enqueue<M>>,
}

/// What the runtime needs of a mailbox: queue a call, tell if it is open.
trait Enqueue<M: Request>: Send + Sync {
    fn enqueue(&self, call: Call<M>) -> Result<oneshot::Receiver<Outcome<M>>, Call<M>>;
    fn connected(&self) -> bool;
}

impl<A, M> Enqueue<M> for AddressSender<A>
where
    M: Request,
    A: Handler<Call<M>>,
    A::Context: ToEnvelope<A, Call<M>>,
{
    #[inline]
    fn enqueue(&self, call: Call<M>) -> Result<oneshot::Receiver<Outcome<M>>, Call<M>> {
        match self.send(call) {
            Ok(reply) => Ok(reply),
            // This sender is parked until the actor makes room; a fresh one
            // is not (what `Recipient::send` does on its first poll).
            Err(SendError::Full(call)) => self.clone().send(call).map_err(SendError::into_inner),
            Err(SendError::Closed(call)) => Err(call),
        }
    }

    fn connected(&self) -> bool {
        AddressSender::connected(self)
    }
}

impl<M: Request> Endpoint<M> {
    /// The endpoint for `M` of the actor behind `sender`.
    pub fn of<A>(sender: &AddressSender<A>) -> Self
    where
        A: Handler<Call<M>>,
        A::Context: ToEnvelope<A, Call<M>>,
    {
        Endpoint {
            mailbox: Arc::new(sender.clone()),
        }
    }

    /// Queues `call`; the receiver gets its outcome, or is closed if the
    /// actor stops before it answers. The call comes back if the actor has
    /// stopped already.
    #[inline]
    pub(crate) fn enqueue(&self, call: Call<M>) -> Result<oneshot::Receiver<Outcome<M>>, Call<M>> {
        self.mailbox.enqueue(call)
    }

    /// True while the actor is running.
    pub fn connected(&self) -> bool {
        self.mailbox.connected()
    }
}

impl<M: Request> Clone for Endpoint<M> {
    fn clone(&self) -> Self {
        Endpoint {
            mailbox: Arc::clone(&self.mailbox),
        }
    }
}

impl<M: Request> fmt::Debug for Endpoint<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", M::NAME)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix::{Actor, ActorContext, Context, Handler};
    use serde::{Deserialize, Serialize};

    use crate::service_ref::CallFuture;
    use crate::{Call, CallError, Service, ServiceRef};

    #[derive(Debug, Serialize, Deserialize)]
    struct Echo {
        n: u64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
    #[error("never")]
    struct Never;

    crate::service! {
        /// One message, echoed.
        Echoer = "echoer", error Never {
            Echo -> u64,
        }
    }

    struct EchoActor;

    impl Actor for EchoActor {
        type Context = Context<Self>;
    }

    impl Handler<Call<Echo>> for EchoActor {
        type Result = Result<u64, Never>;
        fn handle(&mut self, call: Call<Echo>, _: &mut Context<Self>) -> Self::Result {
            Ok(call.n)
        }
    }

    #[actix_rt::test]
    async fn a_burst_is_queued_whole_and_answered_past_any_mailbox_capacity() {
        let capacity = 4;
        let unbounded = Echoer::start(EchoActor);
        let bounded = Echoer::create(|ctx: &mut Context<EchoActor>| {
            ctx.set_mailbox_capacity(capacity);
            EchoActor
        });
        for endpoints in [unbounded, bounded] {
            let echoer = ServiceRef::local(endpoints);
            // Every call is queued when it is made, before any is awaited:
            // past an actor's own capacity, through a fresh sender.
            let calls: Vec<_> = (0..capacity as u64 * 4)
                .map(|n| echoer.call(Echo { n }))
                .collect();
            for (n, call) in (0..).zip(calls) {
                assert_eq!(call.await, Ok(Ok(n)));
            }
        }
    }

    #[actix_rt::test]
    async fn a_call_to_a_stopped_actor_is_not_delivered() {
        let endpoints = Echoer::create(|ctx: &mut Context<EchoActor>| {
            ctx.stop();
            EchoActor
        });
        // The actor stops once it first runs.
        let stopped = async {
            while endpoints.is_running() {
                actix_rt::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), stopped)
            .await
            .expect("the actor did not stop");
        let reply = ServiceRef::local(endpoints).call(Echo { n: 2 }).await;
        assert!(
            matches!(reply, Err(CallError::NotDelivered { .. })),
            "a stopped actor's endpoint answered {reply:?}"
        );
    }

    #[test]
    fn a_call_future_is_small_enough_to_move_without_memcpy() {
        // A call future is moved by every `.await` that takes it; past 128
        // bytes the compiler moves it with a call to `memcpy`, which
        // callgrind showed as a tenth of what a local call cost beyond raw
        // actix (docs/performance.md).
        let size = std::mem::size_of::<CallFuture<Echo>>();
        assert!(size <= 128, "a call future is {size} bytes");
    }
}
