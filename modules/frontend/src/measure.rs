//! The outermost layer. Every request starts a trace: the calls it causes,
//! on every node, carry its trace id, and so do the lines logged while
//! serving it (an `http` span with method, path and trace id); the response
//! says it in an `X-Trace-Id` header, for finding a request's trail in the
//! logs. Every answered request is recorded in the node's metrics by route
//! (the pattern it matched, like `/product/{id}`, so that ids do not make a
//! series each), method, status and time taken.

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
    // its route, not as unmatched.
    let route = request
        .match_pattern()
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
    // An error (the request timeout's 408) says the trace itself.
    let mut result = serving.instrument(span).await;
    if let Ok(response) = &mut result
        && let Ok(value) = HeaderValue::from_str(&trace.to_string())
    {
        response.headers_mut().insert(TRACE_HEADER, value);
    }
    if let Some(metrics) = metrics {
        let status = match &result {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        let took = started.elapsed();
        metrics.record(&route, &method, status.as_u16(), took);
        if runtime::spans::enabled() {
            // Bounded: spans wait in a queue while the collector is slow
            // or down, and a client chooses the method and the path (up
            // to 64 KiB).
            let method = runtime::http_metrics::method_label(&method).to_owned();
            runtime::spans::record(runtime::spans::SpanRecord {
                trace,
                span_id: trace.root_span(),
                parent: 0,
                name: format!("HTTP {method} {route}"),
                kind: runtime::spans::SpanKind::Server,
                start,
                duration: took,
                attributes: vec![
                    ("http.request.method", method.into()),
                    ("http.route", route.into()),
                    (
                        "url.path",
                        runtime::text::clipped(&path, MAX_PATH_IN_SPAN).into(),
                    ),
                    (
                        "http.response.status_code",
                        i64::from(status.as_u16()).into(),
                    ),
                ],
                failed: status.is_server_error(),
            });
        }
    }
    result
}
