//! Metrics of the HTTP requests a module serves (the shop's frontend):
//! `boutique_http_requests_total{route, method, status}` and
//! `boutique_http_request_duration_seconds{route, method}`, in the node's
//! metrics. A module gets its handle from
//! [`StartContext::http_metrics`](crate::StartContext::http_metrics) and
//! records each request it served (499 for one never answered); a module
//! started alone (tests) gets one that records into nothing anyone reads.
//!
//! Every label takes a bounded set of values, whatever clients send: the
//! route is the pattern matched (or `unmatched`), and a method other than
//! the standard ones is recorded as `other` (any token is a valid method,
//! so a label of raw methods would let anyone grow the metrics without
//! bound, a series per made-up method).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

fn duration_histogram() -> Histogram {
    // 100 µs to about 100 s, each bucket four times the one before.
    Histogram::new(exponential_buckets(0.000_1, 4.0, 11))
}

/// Where a node's HTTP request metrics go. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl HttpMetrics {
    /// Families registered in `registry`.
    pub(crate) fn new(registry: &mut Registry) -> HttpMetrics {
        let metrics = HttpMetrics::default();
        registry.register(
            "boutique_http_requests",
            "HTTP requests answered, by route (the pattern matched, e.g. /product/{id}; unmatched: none), method and status.",
            metrics.requests.clone(),
        );
        registry.register(
            "boutique_http_request_duration_seconds",
            "How long HTTP requests took to answer, by route and method.",
            metrics.durations.clone(),
        );
        metrics
    }

    /// Records one answered request.
    pub fn record(&self, route: &str, method: &str, status: u16, took: Duration) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                method: method.to_owned(),
            })
            .observe(took.as_secs_f64());
    }
}

/// The label for request method `method`: itself if standard, else
/// `other` (a client makes up methods at will: each would be a series, or
/// a span name, of its own).
pub fn method_label(method: &str) -> &str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    STANDARD
        .iter()
        .find(|standard| **standard == method)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        let mut registry = Registry::default();
        let metrics = HttpMetrics::new(&mut registry);
        metrics.record("/", "GET", 200, Duration::from_millis(1));
        for n in 0..100 {
            metrics.record(
                "unmatched",
                &format!("FOO{n}"),
                404,
                Duration::from_millis(1),
            );
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let series: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("boutique_http_requests_total{"))
            .collect();
        assert_eq!(series.len(), 2, "{text}");
        assert!(
            series
                .iter()
                .any(|line| line.contains(r#"method="other""#) && line.ends_with(" 100")),
            "{text}"
        );
        assert!(!text.contains("FOO"), "{text}");
    }
}
