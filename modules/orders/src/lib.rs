//! # orders
//!
//! Every placed order, stored (the original stored none). A customer lists
//! their orders and opens one; checkout saves an order once per idempotency
//! key, so a checkout submitted twice makes one order, and marks it
//! confirmed once the cart is emptied and the email sent (a repeated
//! checkout finishes an order that is not). Orders of a visitor who then
//! signs in move to their account.
//!
//! Orders are kept in the module's database (SQLite by default, PostgreSQL
//! when `[modules.orders] database` is a `postgres://` URL), as JSON beside
//! the columns they are found by.
//!
//! [`api`] is what other modules use. Everything else is private.

#![warn(missing_docs)]

pub mod api;

mod actor;
mod store;

#[cfg(test)]
mod tests;

pub use actor::{OrdersConfig, OrdersModule};
