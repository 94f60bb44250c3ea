//! The orders service's API, and the shape of an order.

use cart::api::CartItem;
use currency::api::Money;
use serde::{Deserialize, Serialize};
use shipping::api::Address;

/// One line of an order: what, how many, and the price of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// The product and quantity.
    pub item: CartItem,
    /// The price of one, in the order's currency.
    pub cost: Money,
    /// The product's name when it was bought.
    pub name: String,
}

/// A placed order.
///
/// Unlike the requests, it passes over fields it does not know, on
/// purpose: it is stored as JSON, and while a deployment is upgraded an
/// older node reads the orders a newer one stored (with a field added). So
/// `boutique call orders SaveOrder` with a misspelled optional field
/// (`cart_read_a`) saves the order without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Its id (a UUID).
    pub order_id: String,
    /// Whose: a user id, or a visitor's session id.
    pub customer_id: String,
    /// Where the confirmation went.
    pub email: String,
    /// The shipment's tracking id.
    pub shipping_tracking_id: String,
    /// Shipping, in the order's currency.
    pub shipping_cost: Money,
    /// Where it is shipped.
    pub shipping_address: Address,
    /// What was bought.
    pub items: Vec<OrderItem>,
    /// What was charged: shipping plus every line's cost times quantity.
    pub total: Money,
    /// The payment's id.
    pub transaction_id: String,
    /// When, in milliseconds since the Unix epoch.
    pub placed_at: i64,
    /// When the cart it was placed from was read, by the cart's clock
    /// (ms since the Unix epoch): its lines unchanged since are the ones
    /// ordered (see the cart's `RemoveOrderedLines`). None for an order
    /// stored before this was kept: `placed_at` stands in.
    #[serde(default)]
    pub cart_read_at: Option<i64>,
}

/// How far the clocks of two cart replicas may disagree: a line stamped by
/// one (added) and a cart read by the other count as read after it within
/// this. A line put back within it of the read would be taken for the
/// order's, which takes a second's clicking in another tab.
pub const CART_CLOCK_SLACK_MS: i64 = 1000;

impl Order {
    /// The time the cart's lines must not have changed after to be this
    /// order's: when its cart was read, by the cart's clock, and
    /// [`CART_CLOCK_SLACK_MS`] (the order's own time, on the checkout's
    /// clock, for an older order).
    pub fn cart_unchanged_since(&self) -> i64 {
        self.cart_read_at.map_or(self.placed_at, |read| {
            read.saturating_add(CART_CLOCK_SLACK_MS)
        })
    }
}

/// Stores `order`, unless an order was stored under `idempotency_key`
/// already: then that one is returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveOrder {
    /// The order.
    pub order: Order,
    /// The checkout's idempotency key.
    pub idempotency_key: String,
}

/// The order stored under the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveOrderResponse {
    /// The stored order (the given one, or the one that was there).
    pub order: Order,
    /// True if this call stored it.
    pub created: bool,
}

/// Asks for one of a customer's orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetOrder {
    /// The customer (another customer's order is not found).
    pub customer_id: String,
    /// The order.
    pub order_id: String,
}

/// Asks for a page of a customer's orders, newest first: at most 200,
/// from the newest, or from the one after `before`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListOrders {
    /// The customer.
    pub customer_id: String,
    /// The id of the last order of the page before (a response's
    /// `next_before`), or none for the first page. An id that is not one
    /// of the customer's orders is [`OrdersError::NotFound`].
    #[serde(default)]
    pub before: Option<String>,
}

/// A page of a customer's orders, newest first (at most 200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOrdersResponse {
    /// The orders.
    pub orders: Vec<Order>,
    /// If the customer has older orders than these: the `before` that
    /// lists the next page of them.
    pub next_before: Option<String>,
}

/// Asks for the order stored under a checkout's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindOrder {
    /// The key.
    pub idempotency_key: String,
}

/// [`FindOrder`], once every write of an order under the key that had
/// begun has ended, committed or not: what a checkout asks before it gives
/// the charge back after its `SaveOrder` failed, so that an order whose
/// write was still running (its connection to the database lost) is found,
/// not left to land on a charge given back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindSettledOrder {
    /// The key.
    pub idempotency_key: String,
}

/// The order under the key, if there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindOrderResponse {
    /// The order.
    pub order: Option<Order>,
    /// True once checkout has finished it ([`ConfirmOrder`]): its cart
    /// emptied and its confirmation sent.
    #[serde(default)]
    pub confirmed: bool,
    /// True once its confirmation was sent ([`RecordStepDone`]).
    #[serde(default)]
    pub emailed: bool,
    /// True once its customer's cart was emptied, or found changed and
    /// left ([`RecordStepDone`]).
    #[serde(default)]
    pub cart_emptied: bool,
}

/// A step of finishing an order (see [`ConfirmOrder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinishStep {
    /// The customer's cart emptied (or found changed since, and left).
    CartEmptied,
    /// The confirmation email sent.
    ConfirmationSent,
}

/// Records that a step of finishing the order stored under a key is
/// done, so that finishing the order later does not do it again. Again
/// is fine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordStepDone {
    /// The checkout's idempotency key.
    pub idempotency_key: String,
    /// The step.
    pub step: FinishStep,
}

/// Records that checkout has finished the order stored under a key: the
/// customer's cart emptied and the confirmation sent. Again is fine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmOrder {
    /// The checkout's idempotency key.
    pub idempotency_key: String,
}

/// Whether there was an order to confirm (or to record a step of).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmOrderResponse {
    /// False if no order is stored under the key.
    pub found: bool,
}

/// Claims orders that checkout stored but has not finished (their cart
/// not emptied or their confirmation not sent: [`ConfirmOrder`] never
/// came), for checkout's background finisher. Only orders stored (by the
/// orders module's clock) at least `unfinished_for_ms` ago (so that no
/// checkout still working on one is raced) and at most
/// `not_older_than_ms` ago, and not claimed in the last `lease_ms` (so
/// that two finishers do not take one order at once, and one that stopped
/// midway lets it go), are claimed, oldest first, at most `limit` (capped
/// at 100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimUnfinished {
    /// Only orders stored at least this long ago, in milliseconds.
    pub unfinished_for_ms: i64,
    /// Only orders stored at most this long ago, in milliseconds.
    pub not_older_than_ms: i64,
    /// How long a claim holds, in milliseconds.
    pub lease_ms: i64,
    /// At most this many.
    pub limit: u32,
}

/// The orders claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimUnfinishedResponse {
    /// Oldest first.
    pub orders: Vec<UnfinishedOrder>,
}

/// An order checkout has not finished, and the key it is stored under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnfinishedOrder {
    /// The checkout's idempotency key (for [`ConfirmOrder`]).
    pub idempotency_key: String,
    /// The order.
    pub order: Order,
    /// True if its confirmation was sent ([`RecordStepDone`]).
    pub emailed: bool,
    /// True if its customer's cart was emptied ([`RecordStepDone`]).
    pub cart_emptied: bool,
}

/// Asks for a customer's orders whose cart is not recorded as emptied
/// ([`RecordStepDone`]) nor the order confirmed, placed at most
/// `not_older_than_ms` ago: what a checkout takes out of the cart before
/// it reads it, so that a checkout after one whose cart could not be
/// emptied does not pay for its lines again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindCartsToEmpty {
    /// The customer.
    pub customer_id: String,
    /// Only orders placed at most this long ago, in milliseconds.
    pub not_older_than_ms: i64,
}

/// The orders [`FindCartsToEmpty`] found (at most [`CARTS_TO_EMPTY`]),
/// newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindCartsToEmptyResponse {
    /// Each with the key it is stored under.
    pub orders: Vec<UnfinishedOrder>,
}

/// The most orders [`FindCartsToEmpty`] answers with.
pub const CARTS_TO_EMPTY: u32 = 20;

/// Moves a visitor's orders to the account they signed in to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimOrders {
    /// The visitor's session id.
    pub from_customer_id: String,
    /// The user id.
    pub to_customer_id: String,
}

/// How many orders moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimOrdersResponse {
    /// The count.
    pub moved: u64,
}

/// Why an order could not be stored or found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum OrdersError {
    /// The customer has no order with that id.
    #[error("no order {order_id}")]
    NotFound {
        /// The id asked for.
        order_id: String,
    },
    /// The order is not well formed.
    #[error("invalid order: {0}")]
    InvalidOrder(String),
    /// The orders could not be read or written.
    #[error("the order store is unavailable: {0}")]
    Storage(String),
}

runtime::service! {
    /// Stored orders: the `orders` module's service.
    pub Orders = "orders", error OrdersError {
        SaveOrder -> SaveOrderResponse,
        GetOrder -> Order [idempotent],
        ListOrders -> ListOrdersResponse [idempotent],
        FindOrder -> FindOrderResponse [idempotent],
        FindSettledOrder -> FindOrderResponse [idempotent],
        ConfirmOrder -> ConfirmOrderResponse [idempotent],
        RecordStepDone -> ConfirmOrderResponse [idempotent],
        ClaimOrders -> ClaimOrdersResponse,
        ClaimUnfinished -> ClaimUnfinishedResponse,
        FindCartsToEmpty -> FindCartsToEmptyResponse [idempotent],
    }
}
