//! The wire codec on the shop's real messages: bincode 2 (what the runtime
//! uses, behind `runtime::codec`) against postcard, by encoded size, encode
//! time and decode time. Run with `cargo bench --bench codec`; after
//! criterion's report (the times, `codec/<message>/<encode|decode>/<codec>`)
//! it prints the encoded sizes.
//!
//! The messages: the catalog's `ListProducts` answer (the nine products of
//! the shipped catalogue, from the catalog module itself), a `Convert`
//! request, a cart of three lines, and a checkout's `PlaceOrder`.

use std::time::Duration;

use cart::api::{Cart, CartItem};
use catalog::api::{Catalog, ListProducts, ListProductsResponse};
use checkout::api::PlaceOrder;
use criterion::Criterion;
use currency::api::{Convert, Money};
use payment::api::CreditCardInfo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shipping::api::Address;

/// The catalogue as the catalog module answers it.
fn products() -> ListProductsResponse {
    let system = actix_rt::System::new();
    system.block_on(async {
        let dir = std::env::temp_dir().join(format!("boutique-codec-bench-{}", std::process::id()));
        let catalog = runtime::start_alone::<catalog::CatalogModule>(
            Default::default(),
            runtime::ServiceRegistry::new(),
            &dir,
        )
        .await
        .unwrap();
        let listed: ListProductsResponse = catalog.call(ListProducts {}).await.unwrap().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        drop::<runtime::ServiceRef<Catalog>>(catalog);
        listed
    })
}

fn convert() -> Convert {
    Convert {
        from: Money {
            currency_code: "USD".to_owned(),
            units: 19,
            nanos: 990_000_000,
        },
        to_code: "EUR".to_owned(),
    }
}

fn cart() -> Cart {
    Cart {
        user_id: "0b5a8d8e-4a55-4d1c-9a67-7b4a3c2d1e0f".to_owned(),
        items: ["OLJCESPC7Z", "66VCHSJNUP", "6E92ZMYYFZ"]
            .iter()
            .zip(1..)
            .map(|(id, quantity)| CartItem {
                product_id: (*id).to_owned(),
                quantity,
            })
            .collect(),
        read_at_ms: 1_764_000_000_000,
    }
}

fn place_order() -> PlaceOrder {
    PlaceOrder {
        user_id: "0b5a8d8e-4a55-4d1c-9a67-7b4a3c2d1e0f".to_owned(),
        user_currency: "EUR".to_owned(),
        address: Address {
            street_address: "1600 Amphitheatre Parkway".to_owned(),
            city: "Mountain View".to_owned(),
            state: "CA".to_owned(),
            country: "United States".to_owned(),
            zip_code: 94043,
        },
        email: "someone@example.com".to_owned(),
        credit_card: CreditCardInfo {
            credit_card_number: "4432801561520454".to_owned(),
            credit_card_cvv: 672,
            credit_card_expiration_year: 2030,
            credit_card_expiration_month: 1,
        },
        idempotency_key: "5f1c2b7e-9d3a-4e8b-a6c1-2f4d5e6a7b8c".to_owned(),
        expected_total: None,
    }
}

/// Encode and decode one message both ways; returns (bincode size, postcard size).
fn compare<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    c: &mut Criterion,
    name: &str,
    message: &T,
) -> (usize, usize) {
    let bincode = runtime::codec::encode(message).unwrap();
    let postcard = postcard::to_allocvec(message).unwrap();
    assert_eq!(&runtime::codec::decode::<T>(&bincode).unwrap(), message);
    assert_eq!(&postcard::from_bytes::<T>(&postcard).unwrap(), message);
    let mut group = c.benchmark_group(name);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("encode/bincode", |b| {
        let mut out = Vec::with_capacity(bincode.len());
        b.iter(|| {
            out.clear();
            runtime::codec::encode_into(std::hint::black_box(message), &mut out).unwrap();
        })
    });
    group.bench_function("encode/postcard", |b| {
        let mut out = Vec::with_capacity(postcard.len());
        b.iter(|| {
            out.clear();
            out = postcard::to_extend(std::hint::black_box(message), std::mem::take(&mut out))
                .unwrap();
        })
    });
    group.bench_function("decode/bincode", |b| {
        b.iter(|| runtime::codec::decode::<T>(std::hint::black_box(&bincode)).unwrap())
    });
    group.bench_function("decode/postcard", |b| {
        b.iter(|| postcard::from_bytes::<T>(std::hint::black_box(&postcard)).unwrap())
    });
    group.finish();
    (bincode.len(), postcard.len())
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let products = products();
    let sizes = [
        (
            "ListProductsResponse (9 products)",
            compare(&mut c, "codec/list_products", &products),
        ),
        ("Convert", compare(&mut c, "codec/convert", &convert())),
        ("Cart (3 lines)", compare(&mut c, "codec/cart", &cart())),
        (
            "PlaceOrder",
            compare(&mut c, "codec/place_order", &place_order()),
        ),
    ];
    c.final_summary();
    println!("\nencoded sizes (bytes): bincode / postcard");
    for (name, (bincode, postcard)) in sizes {
        println!("  {name}: {bincode} / {postcard}");
    }
    println!("(times: see criterion's report above, codec/<message>/<encode|decode>/<codec>)");
}
