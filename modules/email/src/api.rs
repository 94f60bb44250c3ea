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

/// True for an address the email module sends to, in the common form of
/// RFC 5321/5322 (what a mail server takes without quoting):
///
/// - a local part of at most 64 bytes: letters, digits and
///   ``!#$%&'*+-/=?^_`{|}~``, in dot-separated pieces, none empty (no dot
///   first, last or doubled);
/// - `@`, then a domain of at least two dot-separated labels, each of 1 to
///   63 bytes of letters, digits and `-`, not starting or ending with `-`;
/// - at most 254 bytes in all.
///
/// Any character beyond ASCII that is no space, control, or character
/// that shows nothing (a zero-width space, a direction mark: Unicode's
/// default-ignorable code points) counts as a letter (internationalised
/// addresses, RFC 6531: accents, combining marks and every script); a label's 63 are counted in UTF-8 bytes, not in its
/// punycode form. Quoted local parts (`"a b"@x.org`) and address literals
/// (`a@[192.0.2.1]`) are refused: rare, and a header written with them
/// unquoted means something else (`x,y@b.com` is two recipients).
/// Forms, checkout and sign-up check addresses with it, so that an order
/// is never placed with an address its confirmation cannot go to.
pub fn is_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    address.len() <= 254 && is_local_part(local) && is_domain(domain)
}

/// The part before the `@`: dot-atom text (RFC 5322 `atext` and dots).
fn is_local_part(local: &str) -> bool {
    let atext = |c: char| letter_or_digit(c) || "!#$%&'*+-/=?^_`{|}~".contains(c);
    local.len() <= 64
        && local
            .split('.')
            .all(|piece| !piece.is_empty() && piece.chars().all(atext))
}

/// The part after the `@`: host name labels (RFC 1035, letters beyond
/// ASCII allowed), at least two.
fn is_domain(domain: &str) -> bool {
    let label = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| letter_or_digit(c) || c == '-')
    };
    // At least two labels: a dot, and every label whole.
    domain.contains('.') && domain.split('.').all(label)
}

/// An ASCII letter or digit, or a character beyond ASCII that is neither
/// space nor control, and shows something.
fn letter_or_digit(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || (!c.is_ascii() && !c.is_whitespace() && !c.is_control() && !is_invisible(c))
}

/// Unicode's default-ignorable code points (zero-width spaces and joiners,
/// direction marks and overrides, the byte order mark, variation
/// selectors, tags, Hangul fillers): `ada\u{200B}@example.com` read as
/// `ada@example.com` and was another account, its confirmations
/// undeliverable.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

runtime::service! {
    /// Order confirmation emails: the `email` module's service.
    pub Email = "email", error EmailError {
        SendOrderConfirmation -> runtime::Empty,
        ListSentEmails -> ListSentEmailsResponse [idempotent],
    }
}
