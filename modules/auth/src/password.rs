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

/// The argon2 parameters, or why they are none.
fn params(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Params, String> {
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
}
