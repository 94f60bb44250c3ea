//! Spans reach an OpenTelemetry collector over OTLP/HTTP and join across
//! nodes: an in-process OTLP receiver takes what nodes web and pay (real
//! processes, `[telemetry] otlp_endpoint` set) export for one checkout, and
//! finds, under the trace id the shop returned, the HTTP request on web,
//! web's client span for the charge (inside the request's tree) and pay's
//! server span for it, whose parent is web's client span.

mod support;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::Value;
use support::cluster::Cluster;
use support::shopper::{Shopper, checkout_form};

/// Every span the receiver got, with the node that sent it.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

async fn receive(received: web::Data<Received>, body: web::Json<Value>) -> HttpResponse {
    for resource in body["resourceSpans"].as_array().into_iter().flatten() {
        let node = resource["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == "boutique.node")
            .and_then(|a| a["value"]["stringValue"].as_str())
            .unwrap_or_default()
            .to_owned();
        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
            for span in scope["spans"].as_array().into_iter().flatten() {
                received
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((node.clone(), span.clone()));
            }
        }
    }
    HttpResponse::Ok().json(serde_json::json!({}))
}

#[actix_rt::test]
async fn one_checkout_exports_one_trace_whose_spans_join_across_nodes() {
    let received: Received = Arc::default();
    let data = web::Data::new(Arc::clone(&received));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::JsonConfig::default().limit(16 * 1024 * 1024))
            .route("/v1/traces", web::post().to(receive))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let collector = server.addrs()[0];
    let running = server.run();
    let handle = running.handle();
    actix_rt::spawn(running);

    let endpoint = format!("telemetry.otlp_endpoint=http://{collector}");
    let cluster = Cluster::start(&[("web", &endpoint), ("pay", &endpoint)]).await;
    let mut shopper = Shopper::new(&cluster.shop_url().await);
    shopper.add_to_cart("OLJCESPC7Z", 1).await;
    let key = shopper.get("/cart").await.hidden("idempotency_key");
    let placed = shopper
        .post_form("/cart/checkout", &checkout_form(&key))
        .await;
    assert_eq!(placed.status, 303, "{}", placed.body);
    let trace = placed.trace_id.unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    let spans = loop {
        poll.tick().await;
        let spans: Vec<(String, Value)> = received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, span)| span["traceId"] == trace.as_str())
            .cloned()
            .collect();
        let has = |node: &str, name: &str, kind: u64| {
            spans
                .iter()
                .any(|(n, s)| n == node && s["name"] == name && s["kind"] == kind)
        };
        if has("web", "HTTP POST /cart/checkout", 2)
            && has("web", "payment.Charge", 3)
            && has("pay", "payment.Charge", 2)
        {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "the trace's spans did not all arrive: {spans:#?}"
        );
    };
    let find = |node: &str, name: &str, kind: u64| {
        &spans
            .iter()
            .find(|(n, s)| n == node && s["name"] == name && s["kind"] == kind)
            .unwrap()
            .1
    };
    let request = find("web", "HTTP POST /cart/checkout", 2);
    let client = find("web", "payment.Charge", 3);
    let server = find("pay", "payment.Charge", 2);
    assert!(
        request.get("parentSpanId").is_none(),
        "the request is the root: {request}"
    );
    assert_eq!(
        server["parentSpanId"], client["spanId"],
        "pay's span is the child of web's call"
    );
    // The charge is inside the request's tree: walk up from it on web.
    let by_id = |id: &Value| spans.iter().map(|(_, s)| s).find(|s| s["spanId"] == *id);
    let mut at = client;
    let mut hops = 0;
    while let Some(parent) = at.get("parentSpanId") {
        at = by_id(parent).unwrap_or_else(|| panic!("no span {parent} in {spans:#?}"));
        hops += 1;
        assert!(hops < 10, "a loop in {spans:#?}");
    }
    assert_eq!(
        at["spanId"], request["spanId"],
        "the charge descends from the request"
    );
    for span in [request, client, server] {
        let start: u64 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u64 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert!(end >= start && start > 0, "{span}");
        assert_eq!(span["status"]["code"], 0, "unset: {span}");
    }
    let status_code = request["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "http.response.status_code")
        .map(|a| a["value"].clone());
    assert_eq!(
        status_code,
        Some(serde_json::json!({"intValue": "303"})),
        "{request}"
    );
    handle.stop(false).await;
}
