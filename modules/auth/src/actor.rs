//! The auth actor: checks input, hashes on the blocking pool, stores.

use actix::{Actor, Context, Handler, ResponseFuture};
use runtime::{Call, ConfigRefused, Empty, Module, StartContext, StartError, Storage};
use serde::Deserialize;
use tracing::Instrument;

use crate::api::{
    Auth, AuthError, Authenticate, Session, SignIn, SignOut, SignUp, User, sign_up_problems,
};
use crate::password::Passwords;
use crate::store::{NewSession, Store};

/// `[modules.auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The store's database: a `postgres://` URL, or a `sqlite:` path; by
    /// default `auth.db` in the data directory.
    pub database: Option<String>,
    /// How long a session lasts.
    pub session_ttl_hours: u64,
    /// Argon2id memory, in KiB (OWASP's minimum is 19456; at most 1 GiB,
    /// 1048576).
    pub argon2_memory_kib: u32,
    /// Argon2id passes (at most 64).
    pub argon2_iterations: u32,
    /// Argon2id lanes (at most 64).
    pub argon2_parallelism: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            database: None,
            session_ttl_hours: 24 * 7,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
        }
    }
}

/// The auth module.
pub struct AuthModule;

impl Module for AuthModule {
    type Service = Auth;
    type Config = AuthConfig;

    fn storage(config: &AuthConfig) -> Storage {
        Storage::database("auth", config.database.as_deref())
    }

    fn check(config: &AuthConfig) -> Result<(), ConfigRefused> {
        storage::check_url(config.database.as_deref()).map_err(|e| ConfigRefused(e.to_string()))?;
        if config.session_ttl_hours == 0 {
            return Err("session_ttl_hours must be at least 1".into());
        }
        crate::password::check_params(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
        )
        .map_err(ConfigRefused)
    }

    async fn start(config: AuthConfig, ctx: StartContext) -> Result<Auth, StartError> {
        let passwords = Passwords::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
        )
        .await
        .map_err(StartError::Config)?;
        let store = Store::open(config.database.as_deref(), ctx.data_dir())
            .await
            .map_err(|e| StartError::failed(e.to_string()))?;
        let ttl_ms =
            i64::try_from(config.session_ttl_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX);
        Ok(Auth::start(AuthActor {
            store,
            passwords,
            ttl_ms,
        }))
    }
}

#[derive(Clone)]
struct AuthActor {
    store: Store,
    passwords: Passwords,
    ttl_ms: i64,
}

impl Actor for AuthActor {
    type Context = Context<Self>;
}

fn normalize_email(email: &str) -> Result<String, AuthError> {
    let email = email.trim().to_lowercase();
    // The email module's rule: an account's address is where its orders'
    // confirmations go.
    if email::api::is_address(&email) {
        Ok(email)
    } else {
        Err(AuthError::InvalidEmail(email))
    }
}

impl AuthActor {
    /// Hashes `password` of `user_id` anew with the parameters configured
    /// now (see [`Passwords::is_current`]); a failure is logged, and tried
    /// again at the next sign-in.
    async fn rehash(self, user_id: String, password: String) {
        let deadline = runtime::Deadline::after(std::time::Duration::from_secs(60));
        let stored = match self.passwords.hash(password, deadline).await {
            Ok(hash) => self.store.set_password_hash(&user_id, &hash).await,
            Err(error) => Err(error),
        };
        match stored {
            Ok(()) => {
                tracing::info!(module = "auth", %user_id, "password hashed anew with the parameters configured now")
            }
            Err(error) => {
                tracing::warn!(module = "auth", %user_id, %error, "the password could not be hashed anew: tried again at the next sign-in")
            }
        }
    }

    async fn open_session(&self, user: User) -> Result<Session, AuthError> {
        let session = self.new_session();
        self.store
            .create_session(&session.as_new(), &user.id)
            .await?;
        Ok(session.of(user))
    }

    /// A fresh session token, made now, expiring after the configured
    /// lifetime.
    fn new_session(&self) -> Fresh {
        let token: String = rand::random::<[u8; 32]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let now = storage::unix_ms();
        Fresh {
            token,
            now,
            expires_at: now.saturating_add(self.ttl_ms),
        }
    }
}

/// A session made here, not yet stored.
struct Fresh {
    token: String,
    now: i64,
    expires_at: i64,
}

impl Fresh {
    fn as_new(&self) -> NewSession<'_> {
        NewSession {
            token: &self.token,
            now: self.now,
            expires_at: self.expires_at,
        }
    }

    fn of(self, user: User) -> Session {
        Session {
            token: self.token,
            user,
            expires_at: self.expires_at,
        }
    }
}

impl Handler<Call<SignUp>> for AuthActor {
    type Result = ResponseFuture<Result<Session, AuthError>>;

    fn handle(&mut self, call: Call<SignUp>, _: &mut Context<Self>) -> Self::Result {
        let this = self.clone();
        let span = call.span();
        let deadline = call.meta().deadline;
        let SignUp {
            email,
            password,
            name,
        } = call.into_message();
        Box::pin(
            async move {
                let email = normalize_email(&email)?;
                if let Some(problem) = sign_up_problems(&password, &name).into_iter().next() {
                    return Err(problem);
                }
                let name = name.trim().to_owned();
                let hash = this.passwords.hash(password, deadline).await?;
                let user = User {
                    id: uuid::Uuid::new_v4().to_string(),
                    email,
                    name,
                    created_at: storage::unix_ms(),
                };
                let session = this.new_session();
                this.store
                    .create_user(&user, &hash, &session.as_new())
                    .await?;
                tracing::info!(user_id = %user.id, "signed up");
                Ok(session.of(user))
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<SignIn>> for AuthActor {
    type Result = ResponseFuture<Result<Session, AuthError>>;

    fn handle(&mut self, call: Call<SignIn>, _: &mut Context<Self>) -> Self::Result {
        let this = self.clone();
        let span = call.span();
        let deadline = call.meta().deadline;
        let SignIn { email, password } = call.into_message();
        Box::pin(
            async move {
                let email = email.trim().to_lowercase();
                // No account has such an email (sign-up refuses it), and
                // PostgreSQL could not even look one up with a NUL in it.
                let found = if email.chars().any(char::is_control) {
                    None
                } else {
                    this.store.user_by_email(&email).await?
                };
                let (user, hash) = match found {
                    Some((user, hash)) => (Some(user), Some(hash)),
                    None => (None, None),
                };
                let outdated = hash
                    .as_deref()
                    .is_some_and(|hash| !this.passwords.is_current(hash));
                let matches = this
                    .passwords
                    .verify(password.clone(), hash, deadline)
                    .await?;
                match user {
                    Some(user) if matches => {
                        tracing::info!(user_id = %user.id, "signed in");
                        if outdated {
                            // In the background: the user does not wait for it.
                            actix::spawn(this.clone().rehash(user.id.clone(), password));
                        }
                        this.open_session(user).await
                    }
                    _ => {
                        tracing::info!("sign-in refused");
                        Err(AuthError::WrongCredentials)
                    }
                }
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<SignOut>> for AuthActor {
    type Result = ResponseFuture<Result<Empty, AuthError>>;

    fn handle(&mut self, call: Call<SignOut>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let SignOut { token } = call.into_message();
        Box::pin(
            async move {
                store.delete_session(&token).await?;
                Ok(Empty {})
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<Authenticate>> for AuthActor {
    type Result = ResponseFuture<Result<User, AuthError>>;

    fn handle(&mut self, call: Call<Authenticate>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let Authenticate { token } = call.into_message();
        Box::pin(
            async move {
                if token.is_empty() || token.len() > 128 {
                    return Err(AuthError::InvalidSession);
                }
                store
                    .session_user(&token, storage::unix_ms())
                    .await?
                    .ok_or(AuthError::InvalidSession)
            }
            .instrument(span),
        )
    }
}
