//! Finishing a stored order (step 7): the customer's cart emptied, the
//! confirmation sent, then the order marked confirmed. Right after the
//! order is stored, by the checkout that stored it; and later, by the
//! background [`Finisher`], for an order left unfinished.
//!
//! An order is left unfinished when one of these steps failed (the cart or
//! email module down: the original swallowed those failures, spec bug 4),
//! or when no checkout got to them (it answered "outcome unknown" and the
//! order landed later, or it stopped). It stays unconfirmed in `orders`,
//! and the finisher, which looks every `finisher_every_ms`, takes each
//! order unfinished for `finish_after_ms` (and stored less than a week
//! ago) and does what is left: so the confirmation is sent once its
//! module is back, without waiting for the customer to submit the
//! checkout again. It claims one order at a time, and its claim holds for
//! `finish_after_ms`: two checkout replicas do not finish one order at
//! once, and one that stopped midway leaves it to a later pass. Each step
//! done is recorded in `orders` (`RecordStepDone`), so that it is not
//! done again; a confirmation may still go twice (a finisher and a repeat
//! of the checkout at the same moment, or a send that worked but whose
//! answer, or whose record, was lost): at least once, not at most once.
//! A confirmation that can never be sent (the email module refuses the
//! address, or cannot render it) is logged as an error and counts as
//! done, so that the order does not come back forever.
//!
//! Late (by the finisher, or when the customer submits the same checkout
//! again), only the order's lines are taken out, each if it still holds
//! just what was ordered and did not change since its cart was read
//! (`RemoveOrderedLines`, one step in the cart module): by then the
//! customer may have put other things in the cart, which stay, or emptied
//! it and put the same things in again, which stay too. That counts as
//! done, whatever stays, and is not looked at again. Both times are the
//! cart's clock's ([`Order::cart_unchanged_since`]): the order keeps when
//! the cart said it read its lines (and a second's slack for cart
//! replicas' clocks), so the checkout's clock, behind the cart's, cannot
//! make a line put back since look like the order's. (An order stored
//! before it kept that uses its own time.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::Duration;

use cart::api::{CartItem, EmptyCart, RemoveOrderedLines};
use email::api::{EmailError, SendOrderConfirmation};
use futures_util::FutureExt;
use orders::api::{
    ClaimUnfinished, ConfirmOrder, ConfirmOrderResponse, FindCartsToEmpty, FindOrderResponse,
    FinishStep, Order, RecordStepDone,
};
use serde::Deserialize;
use tracing::Instrument;

use crate::actor::Placing;
use crate::api::CheckoutError;
use crate::place::Deps;

/// `[modules.checkout]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckoutConfig {
    /// How long an order may stay stored but unfinished before the
    /// finisher finishes it, in milliseconds (default a minute). Keep it
    /// longer than any checkout takes after storing its order (its cart
    /// and email calls, 5 s each by default), or the finisher races
    /// checkouts still at work and confirmations may go twice. Also how
    /// long the finisher's claim on an order holds.
    pub finish_after_ms: u64,
    /// How often the finisher looks for unfinished orders, in
    /// milliseconds (default 15 s).
    pub finisher_every_ms: u64,
}

impl Default for CheckoutConfig {
    fn default() -> Self {
        CheckoutConfig {
            finish_after_ms: 60_000,
            finisher_every_ms: 15_000,
        }
    }
}

impl CheckoutConfig {
    /// Why the settings cannot work, if they cannot.
    pub fn check(&self) -> Result<(), runtime::ConfigRefused> {
        for (name, value, least) in [
            ("finish_after_ms", self.finish_after_ms, 1),
            ("finisher_every_ms", self.finisher_every_ms, 10),
        ] {
            if !(least..=86_400_000).contains(&value) {
                return Err(runtime::ConfigRefused(format!(
                    "{name} must be {least} to 86400000 (a day), not {value}"
                )));
            }
        }
        Ok(())
    }
}

/// What to do with the customer's cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyTheCart {
    /// Empty it (right after the order is stored).
    Always,
    /// Take out the order's lines that are still as ordered (late: by the
    /// finisher, or when the customer submits the same checkout again).
    IfUnchanged,
}

/// The steps of finishing an order already done (as `orders` recorded).
#[derive(Debug, Clone, Copy, Default)]
pub struct Done {
    /// The cart emptied (or found changed, and left).
    pub cart_emptied: bool,
    /// The confirmation sent.
    pub emailed: bool,
}

impl Done {
    /// The steps done of the order `orders` found.
    pub fn of(found: &FindOrderResponse) -> Done {
        Done {
            cart_emptied: found.cart_emptied,
            emailed: found.emailed,
        }
    }
}

/// Empties the cart and sends the confirmation, each unless `done`
/// already, records each step as it is done, and marks the order
/// confirmed once both are (so that a repeat of the checkout, or the
/// finisher, does what failed). Neither undoes the order if it fails; each
/// failure is logged. Run detached from any deadline: the order stands,
/// so these are owed.
pub async fn finish(deps: &Deps, order: Order, key: &str, cart: EmptyTheCart, done: Done) -> Order {
    let emptied = done.cart_emptied || {
        let emptied = empty_cart(deps, &order, cart).await;
        if emptied {
            record(deps, &order, key, FinishStep::CartEmptied).await;
        }
        emptied
    };
    let sent = done.emailed || send_confirmation(deps, &order, key).await;
    if !(emptied && sent) {
        return order;
    }
    let confirmed = deps
        .orders
        .call(ConfirmOrder {
            idempotency_key: key.to_owned(),
        })
        .await;
    if !matches!(confirmed, Ok(Ok(ConfirmOrderResponse { found: true }))) {
        tracing::warn!(order_id = %order.order_id, result = ?confirmed, "the order could not be marked confirmed: it will be finished again");
    }
    order
}

/// The order a lookup `found` under `key`, finished as it was found
/// ([`finish_as_found`]), detached from the checkout's deadline; `None` if
/// none is stored under the key.
pub async fn finish_found(deps: &Deps, found: FindOrderResponse, key: &str) -> Option<Order> {
    let done = Done::of(&found);
    let order = found.order?;
    Some(runtime::detached(finish_as_found(deps, order, key, found.confirmed, done)).await)
}

/// Finishes `order`, stored under `key` by an earlier submission (or
/// this one, long ago), as far as it is not: nothing if it is
/// `confirmed`, else what is not `done`, its cart emptied only if
/// unchanged.
pub async fn finish_as_found(
    deps: &Deps,
    order: Order,
    key: &str,
    confirmed: bool,
    done: Done,
) -> Order {
    if confirmed {
        return order;
    }
    finish(deps, order, key, EmptyTheCart::IfUnchanged, done).await
}

/// Records `step` of finishing the order as done (logged if that fails:
/// the step may then be done again).
async fn record(deps: &Deps, order: &Order, key: &str, step: FinishStep) {
    let recorded = deps
        .orders
        .call(RecordStepDone {
            idempotency_key: key.to_owned(),
            step,
        })
        .await;
    if !matches!(recorded, Ok(Ok(ConfirmOrderResponse { found: true }))) {
        tracing::warn!(order_id = %order.order_id, ?step, result = ?recorded, "a step of finishing the order was done but not recorded: it may be done again");
    }
}

/// Sends the order's confirmation and records that it was sent; true if
/// it was sent, or can never be (logged as an error: nothing is to be
/// gained by trying again).
async fn send_confirmation(deps: &Deps, order: &Order, key: &str) -> bool {
    let sent = deps
        .email
        .call(SendOrderConfirmation {
            email: order.email.clone(),
            order: order.clone(),
        })
        .await;
    match sent {
        Ok(Ok(_)) => {
            record(deps, order, key, FinishStep::ConfirmationSent).await;
            true
        }
        Ok(Err(error @ (EmailError::InvalidAddress(_) | EmailError::Render(_)))) => {
            tracing::error!(order_id = %order.order_id, %error, "the confirmation email can never be sent: given up");
            true
        }
        failed => {
            tracing::warn!(order_id = %order.order_id, result = ?failed, "the confirmation email was not sent: it will be sent later");
            false
        }
    }
}

/// Empties the order's customer's cart as `rule` says; true if that is
/// done (late: whatever lines stay, changed since or put in since).
async fn empty_cart(deps: &Deps, order: &Order, rule: EmptyTheCart) -> bool {
    let user_id = order.customer_id.clone();
    let emptied = match rule {
        EmptyTheCart::Always => deps
            .cart
            .call(EmptyCart { user_id })
            .await
            .map(|answer| answer.map(|_| None)),
        EmptyTheCart::IfUnchanged => {
            let remove = RemoveOrderedLines {
                user_id,
                items: order_lines(order),
                // A line put in again since, even the same, is the
                // customer's next purchase.
                unchanged_since_ms: Some(order.cart_unchanged_since()),
            };
            deps.cart.call(remove).await.map(|answer| answer.map(Some))
        }
    };
    match emptied {
        Ok(Ok(None)) => true,
        Ok(Ok(Some(removed))) => {
            tracing::info!(
                order_id = %order.order_id,
                removed = removed.removed,
                lines_left = removed.lines_left,
                "the order's lines still as ordered are out of the cart; the lines changed or put in since stay"
            );
            true
        }
        failed => {
            tracing::warn!(order_id = %order.order_id, result = ?failed, "the cart could not be emptied after the order: it will be later");
            false
        }
    }
}

/// The order's lines, as the cart held them.
pub(crate) fn order_lines(order: &Order) -> Vec<CartItem> {
    order.items.iter().map(|line| line.item.clone()).collect()
}

/// Takes the lines of `customer`'s orders whose cart could not be emptied
/// (still as ordered: [`EmptyTheCart::IfUnchanged`]) out of their cart,
/// and records it: what a checkout does before it reads the cart, so as
/// not to pay for those lines again. Before, it read them as it found
/// them, and paid again within the finisher's minute. If it cannot look
/// (orders down) or cannot take them out (the cart failing still, as it
/// did for the order), the checkout is refused before anything is
/// charged: it went on, read the cart with those lines, and paid for
/// them again.
pub(crate) async fn take_out_earlier_orders(
    deps: &Deps,
    customer: &str,
) -> Result<(), CheckoutError> {
    let find = FindCartsToEmpty {
        customer_id: customer.to_owned(),
        not_older_than_ms: i64::try_from(NOT_OLDER_THAN.as_millis()).unwrap_or(i64::MAX),
    };
    let found = deps
        .orders
        .call(find)
        .await
        .map_err(crate::place::unavailable("orders"))?
        .map_err(CheckoutError::OrdersUnavailable)?;
    for earlier in found.orders {
        tracing::info!(order_id = %earlier.order.order_id, "an earlier order's cart was not emptied: its lines are taken out first");
        if !empty_cart(deps, &earlier.order, EmptyTheCart::IfUnchanged).await {
            return Err(CheckoutError::EarlierCheckoutUnsettled);
        }
        record(
            deps,
            &earlier.order,
            &earlier.idempotency_key,
            FinishStep::CartEmptied,
        )
        .await;
    }
    Ok(())
}

/// Finishes orders left unfinished, in the background (see the module
/// docs).
pub struct Finisher {
    deps: Deps,
    after: Duration,
    every: Duration,
    /// The keys of the checkouts this replica is placing now: their
    /// orders are theirs to finish.
    busy: Rc<RefCell<HashMap<String, Placing>>>,
}

/// Orders stored longer ago than this are not finished any more: what is
/// left of them is for a person (an email a week late helps nobody).
const NOT_OLDER_THAN: Duration = Duration::from_secs(7 * 24 * 3600);

impl Finisher {
    /// A finisher with `config`'s timings, that leaves alone the orders
    /// of the checkouts in `busy`.
    pub fn new(
        deps: Deps,
        config: &CheckoutConfig,
        busy: Rc<RefCell<HashMap<String, Placing>>>,
    ) -> Finisher {
        Finisher {
            deps,
            after: Duration::from_millis(config.finish_after_ms),
            every: Duration::from_millis(config.finisher_every_ms),
            busy,
        }
    }

    /// Looks for unfinished orders at once (a crash may have left some),
    /// then every so often, forever.
    pub async fn run(self) {
        loop {
            self.pass().await;
            tokio::time::sleep(self.every).await;
        }
    }

    /// Finishes the orders unfinished for long enough, one after another,
    /// claiming each just before finishing it (so that its claim does not
    /// run out while others are finished), until none is left or the pass
    /// has taken as long as the time between passes. A backlog (after an
    /// outage of email) drains as fast as orders finish, where 20 a pass
    /// took hours; an order that fails again waits for its claim to run
    /// out, and a pass whose orders all fail slowly ends on time. A pass
    /// also ends when it is handed an order it took already (its claim ran
    /// out while the pass went on: it failed again, or its checkout is at
    /// work here), so that a short `finish_after_ms` does not have it claim
    /// the same few orders over and over until the pass's time is up.
    async fn pass(&self) {
        let millis = |duration: Duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        let started = std::time::Instant::now();
        let mut taken = std::collections::HashSet::new();
        while started.elapsed() < self.every {
            let claim = ClaimUnfinished {
                unfinished_for_ms: millis(self.after),
                not_older_than_ms: millis(NOT_OLDER_THAN),
                lease_ms: millis(self.after),
                limit: 1,
            };
            let unfinished = match self.deps.orders.call(claim).await {
                Ok(Ok(claimed)) => match claimed.orders.into_iter().next() {
                    Some(unfinished) => unfinished,
                    None => return,
                },
                failed => {
                    tracing::warn!(result = ?failed, "unfinished orders could not be looked for: looking again later");
                    return;
                }
            };
            let order_id = unfinished.order.order_id.clone();
            if !taken.insert(unfinished.idempotency_key.clone()) {
                return;
            }
            if self.busy.borrow().contains_key(&unfinished.idempotency_key) {
                // A submission of that checkout is at work here: it
                // finishes the order (and if not, a later pass does).
                tracing::info!(%order_id, "an unfinished order's checkout is being submitted again: left to it");
                continue;
            }
            let done = Done {
                cart_emptied: unfinished.cart_emptied,
                emailed: unfinished.emailed,
            };
            // A submission of the checkout that comes meanwhile waits for
            // this (as for a submission at work) and gets the order: it
            // found the order unfinished too, finished it beside this,
            // and the confirmation went twice.
            let key = unfinished.idempotency_key.clone();
            let (finished, finished_here) = tokio::sync::oneshot::channel::<()>();
            let order = unfinished.order.clone();
            let placing: Placing = async move {
                let _ = finished_here.await;
                Ok(order)
            }
            .boxed_local()
            .shared();
            self.busy.borrow_mut().insert(key.clone(), placing);
            let (trace, finishing) = runtime::new_trace(finish_as_found(
                &self.deps,
                unfinished.order,
                &unfinished.idempotency_key,
                false,
                done,
            ));
            // The order's calls join this trace, and so do the lines
            // about it here: its lines say which.
            let span = tracing::error_span!("finish", trace_id = %trace);
            span.in_scope(|| tracing::info!(%order_id, "finishing an order left unfinished"));
            let finishing = finishing.instrument(span.clone());
            // A panic finishing one order must not stop the checkout
            // actor this runs in; the order comes back when its claim
            // runs out.
            if AssertUnwindSafe(finishing).catch_unwind().await.is_err() {
                span.in_scope(|| {
                    tracing::error!(%order_id, "finishing the order panicked: it is tried again later")
                });
            }
            self.busy.borrow_mut().remove(&key);
            let _ = finished.send(());
        }
    }
}
