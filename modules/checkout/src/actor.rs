//! The checkout actor: runs [`place`] once per idempotency key at a time,
//! and one customer's checkouts one after another.
//!
//! A node's graceful shutdown waits for the checkouts in progress here
//! (within its grace): each holds it. Without, a checkout the web server
//! asked for (it stops waiting after a few seconds) was dropped when the
//! node exited, between a charge and the order that goes with it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use actix::{Actor, AsyncContext, Context, Handler, ResponseFuture};
use cart::api::CartService;
use catalog::api::Catalog;
use currency::api::Currency;
use email::api::Email;
use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, Shared};
use orders::api::{Order, Orders};
use payment::api::Payment;
use runtime::{Call, ConfigRefused, Module, Service, ShutdownHolder, StartContext, StartError};
use shipping::api::Shipping;
use tracing::Instrument;

use crate::api::{Checkout, CheckoutError, PlaceOrder, PlaceOrderResponse, order_key};
use crate::finish::{CheckoutConfig, Finisher};
use crate::place::{Before, Deps, place};

/// The checkout module. Depends on cart, catalog, currency, shipping,
/// payment, email and orders.
pub struct CheckoutModule;

impl Module for CheckoutModule {
    type Service = Checkout;
    type Config = CheckoutConfig;

    fn dependencies() -> Vec<&'static str> {
        vec![
            CartService::NAME,
            Catalog::NAME,
            Currency::NAME,
            Shipping::NAME,
            Payment::NAME,
            Email::NAME,
            Orders::NAME,
        ]
    }

    fn check(config: &CheckoutConfig) -> Result<(), ConfigRefused> {
        config.check()
    }

    async fn start(config: CheckoutConfig, ctx: StartContext) -> Result<Checkout, StartError> {
        let deps = Deps {
            cart: ctx.service()?,
            catalog: ctx.service()?,
            currency: ctx.service()?,
            shipping: ctx.service()?,
            payment: ctx.service()?,
            email: ctx.service()?,
            orders: ctx.service()?,
        };
        // Orders left unfinished are finished in the background, while
        // this actor runs (a restart after a panic starts another actor,
        // with its own) and the node does.
        let in_flight = Rc::default();
        let finisher = Finisher::new(deps.clone(), &config, Rc::clone(&in_flight));
        let node_stopping = ctx.stopped();
        // Its lines are in no call's span: this one names the module (at
        // ERROR, as a call's, so that a `warn` filter keeps it).
        let span = tracing::error_span!("finisher", module = "checkout");
        let finishing: LocalBoxFuture<'static, ()> = Box::pin(
            async move {
                tokio::select! {
                    () = finisher.run() => {}
                    () = node_stopping => {}
                }
            }
            .instrument(span),
        );
        let actor = CheckoutActor {
            deps,
            shutdown: ctx.shutdown_holder(),
            by_customer: Rc::default(),
            started: 0,
            in_flight,
            finishing: Some(finishing),
        };
        Ok(Checkout::start(actor))
    }
}

/// A customer's latest checkout: its number, its key, and the checkout.
type Latest = (u64, Over);

/// A customer's checkout as the next one sees it: once over, the
/// checkouts it leaves to be settled ([`Before`]), oldest first: itself,
/// after those before it that it did not settle.
type Over = Shared<LocalBoxFuture<'static, Rc<Vec<Before>>>>;

/// A checkout being placed, which later submissions of it wait for.
pub(crate) type Placing = Shared<LocalBoxFuture<'static, Result<Order, CheckoutError>>>;

struct CheckoutActor {
    deps: Deps,
    /// Holds the node's graceful shutdown for each checkout in progress.
    shutdown: ShutdownHolder,
    /// Checkouts in progress, by their customer's idempotency key
    /// ([`order_key`]): a second submission of the same checkout waits for
    /// the first instead of running beside it.
    in_flight: Rc<RefCell<HashMap<String, Placing>>>,
    /// The checkout each customer started last, numbered, by customer id:
    /// a customer's checkouts with different keys run one after another
    /// (two forms open, or a client without a key retrying one that is
    /// still running), so the later one finds what the earlier did (the
    /// cart emptied: 409) instead of paying beside it. Its entry (number,
    /// key, checkout) goes when that checkout ends.
    by_customer: Rc<RefCell<HashMap<String, Latest>>>,
    /// How many checkouts this actor has started (their numbers).
    started: u64,
    /// The finisher's work, started with the actor and stopped with it.
    finishing: Option<LocalBoxFuture<'static, ()>>,
}

impl Actor for CheckoutActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(finishing) = self.finishing.take() {
            ctx.spawn(actix::fut::wrap_future(finishing));
        }
    }
}

impl Handler<Call<PlaceOrder>> for CheckoutActor {
    type Result = ResponseFuture<Result<PlaceOrderResponse, CheckoutError>>;

    fn handle(&mut self, call: Call<PlaceOrder>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let (request, meta) = call.into_parts();
        let key = if request.idempotency_key.is_empty() {
            order_key(&request.user_id, &uuid::Uuid::new_v4().to_string())
        } else {
            order_key(&request.user_id, &request.idempotency_key)
        };
        let existing = self.in_flight.borrow().get(&key).cloned();
        let placing = match existing {
            Some(placing) => {
                span.in_scope(|| {
                    tracing::info!("same checkout already in progress: waiting for it")
                });
                placing
            }
            None => {
                let deps = self.deps.clone();
                let in_flight = Rc::clone(&self.in_flight);
                let by_customer = Rc::clone(&self.by_customer);
                let owned_key = key.clone();
                let customer = request.user_id.clone();
                self.started += 1;
                let number = self.started;
                let before = self
                    .by_customer
                    .borrow()
                    .get(&customer)
                    .map(|(_, over)| over.clone());
                if before.is_some() {
                    span.in_scope(|| {
                        tracing::info!("another checkout of this customer is in progress: this one waits for it")
                    });
                }
                // Every step waits no longer than the first submitter;
                // compensation steps are detached from that (see place.rs).
                let hold = self.shutdown.hold();
                // The answer, which may come before the checkout is over
                // (its order placed, the finishing still going on: see
                // `place`).
                let (answer, answered) = tokio::sync::oneshot::channel();
                let over = meta
                    .scope(async move {
                        let _hold = hold;
                        // Its outcome is its own submitter's to see; what
                        // it left in the cart is this one's to know. Not
                        // under this one's deadline: a caller with less
                        // time must not cut the earlier checkout short.
                        let before = match before {
                            Some(over) => runtime::detached(over).await,
                            None => Rc::default(),
                        };
                        // A panic would poison this shared future: every
                        // repeat of the checkout, and every later checkout
                        // of the customer (they wait on it), would panic in
                        // turn until a restart. Its outcome is unknown; a
                        // repeat finishes it.
                        let mut unfinished = None;
                        let mut settled = false;
                        let placed = place(
                            &deps,
                            &request,
                            &owned_key,
                            &before,
                            &mut settled,
                            &mut unfinished,
                        );
                        let result = AssertUnwindSafe(placed)
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|_| {
                                tracing::error!(
                                    "placing the order panicked: its outcome is unknown"
                                );
                                Err(CheckoutError::OrderOutcomeUnknown {
                                    reason: "the checkout stopped unexpectedly".to_owned(),
                                })
                            });
                        let _ = answer.send(result.clone());
                        if let Some(rest) = unfinished
                            && AssertUnwindSafe(rest).catch_unwind().await.is_err()
                        {
                            tracing::error!(
                                "finishing the order panicked: the finisher finishes it later"
                            );
                        }
                        in_flight.borrow_mut().remove(&owned_key);
                        let mut by_customer = by_customer.borrow_mut();
                        if by_customer
                            .get(&request.user_id)
                            .is_some_and(|(n, _)| *n == number)
                        {
                            by_customer.remove(&request.user_id);
                        }
                        let this = Before {
                            key: owned_key,
                            outcome: result,
                        };
                        Rc::new(crate::place::passed_on(&before, this, settled))
                    })
                    .instrument(span)
                    .boxed_local()
                    .shared();
                // Run to its end whoever waits for it: past the answer, no
                // submitter does.
                actix::spawn(over.clone().map(drop));
                let answered: Placing = async move {
                    answered.await.unwrap_or_else(|_| {
                        Err(CheckoutError::OrderOutcomeUnknown {
                            reason: "the checkout stopped unexpectedly".to_owned(),
                        })
                    })
                }
                .boxed_local()
                .shared();
                // A repeat of the checkout gets its answer; the customer's
                // next checkout waits for it to be over.
                self.in_flight
                    .borrow_mut()
                    .insert(key.clone(), answered.clone());
                self.by_customer
                    .borrow_mut()
                    .insert(customer, (number, over));
                answered
            }
        };
        Box::pin(async move { placing.await.map(|order| PlaceOrderResponse { order }) })
    }
}
