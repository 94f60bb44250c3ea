//! Finished calls as trace spans, for export (OpenTelemetry over OTLP: the
//! binary installs the exporter when `[telemetry] otlp_endpoint` is set).
//!
//! The runtime records a *client* span for every call a node makes (span
//! id: the call id; parent: the call it was made for, or, when that call
//! came from another node, this node's server span for it) and a *server*
//! span for every call it serves for another node (its parent: the
//! caller's client span), so one request's spans join across nodes into
//! one tree.
//! Nothing is recorded, and the call path pays one atomic load, until a
//! sink is installed.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::call::TraceId;

/// What a span stood for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// A call made from this node.
    Client,
    /// A call served here, or a request from outside (HTTP).
    Server,
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// The trace.
    pub trace: TraceId,
    /// The span's id.
    pub span_id: u64,
    /// Its parent's id, or 0.
    pub parent: u64,
    /// `service.Message`, or `HTTP GET /route`.
    pub name: String,
    /// Client or server.
    pub kind: SpanKind,
    /// When it started.
    pub start: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// Attributes: caller, service, message, location, outcome...
    pub attributes: Vec<(&'static str, Attribute)>,
    /// True if it failed.
    pub failed: bool,
}

/// A span attribute's value, typed as the semantic conventions type it
/// (an HTTP status code is an integer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
}

impl From<String> for Attribute {
    fn from(text: String) -> Self {
        Attribute::Text(text)
    }
}

impl From<&str> for Attribute {
    fn from(text: &str) -> Self {
        Attribute::Text(text.to_owned())
    }
}

impl From<i64> for Attribute {
    fn from(number: i64) -> Self {
        Attribute::Int(number)
    }
}

/// Where finished spans go.
pub trait SpanSink: Send + Sync + 'static {
    /// Takes one span; must not block (queue it, or drop it and count).
    fn record(&self, span: SpanRecord);
}

static SINK: OnceLock<Box<dyn SpanSink>> = OnceLock::new();

/// Installs the process's span sink; false if one was installed already.
pub fn install(sink: Box<dyn SpanSink>) -> bool {
    SINK.set(sink).is_ok()
}

/// True if spans are being recorded.
#[inline]
pub fn enabled() -> bool {
    SINK.get().is_some()
}

/// Hands `span` to the sink, if there is one.
pub fn record(span: SpanRecord) {
    if let Some(sink) = SINK.get() {
        sink.record(span);
    }
}

/// The span id of the server side of call `call_id` (the client side's is
/// the call id itself).
pub fn server_span_id(call_id: u64) -> u64 {
    call_id.rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15
}
