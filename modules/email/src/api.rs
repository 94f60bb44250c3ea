//! The email service's API.

use orders::api::Order;
use serde::{Deserialize, Serialize};

/// Sends the confirmation of `order` to `email`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendOrderConfirmation {
    /// The recipient.
    pub email: String,
    /// The order.
    pub order: Order,
}

/// Lists the most recent emails sent, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSentEmails {
    /// Only those to this address (empty: all).
    #[serde(default)]
    pub to: String,
    /// At most this many, the newest (none given: [`DEFAULT_LISTED`]): a
    /// thousand kept emails of long orders would not fit in one answer.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// How many emails [`ListSentEmails`] gives when it is not told.
pub const DEFAULT_LISTED: usize = 100;

/// An email as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentEmail {
    /// The recipient.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
    /// When, in milliseconds since the Unix epoch.
    pub sent_at: i64,
}

/// Recent emails, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSentEmailsResponse {
    /// The emails.
    pub emails: Vec<SentEmail>,
}

/// Why an email was not sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum EmailError {
    /// Not an email address.
    #[error("'{0}' is not an email address")]
    InvalidAddress(String),
    /// The template could not be rendered.
    #[error("the email could not be rendered: {0}")]
    Render(String),
    /// The sink refused the email.
    #[error("the email could not be sent: {0}")]
    SinkFailed(String),
}

/// True for an address the email module sends to: one `@`, a local
/// part, and a domain with a dot (not first or last); no spaces; at most
/// 254 bytes. Forms and checkout check addresses with it, so that an
/// order is never placed with an address its confirmation cannot go to.
pub fn is_address(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    address.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !address.contains(|c: char| c.is_whitespace() || c.is_control())
}

runtime::service! {
    /// Order confirmation emails: the `email` module's service.
    pub Email = "email", error EmailError {
        SendOrderConfirmation -> runtime::Empty,
        ListSentEmails -> ListSentEmailsResponse [idempotent],
    }
}
