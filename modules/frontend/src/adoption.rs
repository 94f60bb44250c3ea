//! Moving a guest's cart and orders to the account they sign in to, until
//! it has worked.
//!
//! Signing in merges the guest's cart (`guest:` and the session id) into
//! the user's and moves the guest's orders. If the cart or orders module
//! cannot be reached then, the sign-in still succeeds (the user is who
//! they say), and the response also sets `shop_adopt=pending`. Every later
//! request of a signed-in visitor carrying it tries the move again, before
//! the page is built (so the page shows the merged cart), and the cookie
//! goes once the move has worked, or once the sign-in it was for has ended
//! (signing in again moves the guest's cart then). Both moves are safe to
//! repeat: what has moved is no longer the guest's to move again.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, web};
use auth::api::{AuthError, Authenticate};

use crate::actions::{self, SignedIn};
use crate::error::ShopError;
use crate::shop::Shop;
use crate::visitor::{
    ADOPT_COOKIE, SessionId, adopt_cookie, auth_cookie, guest_id, removed_cookie, token,
};

/// Sets the cookies of a sign-in: the session's, and [`ADOPT_COOKIE`] if
/// the guest's cart and orders are still to be moved.
pub fn set_cookies(response: &mut HttpResponse, signed: &SignedIn) -> Result<(), ShopError> {
    fn failed(e: impl std::fmt::Display) -> ShopError {
        ShopError::Failed(e.to_string())
    }
    response
        .add_cookie(&auth_cookie(&signed.session))
        .map_err(failed)?;
    if !signed.moved {
        response
            .add_cookie(&adopt_cookie(&signed.session))
            .map_err(failed)?;
    }
    Ok(())
}

/// The middleware: tries a pending move again (see the module docs).
pub async fn adopt_later(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let pending = request.cookie(ADOPT_COOKIE).is_some()
        // A page's assets carry the cookie too, but no session (see
        // `sessions`): the page itself does the work.
        && !crate::visitor::is_sessionless(&request);
    let done = pending && try_again(&request).await;
    let mut response = next.call(request).await?;
    // A response that sets the cookie itself (a sign-in whose move failed
    // again) has the last word.
    let sets_it = response
        .response()
        .cookies()
        .any(|cookie| cookie.name() == ADOPT_COOKIE);
    if done && !sets_it {
        response
            .response_mut()
            .add_cookie(&removed_cookie(ADOPT_COOKIE))
            .map_err(actix_web::error::ErrorInternalServerError)?;
    }
    Ok(response)
}

/// Tries the move for the visitor of `request`; true when there is nothing
/// left to do (moved, or the sign-in it was for has ended).
async fn try_again(request: &ServiceRequest) -> bool {
    let (Some(shop), Some(session)) = (
        request.app_data::<web::Data<Shop>>().cloned(),
        request.extensions().get::<SessionId>().cloned(),
    ) else {
        // Not a request a visitor's session reaches: leave it be.
        return false;
    };
    let Some(token) = token(request.request()) else {
        // Signed out: nothing to move to (signing in again moves it).
        return true;
    };
    match shop.auth.call(Authenticate { token }).await {
        Ok(Ok(user)) => actions::adopt(&shop, &guest_id(&session.0), &user.id).await,
        Ok(Err(AuthError::InvalidSession)) => true,
        // Auth cannot say who it is now: next time.
        _ => false,
    }
}
