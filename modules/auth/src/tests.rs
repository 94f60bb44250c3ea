//! Actor-message tests: the auth actor alone, on every storage backend.

use runtime::{Empty, ServiceRef, ServiceRegistry, start_alone};
use storage::testing::{TempDir, TestBackend, backends};

use crate::api::{Auth, AuthError, Authenticate, SignIn, SignOut, SignUp};
use crate::{AuthConfig, AuthModule};

/// Cheap Argon2 parameters: the tests check behaviour, not cost.
fn fast(database: Option<String>) -> AuthConfig {
    AuthConfig {
        database,
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        ..AuthConfig::default()
    }
}

async fn auth(backend: &TestBackend, dir: &TempDir) -> ServiceRef<Auth> {
    auth_at(backend.database_url().await, dir).await
}

/// The auth module on the database at `url` (`None`: SQLite in `dir`).
async fn auth_at(url: Option<String>, dir: &TempDir) -> ServiceRef<Auth> {
    start_alone::<AuthModule>(fast(url), ServiceRegistry::new(), dir.path())
        .await
        .unwrap()
}

fn sign_up(email: &str, password: &str) -> SignUp {
    SignUp {
        email: email.into(),
        password: password.into(),
        name: "Ada".into(),
    }
}

fn sign_in(email: &str, password: &str) -> SignIn {
    SignIn {
        email: email.into(),
        password: password.into(),
    }
}

#[actix_rt::test]
async fn sign_up_in_and_out() {
    for backend in backends() {
        let dir = TempDir::new("auth");
        let auth = auth(&backend, &dir).await;
        let session = auth
            .call(sign_up(" Ada@Example.com ", "correct horse"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session.user.email, "ada@example.com");
        assert_eq!(session.token.len(), 64);
        let who = auth
            .call(Authenticate {
                token: session.token.clone(),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(who, session.user, "{}", backend.name());

        let again = auth
            .call(sign_in("ADA@example.com", "correct horse"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.user, session.user);
        assert_ne!(again.token, session.token);

        assert_eq!(
            auth.call(SignOut {
                token: session.token.clone()
            })
            .await
            .unwrap(),
            Ok(Empty {})
        );
        assert_eq!(
            auth.call(Authenticate {
                token: session.token
            })
            .await
            .unwrap(),
            Err(AuthError::InvalidSession)
        );
        // The other session still works.
        assert!(
            auth.call(Authenticate { token: again.token })
                .await
                .unwrap()
                .is_ok()
        );
    }
}

#[actix_rt::test]
async fn wrong_passwords_and_unknown_emails_get_the_same_answer() {
    for backend in backends() {
        let dir = TempDir::new("auth");
        let auth = auth(&backend, &dir).await;
        auth.call(sign_up("ada@example.com", "correct horse"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            auth.call(sign_in("ada@example.com", "wrong horse"))
                .await
                .unwrap(),
            Err(AuthError::WrongCredentials)
        );
        assert_eq!(
            auth.call(sign_in("nobody@example.com", "correct horse"))
                .await
                .unwrap(),
            Err(AuthError::WrongCredentials)
        );
    }
}

#[actix_rt::test]
async fn sign_up_checks_its_input() {
    for backend in backends() {
        let dir = TempDir::new("auth");
        let auth = auth(&backend, &dir).await;
        auth.call(sign_up("ada@example.com", "correct horse"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            auth.call(sign_up("ada@example.com", "another one"))
                .await
                .unwrap(),
            Err(AuthError::EmailTaken)
        );
        assert!(matches!(
            auth.call(sign_up("not an email", "correct horse"))
                .await
                .unwrap(),
            Err(AuthError::InvalidEmail(_))
        ));
        // The email module's rule: no confirmation could go to these.
        for unsendable in ["x,y@example.com", "a@example..com", "<a@example.com"] {
            assert!(
                matches!(
                    auth.call(sign_up(unsendable, "correct horse"))
                        .await
                        .unwrap(),
                    Err(AuthError::InvalidEmail(_))
                ),
                "{unsendable}"
            );
        }
        assert_eq!(
            auth.call(sign_up("bob@example.com", "short"))
                .await
                .unwrap(),
            Err(AuthError::PasswordTooShort { min: 8 })
        );
        assert_eq!(
            auth.call(sign_up("bob@example.com", &"x".repeat(129)))
                .await
                .unwrap(),
            Err(AuthError::PasswordTooLong { max: 128 })
        );
        // A NUL is refused as bad input on both back ends; PostgreSQL
        // stores none in text, and failed the store with it (a 503).
        assert!(matches!(
            auth.call(sign_up("a\u{0}@example.com", "correct horse"))
                .await
                .unwrap(),
            Err(AuthError::InvalidEmail(_))
        ));
        let mut named = sign_up("carol@example.com", "correct horse");
        named.name = "Carol\u{0}".to_owned();
        assert_eq!(
            auth.call(named).await.unwrap(),
            Err(AuthError::NameHasControls)
        );
        assert_eq!(
            auth.call(sign_in("a\u{0}@example.com", "correct horse"))
                .await
                .unwrap(),
            Err(AuthError::WrongCredentials)
        );
    }
}

#[actix_rt::test]
async fn only_the_hash_of_a_token_is_stored_and_users_survive_a_restart() {
    for backend in backends() {
        let dir = TempDir::new("auth");
        let url = backend.database_url().await;
        let start =
            || start_alone::<AuthModule>(fast(url.clone()), ServiceRegistry::new(), dir.path());
        let first = start().await.unwrap();
        let session = first
            .call(sign_up("ada@example.com", "correct horse"))
            .await
            .unwrap()
            .unwrap();
        drop(first);
        if backend == TestBackend::Sqlite {
            let bytes = std::fs::read(dir.path().join("auth.db")).unwrap();
            let wal = std::fs::read(dir.path().join("auth.db-wal")).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes) + String::from_utf8_lossy(&wal);
            // What was read holds the user: the search below looks where
            // the data is.
            assert!(
                text.contains("ada@example.com"),
                "the user is not in the files read"
            );
            assert!(
                !text.contains(&session.token),
                "the token is stored in clear"
            );
            assert!(
                !text.contains("correct horse"),
                "the password is stored in clear"
            );
        }
        let second = start().await.unwrap();
        assert!(
            second
                .call(Authenticate {
                    token: session.token
                })
                .await
                .unwrap()
                .is_ok(),
            "{}",
            backend.name()
        );
        assert!(
            second
                .call(sign_in("ada@example.com", "correct horse"))
                .await
                .unwrap()
                .is_ok()
        );
    }
}

#[actix_rt::test]
async fn an_expired_session_is_refused_and_forgotten() {
    for backend in backends() {
        let dir = TempDir::new("auth");
        let store = crate::store::Store::open(backend.database_url().await.as_deref(), dir.path())
            .await
            .unwrap();
        let user = crate::api::User {
            id: "u1".into(),
            email: "ada@example.com".into(),
            name: String::new(),
            created_at: 0,
        };
        let now = storage::unix_ms();
        let session = |token, now, expires_at| crate::store::NewSession {
            token,
            now,
            expires_at,
        };
        store
            .create_user(&user, "hash", &session("first", now, now + 60_000))
            .await
            .unwrap();
        // A sign-up whose session cannot be stored (here: its token's hash
        // is taken) stores no user either, so it may be tried again; it
        // used to leave the user, and the retry was "email taken".
        let bob = crate::api::User {
            id: "u2".into(),
            email: "bob@example.com".into(),
            ..user.clone()
        };
        assert!(matches!(
            store
                .create_user(&bob, "hash", &session("first", now, now + 60_000))
                .await,
            Err(AuthError::Storage(_))
        ));
        store
            .create_user(&bob, "hash", &session("bob's", now, now + 60_000))
            .await
            .unwrap();
        store
            .create_session(&session("old", now - 10, now - 1), "u1")
            .await
            .unwrap();
        store
            .create_session(&session("new", now, now + 60_000), "u1")
            .await
            .unwrap();
        assert_eq!(
            store.session_user("old", now).await.unwrap(),
            None,
            "{}",
            backend.name()
        );
        assert_eq!(
            store.session_user("new", now).await.unwrap(),
            Some(user.clone())
        );
        // Expired, it is gone: even a clock turned back does not revive it.
        assert_eq!(store.session_user("old", now - 100).await.unwrap(), None);
    }
}

#[actix_rt::test]
async fn a_user_keeps_a_bounded_number_of_sessions_the_oldest_ending_first() {
    for backend in backends() {
        let dir = TempDir::new("auth");
        let auth = auth(&backend, &dir).await;
        let first = auth
            .call(sign_up("ada@example.com", "correct horse"))
            .await
            .unwrap()
            .unwrap();
        // The sessions after it are younger by the clock.
        let signed_up = storage::unix_ms();
        while storage::unix_ms() <= signed_up {
            tokio::task::yield_now().await;
        }
        let mut last = None;
        for _ in 0..crate::store::MAX_SESSIONS_PER_USER {
            last = Some(
                auth.call(sign_in("ada@example.com", "correct horse"))
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        let authenticate = |token: String| auth.call(Authenticate { token });
        assert_eq!(
            authenticate(first.token).await.unwrap(),
            Err(AuthError::InvalidSession),
            "{}",
            backend.name()
        );
        let last = last.unwrap();
        assert_eq!(
            authenticate(last.token).await.unwrap(),
            Ok(last.user),
            "{}",
            backend.name()
        );
    }
}

#[actix_rt::test]
async fn a_password_hashed_with_other_parameters_is_hashed_anew_at_sign_in() {
    for backend in backends() {
        let dir = TempDir::new("auth");
        let url = backend.database_url().await;
        let before =
            start_alone::<AuthModule>(fast(url.clone()), ServiceRegistry::new(), dir.path())
                .await
                .unwrap();
        before
            .call(sign_up("ada@example.com", "correct horse"))
            .await
            .unwrap()
            .unwrap();
        // The operator raises the cost: the next start has other parameters.
        let stronger = AuthConfig {
            argon2_memory_kib: 128,
            argon2_iterations: 2,
            ..fast(url.clone())
        };
        let after = start_alone::<AuthModule>(stronger, ServiceRegistry::new(), dir.path())
            .await
            .unwrap();
        after
            .call(sign_in("ada@example.com", "correct horse"))
            .await
            .unwrap()
            .unwrap();
        // Hashed anew, in the background, with the new parameters; the
        // password still opens the account.
        let store = crate::store::Store::open(url.as_deref(), dir.path())
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (_, hash) = store
                .user_by_email("ada@example.com")
                .await
                .unwrap()
                .unwrap();
            if hash.contains("m=128,t=2") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: still {hash}",
                backend.name()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        after
            .call(sign_in("ada@example.com", "correct horse"))
            .await
            .unwrap()
            .unwrap();
    }
}

#[actix_rt::test]
async fn sign_ins_at_once_keep_the_bound_on_sessions() {
    for backend in backends() {
        let dir = TempDir::new("auth");
        let url = backend.database_url().await;
        let auth = auth_at(url.clone(), &dir).await;
        let ada = auth
            .call(sign_up("ada@example.com", "correct horse"))
            .await
            .unwrap()
            .unwrap()
            .user;
        for _ in 1..crate::store::MAX_SESSIONS_PER_USER {
            auth.call(sign_in("ada@example.com", "correct horse"))
                .await
                .unwrap()
                .unwrap();
        }
        // Sixteen more at once: apart, each trimmed to one below the bound
        // and then added its own.
        let at_once = (0..16).map(|_| auth.call(sign_in("ada@example.com", "correct horse")));
        for signed_in in futures_util::future::join_all(at_once).await {
            signed_in.unwrap().unwrap();
        }
        let store = crate::store::Store::open(url.as_deref(), dir.path())
            .await
            .unwrap();
        let count = store.session_count(&ada.id).await;
        assert!(
            (1..=crate::store::MAX_SESSIONS_PER_USER).contains(&count),
            "{}: {count} sessions",
            backend.name()
        );
    }
}
