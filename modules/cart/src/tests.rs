//! Actor-message tests: the cart actor alone, through its messages.

use runtime::{Empty, ServiceRef, ServiceRegistry, start_alone};

use crate::api::{AddItem, Cart, CartError, CartItem, CartService, EmptyCart, GetCart};
use crate::{CartConfig, CartModule};

async fn cart() -> ServiceRef<CartService> {
    start_alone::<CartModule>(
        CartConfig::default(),
        ServiceRegistry::new(),
        std::env::temp_dir(),
    )
    .await
    .unwrap()
}

fn add(user: &str, product: &str, quantity: i32) -> AddItem {
    AddItem {
        user_id: user.into(),
        item: CartItem {
            product_id: product.into(),
            quantity,
        },
    }
}

fn line(product: &str, quantity: i32) -> CartItem {
    CartItem {
        product_id: product.into(),
        quantity,
    }
}

#[actix_rt::test]
async fn quantities_accumulate_and_lines_keep_their_order() {
    let cart = cart().await;
    for (product, quantity) in [("B", 1), ("A", 2), ("B", 3)] {
        assert_eq!(
            cart.call(add("u1", product, quantity)).await.unwrap(),
            Ok(Empty {})
        );
    }
    let reply = cart
        .call(GetCart {
            user_id: "u1".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reply,
        Cart {
            user_id: "u1".into(),
            items: vec![line("B", 4), line("A", 2)]
        }
    );
}

#[actix_rt::test]
async fn carts_are_per_user_and_empty_by_default() {
    let cart = cart().await;
    cart.call(add("u1", "A", 1)).await.unwrap().unwrap();
    let other = cart
        .call(GetCart {
            user_id: "u2".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.user_id, "u2");
    assert!(other.items.is_empty());
}

#[actix_rt::test]
async fn emptying_removes_every_line() {
    let cart = cart().await;
    cart.call(add("u1", "A", 1)).await.unwrap().unwrap();
    cart.call(EmptyCart {
        user_id: "u1".into(),
    })
    .await
    .unwrap()
    .unwrap();
    let reply = cart
        .call(GetCart {
            user_id: "u1".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert!(reply.items.is_empty());
}

#[actix_rt::test]
async fn bad_quantities_and_ids_are_refused_and_change_nothing() {
    let cart = cart().await;
    assert_eq!(
        cart.call(add("u1", "A", 0)).await.unwrap(),
        Err(CartError::InvalidQuantity { quantity: 0 })
    );
    assert_eq!(
        cart.call(add("u1", "A", -3)).await.unwrap(),
        Err(CartError::InvalidQuantity { quantity: -3 })
    );
    assert!(matches!(
        cart.call(add("", "A", 1)).await.unwrap(),
        Err(CartError::InvalidUserId { .. })
    ));
    assert!(matches!(
        cart.call(add("u1", "", 1)).await.unwrap(),
        Err(CartError::InvalidProductId { .. })
    ));
    cart.call(add("u1", "A", i32::MAX)).await.unwrap().unwrap();
    assert!(matches!(
        cart.call(add("u1", "A", 1)).await.unwrap(),
        Err(CartError::QuantityTooLarge { .. })
    ));
    let reply = cart
        .call(GetCart {
            user_id: "u1".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.items, vec![line("A", i32::MAX)]);
}

#[actix_rt::test]
async fn a_cart_holds_at_most_max_lines() {
    let cart = start_alone::<CartModule>(
        CartConfig { max_lines: 2 },
        ServiceRegistry::new(),
        std::env::temp_dir(),
    )
    .await
    .unwrap();
    cart.call(add("u1", "A", 1)).await.unwrap().unwrap();
    cart.call(add("u1", "B", 1)).await.unwrap().unwrap();
    assert_eq!(
        cart.call(add("u1", "C", 1)).await.unwrap(),
        Err(CartError::TooManyItems { max: 2 })
    );
    // Adding to an existing line still works.
    cart.call(add("u1", "A", 1)).await.unwrap().unwrap();
}

#[actix_rt::test]
async fn concurrent_adds_lose_no_update() {
    let cart = cart().await;
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let cart = cart.clone();
            actix_rt::spawn(async move { cart.call(add("u1", "A", 1)).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap().unwrap();
    }
    let reply = cart
        .call(GetCart {
            user_id: "u1".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.items, vec![line("A", 100)]);
}
