//! The admin endpoints of real node processes: `/healthz` answers, `/readyz`
//! turns ready once every module a node's modules call has a reachable
//! replica and unready, naming it, when one goes; `/metrics` counts the
//! calls a node made (by caller, service, message, location and outcome,
//! with their durations) and served, the HTTP requests it answered, and
//! shows each peer's connection.

mod support;

use std::time::Duration;

use currency::api::{Convert, Currency, Money};
use support::cluster::Cluster;

/// GETs `url`: the status and the body.
async fn get(url: &str) -> (u16, String) {
    let client = awc::Client::default();
    let mut response = client.get(url).send().await.unwrap();
    let body = response.body().await.unwrap();
    (
        response.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// GETs `url` until it answers `status`; returns the body.
async fn until_status(url: &str, status: u16) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    loop {
        poll.tick().await;
        let (got, body) = get(url).await;
        if got == status {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} still answers {got}, not {status}: {body}"
        );
    }
}

/// The value of the sample `name{labels}` in a metrics page.
fn sample(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

#[actix_rt::test]
async fn health_readiness_and_metrics_of_real_nodes() {
    let mut cluster = Cluster::start(&[
        ("web", "nodes.web.admin=127.0.0.1:0"),
        ("web", "modules.frontend.request_timeout_ms=500"),
        ("store", "nodes.store.admin=127.0.0.1:0"),
    ])
    .await;
    let web = cluster.admin_url("web").await;
    assert_eq!(
        cluster.stdout_line("web", "dashboard at ").await,
        format!("{web}/"),
        "run prints the dashboard's URL"
    );
    let store = cluster.admin_url("store").await;

    assert_eq!(
        get(&format!("{web}/healthz")).await,
        (200, "ok\n".to_owned())
    );
    // Asking starts the dials; it turns ready without any call made.
    assert_eq!(until_status(&format!("{web}/readyz"), 200).await, "ready\n");
    // Store calls nobody: ready at once.
    assert_eq!(get(&format!("{store}/readyz")).await.0, 200);

    let currency = cluster.service::<Currency>(Duration::from_secs(10));
    for units in 1..=3 {
        let from = Money {
            currency_code: "USD".to_owned(),
            units,
            nanos: 0,
        };
        currency
            .call(Convert {
                from,
                to_code: "EUR".to_owned(),
            })
            .await
            .unwrap()
            .unwrap();
    }
    let (status, metrics) = get(&format!("{store}/metrics")).await;
    assert_eq!(status, 200);
    let served = sample(&metrics, "boutique_calls_served_total", "node=\"store\"").unwrap();
    assert!(served >= 3.0, "{metrics}");
    let (_, metrics) = get(&format!("{web}/metrics")).await;
    assert_eq!(
        sample(&metrics, "boutique_peer_up", "node=\"web\",peer=\"pay\""),
        Some(1.0),
        "{metrics}"
    );

    // A shopper's visits show up as HTTP requests, and the calls the
    // frontend made for them as remote calls.
    let mut shopper = support::shopper::Shopper::new(&cluster.shop_url().await);
    assert_eq!(shopper.get("/").await.status, 200);
    shopper.add_to_cart("OLJCESPC7Z", 1).await;
    let (_, metrics) = get(&format!("{web}/metrics")).await;
    let home = "node=\"web\",route=\"/\",method=\"GET\",status=\"200\"";
    assert!(
        sample(&metrics, "boutique_http_requests_total", home) >= Some(1.0),
        "{metrics}"
    );
    let listed = "node=\"web\",caller=\"frontend\",service=\"catalog\",message=\"ListProducts\",location=\"remote\"";
    assert!(
        sample(
            &metrics,
            "boutique_calls_total",
            &format!("{listed},outcome=\"ok\"")
        ) >= Some(1.0),
        "{metrics}"
    );
    assert!(
        sample(&metrics, "boutique_call_duration_seconds_count", listed) >= Some(1.0),
        "{metrics}"
    );
    for direction in ["sent", "received"] {
        let name = format!("boutique_peer_{direction}_bytes_total");
        let moved = sample(&metrics, &name, "node=\"web\",peer=\"store\"");
        assert!(moved > Some(100.0), "{name}: {metrics}");
    }

    // A request cut off at the shop's request timeout (a body that never
    // comes) is answered 408, and counted and timed as any other.
    let shop = cluster.shop_url().await;
    let address = shop.trim_start_matches("http://").trim_end_matches('/');
    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    slow.write_all(
        b"POST /cart HTTP/1.1\r\nHost: shop\r\n\
          Content-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 100\r\n\r\nproduct_id=",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer))
        .await
        .expect("no answer, the connection still open")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (_, metrics) = get(&format!("{web}/metrics")).await;
    let cut_off = "node=\"web\",route=\"/cart\",method=\"POST\",status=\"408\"";
    assert_eq!(
        sample(&metrics, "boutique_http_requests_total", cut_off),
        Some(1.0),
        "{metrics}"
    );

    // A path written with escapes is counted under the route that served
    // it (it was counted as unmatched).
    assert_eq!(shopper.get("/%70roduct/OLJCESPC7Z").await.status, 200);
    let (_, metrics) = get(&format!("{web}/metrics")).await;
    let product = "node=\"web\",route=\"/product/{id}\",method=\"GET\",status=\"200\"";
    assert_eq!(
        sample(&metrics, "boutique_http_requests_total", product),
        Some(1.0),
        "{metrics}"
    );

    // Pay goes: web is not ready, and says what it misses.
    cluster.kill("pay").await;
    let body = until_status(&format!("{web}/readyz"), 503).await;
    assert!(
        body.contains("checkout calls payment") && body.contains("node 'pay'"),
        "{body}"
    );
    let (_, metrics) = get(&format!("{web}/metrics")).await;
    assert_eq!(
        sample(&metrics, "boutique_peer_up", "node=\"web\",peer=\"pay\""),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        get(&format!("{web}/healthz")).await.0,
        200,
        "alive all the same"
    );
    // The cart page needs a shipping quote from pay: 503, and the failed
    // call is counted by kind.
    assert_eq!(shopper.get("/cart").await.status, 503);
    let (_, metrics) = get(&format!("{web}/metrics")).await;
    let quote = "node=\"web\",caller=\"frontend\",service=\"shipping\",message=\"GetQuote\",location=\"remote\",outcome=\"not_delivered\"";
    assert!(
        sample(&metrics, "boutique_calls_total", quote) >= Some(1.0),
        "{metrics}"
    );
    let cart = "node=\"web\",route=\"/cart\",method=\"GET\",status=\"503\"";
    assert_eq!(
        sample(&metrics, "boutique_http_requests_total", cart),
        Some(1.0),
        "{metrics}"
    );

    // Back: ready again.
    cluster.restart("pay").await;
    until_status(&format!("{web}/readyz"), 200).await;
}

/// Node `name` in the dashboard's `deployment` JSON.
fn node_in<'a>(deployment: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    deployment["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| node["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {deployment:#}"))
}

/// A server that answers every request with the head of a 200 and a few
/// bytes of its body, then sends nothing more, holding the connection.
async fn stalls_mid_body() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    actix_rt::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0; 4096];
            let _ = stream.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\n# HELP";
            let _ = stream.write_all(head.as_bytes()).await;
            held.push(stream);
        }
    });
    addr
}

#[actix_rt::test]
async fn the_dashboard_does_not_wait_for_a_node_that_stalls_sending_its_metrics() {
    let stalling = stalls_mid_body().await;
    let pay_admin = format!("nodes.pay.admin={stalling}");
    let mut cluster =
        Cluster::start(&[("web", "nodes.web.admin=127.0.0.1:0"), ("web", &pay_admin)]).await;
    let web = cluster.admin_url("web").await;
    let started = std::time::Instant::now();
    let fetched = tokio::time::timeout(
        Duration::from_secs(20),
        get(&format!("{web}/api/deployment")),
    )
    .await;
    let (status, body) = fetched.expect("the dashboard's data did not come within 20 s");
    assert_eq!(status, 200, "{body}");
    let deployment: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pay = node_in(&deployment, "pay");
    let state = pay["state"].as_str().unwrap_or_default();
    assert!(
        state.starts_with("unreachable") && state.contains("did not answer within 2 s"),
        "{pay:#}"
    );
    // A node web has no admin address for is not known to be down.
    let store = node_in(&deployment, "store");
    assert!(
        store["state"]
            .as_str()
            .is_some_and(|state| state.starts_with("unknown: no admin address")),
        "{store:#}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// A server that answers every request with `body`, as `/metrics` would.
async fn answers_metrics(body: &'static str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    actix_rt::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0; 4096];
            let _ = stream.read(&mut request).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    addr
}

/// A node whose admin address reaches another node's (from web, `0.0.0.0`
/// is web's own machine) is not shown up with that node's figures.
#[actix_rt::test]
async fn the_dashboard_does_not_show_another_nodes_metrics_under_a_nodes_name() {
    let elsewhere = answers_metrics("boutique_node_up{node=\"web\"} 1\n").await;
    let pay_admin = format!("nodes.pay.admin={elsewhere}");
    let mut cluster =
        Cluster::start(&[("web", "nodes.web.admin=127.0.0.1:0"), ("web", &pay_admin)]).await;
    let web = cluster.admin_url("web").await;
    let (status, body) = get(&format!("{web}/api/deployment")).await;
    assert_eq!(status, 200, "{body}");
    let deployment: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pay = node_in(&deployment, "pay");
    let state = pay["state"].as_str().unwrap_or_default();
    assert!(
        state.starts_with("unknown") && state.contains("answers for node 'web'"),
        "{pay:#}"
    );
    assert_eq!(pay["metrics"], "", "{pay:#}");
}
