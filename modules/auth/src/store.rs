//! Users and sessions in the module's database. Emails are unique; a
//! session row holds the SHA-256 of its token, never the token.

use std::path::Path;

use sha2::{Digest, Sha256};
use storage::{Database, Migration, StorageError};

use crate::api::{AuthError, User};

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "users and sessions",
    statements: &[
        "CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
        "CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users (id),
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL
        )",
        "CREATE INDEX sessions_by_user ON sessions (user_id)",
    ],
}];

/// The most sessions one user keeps: signed in on this many devices at
/// once, the oldest session ends at the next sign-in.
pub const MAX_SESSIONS_PER_USER: i64 = 100;

fn storage(error: impl std::fmt::Display) -> AuthError {
    AuthError::Storage(error.to_string())
}

/// The SHA-256 of a session token, in hex.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

type UserRow = (String, String, String, i64);

fn user((id, email, name, created_at): UserRow) -> User {
    User {
        id,
        email,
        name,
        created_at,
    }
}

/// Users and sessions.
#[derive(Clone)]
pub struct Store {
    db: Database,
}

/// A session to record: its token (only its hash is stored), when it was
/// made and when it expires (ms since the epoch).
pub struct NewSession<'a> {
    pub token: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

async fn insert_session(
    connection: &mut sqlx::AnyConnection,
    session: &NewSession<'_>,
    user_id: &str,
) -> Result<(), AuthError> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash(session.token))
    .bind(user_id)
    .bind(session.now)
    .bind(session.expires_at)
    .execute(connection)
    .await
    .map_err(storage)?;
    Ok(())
}

impl Store {
    /// Opens (and migrates) the store.
    pub async fn open(url: Option<&str>, data_dir: &Path) -> Result<Store, StorageError> {
        Ok(Store {
            db: Database::open("auth", url, data_dir, MIGRATIONS).await?,
        })
    }

    /// Creates a user and their first session (`session`), in one
    /// transaction; `EmailTaken` if the email is. Both are stored, or
    /// neither: a sign-up that failed may be tried again (a user stored
    /// without the session used to make the retry "email taken", for an
    /// account its owner was told was not made).
    pub async fn create_user(
        &self,
        user: &User,
        password_hash: &str,
        session: &NewSession<'_>,
    ) -> Result<(), AuthError> {
        let mut tx = self.db.begin_write().await.map_err(storage)?;
        let done = sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(password_hash)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(storage)?;
            return Err(AuthError::EmailTaken);
        }
        insert_session(&mut tx, session, &user.id).await?;
        tx.commit().await.map_err(storage)
    }

    /// The user with this email, and their password hash.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>, AuthError> {
        let row: Option<(String, String, String, i64, String)> = sqlx::query_as(
            "SELECT id, email, name, created_at, password_hash FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(self.db.pool())
        .await
        .map_err(storage)?;
        Ok(row
            .map(|(id, email, name, created_at, hash)| (user((id, email, name, created_at)), hash)))
    }

    /// Replaces the password hash of `user_id` (the same password, hashed
    /// with the parameters configured now).
    pub async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<(), AuthError> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(self.db.pool())
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// Records `session` for `user_id`, known by the hash of its token.
    pub async fn create_session(
        &self,
        session: &NewSession<'_>,
        user_id: &str,
    ) -> Result<(), AuthError> {
        // A good moment to forget this user's expired sessions, and all
        // but the newest of its live ones past a bound: a script signing
        // one account in again and again would otherwise add a row a time
        // for a week. In one transaction, one sign-in of the user at a
        // time (SQLite's write lock; on PostgreSQL the user's row, locked
        // first): apart, sign-ins at once each trimmed to one below the
        // bound and then each added theirs, past it.
        let mut tx = self.db.begin_write().await.map_err(storage)?;
        if self.db.backend() == storage::Backend::Postgres {
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND expires_at <= $2")
            .bind(user_id)
            .bind(session.now)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1 AND token_hash NOT IN \
             (SELECT token_hash FROM sessions WHERE user_id = $1 \
              ORDER BY created_at DESC, token_hash LIMIT $2)",
        )
        .bind(user_id)
        .bind(MAX_SESSIONS_PER_USER - 1)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        insert_session(&mut tx, session, user_id).await?;
        tx.commit().await.map_err(storage)
    }

    /// How many sessions `user_id` has, live or not (for tests).
    #[cfg(test)]
    pub async fn session_count(&self, user_id: &str) -> i64 {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(self.db.pool())
            .await
            .unwrap_or((-1,));
        count
    }

    /// The user of a live session; an expired one is deleted.
    pub async fn session_user(&self, token: &str, now: i64) -> Result<Option<User>, AuthError> {
        let hash = token_hash(token);
        let row: Option<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT u.id, u.email, u.name, u.created_at, s.expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(self.db.pool())
        .await
        .map_err(storage)?;
        match row {
            Some((id, email, name, created_at, expires_at)) if expires_at > now => {
                Ok(Some(user((id, email, name, created_at))))
            }
            Some(_) => {
                // The answer is "expired" whether or not the clean-up
                // works: a database too busy to delete the row would
                // otherwise fail every request of that browser (a 503)
                // where it is simply signed out. The row is tried again
                // at its next use, and a sign-in trims old sessions.
                if let Err(error) = self.delete_session(token).await {
                    tracing::warn!(%error, "an expired session could not be deleted");
                }
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Forgets a session.
    pub async fn delete_session(&self, token: &str) -> Result<(), AuthError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash(token))
            .execute(self.db.pool())
            .await
            .map_err(storage)?;
        Ok(())
    }
}
