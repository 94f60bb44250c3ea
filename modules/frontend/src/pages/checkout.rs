//! `POST /cart/checkout`: place the order, then 303 → `/order/{id}`.
//!
//! The original rendered the order page in answer to the POST, so a
//! refresh placed a second order (spec section 3, bug 4). Here the form
//! carries an idempotency key (a hidden field, new each time the cart page
//! is shown), checkout makes one order per key, and the answer is a
//! redirect: a double click, a refresh or a retry all land on the same
//! order. A client that sends no key (the original's load generator) gets
//! a fresh one per submission.
//!
//! **A checkout that may be unfinished** (its order in doubt, or its
//! charge kept for another submission or not given back: money may stand
//! under its key) must be finished by submitting *the same* checkout
//! again; a new form would be a new checkout and could charge twice. So
//! the failure's answer also sets the `shop_checkout` cookie to the key
//! (and the customer's tag), and while it is there the cart page's form
//! carries that key, with a note that submitting finishes the checkout.
//! A submission with that key that places the order, or that settles the
//! key (nothing stands under it any more: refunded, cancelled, or used
//! for another total), removes the cookie; one that fails before it could
//! change anything (a declined card, a service down before the charge)
//! leaves it, since the money from before still stands.
//!
//! While the cookie names an unfinished checkout, a submission with
//! another key (a form another tab showed before) is refused, 409, and
//! nothing is placed: it would be a new checkout of the same cart, and
//! could pay for it beside the money that stands. The cart page offers
//! the unfinished one (or, once it has settled, a new form).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use checkout::api::KeyLeft;

use crate::actions;
use crate::error::ShopError;
use crate::forms::{self, Fields};
use crate::pages::redirect;
use crate::shop::Shop;
use crate::visitor::{
    CHECKOUT_COOKIE, Visitor, checkout_cookie, removed_cookie, unfinished_checkout,
};

/// Places the order.
pub async fn place(
    shop: web::Data<Shop>,
    visitor: Visitor,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ShopError> {
    let order = forms::checkout(&Fields::from_form(&body)?)?;
    let key = order.idempotency_key.clone();
    let pending = request
        .cookie(CHECKOUT_COOKIE)
        .and_then(|cookie| unfinished_checkout(cookie.value(), visitor.customer_id()));
    if pending.as_deref().is_some_and(|pending| pending != key) {
        return Err(ShopError::Conflict(
            "an earlier checkout of yours may not have finished, and its payment may stand: \
             load your cart, which offers to finish it, before you check out again"
                .to_owned(),
        ));
    }
    let (mut response, key_left) =
        match actions::place_order(&shop, &visitor, &visitor.currency, order).await {
            Ok(order) => (
                redirect(StatusCode::SEE_OTHER, &format!("/order/{}", order.order_id)),
                KeyLeft::Settled,
            ),
            // Answered as the error, which the error pages render, with the
            // cookie set on it.
            Err(failure) => (HttpResponse::from_error(failure.error), failure.key_left),
        };
    let cookie = match key_left {
        KeyLeft::Unfinished if !key.is_empty() => {
            Some(checkout_cookie(&key, visitor.customer_id()))
        }
        KeyLeft::Settled if pending.as_deref() == Some(key.as_str()) => {
            Some(removed_cookie(CHECKOUT_COOKIE))
        }
        _ => None,
    };
    if let Some(cookie) = cookie
        && let Err(error) = response.add_cookie(&cookie)
    {
        tracing::warn!(module = "frontend", %error, "the checkout cookie could not be set");
    }
    Ok(response)
}
