//! What can go wrong in a request, and how each failure is answered: a page
//! a person understands (HTML routes) or a JSON error (`/api/v1`), always
//! with the status that says what happened.
//!
//! | failure | status |
//! |---|---|
//! | an unknown product, order or page | 404 |
//! | a method the address does not take (`Allow` names those it does) | 405 |
//! | a form or body field that breaks a rule (each field named) | 422 |
//! | a body that cannot be read at all; an API query parameter the route does not take | 400 |
//! | an API body that is not JSON; a page's form sent as `multipart/form-data` | 415 |
//! | a cross-site form post | 403 |
//! | wrong email or password; an API call that needs a signed-in user, or whose `Bearer` token names no session | 401 |
//! | a declined card (the reason given) | 402 |
//! | checking out an empty cart, or a checkout that is used up (its charge refunded or cancelled); an email already registered; a cart holding a product no longer sold (the page offers to empty it) | 409 |
//! | a module that is down or does not answer | 503 |
//! | anything else a module refuses | 500 |
//!
//! Handlers return [`ShopError`]; the middlewares [`render_html_errors`]
//! and [`render_json_errors`] turn it into the body.

use actix_web::ResponseError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use askama::Template;
use runtime::CallError;
use serde::Serialize;

/// One field of a form or body, and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name, as in the form.
    pub field: String,
    /// The rule, in words.
    pub reason: String,
}

impl FieldError {
    /// `field` breaks `reason`.
    pub fn new(field: &str, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    /// There is no such product, order or page.
    #[error("{0}")]
    NotFound(String),
    /// The address exists, but not for this method.
    #[error("{path} does not take {method}; it takes {allowed}")]
    MethodNotAllowed {
        /// The method asked for.
        method: String,
        /// The address.
        path: String,
        /// The methods it takes, as the `Allow` header lists them.
        allowed: String,
    },
    /// Fields break rules.
    #[error("{}", describe_fields(.0))]
    InvalidFields(Vec<FieldError>),
    /// The body cannot be read.
    #[error("{0}")]
    BadRequest(String),
    /// The body is not in a form this endpoint reads.
    #[error("{0}")]
    UnsupportedBody(String),
    /// A form post, or a sign-out link, from another site.
    #[error("this request was sent from another site, so it was refused")]
    CrossSite,
    /// Not signed in, or the wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The card was declined; nothing was charged.
    #[error("{0}")]
    PaymentDeclined(String),
    /// The request conflicts with what is stored (an empty cart, an email
    /// already registered).
    #[error("{0}")]
    Conflict(String),
    /// The cart holds a product the catalog no longer sells (the products
    /// file changed): nothing priced can show it, and the customer's way
    /// out is to empty the cart, which the error page offers.
    #[error("product {0} in your cart is no longer sold; please empty your cart")]
    UnsoldInCart(String),
    /// A module is down or did not answer.
    #[error("{}", unavailable(service, told.as_deref()))]
    Unavailable {
        /// Which module.
        service: String,
        /// What the customer must be told, always (what became of their
        /// money in a checkout), without internals.
        told: Option<String>,
        /// What happened: the operator's, shown to visitors only with
        /// `show_error_details`.
        detail: String,
    },
    /// A module refused for a reason the customer cannot fix.
    #[error("{0}")]
    Failed(String),
}

fn unavailable(service: &str, told: Option<&str>) -> String {
    match told {
        Some(told) => format!("the {service} service is unavailable right now: {told}"),
        None => {
            format!("the {service} service is unavailable right now; please try again in a moment")
        }
    }
}

fn describe_fields(fields: &[FieldError]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.reason))
        .collect();
    format!("please correct: {}", parts.join("; "))
}

impl ShopError {
    /// A single bad field.
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        ShopError::InvalidFields(vec![FieldError::new(field, reason)])
    }

    /// `service` could not be called.
    pub fn unavailable(service: &str, error: &CallError) -> Self {
        ShopError::down(service, error.to_string())
    }

    /// `service` cannot do its part now, for the reason `detail` (its
    /// storage is down, or a step of a checkout failed with it).
    pub fn down(service: &str, detail: impl Into<String>) -> Self {
        ShopError::Unavailable {
            service: service.to_owned(),
            told: None,
            detail: detail.into(),
        }
    }

    /// [`ShopError::down`], telling the customer `told` (always shown)
    /// besides.
    pub fn down_telling(service: &str, told: Option<String>, detail: impl Into<String>) -> Self {
        ShopError::Unavailable {
            service: service.to_owned(),
            told,
            detail: detail.into(),
        }
    }

    /// What exactly failed, for the curious (shown folded away).
    fn detail(&self) -> Option<&str> {
        match self {
            ShopError::Unavailable { detail, .. } => Some(detail),
            _ => None,
        }
    }

    /// A short title for the error page.
    fn title(&self) -> &'static str {
        match self {
            ShopError::NotFound(_) => "Not found",
            ShopError::MethodNotAllowed { .. } => "Not here",
            ShopError::InvalidFields(_) => "Please check the form",
            ShopError::BadRequest(_) => "Bad request",
            ShopError::UnsupportedBody(_) => "Unsupported body",
            ShopError::CrossSite => "Refused",
            ShopError::Unauthorized(_) => "Please sign in",
            ShopError::PaymentDeclined(_) => "Your card was declined",
            ShopError::Conflict(_) => "That did not work",
            ShopError::UnsoldInCart(_) => "A product in your cart is gone",
            ShopError::Unavailable { .. } => "The shop is having trouble",
            ShopError::Failed(_) => "Something went wrong",
        }
    }
}

impl ResponseError for ShopError {
    fn status_code(&self) -> StatusCode {
        match self {
            ShopError::NotFound(_) => StatusCode::NOT_FOUND,
            ShopError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ShopError::InvalidFields(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ShopError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ShopError::UnsupportedBody(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ShopError::CrossSite => StatusCode::FORBIDDEN,
            ShopError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ShopError::PaymentDeclined(_) => StatusCode::PAYMENT_REQUIRED,
            ShopError::Conflict(_) | ShopError::UnsoldInCart(_) => StatusCode::CONFLICT,
            ShopError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ShopError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> actix_web::HttpResponse<BoxBody> {
        let mut response = actix_web::HttpResponse::build(self.status_code());
        match self {
            ShopError::MethodNotAllowed { allowed, .. } => {
                response.insert_header((header::ALLOW, allowed.as_str()));
            }
            // Every 401 names how to authenticate (RFC 9110): a Bearer
            // token, from `POST /api/v1/sessions`.
            ShopError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"boutique\""));
            }
            _ => {}
        }
        response
            .content_type("text/plain; charset=utf-8")
            .body(self.to_string())
    }
}

/// Turns `Result<Result<T, E>, CallError>` (a call's outcome) into
/// `Result<Result<T, E>, ShopError>`: a call that failed is an unavailable
/// service; the domain error is left for the caller to map.
pub trait CallOutcome<T, E> {
    /// Maps a failed call to [`ShopError::Unavailable`] naming `service`.
    fn or_unavailable(self, service: &str) -> Result<Result<T, E>, ShopError>;
}

impl<T, E> CallOutcome<T, E> for Result<Result<T, E>, CallError> {
    fn or_unavailable(self, service: &str) -> Result<Result<T, E>, ShopError> {
        self.map_err(|error| ShopError::unavailable(service, &error))
    }
}

/// What the error page shows.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: String,
    detail: Option<&'a str>,
    fields: &'a [FieldError],
    /// Offer a button that empties the cart (the way out of the error).
    offer_empty_cart: bool,
}

/// The JSON body of an API error.
#[derive(Serialize)]
struct JsonError<'a> {
    error: JsonErrorBody<'a>,
}

#[derive(Serialize)]
struct JsonErrorBody<'a> {
    status: u16,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    /// Always there: empty but for a 422.
    fields: &'a [FieldError],
}

/// A failure, from whichever layer produced it.
struct Failure<'a> {
    status: StatusCode,
    title: &'a str,
    message: String,
    detail: Option<&'a str>,
    fields: &'a [FieldError],
    offer_empty_cart: bool,
}

/// Whether visitors are shown what exactly failed (`show_error_details`).
#[derive(Debug, Clone, Copy)]
pub struct ErrorDetails(pub bool);

/// True if the server was configured to show visitors what failed.
fn details_shown(request: &actix_web::HttpRequest) -> bool {
    request
        .app_data::<actix_web::web::Data<ErrorDetails>>()
        .is_some_and(|shown| shown.0)
}

fn failure(response: &ServiceResponse<impl MessageBody>) -> Option<Failure<'_>> {
    let error = response.response().error()?;
    let status = response.status();
    Some(match error.as_error::<ShopError>() {
        Some(shop) => Failure {
            status,
            title: shop.title(),
            message: shop.to_string(),
            detail: shop.detail(),
            fields: match shop {
                ShopError::InvalidFields(fields) => fields,
                _ => &[],
            },
            offer_empty_cart: matches!(shop, ShopError::UnsoldInCart(_)),
        },
        None => Failure {
            status,
            title: status.canonical_reason().unwrap_or("Error"),
            message: error.to_string(),
            detail: None,
            fields: &[],
            offer_empty_cart: false,
        },
    })
}

fn log(request: &actix_web::HttpRequest, failure: &Failure<'_>) {
    let (method, path, status) = (
        request.method().as_str(),
        request.path(),
        failure.status.as_u16(),
    );
    // The message may quote the request (an order id, a file's path),
    // decoded: `%0A` is a line break.
    let error = runtime::text::without_control_characters(&failure.message);
    if failure.status.is_server_error() {
        let detail = failure.detail.unwrap_or_default();
        tracing::warn!(module = "frontend", method, path, status, %error, detail, "request failed");
    } else {
        tracing::info!(module = "frontend", method, path, status, %error, "request refused");
    }
}

/// Replaces the body of `response` with `body` of type `content_type`,
/// keeping its status and headers, and says no cache is to keep it: an
/// error is personal, as the pages are (it may set a session cookie), and
/// a 404 may be stored by default.
fn replace_body(
    response: ServiceResponse<impl MessageBody + 'static>,
    content_type: &'static str,
    body: String,
) -> ServiceResponse<BoxBody> {
    let mut response = response.map_body(|_, _| BoxBody::new(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Renders failures of HTML routes as the error page.
pub async fn render_html_errors(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(request).await?;
    let Some(failure) = failure(&response) else {
        return Ok(response.map_into_boxed_body());
    };
    log(response.request(), &failure);
    let page = ErrorPage {
        status: failure.status.as_u16(),
        title: failure.title,
        message: failure.message.clone(),
        detail: failure.detail.filter(|_| details_shown(response.request())),
        fields: failure.fields,
        offer_empty_cart: failure.offer_empty_cart,
    };
    // Should the template fail, the message goes as plain text: it may
    // echo the request's path, which is not to be read as HTML.
    Ok(match page.render() {
        Ok(html) => replace_body(response, "text/html; charset=utf-8", html),
        Err(_) => {
            let text = format!("{} {}", failure.status.as_u16(), failure.message);
            replace_body(response, "text/plain; charset=utf-8", text)
        }
    })
}

/// Renders failures of `/api/v1` as JSON: `{"error": {"status", "message", "fields"}}`.
pub async fn render_json_errors(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(request).await?;
    let Some(failure) = failure(&response) else {
        return Ok(response.map_into_boxed_body());
    };
    log(response.request(), &failure);
    let body = JsonError {
        error: JsonErrorBody {
            status: failure.status.as_u16(),
            message: failure.message.clone(),
            detail: failure.detail.filter(|_| details_shown(response.request())),
            fields: failure.fields,
        },
    };
    let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned());
    Ok(replace_body(response, "application/json", json))
}
