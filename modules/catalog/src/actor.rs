//! The catalog actor: the products in memory, with lowercase copies of their
//! names and descriptions for case-insensitive search.

use std::collections::HashMap;
use std::path::PathBuf;

use actix::{Actor, Context, Handler};
use runtime::{Call, Module, StartContext, StartError};
use serde::Deserialize;

use crate::api::{
    Catalog, CatalogError, GetProduct, ListProducts, ListProductsResponse, Product, SearchProducts,
    SearchProductsResponse,
};
use crate::products;

/// The catalogue built into the binary.
const BUILT_IN_PRODUCTS: &str = include_str!("../data/products.json");

/// `[modules.catalog]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// A catalogue to load instead of the built-in one (same JSON format).
    pub products_file: Option<PathBuf>,
}

/// The catalog module.
pub struct CatalogModule;

impl Module for CatalogModule {
    type Service = Catalog;
    type Config = CatalogConfig;

    fn data_files(config: &CatalogConfig) -> Vec<(&'static str, PathBuf)> {
        config
            .products_file
            .iter()
            .map(|path| ("products_file", path.clone()))
            .collect()
    }

    async fn start(config: CatalogConfig, _ctx: StartContext) -> Result<Catalog, StartError> {
        let text = runtime::data_file(
            "products_file",
            config.products_file.as_deref(),
            BUILT_IN_PRODUCTS,
        )?;
        // What the file says is wrong: the config names a file that is no
        // catalogue, and starting again would not mend it. Which file.
        let products = products::parse(&text).map_err(|why| {
            StartError::Config(match &config.products_file {
                Some(path) => format!("products_file {}: {why}", path.display()),
                None => format!("the built-in products.json: {why}"),
            })
        })?;
        Ok(Catalog::start(CatalogActor::new(products)))
    }
}

struct CatalogActor {
    products: Vec<Product>,
    by_id: HashMap<String, usize>,
    /// `(name, description)` of each product, lowercased.
    search_text: Vec<(String, String)>,
    /// The most characters of any of those texts.
    longest_text: usize,
}

impl CatalogActor {
    fn new(products: Vec<Product>) -> Self {
        let search_text: Vec<(String, String)> = products
            .iter()
            .map(|p| (folded(&p.name), folded(&p.description)))
            .collect();
        let longest_text = search_text
            .iter()
            .flat_map(|(name, description)| [name.chars().count(), description.chars().count()])
            .max()
            .unwrap_or(0);
        CatalogActor {
            by_id: products
                .iter()
                .enumerate()
                .map(|(i, p)| (p.id.clone(), i))
                .collect(),
            search_text,
            longest_text,
            products,
        }
    }
}

impl Actor for CatalogActor {
    type Context = Context<Self>;
}

impl Handler<Call<ListProducts>> for CatalogActor {
    type Result = Result<ListProductsResponse, CatalogError>;

    fn handle(&mut self, call: Call<ListProducts>, _: &mut Context<Self>) -> Self::Result {
        let _span = call.span().entered();
        Ok(ListProductsResponse {
            products: self.products.clone(),
        })
    }
}

impl Handler<Call<GetProduct>> for CatalogActor {
    type Result = Result<Product, CatalogError>;

    fn handle(&mut self, call: Call<GetProduct>, _: &mut Context<Self>) -> Self::Result {
        match self.by_id.get(&call.id) {
            Some(&index) => Ok(self.products[index].clone()),
            None => {
                let _span = call.span().entered();
                tracing::debug!(id = %call.id, "no such product");
                Err(CatalogError::ProductNotFound {
                    id: call.into_message().id,
                })
            }
        }
    }
}

impl Handler<Call<SearchProducts>> for CatalogActor {
    type Result = Result<SearchProductsResponse, CatalogError>;

    fn handle(&mut self, call: Call<SearchProducts>, _: &mut Context<Self>) -> Self::Result {
        let _span = call.span().entered();
        // A query longer than every text cannot be in one (lower-casing
        // gives a character at least one): answered without copying or
        // scanning what may be megabytes.
        if call.query.chars().nth(self.longest_text).is_some() {
            return Ok(SearchProductsResponse { results: vec![] });
        }
        let query = folded(&call.query);
        let results = self
            .products
            .iter()
            .zip(&self.search_text)
            .filter(|(_, (name, description))| {
                name.contains(&query) || description.contains(&query)
            })
            .map(|(product, _)| product.clone())
            .collect();
        Ok(SearchProductsResponse { results })
    }
}

/// `text` lower-cased character by character, each to one character, as
/// the original's Go `strings.ToLower` does: the same letter the same way
/// wherever it stands (`str::to_lowercase` writes a capital sigma at a
/// word's end as a final sigma, so "ΟΔΟΣ" would not be found in
/// "ΟΔΟΣΗΜΑΝΣΗ"), and `İ` is `i` (Rust's full mapping gives `i` and a
/// combining dot, so "istanbul" would not be found in "İstanbul").
fn folded(text: &str) -> String {
    text.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

#[cfg(test)]
mod fold_tests {
    use super::folded;

    #[test]
    fn a_letter_folds_the_same_wherever_it_stands() {
        assert!(folded("ΟΔΟΣΗΜΑΝΣΗ").contains(&folded("ΟΔΟΣ")));
        assert_eq!(folded("Sunglasses"), "sunglasses");
        assert!(folded("İstanbul Tea").contains(&folded("istanbul")));
    }
}
