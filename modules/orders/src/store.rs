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
    // How far checkout has finished each order (the cart emptied, the
    // confirmation sent: taken as done for orders confirmed before this),
    // when its finisher last claimed an unfinished one (see
    // `claim_unfinished`), and when the order was stored, by this
    // module's clock (taken as when it was placed, before this).
    Migration {
        version: 3,
        description: "finishing orders",
        statements: &[
            "ALTER TABLE orders ADD COLUMN emailed_at BIGINT",
            "ALTER TABLE orders ADD COLUMN emptied_at BIGINT",
            "ALTER TABLE orders ADD COLUMN finishing_at BIGINT",
            "ALTER TABLE orders ADD COLUMN stored_at BIGINT",
            "UPDATE orders SET emailed_at = confirmed_at, emptied_at = confirmed_at, \
             stored_at = placed_at",
            "CREATE INDEX orders_unfinished ON orders (stored_at) WHERE confirmed_at IS NULL",
        ],
    },
];

/// The most orders one listing returns.
const LIST_LIMIT: i64 = 200;

fn storage(error: impl std::fmt::Display) -> OrdersError {
    OrdersError::Storage(error.to_string())
}

fn decode(body: &str) -> Result<Order, OrdersError> {
    serde_json::from_str(body).map_err(|e| storage(format!("a stored order does not parse: {e}")))
}

/// A claimed row: key, when stored, body, when emailed, when emptied.
type Row = (String, Option<i64>, String, Option<i64>, Option<i64>);

/// An order's row with its state: body, when confirmed, emailed, emptied.
type StateRow = (String, Option<i64>, Option<i64>, Option<i64>);

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
        row.map(|(body, confirmed_at, emailed_at, emptied_at)| {
            Ok(Stored {
                order: decode(&body)?,
                confirmed: confirmed_at.is_some(),
                emailed: emailed_at.is_some(),
                cart_emptied: emptied_at.is_some(),
            })
        })
        .transpose()
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
    async fn stamp(&self, sql: &'static str, key: &str) -> Result<bool, OrdersError> {
        sqlx::query(sql)
            .bind(storage::unix_ms())
            .bind(key)
            .execute(self.db.pool())
            .await
            .map_err(storage)?;
        Ok(self.find(key).await?.is_some())
    }

    /// Claims up to `limit` orders not confirmed, stored between
    /// `not_older_than_ms` and `unfinished_for_ms` ago, that nobody
    /// claimed in the last `lease_ms`; returns them with their keys,
    /// oldest first (an order whose stored body does not parse is logged
    /// and left out). One statement, so two finishers never claim one
    /// order at once.
    pub async fn claim_unfinished(
        &self,
        unfinished_for_ms: i64,
        not_older_than_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<(String, Stored)>, OrdersError> {
        let now = storage::unix_ms();
        let stored_before = now.saturating_sub(unfinished_for_ms);
        let stored_after = now.saturating_sub(not_older_than_ms);
        let free_since = now.saturating_sub(lease_ms);
        // The condition again outside the subquery: on PostgreSQL a row
        // another claim has just changed is checked again against it.
        let rows: Vec<Row> = sqlx::query_as(
            "UPDATE orders SET finishing_at = $1 \
             WHERE confirmed_at IS NULL AND stored_at < $2 AND stored_at >= $3 \
             AND (finishing_at IS NULL OR finishing_at < $4) \
             AND idempotency_key IN (SELECT idempotency_key FROM orders \
                 WHERE confirmed_at IS NULL AND stored_at < $2 AND stored_at >= $3 \
                 AND (finishing_at IS NULL OR finishing_at < $4) \
                 ORDER BY stored_at LIMIT $5) \
             RETURNING idempotency_key, stored_at, body, emailed_at, emptied_at",
        )
        .bind(now)
        .bind(stored_before)
        .bind(stored_after)
        .bind(free_since)
        .bind(i64::from(limit.min(100)))
        .fetch_all(self.db.pool())
        .await
        .map_err(storage)?;
        let mut claimed: Vec<(i64, String, Stored)> = rows
            .into_iter()
            .filter_map(|(key, stored_at, body, emailed_at, emptied_at)| {
                match decode(&body) {
                    Ok(order) => Some((
                        stored_at.unwrap_or_default(),
                        key,
                        Stored {
                            order,
                            confirmed: false,
                            emailed: emailed_at.is_some(),
                            cart_emptied: emptied_at.is_some(),
                        },
                    )),
                    Err(error) => {
                        tracing::error!(module = "orders", key, %error, "an unfinished order cannot be read: left out");
                        None
                    }
                }
            })
            .collect();
        claimed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(claimed
            .into_iter()
            .map(|(_, key, stored)| (key, stored))
            .collect())
    }

    /// A customer's order.
    pub async fn get(&self, customer_id: &str, order_id: &str) -> Result<Order, OrdersError> {
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

    /// A customer's orders, newest first.
    pub async fn list(&self, customer_id: &str) -> Result<Vec<Order>, OrdersError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT body FROM orders WHERE customer_id = $1 ORDER BY placed_at DESC, order_id LIMIT $2",
        )
        .bind(customer_id)
        .bind(LIST_LIMIT)
        .fetch_all(self.db.pool())
        .await
        .map_err(storage)?;
        rows.iter().map(|(body,)| decode(body)).collect()
    }

    /// Moves a customer's orders to another customer id.
    pub async fn claim(&self, from: &str, to: &str) -> Result<u64, OrdersError> {
        // The id is also inside the JSON body: rewrite both, in one transaction.
        let mut tx = self.db.begin_write().await.map_err(storage)?;
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT order_id, body FROM orders WHERE customer_id = $1")
                .bind(from)
                .fetch_all(&mut *tx)
                .await
                .map_err(storage)?;
        for (order_id, body) in &rows {
            let mut order = decode(body)?;
            order.customer_id = to.to_owned();
            let body = serde_json::to_string(&order).map_err(storage)?;
            sqlx::query("UPDATE orders SET customer_id = $1, body = $2 WHERE order_id = $3")
                .bind(to)
                .bind(&body)
                .bind(order_id)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)?;
        Ok(rows.len() as u64)
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
