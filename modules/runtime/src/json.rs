//! Calling a service with JSON instead of Rust types, for `boutique call` and
//! other scripts.
//!
//! The JSON of a message uses the message's own field names (snake_case, as in
//! the Online Boutique API), so
//! `{"from":{"currency_code":"USD","units":19,"nanos":990000000},"to_code":"EUR"}`
//! is a `currency` `Convert`. The call itself is an ordinary typed call; JSON
//! is only converted at the edges.

use crate::dispatch::BoxFuture;
use crate::error::CallError;
use crate::service::{Request, Service};
use crate::service_ref::ServiceRef;

/// A call of one message of `S`, from JSON to JSON.
pub type JsonCall<S> =
    fn(&ServiceRef<S>, serde_json::Value) -> BoxFuture<Result<JsonReply, JsonCallError>>;

/// What the service answered, as JSON text (fields in declaration order).
#[derive(Debug, Clone, PartialEq)]
pub enum JsonReply {
    /// The successful reply, pretty-printed.
    Ok(String),
    /// The service's domain error, as JSON and as its message for people.
    DomainError {
        /// The error value, on one line.
        error: String,
        /// The error's `Display`.
        message: String,
    },
}

/// Why a JSON call produced no answer from the service.
#[derive(Debug, thiserror::Error)]
pub enum JsonCallError {
    /// No service of that name.
    #[error("unknown service '{service}'; the services are: {known}")]
    UnknownService {
        /// The name given.
        service: String,
        /// The services there are, comma-separated.
        known: String,
    },
    /// The service has no message of that name.
    #[error("service {service} has no message '{message}'; its messages are: {known}")]
    UnknownMessage {
        /// The service.
        service: String,
        /// The name given.
        message: String,
        /// The messages it has, comma-separated.
        known: String,
    },
    /// The JSON is not a valid message of that type.
    #[error("the JSON is not a valid {service} {message}: {detail}")]
    BadInput {
        /// The service.
        service: String,
        /// The message.
        message: String,
        /// What serde said.
        detail: String,
    },
    /// The call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The reply could not be shown as JSON.
    #[error("the reply could not be converted to JSON: {0}")]
    Output(String),
}

/// `input` as an `M`, or why it is not one.
fn parse<M: Request>(input: &serde_json::Value) -> Result<M, JsonCallError> {
    // Through serde_path_to_error, so that the error names the field
    // (`from.units: invalid type: ...`), not only what was wrong.
    serde_path_to_error::deserialize(input).map_err(|e| JsonCallError::BadInput {
        service: <M::Service as Service>::NAME.to_owned(),
        message: M::NAME.to_owned(),
        detail: e.to_string(),
    })
}

/// Whether `input` is an `M`: [`JsonCallError::BadInput`] if not.
pub(crate) fn check<M: Request>(input: &serde_json::Value) -> Result<(), JsonCallError> {
    parse::<M>(input).map(drop)
}

/// Calls `M` with a message parsed from `input`.
pub(crate) fn call<M: Request>(
    service: &ServiceRef<M::Service>,
    input: serde_json::Value,
) -> BoxFuture<Result<JsonReply, JsonCallError>> {
    let service = service.clone();
    Box::pin(async move {
        let message: M = parse(&input)?;
        let output = |e: serde_json::Error| JsonCallError::Output(e.to_string());
        match service.call(message).await? {
            Ok(reply) => Ok(JsonReply::Ok(
                serde_json::to_string_pretty(&reply).map_err(output)?,
            )),
            Err(error) => Ok(JsonReply::DomainError {
                message: error.to_string(),
                error: serde_json::to_string(&error).map_err(output)?,
            }),
        }
    })
}
