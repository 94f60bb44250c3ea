//! # storage
//!
//! A module's own database. SQLite by default: one file per module under the
//! runtime's data directory, created on first start. PostgreSQL when the
//! module's `database` setting is a `postgres://` URL. The same SQL runs on
//! both, through sqlx's `Any` driver: modules write portable SQL with `$1`
//! placeholders and the types both databases share (`BIGINT`, `TEXT`).
//!
//! Schema changes are [`Migration`]s, numbered, applied in order at start in
//! one transaction each, and recorded in `schema_migrations`, so a module
//! starts on an up-to-date schema or not at all.
//!
//! This crate is a library for modules, not a module: it knows nothing of
//! the shop.

#![warn(missing_docs)]

mod database;
mod migrate;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use database::{Backend, Database, StorageError, check_url, holds_password};
pub use migrate::Migration;

/// Milliseconds since the Unix epoch, as the databases store times.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub use sqlx;
