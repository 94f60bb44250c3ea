//! `GET /product/{id}`: one product, with an ad and recommendations. An
//! unknown id is a 404 (the original answered 500).

use actix_web::{HttpResponse, web};

use crate::error::ShopError;
use crate::pages::html;
use crate::shop::Shop;
use crate::views::{Chrome, ProductPage};
use crate::visitor::Visitor;

/// The quantities the add-to-cart form offers (the original's).
const QUANTITIES: &[u32] = &[1, 2, 3, 4, 5, 10];

/// The product page.
pub async fn page(
    shop: web::Data<Shop>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, ShopError> {
    let product = shop.product(&id, &visitor.currency).await?;
    let (chrome, recommendations, ad) = futures_util::future::join3(
        Chrome::of(&shop, &visitor),
        shop.recommendations(visitor.customer_id(), vec![product.id.clone()]),
        shop.ad(product.categories.clone()),
    )
    .await;
    html(&ProductPage {
        chrome,
        product,
        quantities: QUANTITIES,
        recommendations,
        ad,
    })
}
