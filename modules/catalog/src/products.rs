//! Reading `products.json`: Online Boutique's file, in proto3-JSON camelCase
//! (`priceUsd`, `currencyCode`) under a top-level `{"products": [...]}`.
//! As proto3-JSON parsers do, the proto's own names (`price_usd`) are read
//! too, and `units` (an int64) as a number or as protojson's string.
//! Every product is checked: ids present and unique, prices valid.

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
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    picture: String,
    #[serde(alias = "price_usd")]
    price_usd: FileMoney,
    #[serde(default)]
    categories: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileMoney {
    #[serde(alias = "currency_code")]
    currency_code: String,
    #[serde(default, deserialize_with = "int64")]
    units: i64,
    #[serde(default)]
    nanos: i32,
}

/// A proto3-JSON int64: a number, or (as protojson writes it) a string of
/// one.
fn int64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct Int64;
    impl serde::de::Visitor<'_> for Int64 {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number, or a string of one (\"19\")")
        }
        fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<i64, E> {
            Ok(number)
        }
        fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<i64, E> {
            i64::try_from(number).map_err(|_| E::custom(format!("{number} is past an int64")))
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<i64, E> {
            text.parse()
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(text), &self))
        }
    }
    deserializer.deserialize_any(Int64)
}

/// Parses and checks a catalogue file.
pub fn parse(json: &str) -> Result<Vec<Product>, String> {
    let file: File =
        serde_json::from_str(json).map_err(|e| format!("does not parse as a catalogue: {e}"))?;
    let mut ids = HashSet::new();
    let mut products = Vec::with_capacity(file.products.len());
    for (index, p) in file.products.into_iter().enumerate() {
        if p.id.trim().is_empty() {
            return Err(format!("product #{} has no id", index + 1));
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
    }
}
