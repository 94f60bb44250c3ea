//! The outermost layer. Every request starts a trace: the calls it causes,
//! on every node, carry its trace id, and so do the lines logged while
//! serving it (an `http` span with method, path and trace id); the response
//! says it in an `X-Trace-Id` header, for finding a request's trail in the
//! logs. Every request is recorded in the node's metrics by route (the
//! pattern it matched, like `/product/{id}`, so that ids do not make a
//! series each), method, status (499 for one dropped unanswered) and time
//! taken.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use runtime::http_metrics::HttpMetrics;
use tracing::Instrument;

/// The response header that names the request's trace.
pub(crate) const TRACE_HEADER: HeaderName = HeaderName::from_static("x-trace-id");

/// What a request that matched no route is recorded as.
const UNMATCHED: &str = "unmatched";

/// The most characters of a request's path a span keeps.
const MAX_PATH_IN_SPAN: usize = 256;

/// The middleware.
pub async fn measure(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let metrics = request.app_data::<web::Data<HttpMetrics>>().cloned();
    let method = request.method().as_str().to_owned();
    let path = request.path().to_owned();
    // The route the path matches, from the app's routes alone: known
    // before the request is served, so a request cut off before its
    // handler answered (a 408 at the request timeout) is counted under
    // its route, not as unmatched. By the path as routed, escapes decoded:
    // `/%70roduct/X` is a product page (it was counted as unmatched).
    let route = request
        .request()
        .resource_map()
        .match_pattern(request.match_info().as_str())
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let start = std::time::SystemTime::now();
    let (trace, serving) = runtime::new_trace(next.call(request));
    // At ERROR, as a call's span (`runtime::Call::span`): a span is
    // filtered by its own level, so at INFO a filter such as `warn` left
    // the frontend's warnings without the trace id the response carries.
    // Method and path as the client sent them, clipped.
    let span = tracing::error_span!(
        "http",
        method = %runtime::text::clipped(&method, 16),
        path = %runtime::text::clipped(&path, MAX_PATH_IN_SPAN),
        trace_id = %trace
    );
    let mut record = Record {
        metrics,
        route,
        method,
        path,
        started,
        start,
        trace,
        done: false,
    };
    // An error (the request timeout's 408) says the trace itself.
    let mut result = serving.instrument(span).await;
    if let Ok(response) = &mut result
        && let Ok(value) = HeaderValue::from_str(&trace.to_string())
    {
        response.headers_mut().insert(TRACE_HEADER, value);
    }
    let status = match &result {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    record.finish(status.as_u16());
    result
}

/// The status a request is recorded with when it was never answered:
/// its client went away (the connection reset), or the server's shutdown
/// cut it off. (nginx's "client closed request".)
pub(crate) const NOT_ANSWERED: u16 = 499;

/// What [`measure`] records of a request, once: when it is answered, or,
/// if it is dropped unanswered, as [`NOT_ANSWERED`]. Before, such a
/// request was counted nowhere, and the calls it made were exported under
/// a root span that never was.
struct Record {
    metrics: Option<web::Data<HttpMetrics>>,
    route: String,
    method: String,
    path: String,
    started: Instant,
    start: std::time::SystemTime,
    trace: runtime::TraceId,
    done: bool,
}

impl Record {
    fn finish(&mut self, status: u16) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let Some(metrics) = &self.metrics else {
            return;
        };
        let took = self.started.elapsed();
        metrics.record(&self.route, &self.method, status, took);
        if runtime::spans::enabled() {
            // Bounded: spans wait in a queue while the collector is slow
            // or down, and a client chooses the method and the path (up
            // to 64 KiB).
            let method = runtime::http_metrics::method_label(&self.method).to_owned();
            let route = std::mem::take(&mut self.route);
            runtime::spans::record(runtime::spans::SpanRecord {
                trace: self.trace,
                span_id: self.trace.root_span(),
                parent: 0,
                name: format!("HTTP {method} {route}"),
                kind: runtime::spans::SpanKind::Server,
                start: self.start,
                duration: took,
                attributes: vec![
                    ("http.request.method", method.into()),
                    ("http.route", route.into()),
                    (
                        "url.path",
                        runtime::text::clipped(&self.path, MAX_PATH_IN_SPAN).into(),
                    ),
                    ("http.response.status_code", i64::from(status).into()),
                ],
                failed: (500..600).contains(&status),
            });
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        self.finish(NOT_ANSWERED);
    }
}
