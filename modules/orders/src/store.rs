//! The order store: one row per order, the order itself as JSON, and the
//! columns it is looked up by. The idempotency key is unique.

use std::path::Path;

use storage::{Database, Migration, StorageError};

use crate::api::{FinishStep, Order, OrdersError};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "orders",
        statements: &[
            "CREATE TABLE orders (
                order_id TEXT PRIMARY KEY,
                idempotency_key TEXT NOT NULL UNIQUE,
                customer_id TEXT NOT NULL,
                placed_at BIGINT NOT NULL,
                body TEXT NOT NULL
            )",
            "CREATE INDEX orders_by_customer ON orders (customer_id, placed_at)",
        ],
    },
    // When checkout finished an order (emptied the cart, sent the
    // confirmation); orders stored before this are taken as finished.
    Migration {
        version: 2,
        description: "orders confirmed",
        statements: &[
            "ALTER TABLE orders ADD COLUMN confirmed_at BIGINT",
            "UPDATE orders SET confirmed_at = placed_at",
        ],
    },
    // When checkout's finisher last claimed an unfinished order (see
    // `claim_unfinished`), and when the order's confirmation was sent
    // (taken as when it was confirmed, for orders stored before this).
    Migration {
        version: 3,
        description: "unfinished orders claimed, confirmations sent",
        statements: &[
            "ALTER TABLE orders ADD COLUMN finishing_at BIGINT",
            "ALTER TABLE orders ADD COLUMN emailed_at BIGINT",
            "UPDATE orders SET emailed_at = confirmed_at",
        ],
    },
    // When the order's cart was emptied (taken as when it was confirmed,
    // before this), and when the order was stored, by this module's clock
    // (taken as when it was placed, before this; a row written without it
    // counts from when it was placed), for `claim_unfinished`.
    Migration {
        version: 4,
        description: "carts emptied, orders stored",
        statements: &[
            "ALTER TABLE orders ADD COLUMN emptied_at BIGINT",
            "ALTER TABLE orders ADD COLUMN stored_at BIGINT",
            "UPDATE orders SET emptied_at = confirmed_at, stored_at = placed_at",
            "CREATE INDEX orders_unfinished ON orders (placed_at) WHERE confirmed_at IS NULL",
        ],
    },
];

/// The most orders one listing returns.
const LIST_LIMIT: i64 = 200;

/// Orders a claim moves in one transaction (a few under test, to have
/// several batches).
const CLAIM_BATCH: i64 = if cfg!(test) { 4 } else { 500 };

/// Whether `id` could name an order: 1 to 256 bytes, no control character.
/// Another is found nowhere, and is not asked of the database (PostgreSQL
/// refuses a NUL in text: a storage failure, a 503, where SQLite found no
/// order, a 404).
fn could_be_order_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 256 && !id.chars().any(char::is_control)
}

fn storage(error: impl std::fmt::Display) -> OrdersError {
    OrdersError::Storage(error.to_string())
}

fn decode(body: &str) -> Result<Order, OrdersError> {
    serde_json::from_str(body).map_err(|e| storage(format!("a stored order does not parse: {e}")))
}

/// A claimed row: key, when stored, body, when emailed, when emptied.
type Row = (String, i64, String, Option<i64>, Option<i64>);

/// An order's row with its state: body, when confirmed, emailed, emptied.
type StateRow = (String, Option<i64>, Option<i64>, Option<i64>);

/// An order's row with its state, read.
fn stored((body, confirmed_at, emailed_at, emptied_at): StateRow) -> Result<Stored, OrdersError> {
    Ok(Stored {
        order: decode(&body)?,
        confirmed: confirmed_at.is_some(),
        emailed: emailed_at.is_some(),
        cart_emptied: emptied_at.is_some(),
    })
}

/// An order as stored, and how far checkout has finished it.
pub struct Stored {
    /// The order.
    pub order: Order,
    /// Finished: its cart emptied and its confirmation sent.
    pub confirmed: bool,
    /// Its confirmation sent.
    pub emailed: bool,
    /// Its customer's cart emptied (or found changed, and left).
    pub cart_emptied: bool,
}

/// The orders.
#[derive(Clone)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (and migrates) the store.
    pub async fn open(url: Option<&str>, data_dir: &Path) -> Result<Store, StorageError> {
        Ok(Store {
            db: Database::open("orders", url, data_dir, MIGRATIONS).await?,
        })
    }

    /// Stores `order` under `key` unless the key is taken; returns what is
    /// stored under the key, and whether this call stored it. An error
    /// means this call stored nothing.
    pub async fn save(&self, order: &Order, key: &str) -> Result<(Order, bool), OrdersError> {
        let body =
            serde_json::to_string(order).map_err(|e| OrdersError::InvalidOrder(e.to_string()))?;
        let written = sqlx::query(
            "INSERT INTO orders (order_id, idempotency_key, customer_id, placed_at, body, stored_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&order.order_id)
        .bind(key)
        .bind(&order.customer_id)
        .bind(order.placed_at)
        .bind(&body)
        .bind(storage::unix_ms())
        .execute(self.db.pool())
        .await
        .map_err(storage)?;
        if written.rows_affected() == 1 {
            // Stored: said without reading it back, so that an error from
            // here on always means the order was not stored.
            return Ok((order.clone(), true));
        }
        let stored = self
            .find(key)
            .await?
            .ok_or_else(|| storage("an order vanished right after it was written"))?;
        let created = stored.order_id == order.order_id;
        Ok((stored, created))
    }

    /// [`find_with_state`](Self::find_with_state), once every write of an
    /// order under `key` that had begun has ended, committed or not. On
    /// PostgreSQL a `save` whose connection was lost may still be running
    /// on the server, and a plain read does not wait for it: its order
    /// would land after the read said there was none. So a row is written
    /// under the key first, through its unique index, which waits for such
    /// a write to end; then the key is read, and the row taken back (the
    /// transaction is rolled back: nothing is left of it). On SQLite,
    /// writes take turns anyway.
    pub async fn find_settled(&self, key: &str) -> Result<Option<Stored>, OrdersError> {
        let fence = format!("fence:{key}");
        let mut tx = self.db.begin_write().await.map_err(storage)?;
        sqlx::query(
            "INSERT INTO orders (order_id, idempotency_key, customer_id, placed_at, body) \
             VALUES ($1, $2, '', 0, '') ON CONFLICT (idempotency_key) DO NOTHING /* fence */",
        )
        .bind(&fence)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        let row: Option<StateRow> = sqlx::query_as(
            "SELECT body, confirmed_at, emailed_at, emptied_at FROM orders \
             WHERE idempotency_key = $1 AND order_id <> $2",
        )
        .bind(key)
        .bind(&fence)
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage)?;
        tx.rollback().await.map_err(storage)?;
        row.map(stored).transpose()
    }

    /// The order under `key`.
    pub async fn find(&self, key: &str) -> Result<Option<Order>, OrdersError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT body FROM orders WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(self.db.pool())
                .await
                .map_err(storage)?;
        row.map(|(body,)| decode(&body)).transpose()
    }

    /// The order under `key`, and how far checkout has finished it.
    pub async fn find_with_state(&self, key: &str) -> Result<Option<Stored>, OrdersError> {
        let row: Option<StateRow> = sqlx::query_as(
            "SELECT body, confirmed_at, emailed_at, emptied_at FROM orders \
             WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(self.db.pool())
        .await
        .map_err(storage)?;
        row.map(stored).transpose()
    }

    /// Records that `step` of finishing the order under `key` is done
    /// (again is fine); false if there is no order under it.
    pub async fn record_step(&self, key: &str, step: FinishStep) -> Result<bool, OrdersError> {
        let sql = match step {
            FinishStep::CartEmptied => {
                "UPDATE orders SET emptied_at = $1 WHERE idempotency_key = $2 AND emptied_at IS NULL"
            }
            FinishStep::ConfirmationSent => {
                "UPDATE orders SET emailed_at = $1 WHERE idempotency_key = $2 AND emailed_at IS NULL"
            }
        };
        self.stamp(sql, key).await
    }

    /// Records that checkout has finished the order under `key` (again is
    /// fine); false if there is no order under it.
    pub async fn confirm(&self, key: &str) -> Result<bool, OrdersError> {
        self.stamp(
            "UPDATE orders SET confirmed_at = $1 WHERE idempotency_key = $2 AND confirmed_at IS NULL",
            key,
        )
        .await
    }

    /// Runs `sql`, which sets a time column of the order under `key` ($2)
    /// to now ($1) unless it is set; false if there is no order under it.
    /// Whether there is one is asked of its key alone: reading the order
    /// (its body parsed) failed for one this build cannot read, after the
    /// stamp had landed.
    async fn stamp(&self, sql: &'static str, key: &str) -> Result<bool, OrdersError> {
        let done = sqlx::query(sql)
            .bind(storage::unix_ms())
            .bind(key)
            .execute(self.db.pool())
            .await
            .map_err(storage)?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        let (found,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM orders WHERE idempotency_key = $1")
                .bind(key)
                .fetch_one(self.db.pool())
                .await
                .map_err(storage)?;
        Ok(found > 0)
    }

    /// Claims up to `limit` orders not confirmed, stored between
    /// `not_older_than_ms` and `unfinished_for_ms` ago, that nobody
    /// claimed in the last `lease_ms`; returns them with their keys,
    /// oldest first. An order whose stored body does not parse is logged
    /// and set aside for good (a person's to look at), and the claim goes
    /// on to the next. One statement per claim, so two finishers never
    /// claim one order at once.
    pub async fn claim_unfinished(
        &self,
        unfinished_for_ms: i64,
        not_older_than_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<(String, Stored)>, OrdersError> {
        // Unreadable rows set aside make a claim come back short; a few
        // more tries fill it.
        const TRIES: usize = 5;
        let mut claimed = Vec::new();
        for _ in 0..TRIES {
            let wanted = limit.min(100).saturating_sub(claimed.len() as u32);
            if wanted == 0 {
                break;
            }
            // Past the first pass, what was claimed is committed: a failure
            // now returns it, or it would wait out its lease unfinished.
            let rows = match self
                .claim_rows(unfinished_for_ms, not_older_than_ms, lease_ms, wanted)
                .await
            {
                Ok(rows) => rows,
                Err(error) if claimed.is_empty() => return Err(error),
                Err(error) => {
                    tracing::warn!(module = "orders", %error, claimed = claimed.len(), "claiming more unfinished orders failed: the claim returns those it has");
                    break;
                }
            };
            let got = rows.len();
            for (key, stored_at, body, emailed_at, emptied_at) in rows {
                match decode(&body) {
                    Ok(order) => claimed.push((
                        stored_at,
                        key,
                        Stored {
                            order,
                            confirmed: false,
                            emailed: emailed_at.is_some(),
                            cart_emptied: emptied_at.is_some(),
                        },
                    )),
                    Err(error) => {
                        let shown = runtime::text::without_guest_sessions(&key);
                        tracing::error!(module = "orders", key = shown, %error, "an unfinished order cannot be read: set aside for a person");
                        // If not, it comes back when its lease runs out,
                        // and is tried again; the orders claimed with it
                        // go on.
                        if let Err(error) = self.set_aside(&key).await {
                            tracing::warn!(module = "orders", key = shown, %error, "the unreadable order could not be set aside: it comes back after its lease");
                        }
                    }
                }
            }
            if got < wanted as usize || claimed.len() >= limit as usize {
                break;
            }
        }
        claimed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(claimed
            .into_iter()
            .map(|(_, key, stored)| (key, stored))
            .collect())
    }

    /// The claiming statement of [`claim_unfinished`](Self::claim_unfinished).
    async fn claim_rows(
        &self,
        unfinished_for_ms: i64,
        not_older_than_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Row>, OrdersError> {
        let now = storage::unix_ms();
        // A row written without `stored_at` (by an older binary) counts
        // from when it was placed. The condition again outside the
        // subquery: on PostgreSQL a row another claim has just changed is
        // checked again against it.
        sqlx::query_as(
            "UPDATE orders SET finishing_at = $1 \
             WHERE confirmed_at IS NULL \
             AND COALESCE(stored_at, placed_at) < $2 AND COALESCE(stored_at, placed_at) >= $3 \
             AND (finishing_at IS NULL OR finishing_at < $4) \
             AND idempotency_key IN (SELECT idempotency_key FROM orders \
                 WHERE confirmed_at IS NULL \
                 AND COALESCE(stored_at, placed_at) < $2 \
                 AND COALESCE(stored_at, placed_at) >= $3 \
                 AND (finishing_at IS NULL OR finishing_at < $4) \
                 ORDER BY COALESCE(stored_at, placed_at) LIMIT $5) \
             RETURNING idempotency_key, COALESCE(stored_at, placed_at), body, emailed_at, \
             emptied_at",
        )
        .bind(now)
        .bind(now.saturating_sub(unfinished_for_ms))
        .bind(now.saturating_sub(not_older_than_ms))
        .bind(now.saturating_sub(lease_ms))
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await
        .map_err(storage)
    }

    /// Up to `limit` of `customer_id`'s orders whose cart is not recorded
    /// as emptied, nor the order confirmed, placed at most
    /// `not_older_than_ms` ago, newest first, with their keys; not one set
    /// aside for a person. One whose body does not parse is logged and left
    /// out (the finisher sets it aside).
    pub async fn carts_to_empty(
        &self,
        customer_id: &str,
        not_older_than_ms: i64,
        limit: u32,
    ) -> Result<Vec<(String, Stored)>, OrdersError> {
        let since = storage::unix_ms().saturating_sub(not_older_than_ms);
        // By when it was placed (the customer's index), newest first; not
        // one set aside for a person (unreadable: the finisher's).
        let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT idempotency_key, body, emailed_at FROM orders \
             WHERE customer_id = $1 AND placed_at >= $2 \
             AND emptied_at IS NULL AND confirmed_at IS NULL \
             AND (finishing_at IS NULL OR finishing_at < $3) \
             ORDER BY placed_at DESC, idempotency_key LIMIT $4",
        )
        .bind(customer_id)
        .bind(since)
        .bind(i64::MAX)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await
        .map_err(storage)?;
        Ok(rows
            .into_iter()
            .filter_map(|(key, body, emailed_at)| match decode(&body) {
                Ok(order) => Some((
                    key,
                    Stored {
                        order,
                        confirmed: false,
                        emailed: emailed_at.is_some(),
                        cart_emptied: false,
                    },
                )),
                Err(error) => {
                    let key = runtime::text::without_guest_sessions(&key);
                    tracing::error!(module = "orders", key, %error, "an order whose cart is to be emptied cannot be read: left out");
                    None
                }
            })
            .collect())
    }

    /// Sets the order under `key` aside: no claim takes it again.
    async fn set_aside(&self, key: &str) -> Result<(), OrdersError> {
        sqlx::query("UPDATE orders SET finishing_at = $1 WHERE idempotency_key = $2")
            .bind(i64::MAX)
            .bind(key)
            .execute(self.db.pool())
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// A customer's order.
    pub async fn get(&self, customer_id: &str, order_id: &str) -> Result<Order, OrdersError> {
        if !could_be_order_id(order_id) {
            return Err(OrdersError::NotFound {
                order_id: order_id.to_owned(),
            });
        }
        let row: Option<(String,)> =
            sqlx::query_as("SELECT body FROM orders WHERE order_id = $1 AND customer_id = $2")
                .bind(order_id)
                .bind(customer_id)
                .fetch_optional(self.db.pool())
                .await
                .map_err(storage)?;
        match row {
            Some((body,)) => decode(&body),
            None => Err(OrdersError::NotFound {
                order_id: order_id.to_owned(),
            }),
        }
    }

    /// A page of a customer's orders, newest first (by when they were
    /// placed, then by id): at most [`LIST_LIMIT`], from the newest or
    /// from the one after order `before`; and, if there are older ones,
    /// the `before` of the next page (the id of this page's last row).
    /// The cursor is an order, not a count, so an order placed between two
    /// pages does not shift the next page, nor show an order twice.
    ///
    /// One whose stored body does not parse (written by hand, or by a
    /// build whose `Order` differs) is logged and left out: the customer
    /// sees the others, not an error. It still counts as its page's row,
    /// so a page of only such orders still leads to the next.
    pub async fn list(
        &self,
        customer_id: &str,
        before: Option<&str>,
    ) -> Result<(Vec<Order>, Option<String>), OrdersError> {
        let rows: Vec<(String, String)> = match before {
            None => {
                sqlx::query_as(
                    "SELECT order_id, body FROM orders WHERE customer_id = $1 \
                     ORDER BY placed_at DESC, order_id LIMIT $2",
                )
                .bind(customer_id)
                .bind(LIST_LIMIT + 1)
                .fetch_all(self.db.pool())
                .await
            }
            Some(before) if !could_be_order_id(before) => {
                return Err(OrdersError::NotFound {
                    order_id: before.to_owned(),
                });
            }
            Some(before) => {
                let placed_at: Option<i64> = sqlx::query_scalar(
                    "SELECT placed_at FROM orders WHERE customer_id = $1 AND order_id = $2",
                )
                .bind(customer_id)
                .bind(before)
                .fetch_optional(self.db.pool())
                .await
                .map_err(storage)?;
                let Some(placed_at) = placed_at else {
                    return Err(OrdersError::NotFound {
                        order_id: before.to_owned(),
                    });
                };
                sqlx::query_as(
                    "SELECT order_id, body FROM orders WHERE customer_id = $1 \
                     AND (placed_at < $2 OR (placed_at = $2 AND order_id > $3)) \
                     ORDER BY placed_at DESC, order_id LIMIT $4",
                )
                .bind(customer_id)
                .bind(placed_at)
                .bind(before)
                .bind(LIST_LIMIT + 1)
                .fetch_all(self.db.pool())
                .await
            }
        }
        .map_err(storage)?;
        let next_before = (rows.len() as i64 > LIST_LIMIT)
            .then(|| rows.get(LIST_LIMIT as usize - 1))
            .flatten()
            .map(|(order_id, _)| order_id.clone());
        let listed = rows
            .iter()
            .take(LIST_LIMIT as usize)
            .filter_map(|(order_id, body)| match decode(body) {
                Ok(order) => Some(order),
                Err(error) => {
                    tracing::error!(%order_id, %error, "a stored order cannot be read: left out of its customer's list");
                    None
                }
            })
            .collect();
        Ok((listed, next_before))
    }

    /// Moves a customer's orders to another customer id; how many it
    /// moved. The body's `customer_id` is rewritten as JSON, not as an
    /// [`Order`], so that an order this build cannot read moves too, its
    /// body otherwise as it was; one whose body is not a JSON object at all
    /// moves by its column alone, and is logged.
    ///
    /// In transactions of [`CLAIM_BATCH`] orders: a guest with thousands
    /// held SQLite's one write lock (every other customer's order waited,
    /// and failed at the busy timeout) and their bodies all in memory at
    /// once. Each order moves only if it is still `from`'s, so a second
    /// claim of the same guest at once (two sign-ins) moves none twice,
    /// nor counts it. A claim that fails midway has moved whole batches,
    /// and is safe to make again.
    pub async fn claim(&self, from: &str, to: &str) -> Result<u64, OrdersError> {
        if from == to {
            return Ok(0);
        }
        let mut moved = 0;
        loop {
            let (batch, moved_now) = self.claim_batch(from, to).await?;
            moved += moved_now;
            if batch < CLAIM_BATCH {
                return Ok(moved);
            }
        }
    }

    /// One batch of [`claim`](Self::claim): how many orders it found, and
    /// how many of them it moved.
    async fn claim_batch(&self, from: &str, to: &str) -> Result<(i64, u64), OrdersError> {
        // The id is also inside the JSON body: rewrite both, in one transaction.
        let mut tx = self.db.begin_write().await.map_err(storage)?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT order_id, body FROM orders WHERE customer_id = $1 ORDER BY order_id LIMIT $2",
        )
        .bind(from)
        .bind(CLAIM_BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(storage)?;
        let mut moved = 0;
        for (order_id, body) in &rows {
            let body = match serde_json::from_str::<serde_json::Value>(body) {
                Ok(serde_json::Value::Object(mut order)) => {
                    order.insert("customer_id".to_owned(), to.into());
                    serde_json::to_string(&order).map_err(storage)?
                }
                _ => {
                    tracing::error!(%order_id, "a stored order is not a JSON object: moved to its new customer as it is");
                    body.clone()
                }
            };
            let done = sqlx::query(
                "UPDATE orders SET customer_id = $1, body = $2 \
                 WHERE order_id = $3 AND customer_id = $4",
            )
            .bind(to)
            .bind(&body)
            .bind(order_id)
            .bind(from)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
            moved += done.rows_affected();
        }
        tx.commit().await.map_err(storage)?;
        Ok((i64::try_from(rows.len()).unwrap_or(i64::MAX), moved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::testing::{TempDir, backends};

    fn order(id: &str, placed_at: i64) -> Order {
        let body = format!(
            r#"{{"order_id":"{id}","customer_id":"u1","email":"someone@example.com","shipping_tracking_id":"t","shipping_cost":{{"currency_code":"USD","units":8,"nanos":990000000}},"shipping_address":{{"street_address":"s","city":"c","state":"st","country":"co","zip_code":1}},"items":[],"total":{{"currency_code":"USD","units":8,"nanos":990000000}},"transaction_id":"tx","placed_at":{placed_at}}}"#
        );
        serde_json::from_str(&body).unwrap()
    }

    /// Sets when the order under `key` was stored, `ago_ms` before now.
    async fn stored_ago(store: &Store, key: &str, ago_ms: i64) {
        sqlx::query("UPDATE orders SET stored_at = $1 WHERE idempotency_key = $2")
            .bind(storage::unix_ms() - ago_ms)
            .bind(key)
            .execute(store.db.pool())
            .await
            .unwrap();
    }

    #[actix_rt::test]
    async fn unfinished_orders_are_claimed_oldest_first_once_per_lease() {
        const HOUR: i64 = 3_600_000;
        const WEEK: i64 = 7 * 24 * HOUR;
        for backend in backends() {
            let dir = TempDir::new("orders-unfinished");
            let url = backend.database_url().await;
            let store = Store::open(url.as_deref(), dir.path()).await.unwrap();
            let name = backend.name();
            for (key, id, ago) in [
                ("k-new", "new", 0),
                ("k2", "second", 2 * HOUR),
                ("k1", "first", 3 * HOUR),
                ("k-done", "done", 4 * HOUR),
                ("k-ancient", "ancient", 2 * WEEK),
            ] {
                store.save(&order(id, 1), key).await.unwrap();
                stored_ago(&store, key, ago).await;
            }
            assert!(store.confirm("k-done").await.unwrap());
            let keys = |claimed: Vec<(String, Stored)>| -> Vec<String> {
                claimed.into_iter().map(|(key, _)| key).collect()
            };

            // The oldest unfinished one stored over an hour and under a
            // week ago.
            let claimed = store.claim_unfinished(HOUR, WEEK, HOUR, 1).await.unwrap();
            assert_eq!(claimed[0].1.order.order_id, "first", "{name}");
            assert!(!claimed[0].1.emailed, "{name}");
            assert!(!claimed[0].1.cart_emptied, "{name}");
            assert_eq!(keys(claimed), ["k1"], "{name}");
            // It is leased: the next claim takes the next one.
            let claimed = store.claim_unfinished(HOUR, WEEK, HOUR, 10).await.unwrap();
            assert_eq!(keys(claimed), ["k2"], "{name}");
            assert!(
                store
                    .claim_unfinished(HOUR, WEEK, HOUR, 10)
                    .await
                    .unwrap()
                    .is_empty(),
                "{name}"
            );
            // Once its lease is over (a lease of none: every claim is), it
            // can be claimed again, unless it was finished meanwhile; and
            // it says which steps are done.
            assert!(store.confirm("k1").await.unwrap());
            let sent = FinishStep::ConfirmationSent;
            assert!(store.record_step("k2", sent).await.unwrap());
            assert!(!store.record_step("k-none", sent).await.unwrap());
            let claimed = store.claim_unfinished(HOUR, WEEK, -1, 10).await.unwrap();
            assert!(claimed[0].1.emailed, "{name}");
            assert!(!claimed[0].1.cart_emptied, "{name}");
            assert_eq!(keys(claimed), ["k2"], "{name}");
            // Orders stored since are left to the checkout placing them,
            // unless asked for; orders older than asked for, always.
            let claimed = store.claim_unfinished(-1, WEEK, -1, 10).await.unwrap();
            assert_eq!(keys(claimed), ["k2", "k-new"], "{name}");
        }
    }

    #[actix_rt::test]
    async fn an_unreadable_order_is_set_aside_and_the_claim_takes_the_next() {
        const HOUR: i64 = 3_600_000;
        for backend in backends() {
            let dir = TempDir::new("orders-unreadable");
            let url = backend.database_url().await;
            let store = Store::open(url.as_deref(), dir.path()).await.unwrap();
            let name = backend.name();
            store.save(&order("bad", 1), "k-bad").await.unwrap();
            stored_ago(&store, "k-bad", 3 * HOUR).await;
            sqlx::query("UPDATE orders SET body = 'not json' WHERE idempotency_key = 'k-bad'")
                .execute(store.db.pool())
                .await
                .unwrap();
            store.save(&order("good", 1), "k-good").await.unwrap();
            stored_ago(&store, "k-good", 2 * HOUR).await;

            let claimed = store
                .claim_unfinished(HOUR, 2 * HOUR * 24, -1, 1)
                .await
                .unwrap();
            assert_eq!(claimed.len(), 1, "{name}");
            assert_eq!(claimed[0].0, "k-good", "{name}");
            // Set aside for good, even with no lease.
            let claimed = store
                .claim_unfinished(HOUR, 2 * HOUR * 24, -1, 10)
                .await
                .unwrap();
            let keys: Vec<&str> = claimed.iter().map(|(key, _)| key.as_str()).collect();
            assert_eq!(keys, ["k-good"], "{name}");
            // Its steps are still recorded, and it can be confirmed, by a
            // person who finished it: found, not an error (it was read,
            // body and all, after each stamp), and again too.
            for _ in 0..2 {
                assert!(
                    store
                        .record_step("k-bad", FinishStep::CartEmptied)
                        .await
                        .unwrap(),
                    "{name}"
                );
                assert!(store.confirm("k-bad").await.unwrap(), "{name}");
            }
            assert!(!store.confirm("k-none").await.unwrap(), "{name}");
        }
    }

    /// An order this build cannot read (a body written by hand, or by a
    /// build whose `Order` differs) is left out of its customer's list,
    /// not made an error of it; and it moves with the others to the
    /// account they sign in to, its body otherwise kept as it was.
    #[actix_rt::test]
    async fn an_unreadable_order_is_left_out_of_lists_and_still_moves() {
        for backend in backends() {
            let dir = TempDir::new("orders-unreadable-list");
            let url = backend.database_url().await;
            let store = Store::open(url.as_deref(), dir.path()).await.unwrap();
            let name = backend.name();
            for (id, at) in [("good", 3), ("other-shape", 2), ("not-json", 1)] {
                store.save(&order(id, at), id).await.unwrap();
            }
            for (id, body) in [
                (
                    "other-shape",
                    r#"{"order_id":"other-shape","customer_id":"u1","added_later":7}"#,
                ),
                ("not-json", "not json"),
            ] {
                sqlx::query("UPDATE orders SET body = $1 WHERE order_id = $2")
                    .bind(body)
                    .bind(id)
                    .execute(store.db.pool())
                    .await
                    .unwrap();
            }
            let listed = |orders: Vec<Order>| -> Vec<String> {
                orders.into_iter().map(|order| order.order_id).collect()
            };
            assert_eq!(
                listed(store.list("u1", None).await.unwrap().0),
                ["good"],
                "{name}"
            );

            assert_eq!(store.claim("u1", "u2").await.unwrap(), 3, "{name}");
            assert_eq!(
                listed(store.list("u2", None).await.unwrap().0),
                ["good"],
                "{name}"
            );
            assert!(store.list("u1", None).await.unwrap().0.is_empty(), "{name}");
            let (body,): (String,) = sqlx::query_as(
                "SELECT body FROM orders WHERE order_id = 'other-shape' AND customer_id = 'u2'",
            )
            .fetch_one(store.db.pool())
            .await
            .unwrap();
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["customer_id"], "u2", "{name}");
            assert_eq!(body["added_later"], 7, "{name}");
        }
    }

    /// Pages of 200, newest first (then by id): a page of 200 with none
    /// older says so; one with older ones names where the next starts,
    /// which is right after it, orders placed in the same millisecond
    /// across the boundary neither repeated nor left out, and not shifted
    /// by an order placed between the pages. A cursor that is not one of
    /// the customer's orders is `NotFound`.
    #[actix_rt::test]
    async fn an_id_that_cannot_be_an_orders_is_found_nowhere_on_either_back_end() {
        for backend in backends() {
            let dir = TempDir::new("orders-odd-ids");
            let url = backend.database_url().await;
            let store = Store::open(url.as_deref(), dir.path()).await.unwrap();
            store.save(&order("o1", 1), "k1").await.unwrap();
            let long = "x".repeat(257);
            for id in ["\0", "", "a\nb", long.as_str()] {
                // PostgreSQL refused a NUL: a storage failure, a 503.
                let got = store.get("u1", id).await.unwrap_err();
                assert!(
                    matches!(got, OrdersError::NotFound { .. }),
                    "{id:?}: {got:?}"
                );
                let listed = store.list("u1", Some(id)).await.unwrap_err();
                assert!(
                    matches!(listed, OrdersError::NotFound { .. }),
                    "{id:?}: {listed:?}"
                );
            }
        }
    }

    #[actix_rt::test]
    async fn a_customers_orders_whose_cart_is_not_emptied_are_found() {
        for backend in backends() {
            let dir = TempDir::new("orders-carts-to-empty");
            let url = backend.database_url().await;
            let store = Store::open(url.as_deref(), dir.path()).await.unwrap();
            let name = backend.name();
            let now = storage::unix_ms();
            for (id, key) in [("a", "k-a"), ("b", "k-b"), ("c", "k-c")] {
                store.save(&order(id, now), key).await.unwrap();
            }
            let mut theirs = order("t", now);
            theirs.customer_id = "u2".to_owned();
            store.save(&theirs, "k-t").await.unwrap();
            store
                .record_step("k-a", FinishStep::CartEmptied)
                .await
                .unwrap();
            store.confirm("k-b").await.unwrap();
            let found = store.carts_to_empty("u1", 3_600_000, 10).await.unwrap();
            let keys: Vec<&str> = found.iter().map(|(key, _)| key.as_str()).collect();
            assert_eq!(keys, ["k-c"], "{name}");
            // Placed longer ago than asked: not found.
            sqlx::query("UPDATE orders SET placed_at = $1 WHERE idempotency_key = 'k-c'")
                .bind(now - 7_200_000)
                .execute(store.db.pool())
                .await
                .unwrap();
            assert!(
                store
                    .carts_to_empty("u1", 3_600_000, 10)
                    .await
                    .unwrap()
                    .is_empty(),
                "{name}"
            );
        }
    }

    #[actix_rt::test]
    async fn a_claim_moves_every_order_once_in_batches() {
        for backend in backends() {
            let dir = TempDir::new("orders-claim");
            let url = backend.database_url().await;
            let store = Store::open(url.as_deref(), dir.path()).await.unwrap();
            let name = backend.name();
            let count = CLAIM_BATCH * 2 + 2;
            for n in 0..count {
                let mut placed = order(&format!("g{n}"), n);
                placed.customer_id = "guest:g".to_owned();
                store.save(&placed, &format!("k{n}")).await.unwrap();
            }
            // Two sign-ins of one guest at once, into two accounts: each
            // order moves once, counted once. (Both took every order on
            // PostgreSQL, and counted it.)
            let (a, b) = tokio::join!(store.claim("guest:g", "ua"), store.claim("guest:g", "ub"));
            let moved = a.unwrap() + b.unwrap();
            assert_eq!(moved, count as u64, "{name}");
            let mut found = 0;
            for account in ["ua", "ub"] {
                let (orders, _) = store.list(account, None).await.unwrap();
                for order in &orders {
                    assert_eq!(order.customer_id, account, "{name}: the body moved too");
                }
                found += orders.len();
            }
            assert_eq!(found as i64, count, "{name}");
            assert_eq!(store.claim("guest:g", "ua").await.unwrap(), 0, "{name}");
            assert_eq!(store.claim("ua", "ua").await.unwrap(), 0, "{name}");
        }
    }

    #[actix_rt::test]
    async fn orders_are_listed_in_pages_of_200() {
        for backend in backends() {
            let dir = TempDir::new("orders-pages");
            let url = backend.database_url().await;
            let store = Store::open(url.as_deref(), dir.path()).await.unwrap();
            let name = backend.name();
            for at in 1..=LIST_LIMIT {
                store
                    .save(&order(&format!("o{at}"), at), &format!("k{at}"))
                    .await
                    .unwrap();
            }
            let ids = |orders: Vec<Order>| -> Vec<String> {
                orders.into_iter().map(|order| order.order_id).collect()
            };
            let (first, next) = store.list("u1", None).await.unwrap();
            assert_eq!((first.len() as i64, next), (LIST_LIMIT, None), "{name}");

            // Two more placed when o1 was, and one before all.
            for (id, at) in [("t-b", 1), ("t-a", 1), ("oldest", -1)] {
                store
                    .save(&order(id, at), &format!("k-{id}"))
                    .await
                    .unwrap();
            }
            let (first, next) = store.list("u1", None).await.unwrap();
            let first = ids(first);
            assert_eq!(first.len() as i64, LIST_LIMIT, "{name}");
            assert_eq!(first[0], format!("o{LIST_LIMIT}"), "{name}: newest first");
            assert_eq!(first.last().map(String::as_str), Some("o1"), "{name}");
            assert_eq!(next.as_deref(), Some("o1"), "{name}");

            store
                .save(&order("newest", 1_000), "k-newest")
                .await
                .unwrap();
            let (second, next) = store.list("u1", next.as_deref()).await.unwrap();
            assert_eq!(ids(second), ["t-a", "t-b", "oldest"], "{name}");
            assert_eq!(next, None, "{name}");

            let mut theirs = order("theirs", 5);
            theirs.customer_id = "u2".to_owned();
            store.save(&theirs, "k-theirs").await.unwrap();
            for cursor in ["nope", "theirs"] {
                let error = store.list("u1", Some(cursor)).await.unwrap_err();
                assert!(
                    matches!(&error, OrdersError::NotFound { order_id } if order_id == cursor),
                    "{name}: {error:?}"
                );
            }
        }
    }

    #[actix_rt::test]
    async fn orders_unfinished_before_the_finisher_existed_are_claimed_by_when_they_were_placed() {
        for backend in backends() {
            let dir = TempDir::new("orders-v3");
            let url = backend.database_url().await;
            let name = backend.name();
            // A database as the first finisher left it (migrations 1 to 3),
            // with an order stored and never confirmed.
            let v3 = Database::open("orders", url.as_deref(), dir.path(), &MIGRATIONS[..3])
                .await
                .unwrap();
            let placed_at = storage::unix_ms() - 7_200_000;
            let body = serde_json::to_string(&order("o1", placed_at)).unwrap();
            sqlx::query(
                "INSERT INTO orders (order_id, idempotency_key, customer_id, placed_at, body) \
                 VALUES ('o1', 'k1', 'u1', $1, $2)",
            )
            .bind(placed_at)
            .bind(&body)
            .execute(v3.pool())
            .await
            .unwrap();
            // And one written by an older binary after the upgrade, with
            // no time of storing.
            let store = Store::open(url.as_deref(), dir.path()).await.unwrap();
            let body = serde_json::to_string(&order("o2", placed_at + 1)).unwrap();
            sqlx::query(
                "INSERT INTO orders (order_id, idempotency_key, customer_id, placed_at, body) \
                 VALUES ('o2', 'k2', 'u1', $1, $2)",
            )
            .bind(placed_at + 1)
            .bind(&body)
            .execute(store.db.pool())
            .await
            .unwrap();

            let claimed = store
                .claim_unfinished(3_600_000, 86_400_000, 60_000, 10)
                .await
                .unwrap();
            let keys: Vec<&str> = claimed.iter().map(|(key, _)| key.as_str()).collect();
            assert_eq!(keys, ["k1", "k2"], "{name}");
            assert!(
                !claimed[0].1.emailed && !claimed[0].1.cart_emptied,
                "{name}"
            );
        }
    }

    #[actix_rt::test]
    async fn orders_stored_before_confirmations_were_recorded_count_as_confirmed() {
        for backend in backends() {
            let dir = TempDir::new("orders-v1");
            let url = backend.database_url().await;
            let v1 = Database::open("orders", url.as_deref(), dir.path(), &MIGRATIONS[..1])
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO orders (order_id, idempotency_key, customer_id, placed_at, body) \
                 VALUES ('o1', 'k1', 'u1', 1, $1)",
            )
            .bind(r#"{"order_id":"o1","customer_id":"u1","email":"someone@example.com","shipping_tracking_id":"t","shipping_cost":{"currency_code":"USD","units":8,"nanos":990000000},"shipping_address":{"street_address":"s","city":"c","state":"st","country":"co","zip_code":1},"items":[{"item":{"product_id":"OLJCESPC7Z","quantity":1},"cost":{"currency_code":"USD","units":19,"nanos":990000000},"name":"Sunglasses"}],"total":{"currency_code":"USD","units":28,"nanos":980000000},"transaction_id":"tx","placed_at":1}"#)
            .execute(v1.pool())
            .await
            .unwrap();

            let store = Store::open(url.as_deref(), dir.path()).await.unwrap();
            let stored = store.find_with_state("k1").await.unwrap().unwrap();
            assert_eq!(stored.order.order_id, "o1");
            assert!(stored.confirmed, "{}", backend.name());
            assert!(stored.emailed, "{}", backend.name());
            assert!(stored.cart_emptied, "{}", backend.name());
        }
    }
}
