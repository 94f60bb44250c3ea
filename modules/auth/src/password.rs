//! Password hashing with Argon2id, on tokio's blocking pool.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::api::AuthError;

/// Hashes and checks passwords with one set of Argon2id parameters.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A hash of a password nobody has: checking against it when the email
    /// is unknown makes that as slow as a wrong password.
    decoy: String,
}

impl Passwords {
    /// With these parameters (memory in KiB, passes, lanes).
    pub async fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
    ) -> Result<Passwords, String> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| format!("argon2 parameters: {e}"))?;
        let mut passwords = Passwords {
            params,
            decoy: String::new(),
        };
        let decoy_password = format!("{:x}", rand::random::<u128>());
        passwords.decoy = passwords
            .hash(decoy_password)
            .await
            .map_err(|e| e.to_string())?;
        Ok(passwords)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string of `password` with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        let argon2 = self.argon2();
        blocking(move || {
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
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, AuthError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.clone());
        let argon2 = self.argon2();
        let matches = blocking(move || {
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| format!("a stored password hash is damaged: {e}"))?;
            Ok(argon2.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await?;
        Ok(known && matches)
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, AuthError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(AuthError::Storage),
        Err(e) => Err(AuthError::Storage(format!("password hashing failed: {e}"))),
    }
}
