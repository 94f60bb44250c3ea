//! The catalog service's API: products and how to ask for them.

use currency::api::Money;
use serde::{Deserialize, Serialize};

/// A product for sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Its id, e.g. `OLJCESPC7Z`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// A sentence about it.
    pub description: String,
    /// The URL path of its photo, e.g. `/static/img/products/mug.jpg`.
    pub picture: String,
    /// Its price in US dollars.
    pub price_usd: Money,
    /// Its categories, e.g. `["kitchen"]`.
    pub categories: Vec<String>,
}

/// Asks for every product, in catalogue order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListProducts {}

/// Every product, in catalogue order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListProductsResponse {
    /// The products.
    pub products: Vec<Product>,
}

/// Asks for one product by its exact (case-sensitive) id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetProduct {
    /// The product id.
    pub id: String,
}

/// Asks for the products whose name or description contains `query`,
/// ignoring case. An empty query matches every product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchProducts {
    /// The text to look for.
    pub query: String,
}

/// The products that matched, in catalogue order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchProductsResponse {
    /// The matches.
    pub results: Vec<Product>,
}

/// Why the catalog could not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CatalogError {
    /// No product has that id.
    #[error("no product with ID {id}")]
    ProductNotFound {
        /// The id asked for.
        id: String,
    },
}

runtime::service! {
    /// The product catalogue: the `catalog` module's service.
    pub Catalog = "catalog", error CatalogError {
        ListProducts -> ListProductsResponse [idempotent],
        GetProduct -> Product [idempotent],
        SearchProducts -> SearchProductsResponse [idempotent],
    }
}
