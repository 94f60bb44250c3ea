//! # frontend
//!
//! Online Boutique's web frontend, served by actix-web from inside the
//! `frontend` module: server-rendered HTML pages for people and a JSON API
//! under `/api/v1` for programs, both made of the same calls to the shop's
//! other modules. The routes, methods and form field names are the
//! original's, so its load generator and scripts work unchanged; where the
//! original went wrong (spec section 3) this one does not, as the module
//! docs of each file say. `docs/shop.md` lists every route and decision.
//!
//! How a request flows:
//!
//! 1. `guard` refuses cross-site form posts;
//! 2. `visitor` gives every visitor a session cookie and tells handlers
//!    who is asking (a visitor's session, or a signed-in user);
//! 3. a handler in `pages` or `json_api` calls modules through
//!    `shop::Shop` and answers, or fails with a `error::ShopError`;
//! 4. `error` turns that failure into a page a person understands, or a
//!    JSON error, with the right status.
//!
//! [`api`] is what other modules (and tests) use: the address the shop
//! listens on.

#![warn(missing_docs)]

pub mod api;

mod actions;
mod actor;
mod adoption;
mod assets;
mod error;
mod forms;
mod guard;
mod https_cookies;
mod json_api;
mod measure;
mod pages;
mod server;
mod shop;
mod views;
mod visitor;

#[cfg(test)]
mod tests;

pub use actor::{FrontendConfig, FrontendModule};
