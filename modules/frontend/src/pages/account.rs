//! `/signup`, `/signin`, `/logout`.
//!
//! Signing up or in moves the visitor's cart and orders to the account
//! (the cart lines are merged into the account's cart) and sets the
//! `shop_auth` cookie. A mistake re-shows the form with what was typed
//! (never the password) and what is wrong, with the status the JSON API
//! would give: 422, 401 or 409.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::actions::{self, SignedIn};
use crate::error::ShopError;
use crate::forms::Fields;
use crate::pages::{html, html_with, redirect};
use crate::shop::Shop;
use crate::views::{AccountPage, Chrome};
use crate::visitor::Visitor;

async fn form(shop: &Shop, visitor: &Visitor, sign_up: bool) -> AccountPage {
    AccountPage {
        chrome: Chrome::of(shop, visitor).await,
        sign_up,
        name: String::new(),
        email: String::new(),
        message: None,
        errors: Vec::new(),
    }
}

/// `GET /signup`.
pub async fn sign_up_form(
    shop: web::Data<Shop>,
    visitor: Visitor,
) -> Result<HttpResponse, ShopError> {
    html(&form(&shop, &visitor, true).await)
}

/// `GET /signin`.
pub async fn sign_in_form(
    shop: web::Data<Shop>,
    visitor: Visitor,
) -> Result<HttpResponse, ShopError> {
    html(&form(&shop, &visitor, false).await)
}

/// 303 → `/`, signed in.
fn signed_in(signed: &SignedIn) -> Result<HttpResponse, ShopError> {
    let mut response = redirect(StatusCode::SEE_OTHER, "/");
    crate::adoption::set_cookies(&mut response, signed)?;
    Ok(response)
}

/// The form again, showing `error`; errors that are not about the form
/// (a module down) become the error page.
async fn again(
    shop: &Shop,
    visitor: &Visitor,
    sign_up: bool,
    fields: &Fields,
    error: ShopError,
) -> Result<HttpResponse, ShopError> {
    let status = error.status_code();
    let mut page = form(shop, visitor, sign_up).await;
    page.name = fields.text("name").to_owned();
    page.email = fields.text("email").to_owned();
    match error {
        ShopError::InvalidFields(errors) => page.errors = errors,
        ShopError::Unauthorized(_) | ShopError::Conflict(_) => {
            page.message = Some(error.to_string())
        }
        other => return Err(other),
    }
    html_with(status, &page)
}

/// `POST /signup` with `name`, `email`, `password`.
pub async fn sign_up(
    shop: web::Data<Shop>,
    visitor: Visitor,
    body: web::Bytes,
) -> Result<HttpResponse, ShopError> {
    let fields = Fields::from_form(&body)?;
    let result = actions::sign_up(
        &shop,
        &visitor,
        fields.text("name"),
        fields.text("email"),
        fields.raw("password"),
    )
    .await;
    match result {
        Ok(signed) => signed_in(&signed),
        Err(error) => again(&shop, &visitor, true, &fields, error).await,
    }
}

/// `POST /signin` with `email`, `password`.
pub async fn sign_in(
    shop: web::Data<Shop>,
    visitor: Visitor,
    body: web::Bytes,
) -> Result<HttpResponse, ShopError> {
    let fields = Fields::from_form(&body)?;
    match actions::sign_in(
        &shop,
        &visitor,
        fields.text("email"),
        fields.raw("password"),
    )
    .await
    {
        Ok(signed) => signed_in(&signed),
        Err(error) => again(&shop, &visitor, false, &fields, error).await,
    }
}

/// `GET /logout` (the original's) or `POST /logout`: signs out, expires
/// every cookie the request sent (a new session starts; the old cart stays
/// stored), then 302 → `/`.
///
/// It does not ask who the visitor is first (that needs the auth module):
/// the cookies go regardless, so a browser is signed out even while auth
/// is down; the session is ended now if the auth module answers, else
/// again and again in the background until it does ([`end_later`]), not
/// left valid, unseen, for the days it had left.
pub async fn sign_out(
    shop: web::Data<Shop>,
    request: HttpRequest,
) -> Result<HttpResponse, ShopError> {
    if let Some(token) = crate::visitor::token(&request)
        && let Err(error) = actions::end_session(&shop, &token).await
    {
        match EndingLater::take() {
            Some(slot) => {
                tracing::warn!(module = "frontend", %error, "the session could not be ended in the auth module; trying again in the background");
                actix_web::rt::spawn(end_later(shop.clone(), token, slot));
            }
            // Each sign-out with a token while auth is down would hold a
            // task for minutes: past the limit, a flood of them cannot
            // grow the process, nor its log (the 1st, 2nd, 4th, 8th...
            // such sign-out is logged, with the count).
            None => {
                let left = LEFT_TO_EXPIRE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if left.is_power_of_two() {
                    tracing::warn!(
                        module = "frontend",
                        %error,
                        limit = MAX_ENDING_LATER,
                        left_to_expire = left,
                        "the session could not be ended in the auth module, and as many sign-outs wait for it already: left to expire"
                    );
                }
            }
        }
    }
    let mut response = redirect(StatusCode::FOUND, "/");
    // Every cookie sent goes, as the original's logout, but the one that
    // names a checkout that may be unfinished: it is tagged with its
    // customer, who may sign in again, and must then be offered that
    // checkout again, not a new one that pays a second time. (A name that
    // cannot go back in a header, such as one with a line break, was
    // never set by a server: skipped, where it made sign-out a 500.)
    let sent: Vec<String> = request
        .cookies()
        .map(|cookies| cookies.iter().map(|c| c.name().to_owned()).collect())
        .unwrap_or_default();
    for name in sent {
        if name == crate::visitor::CHECKOUT_COOKIE {
            continue;
        }
        if let Err(error) = response.add_cookie(&crate::visitor::removed_cookie(name)) {
            tracing::debug!(module = "frontend", %error, "a cookie that cannot be named in a header is not expired");
        }
    }
    Ok(response)
}

/// How often, and for how long, a sign-out that auth did not hear is
/// tried again.
const END_AGAIN_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
const END_AGAIN_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// Sign-outs waiting in the background for auth, at most.
const MAX_ENDING_LATER: usize = 1024;

/// Sign-outs left to expire since the process started, the limit being
/// reached.
static LEFT_TO_EXPIRE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many sign-outs wait in the background.
static ENDING_LATER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One of the [`MAX_ENDING_LATER`] places of a sign-out that waits for
/// auth; given back when dropped.
struct EndingLater;

impl EndingLater {
    /// A place, if one is free.
    fn take() -> Option<EndingLater> {
        use std::sync::atomic::Ordering;
        ENDING_LATER
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < MAX_ENDING_LATER).then_some(taken + 1)
            })
            .ok()
            .map(|_| EndingLater)
    }
}

impl Drop for EndingLater {
    fn drop(&mut self) {
        ENDING_LATER.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Ends the session of `token`, trying every [`END_AGAIN_EVERY`] until
/// auth answers, for [`END_AGAIN_FOR`] at most (then it is logged as left
/// to expire). Holds its `_slot` meanwhile.
async fn end_later(shop: web::Data<Shop>, token: String, _slot: EndingLater) {
    let started = std::time::Instant::now();
    while started.elapsed() < END_AGAIN_FOR {
        tokio::time::sleep(END_AGAIN_EVERY).await;
        if actions::end_session(&shop, &token).await.is_ok() {
            tracing::info!(
                module = "frontend",
                "a session whose sign-out auth missed has ended"
            );
            return;
        }
    }
    tracing::warn!(
        module = "frontend",
        "a session whose sign-out auth missed was not ended; it expires in its time"
    );
}
