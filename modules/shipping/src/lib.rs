//! # shipping
//!
//! Online Boutique's shipping service: a quote for a cart, and a tracking id
//! for a shipment. Nothing is stored, as in the original.
//!
//! Decisions: the quote follows the current upstream rule (USD 0.00 for a
//! cart with nothing in it, a flat USD 8.99 otherwise). Tracking ids keep the
//! original's shape (`XX-44123-221234567`) but use every letter A–Z, and a
//! shipment that carries an idempotency key always gets the same id for the
//! same address (the original's id shows the address's length), so a
//! retried checkout does not ship twice under two numbers.
//! `[modules.shipping] fail_shipments = true` makes every `ShipOrder` fail,
//! to try out what checkout does then (a fault-injection switch, like the
//! original's `EXTRA_LATENCY`).
//!
//! [`api`] is what other modules use. Everything else is private.

#![warn(missing_docs)]

pub mod api;

mod actor;
mod tracking;

#[cfg(test)]
mod tests;

pub use actor::{ShippingConfig, ShippingModule};
