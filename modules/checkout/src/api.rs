//! The checkout service's API.

use cart::api::CartError;
use catalog::api::CatalogError;
use currency::api::{CurrencyError, Money};
use orders::api::{Order, OrdersError};
use payment::api::{CreditCardInfo, PaymentError};
use runtime::CallError;
use serde::{Deserialize, Serialize};
use shipping::api::{Address, ShippingError};

/// Buys what is in `user_id`'s cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    /// Whose cart (a user id, or a visitor's session id).
    pub user_id: String,
    /// The currency to charge in, e.g. `EUR`.
    pub user_currency: String,
    /// Where to ship.
    pub address: Address,
    /// Where the confirmation goes.
    pub email: String,
    /// The card to charge.
    pub credit_card: CreditCardInfo,
    /// Identifies this checkout: submitting it again gives the same order.
    /// Empty: a fresh one. Keys are per customer (see [`order_key`]).
    #[serde(default)]
    pub idempotency_key: String,
    /// The total the customer was shown, shipping included, if the client
    /// showed one: if the cart's total (in `user_currency`) is another
    /// now (another tab changed the cart, or the currency), nothing is
    /// charged and the checkout fails with [`CheckoutError::TotalChanged`].
    #[serde(default)]
    pub expected_total: Option<Money>,
}

/// Whether `key` may be a checkout's idempotency key: empty (a fresh
/// checkout), or up to 128 letters, digits, `-` and `_`. The services the
/// key reaches store it in an index (PostgreSQL's refuses a NUL, and
/// entries past about 2.7 KB): refused before anything is charged.
pub fn is_idempotency_key(key: &str) -> bool {
    key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The key a customer's checkout is kept under by the services it calls
/// (its order, its charge and its shipment): the client's idempotency key
/// made the customer's own, so that two customers who happen to pick the
/// same key never meet (neither is handed the other's order, nor ships on
/// the other's charge). The customer id's length comes first, so no two
/// pairs of customer and key give the same string.
pub fn order_key(customer_id: &str, idempotency_key: &str) -> String {
    format!("{}:{customer_id}:{idempotency_key}", customer_id.len())
}

/// The order placed (or placed before under the same key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceOrderResponse {
    /// The order.
    pub order: Order,
}

/// Why no order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CheckoutError {
    /// There is nothing in the cart.
    #[error("your cart is empty")]
    EmptyCart,
    /// A field of the request is not acceptable.
    #[error("{field}: {reason}")]
    InvalidRequest {
        /// The field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The currency is not one the shop converts to.
    #[error("{0}")]
    Currency(CurrencyError),
    /// A product in the cart is not in the catalogue any more.
    #[error("{0}")]
    Catalog(CatalogError),
    /// The cart refused.
    #[error("{0}")]
    Cart(CartError),
    /// The card was declined; nothing was charged.
    #[error("your card was declined: {0}")]
    PaymentDeclined(PaymentError),
    /// The cart's total is not the one the customer was shown
    /// ([`PlaceOrder::expected_total`]); nothing was charged.
    #[error(
        "your cart's total is {} now, not the {} you were shown (the cart or the currency changed meanwhile); this attempt charged nothing: check your cart and place the order again",
        .total.display(),
        .expected.display()
    )]
    TotalChanged {
        /// What the customer was shown.
        expected: Money,
        /// What the cart comes to now.
        total: Money,
    },
    /// This checkout's key was used before for another total, or its
    /// charge was refunded (shipping failed): the customer starts a new
    /// checkout. Nothing was charged this time.
    #[error("{}", checkout_used(.0))]
    CheckoutUsed(PaymentError),
    /// The charge's outcome is unknown (the payment service stopped
    /// answering mid-call, or its ledger failed, perhaps after its write
    /// committed). The charge was then cancelled, if that
    /// worked (nothing is charged, and a late charge is refused), or else
    /// stands: the same checkout again finishes it, charged once.
    #[error("{}", payment_in_doubt(.reason, *.cancelled))]
    PaymentInDoubt {
        /// What went wrong with the call.
        reason: String,
        /// True if the charge was cancelled.
        cancelled: bool,
    },
    /// The shipping service could not quote the order; this submission
    /// charged nothing. (A repeat's earlier submission may have: that
    /// charge stands, as its own error said, until the checkout goes
    /// through.)
    #[error("{0}; this attempt charged nothing")]
    ShippingRefused(ShippingError),
    /// The order store could not be read before anything was charged by
    /// this submission.
    #[error("{0}; this attempt charged nothing")]
    OrdersUnavailable(OrdersError),
    /// Shipping failed after the card was charged.
    #[error("shipping is unavailable ({reason}){}", charge.told())]
    ShippingFailed {
        /// Why shipping failed.
        reason: String,
        /// What became of the charge.
        charge: ChargeLeft,
    },
    /// The order could not be stored after the card was charged.
    #[error("your order could not be recorded ({reason}){}", charge.told())]
    OrderNotStored {
        /// Why.
        reason: String,
        /// What became of the charge.
        charge: ChargeLeft,
    },
    /// The order may or may not have been stored (the orders service
    /// stopped answering mid-call). The charge stands: submitting the same
    /// checkout (same idempotency key) again finishes it, with the same
    /// charge and at most one order.
    #[error(
        "we could not confirm your order ({reason}); submit the same checkout again to finish it: you will not be charged twice"
    )]
    OrderOutcomeUnknown {
        /// What went wrong with the call.
        reason: String,
    },
    /// A service checkout needs did not answer.
    #[error("the {service} service is unavailable: {error}")]
    Unavailable {
        /// Which service.
        service: String,
        /// What went wrong with the call.
        error: CallError,
    },
    /// Another checkout of this customer (another key) ran just before and
    /// left the cart as it was: its order may stand or land (its outcome
    /// is in doubt), or it stands and its lines could not be taken out of
    /// the cart. Nothing was charged this time, so the same lines are not
    /// paid for twice; the customer sees the cart again (or submits the
    /// earlier checkout again, which finishes it).
    #[error(
        "another checkout of this cart is not settled yet: nothing was charged this time; \
         look at your orders and your cart before you check out again"
    )]
    EarlierCheckoutUnsettled,
}

/// What a failed submission leaves under its checkout's key (see
/// [`CheckoutError::key_left`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLeft {
    /// The checkout may be unfinished: money may stand under its key (for
    /// an order that may yet land, or that a refund could not give back),
    /// and submitting the same checkout again finishes it, charged once.
    /// A new checkout instead could charge a second time.
    Unfinished,
    /// Nothing more can be done with the key: its charge refunded or
    /// cancelled, or the key used for another total (the cart changed
    /// since; the first submission's charge may then stand, for its order
    /// if that lands, which checkout's finisher then finishes). A new
    /// checkout is the way on.
    Settled,
    /// This submission failed before it could change anything under the
    /// key (a declined card, a service down before the charge): the key
    /// is as it was before it.
    Untouched,
}

/// What became of the charge when shipping or storing the order failed
/// after it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeLeft {
    /// Given back: nothing is charged under the checkout's key.
    Refunded,
    /// It stands, because another submission of the same checkout still
    /// holds it (made it or took it up, and has not failed for certain):
    /// that submission's order may be stored (or be in doubt and land
    /// later), and giving it back could give the goods away. The same
    /// checkout again finishes the order on it.
    KeptForAnotherSubmission,
    /// The refund failed: the charge stands. The same checkout again
    /// finishes the order on it; otherwise a person settles it from the
    /// ledger.
    RefundFailed,
}

impl ChargeLeft {
    /// What the customer is told about their card, after what failed.
    fn told(self) -> &'static str {
        match self {
            ChargeLeft::Refunded => "; your card was refunded and your cart kept",
            ChargeLeft::KeptForAnotherSubmission => {
                "; another submission of this checkout may have placed the order, so its payment stands: submit the same checkout again to finish it; you will not be charged twice"
            }
            ChargeLeft::RefundFailed => {
                ", and the refund of your card failed: your payment stands; submit the same checkout again to finish the order, or contact the shop"
            }
        }
    }
}

fn checkout_used(error: &PaymentError) -> String {
    let why = match error {
        PaymentError::KeyReused { .. } => "it was paid for before, with another total",
        PaymentError::AlreadyRefunded { .. } => "its payment was refunded",
        PaymentError::Cancelled { .. } => "its payment was cancelled",
        _ => "its payment cannot be made again",
    };
    format!("this checkout cannot be submitted again ({why}): load your cart to check out afresh")
}

fn payment_in_doubt(reason: &str, cancelled: bool) -> String {
    if cancelled {
        format!(
            "we could not confirm your payment ({reason}), so it was cancelled: you are not charged (a charge that went through is refunded); load your cart to check out again"
        )
    } else {
        format!(
            "we could not confirm your payment ({reason}) nor cancel it: submit the same checkout again to finish it; you will not be charged twice"
        )
    }
}

/// What a customer is told of a checkout that failed before any charge.
pub const TOLD_NOTHING_CHARGED: &str = "this attempt charged nothing";

/// What a customer is told of a checkout whose order may or may not stand.
pub const TOLD_ORDER_IN_DOUBT: &str = "we could not confirm your order; submit the same checkout again to finish it: you will not be charged twice";

impl CheckoutError {
    /// What this failure leaves under the checkout's key: whether only
    /// the same checkout again can finish it, nothing stands under it any
    /// more, or this submission changed nothing there.
    pub fn key_left(&self) -> KeyLeft {
        match self {
            CheckoutError::OrderOutcomeUnknown { .. } => KeyLeft::Unfinished,
            CheckoutError::PaymentInDoubt { cancelled, .. } => {
                if *cancelled {
                    KeyLeft::Settled
                } else {
                    KeyLeft::Unfinished
                }
            }
            CheckoutError::ShippingFailed { charge, .. }
            | CheckoutError::OrderNotStored { charge, .. } => match charge {
                ChargeLeft::Refunded => KeyLeft::Settled,
                ChargeLeft::KeptForAnotherSubmission | ChargeLeft::RefundFailed => {
                    KeyLeft::Unfinished
                }
            },
            CheckoutError::CheckoutUsed(_) => KeyLeft::Settled,
            _ => KeyLeft::Untouched,
        }
    }

    /// What the customer must be told of a failure on the shop's side,
    /// without the internal reason it carries (a node's name, a database's
    /// message): what became of their money and what to do. `None` for a
    /// failure about the request, whose message is all there is to say.
    pub fn told_to_customer(&self) -> Option<String> {
        if !self.is_unavailable() {
            return None;
        }
        Some(match self {
            CheckoutError::PaymentInDoubt { cancelled: true, .. } => {
                "we could not confirm your payment, so it was cancelled: you are not charged (a charge that went through is refunded); load your cart to check out again".to_owned()
            }
            CheckoutError::PaymentInDoubt { cancelled: false, .. } => {
                "we could not confirm your payment nor cancel it: submit the same checkout again to finish it; you will not be charged twice".to_owned()
            }
            CheckoutError::ShippingFailed { charge, .. } => {
                format!("shipping failed after your card was charged{}", charge.told())
            }
            CheckoutError::OrderNotStored { charge, .. } => {
                format!("your order could not be recorded{}", charge.told())
            }
            CheckoutError::OrderOutcomeUnknown { .. } => {
                TOLD_ORDER_IN_DOUBT.to_owned()
            }
            // Before any charge (KeyLeft::Untouched).
            _ => TOLD_NOTHING_CHARGED.to_owned(),
        })
    }

    /// True if the failure is on the shop's side (the customer can only
    /// retry later), rather than something about the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            CheckoutError::Unavailable { .. }
                | CheckoutError::ShippingFailed { .. }
                | CheckoutError::OrderNotStored { .. }
                | CheckoutError::OrderOutcomeUnknown { .. }
                | CheckoutError::PaymentInDoubt { .. }
                | CheckoutError::ShippingRefused(ShippingError::Unavailable { .. })
                | CheckoutError::OrdersUnavailable(_)
        )
    }
}

runtime::service! {
    /// Placing orders: the `checkout` module's service.
    pub Checkout = "checkout", error CheckoutError {
        PlaceOrder -> PlaceOrderResponse,
    }
}
