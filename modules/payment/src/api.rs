//! The payment service's API.

use currency::api::{Money, MoneyError};
use serde::{Deserialize, Serialize};

/// A credit card, as the checkout form gives it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditCardInfo {
    /// The number; spaces and dashes are ignored.
    pub credit_card_number: String,
    /// The security code.
    pub credit_card_cvv: i32,
    /// Expiry year, e.g. 2030.
    pub credit_card_expiration_year: i32,
    /// Expiry month, 1 to 12.
    pub credit_card_expiration_month: i32,
}

impl std::fmt::Debug for CreditCardInfo {
    /// Never the number or the code, in logs or anywhere else.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits: String = self
            .credit_card_number
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let last4 = &digits[digits.len().saturating_sub(4)..];
        write!(
            f,
            "CreditCardInfo(…{last4}, expires {}/{})",
            self.credit_card_expiration_month, self.credit_card_expiration_year
        )
    }
}

/// Charges `amount` to `credit_card`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    /// How much.
    pub amount: Money,
    /// The card.
    pub credit_card: CreditCardInfo,
    /// Identifies the payment: charging the same key again returns the first
    /// charge. Empty: a one-off charge.
    #[serde(default)]
    pub idempotency_key: String,
    /// Which attempt at the payment this is (the caller's choice, e.g. one
    /// per checkout submission): it holds the charge it makes or gets
    /// back, until it lets go with [`CancelCharge`]. Required with an
    /// idempotency key ([`PaymentError::AttemptMissing`]): two callers
    /// that both left it out would share one hold, and either's
    /// cancellation would refund what the other paid for.
    #[serde(default)]
    pub attempt: String,
}

/// A successful charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeResponse {
    /// The charge's id.
    pub transaction_id: String,
}

/// Gives the money of a charge back, whoever made it (for a person
/// settling the ledger; a caller that retries under a key uses
/// [`CancelCharge`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refund {
    /// The charge.
    pub transaction_id: String,
    /// Why, for the record.
    pub reason: String,
}

/// Cancels the charge under a key as far as one attempt is concerned:
/// because that attempt's `Charge` outcome is unknown (the call was lost
/// or timed out), or because a later step of what it paid for failed for
/// certain. If no charge was made under the key, none can be any more (a
/// `Charge` with the key arriving late is refused as
/// [`PaymentError::Cancelled`]). If one was, the attempt lets go of its
/// hold on it (an attempt holds the charge it made, and one whose
/// `Charge` got it back), and the charge is refunded once no attempt
/// holds it: while another does, what that attempt paid for may exist.
/// An attempt that let go takes nothing up afterwards (its own `Charge`
/// arriving late is refused as [`PaymentError::Cancelled`]), and a
/// `Charge` refused for another amount holds nothing. Use this rather
/// than [`Refund`] by transaction id whenever several attempts may share
/// a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelCharge {
    /// The key of the charge.
    pub idempotency_key: String,
    /// The attempt whose charge is in doubt (as in its [`Charge`]).
    pub attempt: String,
    /// The amount that charge was for (recorded with the cancellation).
    pub amount: Money,
    /// Why, for the record.
    pub reason: String,
}

/// What the cancellation found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelChargeResponse {
    /// How the charge under the key stands now.
    pub outcome: Cancellation,
}

/// How a charge stands after [`CancelCharge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cancellation {
    /// No charge was made under the key, and none can be.
    NeverCharged,
    /// The charge under the key is refunded (now, or before).
    Refunded,
    /// Another attempt holds the charge under the key (made it, or got
    /// it back from its `Charge`, and has not let go); it stands.
    KeptForAnotherAttempt,
}

impl Cancellation {
    /// True if no money is taken under the key.
    pub fn nothing_charged(self) -> bool {
        !matches!(self, Cancellation::KeptForAnotherAttempt)
    }
}

/// Lists recorded charges, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListCharges {
    /// Only the charge with this idempotency key (empty: all).
    #[serde(default)]
    pub idempotency_key: String,
    /// At most this many (capped at 1000).
    #[serde(default = "default_limit")]
    pub limit: u32,
}

fn default_limit() -> u32 {
    100
}

/// A charge as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRecord {
    /// Its id.
    pub transaction_id: String,
    /// Its idempotency key.
    pub idempotency_key: String,
    /// How much.
    pub amount: Money,
    /// `visa` or `mastercard`.
    pub card_type: String,
    /// The card number's last four digits.
    pub card_last4: String,
    /// Charged, refunded, or cancelled before it was made.
    pub status: ChargeStatus,
    /// When, in milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// Where a charge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeStatus {
    /// The money was taken.
    Charged,
    /// The money was given back.
    Refunded,
    /// Never made: the key was cancelled before a charge came
    /// ([`CancelCharge`]); no money moved.
    Cancelled,
}

/// Recorded charges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListChargesResponse {
    /// Newest first.
    pub charges: Vec<ChargeRecord>,
}

/// Why a card was not charged, or a refund not made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PaymentError {
    /// Not a valid card number (unknown type, Luhn check or length).
    #[error("Credit card info is invalid")]
    InvalidCard,
    /// A valid card of a type this shop does not take.
    #[error(
        "Sorry, we cannot process {card_type} credit cards. Only VISA or MasterCard is accepted."
    )]
    UnsupportedCard {
        /// The card's type, e.g. `amex`.
        card_type: String,
    },
    /// The card has expired.
    #[error("Your credit card (ending {last4}) expired on {month}/{year}")]
    Expired {
        /// The number's last four digits.
        last4: String,
        /// Expiry month.
        month: i32,
        /// Expiry year.
        year: i32,
    },
    /// The expiry month is not 1 to 12.
    #[error("the expiry month {month} is not 1 to 12")]
    InvalidExpiry {
        /// The month given.
        month: i32,
    },
    /// The security code is not a number from 0 to 9999 (three or four
    /// digits, leading zeros included).
    #[error("the security code must be three or four digits")]
    InvalidCvv,
    /// The amount breaks the money rules.
    #[error("invalid amount: {0}")]
    InvalidAmount(MoneyError),
    /// The amount is below zero.
    #[error("cannot charge a negative amount")]
    NegativeAmount,
    /// The idempotency key was used for a different charge.
    #[error("idempotency key {key} was already used for a charge of {charged}")]
    KeyReused {
        /// The key.
        key: String,
        /// What was charged under it.
        charged: Money,
    },
    /// The charge under this idempotency key was refunded; start afresh.
    #[error("the charge under idempotency key {key} was refunded")]
    AlreadyRefunded {
        /// The key.
        key: String,
    },
    /// The charge under this idempotency key was cancelled before it was
    /// made; start afresh.
    #[error("the charge under idempotency key {key} was cancelled")]
    Cancelled {
        /// The key.
        key: String,
    },
    /// A [`Charge`] or [`CancelCharge`] under an idempotency key names no
    /// attempt.
    #[error(
        "idempotency key {key} was given without an attempt: name the attempt (e.g. one id \
         per checkout submission); it holds the charge until it lets go with CancelCharge"
    )]
    AttemptMissing {
        /// The key.
        key: String,
    },
    /// A [`CancelCharge`] names no idempotency key.
    #[error("CancelCharge needs the idempotency key of the charge it cancels")]
    KeyMissing,
    /// No charge has this id.
    #[error("no charge with id {transaction_id}")]
    UnknownTransaction {
        /// The id given.
        transaction_id: String,
    },
    /// The charge record could not be read or written.
    #[error("the payment ledger is unavailable: {0}")]
    Storage(String),
}

runtime::service! {
    /// Card payments: the `payment` module's service.
    pub Payment = "payment", error PaymentError {
        Charge -> ChargeResponse,
        Refund -> runtime::Empty,
        ListCharges -> ListChargesResponse [idempotent],
        CancelCharge -> CancelChargeResponse [idempotent],
    }
}

/// True if `digits` is all ASCII digits, at least one, and passes the Luhn
/// check, as payment checks card numbers: for forms that check a number
/// before they send it.
pub fn passes_luhn(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}
