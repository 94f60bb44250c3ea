//! What `boutique load` measured: counts, errors by status, and latency
//! percentiles from HDR histograms (microseconds, three significant
//! digits), per HTTP request, per task and for all tasks; and the progress
//! line while it runs.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::tasks::{Request, Status, Task, TaskDone, succeeded};
use super::{Ended, Mode};

/// The percentiles reported.
const PERCENTILES: [(f64, &str); 4] =
    [(50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (99.9, "p99.9")];

/// The percentiles of the distribution (`latency_distribution_ms`), spaced
/// for a plot whose axis runs 0, 90, 99, 99.9, 99.99 evenly.
const DISTRIBUTION: [f64; 22] = [
    0.0, 10.0, 25.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 92.5, 95.0, 96.0, 97.0, 98.0, 99.0,
    99.5, 99.75, 99.9, 99.95, 99.99, 100.0,
];

/// How long things took: an HDR histogram of microseconds.
struct Latencies {
    histogram: Histogram<u64>,
    count: u64,
}

impl Latencies {
    fn new() -> Latencies {
        Latencies {
            // 1 µs to 1 hour, three significant digits.
            histogram: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                // Three significant digits are always allowed (1 to 5 are).
                .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!())),
            count: 0,
        }
    }

    fn record(&mut self, took: Duration) {
        self.count += 1;
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.histogram.saturating_record(micros);
    }

    /// The latency at percentile `percentile`, in ms (0 if nothing was
    /// recorded). Asked as a quantile rounded to the billionth:
    /// hdrhistogram's own percentile divides by 100, and 99.9 / 100 is
    /// 0.9990000000000001, one rank too high whenever the count is a
    /// multiple of 1000 (p99.9 of 1000 samples was their maximum).
    fn ms(&self, percentile: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let quantile = (percentile * 1e7).round() / 1e9;
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.histogram.max() as f64 / 1000.0
    }
}

/// Counts and latencies of HTTP requests, of one kind of task, or of all.
struct Tally {
    latencies: Latencies,
    errors: BTreeMap<Status, u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latencies: Latencies::new(),
            errors: BTreeMap::new(),
        }
    }

    fn count(&self) -> u64 {
        self.latencies.count
    }

    fn record(&mut self, status: Status, took: Duration) {
        if !succeeded(status) {
            *self.errors.entry(status).or_default() += 1;
        }
        self.latencies.record(took);
    }

    /// As JSON, counting `what` ("requests" or "tasks").
    fn to_json(&self, seconds: f64, what: &str) -> Value {
        let mut latency = serde_json::Map::new();
        for (q, name) in PERCENTILES {
            latency.insert(name.to_owned(), json!(self.latencies.ms(q)));
        }
        latency.insert("max".to_owned(), json!(self.latencies.max_ms()));
        json!({
            what: self.count(),
            format!("{what}_per_second"): self.count() as f64 / seconds,
            "errors": self.errors.iter().map(|(s, n)| (status_name(*s), json!(n))).collect::<serde_json::Map<_, _>>(),
            "latency_ms": latency,
        })
    }

    /// `[percentile, ms]` pairs of the whole distribution.
    fn distribution(&self) -> Value {
        Value::Array(
            DISTRIBUTION
                .iter()
                .map(|&q| json!([q, self.latencies.ms(q)]))
                .collect(),
        )
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
    /// Every HTTP request.
    requests: Tally,
    /// Every task.
    all_tasks: Tally,
    /// Each kind of task, and the HTTP requests its tasks made.
    tasks: BTreeMap<Task, (Tally, u64)>,
    /// How late the fixed-rate schedule's timer fired (none in the
    /// closed-loop mode).
    lag: Latencies,
    /// When the last answer came, if any did.
    last_answer: Option<Instant>,
}

impl Recorder {
    /// An empty record, for a run about to start.
    pub fn new() -> Recorder {
        Recorder {
            requests: Tally::new(),
            all_tasks: Tally::new(),
            tasks: BTreeMap::new(),
            lag: Latencies::new(),
            last_answer: None,
        }
    }

    /// How long the run took for its rates: from `started` to the last
    /// answer, or to `ended` if none came. Not to `ended` when tasks were
    /// left unanswered: the wait for them, up to as long as the run, is no
    /// time the shop answered in (it halved the rates of a run that left
    /// one checkout hanging).
    pub fn answered_for(&self, started: Instant, ended: Instant) -> Duration {
        self.last_answer
            .unwrap_or(ended)
            .saturating_duration_since(started)
    }

    /// A task of the fixed-rate schedule was issued `lag` after it was due.
    pub fn record_lag(&mut self, lag: Duration) {
        self.lag.record(lag);
    }

    /// HTTP requests made outside any task (a user's first home page).
    pub fn record_requests(&mut self, requests: &[Request]) {
        for request in requests {
            self.requests.record(request.status, request.took);
        }
        if !requests.is_empty() {
            self.last_answer = Some(Instant::now());
        }
    }

    /// One task done: how it and its requests ended; it took `took`.
    pub fn record(&mut self, task: Task, done: &TaskDone, took: Duration) {
        self.record_requests(&done.requests);
        self.all_tasks.record(done.status, took);
        self.last_answer = Some(Instant::now());
        let (tally, requests) = self.tasks.entry(task).or_insert_with(|| (Tally::new(), 0));
        tally.record(done.status, took);
        *requests += done.requests.len() as u64;
    }

    /// The report, after `elapsed`: the HTTP requests' figures at the top,
    /// the tasks' under `all_tasks` and `tasks`.
    pub fn report(&self, elapsed: Duration, mode: Mode, ended: Ended) -> Report {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let mut tasks = serde_json::Map::new();
        for (task, (tally, requests)) in &self.tasks {
            let mut figures = tally.to_json(seconds, "tasks");
            figures["requests"] = json!(requests);
            tasks.insert(task.name().to_owned(), figures);
        }
        let mut overall = self.requests.to_json(seconds, "requests");
        overall["latency_distribution_ms"] = self.requests.distribution();
        overall["seconds"] = json!(seconds);
        overall["mode"] = match mode {
            Mode::Rate(rate) => json!({"rate": rate}),
            Mode::Users(users) => json!({"users": users}),
        };
        overall["all_tasks"] = self.all_tasks.to_json(seconds, "tasks");
        overall["all_tasks"]["latency_distribution_ms"] = self.all_tasks.distribution();
        overall["tasks"] = Value::Object(tasks);
        overall["unfinished_tasks"] = json!(ended.unfinished);
        if let Some(signal) = ended.interrupted {
            overall["interrupted"] = json!(signal);
        }
        if self.lag.count > 0 {
            overall["schedule_lag_ms"] = json!({
                "p50": self.lag.ms(50.0),
                "p99": self.lag.ms(99.0),
                "max": self.lag.max_ms(),
            });
        }
        Report(overall)
    }

    fn progress_line(&self, elapsed: Duration, duration: Duration) -> String {
        let errors: u64 = self.requests.errors.values().sum();
        format!(
            "\r{} {:>5.1} s / {:.1} s  {:>8} requests  {:>6} errors  p50 {:.2} ms  p99 {:.2} ms ",
            progress_bar(elapsed, duration),
            elapsed.as_secs_f64(),
            duration.as_secs_f64(),
            self.requests.count(),
            errors,
            self.requests.latencies.ms(50.0),
            self.requests.latencies.ms(99.0),
        )
    }
}

/// Width of the progress bar, in characters between its brackets.
const BAR_WIDTH: usize = 24;

/// `[=========>              ]`: how much of `duration` has passed.
fn progress_bar(elapsed: Duration, duration: Duration) -> String {
    let done = (elapsed.as_secs_f64() / duration.as_secs_f64().max(1e-9)).clamp(0.0, 1.0);
    let filled = (done * BAR_WIDTH as f64).round() as usize;
    let mut bar = String::with_capacity(BAR_WIDTH + 2);
    bar.push('[');
    for i in 0..BAR_WIDTH {
        bar.push(match i.cmp(&filled) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal => '>',
            std::cmp::Ordering::Greater => ' ',
        });
    }
    bar.push(']');
    bar
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
        let all_tasks = &r["all_tasks"];
        let mut out = String::from("\n");
        let _ = writeln!(
            out,
            "{} HTTP requests in {:.1} s: {:.1} requests/s ({} tasks, {:.1} tasks/s)",
            r["requests"],
            r["seconds"].as_f64().unwrap_or_default(),
            r["requests_per_second"].as_f64().unwrap_or_default(),
            all_tasks["tasks"],
            all_tasks["tasks_per_second"].as_f64().unwrap_or_default(),
        );
        if let Some(signal) = r["interrupted"].as_str() {
            let _ = writeln!(
                out,
                "interrupted ({signal}): the figures cover the run until then; the tasks in flight are not counted"
            );
        }
        if let Some(unfinished) = r["unfinished_tasks"].as_u64().filter(|n| *n > 0) {
            let _ = writeln!(
                out,
                "{unfinished} tasks still unanswered a while after the run's time was up (as long again, 30 s at most): stopped, and not counted below"
            );
        }
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
            "", "count", "errors", "p50", "p90", "p99", "p99.9"
        );
        let mut row = |name: &str, t: &Value, what: &str| {
            let errors: u64 = t["errors"]
                .as_object()
                .map_or(0, |e| e.values().filter_map(Value::as_u64).sum());
            let l = &t["latency_ms"];
            let _ = writeln!(
                out,
                "{:<14} {:>9} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name,
                t[what].as_u64().unwrap_or_default(),
                errors,
                l["p50"].as_f64().unwrap_or_default(),
                l["p90"].as_f64().unwrap_or_default(),
                l["p99"].as_f64().unwrap_or_default(),
                l["p99.9"].as_f64().unwrap_or_default()
            );
        };
        if let Some(tasks) = r["tasks"].as_object() {
            for (name, t) in tasks {
                row(name, t, "tasks");
            }
        }
        row("all tasks", all_tasks, "tasks");
        row("HTTP requests", r, "requests");
        let lag = &r["schedule_lag_ms"];
        if let (Some(p50), Some(p99), Some(max)) = (
            lag["p50"].as_f64(),
            lag["p99"].as_f64(),
            lag["max"].as_f64(),
        ) {
            let _ = writeln!(
                out,
                "\nschedule lag (the generator's timer, not counted above): p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::tasks::{Request, Task, TaskDone};
    use super::{Ended, Latencies, Mode, Recorder, progress_bar};
    use std::time::Duration;

    #[test]
    fn p99_9_of_a_thousand_samples_is_the_999th_not_the_maximum() {
        // 1 ms to 1000 ms, one each: exact in the histogram's precision.
        let mut latencies = Latencies::new();
        for ms in 1..=1000 {
            latencies.record(Duration::from_millis(ms));
        }
        // Each as the histogram holds it: three significant digits, the
        // top of its bucket.
        let p99_9 = latencies.ms(99.9);
        assert!((999.0..1000.0).contains(&p99_9), "{p99_9}");
        assert!(latencies.ms(100.0) >= 1000.0);
        let p50 = latencies.ms(50.0);
        assert!((500.0..501.0).contains(&p50), "{p50}");
    }

    #[test]
    fn the_rates_run_to_the_last_answer_not_to_the_end_of_the_wait_for_the_unanswered() {
        let mut recorder = Recorder::new();
        let started = std::time::Instant::now();
        let ended = started + Duration::from_secs(20);
        // No answer: the whole run.
        assert_eq!(
            recorder.answered_for(started, ended),
            Duration::from_secs(20)
        );
        let done = TaskDone {
            status: 200,
            requests: vec![Request {
                status: 200,
                took: Duration::from_millis(2),
            }],
        };
        recorder.record(Task::Index, &done, Duration::from_millis(2));
        // The last answer came at once; the 20 s were the wait for a
        // task that never answered.
        assert!(recorder.answered_for(started, ended) < Duration::from_secs(10));
    }

    #[test]
    fn the_text_report_lines_up_its_columns() {
        let mut recorder = Recorder::new();
        let ms = Duration::from_millis;
        let request = |status, took| Request { status, took };
        for _ in 0..12 {
            let done = TaskDone {
                status: 200,
                requests: vec![request(200, ms(2))],
            };
            recorder.record(Task::ViewCart, &done, ms(2));
        }
        let checkout = TaskDone {
            status: 402,
            requests: vec![
                request(200, ms(1)),
                request(302, ms(1)),
                request(402, ms(3)),
            ],
        };
        recorder.record(Task::Checkout, &checkout, ms(5));
        let text = recorder
            .report(Duration::from_secs(1), Mode::Users(1), Ended::default())
            .to_text();
        let rows: Vec<&str> = text.lines().skip_while(|l| !l.contains("count")).collect();
        assert_eq!(
            rows,
            [
                "                   count   errors       p50       p90       p99     p99.9   (latency in ms)",
                "checkout               1        1      5.00      5.00      5.00      5.00",
                "viewCart              12        0      2.00      2.00      2.00      2.00",
                "all tasks             13        1      2.00      2.00      5.00      5.00",
                "HTTP requests         15        1      2.00      2.00      3.00      3.00",
            ],
            "{text}"
        );
        assert!(
            text.contains("15 HTTP requests in 1.0 s: 15.0 requests/s (13 tasks, 13.0 tasks/s)"),
            "{text}"
        );
        assert!(text.contains("errors by status: 402: 1"), "{text}");
    }

    #[test]
    fn the_progress_bar_fills_with_the_time_that_passed() {
        let of = |s: f64| progress_bar(Duration::from_secs_f64(s), Duration::from_secs(30));
        assert_eq!(of(0.0), format!("[>{}]", " ".repeat(23)));
        assert_eq!(of(15.0), format!("[{}>{}]", "=".repeat(12), " ".repeat(11)));
        assert_eq!(of(30.0), format!("[{}]", "=".repeat(24)));
        // Past the end (the last tasks finishing) it stays full.
        assert_eq!(of(31.0), of(30.0));
    }
}
