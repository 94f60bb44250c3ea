//! The shipping service's API.

use cart::api::CartItem;
use currency::api::Money;
use serde::{Deserialize, Serialize};

/// Where an order goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street and number.
    pub street_address: String,
    /// City.
    pub city: String,
    /// State or region.
    pub state: String,
    /// Country.
    pub country: String,
    /// Postal code.
    pub zip_code: i32,
}

/// Asks what shipping `items` to `address` costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetQuote {
    /// The destination (the quote does not depend on it).
    pub address: Address,
    /// What is shipped (nothing if left out, as proto3's JSON leaves out
    /// an empty list).
    #[serde(default)]
    pub items: Vec<CartItem>,
}

/// The cost, in US dollars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetQuoteResponse {
    /// The cost.
    pub cost_usd: Money,
}

/// Ships `items` to `address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipOrder {
    /// The destination.
    pub address: Address,
    /// What is shipped (nothing if left out).
    #[serde(default)]
    pub items: Vec<CartItem>,
    /// Identifies the shipment: the same key to the same address always
    /// gets the same tracking id (its middle digits are the address's
    /// length, as in the original's ids). Empty: a fresh random id, so a call sent again (to another
    /// replica, after one whose outcome is unknown) gets another one; the
    /// module keeps nothing, so nothing ships twice, but a caller that
    /// wants one tracking id per shipment gives a key (checkout does).
    #[serde(default)]
    pub idempotency_key: String,
}

/// The shipment's tracking id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipOrderResponse {
    /// E.g. `KQ-44123-221234567`.
    pub tracking_id: String,
}

/// Why there is no quote or no shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ShippingError {
    /// An item has a quantity below 1.
    #[error("item {product_id} has quantity {quantity}; quantities must be at least 1")]
    InvalidQuantity {
        /// The product.
        product_id: String,
        /// Its quantity.
        quantity: i32,
    },
    /// There is nothing to ship.
    #[error("there is nothing to ship")]
    NothingToShip,
    /// Shipping is not available now.
    #[error("shipping is unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
}

runtime::service! {
    /// Shipping quotes and shipments: the `shipping` module's service.
    pub Shipping = "shipping", error ShippingError {
        GetQuote -> GetQuoteResponse [idempotent],
        ShipOrder -> ShipOrderResponse [idempotent],
    }
}
