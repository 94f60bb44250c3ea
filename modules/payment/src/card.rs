//! Card checks, in the order Online Boutique's `simple-card-validator` makes
//! them: normalise, find the type from the first matching prefix rule, then
//! the number is valid only if the type is known, it passes Luhn, and its
//! length is one the type allows. Only `visa` and `mastercard` are taken,
//! and a card is good through the end of its expiry month.

use crate::api::{CreditCardInfo, PaymentError};

/// A prefix rule: the number's first `digits` digits, read as a number, are
/// in `from..=to`.
struct Prefix {
    digits: usize,
    from: u64,
    to: u64,
}

const fn p(digits: usize, from: u64, to: u64) -> Prefix {
    Prefix { digits, from, to }
}

struct CardType {
    name: &'static str,
    prefixes: &'static [Prefix],
    lengths: (usize, usize),
}

/// The types, in the order they are tried: the first match wins, so
/// visa_electron's prefixes are taken before visa's.
const TYPES: &[CardType] = &[
    CardType {
        name: "amex",
        prefixes: &[p(2, 34, 34), p(2, 37, 37)],
        lengths: (15, 15),
    },
    CardType {
        name: "diners_club_carte_blanche",
        prefixes: &[p(3, 300, 305)],
        lengths: (14, 14),
    },
    CardType {
        name: "diners_club_international",
        prefixes: &[p(2, 36, 36), p(2, 38, 39), p(3, 309, 309)],
        lengths: (14, 14),
    },
    CardType {
        name: "jcb",
        prefixes: &[p(4, 3528, 3589)],
        lengths: (16, 16),
    },
    CardType {
        name: "laser",
        prefixes: &[
            p(4, 6304, 6304),
            p(4, 6706, 6706),
            p(4, 6709, 6709),
            p(4, 6771, 6771),
        ],
        lengths: (16, 19),
    },
    CardType {
        name: "visa_electron",
        prefixes: &[
            p(4, 4026, 4026),
            p(6, 417500, 417500),
            p(4, 4508, 4508),
            p(4, 4844, 4844),
            p(4, 4913, 4913),
            p(4, 4917, 4917),
        ],
        lengths: (16, 16),
    },
    CardType {
        name: "visa",
        prefixes: &[p(1, 4, 4)],
        lengths: (16, 16),
    },
    CardType {
        name: "mastercard",
        prefixes: &[p(2, 51, 55)],
        lengths: (16, 16),
    },
    CardType {
        name: "maestro",
        prefixes: &[
            p(4, 5018, 5018),
            p(4, 5020, 5020),
            p(4, 5038, 5038),
            p(4, 6304, 6304),
            p(4, 6759, 6759),
            p(4, 6761, 6763),
        ],
        lengths: (12, 19),
    },
    CardType {
        name: "rupay",
        prefixes: &[
            p(6, 508500, 508999),
            p(6, 606985, 607984),
            p(6, 608000, 608500),
            p(6, 652150, 653149),
        ],
        lengths: (16, 16),
    },
    CardType {
        name: "discover",
        prefixes: &[p(4, 6011, 6011), p(6, 622126, 622925), p(2, 65, 65)],
        lengths: (16, 16),
    },
];

/// What a checked card is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCard {
    /// `visa` or `mastercard`.
    pub card_type: &'static str,
    /// The number's last four digits.
    pub last4: String,
}

fn card_type(digits: &str) -> Option<&'static CardType> {
    TYPES.iter().find(|t| {
        t.prefixes.iter().any(|prefix| {
            digits
                .get(..prefix.digits)
                .and_then(|head| head.parse::<u64>().ok())
                .is_some_and(|head| (prefix.from..=prefix.to).contains(&head))
        })
    })
}

/// Checks `card` on `today` (year, month).
pub fn check(card: &CreditCardInfo, today: (i32, i32)) -> Result<CheckedCard, PaymentError> {
    let digits: String = card
        .credit_card_number
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect();
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PaymentError::InvalidCard);
    }
    let Some(kind) = card_type(&digits) else {
        return Err(PaymentError::InvalidCard);
    };
    let (min, max) = kind.lengths;
    if !crate::api::passes_luhn(&digits) || !(min..=max).contains(&digits.len()) {
        return Err(PaymentError::InvalidCard);
    }
    if kind.name != "visa" && kind.name != "mastercard" {
        return Err(PaymentError::UnsupportedCard {
            card_type: kind.name.to_owned(),
        });
    }
    let (year, month) = (
        card.credit_card_expiration_year,
        card.credit_card_expiration_month,
    );
    if !(1..=12).contains(&month) {
        return Err(PaymentError::InvalidExpiry { month });
    }
    let last4 = digits[digits.len() - 4..].to_owned();
    let (now_year, now_month) = today;
    if i64::from(now_year) * 12 + i64::from(now_month) > i64::from(year) * 12 + i64::from(month) {
        return Err(PaymentError::Expired { last4, month, year });
    }
    // Three or four digits, leading zeros included: the API carries the
    // code as an int32, so "042" arrives as 42 and is a code a card has
    // (the Weaver port's "from 100" declined about one card in ten).
    if !(0..=9999).contains(&card.credit_card_cvv) {
        return Err(PaymentError::InvalidCvv);
    }
    Ok(CheckedCard {
        card_type: kind.name,
        last4,
    })
}

/// Today's (year, month), in UTC.
pub fn today() -> (i32, i32) {
    let date = runtime::wall_clock::utc_date(runtime::wall_clock::unix_ms());
    (
        i32::try_from(date.year).unwrap_or(i32::MAX),
        i32::try_from(date.month).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(number: &str, month: i32, year: i32) -> CreditCardInfo {
        CreditCardInfo {
            credit_card_number: number.into(),
            credit_card_cvv: 672,
            credit_card_expiration_year: year,
            credit_card_expiration_month: month,
        }
    }

    const TODAY: (i32, i32) = (2026, 11);

    #[test]
    fn the_default_form_card_is_a_good_visa() {
        let checked = check(&card("4432801561520454", 1, 2027), TODAY).unwrap();
        assert_eq!(
            checked,
            CheckedCard {
                card_type: "visa",
                last4: "0454".into()
            }
        );
        // Spaces and dashes are ignored.
        assert!(check(&card("4432-8015-6152-0454", 1, 2027), TODAY).is_ok());
        assert!(check(&card("4432 8015 6152 0454", 1, 2027), TODAY).is_ok());
    }

    #[test]
    fn mastercard_is_taken() {
        assert_eq!(
            check(&card("5555555555554444", 1, 2030), TODAY)
                .unwrap()
                .card_type,
            "mastercard"
        );
    }

    #[test]
    fn other_types_are_refused_by_name() {
        let refused = |number: &str| check(&card(number, 1, 2030), TODAY).unwrap_err();
        assert_eq!(
            refused("378282246310005"),
            PaymentError::UnsupportedCard {
                card_type: "amex".into()
            }
        );
        assert_eq!(
            refused("6011111111111117"),
            PaymentError::UnsupportedCard {
                card_type: "discover".into()
            }
        );
        assert_eq!(
            refused("3530111333300000"),
            PaymentError::UnsupportedCard {
                card_type: "jcb".into()
            }
        );
        // visa_electron prefixes are tried before visa.
        assert_eq!(
            refused("4026000000000002"),
            PaymentError::UnsupportedCard {
                card_type: "visa_electron".into()
            }
        );
    }

    #[test]
    fn bad_numbers_are_invalid() {
        let invalid = |number: &str| check(&card(number, 1, 2030), TODAY).unwrap_err();
        assert_eq!(invalid("4432801561520455"), PaymentError::InvalidCard); // Luhn
        assert_eq!(invalid("4111111111111"), PaymentError::InvalidCard); // 13-digit visa
        assert_eq!(invalid("4111111111111111110"), PaymentError::InvalidCard); // 19-digit visa
        assert_eq!(invalid("2221000000000009"), PaymentError::InvalidCard); // 2-series: unknown
        assert_eq!(invalid("abcd"), PaymentError::InvalidCard);
        assert_eq!(invalid(""), PaymentError::InvalidCard);
    }

    #[test]
    fn a_card_is_good_through_its_expiry_month() {
        assert!(check(&card("4432801561520454", 11, 2026), TODAY).is_ok());
        assert_eq!(
            check(&card("4432801561520454", 10, 2026), TODAY).unwrap_err(),
            PaymentError::Expired {
                last4: "0454".into(),
                month: 10,
                year: 2026
            }
        );
        assert_eq!(
            check(&card("4432801561520454", 13, 2030), TODAY).unwrap_err(),
            PaymentError::InvalidExpiry { month: 13 }
        );
    }

    #[test]
    fn the_security_code_must_be_three_or_four_digits() {
        let mut bad = card("4432801561520454", 1, 2030);
        for cvv in [-1, 10_000, i32::MAX] {
            bad.credit_card_cvv = cvv;
            assert_eq!(check(&bad, TODAY).unwrap_err(), PaymentError::InvalidCvv);
        }
        // A code with leading zeros ("042", "007") arrives as a small int.
        for cvv in [42, 7, 0, 9999] {
            bad.credit_card_cvv = cvv;
            assert!(check(&bad, TODAY).is_ok(), "{cvv}");
        }
    }
}
