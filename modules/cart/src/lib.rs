//! # cart
//!
//! Online Boutique's shopping carts: one per user, held in memory (for now:
//! a restart empties them). Adding a product already in the cart adds to its
//! quantity; lines keep the order they were first added in.
//!
//! Unlike the original, quantities are checked: they must be positive and a
//! line cannot grow past `i32::MAX`. User and product ids must be non-empty
//! and of sane length. Each cart is updated inside the actor, one message at
//! a time, so concurrent adds never lose an update.
//!
//! [`api`] is what other modules use. Everything else is private.

#![warn(missing_docs)]

pub mod api;

mod actor;

#[cfg(test)]
mod tests;

pub use actor::{CartConfig, CartModule};
