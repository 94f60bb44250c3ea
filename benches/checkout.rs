//! End-to-end checkout: what one order costs, from a line put in the cart
//! to the order stored, confirmed and its cart emptied, through the real
//! modules and their SQLite databases.
//!
//! Run with `cargo bench --bench checkout`. Two deployments of the same
//! modules:
//!
//! - `checkout/monolith`: `config.toml`, every module in one node, the
//!   caller in it (every call local);
//! - `checkout/split`: `deploy/three-nodes.toml`, each node on a thread of
//!   its own (as a process of its own would be), the caller a client: the
//!   caller's two calls cross to node `web`, and checkout's calls to
//!   `store` (cart, catalog, currency, orders) and `pay` (payment,
//!   shipping, email) cross over loopback TCP.
//!
//! Each iteration is one new customer: `AddItem` (one product), then
//! `PlaceOrder` (price, quote, charge, ship, store, empty the cart, send
//! the confirmation). The databases are files under the target directory,
//! so the disk's speed is part of the figure, as it is of the shop's.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cart::api::{AddItem, CartItem, CartService};
use checkout::api::{Checkout, PlaceOrder};
use criterion::Criterion;
use payment::api::CreditCardInfo;
use runtime::config::{self, ConfigSource, EnvSource, Plan};
use runtime::transport::handshake::Secret;
use runtime::{Node, ServiceRef};
use shipping::api::Address;

/// The product every order buys (the catalogue's sunglasses).
const PRODUCT: &str = "OLJCESPC7Z";

fn secret() -> Secret {
    Secret::from_bytes("bench", b"a secret for the benchmark only".to_vec()).unwrap()
}

/// A data directory of its own for `label`, empty.
fn data_dir(label: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-checkout-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The deployment in `file` (relative to the repository), with `overrides`.
fn plan(file: &str, overrides: Vec<String>) -> Plan {
    let source = ConfigSource {
        file: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file)),
        env: EnvSource::Ignore,
        overrides,
    };
    Plan::new(config::load(&source).unwrap(), &boutique::catalogue()).unwrap()
}

/// What every deployment here sets: its files in `dir`, the web server on
/// a free port.
fn shop_overrides(dir: &std::path::Path) -> Vec<String> {
    vec![
        format!("runtime.data_dir={}", dir.display()),
        "modules.frontend.listen=127.0.0.1:0".to_owned(),
    ]
}

fn order(user: &str) -> PlaceOrder {
    PlaceOrder {
        user_id: user.to_owned(),
        user_currency: "EUR".to_owned(),
        address: Address {
            street_address: "1600 Amphitheatre Parkway".into(),
            city: "Mountain View".into(),
            state: "CA".into(),
            country: "United States".into(),
            zip_code: 94043,
        },
        email: "someone@example.com".into(),
        credit_card: CreditCardInfo {
            credit_card_number: "4432-8015-6152-0454".into(),
            credit_card_cvv: 672,
            credit_card_expiration_year: 2099,
            credit_card_expiration_month: 1,
        },
        idempotency_key: String::new(),
        expected_total: None,
    }
}

/// The caller's two refs, and a counter that makes each customer new.
struct Shop {
    cart: ServiceRef<CartService>,
    checkout: ServiceRef<Checkout>,
    label: &'static str,
    customers: u64,
}

impl Shop {
    /// The refs `node` hands out, for customers labelled `label`.
    fn of(node: &Node, label: &'static str) -> Shop {
        Shop {
            cart: node.service().unwrap(),
            checkout: node.service().unwrap(),
            label,
            customers: 0,
        }
    }

    /// Time for `iters` customers, one after another, each putting a line
    /// in their cart and checking out.
    async fn orders(&mut self, iters: u64) -> Duration {
        let started = Instant::now();
        for _ in 0..iters {
            self.customers += 1;
            let user = format!("bench-{}-{}", self.label, self.customers);
            let add = AddItem {
                user_id: user.clone(),
                item: CartItem {
                    product_id: PRODUCT.to_owned(),
                    quantity: 1,
                },
            };
            self.cart.call(add).await.unwrap().unwrap();
            let placed = self.checkout.call(order(&user)).await.unwrap().unwrap();
            std::hint::black_box(placed);
        }
        started.elapsed()
    }
}

fn monolith(c: &mut Criterion, system: &actix_rt::SystemRunner) {
    let dir = data_dir("monolith");
    let plan = plan("config.toml", shop_overrides(&dir));
    let node = system
        .block_on(Node::start(&plan, "main", &boutique::catalogue()))
        .unwrap();
    let mut shop = Shop::of(&node, "monolith");
    c.bench_function("checkout/monolith", |b| {
        b.iter_custom(|iters| system.block_on(shop.orders(iters)))
    });
    system.block_on(node.shutdown_gracefully(Duration::from_secs(10)));
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts node `name` of `plan` on a thread of its own, listening on
/// `listener`; returns once it runs.
fn start_node_thread(plan: &Plan, name: &str, listener: std::net::TcpListener) {
    let (plan, name) = (plan.clone(), name.to_owned());
    let (ready, is_ready) = mpsc::channel();
    std::thread::spawn(move || {
        let system = actix_rt::System::new();
        system.block_on(async move {
            let _node = Node::builder(&plan, &boutique::catalogue())
                .listener(listener)
                .secret(secret())
                .start(&name)
                .await
                .unwrap();
            ready.send(()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    is_ready.recv().unwrap();
}

fn split(c: &mut Criterion, system: &actix_rt::SystemRunner) {
    let dir = data_dir("split");
    let file = "deploy/three-nodes.toml";
    let names: Vec<String> = plan(file, shop_overrides(&dir))
        .nodes()
        .iter()
        .map(|node| node.name.clone())
        .collect();
    let listeners: Vec<std::net::TcpListener> = names
        .iter()
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut overrides = shop_overrides(&dir);
    for (name, listener) in names.iter().zip(&listeners) {
        overrides.push(format!(
            "nodes.{name}.listen={}",
            listener.local_addr().unwrap()
        ));
    }
    let plan = plan(file, overrides);
    for (name, listener) in names.iter().zip(listeners) {
        start_node_thread(&plan, name, listener);
    }
    let client = system
        .block_on(
            Node::builder(&plan, &boutique::catalogue())
                .secret(secret())
                .client(),
        )
        .unwrap();
    let mut shop = Shop::of(&client, "split");
    c.bench_function("checkout/split", |b| {
        b.iter_custom(|iters| system.block_on(shop.orders(iters)))
    });
    // The node threads end with the process; their files go now.
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let system = actix_rt::System::new();
    monolith(&mut c, &system);
    split(&mut c, &system);
    c.final_summary();
}
