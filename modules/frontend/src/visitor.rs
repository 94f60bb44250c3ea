//! Who is asking: a visitor's session, and the user they signed in as.
//!
//! Four cookies (and `shop_adopt`: see `adoption`), all `HttpOnly; SameSite=Lax; Path=/` (the original set
//! none of these attributes, and its missing `Path` split one visitor into
//! two sessions: spec section 3, bug 9):
//!
//! | cookie | holds | lifetime |
//! |---|---|---|
//! | `shop_session-id` | a random id: the visitor's cart, before sign-in | 48 h |
//! | `shop_currency` | the chosen currency (checked against the allow-list on every read) | 48 h |
//! | `shop_auth` | the auth module's session token, after sign-in | the session's |
//! | `shop_checkout` | the key of a checkout that may be unfinished (see `pages::checkout`) | 48 h |
//!
//! Behind HTTPS (`secure_cookies`), the browser holds them as
//! `__Host-shop_session-id` and so on; `https_cookies` renames them on
//! the way in and out, so this file never sees the prefix.
//!
//! A program may send `Authorization: Bearer TOKEN` instead of
//! `shop_auth`. A signed-in user's cart and orders are kept under their
//! user id, so they follow the user to any browser.

use actix_web::body::MessageBody;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, web};
use auth::api::{AuthError, Authenticate, User};
use futures_util::future::LocalBoxFuture;

use crate::error::{CallOutcome, ShopError};
use crate::shop::Shop;

/// The session cookie's name (the original's).
pub const SESSION_COOKIE: &str = "shop_session-id";
/// The currency cookie's name (the original's).
pub const CURRENCY_COOKIE: &str = "shop_currency";
/// The sign-in cookie's name.
pub const AUTH_COOKIE: &str = "shop_auth";
/// How long the session and currency cookies last: 48 hours.
const COOKIE_LIFETIME: CookieDuration = CookieDuration::hours(48);

/// The currencies a visitor may choose, in the currency service's order.
pub const CURRENCIES: [&str; 6] = ["EUR", "USD", "JPY", "GBP", "TRY", "CAD"];
/// [`CURRENCIES`], as the list of currencies offered before the currency
/// service has said which it supports.
pub fn allow_list() -> std::sync::Arc<[String]> {
    static ALLOWED: std::sync::OnceLock<std::sync::Arc<[String]>> = std::sync::OnceLock::new();
    std::sync::Arc::clone(
        ALLOWED.get_or_init(|| CURRENCIES.iter().map(|code| (*code).to_owned()).collect()),
    )
}

/// The currency of a visitor who chose none.
pub const DEFAULT_CURRENCY: &str = "USD";

/// The session id of the request, put there by [`sessions`].
#[derive(Clone)]
pub(crate) struct SessionId(pub(crate) String);

/// A session id a client may present: 1 to 64 letters, digits, `-` or `_`
/// (generated ids are UUIDs; the original's probes send
/// `x-liveness-probe`).
fn is_session_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A cookie the shop sets: HttpOnly, SameSite=Lax, Path=/.
pub fn cookie(
    name: impl Into<std::borrow::Cow<'static, str>>,
    value: String,
    max_age: CookieDuration,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(max_age)
        .finish()
}

/// The cookie named `name`, removed: set empty, expired, with the
/// attributes the shop sets cookies with.
pub fn removed_cookie(name: impl Into<std::borrow::Cow<'static, str>>) -> Cookie<'static> {
    let mut removed = cookie(name, String::new(), CookieDuration::ZERO);
    removed.make_removal();
    removed
}

/// The cookie that says the guest's cart and orders are still to be moved
/// to the account signed in (see `adoption`).
pub const ADOPT_COOKIE: &str = "shop_adopt";

/// [`ADOPT_COOKIE`], lasting as long as `session`.
pub fn adopt_cookie(session: &auth::api::Session) -> Cookie<'static> {
    let mut cookie = auth_cookie(session);
    cookie.set_name(ADOPT_COOKIE);
    cookie.set_value("pending");
    cookie
}

/// The sign-in cookie for `session`, lasting as long as the session.
pub fn auth_cookie(session: &auth::api::Session) -> Cookie<'static> {
    let lifetime_ms = session
        .expires_at
        .saturating_sub(runtime::wall_clock::unix_ms())
        .max(0);
    cookie(
        AUTH_COOKIE,
        session.token.clone(),
        CookieDuration::milliseconds(lifetime_ms),
    )
}

/// The cookie that holds the idempotency key of a checkout that may be
/// unfinished, so that the cart page's form submits that checkout again
/// rather than a new one. Its value is the key, a dot, and a tag of the
/// customer it belongs to, so that it is not taken for another
/// customer's (the same browser signed in or out since: checkouts are
/// per customer).
pub const CHECKOUT_COOKIE: &str = "shop_checkout";

/// [`CHECKOUT_COOKIE`] for `customer_id`'s checkout `key`.
pub fn checkout_cookie(key: &str, customer_id: &str) -> Cookie<'static> {
    let value = format!("{key}.{}", customer_tag(customer_id));
    cookie(CHECKOUT_COOKIE, value, COOKIE_LIFETIME)
}

/// The checkout key a [`CHECKOUT_COOKIE`] value holds, if it is
/// `customer_id`'s and well formed.
pub fn unfinished_checkout(value: &str, customer_id: &str) -> Option<String> {
    let (key, tag) = value.rsplit_once('.')?;
    (!key.is_empty() && crate::forms::is_checkout_key(key) && tag == customer_tag(customer_id))
        .then(|| key.to_owned())
}

/// A short tag of a customer id (not the id itself, which is a session
/// id or a user id).
fn customer_tag(customer_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("shop_checkout:{customer_id}").as_bytes());
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The currency cookie for `code`.
pub fn currency_cookie(code: &str) -> Cookie<'static> {
    cookie(CURRENCY_COOKIE, code.to_owned(), COOKIE_LIFETIME)
}

/// True for a request for the shop's static files, by the path the router
/// matches (percent-escapes decoded): the raw path let `/%73tatic/...`
/// through to the files, publicly cacheable, with a fresh session cookie
/// on them, which a shared cache could hand to the next visitor, who would
/// then shop in a session the first one knows.
pub fn is_static(request: &ServiceRequest) -> bool {
    request.match_info().as_str().starts_with("/static/")
}

/// True for the answers that are nobody's: the static files, `/robots.txt`
/// and `/_healthz`. They get no session cookie: a health probe made a
/// session every few seconds, and a crawler one per visit.
pub fn is_sessionless(request: &ServiceRequest) -> bool {
    is_static(request) || matches!(request.match_info().as_str(), "/robots.txt" | "/_healthz")
}

/// The middleware: gives a request without a valid session cookie a new
/// session id, and sets the cookie on the response; removes a sign-in
/// cookie that is stale ([`StaleAuthCookie`]).
pub async fn sessions(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if is_sessionless(&request) {
        return next.call(request).await;
    }
    let presented = request
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|id| is_session_id(id));
    let (id, fresh) = match presented {
        Some(id) => (id, false),
        None => (uuid::Uuid::new_v4().to_string(), true),
    };
    request.extensions_mut().insert(SessionId(id.clone()));
    let mut response = next.call(request).await?;
    let sets = |response: &ServiceResponse<_>, name: &str| {
        response.response().cookies().any(|c| c.name() == name)
    };
    if fresh && !sets(&response, SESSION_COOKIE) {
        response
            .response_mut()
            .add_cookie(&cookie(SESSION_COOKIE, id, COOKIE_LIFETIME))
            .map_err(actix_web::error::ErrorInternalServerError)?;
    }
    let stale = response
        .request()
        .extensions()
        .contains::<StaleAuthCookie>();
    if stale && !sets(&response, AUTH_COOKIE) {
        response
            .response_mut()
            .add_cookie(&removed_cookie(AUTH_COOKIE))
            .map_err(actix_web::error::ErrorInternalServerError)?;
    }
    Ok(response)
}

/// Put on a request by [`Visitor`]'s extractor when its `shop_auth`
/// cookie names a session that has ended (signed out elsewhere, or
/// expired): [`sessions`] removes the cookie, so the browser stops
/// sending it, and later requests do not ask auth about it again (nor
/// fail while auth is down, for a visitor who is a guest by now).
struct StaleAuthCookie;

/// Who is asking. Extract it in a handler; it calls the auth module when
/// the request carries a sign-in token.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The customer id of the browser session ([`guest_id`]).
    pub guest_id: String,
    /// The signed-in user, if any.
    pub user: Option<User>,
    /// The token the user is signed in with.
    pub token: Option<String>,
    /// True if that token came in the `shop_auth` cookie (a browser's
    /// sign-in), not in an `Authorization` header (a program's).
    pub token_from_cookie: bool,
    /// The visitor's currency (always one of `offered`, if any is).
    pub currency: String,
    /// The currencies the shop offers ([`Shop::currencies`]).
    pub offered: std::sync::Arc<[String]>,
}

/// The customer id of the visitor whose browser session is `session_id`
/// (before they sign in): `guest:` and the session id. The prefix keeps
/// guests and users apart: the session id is the browser's to send, and a
/// session cookie that carried a user's id must not open that user's cart
/// and orders (user ids have no prefix).
pub fn guest_id(session_id: &str) -> String {
    format!("{GUEST_PREFIX}{session_id}")
}

/// See [`guest_id`].
const GUEST_PREFIX: &str = "guest:";

impl Visitor {
    /// Whose cart and orders this request sees: the user's, or the
    /// session's ([`guest_id`]).
    pub fn customer_id(&self) -> &str {
        match &self.user {
            Some(user) => &user.id,
            None => &self.guest_id,
        }
    }

    /// The visitor's currency, or `code` if it is allowed (the JSON API's
    /// `?currency=`); an unknown code is a 422.
    pub fn currency_or(&self, code: Option<&str>) -> Result<String, ShopError> {
        match code {
            None => Ok(self.currency.clone()),
            Some(code) if self.offered.iter().any(|offered| offered == code) => Ok(code.to_owned()),
            Some(_) => Err(ShopError::field(
                "currency",
                format!("must be one of {}", self.offered.join(", ")),
            )),
        }
    }
}

/// The token of an `Authorization: Bearer` header, as sent (the scheme's
/// name in any case, as HTTP has it); `None` without one.
fn bearer(request: &HttpRequest) -> Option<String> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// What a session token looks like from outside: 1 to 256 characters.
fn could_be_token(token: &str) -> bool {
    !token.is_empty() && token.len() <= 256
}

/// The token a request signs in with: `Authorization: Bearer`, else the
/// `shop_auth` cookie.
pub(crate) fn token(request: &HttpRequest) -> Option<String> {
    bearer(request)
        .or_else(|| request.cookie(AUTH_COOKIE).map(|c| c.value().to_owned()))
        .filter(|t| could_be_token(t))
}

/// What a JSON API request's `Authorization` header is wrong about, if it
/// is there and not `Bearer <token>`: a program that meant to act as its
/// user would be taken for a guest, and fill or read a cart that is not
/// its user's (the order it then placed was found by nobody). The schemes
/// a browser sends for a proxy or server in front of the shop (`Basic`,
/// `Digest`, `Negotiate`, `NTLM`) are let through, as no token of ours.
/// Pages are not asked.
fn unusable_authorization(request: &HttpRequest) -> Option<&'static str> {
    // The routed path, decoded: `/%61pi/v1/cart` is the API too.
    if !request.match_info().as_str().starts_with("/api/") {
        return None;
    }
    let value = request.headers().get(AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        return Some("the Authorization header is not text");
    };
    let scheme = value.trim().split(' ').next().unwrap_or_default();
    let known = ["bearer", "basic", "digest", "negotiate", "ntlm"];
    (!known.iter().any(|known| scheme.eq_ignore_ascii_case(known))).then_some(
        "the Authorization header must be `Bearer TOKEN`, with the token POST \
         /api/v1/sessions gave",
    )
}

/// Whether a request's Bearer token is looked at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BearerToken {
    /// Yes: one that has ended, or is malformed, is a 401 (the program
    /// meant to act as its user).
    Used,
    /// No: the program is signing in (or up) to get a new one, maybe with
    /// the old one still among its default headers; the one it has is
    /// its own to keep or drop. The browser's cookie is looked at.
    Unused,
}

impl FromRequest for Visitor {
    type Error = ShopError;
    type Future = LocalBoxFuture<'static, Result<Visitor, ShopError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(request, BearerToken::Used)
    }
}

/// The visitor of a sign-in or a sign-up: as [`Visitor`], except that a
/// Bearer token is not looked at (its program is getting a new one): one
/// that had ended was a 401, which told it to sign in with the very call
/// it was making. The sign-in cookie is, so that the session a browser's
/// new sign-in replaces is ended.
pub struct SigningIn(pub Visitor);

impl FromRequest for SigningIn {
    type Error = ShopError;
    type Future = LocalBoxFuture<'static, Result<SigningIn, ShopError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let visitor = extract(request, BearerToken::Unused);
        Box::pin(async move { visitor.await.map(SigningIn) })
    }
}

/// [`Visitor`]'s extraction; `bearer_token` says whether a Bearer token
/// is looked at.
fn extract(
    request: &HttpRequest,
    bearer_token: BearerToken,
) -> LocalBoxFuture<'static, Result<Visitor, ShopError>> {
    let session_id = request
        .extensions()
        .get::<SessionId>()
        .map(|s| s.0.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let chosen = request
        .cookie(CURRENCY_COOKIE)
        .map(|c| c.value().to_owned());
    // A Bearer token that cannot be one (empty, or too long) is the
    // program's mistake: a 401, like one that names no session, not a
    // guest's answer (it was taken for a guest, and its cookie too). So is
    // an Authorization that is no Bearer token of ours.
    let (token, malformed_bearer, unusable) = match bearer_token {
        BearerToken::Used => (
            token(request),
            bearer(request).is_some_and(|t| !could_be_token(&t)),
            unusable_authorization(request),
        ),
        BearerToken::Unused => (
            request
                .cookie(AUTH_COOKIE)
                .map(|c| c.value().to_owned())
                .filter(|t| could_be_token(t)),
            false,
            None,
        ),
    };
    let from_cookie =
        token.is_some() && request.cookie(AUTH_COOKIE).map(|c| c.value().to_owned()) == token;
    let request = request.clone();
    let shop = request.app_data::<web::Data<Shop>>().cloned();
    Box::pin(async move {
        if let Some(problem) = unusable {
            return Err(ShopError::Unauthorized(problem.to_owned()));
        }
        if malformed_bearer {
            return Err(ShopError::Unauthorized(
                "the Bearer token is empty or longer than 256 characters: send the token \
                     POST /api/v1/sessions gave"
                    .to_owned(),
            ));
        }
        // Not asked of the currency service here: reading who asks
        // must not wait on it (the pages that show prices do).
        let offered = match &shop {
            Some(shop) => shop.currencies_known(),
            None => allow_list(),
        };
        // A cookie naming a currency not offered (any longer) counts
        // as no choice.
        let currency = chosen
            .filter(|code| offered.contains(code))
            .or_else(|| {
                // Dollars (below), unless the currency service has none.
                if offered.iter().any(|code| code == DEFAULT_CURRENCY) {
                    None
                } else {
                    offered.first().cloned()
                }
            })
            .unwrap_or_else(|| DEFAULT_CURRENCY.to_owned());
        let mut visitor = Visitor {
            guest_id: guest_id(&session_id),
            user: None,
            token: None,
            token_from_cookie: false,
            currency,
            offered,
        };
        let (Some(token), Some(shop)) = (token, shop) else {
            return Ok(visitor);
        };
        let authenticate = Authenticate {
            token: token.clone(),
        };
        match shop.auth.call(authenticate).await.or_unavailable("auth")? {
            Ok(user) => {
                visitor.user = Some(user);
                visitor.token = Some(token);
                visitor.token_from_cookie = from_cookie;
            }
            // Signed out or expired: a browser's visitor is a guest
            // again, and a cookie that says otherwise goes (see
            // `sessions`).
            Err(AuthError::InvalidSession) if from_cookie => {
                request.extensions_mut().insert(StaleAuthCookie);
            }
            // A program that sent a token meant to act as its user:
            // taken for a guest, it would fill or read a cart that is
            // not its user's, and not know it.
            Err(AuthError::InvalidSession) => {
                return Err(ShopError::Unauthorized(
                    "the Bearer token names no session (it was signed out, or it \
                         expired): sign in again with POST /api/v1/sessions"
                        .to_owned(),
                ));
            }
            // Its store down, or too busy: the auth service is down
            // for now (a 503), not a fault of the request.
            Err(error) => return Err(crate::actions::auth_error(error)),
        }
        Ok(visitor)
    })
}
