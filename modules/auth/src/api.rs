//! The auth service's API.

use serde::{Deserialize, Serialize};

/// A user of the shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Their id (a UUID).
    pub id: String,
    /// Their email address, lowercased.
    pub email: String,
    /// The name they gave.
    pub name: String,
    /// When they signed up, in milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// Creates a user and signs them in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    /// Their email address.
    pub email: String,
    /// Their password: 8 to 128 characters.
    pub password: String,
    /// Their name (may be empty).
    #[serde(default)]
    pub name: String,
}

/// Signs a user in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// Their email address.
    pub email: String,
    /// Their password.
    pub password: String,
}

macro_rules! redacted_debug {
    ($type:ident, $($field:ident),*) => {
        impl std::fmt::Debug for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($type))
                    $(.field(stringify!($field), &self.$field))*
                    .field("password", &"…")
                    .finish()
            }
        }
    };
}
redacted_debug!(SignUp, email, name);
redacted_debug!(SignIn, email);

/// A signed-in session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session token: give it back to be recognized. Shown once.
    pub token: String,
    /// Who.
    pub user: User,
    /// When it stops working, in milliseconds since the Unix epoch.
    pub expires_at: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token", &"…")
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Ends a session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOut {
    /// The session's token.
    pub token: String,
}

/// Asks who a session belongs to.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authenticate {
    /// The session's token.
    pub token: String,
}

impl std::fmt::Debug for SignOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignOut { token: … }")
    }
}

impl std::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticate { token: … }")
    }
}

/// Why a user was not signed up or in, or a session not recognized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AuthError {
    /// Not an email address.
    #[error("'{0}' is not an email address")]
    InvalidEmail(String),
    /// The password is too short.
    #[error("the password must be at least {min} characters")]
    PasswordTooShort {
        /// The minimum.
        min: usize,
    },
    /// The password is too long.
    #[error("the password must be at most {max} characters")]
    PasswordTooLong {
        /// The maximum.
        max: usize,
    },
    /// The name is too long.
    #[error("the name must be at most {max} characters")]
    NameTooLong {
        /// The maximum.
        max: usize,
    },
    /// The name holds a control character (a NUL, a line break...).
    #[error("the name must not contain control characters")]
    NameHasControls,
    /// Someone signed up with this email already.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// The email or the password is wrong (which one is not said).
    #[error("the email or the password is wrong")]
    WrongCredentials,
    /// The session is unknown, signed out or expired.
    #[error("the session is not valid (signed out or expired); sign in again")]
    InvalidSession,
    /// The users or sessions could not be read or written.
    #[error("the account store is unavailable: {0}")]
    Storage(String),
    /// More passwords are being checked than this node takes at once, and
    /// no room came before the call's deadline; nothing was checked.
    #[error("too many sign-ins at once; try again in a moment")]
    Busy,
}

/// What is wrong with a sign-up's password and name, by the rules
/// [`SignUp`] applies (the password 8 to 128 characters; the name, trimmed,
/// at most 100, none a control character): every problem at once, so a
/// form can show them together. The auth module refuses the first.
pub fn sign_up_problems(password: &str, name: &str) -> Vec<AuthError> {
    let mut problems = Vec::new();
    let length = password.chars().count();
    if length < MIN_PASSWORD {
        problems.push(AuthError::PasswordTooShort { min: MIN_PASSWORD });
    }
    if length > MAX_PASSWORD {
        problems.push(AuthError::PasswordTooLong { max: MAX_PASSWORD });
    }
    let name = name.trim();
    // PostgreSQL stores no NUL in text: refused here, it would be a
    // storage failure (a 503) there.
    if name.chars().any(char::is_control) {
        problems.push(AuthError::NameHasControls);
    } else if name.chars().count() > MAX_NAME {
        problems.push(AuthError::NameTooLong { max: MAX_NAME });
    }
    problems
}

const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 128;
const MAX_NAME: usize = 100;

runtime::service! {
    /// Users and sessions: the `auth` module's service.
    pub Auth = "auth", error AuthError {
        SignUp -> Session,
        SignIn -> Session,
        SignOut -> runtime::Empty [idempotent],
        Authenticate -> User [idempotent],
    }
}
