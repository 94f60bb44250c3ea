//! # cart
//!
//! Online Boutique's shopping carts: one per user (a signed-in user's id, or
//! a visitor's session id). Adding a product already in the cart adds to its
//! quantity; lines keep the order they were first added in. When a visitor
//! signs in, their cart is merged into their account's (`MergeCarts`).
//!
//! Carts are kept in the module's database (SQLite by default, PostgreSQL
//! when `[modules.cart] database` is a `postgres://` URL), so they survive a
//! restart. An add is an upsert that adds to the quantity in place, so
//! concurrent adds never lose an update; a merge, and an emptying that
//! checks what the cart holds, are one transaction each. Carts read
//! are kept in memory too (`[modules.cart] cached_carts`, 10,000 by
//! default), so that the cart in every page's header is not a database
//! round trip; only while the module runs on one node, since replicas
//! share the database and each could change it behind the others' caches.
//!
//! Unlike the original, quantities are checked: they must be positive and a
//! line cannot grow past `i32::MAX`. User and product ids must be non-empty
//! and of sane length.
//!
//! [`api`] is what other modules use. Everything else is private.

#![warn(missing_docs)]

pub mod api;

mod actor;
mod cache;
mod store;

#[cfg(test)]
mod tests;

pub use actor::{CartConfig, CartModule};
