//! The scenario suite: one body per scenario, run unchanged by every runner
//! (see `tests/support`). Each scenario uses its own user ids, though every
//! run starts a fresh shop anyway.

use std::collections::HashSet;

use cart::api::{AddItem, CartError, CartItem, CartService, EmptyCart, GetCart};
use catalog::api::{Catalog, CatalogError, GetProduct, ListProducts, SearchProducts};
use currency::api::{Convert, Currency, CurrencyError, GetSupportedCurrencies, Money};
use recommendation::api::{ListRecommendations, Recommendation};
use runtime::Empty;

use crate::support::App;

mod shop;
pub use shop::*;

const PRODUCT_IDS: [&str; 9] = [
    "OLJCESPC7Z",
    "66VCHSJNUP",
    "1YMWWN1N4O",
    "L9ECAV7KIM",
    "2ZYFJ3GM2N",
    "0PUK6V6EV0",
    "LS4PSXUNUM",
    "9SIQT8TOJO",
    "6E92ZMYYFZ",
];

pub async fn catalog_lists_gets_and_searches(app: &App) {
    let catalog = app.service::<Catalog>();
    let list = catalog.call(ListProducts {}).await.unwrap().unwrap();
    let ids: Vec<&str> = list.products.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, PRODUCT_IDS);

    let watch = catalog
        .call(GetProduct {
            id: "1YMWWN1N4O".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(watch.name, "Watch");
    assert_eq!(watch.price_usd, Money::new("USD", 109, 990_000_000));
    assert_eq!(watch.categories, ["accessories"]);

    // The domain error crosses intact, typed.
    assert_eq!(
        catalog
            .call(GetProduct { id: "NOPE".into() })
            .await
            .unwrap(),
        Err(CatalogError::ProductNotFound { id: "NOPE".into() })
    );

    let found = catalog
        .call(SearchProducts {
            query: "candle".into(),
        })
        .await
        .unwrap()
        .unwrap();
    let names: Vec<&str> = found.results.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Candle Holder"]);
}

pub async fn currency_converts_with_the_reference_values(app: &App) {
    let currency = app.service::<Currency>();
    let codes = currency
        .call(GetSupportedCurrencies {})
        .await
        .unwrap()
        .unwrap()
        .currency_codes;
    assert_eq!(codes.len(), 33);
    assert_eq!(&codes[..3], ["EUR", "USD", "JPY"]);

    let usd = |units, nanos| Money::new("USD", units, nanos);
    for (from, to, expected) in [
        (
            usd(19, 990_000_000),
            "EUR",
            Money::new("EUR", 17, 682_441_398),
        ),
        (
            usd(19, 990_000_000),
            "JPY",
            Money::new("JPY", 2235, 60_592_707),
        ),
        (
            usd(19, 990_000_000),
            "GBP",
            Money::new("GBP", 15, 201_594_869),
        ),
        (
            usd(8, 990_000_000),
            "EUR",
            Money::new("EUR", 7, 952_233_525),
        ),
        (usd(8, 990_000_000), "USD", usd(8, 990_000_000)),
    ] {
        let converted = currency
            .call(Convert {
                from,
                to_code: to.into(),
            })
            .await
            .unwrap();
        assert_eq!(converted, Ok(expected));
    }
    assert_eq!(
        currency
            .call(Convert {
                from: usd(1, 0),
                to_code: "CHX".into()
            })
            .await
            .unwrap(),
        Err(CurrencyError::UnsupportedCurrency { code: "CHX".into() })
    );
}

pub async fn cart_accumulates_empties_and_refuses_bad_quantities(app: &App) {
    let cart = app.service::<CartService>();
    let add = |product: &str, quantity| AddItem {
        user_id: "scenario-cart".into(),
        item: CartItem {
            product_id: product.into(),
            quantity,
        },
    };
    assert_eq!(cart.call(add("OLJCESPC7Z", 2)).await.unwrap(), Ok(Empty {}));
    assert_eq!(cart.call(add("6E92ZMYYFZ", 1)).await.unwrap(), Ok(Empty {}));
    assert_eq!(cart.call(add("OLJCESPC7Z", 3)).await.unwrap(), Ok(Empty {}));
    assert_eq!(
        cart.call(add("OLJCESPC7Z", 0)).await.unwrap(),
        Err(CartError::InvalidQuantity { quantity: 0 })
    );
    let got = cart
        .call(GetCart {
            user_id: "scenario-cart".into(),
        })
        .await
        .unwrap()
        .unwrap();
    let lines: Vec<(&str, i32)> = got
        .items
        .iter()
        .map(|i| (i.product_id.as_str(), i.quantity))
        .collect();
    assert_eq!(lines, [("OLJCESPC7Z", 5), ("6E92ZMYYFZ", 1)]);

    cart.call(EmptyCart {
        user_id: "scenario-cart".into(),
    })
    .await
    .unwrap()
    .unwrap();
    let got = cart
        .call(GetCart {
            user_id: "scenario-cart".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert!(got.items.is_empty());
}

pub async fn recommendation_asks_the_catalog(app: &App) {
    let recommendation = app.service::<Recommendation>();
    let exclude = vec!["OLJCESPC7Z".to_owned(), "66VCHSJNUP".to_owned()];
    for _ in 0..5 {
        let reply = recommendation
            .call(ListRecommendations {
                user_id: "scenario-recommendation".into(),
                product_ids: exclude.clone(),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reply.product_ids.len(), 5);
        let distinct: HashSet<&String> = reply.product_ids.iter().collect();
        assert_eq!(distinct.len(), 5);
        for id in &reply.product_ids {
            assert!(
                PRODUCT_IDS.contains(&id.as_str()),
                "{id} is not in the catalogue"
            );
            assert!(!exclude.contains(id), "{id} was excluded");
        }
    }
}

pub async fn many_calls_in_flight_get_their_own_replies(app: &App) {
    let catalog = app.service::<Catalog>();
    let currency = app.service::<Currency>();
    let mut calls = Vec::new();
    for i in 0..200usize {
        let catalog = catalog.clone();
        let currency = currency.clone();
        calls.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let id = PRODUCT_IDS[i % PRODUCT_IDS.len()];
                let product = catalog
                    .call(GetProduct { id: id.into() })
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(product.id, id);
            } else {
                let units = i64::try_from(i).unwrap();
                let converted = currency
                    .call(Convert {
                        from: Money::new("EUR", units, 0),
                        to_code: "EUR".into(),
                    })
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(converted, Money::new("EUR", units, 0));
            }
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
}
