//! The recommendation service's API.

use catalog::api::CatalogError;
use runtime::CallError;
use serde::{Deserialize, Serialize};

/// Asks for products to recommend to `user_id`, other than `product_ids`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRecommendations {
    /// Who asks (not used to choose, as in the original; empty if left
    /// out, as proto3's JSON leaves out empty fields).
    #[serde(default)]
    pub user_id: String,
    /// Products not to recommend (those on the page, or in the cart;
    /// none if left out).
    #[serde(default)]
    pub product_ids: Vec<String>,
}

/// Up to five product ids, in random order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRecommendationsResponse {
    /// The recommended products.
    pub product_ids: Vec<String>,
}

/// Why no recommendations could be made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RecommendationError {
    /// The catalog could not be reached.
    #[error("the catalog is unavailable: {0}")]
    CatalogUnavailable(CallError),
    /// The catalog answered with an error.
    #[error("the catalog refused: {0}")]
    Catalog(CatalogError),
}

runtime::service! {
    /// Product recommendations: the `recommendation` module's service.
    pub Recommendation = "recommendation", error RecommendationError {
        ListRecommendations -> ListRecommendationsResponse [idempotent],
    }
}
