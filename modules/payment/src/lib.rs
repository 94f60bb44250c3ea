//! # payment
//!
//! Online Boutique's payment service: checks a credit card the way the
//! original does (card type from the number's prefix, Luhn, length, expiry;
//! only VISA and MasterCard accepted) and charges it. Card numbers are never
//! stored; each charge is recorded (last four digits, type, amount, status)
//! in the module's database.
//!
//! Unlike the original, every charge carries an idempotency key: charging the
//! same key twice returns the first charge instead of charging again, which
//! is what makes a retried or double-clicked checkout charge once. A charge
//! is held by the attempts that made it or got it back, and an attempt
//! lets go of it with its key (checkout does when the charge's outcome is
//! unknown, or when shipping or storing the order fails after it): the
//! charge is refunded once no attempt holds it, and if none was made, one
//! arriving later is refused. A person can refund any charge by its id.
//!
//! [`api`] is what other modules use. Everything else is private.

#![warn(missing_docs)]

pub mod api;

mod actor;
mod card;
mod ledger;

#[cfg(test)]
mod tests;

pub use actor::{PaymentConfig, PaymentModule};
