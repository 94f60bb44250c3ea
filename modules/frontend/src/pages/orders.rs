//! `GET /order/{id}` and `GET /orders`: the visitor's orders, as stored.
//! A visitor sees the orders of their browser session; a signed-in user
//! sees their account's, from any browser.
//!
//! Signing in moves the guest's orders to the account, once. A guest
//! checkout still running (or in doubt) then stores its order under the
//! guest afterwards: so a signed-in user's orders are looked up after
//! moving the browser session's guest orders again ([`claim_late`]).

use actix_web::{HttpResponse, web};
use orders::api::{ClaimOrders, GetOrder, ListOrders, OrdersError};

use crate::error::{CallOutcome, ShopError};
use crate::pages::html;
use crate::shop::Shop;
use crate::views::{Chrome, OrderPage, OrderView, OrdersPage};
use crate::visitor::Visitor;

fn orders_error(error: OrdersError) -> ShopError {
    match error {
        OrdersError::NotFound { order_id } => {
            ShopError::NotFound(format!("you have no order {order_id}"))
        }
        OrdersError::InvalidOrder(detail) => ShopError::Failed(detail),
        OrdersError::Storage(detail) => ShopError::down("orders", detail),
    }
}

/// Moves to a signed-in visitor's account the orders their browser
/// session stored as a guest since the sign-in moved the others (see the
/// module docs). A failure leaves them where they are, to be moved the next
/// time (logged).
async fn claim_late(shop: &Shop, visitor: &Visitor) {
    let Some(user) = &visitor.user else {
        return;
    };
    if visitor.guest_id == user.id {
        return;
    }
    let claim = ClaimOrders {
        from_customer_id: visitor.guest_id.clone(),
        to_customer_id: user.id.clone(),
    };
    match shop.orders.call(claim).await {
        Ok(Ok(claimed)) if claimed.moved > 0 => tracing::info!(
            module = "frontend",
            moved = claimed.moved,
            "orders stored for the guest after the sign-in moved to the account"
        ),
        Ok(Ok(_)) => {}
        other => tracing::warn!(
            module = "frontend",
            result = ?other,
            "the guest's late orders were not moved to the account; tried again next time"
        ),
    }
}

/// One stored order of the visitor's (404 if it is someone else's).
pub async fn find(
    shop: &Shop,
    visitor: &Visitor,
    order_id: &str,
) -> Result<orders::api::Order, ShopError> {
    match get(shop, visitor, order_id).await {
        Err(ShopError::NotFound(_)) if visitor.user.is_some() => {
            claim_late(shop, visitor).await;
            get(shop, visitor, order_id).await
        }
        found => found,
    }
}

/// [`find`], as stored now.
async fn get(
    shop: &Shop,
    visitor: &Visitor,
    order_id: &str,
) -> Result<orders::api::Order, ShopError> {
    shop.orders
        .call(GetOrder {
            customer_id: visitor.customer_id().to_owned(),
            order_id: order_id.to_owned(),
        })
        .await
        .or_unavailable("orders")?
        .map_err(orders_error)
}

/// `?before=ORDER_ID`: which page of the visitor's orders to list (see
/// [`ListOrders`]); none, the newest.
#[derive(Debug, serde::Deserialize)]
pub struct OrdersQuery {
    /// The last order of the page before.
    pub before: Option<String>,
}

/// A page of the visitor's stored orders, newest first (200 at most,
/// after order `before` if it is given), and the `before` of the next
/// page if they have older ones.
pub async fn all(
    shop: &Shop,
    visitor: &Visitor,
    before: Option<&str>,
) -> Result<(Vec<orders::api::Order>, Option<String>), ShopError> {
    claim_late(shop, visitor).await;
    let listed = shop
        .orders
        .call(ListOrders {
            customer_id: visitor.customer_id().to_owned(),
            before: before.map(str::to_owned),
        })
        .await
        .or_unavailable("orders")?
        .map_err(orders_error)?;
    Ok((listed.orders, listed.next_before))
}

/// The path of the page of `path`'s orders after order `before`.
pub fn older_orders(path: &str, before: &str) -> String {
    let query = serde_urlencoded::to_string([("before", before)]).unwrap_or_default();
    format!("{path}?{query}")
}

/// `GET /order/{id}`: "Your order is complete!".
pub async fn one(
    shop: web::Data<Shop>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, ShopError> {
    let order = find(&shop, &visitor, &id).await?;
    let (chrome, recommendations) = futures_util::future::join(
        Chrome::of(&shop, &visitor),
        shop.recommendations(visitor.customer_id(), Vec::new()),
    )
    .await;
    html(&OrderPage {
        // Its amounts are the order's, whatever currency is chosen now.
        chrome: chrome.without_currency_selector(),
        order: OrderView::from(&order),
        recommendations,
    })
}

/// `GET /orders[?before=ORDER_ID]`: "My orders", a page of them.
pub async fn list(
    shop: web::Data<Shop>,
    visitor: Visitor,
    query: web::Query<OrdersQuery>,
) -> Result<HttpResponse, ShopError> {
    let before = query.before.as_deref();
    let (orders, chrome) =
        futures_util::future::join(all(&shop, &visitor, before), Chrome::of(&shop, &visitor)).await;
    let (orders, next_before) = orders?;
    html(&OrdersPage {
        chrome,
        paged: before.is_some(),
        older: next_before.map(|before| older_orders("/orders", &before)),
        orders: orders.iter().map(OrderView::from).collect(),
    })
}
