//! The dashboard in a real browser: the three-node deployment as processes
//! under a steady trickle of shop visits, its dashboard opened on node
//! store (which runs no frontend: any node shows the whole deployment),
//! showing every node up with its modules and the frontend's calls to the
//! catalog as a live edge with a rate and latency percentiles. The
//! screenshot goes to `target/browser/dashboard/dashboard.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver`, like `tests/browser.rs`.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use storage::testing::TempDir;
use support::cluster::Cluster;
use support::shopper::Shopper;
use support::webdriver::{Driver, browser_or_skip};

#[actix_rt::test]
async fn the_dashboard_on_any_node_shows_every_node_and_live_calls_between_modules() {
    let Some((chromedriver, chromium)) = browser_or_skip("dashboard test") else {
        return;
    };
    // Every node knows every node's admin address, so that each can show
    // the whole deployment (the sockets are bound first, and handed to the
    // nodes, as `boutique up` does).
    let mut cluster = Cluster::start_with_admins(&[], &["web", "store", "pay"]).await;
    let store_admin = cluster.admin_url("store").await;

    // Visitors: the home page calls the catalog, currency, ads...
    let shop = cluster.shop_url().await;
    // Statuses other than 200, checked at the end (a panic in the task
    // would be lost when it is aborted).
    let refused = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let visits = actix_rt::spawn({
        let refused = std::sync::Arc::clone(&refused);
        async move {
            let mut shopper = Shopper::new(&shop);
            loop {
                let status = shopper.get("/").await.status;
                if status != 200 {
                    refused.lock().unwrap().push(status);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });

    let profile = TempDir::new("chromium-dashboard");
    let browser = Driver::start(chromedriver, chromium, profile.path()).await;
    browser.go(&format!("{store_admin}/")).await;
    assert_eq!(browser.text_of("#viewed-from").await, "store");

    // Wait for two readings: the edge then has a rate.
    let edge = "#edges tr[data-edge='frontend → catalog'] td:nth-child(3)";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rate: f64 = browser.text_of(edge).await.parse().unwrap_or(0.0);
        if rate > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "no rate for frontend → catalog");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for node in ["web", "store", "pay"] {
        let state = browser
            .text_of(&format!(".node[data-node='{node}'] .state"))
            .await;
        assert_eq!(state, "up", "{node}");
    }
    let web = browser.text_of(".node[data-node='web']").await;
    assert!(
        web.contains("frontend") && web.contains("checkout"),
        "{web}"
    );
    let p50 = browser
        .text_of("#edges tr[data-edge='frontend → catalog'] td:nth-child(5)")
        .await;
    assert!(p50.starts_with('≤'), "a latency percentile: {p50}");
    // The call graph draws the edges, each titled with its figures.
    let drawn = browser
        .text_of("#graph path.edge[data-edge='frontend → catalog']")
        .await;
    assert!(drawn.contains(" → ") && drawn.contains("/s"), "{drawn}");

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("browser/dashboard/dashboard.png");
    browser.screenshot(&shot).await;
    browser.quit().await;
    visits.abort();
    assert!(
        refused.lock().unwrap().is_empty(),
        "home pages refused while the dashboard watched: {:?}",
        refused.lock().unwrap()
    );
}
