//! Reading `products.json`: Online Boutique's file, in proto3-JSON camelCase
//! (`priceUsd`, `currencyCode`) under a top-level `{"products": [...]}`.
//! As proto3-JSON parsers do, the proto's own names (`price_usd`) are read
//! too, `units` and `nanos` as a number (`19`, `19.0`, `1.9e1`) or as a
//! string of one (protojson writes int64s as strings), and `null` as the
//! default of a product's text, list and number fields (not of `products`
//! or `priceUsd`, which a catalogue needs). Every product is checked: ids present, unique and
//! without surrounding spaces, names not blank, prices valid.

use std::collections::HashSet;

use currency::api::Money;
use serde::Deserialize;

use crate::api::Product;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    products: Vec<FileProduct>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileProduct {
    #[serde(default, deserialize_with = "or_default")]
    id: String,
    #[serde(default, deserialize_with = "or_default")]
    name: String,
    #[serde(default, deserialize_with = "or_default")]
    description: String,
    #[serde(default, deserialize_with = "or_default")]
    picture: String,
    #[serde(alias = "price_usd")]
    price_usd: FileMoney,
    #[serde(default, deserialize_with = "or_default")]
    categories: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileMoney {
    #[serde(alias = "currency_code", default, deserialize_with = "or_default")]
    currency_code: String,
    #[serde(default, deserialize_with = "whole")]
    units: i64,
    #[serde(default, deserialize_with = "whole")]
    nanos: i32,
}

/// A field's value, its default for `null` (as proto3-JSON reads it).
fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A proto3-JSON integer: a number with no fraction (`19`, `19.0`,
/// `1.9e1`), or (as protojson writes an int64) a string of one; `null` is
/// 0.
fn whole<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64> + Default,
{
    struct Whole;
    impl serde::de::Visitor<'_> for Whole {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number, or a string of one (\"19\")")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }
        fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<Option<i64>, E> {
            Ok(Some(number))
        }
        fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<Option<i64>, E> {
            i64::try_from(number)
                .map(Some)
                .map_err(|_| E::custom(format!("{number} is past an int64")))
        }
        fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<Option<i64>, E> {
            // Within ±2^63 and with no fraction; the cast is then exact.
            if number.fract() == 0.0 && number.abs() < 9_223_372_036_854_775_808.0 {
                Ok(Some(number as i64))
            } else {
                Err(E::invalid_value(
                    serde::de::Unexpected::Float(number),
                    &self,
                ))
            }
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Option<i64>, E> {
            let unexpected = || E::invalid_value(serde::de::Unexpected::Str(text), &Whole);
            match text.parse::<i64>() {
                Ok(number) => Ok(Some(number)),
                // "1e2", "19.0": a number written another way. Not
                // "inf" or "NaN", which no JSON number is.
                Err(_)
                    if text
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
                {
                    self.visit_f64(text.parse::<f64>().map_err(|_| unexpected())?)
                        .map_err(|_: E| unexpected())
                }
                Err(_) => Err(unexpected()),
            }
        }
    }
    match deserializer.deserialize_any(Whole)? {
        None => Ok(T::default()),
        Some(number) => T::try_from(number).map_err(|_| {
            serde::de::Error::custom(format!("{number} is out of range for this field"))
        }),
    }
}

/// The longest product id, in bytes: the cart's and the add-to-cart form's.
const MAX_ID_BYTES: usize = 64;
/// The most categories a product may have: the ads module's most keys.
const MAX_CATEGORIES: usize = 32;
/// A price must be under this many dollars.
const MAX_PRICE_UNITS: i64 = 1_000_000_000;

/// Parses and checks a catalogue file: every product's id, name,
/// categories and price such that the rest of the shop can show, sell and
/// confirm it (one that breaks a later step is refused at start, saying
/// which and why).
pub fn parse(json: &str) -> Result<Vec<Product>, String> {
    let file: File =
        serde_json::from_str(json).map_err(|e| format!("does not parse as a catalogue: {e}"))?;
    let mut ids = HashSet::new();
    let mut products = Vec::with_capacity(file.products.len());
    for (index, p) in file.products.into_iter().enumerate() {
        if p.id.trim().is_empty() {
            return Err(format!("product #{} has no id", index + 1));
        }
        if p.id.trim() != p.id {
            return Err(format!(
                "product id {:?} has spaces around it (an id is looked up exactly)",
                p.id
            ));
        }
        if p.id.len() > MAX_ID_BYTES
            || !p
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "product id {:?} must be 1 to {MAX_ID_BYTES} letters, digits, '-' or '_' \
                 (the cart takes no longer id, and an id is a page's address)",
                p.id
            ));
        }
        if p.name.trim().is_empty() {
            return Err(format!("product {} has no name", p.id));
        }
        if p.name.chars().any(char::is_control) {
            return Err(format!(
                "product {}'s name holds a control character (no confirmation email could \
                 show it)",
                p.id
            ));
        }
        if p.categories.len() > MAX_CATEGORIES {
            return Err(format!(
                "product {} has {} categories; at most {MAX_CATEGORIES} (its page asks for ads \
                 by them, and the ads module takes no more)",
                p.id,
                p.categories.len()
            ));
        }
        if !ids.insert(p.id.clone()) {
            return Err(format!("product id {} appears twice", p.id));
        }
        let price = Money::new(
            p.price_usd.currency_code,
            p.price_usd.units,
            p.price_usd.nanos,
        );
        price
            .validate()
            .map_err(|e| format!("product {} has an invalid price: {e}", p.id))?;
        if price.currency_code != "USD" || price.is_negative() {
            return Err(format!(
                "product {} must have a non-negative price in USD",
                p.id
            ));
        }
        if price.units >= MAX_PRICE_UNITS {
            return Err(format!(
                "product {}'s price must be under {MAX_PRICE_UNITS} USD (converted to yen, more \
                 would not fit the money's number)",
                p.id
            ));
        }
        products.push(Product {
            id: p.id,
            name: p.name,
            description: p.description,
            picture: p.picture,
            price_usd: price,
            categories: p.categories,
        });
    }
    Ok(products)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_parses() {
        let products = parse(include_str!("../data/products.json")).unwrap();
        assert_eq!(products.len(), 9);
        assert_eq!(products[0].id, "OLJCESPC7Z");
        assert_eq!(products[0].price_usd, Money::new("USD", 19, 990_000_000));
        assert_eq!(products[4].categories, vec!["hair", "beauty"]);
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        assert!(parse("{").unwrap_err().contains("does not parse"));
        let twice = r#"{"products":[
            {"id":"A","name":"a","priceUsd":{"currencyCode":"USD","units":1}},
            {"id":"A","name":"b","priceUsd":{"currencyCode":"USD","units":1}}]}"#;
        assert!(parse(twice).unwrap_err().contains("twice"));
        let bad_price = r#"{"products":[{"id":"A","name":"a","priceUsd":{"currencyCode":"USD","units":1,"nanos":-5}}]}"#;
        assert!(parse(bad_price).unwrap_err().contains("invalid price"));
        let bad_units = r#"{"products":[{"id":"A","name":"a","priceUsd":{"currencyCode":"USD","units":"1.5"}}]}"#;
        let error = parse(bad_units).unwrap_err();
        assert!(
            error.contains("\"1.5\"") && error.contains("whole number"),
            "{error}"
        );
    }

    /// What protojson writes: int64 as a string; and the proto's own field
    /// names, which proto3-JSON parsers read as well.
    #[test]
    fn protojson_output_and_proto_field_names_are_read() {
        let protojson = r#"{"products":[
            {"id":"A","name":"a","priceUsd":{"currencyCode":"USD","units":"19","nanos":990000000}},
            {"id":"B","name":"b","price_usd":{"currency_code":"USD","units":"-0"}}]}"#;
        let products = parse(protojson).unwrap();
        assert_eq!(products[0].price_usd, Money::new("USD", 19, 990_000_000));
        assert_eq!(products[1].price_usd, Money::new("USD", 0, 0));
        // Integers written as fractions with none, or exponents, or as
        // strings of them; null as the default.
        let written_otherwise = r#"{"products":[
            {"id":"A","name":"a","description":null,"picture":null,"categories":null,
             "priceUsd":{"currencyCode":"USD","units":19.0,"nanos":"990000000"}},
            {"id":"B","name":"b","priceUsd":{"currencyCode":"USD","units":"1e1","nanos":null}}]}"#;
        let products = parse(written_otherwise).unwrap();
        assert_eq!(products[0].price_usd, Money::new("USD", 19, 990_000_000));
        assert_eq!(products[0].description, "");
        assert!(products[0].categories.is_empty());
        assert_eq!(products[1].price_usd, Money::new("USD", 10, 0));
    }

    #[test]
    fn ids_and_names_are_checked() {
        for (product, why) in [
            (r#"{"id":" A","name":"a""#, "spaces around"),
            (r#"{"id":"A","name":"  ""#, "no name"),
            (r#"{"id":"A","name":null"#, "no name"),
            (r#"{"id":null,"name":"a""#, "no id"),
            (r#"{"id":"A","name":"a","nanos":1"#, "unknown field"),
            (r#"{"id":"A/B","name":"a""#, "letters, digits"),
            (r#"{"id":"A%20","name":"a""#, "letters, digits"),
            (r#"{"id":"Ä","name":"a""#, "letters, digits"),
            (
                r#"{"id":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","name":"a""#,
                "1 to 64",
            ),
            (r#"{"id":"A","name":"Mug	""#, "control character"),
            (
                r#"{"id":"A","name":"a","categories":["c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c","c"]"#,
                "33 categories",
            ),
        ] {
            let file = format!(
                r#"{{"products":[{product},"priceUsd":{{"currencyCode":"USD","units":1}}}}]}}"#
            );
            let error = parse(&file).unwrap_err();
            assert!(error.contains(why), "{product}: {error}");
        }
        for (units, why) in [
            ("1.5", "whole number"),
            ("\"NaN\"", "whole number"),
            ("1e30", "whole number"),
        ] {
            let file = format!(
                r#"{{"products":[{{"id":"A","name":"a","priceUsd":{{"currencyCode":"USD","units":{units}}}}}]}}"#
            );
            let error = parse(&file).unwrap_err();
            assert!(error.contains(why), "{units}: {error}");
        }
        let dear = r#"{"products":[{"id":"A","name":"a","priceUsd":{"currencyCode":"USD","units":1000000000}}]}"#;
        assert!(parse(dear).unwrap_err().contains("must be under"));
        let nanos = r#"{"products":[{"id":"A","name":"a","priceUsd":{"currencyCode":"USD","nanos":5000000000}}]}"#;
        assert!(parse(nanos).unwrap_err().contains("out of range"));
    }
}
