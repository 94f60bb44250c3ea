//! The currency service's API: its messages, replies and errors, and the
//! [`Money`] type every module that deals in prices shares.

mod money;

use serde::{Deserialize, Serialize};

pub use money::{Money, MoneyError};

/// Asks for the currency codes the service can convert between.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetSupportedCurrencies {}

/// The supported currency codes, in the order of the rates table (EUR first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetSupportedCurrenciesResponse {
    /// ISO 4217 codes.
    pub currency_codes: Vec<String>,
}

/// Converts an amount into another currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Convert {
    /// The amount and its currency.
    pub from: Money,
    /// The currency to convert to.
    pub to_code: String,
}

/// Why a conversion was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CurrencyError {
    /// The code is not in the rates table.
    #[error("unsupported currency code '{code}'")]
    UnsupportedCurrency {
        /// The code given.
        code: String,
    },
    /// The amount breaks the money rules.
    #[error("invalid amount: {0}")]
    InvalidMoney(MoneyError),
    /// Only amounts of zero or more can be converted.
    #[error("cannot convert a negative amount ({amount})")]
    NegativeAmount {
        /// The amount given.
        amount: Money,
    },
}

runtime::service! {
    /// Currency conversion: the `currency` module's service.
    pub Currency = "currency", error CurrencyError {
        GetSupportedCurrencies -> GetSupportedCurrenciesResponse [idempotent],
        Convert -> Money [idempotent],
    }
}
