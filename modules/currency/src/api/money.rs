//! Money: an amount in one currency, as whole units plus nanos (10⁻⁹ units).
//!
//! Same shape as Online Boutique's `Money`, with its rule that `units` and
//! `nanos` have the same sign (either may be zero) and `|nanos| < 10⁹`.
//! Arithmetic is exact: everything goes through `i128` total nanos, so the
//! original's `Money.Sum` bug (0.20 + 0.30 giving an invalid value) cannot
//! happen here.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Nanos in one unit.
pub const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// An amount of money in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// ISO 4217 code, e.g. `USD`.
    pub currency_code: String,
    /// Whole units (0 if left out, as proto3's JSON leaves out a zero).
    #[serde(default)]
    pub units: i64,
    /// Billionths of a unit, same sign as `units` (0 if left out).
    #[serde(default)]
    pub nanos: i32,
}

/// An amount that breaks the money rules, or arithmetic that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MoneyError {
    /// `nanos` is outside ±999,999,999.
    #[error("nanos {nanos} is outside -999999999..=999999999")]
    NanosOutOfRange {
        /// The nanos given.
        nanos: i32,
    },
    /// `units` and `nanos` have different signs.
    #[error("units {units} and nanos {nanos} have different signs")]
    SignMismatch {
        /// The units given.
        units: i64,
        /// The nanos given.
        nanos: i32,
    },
    /// The currency code is not three capital letters.
    #[error("'{code}' is not a currency code (three capital letters, e.g. USD)")]
    BadCurrencyCode {
        /// The code given.
        code: String,
    },
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {left} with {right}")]
    CurrencyMismatch {
        /// One currency.
        left: String,
        /// The other.
        right: String,
    },
    /// The result does not fit.
    #[error("the amount is too large")]
    Overflow,
}

impl Money {
    /// An amount; not checked (see [`Money::validate`]).
    pub fn new(currency_code: impl Into<String>, units: i64, nanos: i32) -> Money {
        Money {
            currency_code: currency_code.into(),
            units,
            nanos,
        }
    }

    /// Zero in `currency_code`.
    pub fn zero(currency_code: impl Into<String>) -> Money {
        Money::new(currency_code, 0, 0)
    }

    /// The amount from a total of nanos.
    pub fn from_total_nanos(
        currency_code: impl Into<String>,
        total: i128,
    ) -> Result<Money, MoneyError> {
        let units = i64::try_from(total / NANOS_PER_UNIT).map_err(|_| MoneyError::Overflow)?;
        let nanos = i32::try_from(total % NANOS_PER_UNIT).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::new(currency_code, units, nanos))
    }

    /// The whole amount in nanos.
    pub fn total_nanos(&self) -> i128 {
        i128::from(self.units) * NANOS_PER_UNIT + i128::from(self.nanos)
    }

    /// Checks the currency code, the nanos range and the sign rule.
    pub fn validate(&self) -> Result<(), MoneyError> {
        let code = self.currency_code.as_bytes();
        if code.len() != 3 || !code.iter().all(u8::is_ascii_uppercase) {
            return Err(MoneyError::BadCurrencyCode {
                code: self.currency_code.clone(),
            });
        }
        if !(-999_999_999..=999_999_999).contains(&self.nanos) {
            return Err(MoneyError::NanosOutOfRange { nanos: self.nanos });
        }
        if (self.units > 0 && self.nanos < 0) || (self.units < 0 && self.nanos > 0) {
            return Err(MoneyError::SignMismatch {
                units: self.units,
                nanos: self.nanos,
            });
        }
        Ok(())
    }

    /// True for an amount below zero.
    pub fn is_negative(&self) -> bool {
        self.total_nanos() < 0
    }

    /// The sum of two amounts in the same currency.
    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        if self.currency_code != other.currency_code {
            return Err(MoneyError::CurrencyMismatch {
                left: self.currency_code.clone(),
                right: other.currency_code.clone(),
            });
        }
        let total = self
            .total_nanos()
            .checked_add(other.total_nanos())
            .ok_or(MoneyError::Overflow)?;
        Money::from_total_nanos(self.currency_code.clone(), total)
    }

    /// The amount times `factor` (zero gives zero, unlike the original's `MultiplySlow`).
    pub fn checked_mul(&self, factor: i64) -> Result<Money, MoneyError> {
        let total = self
            .total_nanos()
            .checked_mul(i128::from(factor))
            .ok_or(MoneyError::Overflow)?;
        Money::from_total_nanos(self.currency_code.clone(), total)
    }
}

impl Money {
    /// The amount rounded to whole cents, halves away from zero. The shop
    /// rounds every converted price this way before it shows or charges
    /// it, so a shown total is always the sum of the shown lines (the
    /// original showed nanos truncated, and could be a cent off).
    pub fn round_to_cents(&self) -> Result<Money, MoneyError> {
        const CENT: i128 = NANOS_PER_UNIT / 100;
        let total = self.total_nanos();
        let half = if total < 0 { -CENT / 2 } else { CENT / 2 };
        let rounded = (total + half) / CENT * CENT;
        Money::from_total_nanos(self.currency_code.clone(), rounded)
    }

    /// The amount as the shop shows it: the currency's symbol, the units,
    /// and two digits of cents, truncated (Online Boutique's rule):
    /// `$19.99`, `€17.68`, `¥2235.06`. Currencies without a symbol here show
    /// their code: `CHF 21.77`.
    pub fn display(&self) -> String {
        let symbol = match self.currency_code.as_str() {
            "USD" | "CAD" => "$",
            "EUR" => "€",
            "JPY" => "¥",
            "GBP" => "£",
            "TRY" => "₺",
            _ => "",
        };
        let total = self.total_nanos();
        let sign = if total < 0 { "-" } else { "" };
        let total = total.unsigned_abs();
        let units = total / NANOS_PER_UNIT.unsigned_abs();
        let cents = (total % NANOS_PER_UNIT.unsigned_abs()) / 10_000_000;
        if symbol.is_empty() {
            format!("{sign}{} {units}.{cents:02}", self.currency_code)
        } else {
            format!("{sign}{symbol}{units}.{cents:02}")
        }
    }
}

impl fmt::Display for Money {
    /// The exact amount: `19.990000000 USD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total_nanos();
        let sign = if total < 0 { "-" } else { "" };
        let total = total.unsigned_abs();
        let units = total / NANOS_PER_UNIT.unsigned_abs();
        let nanos = total % NANOS_PER_UNIT.unsigned_abs();
        write!(f, "{sign}{units}.{nanos:09} {}", self.currency_code)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zero_fields_may_be_left_out_as_proto3_json_does() {
        let convert: crate::api::Convert =
            serde_json::from_str(r#"{"from":{"currency_code":"USD","units":5},"to_code":"EUR"}"#)
                .unwrap();
        assert_eq!(convert.from, super::Money::new("USD", 5, 0));
        let half: super::Money =
            serde_json::from_str(r#"{"currency_code":"USD","nanos":500000000}"#).unwrap();
        assert_eq!(half, super::Money::new("USD", 0, 500_000_000));
    }

    use super::*;

    #[test]
    fn rounding_to_cents_takes_halves_away_from_zero() {
        let cases = [
            ((17, 682_441_398), (17, 680_000_000)),
            ((7, 952_233_525), (7, 950_000_000)),
            ((0, 5_000_000), (0, 10_000_000)),
            ((0, 4_999_999), (0, 0)),
            ((2235, 995_000_000), (2236, 0)),
            ((-1, -5_000_000), (-1, -10_000_000)),
        ];
        for ((units, nanos), (want_units, want_nanos)) in cases {
            let rounded = Money::new("EUR", units, nanos).round_to_cents().unwrap();
            assert_eq!(
                rounded,
                Money::new("EUR", want_units, want_nanos),
                "{units}.{nanos}"
            );
        }
    }

    #[test]
    fn sums_that_broke_the_original_are_exact() {
        let a = Money::new("USD", 0, 200_000_000);
        let b = Money::new("USD", 0, 300_000_000);
        let sum = a.checked_add(&b).unwrap();
        assert_eq!(sum, Money::new("USD", 0, 500_000_000));
        sum.validate().unwrap();
        let c = Money::new("USD", 0, 990_000_000);
        assert_eq!(Money::zero("USD").checked_add(&c).unwrap(), c);
    }

    #[test]
    fn multiplying_by_zero_gives_zero() {
        assert_eq!(
            Money::new("EUR", 8, 990_000_000).checked_mul(0).unwrap(),
            Money::zero("EUR")
        );
        assert_eq!(
            Money::new("EUR", 8, 990_000_000).checked_mul(3).unwrap(),
            Money::new("EUR", 26, 970_000_000)
        );
    }

    #[test]
    fn the_rules_are_checked() {
        assert_eq!(
            Money::new("USD", 1, -1).validate(),
            Err(MoneyError::SignMismatch {
                units: 1,
                nanos: -1
            })
        );
        assert_eq!(
            Money::new("USD", -1, 1).validate(),
            Err(MoneyError::SignMismatch {
                units: -1,
                nanos: 1
            })
        );
        assert_eq!(
            Money::new("USD", 0, 1_000_000_000).validate(),
            Err(MoneyError::NanosOutOfRange {
                nanos: 1_000_000_000
            })
        );
        assert_eq!(
            Money::new("usd", 1, 0).validate(),
            Err(MoneyError::BadCurrencyCode {
                code: "usd".to_owned()
            })
        );
        assert!(Money::new("USD", -1, -5).validate().is_ok());
        assert_eq!(
            Money::new("USD", 1, 1).checked_add(&Money::new("EUR", 1, 1)),
            Err(MoneyError::CurrencyMismatch {
                left: "USD".to_owned(),
                right: "EUR".to_owned()
            })
        );
        assert_eq!(
            Money::new("USD", i64::MAX, 0).checked_mul(2),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn shop_display_truncates_to_cents() {
        assert_eq!(Money::new("USD", 19, 999_999_999).display(), "$19.99");
        assert_eq!(Money::new("EUR", 17, 682_441_398).display(), "€17.68");
        assert_eq!(Money::new("JPY", 2235, 60_592_707).display(), "¥2235.06");
        assert_eq!(Money::new("CHF", 1, 50_000_000).display(), "CHF 1.05");
        assert_eq!(Money::zero("GBP").display(), "£0.00");
    }

    #[test]
    fn display_is_exact() {
        assert_eq!(
            Money::new("USD", 19, 990_000_000).to_string(),
            "19.990000000 USD"
        );
        assert_eq!(Money::new("USD", -1, -5).to_string(), "-1.000000005 USD");
    }
}
