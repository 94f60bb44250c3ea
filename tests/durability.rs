//! Nothing is lost when the process stops: the real binary, killed and
//! started again on the same data, still has the user, their session,
//! their cart and their order; on SQLite (the default) and on PostgreSQL
//! when `BOUTIQUE_TEST_POSTGRES` names a server.

mod support;

use storage::testing::{TempDir, TestBackend, backends};
use support::shopper::Shopper;
use support::{data_dir, spawn_shop};

const SUNGLASSES: &str = "OLJCESPC7Z";
const MUG: &str = "6E92ZMYYFZ";

/// The overrides that put the shop's data in `data` and, for PostgreSQL,
/// every stored module in one shared database.
async fn overrides(backend: &TestBackend, data: &TempDir) -> Vec<String> {
    let mut overrides = vec![
        data_dir(data),
        "modules.frontend.listen=127.0.0.1:0".to_owned(),
    ];
    if let Some(url) = backend.database_url().await {
        for module in ["cart", "auth", "orders", "payment"] {
            overrides.push(format!("modules.{module}.database={url}"));
        }
    }
    overrides
}

#[actix_rt::test]
async fn the_user_their_session_cart_and_orders_survive_a_restart() {
    for backend in backends() {
        let data = TempDir::new("durable");
        let overrides = overrides(&backend, &data).await;

        let (mut shop, url) = spawn_shop(&overrides).await;
        let mut shopper = Shopper::new(&url);
        shopper
            .sign_up("Ada", "ada@example.com", "correct horse battery")
            .await;
        shopper.add_to_cart(SUNGLASSES, 2).await;
        let order_id = shopper.check_out().await;
        shopper.add_to_cart(MUG, 3).await;
        // Killed, not asked: whatever was answered was already stored.
        shop.kill().await.unwrap();

        let (_shop, url) = spawn_shop(&overrides).await;
        // The same browser: still signed in, same cart, same order.
        let mut same = Shopper::new(&url);
        same.set_cookie("shop_auth", shopper.cookie("shop_auth").unwrap());
        same.set_cookie(
            "shop_session-id",
            shopper.cookie("shop_session-id").unwrap(),
        );
        let cart = same.get("/cart").await;
        assert_eq!(
            cart.by_id("cart-count"),
            "3",
            "{}: {}",
            backend.name(),
            cart.body
        );
        cart.assert_contains("Mug");
        same.get("/orders").await.assert_contains(&order_id);
        let order = same.get(&format!("/order/{order_id}")).await;
        assert_eq!(order.status, 200, "{}", backend.name());
        order.assert_contains("Sunglasses");

        // Another browser: the account and its password are still there.
        let mut other = Shopper::new(&url);
        other
            .sign_in("ada@example.com", "correct horse battery")
            .await;
        other.get("/orders").await.assert_contains(&order_id);
    }
}
