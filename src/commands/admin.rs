//! The admin endpoints of a node, on `[nodes.NAME] admin = "HOST:PORT"`:
//!
//! | path | answer |
//! |---|---|
//! | `/healthz` | 200 `ok`: the process is alive and serving |
//! | `/readyz` | 200 `ready`, or 503 listing what stands in the way: a module this node calls with no reachable replica |
//! | `/metrics` | the node's metrics, Prometheus text format |
//!
//! Probes (Kubernetes, load balancers) use the first two, Prometheus the
//! third; `docs/operations.md` says what each metric means. The server is
//! one actix-web worker beside the node; it stops with the node.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use runtime::Node;

/// Starts serving the admin endpoints of `node` on `addr`; returns the
/// address bound (the port is chosen when `addr` has port 0) and a handle
/// that stops the server.
pub fn serve(node: Arc<Node>, addr: SocketAddr) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let data = web::Data::from(node);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr)
    .map_err(|e| anyhow::anyhow!("cannot serve the admin endpoints on {addr}: {e}"))?;
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

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok\n")
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
