//! The cart service's API.

use runtime::Empty;
use serde::{Deserialize, Serialize};

/// A product and how many of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartItem {
    /// The product id.
    pub product_id: String,
    /// How many.
    pub quantity: i32,
}

/// Adds `item` to the user's cart (to its line, if the product is there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    /// Whose cart.
    pub user_id: String,
    /// What to add.
    pub item: CartItem,
}

/// Asks for the user's cart. A user with no cart has an empty one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetCart {
    /// Whose cart.
    pub user_id: String,
}

/// Empties the user's cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyCart {
    /// Whose cart.
    pub user_id: String,
}

/// Takes an order's lines out of the user's cart some time after the
/// order was placed, when the customer may have changed the cart since:
/// each line that holds just what was ordered of its product (the same
/// quantity) and did not change after `unchanged_since_ms` is removed;
/// every other line stays, put in or changed since (the customer's next
/// purchase, or theirs to look at: a cart emptied and filled again with
/// the same things is not the order's). One step, so a line added
/// meanwhile is not lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveOrderedLines {
    /// Whose cart.
    pub user_id: String,
    /// The order's lines (a product named twice counts once, with the
    /// quantities added).
    pub items: Vec<CartItem>,
    /// If given, a line added to or changed after this time (ms since the
    /// Unix epoch, by the cart's clock) stays: the time the order was
    /// placed.
    #[serde(default)]
    pub unchanged_since_ms: Option<i64>,
}

/// What [`RemoveOrderedLines`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveOrderedLinesResponse {
    /// How many of the order's lines it removed.
    pub removed: u32,
    /// How many lines the cart holds now (0: empty).
    pub lines_left: u32,
}

/// Moves every line of one cart into another (adding quantities), leaving
/// the first empty: a visitor's cart follows them when they sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeCarts {
    /// The cart to empty (the visitor's session id).
    pub from_user_id: String,
    /// The cart to add to (the user's id).
    pub into_user_id: String,
}

/// A user's cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    /// Whose cart.
    pub user_id: String,
    /// Its lines, in the order they were first added.
    pub items: Vec<CartItem>,
    /// When it was read, by the cart's clock (ms since the Unix epoch; 0
    /// if not known): an order placed from these lines passes it to
    /// [`RemoveOrderedLines`] as `unchanged_since_ms`, both times on one
    /// clock, whichever node the order is placed on.
    #[serde(default)]
    pub read_at_ms: i64,
}

/// Why the cart refused a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CartError {
    /// Quantities must be 1 or more.
    #[error("quantity must be at least 1, not {quantity}")]
    InvalidQuantity {
        /// The quantity given.
        quantity: i32,
    },
    /// The line would hold more than fits.
    #[error("the cart cannot hold more than {max} of product {product_id}")]
    QuantityTooLarge {
        /// The product.
        product_id: String,
        /// The most a line can hold.
        max: i32,
    },
    /// The cart has as many lines as it may.
    #[error("the cart already holds {max} different products")]
    TooManyItems {
        /// The most lines a cart can hold.
        max: usize,
    },
    /// The user id is empty, too long, or holds a control character.
    #[error("user id must be 1 to {max} bytes, with no control characters")]
    InvalidUserId {
        /// The longest id accepted.
        max: usize,
    },
    /// The product id is empty, too long, or holds a control character.
    #[error("product id must be 1 to {max} bytes, with no control characters")]
    InvalidProductId {
        /// The longest id accepted.
        max: usize,
    },
    /// The carts could not be read or written.
    #[error("Can't access cart storage: {0}")]
    Storage(String),
}

runtime::service! {
    /// Shopping carts: the `cart` module's service.
    pub CartService = "cart", error CartError {
        AddItem -> Empty [key = user_id],
        GetCart -> Cart [idempotent, key = user_id],
        EmptyCart -> Empty [idempotent, key = user_id],
        RemoveOrderedLines -> RemoveOrderedLinesResponse [idempotent, key = user_id],
        MergeCarts -> Empty [key = into_user_id],
    }
}
