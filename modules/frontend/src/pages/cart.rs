//! `/cart`: see the cart and its checkout form, add to it, empty it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::actions;
use crate::error::ShopError;
use crate::forms::{self, Fields};
use crate::pages::{html, redirect};
use crate::shop::{PricedCart, Shop};
use crate::views::{CartPage, CheckoutForm, Chrome};
use crate::visitor::{CHECKOUT_COOKIE, Visitor, checkout_cookie_removed, unfinished_checkout};
use orders::api::Order;

/// `GET /cart`: the lines, shipping, total, and the checkout form: a new
/// checkout, or the one the `shop_checkout` cookie names as possibly
/// unfinished (see `pages::checkout`). A cookie that is not this
/// customer's goes. If the checkout's order is stored (it landed late, or
/// another submission placed it), the page says which order that is; the
/// cookie goes once the order is finished (its cart emptied, its
/// confirmation sent) or the cart holds something else, and until then
/// the form stays that checkout, whose submission finishes it, so that
/// the old order's lines still in the cart are not bought twice.
pub async fn page(
    shop: web::Data<Shop>,
    visitor: Visitor,
    request: HttpRequest,
) -> Result<HttpResponse, ShopError> {
    let mut forget = false;
    let mut unfinished = None;
    let mut placed = None;
    if let Some(cookie) = request.cookie(CHECKOUT_COOKIE) {
        match unfinished_checkout(cookie.value(), visitor.customer_id()) {
            None => forget = true,
            Some(key) => match actions::order_of_checkout(&shop, &visitor, &key).await {
                Ok(Some((order, finished))) => placed = Some((key, order, finished)),
                // Not stored (yet), or the orders service cannot say:
                // the same checkout again finishes it either way.
                Ok(None) | Err(_) => unfinished = Some(key),
            },
        }
    }
    let cart = shop.cart(visitor.customer_id(), &visitor.currency).await?;
    // An order stored but unfinished: its checkout again finishes it, if
    // the cart is still what it ordered (or empty); a cart changed since
    // gets a new checkout (checkout's finisher finishes the old order).
    let placed = placed.map(|(key, order, finished)| {
        if !finished && (cart.lines.is_empty() || same_lines(&cart, &order)) {
            unfinished = Some(key);
        } else {
            forget = true;
        }
        order.order_id
    });
    let in_cart: Vec<String> = cart.lines.iter().map(|l| l.product.id.clone()).collect();
    let (chrome, recommendations) = futures_util::future::join(
        Chrome::of(&shop, &visitor),
        shop.recommendations(visitor.customer_id(), in_cart),
    )
    .await;
    let mut page = html(&CartPage {
        chrome,
        cart,
        form: match unfinished {
            Some(key) => CheckoutForm::finishing(key),
            None => CheckoutForm::new(),
        },
        placed,
        recommendations,
    })?;
    if forget && let Err(error) = page.add_cookie(&checkout_cookie_removed()) {
        tracing::warn!(module = "frontend", %error, "the checkout cookie could not be removed");
    }
    Ok(page)
}

/// True if `cart` holds what `order` bought, line for line.
fn same_lines(cart: &PricedCart, order: &Order) -> bool {
    let mut held: Vec<(&str, i32)> = cart
        .lines
        .iter()
        .map(|line| (line.product.id.as_str(), line.quantity))
        .collect();
    let mut ordered: Vec<(&str, i32)> = order
        .items
        .iter()
        .map(|line| (line.item.product_id.as_str(), line.item.quantity))
        .collect();
    held.sort_unstable();
    ordered.sort_unstable();
    held == ordered
}

/// `POST /cart` with `product_id` and `quantity`: adds, then 302 → `/cart`.
pub async fn add(
    shop: web::Data<Shop>,
    visitor: Visitor,
    body: web::Bytes,
) -> Result<HttpResponse, ShopError> {
    let added = forms::add_to_cart(&Fields::from_form(&body)?)?;
    actions::add_to_cart(&shop, &visitor, added).await?;
    Ok(redirect(StatusCode::FOUND, "/cart"))
}

/// `POST /cart/empty`: empties, then 302 → `/`.
pub async fn empty(shop: web::Data<Shop>, visitor: Visitor) -> Result<HttpResponse, ShopError> {
    actions::empty_cart(&shop, &visitor).await?;
    Ok(redirect(StatusCode::FOUND, "/"))
}
