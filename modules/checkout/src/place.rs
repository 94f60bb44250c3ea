//! Placing one order: the steps, in order, and what each failure means.

use cart::api::{CartItem, CartService, GetCart, RemoveOrderedLines};
use catalog::api::{Catalog, GetProduct};
use currency::api::{Convert, Currency, Money};
use email::api::Email;
use futures_util::future::try_join_all;
use orders::api::{FindOrder, FindSettledOrder, Order, OrderItem, Orders, SaveOrder};
use payment::api::{CancelCharge, Cancellation, Charge, Payment, PaymentError};
use runtime::{CallError, ServiceRef};
use shipping::api::{GetQuote, ShipOrder, Shipping};

use crate::api::{ChargeLeft, CheckoutError, KeyLeft, PlaceOrder};
use crate::finish::{
    Done, EmptyTheCart, finish, finish_as_found, finish_found, order_lines, take_out_earlier_orders,
};

/// The services checkout calls.
#[derive(Clone)]
pub struct Deps {
    pub cart: ServiceRef<CartService>,
    pub catalog: ServiceRef<Catalog>,
    pub currency: ServiceRef<Currency>,
    pub shipping: ServiceRef<Shipping>,
    pub payment: ServiceRef<Payment>,
    pub email: ServiceRef<Email>,
    pub orders: ServiceRef<Orders>,
}

/// A checkout of the same customer (another key) that ran before this
/// one, which waited for it to end, and whose outcome is this one's to
/// settle: the one just before it, and those that one did not settle (it
/// ended before it got to: a repeat of a placed order, a request refused,
/// the orders service down), which are as much this one's business.
#[derive(Clone)]
pub struct Before {
    /// Its key ([`crate::api::order_key`]).
    pub key: String,
    /// How it ended.
    pub outcome: Result<Order, CheckoutError>,
}

impl Before {
    /// Whether a later checkout has anything to settle of it: an order it
    /// placed, or a charge or an order it may have left. One that failed
    /// for certain (refused, or nothing done) has nothing; one refused for
    /// a checkout before it passed that one on.
    pub fn to_settle(&self) -> bool {
        match &self.outcome {
            Ok(_) => true,
            Err(error) => error.key_left() == KeyLeft::Unfinished,
        }
    }
}

/// What a checkout that ended leaves the customer's next one to settle
/// (`before`: what it was left itself; `settled`: whether it settled
/// those). Those before it that it did not settle are the next one's to
/// settle, with it: ended before it got to them (a repeat of a placed
/// order, the orders service down), it said nothing of them. Before, the
/// next looked at this one alone, and paid again beside an order in doubt
/// two back. Only those with anything to settle, each once: the chain
/// stays as short as what is unsettled. An earlier submission of this
/// very checkout gives way to this one only if this one is passed on in
/// its place: a repeat that failed before it did anything (orders down)
/// left the earlier one in doubt as it was, and it was dropped, for the
/// next checkout to pay beside.
pub(crate) fn passed_on(before: &[Before], this: Before, settled: bool) -> Vec<Before> {
    let in_its_place = this.to_settle();
    // `settled` covers the others only: a repeat settles every earlier
    // checkout but its own (see `place`), which it leaves to itself.
    let mut left: Vec<Before> = before
        .iter()
        .filter(|earlier| {
            earlier.to_settle()
                && if earlier.key == this.key {
                    !in_its_place
                } else {
                    !settled
                }
        })
        .cloned()
        .collect();
    if in_its_place {
        left.push(this);
    }
    left
}

/// What a customer's checkout that waited for an earlier one of theirs
/// does before it reads the cart, so that it does not pay for the earlier
/// one's lines again:
/// - the earlier one placed its order: settled if its cart was emptied (as
///   the orders store recorded), or if the cart is empty once the order's
///   lines still as ordered, unchanged since, are taken out now (as its
///   finisher would later); a cart that holds other lines after that (put
///   in or changed meanwhile: which of them the customer means to buy now
///   is theirs to say) is refused;
/// - the earlier one's order may stand or land, or its charge stand (its
///   outcome is in doubt), or it was refused for one before it: refused;
/// - it failed for certain: nothing to do.
///
/// A refusal is [`CheckoutError::EarlierCheckoutUnsettled`], before
/// anything is charged. Its calls are bookkeeping the earlier order is
/// owed: not cut short by this checkout's deadline.
pub async fn settle_earlier(
    deps: &Deps,
    customer: &str,
    before: &Before,
) -> Result<(), CheckoutError> {
    let settled = match &before.outcome {
        Ok(order) => runtime::detached(cart_settled(deps, customer, &before.key, order)).await,
        Err(CheckoutError::EarlierCheckoutUnsettled) => false,
        Err(error) => error.key_left() != KeyLeft::Unfinished,
    };
    if settled {
        Ok(())
    } else {
        tracing::warn!("an earlier checkout of this customer is not settled: this one is refused");
        Err(CheckoutError::EarlierCheckoutUnsettled)
    }
}

/// Whether `order`, placed under `key` just before, left the customer's
/// cart settled (see [`settle_earlier`]); takes its lines out that are
/// still there as ordered.
async fn cart_settled(deps: &Deps, customer: &str, key: &str, order: &Order) -> bool {
    let found = deps
        .orders
        .call(FindOrder {
            idempotency_key: key.to_owned(),
        })
        .await;
    if matches!(found, Ok(Ok(ref found)) if found.cart_emptied) {
        return true;
    }
    let remove = RemoveOrderedLines {
        user_id: customer.to_owned(),
        items: order_lines(order),
        unchanged_since_ms: Some(order.cart_unchanged_since()),
    };
    matches!(deps.cart.call(remove).await, Ok(Ok(removed)) if removed.lines_left == 0)
}

/// A call to `service` that failed, as the checkout's error.
pub(crate) fn unavailable(service: &str) -> impl Fn(CallError) -> CheckoutError + '_ {
    move |error| CheckoutError::Unavailable {
        service: service.to_owned(),
        error,
    }
}

fn invalid(field: &str, reason: &str) -> CheckoutError {
    CheckoutError::InvalidRequest {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

fn too_large(error: currency::api::MoneyError) -> CheckoutError {
    invalid("cart", &format!("the total cannot be computed: {error}"))
}

/// Checks what can be checked before anything is called.
pub fn check_request(request: &PlaceOrder) -> Result<(), CheckoutError> {
    if request.user_id.is_empty() || request.user_id.len() > 256 {
        return Err(invalid("user_id", "must be 1 to 256 bytes"));
    }
    if request.user_id.chars().any(char::is_control) {
        return Err(invalid("user_id", "must not contain control characters"));
    }
    if !crate::api::is_idempotency_key(&request.idempotency_key) {
        return Err(invalid(
            "idempotency_key",
            "must be up to 128 letters, digits, '-' and '_'",
        ));
    }
    // The email module's own rule: an order is never placed with an
    // address its confirmation cannot go to.
    if !email::api::is_address(&request.email) {
        return Err(invalid("email", "must be an email address"));
    }
    let address = &request.address;
    for (field, value, max) in [
        ("street_address", &address.street_address, 512),
        ("city", &address.city, 128),
        ("state", &address.state, 128),
        ("country", &address.country, 128),
    ] {
        if value.trim().is_empty() || value.chars().count() > max {
            return Err(invalid(field, &format!("must be 1 to {max} characters")));
        }
        // PostgreSQL stores no NUL in text: refused here, not as a
        // storage failure after the card was charged.
        if value.chars().any(char::is_control) {
            return Err(invalid(field, "must not contain control characters"));
        }
    }
    if address.zip_code == 0 {
        return Err(invalid("zip_code", "must not be zero"));
    }
    Ok(())
}

/// Converts `amount` into `currency`, rounded to cents: the price the
/// cart page showed.
async fn convert(deps: &Deps, amount: Money, currency: &str) -> Result<Money, CheckoutError> {
    deps.currency
        .call(Convert {
            from: amount,
            to_code: currency.to_owned(),
        })
        .await
        .map_err(unavailable("currency"))?
        .map_err(CheckoutError::Currency)?
        .round_to_cents()
        .map_err(too_large)
}

/// Prices one cart line: its product's name and unit price in `currency`.
async fn price(deps: &Deps, item: CartItem, currency: &str) -> Result<OrderItem, CheckoutError> {
    let product = deps
        .catalog
        .call(GetProduct {
            id: item.product_id.clone(),
        })
        .await
        .map_err(unavailable("catalog"))?
        .map_err(CheckoutError::Catalog)?;
    let cost = convert(deps, product.price_usd, currency).await?;
    Ok(OrderItem {
        item,
        cost,
        name: product.name,
    })
}

/// What a charge the payment service answered with an error means for
/// the customer: their card declined, or their checkout used up; in each
/// case nothing was charged. (A ledger that failed may have charged: see
/// `place`.)
fn payment_failed(error: PaymentError) -> CheckoutError {
    match error {
        PaymentError::KeyReused { .. }
        | PaymentError::AlreadyRefunded { .. }
        | PaymentError::Cancelled { .. } => CheckoutError::CheckoutUsed(error),
        _ => CheckoutError::PaymentDeclined(error),
    }
}

/// Cancels the charge under `key` as far as this attempt is concerned:
/// if none was made, none can be; if one was, this attempt lets go of it,
/// and it is refunded unless another attempt still holds it (that
/// attempt's order may stand). Detached from the checkout's deadline: a
/// refund is owed even if the customer has stopped waiting.
async fn cancel_charge(
    deps: &Deps,
    key: &str,
    attempt: &str,
    amount: &Money,
    reason: String,
) -> Result<Cancellation, String> {
    let cancel = CancelCharge {
        idempotency_key: key.to_owned(),
        attempt: attempt.to_owned(),
        amount: amount.clone(),
        reason,
    };
    let outcome = answer(runtime::detached(async { deps.payment.call(cancel).await }).await)
        .map(|cancelled| cancelled.outcome);
    match &outcome {
        Ok(outcome) => {
            let key = runtime::text::without_guest_sessions(key);
            tracing::info!(key, ?outcome, "charge cancelled")
        }
        Err(error) => {
            let key = runtime::text::without_guest_sessions(key);
            tracing::error!(key, %error, "CHARGE NOT CANCELLED: it stays in the payment ledger")
        }
    }
    outcome
}

/// Lets go of this attempt's hold on the charge under `key` after a later
/// step failed for certain (see [`ChargeLeft`]): refunded if no other
/// submission holds it. By key and attempt, not by transaction id: the
/// charge may be held by another submission, whose order may be stored,
/// or land late; then it stands.
async fn give_back(
    deps: &Deps,
    key: &str,
    attempt: &str,
    amount: &Money,
    reason: String,
) -> ChargeLeft {
    match cancel_charge(deps, key, attempt, amount, reason).await {
        Ok(outcome) if outcome.nothing_charged() => ChargeLeft::Refunded,
        Ok(_) => ChargeLeft::KeptForAnotherSubmission,
        Err(_) => ChargeLeft::RefundFailed,
    }
}

/// A call's outcome as one `Result`: the answer, or why there is none (the
/// call's failure or the service's error), in words.
fn answer<T, E: std::fmt::Display>(outcome: Result<Result<T, E>, CallError>) -> Result<T, String> {
    match outcome {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(error)) => Err(error.to_string()),
        Err(error) => Err(error.to_string()),
    }
}

/// Finishing an order, left to go on after its checkout has answered
/// (see the end of [`place`]).
pub type Unfinished = futures_util::future::LocalBoxFuture<'static, ()>;

/// Places the order; `key` is the checkout's idempotency key (never empty);
/// `before`, the customer's checkouts this one waited for and is to settle
/// ([`Before`]), oldest first. Sets `settled` once it has settled them
/// all (or there were none): until then, a later checkout has them to
/// settle too. If it answers with the order before finishing it (the
/// cart, the confirmation), it leaves the rest in `unfinished`, for the
/// caller to run to its end before the checkout counts as over.
pub async fn place(
    deps: &Deps,
    request: &PlaceOrder,
    key: &str,
    before: &[Before],
    settled: &mut bool,
    unfinished: &mut Option<Unfinished>,
) -> Result<Order, CheckoutError> {
    check_request(request)?;

    // Placed already under this key? Then that is the answer.
    let earlier = deps
        .orders
        .call(FindOrder {
            idempotency_key: key.to_owned(),
        })
        .await
        .map_err(unavailable("orders"))?
        .map_err(CheckoutError::OrdersUnavailable)?;
    if let Some(order) = &earlier.order {
        tracing::info!(order_id = %order.order_id, "checkout repeated: the order stands");
    }
    // Stored, but perhaps never finished: the checkout that stored it did
    // not learn that it had (it answered "outcome unknown"), or stopped
    // before the cart and the confirmation, or one of them failed.
    if let Some(order) = finish_found(deps, earlier, key).await {
        return Ok(order);
    }
    // Not placed yet: what the checkouts before it left in the cart is not
    // this one's to pay for.
    // Not an earlier submission of this very checkout: this one is its
    // repeat, which settles it.
    for before in before.iter().filter(|before| before.key != key) {
        settle_earlier(deps, &request.user_id, before).await?;
    }
    *settled = true;
    // Nor are the lines of an order of the customer's whose cart could not
    // be emptied (it is the finisher's to do, a minute later at least).
    // Bookkeeping owed to those orders: not cut short by this deadline.
    runtime::detached(take_out_earlier_orders(deps, &request.user_id)).await?;

    let cart = deps
        .cart
        .call(GetCart {
            user_id: request.user_id.clone(),
        })
        .await
        .map_err(unavailable("cart"))?
        .map_err(CheckoutError::Cart)?;
    let cart_read_at = cart.read_at_ms;
    if cart.items.is_empty() {
        // Perhaps emptied by this very checkout, submitted meanwhile to
        // another replica (which stored the order after the lookup
        // above): then its order is the answer, not "your cart is empty".
        let again = deps
            .orders
            .call(FindOrder {
                idempotency_key: key.to_owned(),
            })
            .await;
        if let Ok(Ok(found)) = again
            && let Some(order) = finish_found(deps, found, key).await
        {
            return Ok(order);
        }
        return Err(CheckoutError::EmptyCart);
    }
    let currency = request.user_currency.as_str();
    let lines = try_join_all(
        cart.items
            .iter()
            .cloned()
            .map(|item| price(deps, item, currency)),
    )
    .await?;
    let quote = deps
        .shipping
        .call(GetQuote {
            address: request.address.clone(),
            items: cart.items.clone(),
        })
        .await
        .map_err(unavailable("shipping"))?
        .map_err(CheckoutError::ShippingRefused)?;
    let shipping_cost = convert(deps, quote.cost_usd, currency).await?;
    let mut total = shipping_cost.clone();
    for line in &lines {
        let cost = line
            .cost
            .checked_mul(i64::from(line.item.quantity))
            .map_err(too_large)?;
        total = total.checked_add(&cost).map_err(too_large)?;
    }
    if let Some(expected) = &request.expected_total
        && *expected != total
    {
        return Err(CheckoutError::TotalChanged {
            expected: expected.clone(),
            total,
        });
    }

    // Charge. A declined card changes nothing. A charge whose outcome is
    // unknown is cancelled, so that the customer is never charged for an
    // order they were told failed; but not one an earlier submission of
    // this checkout made, whose order may be stored yet.
    let attempt = uuid::Uuid::new_v4().to_string();
    let charged = deps
        .payment
        .call(Charge {
            amount: total.clone(),
            credit_card: request.credit_card.clone(),
            idempotency_key: key.to_owned(),
            attempt: attempt.clone(),
        })
        .await;
    // `Err(why)`: the charge's outcome is unknown.
    let charged = match charged {
        // The ledger failed: it may have failed to hear that its write
        // committed (a connection to PostgreSQL lost after the COMMIT went
        // out), so the charge may stand. As in doubt, then: cancelling
        // costs nothing if nothing was recorded.
        Ok(Err(PaymentError::Storage(reason))) => Err(reason),
        Ok(charged) => Ok(charged.map_err(payment_failed)?),
        Err(error) if error.did_not_run() => return Err(unavailable("payment")(error)),
        Err(error) => Err(error.to_string()),
    };
    let charged = match charged {
        Ok(charged) => charged,
        Err(reason) => {
            let why = format!("its outcome was unknown: {reason}");
            let cancelled = cancel_charge(deps, key, &attempt, &total, why)
                .await
                .is_ok_and(Cancellation::nothing_charged);
            return Err(CheckoutError::PaymentInDoubt { reason, cancelled });
        }
    };
    let transaction_id = charged.transaction_id;

    // Ship. If that fails, this attempt's charge is given back. Once the
    // card is charged, shipping and storing the order run on their own
    // time, as a refund does, not on what is left of the customer's: a
    // budget spent (waiting behind the customer's earlier checkout, a slow
    // charge) would fail them after the money was taken, and keep it in
    // doubt. A customer who gave up meanwhile finds the order by
    // submitting again.
    let ship = ShipOrder {
        address: request.address.clone(),
        items: cart.items.clone(),
        idempotency_key: key.to_owned(),
    };
    let shipped = runtime::detached(async { deps.shipping.call(ship).await }).await;
    let shipped = match shipped {
        Ok(Ok(shipped)) => Ok(shipped.tracking_id),
        // Refused, or not delivered: certainly not shipped. Outcome
        // unknown: the shipment may exist, but nothing is sent to the
        // customer without a stored order, so the money goes back either way.
        Ok(Err(error)) => Err(error.to_string()),
        Err(error) => Err(error.to_string()),
    };
    let tracking_id = match shipped {
        Ok(tracking_id) => tracking_id,
        Err(reason) => {
            let why = format!("shipping failed: {reason}");
            let charge = give_back(deps, key, &attempt, &total, why).await;
            return Err(CheckoutError::ShippingFailed { reason, charge });
        }
    };

    // Store. Only a stored order is confirmed.
    let order = Order {
        order_id: uuid::Uuid::new_v4().to_string(),
        customer_id: request.user_id.clone(),
        email: request.email.clone(),
        shipping_tracking_id: tracking_id,
        shipping_cost,
        shipping_address: request.address.clone(),
        items: lines,
        total: total.clone(),
        transaction_id: transaction_id.clone(),
        placed_at: runtime::wall_clock::unix_ms(),
        // Zero from a cart that does not say: the order's own time then.
        cart_read_at: (cart_read_at > 0).then_some(cart_read_at),
    };
    let save = SaveOrder {
        order,
        idempotency_key: key.to_owned(),
    };
    let saved = runtime::detached(async { deps.orders.call(save).await }).await;
    let order = match saved {
        Ok(Ok(saved)) if saved.created => saved.order,
        // Another submission of this checkout stored its order first (on
        // another replica, or landing late): finish what it left, as a
        // repeat would, not as if this one had stored it.
        Ok(Ok(saved)) => {
            tracing::info!(order_id = %saved.order.order_id, "the order was stored by another submission");
            let find = FindOrder {
                idempotency_key: key.to_owned(),
            };
            let (confirmed, done) =
                match runtime::detached(async { deps.orders.call(find).await }).await {
                    Ok(Ok(found)) => (found.confirmed, Done::of(&found)),
                    // Unknown: as if nothing were done, but the cart
                    // emptied only if unchanged.
                    _ => (false, Done::default()),
                };
            let finishing = finish_as_found(deps, saved.order, key, confirmed, done);
            return Ok(runtime::detached(finishing).await);
        }
        // The store failed. It may have failed to hear that its write
        // committed, or the write may still be running (a connection to
        // PostgreSQL lost after the INSERT went out): look, once such a
        // write has ended (`FindSettledOrder`), before giving the money
        // back. Found: finish it. Not there: give back. Not known: keep
        // the charge, as for a call whose outcome is unknown (below).
        Ok(Err(error)) => {
            let reason = error.to_string();
            let settled = FindSettledOrder {
                idempotency_key: key.to_owned(),
            };
            match runtime::detached(async { deps.orders.call(settled).await }).await {
                Ok(Ok(found)) => {
                    if let Some(order) = &found.order {
                        tracing::warn!(order_id = %order.order_id, %error, "the order store failed, but the order was stored");
                    }
                    if let Some(order) = finish_found(deps, found, key).await {
                        return Ok(order);
                    }
                    let why = format!("order not stored: {reason}");
                    let charge = give_back(deps, key, &attempt, &total, why).await;
                    return Err(CheckoutError::OrderNotStored { reason, charge });
                }
                _ => {
                    let key = runtime::text::without_guest_sessions(key);
                    tracing::warn!(key, transaction_id, %error, "order outcome unknown (the store failed and could not be read): the charge stands until the checkout is repeated");
                    return Err(CheckoutError::OrderOutcomeUnknown { reason });
                }
            }
        }
        Err(error) if save_may_have_run(&error) => {
            // It may have been stored, or may yet be: a request that
            // reached a stalled node runs when the node resumes, unless
            // its deadline has passed by then. Look; if it is not there
            // (yet), keep the charge rather than refund an order that
            // may stand: the same checkout again finishes it, with this
            // charge (payment is idempotent by key) and one order.
            let reason = error.to_string();
            let find = FindOrder {
                idempotency_key: key.to_owned(),
            };
            if let Ok(Ok(found)) = runtime::detached(async { deps.orders.call(find).await }).await
                && let Some(order) = finish_found(deps, found, key).await
            {
                return Ok(order);
            }
            let key = runtime::text::without_guest_sessions(key);
            tracing::warn!(key, transaction_id, %error, "order outcome unknown: the charge stands until the checkout is repeated");
            return Err(CheckoutError::OrderOutcomeUnknown { reason });
        }
        Err(error) => {
            let reason = error.to_string();
            let why = format!("order not stored: {reason}");
            let charge = give_back(deps, key, &attempt, &total, why).await;
            return Err(CheckoutError::OrderNotStored { reason, charge });
        }
    };
    tracing::info!(order_id = %order.order_id, total = %order.total, "order placed");
    // Finished here (the cart emptied, the confirmation sent) so that the
    // customer's next page shows it done; but the order stands, and its
    // answer waits for that at most FINISH_WAIT: past it (a slow email or
    // cart module, each step up to a call timeout), the customer, who
    // waits for checkout only so long, is told their order is placed, not
    // that it may not be, and the finishing goes on (`unfinished`): the
    // checkout is not over until it ends, so the customer's next checkout
    // still waits for it (and finds the cart emptied), a repeat gets this
    // answer rather than finishing it a second time, and the node's
    // shutdown waits. What fails there is finished later, as ever.
    let mut finishing: Unfinished = {
        let deps = deps.clone();
        let key = key.to_owned();
        let order = order.clone();
        Box::pin(runtime::detached(async move {
            finish(&deps, order, &key, EmptyTheCart::Always, Done::default()).await;
        }))
    };
    if tokio::time::timeout(FINISH_WAIT, &mut finishing)
        .await
        .is_err()
    {
        tracing::info!(order_id = %order.order_id, "the order is placed; finishing it (the cart, the confirmation) goes on after the answer");
        *unfinished = Some(finishing);
    }
    Ok(order)
}

/// How long a checkout's answer waits for its order to be finished (see
/// the end of [`place`]).
const FINISH_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Whether a `SaveOrder` that failed with `error` may have stored the
/// order (or may yet): then its charge is kept until that is known. One
/// that certainly did not run, including one the peer rejected (a node
/// that does not host orders, a message it cannot read), is given back.
fn save_may_have_run(error: &runtime::CallError) -> bool {
    !error.did_not_run()
}

#[cfg(test)]
mod save_tests {
    use runtime::{CallError, Rejection};

    use super::save_may_have_run;

    #[test]
    fn only_a_save_that_may_have_run_keeps_its_charge() {
        let service = || "orders".to_owned();
        let reason = || "why".to_owned();
        let unknown = CallError::OutcomeUnknown {
            service: service(),
            reason: reason(),
        };
        assert!(save_may_have_run(&unknown));
        let timed_out = CallError::TimedOut {
            service: service(),
            after_ms: 1000,
        };
        assert!(save_may_have_run(&timed_out));
        let not_delivered = CallError::NotDelivered {
            service: service(),
            reason: reason(),
        };
        assert!(!save_may_have_run(&not_delivered));
        let overloaded = CallError::Overloaded {
            service: service(),
            reason: reason(),
        };
        assert!(!save_may_have_run(&overloaded));
        let orders = "orders";
        let rejected = CallError::Rejected {
            service: orders.into(),
            reason: Rejection::NotHosted {
                service: orders.into(),
                node: "pay".into(),
            },
        };
        assert!(
            !save_may_have_run(&rejected),
            "a rejected save did not run: its charge goes back"
        );
    }
}
