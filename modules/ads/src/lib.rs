//! # ads
//!
//! Online Boutique's ad service: text ads for the categories of what a
//! visitor is looking at, or two random ads when nothing matches. The seven
//! ads are Online Boutique's own (they are in its source, not a data file).
//!
//! [`api`] is what other modules use. Everything else is private.

#![warn(missing_docs)]

pub mod api;

mod actor;

#[cfg(test)]
mod tests;

pub use actor::AdsModule;
