//! Migrations: numbered schema changes, each applied once, in order, in a
//! transaction of its own.
//!
//! The ledger `schema_migrations` records them by module and version, so
//! several modules can share one database (one PostgreSQL database for
//! the whole shop is a normal deployment): cart's migration 1 and auth's
//! migration 1 are different rows.

use sqlx::AnyPool;
use sqlx::Executor;

use crate::database::{Backend, StorageError, begin_write};

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number; migrations run in increasing order, each once.
    pub version: i64,
    /// What it does, for people.
    pub description: &'static str,
    /// Its SQL statements, run in order (portable SQL: both SQLite and
    /// PostgreSQL must accept them).
    pub statements: &'static [&'static str],
}

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     module TEXT NOT NULL, \
     version BIGINT NOT NULL, \
     description TEXT NOT NULL, \
     applied_at BIGINT NOT NULL, \
     PRIMARY KEY (module, version))";

/// Reads no row, but fails unless the ledger has our columns.
const LEDGER_SHAPE: &str =
    "SELECT module, version, description, applied_at FROM schema_migrations WHERE 1 = 0";

/// The PostgreSQL advisory lock migrations take ("boutique" in ASCII): a
/// transaction's write lock is not enough there, since nothing is written
/// before the ledger is read, and two processes would both find a
/// migration missing and both run it.
const MIGRATION_LOCK: i64 = 0x626f_7574_6971_7565;

/// A transaction that holds the database's migration lock: SQLite's write
/// lock, or on PostgreSQL the advisory lock [`MIGRATION_LOCK`] (released
/// when the transaction ends).
async fn begin_migration(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    let mut tx = begin_write(pool, backend).await?;
    if backend == Backend::Postgres {
        // Another node's migration may take long (a table rewritten): the
        // wait for it is not the session's 30 s `lock_timeout`, which
        // failed every other node starting meanwhile.
        sqlx::query("SET LOCAL lock_timeout = 0")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// Applies `module`'s migrations not applied yet.
pub(crate) async fn migrate(
    pool: &AnyPool,
    backend: Backend,
    module: &str,
    migrations: &[Migration],
) -> Result<(), StorageError> {
    let mut ordered: Vec<&Migration> = migrations.iter().collect();
    ordered.sort_by_key(|m| m.version);
    for migration in ordered {
        let failed = |detail: String| StorageError::Migrate {
            version: migration.version,
            description: migration.description.to_owned(),
            detail,
        };
        // Another process may be migrating the same database at this moment:
        // take the lock first, then look (and make the ledger: two
        // PostgreSQL sessions creating a table at once can both fail).
        let mut tx = begin_migration(pool, backend)
            .await
            .map_err(|e| failed(e.to_string()))?;
        tx.execute(LEDGER)
            .await
            .map_err(|e| failed(e.to_string()))?;
        // A table of that name made by another tool (Rails, dbmate,
        // golang-migrate keep theirs there too) is left as it was, and
        // reading it as ours failed with "no such column: module".
        tx.execute(LEDGER_SHAPE).await.map_err(|e| {
            failed(format!(
                "the table schema_migrations in this database is not Boutique's migration \
                 ledger (no module, version, description and applied_at columns: another \
                 tool's, or an early Boutique build's, from before modules shared databases): \
                 give the shop a database or schema of its own, or rename that table ({e})"
            ))
        })?;
        let applied: Option<(i64,)> = sqlx::query_as(
            "SELECT version FROM schema_migrations WHERE module = $1 AND version = $2",
        )
        .bind(module)
        .bind(migration.version)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| failed(e.to_string()))?;
        if applied.is_some() {
            continue;
        }
        for statement in migration.statements {
            tx.execute(*statement)
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (module, version, description, applied_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(module)
        .bind(migration.version)
        .bind(migration.description)
        .bind(crate::unix_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| failed(e.to_string()))?;
        tx.commit().await.map_err(|e| failed(e.to_string()))?;
        tracing::info!(
            module,
            version = migration.version,
            description = migration.description,
            "migration applied"
        );
    }
    Ok(())
}
