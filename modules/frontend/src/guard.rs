//! Refusing cross-site form posts (CSRF).
//!
//! A browser says where a request comes from: `Sec-Fetch-Site` (every
//! current browser) and `Origin` (on every POST). A state-changing request
//! (POST, PUT, PATCH, DELETE) is refused with 403 when
//!
//! - `Sec-Fetch-Site` is present and is neither `same-origin` nor `none`
//!   (`none`: the user typed it, or it came from a bookmark), or
//! - there is no `Sec-Fetch-Site`, and `Origin` is present and is `null`
//!   or names another host than the request's `Host`.
//!
//! `GET /logout` is guarded too: it signs out, as the original's does, and
//! a link or a script on another site must not sign a visitor out (a
//! guest would lose the cookie that holds their cart). Our own "Sign out"
//! link is same-origin, and a typed address says `none`.
//!
//! A scripted client (curl, Online Boutique's load generator) sends
//! neither header, so its plain form posts pass; it cannot be tricked into
//! posting by another site, which is what this guards against. The
//! cookies are `SameSite=Lax` as well, so a cross-site post would not
//! carry the session anyway: this guard makes the refusal explicit.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, ORIGIN};
use actix_web::middleware::Next;

use crate::error::ShopError;

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// True if the request may change state only with a same-site check:
/// every method but GET, HEAD and OPTIONS, and `GET /logout` (the
/// original signs out on a GET, and a link on another site must not).
/// The path is the one the router matches, percent-escapes decoded: the
/// raw one let `/%6Cogout` through to the sign-out unchecked.
fn changes_state(request: &ServiceRequest) -> bool {
    !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || request.match_info().as_str() == "/logout"
}

/// True if the browser says the request comes from another site.
pub fn is_cross_site(request: &ServiceRequest) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get(SEC_FETCH_SITE) {
        return !matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    // "scheme://host[:port]"; anything else (including "null") is foreign.
    let Some((_, origin_host)) = origin.split_once("://") else {
        return true;
    };
    let host = request.connection_info().host().to_owned();
    !origin_host.eq_ignore_ascii_case(&host)
}

/// The middleware: answers 403 to a cross-site state-changing request.
pub async fn refuse_cross_site(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, Error> {
    if changes_state(&request) && is_cross_site(&request) {
        tracing::warn!(
            module = "frontend",
            method = %request.method(),
            path = request.path(),
            "refused a cross-site request"
        );
        return Ok(request.error_response(ShopError::CrossSite));
    }
    Ok(next.call(request).await?.map_into_boxed_body())
}
