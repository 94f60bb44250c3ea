//! `POST /setCurrency`: choose the currency prices are shown and charged
//! in. Only the currencies the selector offers are accepted (the six of
//! the allow-list that the currency service supports; the original
//! accepted any ISO code, which its currency service then turned into NaN:
//! spec section 3, bug 2).

use actix_web::http::StatusCode;
use actix_web::http::header::REFERER;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ShopError;
use crate::forms::Fields;
use crate::pages::redirect;
use crate::shop::Shop;
use crate::visitor::currency_cookie;

/// Where to go back to: the referring page's path, on this shop whatever
/// host the Referer names (a proxy in front may have rewritten the Host
/// the shop sees: comparing the two sent every switch to `/`), else `/`.
/// Only the path is kept, and never one a browser would read as another
/// site's (`//evil`, `/\evil`).
fn back_to(request: &HttpRequest) -> String {
    let Some(referer) = request.headers().get(REFERER).and_then(|v| v.to_str().ok()) else {
        return "/".to_owned();
    };
    let Some((_, rest)) = referer.split_once("://") else {
        return "/".to_owned();
    };
    let path = &rest[rest.find('/').unwrap_or(rest.len())..];
    // A browser drops tabs and line breaks from a URL, so `/\t/evil`
    // would be `//evil` to it: only printable ASCII is taken.
    let printable = path.bytes().all(|b| b.is_ascii_graphic());
    let elsewhere = path.starts_with("//") || path.starts_with("/\\");
    if path.starts_with('/') && !elsewhere && printable {
        path.to_owned()
    } else {
        "/".to_owned()
    }
}

/// Sets the currency cookie, then 302 back.
pub async fn set(
    shop: web::Data<Shop>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ShopError> {
    let fields = Fields::from_form(&body)?;
    let code = fields.text("currency_code");
    let offered = shop.currencies().await;
    if !offered.iter().any(|offered| offered == code) {
        return Err(ShopError::field(
            "currency_code",
            format!("must be one of {}", offered.join(", ")),
        ));
    }
    let mut response = redirect(StatusCode::FOUND, &back_to(&request));
    response
        .add_cookie(&currency_cookie(code))
        .map_err(|e| ShopError::Failed(e.to_string()))?;
    Ok(response)
}
