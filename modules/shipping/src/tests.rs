//! Actor-message tests: the shipping actor alone.

use cart::api::CartItem;
use currency::api::Money;
use runtime::{ServiceRef, ServiceRegistry, start_alone};

use crate::api::{Address, GetQuote, ShipOrder, Shipping, ShippingError};
use crate::{ShippingConfig, ShippingModule};

async fn shipping(config: ShippingConfig) -> ServiceRef<Shipping> {
    start_alone::<ShippingModule>(config, ServiceRegistry::new(), std::env::temp_dir())
        .await
        .unwrap()
}

fn address() -> Address {
    Address {
        street_address: "1600 Amphitheatre Parkway".into(),
        city: "Mountain View".into(),
        state: "CA".into(),
        country: "United States".into(),
        zip_code: 94043,
    }
}

fn items(quantities: &[i32]) -> Vec<CartItem> {
    quantities
        .iter()
        .enumerate()
        .map(|(i, q)| CartItem {
            product_id: format!("P{i}"),
            quantity: *q,
        })
        .collect()
}

#[actix_rt::test]
async fn the_quote_is_flat_and_zero_for_nothing() {
    let service = shipping(ShippingConfig::default()).await;
    let quote = |items| GetQuote {
        address: address(),
        items,
    };
    assert_eq!(
        service
            .call(quote(items(&[1, 4])))
            .await
            .unwrap()
            .unwrap()
            .cost_usd,
        Money::new("USD", 8, 990_000_000)
    );
    assert_eq!(
        service.call(quote(vec![])).await.unwrap().unwrap().cost_usd,
        Money::zero("USD")
    );
    assert!(matches!(
        service.call(quote(items(&[0]))).await.unwrap(),
        Err(ShippingError::InvalidQuantity { quantity: 0, .. })
    ));
}

#[actix_rt::test]
async fn shipping_gives_a_tracking_id_the_same_for_the_same_key() {
    let service = shipping(ShippingConfig::default()).await;
    let ship = |key: &str| ShipOrder {
        address: address(),
        items: items(&[2]),
        idempotency_key: key.into(),
    };
    let first = service
        .call(ship("order-1"))
        .await
        .unwrap()
        .unwrap()
        .tracking_id;
    let again = service
        .call(ship("order-1"))
        .await
        .unwrap()
        .unwrap()
        .tracking_id;
    let other = service
        .call(ship("order-2"))
        .await
        .unwrap()
        .unwrap()
        .tracking_id;
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert_eq!(first.len(), 18, "{first}");
    let empty = ShipOrder {
        address: address(),
        items: vec![],
        idempotency_key: String::new(),
    };
    assert_eq!(
        service.call(empty).await.unwrap(),
        Err(ShippingError::NothingToShip)
    );
}

#[actix_rt::test]
async fn fail_shipments_makes_every_shipment_fail() {
    let service = shipping(ShippingConfig {
        fail_shipments: true,
    })
    .await;
    let reply = service
        .call(ShipOrder {
            address: address(),
            items: items(&[1]),
            idempotency_key: "k".into(),
        })
        .await
        .unwrap();
    assert!(
        matches!(reply, Err(ShippingError::Unavailable { .. })),
        "{reply:?}"
    );
}

/// An empty list left out, as proto3's JSON writes it, is read as empty.
#[test]
fn a_request_with_its_empty_items_left_out_is_read() {
    let address = r#"{"street_address":"s","city":"c","state":"st","country":"co","zip_code":1}"#;
    let quote: GetQuote = serde_json::from_str(&format!(r#"{{"address":{address}}}"#)).unwrap();
    assert!(quote.items.is_empty());
    let ship: ShipOrder = serde_json::from_str(&format!(r#"{{"address":{address}}}"#)).unwrap();
    assert!(ship.items.is_empty() && ship.idempotency_key.is_empty());
}
