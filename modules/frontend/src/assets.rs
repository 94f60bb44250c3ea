//! Static files, built into the binary (so the shop runs from the binary
//! alone), and the two plain-text routes.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

use crate::error::ShopError;

/// `(path under /static/, content type, bytes)`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/style.css"),
    ),
    (
        "shop.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/shop.js"),
    ),
    (
        "img/products/bamboo-glass-jar.jpg",
        "image/jpeg",
        include_bytes!("../static/img/products/bamboo-glass-jar.jpg"),
    ),
    (
        "img/products/candle-holder.jpg",
        "image/jpeg",
        include_bytes!("../static/img/products/candle-holder.jpg"),
    ),
    (
        "img/products/hairdryer.jpg",
        "image/jpeg",
        include_bytes!("../static/img/products/hairdryer.jpg"),
    ),
    (
        "img/products/loafers.jpg",
        "image/jpeg",
        include_bytes!("../static/img/products/loafers.jpg"),
    ),
    (
        "img/products/mug.jpg",
        "image/jpeg",
        include_bytes!("../static/img/products/mug.jpg"),
    ),
    (
        "img/products/salt-and-pepper-shakers.jpg",
        "image/jpeg",
        include_bytes!("../static/img/products/salt-and-pepper-shakers.jpg"),
    ),
    (
        "img/products/sunglasses.jpg",
        "image/jpeg",
        include_bytes!("../static/img/products/sunglasses.jpg"),
    ),
    (
        "img/products/tank-top.jpg",
        "image/jpeg",
        include_bytes!("../static/img/products/tank-top.jpg"),
    ),
    (
        "img/products/watch.jpg",
        "image/jpeg",
        include_bytes!("../static/img/products/watch.jpg"),
    ),
];

/// `GET /static/{path}`.
pub async fn serve(path: web::Path<String>) -> Result<HttpResponse, ShopError> {
    let path = path.into_inner();
    let (_, content_type, bytes) = FILES
        .iter()
        .find(|(name, _, _)| *name == path)
        .ok_or_else(|| ShopError::NotFound(format!("there is no file /static/{path}")))?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, *content_type))
        .insert_header((CACHE_CONTROL, "public, max-age=86400"))
        .body(*bytes))
}

/// `/robots.txt`: keep crawlers out of a demo shop.
pub async fn robots() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("User-agent: *\nDisallow: /\n")
}

/// `/_healthz`: the server answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}
