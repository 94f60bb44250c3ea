//! The order store: one row per order, the order itself as JSON, and the
//! columns it is looked up by. The idempotency key is unique.

use std::path::Path;

use storage::{Database, Migration, StorageError};

use crate::api::{Order, OrdersError};

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
];

/// The most orders one listing returns.
const LIST_LIMIT: i64 = 200;

fn storage(error: impl std::fmt::Display) -> OrdersError {
    OrdersError::Storage(error.to_string())
}

fn decode(body: &str) -> Result<Order, OrdersError> {
    serde_json::from_str(body).map_err(|e| storage(format!("a stored order does not parse: {e}")))
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
            "INSERT INTO orders (order_id, idempotency_key, customer_id, placed_at, body) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&order.order_id)
        .bind(key)
        .bind(&order.customer_id)
        .bind(order.placed_at)
        .bind(&body)
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

    /// The order under `key`, and whether checkout has finished it
    /// ([`confirm`](Self::confirm)).
    pub async fn find_with_state(&self, key: &str) -> Result<Option<(Order, bool)>, OrdersError> {
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT body, confirmed_at FROM orders WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(self.db.pool())
                .await
                .map_err(storage)?;
        row.map(|(body, confirmed_at)| Ok((decode(&body)?, confirmed_at.is_some())))
            .transpose()
    }

    /// Records that checkout has finished the order under `key` (again is
    /// fine); false if there is no order under it.
    pub async fn confirm(&self, key: &str) -> Result<bool, OrdersError> {
        sqlx::query(
            "UPDATE orders SET confirmed_at = $1 WHERE idempotency_key = $2 AND confirmed_at IS NULL",
        )
        .bind(storage::unix_ms())
        .bind(key)
        .execute(self.db.pool())
        .await
        .map_err(storage)?;
        Ok(self.find(key).await?.is_some())
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
            let (order, confirmed) = store.find_with_state("k1").await.unwrap().unwrap();
            assert_eq!(order.order_id, "o1");
            assert!(confirmed, "{}", backend.name());
        }
    }
}
