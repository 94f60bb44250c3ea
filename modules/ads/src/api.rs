//! The ads service's API.

use serde::{Deserialize, Serialize};

/// A text ad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ad {
    /// Where a click goes, e.g. `/product/66VCHSJNUP`.
    pub redirect_url: String,
    /// What it says.
    pub text: String,
}

/// Asks for ads relevant to some categories (none: any ads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetAds {
    /// Product categories, e.g. `["kitchen"]` (none if left out, as
    /// proto3's JSON leaves out an empty list: `{}` asks for any ads).
    #[serde(default)]
    pub context_keys: Vec<String>,
}

/// The ads: every ad of each matching category, in the order of the keys;
/// two random ads when nothing matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetAdsResponse {
    /// The ads.
    pub ads: Vec<Ad>,
}

/// Why no ads were given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AdsError {
    /// More context keys than any page has.
    #[error("too many context keys ({count}; at most {max})")]
    TooManyKeys {
        /// How many were given.
        count: usize,
        /// The most accepted.
        max: usize,
    },
}

runtime::service! {
    /// Text ads: the `ads` module's service.
    pub Ads = "ads", error AdsError {
        GetAds -> GetAdsResponse [idempotent],
    }
}
