//! Actor-message tests: the catalog actor alone, through its messages.

use runtime::{ServiceRef, ServiceRegistry, start_alone};

use crate::api::{Catalog, CatalogError, GetProduct, ListProducts, SearchProducts};
use crate::{CatalogConfig, CatalogModule};

async fn catalog() -> ServiceRef<Catalog> {
    start_alone::<CatalogModule>(
        CatalogConfig::default(),
        ServiceRegistry::new(),
        std::env::temp_dir(),
    )
    .await
    .unwrap()
}

#[actix_rt::test]
async fn lists_every_product_in_file_order() {
    let reply = catalog()
        .await
        .call(ListProducts {})
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<&str> = reply.products.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "OLJCESPC7Z",
            "66VCHSJNUP",
            "1YMWWN1N4O",
            "L9ECAV7KIM",
            "2ZYFJ3GM2N",
            "0PUK6V6EV0",
            "LS4PSXUNUM",
            "9SIQT8TOJO",
            "6E92ZMYYFZ"
        ]
    );
}

#[actix_rt::test]
async fn gets_a_product_by_exact_id() {
    let catalog = catalog().await;
    let mug = catalog
        .call(GetProduct {
            id: "6E92ZMYYFZ".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mug.name, "Mug");
    assert_eq!(mug.picture, "/static/img/products/mug.jpg");
    let lowercase = catalog
        .call(GetProduct {
            id: "6e92zmyyfz".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        lowercase,
        Err(CatalogError::ProductNotFound {
            id: "6e92zmyyfz".into()
        })
    );
}

#[actix_rt::test]
async fn searches_names_and_descriptions_ignoring_case() {
    let catalog = catalog().await;
    let names = |query: &'static str| {
        let catalog = catalog.clone();
        async move {
            let reply = catalog
                .call(SearchProducts {
                    query: query.into(),
                })
                .await
                .unwrap()
                .unwrap();
            reply
                .results
                .into_iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("SUNGLASSES").await, ["Sunglasses"]);
    // "watch" is in the Watch's name; "outfits" in two descriptions.
    assert_eq!(names("outfits").await, ["Sunglasses", "Watch"]);
    assert_eq!(names("").await.len(), 9);
    assert!(names("no such thing").await.is_empty());
}

#[actix_rt::test]
async fn a_query_as_long_as_the_longest_text_still_finds_it() {
    let catalog = catalog().await;
    let products = catalog
        .call(ListProducts {})
        .await
        .unwrap()
        .unwrap()
        .products;
    let longest = products
        .iter()
        .max_by_key(|p| p.description.chars().count())
        .unwrap();
    let search = |query: String| {
        let catalog = catalog.clone();
        async move {
            let reply = catalog
                .call(SearchProducts { query })
                .await
                .unwrap()
                .unwrap();
            reply.results.into_iter().map(|p| p.id).collect::<Vec<_>>()
        }
    };
    let found = search(longest.description.to_uppercase()).await;
    assert_eq!(found, vec![longest.id.as_str()]);
    // One character more is in no text: nothing, whatever its size.
    assert!(search(format!("{}s", longest.description)).await.is_empty());
    assert!(search("x".repeat(1 << 20)).await.is_empty());
}

#[actix_rt::test]
async fn a_broken_products_file_stops_the_start() {
    let dir = std::env::temp_dir().join(format!("boutique-catalog-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("products.json");
    std::fs::write(&path, "{\"products\": [").unwrap();
    let error = start_alone::<CatalogModule>(
        CatalogConfig {
            products_file: Some(path.clone()),
        },
        ServiceRegistry::new(),
        std::env::temp_dir(),
    )
    .await
    .unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    let named = format!("products_file {}: does not parse", path.display());
    assert!(error.to_string().contains(&named), "{error}");
}
