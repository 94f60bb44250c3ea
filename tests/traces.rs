//! Traces cross node boundaries: a checkout over HTTP on node web and the
//! charge it causes on node pay log the same trace id (JSON logs of the real
//! binary as three processes), which the shop also returns to the browser;
//! and each call is a span with its caller, service, message, location,
//! call id, trace id, outcome and duration.

mod support;

use serde_json::Value;
use support::cluster::Cluster;

/// Node `name`'s JSON log lines.
fn json_lines(cluster: &mut Cluster, name: &str) -> Vec<Value> {
    cluster
        .log(name)
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The trace id of the span around the first line whose message is
/// `message`, as node `name` logged it.
fn trace_of(lines: &[Value], message: &str) -> Option<String> {
    lines
        .iter()
        .find(|line| line["fields"]["message"] == message)
        .and_then(|line| line["span"]["trace_id"].as_str())
        .map(str::to_owned)
}

#[actix_rt::test]
async fn a_checkout_and_the_charge_it_causes_on_another_node_log_one_trace_id() {
    let json = [
        ("web", "logging.level=info,boutique::call=debug"),
        ("web", "logging.format=json"),
        ("pay", "logging.level=info"),
        ("pay", "logging.format=json"),
    ];
    let mut cluster = Cluster::start(&json).await;
    let mut shopper = support::shopper::Shopper::new(&cluster.shop_url().await);
    shopper.add_to_cart("OLJCESPC7Z", 1).await;
    let cart = shopper.get("/cart").await;
    let key = cart.hidden("idempotency_key");
    let placed = shopper
        .post_form("/cart/checkout", &support::shopper::checkout_form(&key))
        .await;
    assert_eq!(placed.status, 303, "{}", placed.body);
    let trace = placed.trace_id.expect("the response names its trace");
    assert_eq!(trace.len(), 32, "{trace}");
    assert_ne!(
        cart.trace_id.as_deref(),
        Some(trace.as_str()),
        "one trace per request"
    );

    // Lines are written as they happen; the charge's may follow the
    // answer by a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut poll = tokio::time::interval(std::time::Duration::from_millis(20));
    loop {
        poll.tick().await;
        let web = json_lines(&mut cluster, "web");
        let pay = json_lines(&mut cluster, "pay");
        let placed_in = trace_of(&web, "order placed");
        let charged_in = trace_of(&pay, "charged");
        if placed_in.is_some() && charged_in.is_some() {
            assert_eq!(placed_in.as_deref(), Some(trace.as_str()), "web: {web:#?}");
            assert_eq!(charged_in.as_deref(), Some(trace.as_str()), "pay: {pay:#?}");
            // Logged in the span of the Charge call that charged.
            let charged = pay
                .iter()
                .find(|line| line["fields"]["message"] == "charged")
                .map(|line| &line["span"]);
            let charged = charged.unwrap_or_else(|| panic!("pay: {pay:#?}"));
            assert_eq!(charged["module"], "payment", "{charged}");
            assert_eq!(charged["message"], "Charge", "{charged}");
            assert!(charged["call_id"].as_u64().is_some(), "{charged}");
            // Every call is a span, written out when it ends: the
            // checkout's charge, as web saw it.
            let charge = web
                .iter()
                .filter(|line| line["fields"]["message"] == "call ended")
                .map(|line| &line["span"])
                .find(|span| span["name"] == "call" && span["service"] == "payment")
                .unwrap_or_else(|| panic!("no span of the charge on web: {web:#?}"));
            assert_eq!(charge["caller"], "checkout", "{charge}");
            assert_eq!(charge["message"], "Charge", "{charge}");
            assert_eq!(charge["location"], "remote", "{charge}");
            assert_eq!(charge["outcome"], "ok", "{charge}");
            assert_eq!(charge["trace_id"], trace.as_str(), "{charge}");
            assert!(
                charge["duration_us"].as_u64().is_some_and(|us| us > 0),
                "{charge}"
            );
            assert!(charge["call_id"].as_u64().is_some(), "{charge}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no 'order placed' on web or no 'charged' on pay:\nweb: {web:#?}\npay: {pay:#?}"
        );
    }

    // Every line a module logged says which module: a handler's in its
    // call's span, the others with a `module` field (in their own span,
    // or on the line).
    for node in ["web", "pay"] {
        for line in json_lines(&mut cluster, node) {
            let target = line["target"].as_str().unwrap_or_default();
            let crate_name = target.split("::").next().unwrap_or_default();
            if !SHOP_MODULES.contains(&crate_name) {
                continue;
            }
            let module = line["span"]["module"]
                .as_str()
                .or_else(|| line["fields"]["module"].as_str())
                .or_else(|| {
                    line["spans"]
                        .as_array()
                        .and_then(|spans| spans.iter().find_map(|span| span["module"].as_str()))
                });
            assert!(module.is_some(), "{node}: a line with no module: {line}");
        }
    }
}

/// The crates of the shop's modules (their log targets).
const SHOP_MODULES: [&str; 12] = [
    "catalog",
    "currency",
    "cart",
    "recommendation",
    "ads",
    "shipping",
    "payment",
    "email",
    "orders",
    "auth",
    "checkout",
    "frontend",
];
