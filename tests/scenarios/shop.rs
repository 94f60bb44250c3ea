//! The shop over HTTP: the same journeys under every runner, through the
//! frontend wherever it runs, checking what the modules stored behind it.

use email::api::{Email, ListSentEmails};
use payment::api::{ChargeStatus, ListCharges, Payment};
use serde_json::json;

use crate::support::App;
use crate::support::shopper::checkout_form;

const SUNGLASSES: &str = "OLJCESPC7Z";
const MUG: &str = "6E92ZMYYFZ";

/// Every charge in the payment ledger.
async fn charges(app: &App) -> Vec<payment::api::ChargeRecord> {
    let all = ListCharges {
        idempotency_key: String::new(),
        limit: 1000,
    };
    app.service::<Payment>()
        .call(all)
        .await
        .unwrap()
        .unwrap()
        .charges
}

pub async fn a_visitor_browses_signs_up_buys_and_finds_the_order(app: &App) {
    let mut shopper = app.shopper().await;
    let base = app.shop_url().await;

    // Browse: every product, in dollars; a session cookie.
    let home = shopper.get("/").await;
    assert_eq!(home.status, 200);
    home.assert_contains("Sunglasses");
    home.assert_contains("$19.99");
    assert!(shopper.cookie("shop_session-id").is_some());

    // Switch currency, from a product page: back to that page, in euros.
    let referer = format!("{base}/product/{SUNGLASSES}");
    let switched = shopper
        .post_form_with(
            "/setCurrency",
            &[("currency_code", "EUR".to_owned())],
            &[("Referer", &referer)],
        )
        .await;
    assert_eq!(switched.status, 302);
    assert_eq!(switched.location.as_deref(), Some("/product/OLJCESPC7Z"));
    let product = shopper.get(&format!("/product/{SUNGLASSES}")).await;
    assert_eq!(product.status, 200);
    assert_eq!(product.by_id("price"), "€17.68");
    // Its ad, if it came within its 100 ms (the page does not wait
    // longer), as "Ad: <text>" (spec 2.8); the currency selector.
    if product.body.contains("class=\"ad\"") {
        product.assert_contains("<strong>Ad:</strong> <a href=");
    }
    product.assert_contains("action=\"/setCurrency\"");

    // Add to the cart as a visitor, then sign up: the cart follows.
    shopper.add_to_cart(SUNGLASSES, 2).await;
    shopper
        .sign_up("Ada", "ada@example.com", "correct horse battery")
        .await;
    shopper.add_to_cart(MUG, 1).await;
    let cart = shopper.get("/cart").await;
    assert_eq!(cart.by_id("cart-count"), "3");
    cart.assert_contains(">Empty Cart</button>");
    // 2 × €17.68, the mug €7.95, shipping €7.95.
    assert_eq!(cart.by_id("shipping"), "€7.95");
    assert_eq!(cart.by_id("total"), "€51.26");

    // Check out: a redirect to the stored order.
    let order_id = shopper.check_out().await;
    let order = shopper.get(&format!("/order/{order_id}")).await;
    assert_eq!(order.status, 200);
    order.assert_contains("Your order is complete!");
    // Its amounts are the order's: no currency selector (spec 2.10).
    assert!(!order.body.contains("action=\"/setCurrency\""));
    assert_eq!(order.by_id("order-id"), order_id);
    assert_eq!(order.by_id("total-paid"), "€51.26");
    assert_eq!(shopper.get("/cart").await.by_id("cart-count"), "0");
    shopper.get("/orders").await.assert_contains(&order_id);

    // Charged once, exactly what was shown; the confirmation recorded.
    let charges = charges(app).await;
    assert_eq!(charges.len(), 1);
    assert_eq!(
        charges[0].amount,
        currency::api::Money::new("EUR", 51, 260_000_000)
    );
    assert_eq!(charges[0].status, ChargeStatus::Charged);
    let sent = app
        .service::<Email>()
        .call(ListSentEmails {
            to: "someone@example.com".into(),
            limit: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.emails.len(), 1);
    assert!(
        sent.emails[0].text.contains(&order_id),
        "{}",
        sent.emails[0].text
    );

    // The order belongs to the account: another browser signs in and sees it.
    let mut elsewhere = app.shopper().await;
    elsewhere
        .sign_in("ada@example.com", "correct horse battery")
        .await;
    elsewhere.get("/orders").await.assert_contains(&order_id);
    assert_eq!(
        elsewhere.get(&format!("/order/{order_id}")).await.status,
        200
    );

    // Signing out drops the cookies; the order is no longer this browser's.
    let out = shopper.get("/logout").await;
    assert_eq!((out.status, out.location.as_deref()), (302, Some("/")));
    assert_eq!(shopper.cookie("shop_auth"), None);
    assert_eq!(shopper.cookie("shop_session-id"), None);
    let orders = shopper.get("/orders").await;
    assert_eq!(orders.status, 200, "{}", orders.body);
    assert!(!orders.body.contains(&order_id));
    assert_eq!(shopper.get(&format!("/order/{order_id}")).await.status, 404);
}

pub async fn a_program_buys_through_the_json_api(app: &App) {
    let mut program = app.shopper().await;
    let products = program
        .json("GET", "/api/v1/products?currency=JPY", None, &[])
        .await;
    assert_eq!(products.status, 200);
    let products = products.json();
    assert_eq!(products["currency"], "JPY");
    assert_eq!(products["products"][0]["id"], SUNGLASSES);
    // 19.99 USD is 2235.060592707 JPY, rounded to 2235.06.
    assert_eq!(products["products"][0]["price_text"], "¥2235.06");

    let signed = program
        .json(
            "POST",
            "/api/v1/users",
            Some(json!({"name": "Grace", "email": "grace@example.com", "password": "a long passphrase"})),
            &[],
        )
        .await;
    assert_eq!(signed.status, 201, "{}", signed.body);
    let token = signed.json()["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    // The token alone signs the program in, without cookies.
    let mut bare = app.shopper().await;
    let session = bare
        .json(
            "GET",
            "/api/v1/session",
            None,
            &[("Authorization", &bearer)],
        )
        .await;
    assert_eq!(session.json()["user"]["email"], "grace@example.com");

    let added = bare
        .json(
            "POST",
            "/api/v1/cart/items",
            Some(json!({"product_id": MUG, "quantity": 3})),
            &[("Authorization", &bearer)],
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.json()["item_count"], 3);

    let fields: serde_json::Map<String, serde_json::Value> = checkout_form("")
        .into_iter()
        .filter(|(name, _)| *name != "idempotency_key")
        .map(|(name, value)| (name.to_owned(), json!(value)))
        .collect();
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Idempotency-Key", "api-order-1"),
    ];
    let placed = bare
        .json("POST", "/api/v1/checkout", Some(json!(fields)), &headers)
        .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let order = placed.json()["order"].clone();
    // 3 × $8.99 + $8.99 shipping.
    assert_eq!(
        order["total"],
        json!({"currency_code": "USD", "units": 35, "nanos": 960_000_000})
    );
    // The same key again: the same order, not a second one.
    let again = bare
        .json("POST", "/api/v1/checkout", Some(json!(fields)), &headers)
        .await;
    assert_eq!(again.json()["order"]["order_id"], order["order_id"]);
    assert_eq!(charges(app).await.len(), 1);

    let listed = bare
        .json("GET", "/api/v1/orders", None, &[("Authorization", &bearer)])
        .await;
    assert_eq!(listed.json()["orders"][0]["order_id"], order["order_id"]);
}
