//! Actor-message tests: the cart actor alone, on every storage backend the
//! environment offers.

use runtime::{Empty, ServiceRef, ServiceRegistry, start_alone};
use storage::testing::{TempDir, backends, until_waiting_for_lock};

use crate::api::{
    AddItem, Cart, CartError, CartItem, CartService, EmptyCart, GetCart, MergeCarts,
    RemoveOrderedLines, RemoveOrderedLinesResponse,
};
use crate::{CartConfig, CartModule};

/// A cart module on a fresh database of each backend; each directory lives
/// as long as its ref.
async fn carts(max_lines: usize) -> Vec<(ServiceRef<CartService>, TempDir, Option<String>)> {
    let mut started = Vec::new();
    for backend in backends() {
        let dir = TempDir::new("cart");
        let url = backend.database_url().await;
        let config = CartConfig {
            database: url.clone(),
            max_lines,
            ..CartConfig::default()
        };
        let cart = start_alone::<CartModule>(config, ServiceRegistry::new(), dir.path())
            .await
            .unwrap();
        started.push((cart, dir, url));
    }
    started
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

async fn items(cart: &ServiceRef<CartService>, user: &str) -> Vec<CartItem> {
    cart.call(GetCart {
        user_id: user.into(),
    })
    .await
    .unwrap()
    .unwrap()
    .items
}

#[actix_rt::test]
async fn quantities_accumulate_and_lines_keep_their_order() {
    for (cart, _dir, _) in carts(100).await {
        for (product, quantity) in [("B", 1), ("A", 2), ("B", 3)] {
            assert_eq!(
                cart.call(add("u1", product, quantity)).await.unwrap(),
                Ok(Empty {})
            );
        }
        let before = storage::unix_ms();
        let reply = cart
            .call(GetCart {
                user_id: "u1".into(),
            })
            .await
            .unwrap()
            .unwrap();
        // Read then, by the cart's clock.
        assert!(
            (before..=storage::unix_ms()).contains(&reply.read_at_ms),
            "{reply:?}"
        );
        assert_eq!(
            reply,
            Cart {
                user_id: "u1".into(),
                items: vec![line("B", 4), line("A", 2)],
                read_at_ms: reply.read_at_ms,
            }
        );
    }
}

#[actix_rt::test]
async fn carts_are_per_user_and_empty_by_default() {
    for (cart, _dir, _) in carts(100).await {
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
}

#[actix_rt::test]
async fn emptying_removes_every_line() {
    for (cart, _dir, _) in carts(100).await {
        cart.call(add("u1", "A", 1)).await.unwrap().unwrap();
        cart.call(add("u2", "A", 1)).await.unwrap().unwrap();
        cart.call(EmptyCart {
            user_id: "u1".into(),
        })
        .await
        .unwrap()
        .unwrap();
        assert!(items(&cart, "u1").await.is_empty());
        assert_eq!(items(&cart, "u2").await, vec![line("A", 1)]);
    }
}

#[actix_rt::test]
async fn bad_quantities_and_ids_are_refused_and_change_nothing() {
    for (cart, _dir, _) in carts(100).await {
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
        // Refused alike on every backend (PostgreSQL stores no NUL).
        assert!(matches!(
            cart.call(add("u1", "A\u{0}", 1)).await.unwrap(),
            Err(CartError::InvalidProductId { .. })
        ));
        assert!(matches!(
            cart.call(add("u\u{0}1", "A", 1)).await.unwrap(),
            Err(CartError::InvalidUserId { .. })
        ));
        cart.call(add("u1", "A", i32::MAX)).await.unwrap().unwrap();
        assert!(matches!(
            cart.call(add("u1", "A", 1)).await.unwrap(),
            Err(CartError::QuantityTooLarge { .. })
        ));
        assert_eq!(items(&cart, "u1").await, vec![line("A", i32::MAX)]);
    }
}

#[actix_rt::test]
async fn a_cart_holds_at_most_max_lines() {
    for (cart, _dir, _) in carts(2).await {
        cart.call(add("u1", "A", 1)).await.unwrap().unwrap();
        cart.call(add("u1", "B", 1)).await.unwrap().unwrap();
        assert_eq!(
            cart.call(add("u1", "C", 1)).await.unwrap(),
            Err(CartError::TooManyItems { max: 2 })
        );
        // Adding to an existing line still works.
        cart.call(add("u1", "A", 1)).await.unwrap().unwrap();
    }
}

#[actix_rt::test]
async fn concurrent_adds_lose_no_update() {
    for (cart, _dir, _) in carts(100).await {
        let calls: Vec<_> = (0..100)
            .map(|_| {
                let cart = cart.clone();
                actix_rt::spawn(async move { cart.call(add("u1", "A", 1)).await })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap().unwrap();
        }
        assert_eq!(items(&cart, "u1").await, vec![line("A", 100)]);
    }
}

#[actix_rt::test]
async fn a_visitors_cart_merges_into_the_users() {
    for (cart, _dir, _) in carts(100).await {
        cart.call(add("session", "A", 2)).await.unwrap().unwrap();
        cart.call(add("session", "C", 1)).await.unwrap().unwrap();
        cart.call(add("user", "B", 1)).await.unwrap().unwrap();
        cart.call(add("user", "A", 1)).await.unwrap().unwrap();
        let merge = MergeCarts {
            from_user_id: "session".into(),
            into_user_id: "user".into(),
        };
        assert_eq!(cart.call(merge).await.unwrap(), Ok(Empty {}));
        assert_eq!(
            items(&cart, "user").await,
            vec![line("B", 1), line("A", 3), line("C", 1)]
        );
        assert!(items(&cart, "session").await.is_empty());
    }
}

#[actix_rt::test]
async fn carts_survive_a_restart() {
    for (cart, dir, url) in carts(100).await {
        cart.call(add("u1", "A", 2)).await.unwrap().unwrap();
        drop(cart);
        let config = CartConfig {
            database: url,
            max_lines: 100,
            ..CartConfig::default()
        };
        let again = start_alone::<CartModule>(config, ServiceRegistry::new(), dir.path())
            .await
            .unwrap();
        assert_eq!(items(&again, "u1").await, vec![line("A", 2)]);
    }
}

#[actix_rt::test]
async fn reads_interleaved_with_writes_never_leave_an_old_cart_behind() {
    // Carts read are kept in memory (the default config): reads racing
    // writes must never leave a copy older than the database's.
    for (cart, _dir, _) in carts(100).await {
        assert!(items(&cart, "u").await.is_empty());
        let mut calls = Vec::new();
        for _ in 0..40 {
            let adding = cart.clone();
            calls.push(actix_rt::spawn(async move {
                adding.call(add("u", "A", 1)).await.unwrap().unwrap();
            }));
            let reading = cart.clone();
            calls.push(actix_rt::spawn(async move {
                items(&reading, "u").await;
            }));
        }
        for call in calls {
            call.await.unwrap();
        }
        assert_eq!(items(&cart, "u").await, vec![line("A", 40)]);
        // And after emptying, and after merging another cart in.
        cart.call(EmptyCart {
            user_id: "u".into(),
        })
        .await
        .unwrap()
        .unwrap();
        assert!(items(&cart, "u").await.is_empty());
        cart.call(add("s", "B", 2)).await.unwrap().unwrap();
        assert_eq!(items(&cart, "s").await, vec![line("B", 2)]);
        cart.call(MergeCarts {
            from_user_id: "s".into(),
            into_user_id: "u".into(),
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(items(&cart, "u").await, vec![line("B", 2)]);
        assert!(items(&cart, "s").await.is_empty());
    }
}

#[actix_rt::test]
async fn more_of_a_line_added_while_it_is_merged_is_not_lost() {
    use sqlx::{Connection, PgConnection};
    use std::time::{Duration, Instant};

    for (cart, _dir, url) in carts(100).await {
        // PostgreSQL only (BOUTIQUE_TEST_POSTGRES; CI sets it): on SQLite
        // a write transaction takes the whole database's write lock first,
        // so a merge and an add never overlap.
        let Some(url) = url else { continue };
        cart.call(add("guest:s", "P", 1)).await.unwrap().unwrap();

        // Another writer (as another replica's add would) has 2 more of P
        // in the guest's cart, not yet committed, when the merge starts.
        let mut other = PgConnection::connect(&url).await.unwrap();
        let mut adding = other.begin().await.unwrap();
        sqlx::query(
            "UPDATE cart_items SET quantity = quantity + 2 WHERE user_id = $1 AND product_id = $2",
        )
        .bind("guest:s")
        .bind("P")
        .execute(&mut *adding)
        .await
        .unwrap();
        let (adding_xid,): (String,) = sqlx::query_as("SELECT pg_current_xact_id()::xid::text")
            .fetch_one(&mut *adding)
            .await
            .unwrap();
        let merging = actix_rt::spawn({
            let cart = cart.clone();
            async move {
                cart.call(MergeCarts {
                    from_user_id: "guest:s".into(),
                    into_user_id: "u".into(),
                })
                .await
            }
        });
        // The merge reaches the line and waits for the add to finish: a
        // lock on the add's transaction is asked for and not granted (by
        // this test's merge: nothing else knows that transaction).
        let mut watcher = PgConnection::connect(&url).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (waiting,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM pg_locks \
                 WHERE locktype = 'transactionid' AND transactionid::text = $1 AND NOT granted",
            )
            .bind(&adding_xid)
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the merge never waited for the add"
            );
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
        adding.commit().await.unwrap();
        assert_eq!(merging.await.unwrap().unwrap(), Ok(Empty {}));

        assert_eq!(items(&cart, "u").await, vec![line("P", 3)]);
        assert_eq!(items(&cart, "guest:s").await, vec![]);
    }
}

/// Asks `cart` to remove from `user`'s cart the `ordered` lines of an
/// order placed at `since`; what it did: (removed, lines left).
async fn remove_ordered(
    cart: &ServiceRef<CartService>,
    user: &str,
    ordered: Vec<CartItem>,
    since: Option<i64>,
) -> (u32, u32) {
    let remove = RemoveOrderedLines {
        user_id: user.into(),
        items: ordered,
        unchanged_since_ms: since,
    };
    let RemoveOrderedLinesResponse {
        removed,
        lines_left,
    } = cart.call(remove).await.unwrap().unwrap();
    (removed, lines_left)
}

#[actix_rt::test]
async fn an_orders_lines_are_removed_where_they_hold_just_what_was_ordered() {
    for (cart, _dir, _) in carts(100).await {
        cart.call(add("u", "A", 2)).await.unwrap().unwrap();
        cart.call(add("u", "B", 1)).await.unwrap().unwrap();
        cart.call(add("u", "C", 3)).await.unwrap().unwrap();
        // A as ordered goes; B holds another quantity, C was not ordered,
        // D is not there: they stay.
        let ordered = vec![line("A", 2), line("B", 2), line("D", 1)];
        assert_eq!(remove_ordered(&cart, "u", ordered, None).await, (1, 2));
        assert_eq!(items(&cart, "u").await, vec![line("B", 1), line("C", 3)]);
        // In any order; the cart left empty says so.
        let ordered = vec![line("C", 3), line("B", 1)];
        assert_eq!(
            remove_ordered(&cart, "u", ordered.clone(), None).await,
            (2, 0)
        );
        assert_eq!(items(&cart, "u").await, vec![]);
        // Asked again, nothing more to do.
        assert_eq!(remove_ordered(&cart, "u", ordered, None).await, (0, 0));
        // A product named twice counts once, its quantities added.
        cart.call(add("u", "E", 2)).await.unwrap().unwrap();
        let ordered = vec![line("E", 1), line("E", 1)];
        assert_eq!(remove_ordered(&cart, "u", ordered, None).await, (1, 0));
    }
}

/// The time now (ms), once the clock has moved past it: whatever is
/// changed after this returns is changed after that time.
async fn a_moment_passed() -> i64 {
    let now = storage::unix_ms();
    while storage::unix_ms() <= now {
        tokio::task::yield_now().await;
    }
    now
}

#[actix_rt::test]
async fn lines_put_in_again_since_the_order_are_not_removed_for_it() {
    for (cart, _dir, _) in carts(100).await {
        let ordered = || vec![line("A", 2), line("B", 1)];
        // Filled, then ordered: removed.
        cart.call(add("u", "A", 2)).await.unwrap().unwrap();
        cart.call(add("u", "B", 1)).await.unwrap().unwrap();
        let placed = a_moment_passed().await;
        assert_eq!(
            remove_ordered(&cart, "u", ordered(), Some(placed)).await,
            (2, 0)
        );

        // Emptied by the customer and filled again with the same lines
        // after the order: the next purchase, left as it is.
        cart.call(add("u", "A", 2)).await.unwrap().unwrap();
        cart.call(add("u", "B", 1)).await.unwrap().unwrap();
        let placed_before = placed;
        assert_eq!(
            remove_ordered(&cart, "u", ordered(), Some(placed_before)).await,
            (0, 2)
        );
        assert_eq!(items(&cart, "u").await, vec![line("A", 2), line("B", 1)]);

        // Other things put in since the order stay; the order's lines go.
        // (Before, a cart holding anything else kept the order's lines
        // too, and the customer could pay for them again.)
        cart.call(EmptyCart {
            user_id: "u".into(),
        })
        .await
        .unwrap()
        .unwrap();
        cart.call(add("u", "A", 2)).await.unwrap().unwrap();
        cart.call(add("u", "B", 1)).await.unwrap().unwrap();
        let placed = a_moment_passed().await;
        cart.call(add("u", "C", 1)).await.unwrap().unwrap();
        assert_eq!(
            remove_ordered(&cart, "u", ordered(), Some(placed)).await,
            (2, 1)
        );
        assert_eq!(items(&cart, "u").await, vec![line("C", 1)]);

        // A line grown since the order is changed: it stays, the other
        // goes.
        cart.call(EmptyCart {
            user_id: "u".into(),
        })
        .await
        .unwrap()
        .unwrap();
        cart.call(add("u", "A", 1)).await.unwrap().unwrap();
        cart.call(add("u", "B", 1)).await.unwrap().unwrap();
        let placed = a_moment_passed().await;
        cart.call(add("u", "A", 1)).await.unwrap().unwrap();
        assert_eq!(
            remove_ordered(&cart, "u", vec![line("A", 1), line("B", 1)], Some(placed)).await,
            (1, 1)
        );
        assert_eq!(items(&cart, "u").await, vec![line("A", 2)]);
        // Asked without a time, holding the ordered quantity is enough.
        assert_eq!(
            remove_ordered(&cart, "u", vec![line("A", 2)], None).await,
            (1, 0)
        );

        // A guest's lines moved at sign-in, after the order, are still
        // the lines ordered: removed.
        cart.call(add("guest:g", "A", 2)).await.unwrap().unwrap();
        cart.call(add("guest:g", "B", 1)).await.unwrap().unwrap();
        let placed = a_moment_passed().await;
        let merge = MergeCarts {
            from_user_id: "guest:g".into(),
            into_user_id: "v".into(),
        };
        cart.call(merge).await.unwrap().unwrap();
        assert_eq!(
            remove_ordered(&cart, "v", ordered(), Some(placed)).await,
            (2, 0)
        );
    }
}

#[actix_rt::test]
async fn merges_into_one_cart_from_two_replicas_at_once_do_not_deadlock() {
    // Two replicas of the cart on one database: each merges a guest's
    // lines, added in the opposite order to the other's, into one user.
    for backend in backends() {
        let Some(url) = backend.database_url().await else {
            continue;
        };
        let dir = TempDir::new("cart-replicas");
        let first = crate::store::Store::open(Some(&url), dir.path(), None)
            .await
            .unwrap();
        let second = crate::store::Store::open(Some(&url), dir.path(), None)
            .await
            .unwrap();
        for round in 0..10 {
            let (a, b, user) = (
                format!("guest-a-{round}"),
                format!("guest-b-{round}"),
                format!("user-{round}"),
            );
            for (guest, products) in [(&a, ["P1", "P2", "P3"]), (&b, ["P3", "P2", "P1"])] {
                for product in products {
                    first.add(guest, product, 1).await.unwrap();
                }
            }
            let (merged_a, merged_b) =
                tokio::join!(first.merge(&a, &user), second.merge(&b, &user));
            merged_a.unwrap();
            merged_b.unwrap();
            let mut lines: Vec<(String, i32)> = first
                .get(&user)
                .await
                .unwrap()
                .into_iter()
                .map(|item| (item.product_id, item.quantity))
                .collect();
            lines.sort();
            assert_eq!(
                lines,
                vec![("P1".into(), 2), ("P2".into(), 2), ("P3".into(), 2)]
            );
        }
    }
}

/// On PostgreSQL, emptying a cart while a merge into it is under way (it
/// has added to one line, locking it, and inserted another) waits for the
/// merge and then empties the whole cart: the order "merge, then empty".
/// One `DELETE` left the inserted line alone, an outcome of neither order.
#[actix_rt::test]
async fn emptying_a_cart_a_merge_is_writing_into_empties_all_of_it() {
    use sqlx::Connection as _;
    for backend in backends() {
        let Some(url) = backend.database_url().await else {
            continue;
        };
        let dir = TempDir::new("cart-empty-merge");
        let store = crate::store::Store::open(Some(&url), dir.path(), None)
            .await
            .unwrap();
        store.add("user", "A", 1).await.unwrap();
        let mut merging = sqlx::AnyConnection::connect(&url).await.unwrap();
        let mut merge = merging.begin().await.unwrap();
        sqlx::query("UPDATE cart_items SET quantity = quantity + 1 WHERE user_id = 'user'")
            .execute(&mut *merge)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO cart_items (user_id, product_id, quantity, added_at, changed_at) \
             VALUES ('user', 'B', 1, 0, 0)",
        )
        .execute(&mut *merge)
        .await
        .unwrap();
        let merge_ends = async {
            // Once the emptying waits for the merge's lock, the merge ends.
            until_waiting_for_lock(&url, "%FROM cart_items%", "cart_items").await;
            merge.commit().await.unwrap();
        };
        let (emptied, ()) = tokio::join!(store.empty("user"), merge_ends);
        emptied.unwrap();
        assert_eq!(store.get("user").await.unwrap(), vec![]);
    }
}

/// On PostgreSQL, taking an order's line out while an add to that line is
/// under way waits for the add, then looks at the line again: grown, it
/// is not the order's any more, and stays whole.
#[actix_rt::test]
async fn an_ordered_line_an_add_is_growing_is_not_removed() {
    use sqlx::Connection as _;
    for backend in backends() {
        let Some(url) = backend.database_url().await else {
            continue;
        };
        let dir = TempDir::new("cart-remove-add");
        let store = crate::store::Store::open(Some(&url), dir.path(), None)
            .await
            .unwrap();
        store.add("user", "A", 1).await.unwrap();
        let placed = a_moment_passed().await;
        let mut adding = sqlx::AnyConnection::connect(&url).await.unwrap();
        let mut add = adding.begin().await.unwrap();
        sqlx::query(
            "UPDATE cart_items SET quantity = quantity + 1, changed_at = $1 \
             WHERE user_id = 'user' AND product_id = 'A'",
        )
        .bind(storage::unix_ms())
        .execute(&mut *add)
        .await
        .unwrap();
        let add_ends = async {
            // Once the removal waits for the add's lock, the add ends.
            until_waiting_for_lock(&url, "DELETE FROM cart_items%", "cart_items").await;
            add.commit().await.unwrap();
        };
        let ordered = [line("A", 1)];
        let (removed, ()) = tokio::join!(
            store.remove_ordered_lines("user", &ordered, Some(placed)),
            add_ends
        );
        assert_eq!(
            removed.unwrap(),
            RemoveOrderedLinesResponse {
                removed: 0,
                lines_left: 1
            }
        );
        assert_eq!(store.get("user").await.unwrap(), vec![line("A", 2)]);
    }
}

/// Runs `operation` on the cart `cart` (lines B, then A, on disk) on each
/// back end that locks rows (PostgreSQL), against a write to that cart
/// that holds A and then wants B, as a write in product order does; both
/// must go through. Returns the stores, for what the test checks after.
async fn race_a_write_in_product_order(
    label: &str,
    cart: &'static str,
    operation: impl AsyncFn(&crate::store::Store) -> Result<(), CartError>,
) -> Vec<(TempDir, crate::store::Store)> {
    use sqlx::Connection as _;
    let mut stores = Vec::new();
    for backend in backends() {
        let Some(url) = backend.database_url().await else {
            continue;
        };
        let dir = TempDir::new(label);
        let store = crate::store::Store::open(Some(&url), dir.path(), None)
            .await
            .unwrap();
        store.add(cart, "B", 1).await.unwrap();
        store.add(cart, "A", 1).await.unwrap();
        let mut writing = sqlx::AnyConnection::connect(&url).await.unwrap();
        let mut write = writing.begin().await.unwrap();
        let touch = |product: &'static str| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE cart_items SET quantity = quantity + 1 \
                 WHERE user_id = '{cart}' AND product_id = '{product}'"
            )))
        };
        touch("A").execute(&mut *write).await.unwrap();
        let write_goes_on = async {
            // Once the operation waits for A, the write goes on to B.
            until_waiting_for_lock(&url, "%cart_items%", "cart_items").await;
            touch("B").execute(&mut *write).await.map(|_| ())?;
            write.commit().await
        };
        let (done, wrote) = tokio::join!(operation(&store), write_goes_on);
        assert!(wrote.is_ok(), "{label}: the write failed: {wrote:?}");
        assert!(done.is_ok(), "{label}: the operation failed: {done:?}");
        stores.push((dir, store));
    }
    stores
}

/// On PostgreSQL, emptying a cart while another write holds one of its
/// lines and goes on to the next in product order (as a merge, or an
/// order's lines taken out, do) waits for it, and both go through. A
/// `DELETE` alone took the lines in the order they lie on disk (here the
/// later product first), held it, and waited for the other: a deadlock,
/// and one of the two failed.
#[actix_rt::test]
async fn emptying_a_cart_does_not_deadlock_with_a_write_in_product_order() {
    let stores = race_a_write_in_product_order("cart-empty-order", "user", async |store| {
        store.empty("user").await
    })
    .await;
    for (_dir, store) in stores {
        assert_eq!(store.get("user").await.unwrap(), vec![]);
    }
}

/// The same for a merge's taking of the guest's lines: its `DELETE`
/// locked them in the order it found them on disk, and deadlocked with a
/// write to the guest's cart in product order (an order's lines taken
/// out), one of the two failing.
#[actix_rt::test]
async fn a_merge_does_not_deadlock_with_a_write_to_the_guests_cart_in_product_order() {
    let stores = race_a_write_in_product_order("cart-merge-order", "guest", async |store| {
        store.merge("guest", "user").await
    })
    .await;
    for (_dir, store) in stores {
        assert_eq!(store.get("guest").await.unwrap(), vec![]);
        let mut quantities: Vec<(String, i32)> = store
            .get("user")
            .await
            .unwrap()
            .into_iter()
            .map(|item| (item.product_id, item.quantity))
            .collect();
        quantities.sort();
        assert_eq!(quantities, vec![("A".into(), 2), ("B".into(), 2)]);
    }
}
