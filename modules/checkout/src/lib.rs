//! # checkout
//!
//! Online Boutique's checkout: turns a cart into a paid, shipped, stored
//! order. Where the original could go wrong quietly (spec section 3, bug 4),
//! this one does not:
//!
//! - **exact money**: each converted price is rounded to cents once (so
//!   the customer pays exactly the sum of the lines they were shown), and
//!   everything is summed on integer nanos;
//! - **an empty cart is refused**;
//! - **once per idempotency key**: the same checkout submitted twice (a
//!   double click, a refresh, a retry after a timeout) makes one charge and
//!   one order. Submissions in flight at once wait for the first; a later one
//!   gets the stored order back; and payment, shipping and orders each key
//!   their own work by it, so even two checkout replicas racing agree;
//! - **a declined card** leaves the cart as it was and stores no order;
//! - **the order is stored before it is confirmed**: only then is the cart
//!   emptied and the email sent (those two may fail without undoing it:
//!   then a background finisher does them later; see `finish`);
//! - **when shipping fails after the charge, the charge is refunded** and
//!   the refund recorded in the payment ledger; the customer is told their
//!   card was refunded, and the cart stays. If storing the order fails, the
//!   same happens. Only a charge this submission made, and no other
//!   submission of the same checkout took up, is refunded: another's order
//!   may stand on it, so it stands and the customer is told to submit the
//!   same checkout again. If the refund itself fails, the error says so and
//!   the charge stays visible in the ledger, marked charged, for a person
//!   to settle: nothing is hidden.
//!
//! - **deadlines**: every step before the charge waits no longer than
//!   the caller of `PlaceOrder`; from the charge on (shipping, storing the
//!   order, a refund, emptying the cart and sending the email) the steps
//!   are detached from that deadline, because they are owed even if the
//!   caller has stopped waiting.
//!
//! [`api`] is what other modules use. Everything else is private.

#![warn(missing_docs)]

pub mod api;

mod actor;
mod finish;
mod place;

#[cfg(test)]
mod tests;

pub use actor::CheckoutModule;
pub use finish::CheckoutConfig;
