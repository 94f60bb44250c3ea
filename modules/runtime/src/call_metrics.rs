//! Metrics of every call a node makes, by caller, service, message and
//! location (local or remote): how many ended which way, and how long they
//! took. Each call is also a `tracing` span (`call`, target
//! `boutique::call`, debug level: caller, service, message, location, call
//! id, trace id, parent call, outcome, duration in µs), made when the call
//! ends, with one `call ended` event inside that writes it to the log; off
//! by default, on with `RUST_LOG=boutique::call=debug` or `[logging]
//! level`. (Made at the end rather than held by the call future from the
//! start: a span in every call future cost a local call a fifth of its
//! time, even disabled.) `boutique_calls_total{caller, service, message, location,
//! outcome}` and `boutique_call_duration_seconds{caller, service, message,
//! location}`, encoded by `prometheus-client`.
//!
//! The cost on the call path is kept small: each [`ServiceRef`] carries a
//! table, made when the node hands out the ref, of each message's counters
//! in the order the service declares its messages; a call finds its own by
//! the message's [`Request::INDEX`](crate::Request::INDEX) (an array index)
//! and bumps one counter. Remote calls are all timed; local calls, which
//! take well under a microsecond, one in 64 (reading the clock twice per
//! call would add a quarter to their cost), so their histogram is a
//! sample while their counts are exact. Series appear on first use, so the
//! page lists only calls that happened.
//!
//! [`ServiceRef`]: crate::ServiceRef

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::call::{CallMeta, TraceId};
use crate::error::CallError;
use crate::service::Service;

/// How a call ended, as the `outcome` label says it.
const OUTCOMES: [&str; 8] = [
    "ok",
    "error",
    "not_delivered",
    "outcome_unknown",
    "rejected",
    "timed_out",
    "overloaded",
    // The caller stopped waiting (dropped the call's future) before it
    // ended: what happened to it is not known here.
    "cancelled",
];

/// [`OUTCOMES`]' index of `cancelled`.
const CANCELLED: usize = 7;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    caller: &'static str,
    service: &'static str,
    message: &'static str,
    location: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    caller: &'static str,
    service: &'static str,
    message: &'static str,
    location: &'static str,
    outcome: &'static str,
}

fn duration_histogram() -> Histogram {
    // 10 µs to about 10 s, each bucket four times the one before.
    Histogram::new(exponential_buckets(0.000_01, 4.0, 11))
}

/// Caller, service and location of a table.
type TableKey = (&'static str, &'static str, &'static str);

/// The families of one node.
pub(crate) struct CallMetrics {
    calls: Family<OutcomeLabels, Counter>,
    durations: Family<CallLabels, Histogram, fn() -> Histogram>,
    /// The tables made so far, by caller, service and location: one each,
    /// however often a module asks for a ref (it does again on a restart).
    tables: Mutex<HashMap<TableKey, Arc<RefMetrics>>>,
}

impl CallMetrics {
    /// Families registered in `registry`.
    pub(crate) fn new(registry: &mut Registry) -> Arc<CallMetrics> {
        let metrics = CallMetrics {
            calls: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            tables: Mutex::new(HashMap::new()),
        };
        registry.register(
            "boutique_calls",
            "Calls made from this node, by caller module (client: a tool or test), service, message, location (local or remote) and outcome (ok, error: the service said no, not_delivered, outcome_unknown, rejected, timed_out, overloaded, cancelled: the caller stopped waiting first).",
            metrics.calls.clone(),
        );
        registry.register(
            "boutique_call_duration_seconds",
            "How long calls made from this node took, from the call to its outcome.",
            metrics.durations.clone(),
        );
        Arc::new(metrics)
    }

    /// The table for calls from `caller` to `S` going to `location`.
    pub(crate) fn for_ref<S: Service>(
        self: &Arc<Self>,
        caller: &'static str,
        location: &'static str,
    ) -> Arc<RefMetrics> {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let table = tables
            .entry((caller, S::NAME, location))
            .or_insert_with(|| self.make_table::<S>(caller, location));
        Arc::clone(table)
    }

    fn make_table<S: Service>(
        self: &Arc<Self>,
        caller: &'static str,
        location: &'static str,
    ) -> Arc<RefMetrics> {
        let methods = S::messages()
            .iter()
            .map(|info| {
                let labels = CallLabels {
                    caller,
                    service: S::NAME,
                    message: info.name,
                    location,
                };
                let method = MethodMetrics {
                    node: Arc::clone(self),
                    labels,
                    outcomes: Default::default(),
                    duration: OnceLock::new(),
                };
                // Kept for the life of the process, so that a call in
                // flight can point at it without counting references (two
                // atomic operations a call): a node makes one per method
                // of each (caller, service) pair it has, and no more.
                let method: &'static MethodMetrics = Box::leak(Box::new(method));
                method
            })
            .collect();
        Arc::new(RefMetrics {
            node: Arc::clone(self),
            location,
            time_every_call: location == "remote",
            methods,
        })
    }
}

/// The counters of the calls made through one ref.
pub(crate) struct RefMetrics {
    node: Arc<CallMetrics>,
    location: &'static str,
    /// Remote calls are all timed; local ones are sampled.
    time_every_call: bool,
    /// By the message's [`Request::INDEX`](crate::Request::INDEX).
    methods: Vec<&'static MethodMetrics>,
}

impl RefMetrics {
    /// The same, for calls made by module `caller`.
    pub(crate) fn for_caller<S: Service>(&self, caller: &'static str) -> Arc<RefMetrics> {
        self.node.for_ref::<S>(caller, self.location)
    }

    /// A probe for one call of the service's message number `index`
    /// ([`Request::INDEX`](crate::Request::INDEX)), started now.
    #[inline]
    pub(crate) fn probe(&self, index: usize, meta: &CallMeta) -> Option<Probe> {
        let metrics = *self.methods.get(index)?;
        // A call logged at debug level is always timed.
        let logged = tracing::enabled!(target: "boutique::call", tracing::Level::DEBUG)
            || crate::spans::enabled();
        let timed = logged || self.time_every_call || sampled();
        Some(Probe {
            metrics,
            started: timed.then(Instant::now),
            logged: logged.then(|| {
                Box::new(Logged {
                    call_id: meta.id.0,
                    trace: meta.trace,
                    parent: meta.parent,
                    parent_span: crate::call::parent_span(meta.parent),
                })
            }),
        })
    }
}

/// One local call in this many is timed (all are counted): reading the
/// clock twice would cost a local call a quarter of its time.
const LOCAL_SAMPLE: u32 = 64;

thread_local! {
    /// The state of this thread's draws (xorshift32: never 0).
    static LOCAL_DRAW: std::cell::Cell<u32> = const { std::cell::Cell::new(0x9E37_79B9) };
}

/// True for one local call in [`LOCAL_SAMPLE`] on this thread, drawn at
/// random: every 64th call, as it was, timed only some messages of a
/// thread that calls several in a fixed turn (two in turn: only the
/// first ever, and the other's histogram stayed empty).
#[inline]
fn sampled() -> bool {
    LOCAL_DRAW.with(|draw| {
        let mut x = draw.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        draw.set(x);
        // The top bits: a xorshift's best.
        x >> (32 - LOCAL_SAMPLE.trailing_zeros()) == 0
    })
}

/// The counters of one method, made on first use.
pub(crate) struct MethodMetrics {
    node: Arc<CallMetrics>,
    labels: CallLabels,
    outcomes: [OnceLock<Counter>; OUTCOMES.len()],
    duration: OnceLock<Histogram>,
}

impl MethodMetrics {
    /// Counts one call that ended with `outcome`.
    #[inline]
    fn count(&self, outcome: usize) {
        match self.outcomes[outcome].get() {
            Some(counter) => {
                counter.inc();
            }
            None => self.count_first(outcome),
        }
    }

    /// [`count`](Self::count), the first time: makes the counter.
    #[cold]
    #[inline(never)]
    fn count_first(&self, outcome: usize) {
        self.outcomes[outcome]
            .get_or_init(|| {
                let labels = OutcomeLabels {
                    caller: self.labels.caller,
                    service: self.labels.service,
                    message: self.labels.message,
                    location: self.labels.location,
                    outcome: OUTCOMES[outcome],
                };
                self.node.calls.get_or_create(&labels).clone()
            })
            .inc();
    }

    fn record(&self, outcome: usize, took: Option<Duration>) {
        self.count(outcome);
        if let Some(took) = took {
            self.duration
                .get_or_init(|| self.node.durations.get_or_create(&self.labels).clone())
                .observe(took.as_secs_f64());
        }
    }
}

/// One call being measured.
pub(crate) struct Probe {
    metrics: &'static MethodMetrics,
    /// When it started, if it is timed.
    started: Option<Instant>,
    /// Who the call is, if it is to be logged (or exported). Boxed: a
    /// probe lives in every call future, and is moved with it, when
    /// logging is off too.
    logged: Option<Box<Logged>>,
}

/// A logged call's ids.
struct Logged {
    call_id: u64,
    trace: TraceId,
    /// The call it was made for (logged).
    parent: u64,
    /// Its parent span (exported: see `call::parent_span`).
    parent_span: u64,
}

impl Probe {
    /// Records how the call ended.
    #[inline]
    pub(crate) fn finish<T, E>(self, result: &Result<Result<T, E>, CallError>) {
        let outcome = match result {
            Ok(Ok(_)) => 0,
            Ok(Err(_)) => 1,
            Err(CallError::NotDelivered { .. }) => 2,
            Err(CallError::OutcomeUnknown { .. }) => 3,
            Err(CallError::Rejected { .. }) => 4,
            Err(CallError::TimedOut { .. }) => 5,
            Err(CallError::Overloaded { .. }) => 6,
        };
        self.ended(outcome);
    }

    /// Records a call that got the service's answer: `ok`, or its error.
    #[inline]
    pub(crate) fn answered(self, ok: bool) {
        self.ended(if ok { 0 } else { 1 });
    }

    #[inline]
    fn ended(self, outcome: usize) {
        if self.started.is_none() && self.logged.is_none() {
            // Most local calls: counted, neither timed nor logged.
            self.metrics.count(outcome);
        } else {
            self.record(outcome, true);
        }
    }

    /// Records a call whose caller stopped waiting before it ended: not in
    /// the latency histogram (how long the caller waited says nothing of
    /// the call), but its span and log line keep when it began and how
    /// long it was waited for.
    pub(crate) fn cancelled(self) {
        self.record(CANCELLED, false);
    }

    fn record(self, outcome: usize, in_histogram: bool) {
        let took = self.started.map(|started| started.elapsed());
        self.metrics.record(outcome, took.filter(|_| in_histogram));
        if let Some(Logged {
            call_id,
            trace: trace_id,
            parent,
            parent_span,
        }) = self.logged.map(|logged| *logged)
        {
            let labels = &self.metrics.labels;
            if crate::spans::enabled() {
                let took = took.unwrap_or_default();
                crate::spans::record(crate::spans::SpanRecord {
                    trace: trace_id,
                    span_id: call_id,
                    parent: parent_span,
                    name: format!("{}.{}", labels.service, labels.message),
                    kind: crate::spans::SpanKind::Client,
                    start: std::time::SystemTime::now() - took,
                    duration: took,
                    attributes: vec![
                        ("boutique.caller", labels.caller.into()),
                        ("boutique.service", labels.service.into()),
                        ("boutique.message", labels.message.into()),
                        ("boutique.location", labels.location.into()),
                        ("boutique.outcome", OUTCOMES[outcome].into()),
                    ],
                    // A cancelled call is the caller's choice.
                    failed: outcome != 0 && outcome != CANCELLED,
                });
            }
            // The call as a span, made when its figures are known, with
            // one event inside it that writes it out.
            let span = tracing::debug_span!(
                target: "boutique::call",
                "call",
                caller = labels.caller,
                service = labels.service,
                message = labels.message,
                location = labels.location,
                call_id,
                trace_id = %trace_id,
                parent,
                outcome = OUTCOMES[outcome],
                duration_us = took.map_or(0, |took| u64::try_from(took.as_micros()).unwrap_or(u64::MAX)),
            );
            span.in_scope(|| tracing::debug!(target: "boutique::call", "call ended"));
        }
    }
}

#[cfg(test)]
// The service's `start` is not needed: no actor runs here.
#[allow(dead_code)]
mod tests {
    #[test]
    fn local_calls_are_timed_whatever_turn_their_messages_take() {
        // Two messages called in turn, 12,800 calls each: each is timed
        // about one in 64 (200).
        let mut timed = [0u32; 2];
        for turn in 0..64 * 400 {
            if super::sampled() {
                timed[turn % 2] += 1;
            }
        }
        assert!(timed.iter().all(|&n| (120..300).contains(&n)), "{timed:?}");
    }

    use super::*;
    use prometheus_client::encoding::text::encode;

    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    struct First;
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    struct Second;
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    struct Third;
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, thiserror::Error)]
    #[error("never")]
    struct Never;

    crate::service! {
        /// Three messages, to tell their counters apart.
        Three = "three", error Never {
            First -> (),
            Second -> (),
            Third -> (),
        }
    }

    #[test]
    fn each_message_is_counted_under_its_own_name() {
        use crate::Request;
        assert_eq!((First::INDEX, Second::INDEX, Third::INDEX), (0, 1, 2));
        let mut registry = Registry::default();
        let metrics = CallMetrics::new(&mut registry);
        let table = metrics.for_ref::<Three>("tester", "local");
        let meta = CallMeta::local(Duration::from_secs(1));
        for _ in 0..2 {
            let probe = table.probe(Third::INDEX, &meta).expect("a probe");
            probe.finish::<(), Never>(&Ok(Ok(())));
        }
        let probe = table.probe(First::INDEX, &meta).expect("a probe");
        probe.finish::<(), Never>(&Ok(Err(Never)));
        let mut text = String::new();
        encode(&mut text, &registry).expect("encoded");
        let third = "caller=\"tester\",service=\"three\",message=\"Third\",location=\"local\",outcome=\"ok\"} 2";
        let first = "caller=\"tester\",service=\"three\",message=\"First\",location=\"local\",outcome=\"error\"} 1";
        assert!(text.contains(third), "{text}");
        assert!(text.contains(first), "{text}");
        assert!(!text.contains("message=\"Second\""), "{text}");
        assert!(table.probe(3, &meta).is_none(), "no fourth message");
    }
}
