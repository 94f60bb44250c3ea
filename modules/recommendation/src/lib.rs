//! # recommendation
//!
//! Online Boutique's recommendations: up to five products the user is not
//! already looking at, chosen at random (there is no personalisation in the
//! original either). It asks the `catalog` module for the products on every
//! call, so it is the simplest module that calls another: wherever the
//! catalog runs, this code is the same.
//!
//! [`api`] is what other modules use. Everything else is private.

#![warn(missing_docs)]

pub mod api;

mod actor;

#[cfg(test)]
mod tests;

pub use actor::{RecommendationConfig, RecommendationModule};
