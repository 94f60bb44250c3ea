//! The JSON API under `/api/v1`, for programs: the same actions as the
//! pages ([`crate::actions`]), the same rules and statuses, JSON in and
//! out. Errors are `{"error": {"status", "message", "fields"}}`.
//!
//! | method, path | body | answer |
//! |---|---|---|
//! | GET `/products[?currency=EUR]` | | `{currency, products: [...]}` |
//! | GET `/products/{id}[?currency=]` | | a product, priced |
//! | GET `/cart[?currency=]` | | the cart, priced, with shipping and total |
//! | POST `/cart/items[?currency=]` | `{product_id, quantity}` | 201, the cart (see below) |
//! | DELETE `/cart` | | 204 |
//! | POST `/checkout[?currency=]` | the checkout form's fields (`credit_card_cvv` as a string: `"042"` keeps its zero); a key, required (422 without), in `idempotency_key` or the `Idempotency-Key` header (both: the same); optionally `expected_total`, the total the customer was shown, as `"USD 28.98"` (another total now: 409, nothing charged) | 201, `{order}`, charged in the currency |
//! | GET `/orders[?before=ID]` | | `{orders: [...], more, next}`: 200 at most, newest first, from the newest or after order `ID`; `more`: older ones exist, `next`: the path that lists them (or `null`) |
//! | GET `/orders/{id}` | | `{order}` |
//! | POST `/users` | `{name, email, password}` | 201, `{token, user, expires_at}` |
//! | POST `/sessions` | `{email, password}` | `{token, user, expires_at}` |
//! | GET `/session` | | who is asking (a guest's `customer_id` is `null`) |
//! | DELETE `/session` | | 204, signed out |
//!
//! `POST /cart/items` answers 201 once the line is stored, with
//! `Location: /api/v1/cart`. Its body is the cart, priced; if the cart
//! cannot be priced right then (currency or shipping down), it is
//! `{"added": {product_id, quantity}, "cart_error": "..."}` instead: still
//! 201, since the add is done, and a client that took a 503 for a failed
//! add and sent it again would have the line twice (an add is not
//! idempotent).
//!
//! A program signs in by sending `Authorization: Bearer TOKEN`; without
//! it, the session cookie says whose cart it is, as in a browser. A token
//! that names no session (signed out, expired) is a 401 on every route,
//! not a guest's request: the program meant to act as its user. Bodies
//! must be `Content-Type: application/json` (415 otherwise), which a
//! browser cannot send to another site without asking first.
//!
//! `?currency=` defaults to the visitor's (the `shop_currency` cookie, or
//! USD): a program prices and pays in the currency it names. An order's
//! `customer_id` is `null` for a guest, as in `GET /session`. The GET
//! routes answer HEAD too.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::actions::{self, SignedIn};
use crate::error::ShopError;
use crate::forms::{self, Fields};
use crate::pages::orders as stored;
use crate::shop::Shop;
use crate::visitor::{AUTH_COOKIE, SigningIn, Visitor, cookie};

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The API's routes.
pub fn routes(config: &mut web::ServiceConfig) {
    use crate::server::{delete, page, post, resource};
    config
        .service(resource("/products", vec![page(products)]))
        .service(resource("/products/{id}", vec![page(product)]))
        .service(resource("/cart", vec![page(cart), delete(empty_cart)]))
        .service(resource("/cart/items", vec![post(add_item)]))
        .service(resource("/checkout", vec![post(checkout)]))
        .service(resource("/orders", vec![page(orders)]))
        .service(resource("/orders/{id}", vec![page(order)]))
        .service(resource("/users", vec![post(sign_up)]))
        .service(resource("/sessions", vec![post(sign_in)]))
        .service(resource("/session", vec![page(session), delete(sign_out)]))
        .default_service(web::to(|request: HttpRequest| async move {
            Err::<HttpResponse, _>(ShopError::NotFound(format!(
                "there is no API endpoint {} {}",
                request.method(),
                request.path()
            )))
        }));
}

/// `?currency=EUR`, and nothing else: a misspelled `?curency=EUR` was
/// passed over, and the checkout charged in the cookie's currency (or
/// USD); it is a 400 naming it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CurrencyQuery {
    currency: Option<String>,
}

/// The body's fields, if it is JSON.
fn json_fields(request: &HttpRequest, body: &[u8]) -> Result<Fields, ShopError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Media types are case-insensitive (`Application/JSON`), and may
    // have parameters (`; charset=utf-8`); `application/jsonx` is another.
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ShopError::UnsupportedBody(
            "send the body as JSON, with Content-Type: application/json".to_owned(),
        ));
    }
    Fields::from_json(body)
}

fn json(status: StatusCode, value: &impl Serialize) -> HttpResponse {
    HttpResponse::build(status).json(value)
}

async fn products(
    shop: web::Data<Shop>,
    visitor: Visitor,
    query: web::Query<CurrencyQuery>,
) -> Result<HttpResponse, ShopError> {
    let currency = visitor.currency_or(query.currency.as_deref())?;
    let products = shop.products(&currency).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "currency": currency, "products": products }),
    ))
}

async fn product(
    shop: web::Data<Shop>,
    visitor: Visitor,
    id: web::Path<String>,
    query: web::Query<CurrencyQuery>,
) -> Result<HttpResponse, ShopError> {
    let currency = visitor.currency_or(query.currency.as_deref())?;
    Ok(json(StatusCode::OK, &shop.product(&id, &currency).await?))
}

async fn priced_cart(
    shop: &Shop,
    visitor: &Visitor,
    currency: &str,
    status: StatusCode,
) -> Result<HttpResponse, ShopError> {
    let cart = shop.cart(visitor.customer_id(), currency).await?;
    Ok(json(status, &cart))
}

async fn cart(
    shop: web::Data<Shop>,
    visitor: Visitor,
    query: web::Query<CurrencyQuery>,
) -> Result<HttpResponse, ShopError> {
    let currency = visitor.currency_or(query.currency.as_deref())?;
    priced_cart(&shop, &visitor, &currency, StatusCode::OK).await
}

async fn add_item(
    shop: web::Data<Shop>,
    visitor: Visitor,
    query: web::Query<CurrencyQuery>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ShopError> {
    let currency = visitor.currency_or(query.currency.as_deref())?;
    let added = forms::add_to_cart(&json_fields(&request, &body)?)?;
    let line = AddedLine {
        product_id: added.product_id.clone(),
        quantity: added.quantity,
    };
    actions::add_to_cart(&shop, &visitor, added).await?;
    // Stored: from here on, whatever fails, the answer is 201 (see the
    // module's docs).
    let mut response = match shop.cart(visitor.customer_id(), &currency).await {
        Ok(cart) => json(StatusCode::CREATED, &cart),
        Err(error) => {
            tracing::warn!(module = "frontend", %error, "a line was added to the cart, which could not be priced");
            json(
                StatusCode::CREATED,
                &AddedUnpriced {
                    added: line,
                    cart_error: error.to_string(),
                },
            )
        }
    };
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static("/api/v1/cart"));
    Ok(response)
}

/// A line `POST /cart/items` stored.
#[derive(Serialize)]
struct AddedLine {
    product_id: String,
    quantity: i32,
}

/// The answer to an add whose cart could not be priced.
#[derive(Serialize)]
struct AddedUnpriced {
    added: AddedLine,
    /// Why the cart is not shown.
    cart_error: String,
}

async fn empty_cart(shop: web::Data<Shop>, visitor: Visitor) -> Result<HttpResponse, ShopError> {
    actions::empty_cart(&shop, &visitor).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn checkout(
    shop: web::Data<Shop>,
    visitor: Visitor,
    query: web::Query<CurrencyQuery>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ShopError> {
    let currency = visitor.currency_or(query.currency.as_deref())?;
    let mut order = forms::checkout(&json_fields(&request, &body)?)?;
    if let Some(key) = request.headers().get(IDEMPOTENCY_KEY) {
        let key = key.to_str().unwrap_or_default();
        // Checkout's own rule, and one at least: the header says a key.
        if key.is_empty() || !checkout::api::is_idempotency_key(key) {
            return Err(ShopError::field(
                "Idempotency-Key",
                "must be 1 to 128 letters, digits, - or _",
            ));
        }
        if order.idempotency_key.is_empty() {
            order.idempotency_key = key.to_owned();
        } else if order.idempotency_key != key {
            return Err(ShopError::field(
                "Idempotency-Key",
                "differs from the body's idempotency_key: send one key, or the same in both",
            ));
        }
    }
    // A program must name its checkout: one left in doubt (a 503 that
    // says to submit it again) is finished only by sending it again with
    // the same key, and a key made up here is one the program never
    // learns (sent again without, the checkout would pay again for what
    // is still in the cart). The pages' form always carries one.
    if order.idempotency_key.is_empty() {
        return Err(ShopError::field(
            "idempotency_key",
            "is required: a key of your choosing (or an Idempotency-Key header), the same \
             whenever this checkout is sent again",
        ));
    }
    let order = actions::place_order(&shop, &visitor, &currency, order).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/orders/{}", order.order_id)))
        .json(serde_json::json!({ "order": order_view(&order, &visitor) })))
}

/// An order as the API answers it: a guest's `customer_id` is `null`, as
/// in `GET /session` (it is `guest:` and their HttpOnly session cookie).
fn order_view(order: &orders::api::Order, visitor: &Visitor) -> serde_json::Value {
    let mut view = serde_json::json!(order);
    if visitor.user.is_none() {
        view["customer_id"] = serde_json::Value::Null;
    }
    // The shop's bookkeeping (when the cart was read), not the order's.
    if let Some(fields) = view.as_object_mut() {
        fields.remove("cart_read_at");
    }
    view
}

/// `?before=ORDER_ID`, and nothing else (`?befor=` gave the first page).
/// The page's own query (`stored::OrdersQuery`) lets others by: a link
/// with a tracker's parameters still opens it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrdersQuery {
    before: Option<String>,
}

async fn orders(
    shop: web::Data<Shop>,
    visitor: Visitor,
    query: web::Query<OrdersQuery>,
) -> Result<HttpResponse, ShopError> {
    let (orders, next_before) = stored::all(&shop, &visitor, query.before.as_deref()).await?;
    let views: Vec<serde_json::Value> = orders
        .iter()
        .map(|order| order_view(order, &visitor))
        .collect();
    let next = next_before.map(|before| stored::older_orders("/api/v1/orders", &before));
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "orders": views, "more": next.is_some(), "next": next }),
    ))
}

async fn order(
    shop: web::Data<Shop>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, ShopError> {
    let order = stored::find(&shop, &visitor, &id).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "order": order_view(&order, &visitor) }),
    ))
}

/// A session as the API answers it, with the sign-in cookie set too (so a
/// browser-based program is signed in as well).
fn session_response(status: StatusCode, signed: &SignedIn) -> Result<HttpResponse, ShopError> {
    let mut response = json(status, &signed.session);
    crate::adoption::set_cookies(&mut response, signed)?;
    Ok(response)
}

async fn sign_up(
    shop: web::Data<Shop>,
    SigningIn(visitor): SigningIn,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ShopError> {
    let fields = json_fields(&request, &body)?;
    let signed = actions::sign_up(
        &shop,
        &visitor,
        fields.text("name"),
        fields.text("email"),
        fields.raw("password"),
    )
    .await?;
    session_response(StatusCode::CREATED, &signed)
}

async fn sign_in(
    shop: web::Data<Shop>,
    SigningIn(visitor): SigningIn,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ShopError> {
    let fields = json_fields(&request, &body)?;
    let signed = actions::sign_in(
        &shop,
        &visitor,
        fields.text("email"),
        fields.raw("password"),
    )
    .await?;
    session_response(StatusCode::OK, &signed)
}

/// Who is asking. A signed-in visitor's `customer_id` is their user id; a
/// guest's is left out (`null`): it is `guest:` and their session cookie,
/// which is HttpOnly so that no script reads it.
async fn session(visitor: Visitor) -> HttpResponse {
    let customer_id = visitor.user.as_ref().map(|_| visitor.customer_id());
    json(
        StatusCode::OK,
        &serde_json::json!({
            "signed_in": visitor.user.is_some(),
            "user": visitor.user,
            "customer_id": customer_id,
            "currency": visitor.currency,
        }),
    )
}

async fn sign_out(shop: web::Data<Shop>, visitor: Visitor) -> Result<HttpResponse, ShopError> {
    if visitor.user.is_none() {
        return Err(ShopError::Unauthorized("you are not signed in".to_owned()));
    }
    actions::sign_out(&shop, &visitor).await?;
    let mut response = HttpResponse::NoContent().finish();
    // The sign-in cookie goes only if its session is the one ended: a
    // program's Bearer token signed out, another sign-in in the cookie
    // was removed from the browser and stayed valid, unseen, for days.
    if visitor.token_from_cookie {
        let mut expired = cookie(
            AUTH_COOKIE,
            String::new(),
            actix_web::cookie::time::Duration::ZERO,
        );
        expired.make_removal();
        response
            .add_cookie(&expired)
            .map_err(|e| ShopError::Failed(e.to_string()))?;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_media_type_is_read_in_any_case_and_nothing_else_is() {
        let request = |content_type: &str| {
            actix_web::test::TestRequest::default()
                .insert_header((CONTENT_TYPE, content_type))
                .to_http_request()
        };
        for json in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
        ] {
            assert!(json_fields(&request(json), b"{}").is_ok(), "{json}");
        }
        for other in [
            "text/plain",
            "application/jso",
            "application/x-www-form-urlencoded",
        ] {
            assert!(
                matches!(
                    json_fields(&request(other), b"{}"),
                    Err(ShopError::UnsupportedBody(_))
                ),
                "{other}"
            );
        }
    }

    #[test]
    fn a_cart_that_holds_all_the_products_it_may_is_a_conflict_not_a_field() {
        let full = crate::actions::cart_error(cart::api::CartError::TooManyItems { max: 2 });
        assert!(
            matches!(&full, ShopError::Conflict(why) if why.contains("remove one")),
            "{full:?}"
        );
        let too_many = crate::actions::cart_error(cart::api::CartError::QuantityTooLarge {
            product_id: "X".to_owned(),
            max: 9,
        });
        assert!(
            matches!(too_many, ShopError::InvalidFields(_)),
            "{too_many:?}"
        );
    }
}
