//! Carts kept in memory in front of the database, so that reading a cart
//! (which every page of the shop does, for its header) is not a round trip
//! to the database's thread.
//!
//! The database stays the truth; the cache only saves reads, and is right
//! only while this module is the database's one writer (one replica: see
//! `StartContext::replicas`). It is kept right by these rules:
//!
//! - a write invalidates the user's entry when it starts and again when it
//!   ends, however it ends (a [`Writing`] guard; a write cancelled midway
//!   may or may not have reached the database, so the entry must go);
//! - every write start and end moves an epoch on, and a read that missed
//!   puts what it read in the cache only if no write started or ended
//!   while it read (else what it read may already be old);
//! - a write that failed or was dropped may still land after it ended (on
//!   PostgreSQL, a statement the server goes on with after the connection
//!   was lost, or one waiting on a lock when its future was dropped): the
//!   carts it wrote are not cached for [`IN_DOUBT`] after it, so a read
//!   made before it lands is not kept;
//! - an entry is served for at most [`MAX_AGE`] after it was read: what the
//!   rules above cannot see (a write by the handler of a module instance
//!   that crashed, which had a cache of its own; a `DELETE` run by hand)
//!   is seen within that;
//! - at most `capacity` carts are kept; a new one past that pushes out an
//!   arbitrary other (the cache saves reads, it does not need to be fair).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::api::CartItem;

/// How long an entry is served after it was read from the database.
pub const MAX_AGE: Duration = Duration::from_secs(5);

/// How long the carts of a write that failed or was dropped are not
/// cached after it ended: longer than such a write can go on in the
/// database (a SQLite write waits at most its 5 s busy timeout; a
/// PostgreSQL statement, as long as the lock it waits for is held, which
/// the cart's own transactions hold for a few statements).
pub const IN_DOUBT: Duration = Duration::from_secs(60);

/// The carts in memory. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct CartCache {
    inner: Arc<Mutex<Inner>>,
    capacity: usize,
}

struct Inner {
    /// Each cart, with when it was read.
    carts: HashMap<String, (Vec<CartItem>, Instant)>,
    /// Carts not to be cached until then (see [`IN_DOUBT`]).
    in_doubt: HashMap<String, Instant>,
    /// Moves on at every write's start and end.
    epoch: u64,
}

impl Inner {
    /// The user's cart, if it is in memory and young enough at `now`.
    fn fresh(&mut self, user_id: &str, now: Instant) -> Option<&Vec<CartItem>> {
        let expired = match self.carts.get(user_id) {
            None => return None,
            Some((_, read)) => now.saturating_duration_since(*read) >= MAX_AGE,
        };
        if expired {
            self.carts.remove(user_id);
            return None;
        }
        self.carts.get(user_id).map(|(items, _)| items)
    }
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
                in_doubt: HashMap::new(),
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
        self.get_at(user_id, Instant::now())
    }

    fn get_at(&self, user_id: &str, now: Instant) -> Option<Vec<CartItem>> {
        self.lock().fresh(user_id, now).cloned()
    }

    /// How many lines the user's cart has and whether `product_id` is one,
    /// if the cart is in memory (without copying it).
    pub fn lines(&self, user_id: &str, product_id: &str) -> Option<(usize, bool)> {
        let mut inner = self.lock();
        let items = inner.fresh(user_id, Instant::now())?;
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
        self.insert_at(user_id, items, read_at, Instant::now());
    }

    fn insert_at(&self, user_id: &str, items: &[CartItem], read_at: Epoch, now: Instant) {
        let mut inner = self.lock();
        if inner.epoch != read_at.0 {
            return;
        }
        if let Some(&until) = inner.in_doubt.get(user_id) {
            if now < until {
                return;
            }
            inner.in_doubt.remove(user_id);
        }
        if inner.carts.len() >= self.capacity && !inner.carts.contains_key(user_id) {
            let evicted = inner.carts.keys().next().cloned();
            if let Some(evicted) = evicted {
                inner.carts.remove(&evicted);
            }
        }
        inner
            .carts
            .insert(user_id.to_owned(), (items.to_vec(), now));
    }

    /// Marks the carts of `user_ids` as being written until the guard is
    /// dropped.
    pub fn writing(&self, user_ids: &[&str]) -> Writing {
        let writing = Writing {
            cache: self.clone(),
            user_ids: user_ids.iter().map(|id| (*id).to_owned()).collect(),
            landed: false,
        };
        let mut inner = self.lock();
        inner.epoch += 1;
        for user_id in user_ids {
            inner.carts.remove(*user_id);
        }
        drop(inner);
        writing
    }

    /// How many carts are in memory.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().carts.len()
    }
}

/// A write in progress to some carts; see [`CartCache::writing`]. Dropped
/// without [`landed`](Writing::landed), its carts are in doubt.
pub struct Writing {
    cache: CartCache,
    user_ids: Vec<String>,
    landed: bool,
}

impl Writing {
    /// Says the write is done, and in the database.
    pub fn landed(mut self) {
        self.landed = true;
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut inner = self.cache.lock();
        inner.epoch += 1;
        for user_id in &self.user_ids {
            inner.carts.remove(user_id);
        }
        if !self.landed {
            let now = Instant::now();
            // Expired doubts go with a new one, so the map does not grow
            // with every failed write ever made.
            inner.in_doubt.retain(|_, until| *until > now);
            for user_id in &self.user_ids {
                inner.in_doubt.insert(user_id.clone(), now + IN_DOUBT);
            }
        }
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
        cache.writing(&["u"]).landed();
        cache.insert_if_unchanged("u", &[line("A", 1)], read_at);
        assert_eq!(cache.get("u"), None);

        // A write in progress, a read from before it ends: not kept either.
        let writing = cache.writing(&["u"]);
        let read_at = cache.epoch();
        writing.landed();
        cache.insert_if_unchanged("u", &[line("A", 1)], read_at);
        assert_eq!(cache.get("u"), None);

        // A read after the write: kept.
        let read_at = cache.epoch();
        cache.insert_if_unchanged("u", &[line("A", 2)], read_at);
        assert_eq!(cache.get("u"), Some(vec![line("A", 2)]));
    }

    /// A write that failed or was dropped may land later: its carts are
    /// not cached for a while, so a read from before it lands is not
    /// kept; one that landed leaves nothing in doubt.
    #[test]
    fn a_write_that_did_not_say_it_landed_keeps_its_carts_out_for_a_while() {
        let cache = CartCache::new(10);
        drop(cache.writing(&["u", "v"]));
        let after = Instant::now();
        for user in ["u", "v"] {
            cache.insert_at(user, &[line("A", 1)], cache.epoch(), after);
            assert_eq!(cache.get_at(user, after), None, "{user}");
        }
        let later = after + IN_DOUBT + Duration::from_secs(1);
        cache.insert_at("u", &[line("A", 1)], cache.epoch(), later);
        assert_eq!(cache.get_at("u", later), Some(vec![line("A", 1)]));

        cache.writing(&["w"]).landed();
        let now = Instant::now();
        cache.insert_at("w", &[line("B", 1)], cache.epoch(), now);
        assert_eq!(cache.get_at("w", now), Some(vec![line("B", 1)]));
    }

    /// What no write here saw (a crashed instance's, one made by hand)
    /// shows within [`MAX_AGE`].
    #[test]
    fn an_entry_is_served_for_at_most_its_max_age() {
        let cache = CartCache::new(10);
        let read = Instant::now();
        cache.insert_at("u", &[line("A", 1)], cache.epoch(), read);
        let just_before = read + MAX_AGE - Duration::from_millis(1);
        assert_eq!(cache.get_at("u", just_before), Some(vec![line("A", 1)]));
        assert_eq!(cache.get_at("u", read + MAX_AGE), None);
        assert_eq!(cache.len(), 0, "an old entry is dropped when found old");
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
