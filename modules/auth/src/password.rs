//! Password hashing with Argon2id, on tokio's blocking pool, a few at a
//! time: each hash takes its memory (19 MiB by default) and a core for
//! tens of milliseconds, so a flood of sign-ins waits for room (until its
//! call's deadline, then is refused as busy) instead of piling up hashes.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use runtime::Deadline;
use runtime::deadline::WithDeadline;
use tokio::sync::Semaphore;

use crate::api::AuthError;

/// The most hashes run at once: one per core, at most this many.
const MAX_AT_ONCE: usize = 8;

/// Hashes and checks passwords with one set of Argon2id parameters.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A hash of a password nobody has: checking against it when the email
    /// is unknown makes that as slow as a wrong password.
    decoy: String,
    /// One permit per hash that may run now.
    slots: Arc<Semaphore>,
}

/// The most memory one hash may take: 1 GiB (50 times OWASP's 19 MiB),
/// and [`MAX_AT_ONCE`] hashes may run together. Argon2 itself allows 4 TiB,
/// which the node would try to allocate at start, for its decoy hash.
pub const MAX_MEMORY_KIB: u32 = 1 << 20;
/// The most passes over that memory: each pass is a hash's time again.
/// Argon2 allows four billion, which would hang the node's start.
pub const MAX_ITERATIONS: u32 = 64;
/// The most lanes (the hash runs them on one thread here, so more lanes
/// buy no speed).
pub const MAX_PARALLELISM: u32 = 64;

/// The argon2 parameters, or why they are none.
fn params(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Params, String> {
    for (name, value, max) in [
        ("argon2_memory_kib", memory_kib, MAX_MEMORY_KIB),
        ("argon2_iterations", iterations, MAX_ITERATIONS),
        ("argon2_parallelism", parallelism, MAX_PARALLELISM),
    ] {
        if value > max {
            return Err(format!(
                "{name} = {value} is more than {max}, the most this shop allows \
                 (each sign-in would take that much memory or time)"
            ));
        }
    }
    Params::new(memory_kib, iterations, parallelism, None)
        .map_err(|e| format!("argon2 parameters: {e}"))
}

/// Checks argon2 parameters (the module's `check`), without hashing.
pub fn check_params(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<(), String> {
    params(memory_kib, iterations, parallelism).map(drop)
}

impl Passwords {
    /// With these parameters (memory in KiB, passes, lanes).
    pub async fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
    ) -> Result<Passwords, String> {
        let params = params(memory_kib, iterations, parallelism)?;
        let at_once = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(MAX_AT_ONCE);
        let mut passwords = Passwords {
            params,
            decoy: String::new(),
            slots: Arc::new(Semaphore::new(at_once)),
        };
        let decoy_password = format!("{:x}", rand::random::<u128>());
        passwords.decoy = passwords
            .hash(
                decoy_password,
                Deadline::after(std::time::Duration::from_secs(60)),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(passwords)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string of `password` with a fresh salt; [`AuthError::Busy`]
    /// if there is no room for it before `deadline`.
    pub async fn hash(&self, password: String, deadline: Deadline) -> Result<String, AuthError> {
        let argon2 = self.argon2();
        self.blocking(deadline, move || {
            let salt =
                SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
            argon2
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// True if `password` matches `hash`; with no hash (unknown user), checks
    /// against the decoy and returns false, taking the same time.
    /// [`AuthError::Busy`] if there is no room for it before `deadline`.
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
        deadline: Deadline,
    ) -> Result<bool, AuthError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.clone());
        let argon2 = self.argon2();
        let matches = self
            .blocking(deadline, move || {
                let parsed = PasswordHash::new(&hash)
                    .map_err(|e| format!("a stored password hash is damaged: {e}"))?;
                Ok(argon2.verify_password(password.as_bytes(), &parsed).is_ok())
            })
            .await?;
        Ok(known && matches)
    }

    /// True if `hash` was made with this set's parameters. One made before
    /// they changed (verified with its own, as argon2 does) is hashed
    /// anew at the user's next sign-in: until then that user's sign-ins
    /// cost the old parameters', not the decoy's (which an unknown email's
    /// do), so timing tells them apart.
    pub fn is_current(&self, hash: &str) -> bool {
        PasswordHash::new(hash)
            .ok()
            .filter(|parsed| parsed.algorithm == argon2::ARGON2ID_IDENT)
            .and_then(|parsed| Params::try_from(&parsed).ok())
            .is_some_and(|params| {
                (params.m_cost(), params.t_cost(), params.p_cost())
                    == (
                        self.params.m_cost(),
                        self.params.t_cost(),
                        self.params.p_cost(),
                    )
            })
    }

    /// Runs `work` on the blocking pool once a slot is free (until
    /// `deadline`: then [`AuthError::Busy`], and `work` never runs).
    async fn blocking<T: Send + 'static>(
        &self,
        deadline: Deadline,
        work: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, AuthError> {
        let slot = match WithDeadline::new(Arc::clone(&self.slots).acquire_owned(), deadline).await
        {
            Ok(Ok(slot)) => slot,
            Ok(Err(closed)) => return Err(AuthError::Storage(closed.to_string())),
            Err(_) => return Err(AuthError::Busy),
        };
        let result = tokio::task::spawn_blocking(work).await;
        drop(slot);
        match result {
            Ok(result) => result.map_err(AuthError::Storage),
            Err(e) => Err(AuthError::Storage(format!("password hashing failed: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn a_password_waits_for_a_free_slot_until_its_deadline_then_is_refused_as_busy() {
        // Cheap parameters: the point is the slots, not the hash.
        let passwords = Passwords::new(64, 1, 1).await.unwrap();
        let slots = passwords.slots.available_permits();
        assert!((1..=MAX_AT_ONCE).contains(&slots), "{slots}");
        let taken = Arc::clone(&passwords.slots)
            .acquire_many_owned(u32::try_from(slots).unwrap())
            .await
            .unwrap();

        let started = Instant::now();
        let refused = passwords
            .hash(
                "a password".into(),
                Deadline::after(Duration::from_millis(50)),
            )
            .await;
        assert_eq!(refused, Err(AuthError::Busy));
        assert!(started.elapsed() >= Duration::from_millis(40));

        drop(taken);
        let hash = passwords
            .hash(
                "a password".into(),
                Deadline::after(Duration::from_secs(10)),
            )
            .await
            .unwrap();
        let deadline = Deadline::after(Duration::from_secs(10));
        assert!(
            passwords
                .verify("a password".into(), Some(hash), deadline)
                .await
                .unwrap()
        );
    }

    #[test]
    fn parameters_past_the_shops_bounds_are_refused_and_named() {
        // Argon2 takes each of these; the node would take 4 TiB at start,
        // or hash for hours.
        for (memory, iterations, lanes, named) in [
            (u32::MAX, 2, 1, "argon2_memory_kib = 4294967295"),
            (19_456, u32::MAX, 1, "argon2_iterations = 4294967295"),
            (19_456, 2, 65, "argon2_parallelism = 65"),
        ] {
            let error = check_params(memory, iterations, lanes).unwrap_err();
            assert!(error.starts_with(named), "{error}");
        }
        check_params(MAX_MEMORY_KIB, MAX_ITERATIONS, MAX_PARALLELISM).unwrap();
        // Below argon2's own floor, argon2 says why.
        let error = check_params(1, 2, 1).unwrap_err();
        assert!(error.starts_with("argon2 parameters"), "{error}");
    }
}
