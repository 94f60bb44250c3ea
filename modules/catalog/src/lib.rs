//! # catalog
//!
//! Online Boutique's product catalogue: list, look up and search the
//! products. The catalogue is loaded once at start from `products.json`
//! (built into the binary; `[modules.catalog] products_file = "..."` loads
//! another file), and the module refuses to start if it does not parse.
//!
//! [`api`] is what other modules use. Everything else is private.

#![warn(missing_docs)]

pub mod api;

mod actor;
mod products;

#[cfg(test)]
mod tests;

pub use actor::{CatalogConfig, CatalogModule};
