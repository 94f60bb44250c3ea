//! # auth
//!
//! Users and sessions, which Online Boutique lacks: sign up, sign in, sign
//! out, and "who is this session?".
//!
//! - Passwords are hashed with Argon2id (parameters in the config); hashing
//!   and checking run on tokio's blocking pool, never on an arbiter.
//! - A session is 32 random bytes, given to the browser once; only its
//!   SHA-256 is stored, so a leaked database holds no usable session. It
//!   expires after `session_ttl_hours` (default a week).
//! - Signing in with an unknown email costs the same time as with a wrong
//!   password, and says the same thing.
//!
//! Users and sessions are kept in the module's database (SQLite by default,
//! PostgreSQL when `[modules.auth] database` is a `postgres://` URL).
//!
//! [`api`] is what other modules use. Everything else is private.

#![warn(missing_docs)]

pub mod api;

mod actor;
mod password;
mod store;

#[cfg(test)]
mod tests;

pub use actor::{AuthConfig, AuthModule};
