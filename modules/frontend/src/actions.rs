//! What a visitor can do, as the HTML pages and the JSON API both do it:
//! add to the cart, check out, sign up, sign in, sign out. Each maps the
//! modules' typed errors to a [`ShopError`] with the right status.

use auth::api::{AuthError, Session, SignIn, SignOut, SignUp};
use cart::api::{AddItem, CartError, CartItem, EmptyCart, MergeCarts};
use catalog::api::{CatalogError, GetProduct};
use checkout::api::{CheckoutError, KeyLeft, PlaceOrder, order_key};
use orders::api::{ClaimOrders, FindOrder, Order};
use shipping::api::ShippingError;

use crate::error::{CallOutcome, FieldError, ShopError};
use crate::forms::AddToCart;
use crate::shop::Shop;
use crate::visitor::Visitor;

/// What a cart error means to the visitor: a field to correct, a cart
/// that holds as many products as it may (409: no value of the request's
/// fields would do; a line must go first), or the cart down (its storage
/// failed: a 503, try again).
pub(crate) fn cart_error(error: CartError) -> ShopError {
    match error {
        CartError::InvalidQuantity { .. } | CartError::QuantityTooLarge { .. } => {
            ShopError::field("quantity", error.to_string())
        }
        CartError::TooManyItems { .. } => {
            ShopError::Conflict(format!("{error}: remove one before adding another"))
        }
        CartError::InvalidProductId { .. } => ShopError::field("product_id", error.to_string()),
        CartError::InvalidUserId { .. } => ShopError::BadRequest(error.to_string()),
        CartError::Storage(detail) => ShopError::down("cart", detail),
    }
}

/// Adds `added` to the visitor's cart; an unknown product is a 404.
pub async fn add_to_cart(
    shop: &Shop,
    visitor: &Visitor,
    added: AddToCart,
) -> Result<(), ShopError> {
    shop.catalog
        .call(GetProduct {
            id: added.product_id.clone(),
        })
        .await
        .or_unavailable("catalog")?
        .map_err(|_| ShopError::NotFound(format!("there is no product {:?}", added.product_id)))?;
    shop.cart
        .call(AddItem {
            user_id: visitor.customer_id().to_owned(),
            item: CartItem {
                product_id: added.product_id,
                quantity: added.quantity,
            },
        })
        .await
        .or_unavailable("cart")?
        .map_err(cart_error)?;
    Ok(())
}

/// Empties the visitor's cart.
pub async fn empty_cart(shop: &Shop, visitor: &Visitor) -> Result<(), ShopError> {
    shop.cart
        .call(EmptyCart {
            user_id: visitor.customer_id().to_owned(),
        })
        .await
        .or_unavailable("cart")?
        .map_err(cart_error)?;
    Ok(())
}

fn checkout_error(error: CheckoutError) -> ShopError {
    let text = error.to_string();
    let told = error.told_to_customer();
    match error {
        CheckoutError::EmptyCart => {
            ShopError::Conflict("your cart is empty: add something first".to_owned())
        }
        CheckoutError::InvalidRequest { field, reason } => {
            ShopError::InvalidFields(vec![FieldError { field, reason }])
        }
        CheckoutError::Currency(e) => ShopError::field("currency", e.to_string()),
        CheckoutError::Catalog(CatalogError::ProductNotFound { id }) => ShopError::UnsoldInCart(id),
        CheckoutError::Cart(e) => cart_error(e),
        CheckoutError::PaymentDeclined(_) => ShopError::PaymentDeclined(text),
        CheckoutError::TotalChanged { .. } => ShopError::Conflict(text),
        CheckoutError::CheckoutUsed(_) | CheckoutError::EarlierCheckoutUnsettled => {
            ShopError::Conflict(text)
        }
        CheckoutError::PaymentInDoubt { .. } => ShopError::down_telling("payment", told, text),
        CheckoutError::ShippingRefused(ShippingError::Unavailable { .. })
        | CheckoutError::ShippingFailed { .. } => ShopError::down_telling("shipping", told, text),
        CheckoutError::ShippingRefused(_) => ShopError::Conflict(text),
        CheckoutError::OrdersUnavailable(_)
        | CheckoutError::OrderNotStored { .. }
        | CheckoutError::OrderOutcomeUnknown { .. } => {
            ShopError::down_telling("orders", told, text)
        }
        CheckoutError::Unavailable { service, error } => {
            ShopError::down_telling(&service, told, error.to_string())
        }
    }
}

/// A checkout that placed no order.
#[derive(Debug)]
pub struct CheckoutFailure {
    /// Why, as the visitor is told.
    pub error: ShopError,
    /// What it leaves under the checkout's key (see
    /// `CheckoutError::key_left`; a call to checkout whose outcome is
    /// unknown, which may have run, leaves it unfinished).
    pub key_left: KeyLeft,
}

impl From<CheckoutFailure> for ShopError {
    fn from(failure: CheckoutFailure) -> ShopError {
        failure.error
    }
}

/// Places the order of the visitor's cart; `order` comes from
/// [`crate::forms::checkout`]. The same idempotency key gives the same
/// order.
pub async fn place_order(
    shop: &Shop,
    visitor: &Visitor,
    currency: &str,
    mut order: PlaceOrder,
) -> Result<Order, CheckoutFailure> {
    order.user_id = visitor.customer_id().to_owned();
    order.user_currency = currency.to_owned();
    match shop.checkout.call(order).await {
        Ok(Ok(placed)) => Ok(placed.order),
        Ok(Err(error)) => Err(CheckoutFailure {
            key_left: error.key_left(),
            error: checkout_error(error),
        }),
        Err(error) => {
            let (key_left, told) = if error.did_not_run() {
                (KeyLeft::Untouched, checkout::api::TOLD_NOTHING_CHARGED)
            } else {
                (KeyLeft::Unfinished, checkout::api::TOLD_ORDER_IN_DOUBT)
            };
            Err(CheckoutFailure {
                key_left,
                error: ShopError::down_telling(
                    "checkout",
                    Some(told.to_owned()),
                    error.to_string(),
                ),
            })
        }
    }
}

/// The order the visitor's checkout `key` placed, if it is stored, and
/// whether it is finished (confirmed).
pub async fn order_of_checkout(
    shop: &Shop,
    visitor: &Visitor,
    key: &str,
) -> Result<Option<(Order, bool)>, ShopError> {
    let find = FindOrder {
        idempotency_key: order_key(visitor.customer_id(), key),
    };
    let found = shop
        .orders
        .call(find)
        .await
        .or_unavailable("orders")?
        .map_err(|error| ShopError::down("orders", error.to_string()))?;
    Ok(found.order.map(|order| (order, found.confirmed)))
}

/// What an auth error means to the visitor: a field to correct, a sign-in
/// refused, or the auth service down (its store failed, or it is busy).
pub(crate) fn auth_error(error: AuthError) -> ShopError {
    let text = error.to_string();
    match error {
        AuthError::InvalidEmail(_) => ShopError::field(
            "email",
            "must be an email address, like someone@example.com",
        ),
        AuthError::PasswordTooShort { .. } | AuthError::PasswordTooLong { .. } => {
            ShopError::field("password", text)
        }
        AuthError::NameTooLong { .. } | AuthError::NameHasControls => {
            ShopError::field("name", text)
        }
        AuthError::EmailTaken => ShopError::Conflict(
            "an account with this email already exists: sign in instead".to_owned(),
        ),
        AuthError::WrongCredentials | AuthError::InvalidSession => ShopError::Unauthorized(text),
        AuthError::Busy => ShopError::down("auth", text),
        AuthError::Storage(detail) => ShopError::down("auth", detail),
    }
}

/// Moves what guest `guest_id` did before signing in (their cart, their
/// orders) to user `user_id`; false if either move failed (logged; both
/// are safe to try again: a second merge or claim finds nothing left to
/// move).
pub async fn adopt(shop: &Shop, guest_id: &str, user_id: &str) -> bool {
    if guest_id == user_id {
        return true;
    }
    let merged = shop
        .cart
        .call(MergeCarts {
            from_user_id: guest_id.to_owned(),
            into_user_id: user_id.to_owned(),
        })
        .await;
    let merged_ok = matches!(merged, Ok(Ok(_)));
    if !merged_ok {
        tracing::warn!(module = "frontend", result = ?merged, "the visitor's cart was not merged into the user's; it will be tried again");
    }
    let claimed = shop
        .orders
        .call(ClaimOrders {
            from_customer_id: guest_id.to_owned(),
            to_customer_id: user_id.to_owned(),
        })
        .await;
    let claimed_ok = matches!(claimed, Ok(Ok(_)));
    if !claimed_ok {
        tracing::warn!(module = "frontend", result = ?claimed, "the visitor's orders were not moved to the user; it will be tried again");
    }
    merged_ok && claimed_ok
}

/// Moves into a signed-in browser visitor's cart what their session's
/// guest cart holds: lines another tab added as a guest while this one
/// signed in, after the sign-in's merge (see docs/shop.md). The cart page
/// does it before showing the cart, so they are seen before any checkout.
/// A guest cart that is empty, the usual case, costs one read (from the
/// cart's cache, on one replica). Failures are logged and left: the page
/// shows the cart without them, and its next view tries again.
pub async fn gather_guest_lines(shop: &Shop, visitor: &Visitor) {
    let Some(user) = visitor.user.as_ref().filter(|_| visitor.token_from_cookie) else {
        return;
    };
    match shop.cart_items(&visitor.guest_id).await {
        Ok(items) if items.is_empty() => {}
        Ok(_) => {
            let merged = shop
                .cart
                .call(MergeCarts {
                    from_user_id: visitor.guest_id.clone(),
                    into_user_id: user.id.clone(),
                })
                .await;
            if !matches!(merged, Ok(Ok(_))) {
                tracing::warn!(module = "frontend", result = ?merged, "lines added as a guest after the sign-in were not moved to the user's cart; the next cart page tries again");
            }
        }
        Err(error) => {
            tracing::warn!(module = "frontend", %error, "the session's guest cart could not be read");
        }
    }
}

/// A sign-in (or sign-up) that worked.
pub struct SignedIn {
    /// The new session.
    pub session: Session,
    /// Whether the guest's cart and orders moved to the user; if not, the
    /// shop tries again on later requests (`adoption`).
    pub moved: bool,
}

/// Creates an account and signs it in.
pub async fn sign_up(
    shop: &Shop,
    visitor: &Visitor,
    name: &str,
    email: &str,
    password: &str,
) -> Result<SignedIn, ShopError> {
    let mut problems = Vec::new();
    if name.trim().is_empty() {
        problems.push(FieldError::new("name", "is required"));
    }
    if !crate::forms::is_email(email) {
        problems.push(FieldError::new(
            "email",
            "must be an email address, like someone@example.com",
        ));
    }
    // Auth's own rules, all at once: it refuses only the first, and the
    // password is not sent back to the form, to be typed again for each.
    for problem in auth::api::sign_up_problems(password, name) {
        if let ShopError::InvalidFields(fields) = auth_error(problem) {
            problems.extend(fields);
        }
    }
    if !problems.is_empty() {
        return Err(ShopError::InvalidFields(problems));
    }
    let session = shop
        .auth
        .call(SignUp {
            email: email.to_owned(),
            password: password.to_owned(),
            name: name.to_owned(),
        })
        .await
        .or_unavailable("auth")?
        .map_err(auth_error)?;
    let moved = adopt(shop, &visitor.guest_id, &session.user.id).await;
    end_replaced_session(shop, visitor).await;
    Ok(SignedIn { session, moved })
}

/// Ends the session a new sign-in (or sign-up) replaces in this browser:
/// its cookie is overwritten, and the session it named would stay valid,
/// unseen, until it expired. Best effort (logged): the new one stands. (A
/// program's token, sent in a header, is its own to keep: it may hold
/// several.)
async fn end_replaced_session(shop: &Shop, visitor: &Visitor) {
    if let Some(token) = visitor.token.as_ref().filter(|_| visitor.token_from_cookie)
        && let Err(error) = end_session(shop, token).await
    {
        tracing::warn!(module = "frontend", %error, "the session this sign-in replaces was not ended; it expires in its time");
    }
}

/// Signs in.
pub async fn sign_in(
    shop: &Shop,
    visitor: &Visitor,
    email: &str,
    password: &str,
) -> Result<SignedIn, ShopError> {
    let session = shop
        .auth
        .call(SignIn {
            email: email.to_owned(),
            password: password.to_owned(),
        })
        .await
        .or_unavailable("auth")?
        .map_err(auth_error)?;
    let moved = adopt(shop, &visitor.guest_id, &session.user.id).await;
    end_replaced_session(shop, visitor).await;
    Ok(SignedIn { session, moved })
}

/// Ends the visitor's sign-in, if they are signed in.
pub async fn sign_out(shop: &Shop, visitor: &Visitor) -> Result<(), ShopError> {
    match &visitor.token {
        Some(token) => end_session(shop, token).await,
        None => Ok(()),
    }
}

/// Ends the session of `token` in the auth module (an unknown or expired
/// one is already ended).
pub async fn end_session(shop: &Shop, token: &str) -> Result<(), ShopError> {
    match shop
        .auth
        .call(SignOut {
            token: token.to_owned(),
        })
        .await
        .or_unavailable("auth")?
    {
        Ok(_) | Err(AuthError::InvalidSession) => Ok(()),
        Err(error) => Err(auth_error(error)),
    }
}
