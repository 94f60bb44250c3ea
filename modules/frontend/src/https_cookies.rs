//! Cookies behind HTTPS (`[modules.frontend] secure_cookies = true`).
//!
//! A cookie is only as private as the names a browser will accept for it.
//! An ordinary cookie can be set for the shop's host by a sibling
//! subdomain (`Domain=` the parent) or by any plain-HTTP response on the
//! way (an attacker on the network answering `http://shop.example`). So a
//! cookie named `shop_session-id` that arrives is not necessarily one the
//! shop set: whoever planted it chose the visitor's session id, and then
//! sees that guest's cart and orders, and adds to the cart the visitor
//! will see after signing in (session fixation).
//!
//! Browsers accept a cookie whose name starts with `__Host-` only from a
//! secure origin, with `Secure`, `Path=/` and no `Domain`: exactly the
//! host that set it over HTTPS, nobody else. So, behind HTTPS, this layer
//! renames the shop's cookies both ways, and nothing else in the shop
//! knows:
//!
//! - on the way out, every `Set-Cookie` gets the prefix and `Secure`
//!   (the shop sets every cookie with `Path=/` and no `Domain`);
//! - on the way in, only `__Host-` cookies are read, without the prefix;
//!   a cookie without it is dropped, as one the shop did not set.
//!
//! A browser that held the shop's cookies from before the setting was
//! turned on starts a new session (and is signed out) once; a checkout it
//! left unfinished then (`shop_checkout`) is no longer offered to finish,
//! and a charge in doubt under it stands until a person settles it: turn
//! the setting on before the shop takes orders, or while none is in doubt.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{COOKIE, HeaderValue, SET_COOKIE};
use actix_web::middleware::Next;

/// The prefix a browser accepts only from this host, over HTTPS.
pub const HOST_PREFIX: &str = "__Host-";

/// The middleware (see the module doc). It must wrap every layer that
/// reads or sets cookies, and be inside every layer that reads them
/// (none does, outside it).
pub async fn host_only_cookies(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    unprefix_request_cookies(&mut request);
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    let set: Vec<HeaderValue> = headers.get_all(SET_COOKIE).cloned().collect();
    if set.is_empty() {
        return Ok(response);
    }
    headers.remove(SET_COOKIE);
    for value in set {
        // A value that is not text was not set by the shop (it sets
        // ASCII); it goes out as it is.
        let secured = match value.to_str() {
            Ok(text) => HeaderValue::from_str(&host_only(text)).unwrap_or(value),
            Err(_) => value,
        };
        headers.append(SET_COOKIE, secured);
    }
    Ok(response)
}

/// Replaces the request's `Cookie` headers with one that holds only its
/// `__Host-` cookies, named without the prefix (none, if it had none).
/// Bytes, not text: another site's cookie in the same line with a value
/// that is not ASCII (a parent domain's analytics) must not take the
/// shop's with it.
fn unprefix_request_cookies(request: &mut ServiceRequest) {
    let headers = request.headers_mut();
    let kept: Vec<&[u8]> = headers
        .get_all(COOKIE)
        .flat_map(|value| value.as_bytes().split(|byte| *byte == b';'))
        .filter_map(|pair| pair.trim_ascii().strip_prefix(HOST_PREFIX.as_bytes()))
        .filter(|pair| pair.contains(&b'='))
        .collect();
    let joined = kept.join(&b"; "[..]);
    headers.remove(COOKIE);
    if joined.is_empty() {
        return;
    }
    // Made of parts of header values, so it is one too.
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(COOKIE, value);
    }
}

/// A `Set-Cookie` value with the prefix on its name and `Secure` among
/// its attributes.
fn host_only(set_cookie: &str) -> String {
    let secure = set_cookie
        .split(';')
        .skip(1)
        .any(|attribute| attribute.trim().eq_ignore_ascii_case("secure"));
    let prefixed = format!("{HOST_PREFIX}{}", set_cookie.trim_start());
    if secure {
        prefixed
    } else {
        format!("{prefixed}; Secure")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_cookie_gets_the_prefix_and_secure_once() {
        assert_eq!(
            host_only("shop_session-id=abc; HttpOnly; SameSite=Lax; Path=/"),
            "__Host-shop_session-id=abc; HttpOnly; SameSite=Lax; Path=/; Secure"
        );
        assert_eq!(
            host_only("shop_auth=; Path=/; Max-Age=0; Secure"),
            "__Host-shop_auth=; Path=/; Max-Age=0; Secure"
        );
    }

    #[test]
    fn only_prefixed_cookies_are_read_and_without_the_prefix() {
        let mut request = actix_web::test::TestRequest::default()
            .insert_header((
                COOKIE,
                "shop_session-id=planted; __Host-shop_session-id=mine; __Host-",
            ))
            .append_header((COOKIE, "__Host-shop_currency=GBP; other=1"))
            .to_srv_request();
        unprefix_request_cookies(&mut request);
        let values: Vec<&str> = request
            .headers()
            .get_all(COOKIE)
            .filter_map(|value| value.to_str().ok())
            .collect();
        assert_eq!(values, ["shop_session-id=mine; shop_currency=GBP"]);
        assert_eq!(
            request
                .cookie("shop_session-id")
                .map(|c| c.value().to_owned()),
            Some("mine".to_owned())
        );

        // Another site's cookie with a value that is not ASCII, in the
        // same line, takes nothing with it.
        let mut mixed = actix_web::test::TestRequest::default()
            .insert_header((
                COOKIE,
                HeaderValue::from_bytes("x=é; __Host-shop_session-id=mine".as_bytes()).unwrap(),
            ))
            .to_srv_request();
        unprefix_request_cookies(&mut mixed);
        assert_eq!(
            mixed
                .cookie("shop_session-id")
                .map(|c| c.value().to_owned()),
            Some("mine".to_owned())
        );

        let mut planted_only = actix_web::test::TestRequest::default()
            .insert_header((COOKIE, "shop_session-id=planted"))
            .to_srv_request();
        unprefix_request_cookies(&mut planted_only);
        assert!(planted_only.headers().get(COOKIE).is_none());
    }
}
