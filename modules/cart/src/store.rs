//! Carts in the module's database: one row per line, keyed by user and
//! product. An add is one upsert that adds to the quantity in the database,
//! so two adds at once both count. Reads go through a [`CartCache`] when
//! there is one (see `cache` for when that is right).
//!
//! Each line keeps when the customer last changed it (`changed_at`, ms on
//! this node's clock; a merge keeps the time of the lines it moves), so
//! that the lines taken out late for an order (`remove_ordered_lines`) are
//! not ones the customer put in again since, even the very same lines.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

use storage::{Database, Migration, StorageError};

use crate::api::{CartError, CartItem, RemoveOrderedLinesResponse};
use crate::cache::CartCache;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "cart lines",
        statements: &["CREATE TABLE cart_items (
            user_id TEXT NOT NULL,
            product_id TEXT NOT NULL,
            quantity BIGINT NOT NULL,
            added_at BIGINT NOT NULL,
            PRIMARY KEY (user_id, product_id)
        )"],
    },
    Migration {
        version: 2,
        description: "when each line last changed",
        // Lines from before: changed at 0, before any order.
        statements: &["ALTER TABLE cart_items ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0"],
    },
];

fn storage(error: impl std::fmt::Display) -> CartError {
    CartError::Storage(error.to_string())
}

/// A value that orders lines by when they were first added: microseconds,
/// nudged forward so no two lines of this process tie.
fn added_at() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = storage::unix_ms().saturating_mul(1000);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// What an add did.
pub enum Added {
    /// The line was created or grew.
    Done,
    /// The line would grow past `i32::MAX`; nothing changed.
    Overflow,
}

/// The carts.
#[derive(Clone)]
pub struct Store {
    db: Database,
    cache: Option<CartCache>,
}

impl Store {
    /// Opens (and migrates) the store; reads go through `cache` if given.
    pub async fn open(
        url: Option<&str>,
        data_dir: &Path,
        cache: Option<CartCache>,
    ) -> Result<Store, StorageError> {
        Ok(Store {
            db: Database::open("cart", url, data_dir, MIGRATIONS).await?,
            cache,
        })
    }

    /// Runs `write` to `user_ids`' carts, with the cache told: their
    /// entries go as it starts and as it ends, and if it fails or is
    /// dropped midway (it may yet land: a statement the database goes on
    /// with after the connection was lost) their carts are not cached for
    /// a while (see `cache`).
    async fn write<T>(
        &self,
        user_ids: &[&str],
        write: impl std::future::Future<Output = Result<T, CartError>>,
    ) -> Result<T, CartError> {
        let writing = self.cache.as_ref().map(|cache| cache.writing(user_ids));
        let result = write.await;
        if let (Some(writing), Ok(_)) = (writing, &result) {
            writing.landed();
        }
        result
    }

    /// How many lines the cart has, and whether `product_id` is one.
    pub async fn lines(&self, user_id: &str, product_id: &str) -> Result<(i64, bool), CartError> {
        if let Some((count, has)) = self
            .cache
            .as_ref()
            .and_then(|cache| cache.lines(user_id, product_id))
        {
            return Ok((i64::try_from(count).unwrap_or(i64::MAX), has));
        }
        let (count, has): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN product_id = $2 THEN 1 ELSE 0 END), 0) \
             FROM cart_items WHERE user_id = $1",
        )
        .bind(user_id)
        .bind(product_id)
        .fetch_one(self.db.pool())
        .await
        .map_err(storage)?;
        Ok((count, has > 0))
    }

    /// Adds `quantity` of `product_id` to the cart.
    pub async fn add(
        &self,
        user_id: &str,
        product_id: &str,
        quantity: i32,
    ) -> Result<Added, CartError> {
        self.write(&[user_id], self.add_row(user_id, product_id, quantity))
            .await
    }

    async fn add_row(
        &self,
        user_id: &str,
        product_id: &str,
        quantity: i32,
    ) -> Result<Added, CartError> {
        let done = sqlx::query(
            "INSERT INTO cart_items (user_id, product_id, quantity, added_at, changed_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, product_id) DO UPDATE SET \
             quantity = cart_items.quantity + excluded.quantity, changed_at = excluded.changed_at \
             WHERE cart_items.quantity + excluded.quantity <= 2147483647",
        )
        .bind(user_id)
        .bind(product_id)
        .bind(i64::from(quantity))
        .bind(added_at())
        .bind(storage::unix_ms())
        .execute(self.db.pool())
        .await
        .map_err(storage)?;
        Ok(if done.rows_affected() == 0 {
            Added::Overflow
        } else {
            Added::Done
        })
    }

    /// The cart's lines, in the order they were first added.
    pub async fn get(&self, user_id: &str) -> Result<Vec<CartItem>, CartError> {
        let Some(cache) = &self.cache else {
            return self.read(user_id).await;
        };
        if let Some(items) = cache.get(user_id) {
            return Ok(items);
        }
        let read_at = cache.epoch();
        let items = self.read(user_id).await?;
        cache.insert_if_unchanged(user_id, &items, read_at);
        Ok(items)
    }

    /// The cart's lines, from the database.
    async fn read(&self, user_id: &str) -> Result<Vec<CartItem>, CartError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT product_id, quantity FROM cart_items WHERE user_id = $1 ORDER BY added_at, product_id",
        )
        .bind(user_id)
        .fetch_all(self.db.pool())
        .await
        .map_err(storage)?;
        Ok(rows
            .into_iter()
            .map(|(product_id, quantity)| CartItem {
                product_id,
                quantity: i32::try_from(quantity).unwrap_or(i32::MAX),
            })
            .collect())
    }

    /// Empties the cart.
    pub async fn empty(&self, user_id: &str) -> Result<(), CartError> {
        self.write(&[user_id], self.delete_rows(user_id)).await
    }

    /// Deletes the cart's lines, in two statements of one transaction. On
    /// PostgreSQL (read committed) a `DELETE` that waited for a merge's
    /// lock on one line then sees that line as the merge left it, but not
    /// the lines the merge inserted, which its snapshot predates: one
    /// delete alone left the merged-in new lines and dropped the rest, an
    /// outcome of neither order. The second statement, with a snapshot
    /// taken after the merge, takes them: the cart is empty, as if the
    /// merge came first. (Elsewhere it finds nothing.)
    ///
    /// On PostgreSQL the lines are locked first in product order, the
    /// order every other write to a cart takes them in: a `DELETE` alone
    /// locks them in the order it finds them on disk, and against a write
    /// that holds one line and waits for the next (a merge, or an order's
    /// lines taken out) that was a deadlock, one of the two failed.
    /// (SQLite takes the whole database for a write: no such order.)
    /// On PostgreSQL, locks `user_id`'s lines in product order, by bytes
    /// (`COLLATE "C"`, as the writes that lock in Rust's order of strings:
    /// in a database's own collation, `en_US.utf8` the official image's,
    /// `apple` and `Banana` come the other way round). SQLite takes the
    /// whole database for a write: nothing to do.
    async fn lock_in_product_order(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        user_id: &str,
    ) -> Result<(), CartError> {
        if self.db.backend() == storage::Backend::Postgres {
            sqlx::query(
                "SELECT product_id FROM cart_items WHERE user_id = $1 \
                 ORDER BY product_id COLLATE \"C\" FOR UPDATE",
            )
            .bind(user_id)
            .execute(&mut **tx)
            .await
            .map_err(storage)?;
        }
        Ok(())
    }

    async fn delete_rows(&self, user_id: &str) -> Result<(), CartError> {
        let mut tx = self.db.begin_write().await.map_err(storage)?;
        self.lock_in_product_order(&mut tx, user_id).await?;
        for _ in 0..2 {
            sqlx::query("DELETE FROM cart_items WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }

    /// Removes the lines of an order placed at `unchanged_since_ms` (see
    /// [`RemoveOrderedLines`](crate::api::RemoveOrderedLines)): each line
    /// holding just the quantity ordered of its product, unchanged since;
    /// the others stay.
    pub async fn remove_ordered_lines(
        &self,
        user_id: &str,
        items: &[CartItem],
        unchanged_since_ms: Option<i64>,
    ) -> Result<RemoveOrderedLinesResponse, CartError> {
        self.write(
            &[user_id],
            self.delete_ordered_rows(user_id, items, unchanged_since_ms),
        )
        .await
    }

    /// One conditional `DELETE` per product, in one transaction: a line an
    /// add changes at the same moment is either changed first (and stays:
    /// on PostgreSQL the delete waits for the add's lock and looks at the
    /// line again) or removed first (and the add puts in a new line).
    /// Products go in order, the order in which every write to a cart
    /// locks its rows (see [`merge`](Self::merge)).
    async fn delete_ordered_rows(
        &self,
        user_id: &str,
        items: &[CartItem],
        unchanged_since_ms: Option<i64>,
    ) -> Result<RemoveOrderedLinesResponse, CartError> {
        let mut ordered: BTreeMap<&str, i64> = BTreeMap::new();
        for item in items {
            let quantity = ordered.entry(item.product_id.as_str()).or_default();
            *quantity = quantity.saturating_add(i64::from(item.quantity));
        }
        let since = unchanged_since_ms.unwrap_or(i64::MAX);
        let mut tx = self.db.begin_write().await.map_err(storage)?;
        let mut removed: u64 = 0;
        for (product_id, quantity) in ordered {
            let done = sqlx::query(
                "DELETE FROM cart_items \
                 WHERE user_id = $1 AND product_id = $2 AND quantity = $3 AND changed_at <= $4",
            )
            .bind(user_id)
            .bind(product_id)
            .bind(quantity)
            .bind(since)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
            removed = removed.saturating_add(done.rows_affected());
        }
        let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM cart_items WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(RemoveOrderedLinesResponse {
            removed: u32::try_from(removed).unwrap_or(u32::MAX),
            lines_left: u32::try_from(left).unwrap_or(u32::MAX),
        })
    }

    /// Moves every line of `from` into `into`, in one transaction; a line
    /// that would overflow stops at `i32::MAX`. A line keeps when it was
    /// last changed (the later of the two, for a product in both carts):
    /// moved, it is still what the customer put in then.
    ///
    /// The lines are taken by deleting them (`DELETE ... RETURNING`), not
    /// read and then deleted: on PostgreSQL (read committed) a line added
    /// to `from` between a read and a delete would be deleted unread, and
    /// lost. Deleting locks the lines it takes, and returns the quantity a
    /// concurrent add committed first; a line added after it stays in
    /// `from`.
    pub async fn merge(&self, from: &str, into: &str) -> Result<(), CartError> {
        self.write(&[from, into], self.move_rows(from, into)).await
    }

    async fn move_rows(&self, from: &str, into: &str) -> Result<(), CartError> {
        let mut tx = self.db.begin_write().await.map_err(storage)?;
        // `from`'s lines locked in product order first, as `delete_rows`
        // does and for the same reason: the `DELETE` below alone locks them
        // in the order it finds them, and against an emptying or an
        // order's lines taken out of that cart that was a deadlock.
        self.lock_in_product_order(&mut tx, from).await?;
        let mut lines: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "DELETE FROM cart_items WHERE user_id = $1 \
             RETURNING product_id, quantity, added_at, changed_at",
        )
        .bind(from)
        .fetch_all(&mut *tx)
        .await
        .map_err(storage)?;
        lines.sort_by(|(a, _, a_at, _), (b, _, b_at, _)| (a_at, a).cmp(&(b_at, b)));
        // Lines new to the user's cart come after the lines already in it,
        // in the order they were added: stamped in that order, then
        // written in product order, the order in which every write to a
        // cart locks its rows. (Written in the order they were added, two
        // merges into one cart, from two replicas on one PostgreSQL, could
        // each hold a row the other wanted next: a deadlock, one failed.)
        let mut lines: Vec<(String, i64, i64, i64)> = lines
            .into_iter()
            .map(|(product_id, quantity, _, changed)| (product_id, quantity, added_at(), changed))
            .collect();
        lines.sort();
        for (product_id, quantity, added, changed) in lines {
            sqlx::query(
                "INSERT INTO cart_items (user_id, product_id, quantity, added_at, changed_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = \
                 CASE WHEN cart_items.quantity + excluded.quantity > 2147483647 THEN 2147483647 \
                 ELSE cart_items.quantity + excluded.quantity END, changed_at = \
                 CASE WHEN cart_items.changed_at > excluded.changed_at THEN cart_items.changed_at \
                 ELSE excluded.changed_at END",
            )
            .bind(into)
            .bind(&product_id)
            .bind(quantity)
            .bind(added)
            .bind(changed)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }
}
