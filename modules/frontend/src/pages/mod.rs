//! The HTML pages: one file per part of the shop.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use askama::Template;

use crate::error::ShopError;

pub mod account;
pub mod cart;
pub mod checkout;
pub mod currency;
pub mod home;
pub mod orders;
pub mod product;

/// A rendered page with `status`. Pages depend on who asks, so they are
/// never cached.
pub fn html_with(status: StatusCode, page: &impl Template) -> Result<HttpResponse, ShopError> {
    let body = page
        .render()
        .map_err(|e| ShopError::Failed(format!("the page could not be rendered: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body))
}

/// A rendered page, 200.
pub fn html(page: &impl Template) -> Result<HttpResponse, ShopError> {
    html_with(StatusCode::OK, page)
}

/// A redirect with `status` (302 where the original answers 302, 303 after
/// a form that made something).
pub fn redirect(status: StatusCode, location: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((LOCATION, location))
        .finish()
}

/// Any path no route matches.
pub async fn not_found(request: actix_web::HttpRequest) -> Result<HttpResponse, ShopError> {
    Err(ShopError::NotFound(format!(
        "there is no page {}",
        request.path()
    )))
}
