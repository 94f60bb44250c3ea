//! `GET /`: every product, priced in the visitor's currency.

use actix_web::{HttpResponse, web};

use crate::error::ShopError;
use crate::pages::html;
use crate::shop::Shop;
use crate::views::{Chrome, HomePage};
use crate::visitor::Visitor;

/// The home page.
pub async fn page(shop: web::Data<Shop>, visitor: Visitor) -> Result<HttpResponse, ShopError> {
    let (products, chrome) = futures_util::future::join(
        shop.products(&visitor.currency),
        Chrome::of(&shop, &visitor),
    )
    .await;
    html(&HomePage {
        chrome,
        products: products?,
    })
}
