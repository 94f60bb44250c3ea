//! The frontend service's API: where the shop can be reached.

use serde::{Deserialize, Serialize};

/// Asks where the shop's web server listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetStatus {}

/// Where the shop's web server listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontendStatus {
    /// The address it is bound to, e.g. `127.0.0.1:8080`.
    pub address: String,
    /// The shop's URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
}

/// Why the frontend cannot say where the shop is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum FrontendError {
    /// The web server has stopped (its node is shutting down).
    #[error("the web server has stopped")]
    Stopped,
}

runtime::service! {
    /// The web frontend: the `frontend` module's service.
    pub Frontend = "frontend", error FrontendError {
        GetStatus -> FrontendStatus [idempotent],
    }
}
