//! Carts kept in memory in front of the database, so that reading a cart
//! (which every page of the shop does, for its header) is not a round trip
//! to the database's thread.
//!
//! The database stays the truth; the cache only saves reads, and is right
//! only while this module is the database's one writer (one replica: see
//! `StartContext::replicas`). It is kept right by three rules:
//!
//! - a write invalidates the user's entry when it starts and again when it
//!   ends, however it ends (a [`Writing`] guard; a write cancelled midway
//!   may or may not have reached the database, so the entry must go);
//! - every write start and end moves an epoch on, and a read that missed
//!   puts what it read in the cache only if no write started or ended
//!   while it read (else what it read may already be old);
//! - at most `capacity` carts are kept; a new one past that pushes out an
//!   arbitrary other (the cache saves reads, it does not need to be fair).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::api::CartItem;

/// The carts in memory. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct CartCache {
    inner: Arc<Mutex<Inner>>,
    capacity: usize,
}

struct Inner {
    carts: HashMap<String, Vec<CartItem>>,
    /// Moves on at every write's start and end.
    epoch: u64,
}

/// A moment of the cache: what a read that misses notes before it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u64);

impl CartCache {
    /// An empty cache of at most `capacity` carts (at least one).
    pub fn new(capacity: usize) -> CartCache {
        CartCache {
            inner: Arc::new(Mutex::new(Inner {
                carts: HashMap::new(),
                epoch: 0,
            })),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data; the worst it
        // can leave is an entry a write failed to drop, and writes drop
        // their entries again when they end.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user's cart, if it is in memory.
    pub fn get(&self, user_id: &str) -> Option<Vec<CartItem>> {
        self.lock().carts.get(user_id).cloned()
    }

    /// How many lines the user's cart has and whether `product_id` is one,
    /// if the cart is in memory (without copying it).
    pub fn lines(&self, user_id: &str, product_id: &str) -> Option<(usize, bool)> {
        let inner = self.lock();
        let items = inner.carts.get(user_id)?;
        Some((
            items.len(),
            items.iter().any(|item| item.product_id == product_id),
        ))
    }

    /// Now, for a read about to go to the database.
    pub fn epoch(&self) -> Epoch {
        Epoch(self.lock().epoch)
    }

    /// Keeps `items`, read from the database since `read_at`, as the
    /// user's cart, unless a write started or ended since then.
    pub fn insert_if_unchanged(&self, user_id: &str, items: &[CartItem], read_at: Epoch) {
        let mut inner = self.lock();
        if inner.epoch != read_at.0 {
            return;
        }
        if inner.carts.len() >= self.capacity && !inner.carts.contains_key(user_id) {
            let evicted = inner.carts.keys().next().cloned();
            if let Some(evicted) = evicted {
                inner.carts.remove(&evicted);
            }
        }
        inner.carts.insert(user_id.to_owned(), items.to_vec());
    }

    /// Marks the carts of `user_ids` as being written until the guard is
    /// dropped.
    pub fn writing(&self, user_ids: &[&str]) -> Writing {
        let writing = Writing {
            cache: self.clone(),
            user_ids: user_ids.iter().map(|id| (*id).to_owned()).collect(),
        };
        writing.invalidate();
        writing
    }

    /// How many carts are in memory.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().carts.len()
    }
}

/// A write in progress to some carts; see [`CartCache::writing`].
pub struct Writing {
    cache: CartCache,
    user_ids: Vec<String>,
}

impl Writing {
    fn invalidate(&self) {
        let mut inner = self.cache.lock();
        inner.epoch += 1;
        for user_id in &self.user_ids {
            inner.carts.remove(user_id);
        }
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.invalidate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(product: &str, quantity: i32) -> CartItem {
        CartItem {
            product_id: product.to_owned(),
            quantity,
        }
    }

    #[test]
    fn a_read_is_kept_and_served_until_a_write_to_that_cart() {
        let cache = CartCache::new(10);
        assert_eq!(cache.get("u"), None);
        let read_at = cache.epoch();
        cache.insert_if_unchanged("u", &[line("A", 1)], read_at);
        cache.insert_if_unchanged("v", &[line("B", 2)], read_at);
        assert_eq!(cache.get("u"), Some(vec![line("A", 1)]));
        assert_eq!(cache.lines("u", "A"), Some((1, true)));
        assert_eq!(cache.lines("u", "B"), Some((1, false)));
        assert_eq!(cache.lines("w", "A"), None);

        let writing = cache.writing(&["u"]);
        assert_eq!(cache.get("u"), None, "gone as the write starts");
        assert_eq!(cache.get("v"), Some(vec![line("B", 2)]), "others stay");
        drop(writing);
        assert_eq!(cache.get("u"), None);
    }

    #[test]
    fn a_read_that_overlapped_a_write_is_not_kept() {
        let cache = CartCache::new(10);
        // Read starts, a write starts and ends, the read's (old) result
        // arrives: not kept.
        let read_at = cache.epoch();
        drop(cache.writing(&["u"]));
        cache.insert_if_unchanged("u", &[line("A", 1)], read_at);
        assert_eq!(cache.get("u"), None);

        // A write in progress, a read from before it ends: not kept either.
        let writing = cache.writing(&["u"]);
        let read_at = cache.epoch();
        drop(writing);
        cache.insert_if_unchanged("u", &[line("A", 1)], read_at);
        assert_eq!(cache.get("u"), None);

        // A read after the write: kept.
        let read_at = cache.epoch();
        cache.insert_if_unchanged("u", &[line("A", 2)], read_at);
        assert_eq!(cache.get("u"), Some(vec![line("A", 2)]));
    }

    #[test]
    fn it_holds_at_most_its_capacity() {
        let cache = CartCache::new(3);
        for user in ["a", "b", "c", "d", "e"] {
            let read_at = cache.epoch();
            cache.insert_if_unchanged(user, &[], read_at);
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get("e").is_some(), "the newest is kept");
        // Replacing a cart already there evicts nothing.
        let read_at = cache.epoch();
        cache.insert_if_unchanged("e", &[line("A", 1)], read_at);
        assert_eq!(cache.len(), 3);
    }
}
