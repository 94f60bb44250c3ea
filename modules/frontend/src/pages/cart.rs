//! `/cart`: see the cart and its checkout form, add to it, empty it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::actions;
use crate::error::ShopError;
use crate::forms::{self, Fields};
use crate::pages::{html, redirect};
use crate::shop::Shop;
use crate::views::{CartPage, CheckoutForm, Chrome};
use crate::visitor::Visitor;

/// `GET /cart`: the lines, shipping, total, and the checkout form.
pub async fn page(shop: web::Data<Shop>, visitor: Visitor) -> Result<HttpResponse, ShopError> {
    let cart = shop.cart(visitor.customer_id(), &visitor.currency).await?;
    let in_cart: Vec<String> = cart.lines.iter().map(|l| l.product.id.clone()).collect();
    let (chrome, recommendations) = futures_util::future::join(
        Chrome::of(&shop, &visitor),
        shop.recommendations(visitor.customer_id(), in_cart),
    )
    .await;
    html(&CartPage {
        chrome,
        cart,
        form: CheckoutForm::new(),
        recommendations,
    })
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
