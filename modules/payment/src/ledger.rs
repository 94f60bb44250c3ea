//! The payment ledger: every charge, in the module's database. An
//! idempotency key is unique, so one key can only ever charge once, however
//! many times and from however many places it is tried.

use std::path::Path;

use currency::api::Money;
use storage::{Database, Migration, StorageError};

use crate::api::{Cancellation, ChargeRecord, ChargeStatus, PaymentError};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "charges",
        statements: &[
            "CREATE TABLE charges (
                transaction_id TEXT PRIMARY KEY,
                idempotency_key TEXT NOT NULL UNIQUE,
                currency_code TEXT NOT NULL,
                units BIGINT NOT NULL,
                nanos BIGINT NOT NULL,
                card_type TEXT NOT NULL,
                card_last4 TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                refunded_at BIGINT,
                refund_reason TEXT
            )",
            "CREATE INDEX charges_by_time ON charges (created_at)",
        ],
    },
    // Which attempt made each charge, so a cancellation gives back only
    // its own (charges made before this: no attempt).
    Migration {
        version: 2,
        description: "charge attempts",
        statements: &["ALTER TABLE charges ADD COLUMN attempt TEXT NOT NULL DEFAULT ''"],
    },
    // Whether an attempt other than the one that made a charge has taken
    // it up (its Charge returned it): then no attempt may cancel it, for
    // the other's order may stand on it.
    Migration {
        version: 3,
        description: "charges taken up by another attempt",
        statements: &["ALTER TABLE charges ADD COLUMN shared BIGINT NOT NULL DEFAULT 0"],
    },
    // Which attempts hold each charge (its maker, and each that took it
    // up): an attempt that fails for certain lets go of its hold, and the
    // charge is refunded once no attempt holds it. A charge taken up
    // before this is held for good (who took it up is not known), as
    // migration 3 kept it.
    Migration {
        version: 4,
        description: "holds on charges",
        statements: &[
            "CREATE TABLE charge_holds (
                idempotency_key TEXT NOT NULL,
                attempt TEXT NOT NULL,
                PRIMARY KEY (idempotency_key, attempt)
            )",
            "INSERT INTO charge_holds (idempotency_key, attempt) \
             SELECT idempotency_key, attempt FROM charges WHERE status = 'charged'",
            "INSERT INTO charge_holds (idempotency_key, attempt) \
             SELECT idempotency_key, 'taken up before holds were recorded' FROM charges \
             WHERE status = 'charged' AND shared = 1 AND attempt <> 'taken up before holds were recorded'",
        ],
    },
    // Whether an attempt has let go of the key (its CancelCharge came),
    // kept so that its own Charge arriving after that takes nothing up.
    Migration {
        version: 5,
        description: "attempts that let go",
        statements: &["ALTER TABLE charge_holds ADD COLUMN let_go BIGINT NOT NULL DEFAULT 0"],
    },
];

const COLUMNS: &str = "transaction_id, idempotency_key, currency_code, units, nanos, card_type, card_last4, status, created_at";

type Row = (
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    String,
    i64,
);

/// A stored charge, or a storage error if its row says what this build
/// cannot read: nanos out of range (read as 0, the amount then differed
/// and a repeat was refused as another checkout's), or a status it does
/// not know (written by hand, or by a later build: read as charged, a
/// refund was then refused and the charge taken up).
fn record(row: Row) -> Result<ChargeRecord, PaymentError> {
    let (
        transaction_id,
        idempotency_key,
        currency_code,
        units,
        nanos,
        card_type,
        card_last4,
        status,
        created_at,
    ) = row;
    let unreadable = |what: String| {
        PaymentError::Storage(format!(
            "the stored charge {transaction_id} cannot be read: {what}; a person must look at it"
        ))
    };
    let nanos = i32::try_from(nanos).map_err(|_| unreadable(format!("nanos {nanos}")))?;
    let amount = Money::new(currency_code, units, nanos);
    amount
        .validate()
        .map_err(|error| unreadable(format!("its amount: {error}")))?;
    let status = match status.as_str() {
        "charged" => ChargeStatus::Charged,
        "refunded" => ChargeStatus::Refunded,
        "cancelled" => ChargeStatus::Cancelled,
        other => return Err(unreadable(format!("status {other:?}"))),
    };
    Ok(ChargeRecord {
        transaction_id,
        idempotency_key,
        amount,
        card_type,
        card_last4,
        status,
        created_at,
    })
}

fn storage(error: impl std::fmt::Display) -> PaymentError {
    PaymentError::Storage(error.to_string())
}

/// Records that `attempt` holds the charge under `key` (again is fine).
/// The query for the charge under a key (`$1`).
fn select_by_key() -> String {
    format!("SELECT {COLUMNS} FROM charges WHERE idempotency_key = $1")
}

/// The charge under `key`, read in `tx`: as it stands once `tx` commits.
/// Read before the commit, so that a write that committed is never
/// reported as an error (a read after it could fail).
async fn find_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &str,
) -> Result<Option<ChargeRecord>, PaymentError> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(select_by_key()))
        .bind(key)
        .fetch_optional(&mut **tx)
        .await
        .map_err(storage)?;
    row.map(record).transpose()
}

async fn hold(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &str,
    attempt: &str,
) -> Result<(), PaymentError> {
    sqlx::query(
        "INSERT INTO charge_holds (idempotency_key, attempt) VALUES ($1, $2) \
         ON CONFLICT (idempotency_key, attempt) DO NOTHING",
    )
    .bind(key)
    .bind(attempt)
    .execute(&mut **tx)
    .await
    .map_err(storage)?;
    Ok(())
}

/// A charge an attempt took up ([`Ledger::take_up`]).
pub struct TakenUp {
    /// The charge, as it is now.
    pub charge: ChargeRecord,
    /// True if the attempt had let go of the key before: it holds
    /// nothing.
    pub let_go_before: bool,
}

/// The charges.
#[derive(Clone)]
pub struct Ledger {
    db: Database,
}

impl Ledger {
    /// Opens (and migrates) the ledger.
    pub async fn open(url: Option<&str>, data_dir: &Path) -> Result<Ledger, StorageError> {
        Ok(Ledger {
            db: Database::open("payment", url, data_dir, MIGRATIONS).await?,
        })
    }

    /// The charge under `key`, if any.
    pub async fn find(&self, key: &str) -> Result<Option<ChargeRecord>, PaymentError> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(select_by_key()))
            .bind(key)
            .fetch_optional(self.db.pool())
            .await
            .map_err(storage)?;
        row.map(record).transpose()
    }

    /// Records `charge` unless its key is taken; returns the charge recorded
    /// under the key either way (the new one, or the one that was there).
    /// An error means this call recorded nothing. `attempt` is recorded
    /// with it, and holds it (see [`cancel`](Self::cancel)).
    pub async fn insert(
        &self,
        charge: &ChargeRecord,
        attempt: &str,
    ) -> Result<ChargeRecord, PaymentError> {
        let mut tx = self.db.begin_write().await.map_err(storage)?;
        let written = sqlx::query(
            "INSERT INTO charges (transaction_id, idempotency_key, currency_code, units, nanos, \
             card_type, card_last4, status, created_at, attempt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'charged', $8, $9) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&charge.transaction_id)
        .bind(&charge.idempotency_key)
        .bind(&charge.amount.currency_code)
        .bind(charge.amount.units)
        .bind(i64::from(charge.amount.nanos))
        .bind(&charge.card_type)
        .bind(&charge.card_last4)
        .bind(charge.created_at)
        .bind(attempt)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if written.rows_affected() == 1 {
            hold(&mut tx, &charge.idempotency_key, attempt).await?;
            tx.commit().await.map_err(storage)?;
            // Recorded: said without reading it back, so that an error
            // from here on always means no charge was made.
            return Ok(ChargeRecord {
                status: ChargeStatus::Charged,
                ..charge.clone()
            });
        }
        tx.rollback().await.map_err(storage)?;
        self.find(&charge.idempotency_key)
            .await?
            .ok_or_else(|| storage("a charge vanished right after it was written"))
    }

    /// Attempt `attempt` takes up the charge under `key` that it found
    /// there: if it still stands, the attempt holds it (and it is marked
    /// shared), so that it is not refunded while the attempt may store an
    /// order on it; unless the attempt let go of the key before (its
    /// cancellation came before this). Returns the charge as it is after
    /// (a cancellation that came first shows as its status). The charge's
    /// row is locked first, as [`cancel`](Self::cancel) locks it, so that
    /// the two are ordered by the database: whichever comes second sees
    /// the first.
    pub async fn take_up(&self, key: &str, attempt: &str) -> Result<TakenUp, PaymentError> {
        let mut tx = self.db.begin_write().await.map_err(storage)?;
        let standing = sqlx::query(
            "UPDATE charges SET shared = 1 WHERE idempotency_key = $1 AND status = 'charged'",
        )
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        let mut let_go_before = false;
        if standing.rows_affected() > 0 {
            hold(&mut tx, key, attempt).await?;
            let (let_go,): (i64,) = sqlx::query_as(
                "SELECT let_go FROM charge_holds WHERE idempotency_key = $1 AND attempt = $2",
            )
            .bind(key)
            .bind(attempt)
            .fetch_one(&mut *tx)
            .await
            .map_err(storage)?;
            let_go_before = let_go != 0;
        }
        let charge = find_in(&mut tx, key)
            .await?
            .ok_or_else(|| storage("a charge vanished while it was taken up"))?;
        tx.commit().await.map_err(storage)?;
        Ok(TakenUp {
            charge,
            let_go_before,
        })
    }

    /// Marks a charge refunded (again is fine).
    pub async fn refund(&self, transaction_id: &str, reason: &str) -> Result<(), PaymentError> {
        let done = sqlx::query(
            "UPDATE charges SET status = 'refunded', refunded_at = $2, refund_reason = $3 \
             WHERE transaction_id = $1 AND status = 'charged'",
        )
        .bind(transaction_id)
        .bind(storage::unix_ms())
        .bind(reason)
        .execute(self.db.pool())
        .await
        .map_err(storage)?;
        if done.rows_affected() > 0 {
            return Ok(());
        }
        let exists: Option<(String,)> =
            sqlx::query_as("SELECT status FROM charges WHERE transaction_id = $1")
                .bind(transaction_id)
                .fetch_optional(self.db.pool())
                .await
                .map_err(storage)?;
        match exists {
            Some(_) => Ok(()),
            None => Err(PaymentError::UnknownTransaction {
                transaction_id: transaction_id.to_owned(),
            }),
        }
    }

    /// Cancels the charge under `key` as far as `attempt` is concerned:
    /// if no charge was made, records the key as cancelled so that none can
    /// be (the insert and a charge's insert race on the key's unique
    /// column: whichever comes second finds the first); if one was, the
    /// attempt lets go of its hold on it, and it is refunded once no
    /// attempt holds it (an attempt that made it, or took it up, may yet
    /// store an order on it).
    pub async fn cancel(
        &self,
        key: &str,
        attempt: &str,
        amount: &Money,
        reason: &str,
    ) -> Result<Cancellation, PaymentError> {
        let now = storage::unix_ms();
        let cancelled = sqlx::query(
            "INSERT INTO charges (transaction_id, idempotency_key, currency_code, units, nanos, \
             card_type, card_last4, status, created_at, refunded_at, refund_reason, attempt) \
             VALUES ($1, $2, $3, $4, $5, '', '', 'cancelled', $6, $6, $7, $8) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(format!("cancelled:{}", uuid::Uuid::new_v4()))
        .bind(key)
        .bind(&amount.currency_code)
        .bind(amount.units)
        .bind(i64::from(amount.nanos))
        .bind(now)
        .bind(reason)
        .bind(attempt)
        .execute(self.db.pool())
        .await
        .map_err(storage)?;
        if cancelled.rows_affected() == 1 {
            return Ok(Cancellation::NeverCharged);
        }
        let mut tx = self.db.begin_write().await.map_err(storage)?;
        // The row first, as `take_up` does (see there).
        sqlx::query("UPDATE charges SET shared = shared WHERE idempotency_key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        let released = sqlx::query(
            "UPDATE charge_holds SET let_go = 1 \
             WHERE idempotency_key = $1 AND attempt = $2 AND let_go = 0",
        )
        .bind(key)
        .bind(attempt)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if released.rows_affected() > 0 {
            // Refunded only by a letting go that released a hold, once no
            // hold is left.
            sqlx::query(
                "UPDATE charges SET status = 'refunded', refunded_at = $2, refund_reason = $3 \
                 WHERE idempotency_key = $1 AND status = 'charged' AND NOT EXISTS \
                 (SELECT 1 FROM charge_holds WHERE idempotency_key = $1 AND let_go = 0)",
            )
            .bind(key)
            .bind(now)
            .bind(reason)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        } else {
            // Held nothing: recorded as let go all the same, so that this
            // attempt's own Charge, if it arrives after this, takes
            // nothing up.
            sqlx::query(
                "INSERT INTO charge_holds (idempotency_key, attempt, let_go) VALUES ($1, $2, 1) \
                 ON CONFLICT (idempotency_key, attempt) DO NOTHING",
            )
            .bind(key)
            .bind(attempt)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        let status = find_in(&mut tx, key).await?.map(|charge| charge.status);
        tx.commit().await.map_err(storage)?;
        Ok(match status {
            Some(ChargeStatus::Charged) => Cancellation::KeptForAnotherAttempt,
            Some(ChargeStatus::Refunded) => Cancellation::Refunded,
            Some(ChargeStatus::Cancelled) | None => Cancellation::NeverCharged,
        })
    }

    /// Charges, newest first: all, or the one under `key`.
    pub async fn list(&self, key: &str, limit: u32) -> Result<Vec<ChargeRecord>, PaymentError> {
        let limit = i64::from(limit.min(1000));
        let rows: Vec<Row> = if key.is_empty() {
            let sql = format!(
                "SELECT {COLUMNS} FROM charges ORDER BY created_at DESC, transaction_id LIMIT $1"
            );
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(limit)
                .fetch_all(self.db.pool())
                .await
        } else {
            let sql = format!("SELECT {COLUMNS} FROM charges WHERE idempotency_key = $1 LIMIT $2");
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(key)
                .bind(limit)
                .fetch_all(self.db.pool())
                .await
        }
        .map_err(storage)?;
        rows.into_iter().map(record).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::testing::{TempDir, backends};

    /// A charge of 10 EUR under `key`, made by attempt a1.
    fn charge_of_ten(key: &str) -> ChargeRecord {
        ChargeRecord {
            transaction_id: format!("tx-{key}"),
            idempotency_key: key.to_owned(),
            amount: Money::new("EUR", 10, 0),
            card_type: "visa".into(),
            card_last4: "0454".into(),
            status: ChargeStatus::Charged,
            created_at: 1,
        }
    }

    #[actix_rt::test]
    async fn a_charge_taken_up_is_never_refunded_under_the_attempt_that_took_it_up() {
        for backend in backends() {
            let dir = TempDir::new("payment-race");
            let url = backend.database_url().await;
            let ledger = Ledger::open(url.as_deref(), dir.path()).await.unwrap();
            let name = backend.name();
            let ten = Money::new("EUR", 10, 0);
            // a1 made the charge and lets go of it (it failed for
            // certain) while a2 takes it up, at once, on two connections.
            for round in 0..40 {
                let key = format!("k{round}");
                ledger.insert(&charge_of_ten(&key), "a1").await.unwrap();
                let (taken, cancelled) = tokio::join!(
                    ledger.take_up(&key, "a2"),
                    ledger.cancel(&key, "a1", &ten, "shipping failed"),
                );
                let (taken, cancelled) = (taken.unwrap(), cancelled.unwrap());
                let now = ledger.find(&key).await.unwrap().unwrap().status;
                match cancelled {
                    // a2 took it up first: it stands, and a2 was told so.
                    Cancellation::KeptForAnotherAttempt => {
                        assert_eq!(taken.charge.status, ChargeStatus::Charged, "{name}");
                        assert_eq!(now, ChargeStatus::Charged, "{name} round {round}");
                    }
                    // The refund came first: a2 was told so, and holds
                    // nothing that could stand on it.
                    Cancellation::Refunded => {
                        assert_eq!(
                            taken.charge.status,
                            ChargeStatus::Refunded,
                            "{name} round {round}: a2 was told the charge stands, and it was refunded"
                        );
                    }
                    Cancellation::NeverCharged => panic!("{name}: the charge was made"),
                }
            }
        }
    }

    #[actix_rt::test]
    async fn a_stored_charge_this_build_cannot_read_is_an_error_not_a_guess() {
        for backend in backends() {
            let dir = TempDir::new("payment-unreadable");
            let url = backend.database_url().await;
            let ledger = Ledger::open(url.as_deref(), dir.path()).await.unwrap();
            let name = backend.name();
            for (key, change) in [
                (
                    "k-status",
                    "UPDATE charges SET status = 'disputed' WHERE idempotency_key = $1",
                ),
                (
                    "k-nanos",
                    "UPDATE charges SET nanos = 5000000000 WHERE idempotency_key = $1",
                ),
                // Nanos of the other sign than the units (10 EUR).
                (
                    "k-sign",
                    "UPDATE charges SET nanos = -5 WHERE idempotency_key = $1",
                ),
            ] {
                ledger.insert(&charge_of_ten(key), "a1").await.unwrap();
                sqlx::query(change)
                    .bind(key)
                    .execute(ledger.db.pool())
                    .await
                    .unwrap();
                // Before, read as charged (a refund refused, the charge
                // taken up), or as 10 EUR and 0 nanos.
                let found = ledger.find(key).await;
                assert!(
                    matches!(&found, Err(PaymentError::Storage(why)) if why.contains("cannot be read")),
                    "{name} {key}: {found:?}"
                );
            }
            ledger.insert(&charge_of_ten("k-fine"), "a1").await.unwrap();
            assert!(ledger.find("k-fine").await.unwrap().is_some(), "{name}");
        }
    }

    #[actix_rt::test]
    async fn charges_from_before_holds_are_held_as_they_were_kept() {
        for backend in backends() {
            let dir = TempDir::new("payment-v3");
            let url = backend.database_url().await;
            let name = backend.name();
            // A ledger as migration 3 left it: one charge taken up by
            // another attempt (kept for good then), one not.
            let v3 = Database::open("payment", url.as_deref(), dir.path(), &MIGRATIONS[..3])
                .await
                .unwrap();
            for (key, shared) in [("k-shared", 1_i64), ("k-own", 0)] {
                sqlx::query(
                    "INSERT INTO charges (transaction_id, idempotency_key, currency_code, units, \
                     nanos, card_type, card_last4, status, created_at, attempt, shared) \
                     VALUES ($1, $1, 'EUR', 10, 0, 'visa', '0454', 'charged', 1, 'a1', $2)",
                )
                .bind(key)
                .bind(shared)
                .execute(v3.pool())
                .await
                .unwrap();
            }

            let ledger = Ledger::open(url.as_deref(), dir.path()).await.unwrap();
            let ten = Money::new("EUR", 10, 0);
            let shared = ledger.cancel("k-shared", "a1", &ten, "test").await.unwrap();
            assert_eq!(shared, Cancellation::KeptForAnotherAttempt, "{name}");
            let own = ledger.cancel("k-own", "a1", &ten, "test").await.unwrap();
            assert_eq!(own, Cancellation::Refunded, "{name}");
        }
    }
}
