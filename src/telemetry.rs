//! Export of trace spans to an OpenTelemetry collector: OTLP over HTTP with
//! the JSON encoding (`POST {endpoint}/v1/traces`), when `[telemetry]
//! otlp_endpoint` is set. Any collector that takes OTLP/HTTP takes it
//! (the OpenTelemetry Collector, Jaeger, Tempo...).
//!
//! Spans come from the runtime (every call made or served, see
//! `runtime::spans`) and the frontend (every HTTP request). They are queued
//! without blocking (at most 8192; beyond that they are dropped, counted,
//! and the drop logged once a batch), and a task sends them in batches of
//! up to 512, at least every 500 ms. A batch the collector refuses or does
//! not answer within 5 s is logged and dropped: tracing must never hold up
//! the shop. On shutdown what is queued is sent, for up to two seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use runtime::spans::{Attribute, SpanKind, SpanRecord, SpanSink};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// Spans waiting to be sent, at most.
const QUEUE: usize = 8192;
/// Spans per request, at most.
const BATCH: usize = 512;
/// How long a span may wait for its batch to fill.
const LINGER: Duration = Duration::from_millis(500);
/// How long the collector has to answer.
const SEND_WITHIN: Duration = Duration::from_secs(5);

enum Message {
    Span(SpanRecord),
    Flush(oneshot::Sender<()>),
}

struct Exporter {
    queue: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

impl SpanSink for Exporter {
    fn record(&self, span: SpanRecord) {
        if self.queue.try_send(Message::Span(span)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A handle to flush the exporter at shutdown.
pub struct Telemetry {
    queue: mpsc::Sender<Message>,
}

impl Telemetry {
    /// Sends what is queued, waiting at most `within`.
    pub async fn flush(&self, within: Duration) {
        // The whole wait, queueing the request included (a full queue
        // behind an unreachable collector would otherwise hold it longer).
        let _ = tokio::time::timeout(within, async {
            let (done, sent) = oneshot::channel();
            if self.queue.send(Message::Flush(done)).await.is_ok() {
                let _ = sent.await;
            }
        })
        .await;
    }
}

/// Starts exporting this process's spans to `endpoint` (`http://HOST:PORT`,
/// the collector's OTLP/HTTP address) as node `node`. Call inside the
/// node's actix system, once.
pub fn start(endpoint: &str, node: &str) -> anyhow::Result<Telemetry> {
    runtime::config::check_otlp_endpoint(endpoint)?;
    let base = endpoint.trim_end_matches('/');
    let url = format!("{base}/v1/traces");
    let (queue, mut queued) = mpsc::channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let exporter = Exporter {
        queue: queue.clone(),
        dropped: Arc::clone(&dropped),
    };
    if !runtime::spans::install(Box::new(exporter)) {
        anyhow::bail!("spans are already being exported from this process");
    }
    let resource = json!({"attributes": [
        attribute("service.name", &"boutique".into()),
        attribute("service.instance.id", &node.into()),
        attribute("boutique.node", &node.into()),
    ]});
    let node = node.to_owned();
    actix_rt::spawn(async move {
        let client = awc::Client::builder().timeout(SEND_WITHIN).finish();
        let mut reported_drops = 0;
        while let Some(first) = queued.recv().await {
            let mut batch = Vec::new();
            let mut flushed = Vec::new();
            let mut next = Some(first);
            let linger = tokio::time::sleep(LINGER);
            tokio::pin!(linger);
            loop {
                match next.take() {
                    Some(Message::Span(span)) => batch.push(span),
                    Some(Message::Flush(done)) => {
                        flushed.push(done);
                        break;
                    }
                    None => {}
                }
                if batch.len() >= BATCH {
                    break;
                }
                tokio::select! {
                    message = queued.recv() => match message {
                        Some(message) => next = Some(message),
                        None => break,
                    },
                    _ = &mut linger => break,
                }
            }
            // Whatever else is queued goes too, when flushing.
            if !flushed.is_empty() {
                while let Ok(message) = queued.try_recv() {
                    match message {
                        Message::Span(span) => batch.push(span),
                        Message::Flush(done) => flushed.push(done),
                    }
                }
            }
            for chunk in batch.chunks(BATCH) {
                send(&client, &url, &resource, chunk, &node).await;
            }
            for done in flushed {
                let _ = done.send(());
            }
            let drops = dropped.load(Ordering::Relaxed);
            if drops > reported_drops {
                tracing::warn!(node = %node, dropped = drops - reported_drops, "spans dropped: the export queue was full");
                reported_drops = drops;
            }
        }
    });
    Ok(Telemetry { queue })
}

async fn send(client: &awc::Client, url: &str, resource: &Value, spans: &[SpanRecord], node: &str) {
    let body = json!({"resourceSpans": [{
        "resource": resource,
        "scopeSpans": [{
            "scope": {"name": "boutique", "version": env!("CARGO_PKG_VERSION")},
            "spans": spans.iter().map(encode).collect::<Vec<_>>(),
        }],
    }]});
    match client.post(url).send_json(&body).await {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => {
            tracing::warn!(node = %node, url, status = %response.status(), spans = spans.len(), "the collector refused spans");
        }
        Err(error) => {
            tracing::warn!(node = %node, url, %error, spans = spans.len(), "spans not exported");
        }
    }
}

/// An attribute in OTLP's JSON.
fn attribute(key: &str, value: &Attribute) -> Value {
    match value {
        Attribute::Text(text) => json!({"key": key, "value": {"stringValue": text}}),
        // 64-bit integers are strings in protobuf's JSON.
        Attribute::Int(number) => {
            json!({"key": key, "value": {"intValue": number.to_string()}})
        }
    }
}

/// One span in OTLP's JSON encoding.
fn encode(span: &SpanRecord) -> Value {
    let nanos = |at: std::time::SystemTime| {
        at.duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    };
    let start = nanos(span.start);
    let end = start.saturating_add(u64::try_from(span.duration.as_nanos()).unwrap_or(u64::MAX));
    let mut encoded = json!({
        "traceId": span.trace.to_string(),
        "spanId": format!("{:016x}", span.span_id),
        "name": span.name,
        // 2: server, 3: client.
        "kind": match span.kind { SpanKind::Server => 2, SpanKind::Client => 3 },
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": end.to_string(),
        "attributes": span.attributes.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
        // 2: error; else 0, unset, as instrumentation should leave it
        // (1, ok, is for an application to set on purpose).
        "status": {"code": if span.failed { 2 } else { 0 }},
    });
    if span.parent != 0 {
        encoded["parentSpanId"] = json!(format!("{:016x}", span.parent));
    }
    encoded
}
