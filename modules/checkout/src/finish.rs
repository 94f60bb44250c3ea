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
//! order unfinished for `finish_after_ms` and does what is left: so the
//! confirmation is sent once its module is back, without waiting for the
//! customer to submit the checkout again. A finisher's claim on an order
//! holds for `finish_after_ms`: two checkout replicas do not finish one
//! order at once, and one that stopped midway leaves it to the next pass.
//! A sent confirmation is recorded in `orders`, so that it is not sent
//! again; it may still go twice (a finisher and a repeat of the checkout
//! at the same moment, or a send that worked but whose answer, or whose
//! record, was lost): sent at least once, rather than at most once.
//!
//! Late, the cart is emptied only if it still holds exactly what was
//! ordered: by then the customer may have put other things in it.

use std::time::Duration;

use cart::api::{CartItem, EmptyCart, GetCart};
use email::api::SendOrderConfirmation;
use orders::api::{
    ClaimUnfinished, ConfirmOrder, ConfirmOrderResponse, Order, RecordConfirmationSent,
};
use serde::Deserialize;

use crate::place::Deps;

/// `[modules.checkout]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckoutConfig {
    /// How long an order may stay stored but unfinished before the
    /// finisher finishes it, in milliseconds (default a minute: longer than
    /// any checkout takes, so that none still at work is raced). Also how
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
    pub fn check(&self) -> Result<(), String> {
        for (name, value) in [
            ("finish_after_ms", self.finish_after_ms),
            ("finisher_every_ms", self.finisher_every_ms),
        ] {
            if value == 0 || value > 86_400_000 {
                return Err(format!("{name} must be 1 to 86400000 (a day), not {value}"));
            }
        }
        Ok(())
    }
}

/// What to do with the customer's cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyTheCart {
    /// Empty it (right after the order, or when the customer submits the
    /// same checkout again).
    Always,
    /// Only if it holds exactly what was ordered (late, by the finisher).
    IfUnchanged,
}

/// Empties the cart, sends the confirmation unless it was (`emailed`:
/// recorded in `orders`, so that it is not sent twice), and marks the
/// order confirmed if both are done (so that a repeat of the checkout, or
/// the finisher, does what failed). Neither undoes the order if it fails;
/// each failure is logged. Run detached from any deadline: the order
/// stands, so these are owed.
pub async fn finish(
    deps: &Deps,
    order: Order,
    key: &str,
    cart: EmptyTheCart,
    emailed: bool,
) -> Order {
    let emptied = empty_cart(deps, &order, cart).await;
    let sent = emailed || send_confirmation(deps, &order, key).await;
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
        tracing::warn!(order_id = %order.order_id, result = ?confirmed, "the order could not be marked confirmed: the cart and the confirmation may be done again");
    }
    order
}

/// Sends the order's confirmation and records that it was sent; true if
/// it was sent.
async fn send_confirmation(deps: &Deps, order: &Order, key: &str) -> bool {
    let sent = deps
        .email
        .call(SendOrderConfirmation {
            email: order.email.clone(),
            order: order.clone(),
        })
        .await;
    if let failed @ (Ok(Err(_)) | Err(_)) = sent {
        tracing::warn!(order_id = %order.order_id, result = ?failed, "the confirmation email was not sent: it will be sent later");
        return false;
    }
    let recorded = deps
        .orders
        .call(RecordConfirmationSent {
            idempotency_key: key.to_owned(),
        })
        .await;
    if !matches!(recorded, Ok(Ok(ConfirmOrderResponse { found: true }))) {
        tracing::warn!(order_id = %order.order_id, result = ?recorded, "the confirmation was sent but not recorded: it may be sent again");
    }
    true
}

/// Empties the order's customer's cart as `rule` says; true if that is
/// done (or, late, not to be done).
async fn empty_cart(deps: &Deps, order: &Order, rule: EmptyTheCart) -> bool {
    let user_id = order.customer_id.clone();
    if rule == EmptyTheCart::IfUnchanged {
        let held = match deps.cart.call(GetCart { user_id }).await {
            Ok(Ok(cart)) => cart.items,
            failed => {
                tracing::warn!(order_id = %order.order_id, result = ?failed, "the cart could not be read after the order: it will be emptied later");
                return false;
            }
        };
        if held.is_empty() {
            return true;
        }
        if !same_items(&held, order) {
            tracing::info!(order_id = %order.order_id, "the cart changed since the order: left as it is");
            return true;
        }
    }
    let emptied = deps
        .cart
        .call(EmptyCart {
            user_id: order.customer_id.clone(),
        })
        .await;
    match emptied {
        Ok(Ok(_)) => true,
        failed => {
            tracing::warn!(order_id = %order.order_id, result = ?failed, "the cart could not be emptied after the order: it will be later");
            false
        }
    }
}

/// True if `held` is what `order` bought, line for line in any order.
fn same_items(held: &[CartItem], order: &Order) -> bool {
    let key = |item: &CartItem| (item.product_id.clone(), item.quantity);
    let mut held: Vec<_> = held.iter().map(key).collect();
    let mut ordered: Vec<_> = order.items.iter().map(|line| key(&line.item)).collect();
    held.sort();
    ordered.sort();
    held == ordered
}

/// Finishes orders left unfinished, in the background (see the module
/// docs).
pub struct Finisher {
    deps: Deps,
    after: Duration,
    every: Duration,
}

/// The most orders one pass claims.
const CLAIMED_PER_PASS: u32 = 20;
/// The most passes made at once, while each finds a full load.
const FULL_PASSES_IN_A_ROW: usize = 10;

impl Finisher {
    /// A finisher with `config`'s timings.
    pub fn new(deps: Deps, config: &CheckoutConfig) -> Finisher {
        Finisher {
            deps,
            after: Duration::from_millis(config.finish_after_ms),
            every: Duration::from_millis(config.finisher_every_ms),
        }
    }

    /// Looks for unfinished orders every so often, forever.
    pub async fn run(self) {
        loop {
            tokio::time::sleep(self.every).await;
            // A full pass may mean more are waiting: look again at once,
            // a few times.
            for _ in 0..FULL_PASSES_IN_A_ROW {
                if self.pass().await < CLAIMED_PER_PASS as usize {
                    break;
                }
            }
        }
    }

    /// Claims the orders unfinished for long enough and finishes them;
    /// returns how many it claimed.
    async fn pass(&self) -> usize {
        let after_ms = i64::try_from(self.after.as_millis()).unwrap_or(i64::MAX);
        let claim = ClaimUnfinished {
            placed_before_ms: runtime::wall_clock::unix_ms().saturating_sub(after_ms),
            lease_ms: after_ms,
            limit: CLAIMED_PER_PASS,
        };
        let claimed = match self.deps.orders.call(claim).await {
            Ok(Ok(claimed)) => claimed.orders,
            failed => {
                tracing::warn!(result = ?failed, "unfinished orders could not be looked for: looking again later");
                return 0;
            }
        };
        let count = claimed.len();
        for unfinished in claimed {
            tracing::info!(order_id = %unfinished.order.order_id, "finishing an order left unfinished");
            let (_, finishing) = runtime::new_trace(finish(
                &self.deps,
                unfinished.order,
                &unfinished.idempotency_key,
                EmptyTheCart::IfUnchanged,
                unfinished.emailed,
            ));
            finishing.await;
        }
        count
    }
}
