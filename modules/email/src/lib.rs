//! # email
//!
//! Order confirmations. The original only logged the request; here the
//! email is rendered from a template (HTML and plain text), handed to a
//! *sink*, and recorded, so the shop and its tests can see what was sent.
//!
//! Sinks (`[modules.email] sink = ...`): `"log"` (the default) writes the
//! plain-text email to the log; `"directory"` also writes each email as a
//! file under `directory` (default: `outbox` in the data directory). A real
//! mail sender is one more `sink::Sink`.
//!
//! The most recent emails (`keep`, default 1000) are kept in memory and
//! listed by `ListSentEmails`.
//!
//! [`api`] is what other modules use. Everything else is private.

#![warn(missing_docs)]

pub mod api;

mod actor;
mod render;
mod sink;

#[cfg(test)]
mod tests;

pub use actor::{EmailConfig, EmailModule};
