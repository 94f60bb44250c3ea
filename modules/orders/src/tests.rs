//! Actor-message tests: the orders actor alone, on every storage backend.

use cart::api::CartItem;
use currency::api::Money;
use runtime::{ServiceRef, ServiceRegistry, start_alone};
use shipping::api::Address;
use storage::testing::{TempDir, TestBackend, backends};

use crate::api::{
    ClaimOrders, ConfirmOrder, FindOrder, GetOrder, ListOrders, Order, OrderItem, Orders,
    OrdersError, SaveOrder,
};
use crate::{OrdersConfig, OrdersModule};

async fn orders(backend: &TestBackend, dir: &TempDir) -> (ServiceRef<Orders>, Option<String>) {
    let url = backend.database_url().await;
    let config = OrdersConfig {
        database: url.clone(),
    };
    let service = start_alone::<OrdersModule>(config, ServiceRegistry::new(), dir.path())
        .await
        .unwrap();
    (service, url)
}

fn order(id: &str, customer: &str, placed_at: i64) -> Order {
    Order {
        order_id: id.into(),
        customer_id: customer.into(),
        email: "someone@example.com".into(),
        shipping_tracking_id: "AB-44123-221234567".into(),
        shipping_cost: Money::new("EUR", 7, 952_233_525),
        shipping_address: Address {
            street_address: "1600 Amphitheatre Parkway".into(),
            city: "Mountain View".into(),
            state: "CA".into(),
            country: "United States".into(),
            zip_code: 94043,
        },
        items: vec![OrderItem {
            item: CartItem {
                product_id: "OLJCESPC7Z".into(),
                quantity: 2,
            },
            cost: Money::new("EUR", 17, 682_441_398),
            name: "Sunglasses".into(),
        }],
        total: Money::new("EUR", 43, 317_116_321),
        transaction_id: "tx".into(),
        placed_at,
        cart_read_at: None,
    }
}

fn save(order: Order, key: &str) -> SaveOrder {
    SaveOrder {
        order,
        idempotency_key: key.into(),
    }
}

#[actix_rt::test]
async fn an_order_is_stored_once_per_key_and_read_back_intact() {
    for backend in backends() {
        let dir = TempDir::new("orders");
        let (orders, _) = orders(&backend, &dir).await;
        let first = orders
            .call(save(order("o1", "u1", 1), "k1"))
            .await
            .unwrap()
            .unwrap();
        assert!(first.created);
        // The same checkout again, with a new order id: the first one stands.
        let again = orders
            .call(save(order("o2", "u1", 2), "k1"))
            .await
            .unwrap()
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.order, order("o1", "u1", 1), "{}", backend.name());
        let got = orders
            .call(GetOrder {
                customer_id: "u1".into(),
                order_id: "o1".into(),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, order("o1", "u1", 1));
        let found = orders
            .call(FindOrder {
                idempotency_key: "k1".into(),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.order.map(|o| o.order_id), Some("o1".to_owned()));
    }
}

#[actix_rt::test]
async fn customers_see_only_their_orders_newest_first() {
    for backend in backends() {
        let dir = TempDir::new("orders");
        let (orders, _) = orders(&backend, &dir).await;
        for (id, customer, at) in [("a", "u1", 1), ("b", "u2", 2), ("c", "u1", 3)] {
            orders
                .call(save(order(id, customer, at), id))
                .await
                .unwrap()
                .unwrap();
        }
        let list = orders
            .call(ListOrders {
                customer_id: "u1".into(),
                before: None,
            })
            .await
            .unwrap()
            .unwrap();
        let ids: Vec<&str> = list.orders.iter().map(|o| o.order_id.as_str()).collect();
        assert_eq!(ids, ["c", "a"], "{}", backend.name());
        let theirs = GetOrder {
            customer_id: "u1".into(),
            order_id: "b".into(),
        };
        assert_eq!(
            orders.call(theirs).await.unwrap(),
            Err(OrdersError::NotFound {
                order_id: "b".into()
            })
        );
    }
}

#[actix_rt::test]
async fn a_visitors_orders_move_to_their_account() {
    for backend in backends() {
        let dir = TempDir::new("orders");
        let (orders, _) = orders(&backend, &dir).await;
        orders
            .call(save(order("a", "session-1", 1), "a"))
            .await
            .unwrap()
            .unwrap();
        let claim = ClaimOrders {
            from_customer_id: "session-1".into(),
            to_customer_id: "user-1".into(),
        };
        assert_eq!(orders.call(claim).await.unwrap().unwrap().moved, 1);
        let list = orders
            .call(ListOrders {
                customer_id: "user-1".into(),
                before: None,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(list.orders.len(), 1);
        assert_eq!(list.orders[0].customer_id, "user-1", "{}", backend.name());
    }
}

#[actix_rt::test]
async fn bad_orders_are_refused() {
    for backend in backends() {
        let dir = TempDir::new("orders");
        let (orders, _) = orders(&backend, &dir).await;
        let mut empty = order("a", "u", 1);
        empty.items.clear();
        assert_eq!(
            orders.call(save(empty, "k")).await.unwrap(),
            Err(OrdersError::InvalidOrder(
                "the order has no items".to_owned()
            ))
        );
        assert_eq!(
            orders.call(save(order("a", "u", 1), "")).await.unwrap(),
            Err(OrdersError::InvalidOrder(
                "the idempotency key is empty".to_owned()
            ))
        );
    }
}

#[actix_rt::test]
async fn orders_survive_a_restart() {
    for backend in backends() {
        let dir = TempDir::new("orders");
        let (orders, url) = orders(&backend, &dir).await;
        orders
            .call(save(order("a", "u", 1), "k"))
            .await
            .unwrap()
            .unwrap();
        drop(orders);
        let config = OrdersConfig { database: url };
        let again = start_alone::<OrdersModule>(config, ServiceRegistry::new(), dir.path())
            .await
            .unwrap();
        let list = again
            .call(ListOrders {
                customer_id: "u".into(),
                before: None,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(list.orders, vec![order("a", "u", 1)], "{}", backend.name());
    }
}

#[actix_rt::test]
async fn an_order_is_confirmed_once_checkout_says_so() {
    for backend in backends() {
        let dir = TempDir::new("orders");
        let (orders, _) = orders(&backend, &dir).await;
        let find = || FindOrder {
            idempotency_key: "k1".into(),
        };
        let confirm = |key: &str| ConfirmOrder {
            idempotency_key: key.into(),
        };
        orders
            .call(save(order("o1", "u1", 1), "k1"))
            .await
            .unwrap()
            .unwrap();
        let found = orders.call(find()).await.unwrap().unwrap();
        assert_eq!(found.order, Some(order("o1", "u1", 1)));
        assert!(!found.confirmed, "{}", backend.name());

        for _ in 0..2 {
            let confirmed = orders.call(confirm("k1")).await.unwrap().unwrap();
            assert!(confirmed.found, "{}", backend.name());
            assert!(orders.call(find()).await.unwrap().unwrap().confirmed);
        }
        let unknown = orders.call(confirm("k2")).await.unwrap().unwrap();
        assert!(!unknown.found, "{}", backend.name());
    }
}

#[actix_rt::test]
async fn a_settled_lookup_finds_what_is_stored_and_leaves_nothing_behind() {
    for backend in backends() {
        let dir = TempDir::new("orders");
        let (orders, _) = orders(&backend, &dir).await;
        let settled = |key: &str| crate::api::FindSettledOrder {
            idempotency_key: key.into(),
        };
        // Nothing under the key: none, and the key stays free (the row
        // the lookup writes to wait on the key is taken back).
        assert_eq!(
            orders.call(settled("k1")).await.unwrap().unwrap().order,
            None
        );
        let (saved, created) = {
            let answer = orders
                .call(save(order("o1", "c1", 1), "k1"))
                .await
                .unwrap()
                .unwrap();
            (answer.order, answer.created)
        };
        assert!(created);
        // Stored: found, with its state.
        let found = orders.call(settled("k1")).await.unwrap().unwrap();
        assert_eq!(found.order, Some(saved));
        assert!(!found.confirmed);
        let listed = ListOrders {
            customer_id: "c1".into(),
            before: None,
        };
        assert_eq!(orders.call(listed).await.unwrap().unwrap().orders.len(), 1);
    }
}

#[actix_rt::test]
async fn a_settled_lookup_waits_for_an_order_still_being_written() {
    use sqlx::Connection;
    for backend in backends() {
        if matches!(backend, TestBackend::Sqlite) {
            // Writes take turns there: nothing to wait for.
            continue;
        }
        let dir = TempDir::new("orders");
        let (orders, url) = orders(&backend, &dir).await;
        let Some(url) = url else { continue };
        // A save whose connection was lost, still running on the server:
        // its transaction has written the row and not committed yet.
        let mut writer = sqlx::AnyConnection::connect(&url).await.unwrap();
        let mut late = writer.begin().await.unwrap();
        let body = serde_json::to_string(&order("o9", "c1", 9)).unwrap();
        sqlx::query(
            "INSERT INTO orders (order_id, idempotency_key, customer_id, placed_at, body, stored_at) \
             VALUES ('o9', 'k9', 'c1', 9, $1, 9)",
        )
        .bind(body)
        .execute(&mut *late)
        .await
        .unwrap();

        let lookup = tokio::task::spawn_local(orders.call(crate::api::FindSettledOrder {
            idempotency_key: "k9".into(),
        }));
        // The lookup waits on the key (a plain read would answer "none"
        // at once, and the order would land after it).
        storage::testing::until_waiting_for_lock(&url, "INSERT INTO orders%fence%", "orders").await;
        assert!(!lookup.is_finished(), "the lookup answered without waiting");
        late.commit().await.unwrap();
        let found = lookup.await.unwrap().unwrap().unwrap();
        assert_eq!(found.order.map(|o| o.order_id), Some("o9".to_owned()));
    }
}
