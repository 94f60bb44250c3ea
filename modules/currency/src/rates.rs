//! The rates table and the conversion arithmetic.
//!
//! A rate is how many units of a currency one EUR buys, kept as an exact
//! decimal (`1.1305` is 11305 / 10⁴). Conversion pivots through EUR like the
//! original, but on integers:
//!
//! 1. `eur = round_half_up(amount_nanos × 10^scale / mantissa)` (the
//!    original rounds the EUR nanos to the nearest integer too);
//! 2. `result = floor(eur × mantissa' / 10^scale')` (the original floors).
//!
//! This reproduces the spec's reference values (USD 19.99 → EUR
//! 17.682441398, JPY 2235.060592707, GBP 15.201594869) without floating point.
//! Converting a currency to itself returns the amount unchanged.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use crate::api::{CurrencyError, Money};

/// An exact decimal rate: `mantissa / 10^scale` units per EUR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    mantissa: i128,
    scale: u32,
}

impl Rate {
    /// Parses a decimal such as `1.1305`.
    fn parse(text: &str) -> Option<Rate> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty()
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let scale = u32::try_from(fraction.len()).ok().filter(|s| *s <= 18)?;
        let mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
        (mantissa > 0).then_some(Rate { mantissa, scale })
    }

    fn power(&self) -> i128 {
        10i128.pow(self.scale)
    }
}

/// The supported currencies in file order, with their rates.
#[derive(Debug, Clone)]
pub struct Rates {
    codes: Vec<String>,
    rates: HashMap<String, Rate>,
}

/// The rates table could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatesError {
    /// Not a JSON object of strings.
    #[error("the rates table is not a JSON object of code → decimal string: {0}")]
    Json(String),
    /// A rate is not a positive decimal.
    #[error("the rate of {code} ('{rate}') is not a positive decimal")]
    BadRate {
        /// The currency.
        code: String,
        /// The text.
        rate: String,
    },
    /// A code appears twice.
    #[error("{0} appears twice in the rates table")]
    Duplicate(String),
    /// A code is not three capital letters, as every amount's must be: it
    /// would be listed as supported and refused in every amount.
    #[error("'{0}' in the rates table is not a currency code (three capital letters, like EUR)")]
    BadCode(String),
    /// EUR, the pivot, is not 1.
    #[error("the rates table must give EUR as 1.0")]
    NoEuro,
    /// No USD: every price and shipping quote is in dollars, and the
    /// shop's default currency, so no page could be shown.
    #[error("the rates table must give USD (every price and shipping quote is in dollars)")]
    NoDollar,
}

/// The entries of a JSON object, in document order.
struct Entries(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of currency code to rate")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

impl Rates {
    /// Parses Online Boutique's `currency_conversion.json`.
    pub fn parse(json: &str) -> Result<Rates, RatesError> {
        let Entries(entries) =
            serde_json::from_str(json).map_err(|e| RatesError::Json(e.to_string()))?;
        let mut codes = Vec::with_capacity(entries.len());
        let mut rates = HashMap::with_capacity(entries.len());
        for (code, text) in entries {
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(RatesError::BadCode(code));
            }
            let rate = Rate::parse(&text).ok_or_else(|| RatesError::BadRate {
                code: code.clone(),
                rate: text.clone(),
            })?;
            if rates.insert(code.clone(), rate).is_some() {
                return Err(RatesError::Duplicate(code));
            }
            codes.push(code);
        }
        match rates.get("EUR") {
            Some(eur) if eur.mantissa == eur.power() => {}
            _ => return Err(RatesError::NoEuro),
        }
        if !rates.contains_key("USD") {
            return Err(RatesError::NoDollar);
        }
        Ok(Rates { codes, rates })
    }

    /// The codes, in file order.
    pub fn codes(&self) -> &[String] {
        &self.codes
    }

    fn rate(&self, code: &str) -> Result<Rate, CurrencyError> {
        self.rates
            .get(code)
            .copied()
            .ok_or_else(|| CurrencyError::UnsupportedCurrency {
                code: code.to_owned(),
            })
    }

    /// Converts `from` into `to_code`.
    pub fn convert(&self, from: &Money, to_code: &str) -> Result<Money, CurrencyError> {
        from.validate().map_err(CurrencyError::InvalidMoney)?;
        let from_rate = self.rate(&from.currency_code)?;
        let to_rate = self.rate(to_code)?;
        if from.is_negative() {
            return Err(CurrencyError::NegativeAmount {
                amount: from.clone(),
            });
        }
        if from.currency_code == to_code {
            return Ok(from.clone());
        }
        let overflow = || CurrencyError::InvalidMoney(crate::api::MoneyError::Overflow);
        let amount = from.total_nanos();
        // Step 1: to EUR nanos, rounded half up.
        let numerator = amount.checked_mul(from_rate.power()).ok_or_else(overflow)?;
        let doubled = numerator
            .checked_mul(2)
            .and_then(|n| n.checked_add(from_rate.mantissa))
            .ok_or_else(overflow)?;
        let eur = doubled / from_rate.mantissa.checked_mul(2).ok_or_else(overflow)?;
        // Step 2: to the target currency, floored (amounts are never negative here).
        let converted = eur.checked_mul(to_rate.mantissa).ok_or_else(overflow)? / to_rate.power();
        Money::from_total_nanos(to_code, converted).map_err(CurrencyError::InvalidMoney)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MoneyError;

    const TABLE: &str = include_str!("../data/currency_conversion.json");

    fn rates() -> Rates {
        Rates::parse(TABLE).unwrap()
    }

    fn usd(units: i64, nanos: i32) -> Money {
        Money::new("USD", units, nanos)
    }

    #[test]
    fn an_amount_too_large_for_a_precise_rate_is_refused_not_wrapped() {
        // A rate with 18 decimals: the first step's numerator (amount in
        // nanos × 10^18) fits, doubling it for the rounding does not.
        let rates =
            Rates::parse(r#"{"EUR": "1.0", "USD": "1.1305", "XPR": "1.000000000000000000"}"#)
                .unwrap();
        let huge = Money::new("XPR", 150_000_000_000, 0);
        assert_eq!(
            rates.convert(&huge, "EUR"),
            Err(CurrencyError::InvalidMoney(
                crate::api::MoneyError::Overflow
            ))
        );
        // One a thousand times smaller converts exactly.
        let large = Money::new("XPR", 150_000_000, 0);
        assert_eq!(
            rates.convert(&large, "EUR").unwrap(),
            Money::new("EUR", 150_000_000, 0)
        );
    }

    #[test]
    fn reproduces_the_reference_values() {
        let rates = rates();
        assert_eq!(
            rates.convert(&usd(19, 990_000_000), "EUR").unwrap(),
            Money::new("EUR", 17, 682_441_398)
        );
        assert_eq!(
            rates.convert(&usd(19, 990_000_000), "JPY").unwrap(),
            Money::new("JPY", 2235, 60_592_707)
        );
        assert_eq!(
            rates.convert(&usd(19, 990_000_000), "GBP").unwrap(),
            Money::new("GBP", 15, 201_594_869)
        );
        assert_eq!(
            rates.convert(&usd(8, 990_000_000), "EUR").unwrap(),
            Money::new("EUR", 7, 952_233_525)
        );
    }

    #[test]
    fn codes_keep_file_order() {
        let rates = rates();
        assert_eq!(rates.codes().len(), 33);
        assert_eq!(&rates.codes()[..4], ["EUR", "USD", "JPY", "BGN"]);
        assert_eq!(rates.codes().last().map(String::as_str), Some("ZAR"));
    }

    #[test]
    fn same_currency_is_unchanged_and_zero_stays_zero() {
        let rates = rates();
        assert_eq!(
            rates.convert(&usd(18, 490_000_000), "USD").unwrap(),
            usd(18, 490_000_000)
        );
        assert_eq!(
            rates.convert(&usd(0, 0), "JPY").unwrap(),
            Money::zero("JPY")
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let rates = rates();
        assert_eq!(
            rates.convert(&usd(1, 0), "XXX"),
            Err(CurrencyError::UnsupportedCurrency { code: "XXX".into() })
        );
        assert_eq!(
            rates.convert(&Money::new("ABC", 1, 0), "EUR"),
            Err(CurrencyError::UnsupportedCurrency { code: "ABC".into() })
        );
        assert_eq!(
            rates.convert(&usd(1, -1), "EUR"),
            Err(CurrencyError::InvalidMoney(MoneyError::SignMismatch {
                units: 1,
                nanos: -1
            }))
        );
        assert!(matches!(
            rates.convert(&usd(-1, 0), "EUR"),
            Err(CurrencyError::NegativeAmount { .. })
        ));
        assert_eq!(
            rates.convert(&usd(i64::MAX, 0), "IDR"),
            Err(CurrencyError::InvalidMoney(MoneyError::Overflow))
        );
    }

    #[test]
    fn bad_tables_are_refused() {
        assert!(matches!(Rates::parse("[]"), Err(RatesError::Json(_))));
        assert!(matches!(
            Rates::parse(r#"{"EUR":"1.0","USD":"-1"}"#),
            Err(RatesError::BadRate { .. })
        ));
        assert!(matches!(
            Rates::parse(r#"{"EUR":"1.0","USD":"1.x"}"#),
            Err(RatesError::BadRate { .. })
        ));
        assert!(matches!(
            Rates::parse(r#"{"USD":"1.1"}"#),
            Err(RatesError::NoEuro)
        ));
        // Started, it answered every page's conversion from dollars with
        // "unsupported currency".
        assert!(matches!(
            Rates::parse(r#"{"EUR":"1.0","GBP":"0.8597"}"#),
            Err(RatesError::NoDollar)
        ));
        assert!(matches!(
            Rates::parse(r#"{"EUR":"1.0","EUR":"1.0"}"#),
            Err(RatesError::Duplicate(_))
        ));
        for code in ["usd", "US", "USDT", ""] {
            let table = format!(r#"{{"EUR":"1.0","{code}":"1.1"}}"#);
            assert_eq!(
                Rates::parse(&table).err(),
                Some(RatesError::BadCode(code.to_owned())),
                "{code}"
            );
        }
    }
}
