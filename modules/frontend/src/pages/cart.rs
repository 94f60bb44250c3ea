//! `/cart`: see the cart and its checkout form, add to it, empty it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::actions;
use crate::error::ShopError;
use crate::forms::{self, Fields};
use crate::pages::{html, redirect};
use crate::shop::{PricedCart, Shop};
use crate::views::{CartPage, CheckoutForm, Chrome};
use crate::visitor::{CHECKOUT_COOKIE, Visitor, removed_cookie, unfinished_checkout};
use orders::api::Order;

/// `GET /cart`: the lines, shipping, total, and the checkout form: a new
/// checkout, or the one the `shop_checkout` cookie names as possibly
/// unfinished (see [`Unfinished`]).
pub async fn page(
    shop: web::Data<Shop>,
    visitor: Visitor,
    request: HttpRequest,
) -> Result<HttpResponse, ShopError> {
    let cookie = request.cookie(CHECKOUT_COOKIE);
    let asked = match &cookie {
        Some(cookie) => Unfinished::ask(&shop, &visitor, cookie.value()).await,
        None => Unfinished::default(),
    };
    actions::gather_guest_lines(&shop, &visitor).await;
    let cart = shop.cart(visitor.customer_id(), &visitor.currency).await?;
    // Another customer's (this browser signed in or out since) stays, not
    // offered: that customer may be back, and must be offered it then.
    let ours = asked.key.is_some();
    let unfinished = asked.against(&cart);
    let forget = ours && unfinished.key.is_none();
    let in_cart: Vec<String> = cart.lines.iter().map(|l| l.product.id.clone()).collect();
    let (chrome, recommendations) = futures_util::future::join(
        Chrome::with_count(&shop, &visitor, cart.item_count),
        shop.recommendations(visitor.customer_id(), in_cart),
    )
    .await;
    // The total the button shows: the checkout charges it or nothing.
    let expected_total = (!cart.lines.is_empty()).then(|| crate::forms::amount_text(&cart.total));
    let mut page = html(&CartPage {
        chrome,
        cart,
        expected_total,
        form: match unfinished.key {
            Some(key) => CheckoutForm::finishing(key),
            None => CheckoutForm::new(),
        },
        placed: unfinished.placed.map(|(order, _)| order.order_id),
        recommendations,
    })?;
    if forget && let Err(error) = page.add_cookie(&removed_cookie(CHECKOUT_COOKIE)) {
        tracing::warn!(module = "frontend", %error, "the checkout cookie could not be removed");
    }
    Ok(page)
}

/// What the cart page makes of the `shop_checkout` cookie. The cookie
/// stays (and the form is that checkout again) while the checkout may be
/// unfinished: its order not stored (yet, or the orders service cannot
/// say), or stored but not finished while the cart still holds what it
/// bought, or nothing (submitting finishes it, so that the old order's
/// lines are not bought twice). It goes once the order is finished or the
/// cart holds something else (a new checkout then; checkout's finisher
/// finishes the old order). Another customer's stays, not offered (this
/// browser signed in or out since: they may be back). A stored order is
/// named on the page.
#[derive(Default)]
struct Unfinished {
    /// The checkout to offer again.
    key: Option<String>,
    /// Its order, if stored, and whether it is finished.
    placed: Option<(Order, bool)>,
}

impl Unfinished {
    /// What the orders service says of the checkout a cookie `value` names.
    async fn ask(shop: &Shop, visitor: &Visitor, value: &str) -> Unfinished {
        let Some(key) = unfinished_checkout(value, visitor.customer_id()) else {
            return Unfinished::default();
        };
        match actions::order_of_checkout(shop, visitor, &key).await {
            Ok(Some(placed)) => Unfinished {
                key: Some(key),
                placed: Some(placed),
            },
            Ok(None) | Err(_) => Unfinished {
                key: Some(key),
                placed: None,
            },
        }
    }

    /// The same, given what the cart holds now.
    fn against(self, cart: &PricedCart) -> Unfinished {
        let offer_again = match &self.placed {
            None => true,
            Some((order, finished)) => {
                !finished && (cart.lines.is_empty() || same_lines(cart, order))
            }
        };
        Unfinished {
            key: self.key.filter(|_| offer_again),
            placed: self.placed,
        }
    }
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
