//! Reading `products.json`: Online Boutique's file, in proto3-JSON camelCase
//! (`priceUsd`, `currencyCode`) under a top-level `{"products": [...]}`.
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
    price_usd: FileMoney,
    #[serde(default)]
    categories: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileMoney {
    currency_code: String,
    #[serde(default)]
    units: i64,
    #[serde(default)]
    nanos: i32,
}

/// Parses and checks a catalogue file.
pub fn parse(json: &str) -> Result<Vec<Product>, String> {
    let file: File =
        serde_json::from_str(json).map_err(|e| format!("products.json does not parse: {e}"))?;
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
    }
}
