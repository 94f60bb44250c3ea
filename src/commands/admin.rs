//! The admin endpoints of a node, on `[nodes.NAME] admin = "HOST:PORT"`:
//!
//! | path | answer |
//! |---|---|
//! | `/healthz` | 200 `ok`: the process is alive and its main thread runs; 503 once that thread has been stuck for 15 s (see `runtime::pulse`) |
//! | `/readyz` | 200 `ready`, or 503 listing what stands in the way: a module of its own down, a module this node calls with no reachable replica, its main thread stuck for 3 s, a shutdown begun |
//! | `/metrics` | the node's metrics, in the OpenMetrics text format (which Prometheus reads) |
//! | `/` | the dashboard: the deployment's nodes, where each module runs, and a live call graph |
//! | `/api/deployment` | what the dashboard shows, as JSON: every node of the config, with its modules and its metrics (fetched from its admin endpoint) |
//!
//! Probes (Kubernetes, load balancers) use the first two, Prometheus the
//! third; `docs/operations.md` says what each metric means. The server is
//! one actix-web worker beside the node; it stops with the node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use runtime::{Node, Plan};
use serde_json::json;

/// Starts serving the admin endpoints of `node` at the config's admin
/// address `addr`: on `handed`, the socket `boutique up` bound for it (see
/// `boutique::handoff`), or else on a socket bound here. Returns the
/// address served (the port is chosen when `addr` has port 0) and a handle
/// that stops the server.
pub fn serve(
    node: Arc<Node>,
    plan: &Plan,
    addr: SocketAddr,
    handed: Option<std::net::TcpListener>,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let name = node.name().to_owned();
    let data = web::Data::from(node);
    let deployment = web::Data::new(Deployment::of(plan));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(deployment.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .route("/", web::get().to(dashboard))
            .route("/api/deployment", web::get().to(deployment_json))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1);
    let server = match handed {
        None => server.bind(addr),
        Some(listener) => {
            let handed = listener.local_addr()?;
            if addr.port() != 0 && handed != addr {
                anyhow::bail!(
                    "the admin socket handed down by `boutique up` listens on {handed}, but the config says {addr}"
                );
            }
            server.listen(listener)
        }
    }
    .map_err(|e| {
        anyhow::anyhow!(
            "node '{name}' cannot serve its admin endpoints on {addr} ([nodes.{name}] admin): {e}; \
             give it another address: --set nodes.{name}.admin=HOST:PORT (port 0: any free one)"
        )
    })?;
    let bound = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("the admin server bound no address"))?;
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "the admin server failed");
        }
    });
    Ok((bound, handle))
}

async fn healthz(node: web::Data<Node>) -> HttpResponse {
    match node.health() {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ok\n"),
        Err(why) => HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
            .content_type("text/plain; charset=utf-8")
            .body(format!("not ok: {why}\n")),
    }
}

async fn readyz(node: web::Data<Node>) -> HttpResponse {
    let readiness = node.readiness();
    if readiness.is_ready() {
        return HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ready\n");
    }
    let mut body = String::from("not ready:\n");
    for problem in &readiness.problems {
        body.push_str("- ");
        body.push_str(problem);
        body.push('\n');
    }
    HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

async fn metrics(node: web::Data<Node>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(node.metrics_text())
}

/// The deployment as the config describes it: the dashboard's skeleton.
struct Deployment {
    nodes: Vec<PlannedNode>,
}

struct PlannedNode {
    name: String,
    modules: Vec<&'static str>,
    admin: Option<SocketAddr>,
}

impl Deployment {
    fn of(plan: &Plan) -> Deployment {
        Deployment {
            nodes: plan
                .nodes()
                .iter()
                .map(|node| PlannedNode {
                    name: node.name.clone(),
                    modules: node.modules.clone(),
                    admin: node.admin,
                })
                .collect(),
        }
    }
}

/// How long the dashboard waits for another node's metrics.
const PEER_METRICS_WITHIN: Duration = Duration::from_secs(2);

async fn dashboard() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("dashboard.html"))
}

/// Every node of the config: its modules, and its metrics (this node's
/// own, the others' fetched from their admin endpoints), or why not.
async fn deployment_json(node: web::Data<Node>, deployment: web::Data<Deployment>) -> HttpResponse {
    let client = awc::Client::builder().timeout(PEER_METRICS_WITHIN).finish();
    let fetches = deployment.nodes.iter().map(|planned| {
        let client = &client;
        let node = &node;
        async move {
            let (state, metrics) = if planned.name == node.name() {
                ("up".to_owned(), node.metrics_text())
            } else {
                match planned.admin.filter(|a| a.port() != 0) {
                    // Not known to be down: this node has no way to ask
                    // (a pod under `deploy kube` knows only its own).
                    None => (
                        "unknown: no admin address for it in this node's config".to_owned(),
                        String::new(),
                    ),
                    Some(addr) => answered_for(&planned.name, fetch_metrics(client, addr).await),
                }
            };
            json!({
                "name": planned.name,
                "modules": planned.modules,
                "admin": planned.admin.map(|a| a.to_string()),
                "state": state,
                "metrics": metrics,
            })
        }
    });
    let nodes = futures_util::future::join_all(fetches).await;
    HttpResponse::Ok().json(json!({
        "viewed_from": node.name(),
        "nodes": nodes,
    }))
}

/// `fetched` from node `name`'s admin address, if its metrics are that
/// node's: an address that reaches another node (a wildcard `0.0.0.0:P`
/// in the config, which from here is this machine) showed that node's
/// figures under `name`, as up, and its calls twice. Said instead.
fn answered_for(name: &str, fetched: (String, String)) -> (String, String) {
    let (state, metrics) = fetched;
    if state != "up" || metrics.contains(&format!("node=\"{name}\"")) {
        return (state, metrics);
    }
    let other = metrics
        .split("node=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .filter(|other| !other.is_empty());
    let state = match other {
        Some(other) => format!(
            "unknown: its admin address, from this node, answers for node '{other}' \
             (a wildcard or loopback address reaches this machine)"
        ),
        None => "unknown: its admin address answers with no node's metrics".to_owned(),
    };
    (state, String::new())
}

/// `(state, metrics text)` of the node whose admin endpoint is `addr`,
/// within [`PEER_METRICS_WITHIN`] in all: the client's own timeout covers
/// only the wait for the answer's head, and a peer that stalls while it
/// sends the body would hold the page's request, and the admin worker,
/// for ever.
async fn fetch_metrics(client: &awc::Client, addr: SocketAddr) -> (String, String) {
    match actix_rt::time::timeout(PEER_METRICS_WITHIN, fetch_metrics_now(client, addr)).await {
        Ok(fetched) => fetched,
        Err(_) => (
            format!(
                "unreachable: http://{addr}/metrics did not answer within {} s",
                PEER_METRICS_WITHIN.as_secs()
            ),
            String::new(),
        ),
    }
}

async fn fetch_metrics_now(client: &awc::Client, addr: SocketAddr) -> (String, String) {
    let url = format!("http://{addr}/metrics");
    match client.get(&url).send().await {
        Ok(mut response) if response.status().is_success() => {
            match response.body().limit(16 * 1024 * 1024).await {
                Ok(body) => ("up".to_owned(), String::from_utf8_lossy(&body).into_owned()),
                Err(error) => (format!("unreachable: {error}"), String::new()),
            }
        }
        Ok(response) => (
            format!("unreachable: {url} answered {}", response.status()),
            String::new(),
        ),
        Err(error) => (format!("unreachable: {error}"), String::new()),
    }
}
