//! Export of trace spans to an OpenTelemetry collector: OTLP over HTTP with
//! the JSON encoding (`POST {endpoint}/v1/traces`), when `[telemetry]
//! otlp_endpoint` is set. Any collector that takes OTLP/HTTP takes it
//! (the OpenTelemetry Collector, Jaeger, Tempo...).
//!
//! Spans come from the runtime (every call made or served, see
//! `runtime::spans`) and the frontend (every HTTP request). They are queued
//! without blocking (at most 8192; beyond that they are dropped and
//! counted), and a task sends them in batches of up to 512, at least every
//! 500 ms. A batch the collector refuses or does not answer within 5 s is
//! dropped and counted: tracing must never hold up the shop. What was lost,
//! and why, is logged at most every [`WARN_EVERY`] (a collector that is
//! down would otherwise be a warning a batch). On shutdown what is queued
//! is sent, for up to two seconds.

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
/// Lost spans are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

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
        let mut lost = Lost::default();
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
                match send(&client, &url, &resource, chunk).await {
                    Ok(Refused { spans: 0, .. }) => {}
                    Ok(Refused { spans, why }) => {
                        lost.not_exported += spans.min(chunk.len() as u64);
                        lost.why = Some(why);
                    }
                    Err(why) => {
                        lost.not_exported += chunk.len() as u64;
                        lost.why = Some(why);
                    }
                }
            }
            let at_shutdown = !flushed.is_empty();
            for done in flushed {
                let _ = done.send(());
            }
            let drops = dropped.load(Ordering::Relaxed);
            lost.queue_full += drops - reported_drops;
            reported_drops = drops;
            lost.say(&node, &url, at_shutdown);
        }
    });
    Ok(Telemetry { queue })
}

/// Spans lost since the last warning, and when that was.
#[derive(Default)]
struct Lost {
    /// Dropped because the queue was full.
    queue_full: u64,
    /// In batches the collector refused or did not take.
    not_exported: u64,
    /// Why the last batch was not taken.
    why: Option<String>,
    /// When the last warning was logged.
    warned: Option<std::time::Instant>,
}

impl Lost {
    /// Logs what was lost if anything was and the last warning is
    /// [`WARN_EVERY`] old (or `now_anyway`: at a flush, before stopping).
    fn say(&mut self, node: &str, url: &str, now_anyway: bool) {
        if self.queue_full == 0 && self.not_exported == 0 {
            return;
        }
        if !now_anyway && self.warned.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return;
        }
        tracing::warn!(
            node = %node,
            url,
            queue_full = self.queue_full,
            not_exported = self.not_exported,
            last_error = self.why.as_deref().unwrap_or(""),
            "spans lost since the last such line (queue_full: the export queue was full; not_exported: the collector refused or did not answer)"
        );
        *self = Lost {
            warned: Some(std::time::Instant::now()),
            ..Lost::default()
        };
    }
}

/// What a collector that took a batch said it refused of it (OTLP's
/// partial success).
#[derive(Debug, PartialEq, Eq)]
struct Refused {
    spans: u64,
    why: String,
}

/// What a collector's answer to a batch it took says it refused of it:
/// `{"partialSuccess": {"rejectedSpans": "3", "errorMessage": "..."}}`
/// (the count a string or a number, in OTLP's JSON), or nothing.
fn refused(answer: &[u8]) -> Refused {
    let answer: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
    let partial = &answer["partialSuccess"];
    let spans = match &partial["rejectedSpans"] {
        Value::String(count) => count.parse().unwrap_or(0),
        count => count.as_u64().unwrap_or(0),
    };
    let why = partial["errorMessage"].as_str().map_or_else(
        || "the collector refused some of them".to_owned(),
        |why| {
            format!(
                "the collector refused some of them: {}",
                runtime::text::clipped(why, 200)
            )
        },
    );
    Refused { spans, why }
}

/// Sends `spans` to the collector; why not, if it did not take them, and
/// what it refused of them if it took them. Its answer is read to the end
/// (at most 64 KiB), so that the connection goes back to the pool: left
/// unread, every batch opened a connection.
async fn send(
    client: &awc::Client,
    url: &str,
    resource: &Value,
    spans: &[SpanRecord],
) -> Result<Refused, String> {
    let body = json!({"resourceSpans": [{
        "resource": resource,
        "scopeSpans": [{
            "scope": {"name": "boutique", "version": env!("CARGO_PKG_VERSION")},
            "spans": spans.iter().map(encode).collect::<Vec<_>>(),
        }],
    }]});
    match client.post(url).send_json(&body).await {
        Ok(mut response) if response.status().is_success() => {
            let answer = response.body().limit(64 * 1024).await.unwrap_or_default();
            Ok(refused(&answer))
        }
        Ok(response) => Err(format!("the collector answered {}", response.status())),
        Err(error) => Err(error.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_a_collector_refused_of_a_batch_it_took_are_counted() {
        // OTLP's JSON writes the count as a string (an int64) or a number.
        assert_eq!(
            refused(br#"{"partialSuccess":{"rejectedSpans":"3","errorMessage":"too old"}}"#),
            Refused {
                spans: 3,
                why: "the collector refused some of them: too old".to_owned()
            }
        );
        assert_eq!(
            refused(br#"{"partialSuccess":{"rejectedSpans":2}}"#).spans,
            2
        );
        // All taken: nothing, an empty object, or no answer at all.
        for answer in [&br#"{}"#[..], br#"{"partialSuccess":{}}"#, b""] {
            assert_eq!(refused(answer).spans, 0);
        }
    }

    /// A collector that is down makes a warning every [`WARN_EVERY`], not
    /// one a batch: what is lost meanwhile is kept and said with the next.
    #[test]
    fn lost_spans_are_said_at_most_every_so_often() {
        let mut lost = Lost {
            not_exported: 512,
            why: Some("connection refused".to_owned()),
            ..Lost::default()
        };
        lost.say("main", "http://collector", false);
        assert_eq!(lost.not_exported, 0, "the first is said at once");
        assert!(lost.warned.is_some());

        lost.not_exported += 512;
        lost.queue_full += 3;
        lost.say("main", "http://collector", false);
        assert_eq!(
            (lost.not_exported, lost.queue_full),
            (512, 3),
            "kept for the next warning"
        );

        // Long enough after, or at a flush: said, and counted afresh.
        lost.warned = lost.warned.and_then(|at| at.checked_sub(WARN_EVERY));
        lost.say("main", "http://collector", false);
        assert_eq!((lost.not_exported, lost.queue_full), (0, 0));
        lost.queue_full = 1;
        lost.say("main", "http://collector", true);
        assert_eq!(lost.queue_full, 0);
    }
}
