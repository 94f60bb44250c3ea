//! What `boutique load` measured: counts, errors by status, and latency
//! percentiles from HDR histograms (microseconds, three significant
//! digits), overall and per task; and the progress line while it runs.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::Mode;
use super::tasks::{Status, Task, succeeded};

/// The percentiles reported.
const PERCENTILES: [(f64, &str); 4] =
    [(50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (99.9, "p99.9")];

/// Counts and latencies of one kind of task, or of all.
struct Tally {
    latencies: Histogram<u64>,
    requests: u64,
    errors: BTreeMap<Status, u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            // 1 µs to 1 hour, three significant digits.
            latencies: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!())),
            requests: 0,
            errors: BTreeMap::new(),
        }
    }

    fn record(&mut self, status: Status, took: Duration) {
        self.requests += 1;
        if !succeeded(status) {
            *self.errors.entry(status).or_default() += 1;
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latencies.saturating_record(micros);
    }

    fn to_json(&self, seconds: f64) -> Value {
        let mut latency = serde_json::Map::new();
        for (q, name) in PERCENTILES {
            latency.insert(name.to_owned(), json!(self.ms(q)));
        }
        latency.insert(
            "max".to_owned(),
            json!(self.latencies.max() as f64 / 1000.0),
        );
        json!({
            "requests": self.requests,
            "requests_per_second": self.requests as f64 / seconds,
            "errors": self.errors.iter().map(|(s, n)| (status_name(*s), json!(n))).collect::<serde_json::Map<_, _>>(),
            "latency_ms": latency,
        })
    }

    fn ms(&self, q: f64) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.latencies.value_at_percentile(q) as f64 / 1000.0
    }
}

fn status_name(status: Status) -> String {
    if status == 0 {
        "no answer".to_owned()
    } else {
        status.to_string()
    }
}

/// Everything measured so far.
pub struct Recorder {
    all: Tally,
    tasks: BTreeMap<Task, Tally>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            all: Tally::new(),
            tasks: BTreeMap::new(),
        }
    }

    /// One task done: how it ended, how long it took.
    pub fn record(&mut self, task: Task, status: Status, took: Duration) {
        self.all.record(status, took);
        self.tasks
            .entry(task)
            .or_insert_with(Tally::new)
            .record(status, took);
    }

    /// The report, after `elapsed`.
    pub fn report(&self, elapsed: Duration, mode: Mode) -> Report {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let mut tasks = serde_json::Map::new();
        for (task, tally) in &self.tasks {
            tasks.insert(task.name().to_owned(), tally.to_json(seconds));
        }
        let mut overall = self.all.to_json(seconds);
        overall["seconds"] = json!(seconds);
        overall["mode"] = match mode {
            Mode::Rate(rate) => json!({"rate": rate}),
            Mode::Users(users) => json!({"users": users}),
        };
        overall["tasks"] = Value::Object(tasks);
        Report(overall)
    }

    fn progress_line(&self, elapsed: Duration, duration: Duration) -> String {
        let errors: u64 = self.all.errors.values().sum();
        format!(
            "\r{:>5.1} s / {:.0} s  {:>8} requests  {:>6} errors  p50 {:.1} ms  p99 {:.1} ms ",
            elapsed.as_secs_f64(),
            duration.as_secs_f64(),
            self.all.requests,
            errors,
            self.all.ms(50.0),
            self.all.ms(99.0),
        )
    }
}

/// A progress line on stderr once a second, if stderr is a terminal.
pub fn progress(
    recorder: Rc<RefCell<Recorder>>,
    started: Instant,
    duration: Duration,
) -> tokio::task::JoinHandle<()> {
    actix_rt::spawn(async move {
        if !std::io::stderr().is_terminal() {
            return;
        }
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        loop {
            ticks.tick().await;
            let line = recorder.borrow().progress_line(started.elapsed(), duration);
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(line.as_bytes());
            let _ = err.flush();
        }
    })
}

/// The final report.
pub struct Report(Value);

impl Report {
    /// As one JSON object.
    pub fn to_json(&self) -> &Value {
        &self.0
    }

    /// For people.
    pub fn to_text(&self) -> String {
        let r = &self.0;
        let mut out = String::from("\n");
        let _ = writeln!(
            out,
            "{} requests in {:.1} s: {:.1} requests/s",
            r["requests"],
            r["seconds"].as_f64().unwrap_or_default(),
            r["requests_per_second"].as_f64().unwrap_or_default()
        );
        let errors = r["errors"].as_object().filter(|e| !e.is_empty());
        match errors {
            None => out.push_str("errors: none\n"),
            Some(errors) => {
                let list: Vec<String> = errors.iter().map(|(s, n)| format!("{s}: {n}")).collect();
                let _ = writeln!(out, "errors by status: {}", list.join(", "));
            }
        }
        let _ = writeln!(
            out,
            "\n{:<14} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9}   (latency in ms)",
            "task", "requests", "errors", "p50", "p90", "p99", "p99.9"
        );
        let mut row = |name: &str, t: &Value| {
            let errors: u64 = t["errors"]
                .as_object()
                .map_or(0, |e| e.values().filter_map(Value::as_u64).sum());
            let l = &t["latency_ms"];
            let _ = writeln!(
                out,
                "{:<14} {:>9} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name,
                t["requests"],
                errors,
                l["p50"].as_f64().unwrap_or_default(),
                l["p90"].as_f64().unwrap_or_default(),
                l["p99"].as_f64().unwrap_or_default(),
                l["p99.9"].as_f64().unwrap_or_default()
            );
        };
        if let Some(tasks) = r["tasks"].as_object() {
            for (name, t) in tasks {
                row(name, t);
            }
        }
        row("all", r);
        out
    }
}
