//! `POST /cart/checkout`: place the order, then 303 → `/order/{id}`.
//!
//! The original rendered the order page in answer to the POST, so a
//! refresh placed a second order (spec section 3, bug 4). Here the form
//! carries an idempotency key (a hidden field, new each time the cart page
//! is shown), checkout makes one order per key, and the answer is a
//! redirect: a double click, a refresh or a retry all land on the same
//! order. A client that sends no key (the original's load generator) gets
//! a fresh one per submission.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::actions;
use crate::error::ShopError;
use crate::forms::{self, Fields};
use crate::pages::redirect;
use crate::shop::Shop;
use crate::visitor::Visitor;

/// Places the order.
pub async fn place(
    shop: web::Data<Shop>,
    visitor: Visitor,
    body: web::Bytes,
) -> Result<HttpResponse, ShopError> {
    let order = forms::checkout(&Fields::from_form(&body)?)?;
    let order = actions::place_order(&shop, &visitor, order).await?;
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!("/order/{}", order.order_id),
    ))
}
