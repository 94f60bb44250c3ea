//! # currency
//!
//! Online Boutique's currency service: the supported currencies, and
//! conversion between them pivoting through EUR, in exact integer arithmetic.
//!
//! The rates (units of each currency per 1 EUR, from the European Central
//! Bank via Online Boutique's `currency_conversion.json`) are built into the
//! binary; `[modules.currency] rates_file = "..."` loads another table.
//!
//! [`api`] is what other modules use: the messages, [`api::Money`], and the
//! service declaration. Everything else is private.

#![warn(missing_docs)]

pub mod api;

mod actor;
mod rates;

#[cfg(test)]
mod tests;

pub use actor::{CurrencyConfig, CurrencyModule};
