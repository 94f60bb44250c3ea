//! `boutique load`: drives a shop's web frontend with Online Boutique's user
//! mix (the spec's load generator: browse a product 10, view the cart 3, set
//! the currency 2, add to the cart 2, the home page 1, check out 1) and
//! reports throughput, errors by status and latency percentiles from HDR
//! histograms, overall and per task.
//!
//! Two ways to drive it:
//!
//! - `--users N`: N shoppers, each with its own cookies, doing one task
//!   after another with no think time (a closed loop: throughput at
//!   saturation);
//! - `--rate R`: R tasks per second on a fixed schedule, whatever the shop
//!   does (an open loop). Each task takes an idle shopper (cookies kept
//!   from its earlier tasks) or, if all are busy, a new one, so no task
//!   waits for another shopper's to finish, and a shop that stalls does
//!   not slow the schedule down (coordinated omission): the tasks due
//!   during a stall are all sent, and all charged for it. Only beyond
//!   1024 tasks in flight does a due task wait, and then its latency
//!   counts from when it was due. Otherwise it counts from when the
//!   generator's timer fired: that timer has a resolution of a
//!   millisecond, and its lateness is the generator's, not the shop's;
//!   the report gives it apart as `schedule_lag_ms`.
//!
//! Counted both ways: each HTTP request (as Locust counts, and as Service
//! Weaver's figures are given: requests per second, latency per request,
//! errors by status), and each task, whose latency is that of all its
//! requests together (a checkout is three). In the fixed-rate mode the
//! first request of a task counts from when the task was sent, or was due
//! if it waited for a slot in flight (above).
//!
//! The rates are over the whole run, from the first task to the last
//! answer: a shop slower than the schedule finishes below it. Tasks still
//! running when the time is up get as long again as the run to finish, at
//! most [`DRAIN`]; those still unanswered then are stopped and reported
//! apart (`unfinished_tasks`), so that a shop that stopped answering does
//! not hold the run for as long as its queue of due tasks would take.
//!
//! A progress bar on stderr while it runs (when stderr is a terminal);
//! the report on stdout at the end, as text or, with `--json`, one JSON
//! object. Ctrl-C (or SIGTERM, SIGHUP) ends the run early: the report
//! covers the run so far, says so, and the exit code is 130.

mod open_files;
mod report;
mod tasks;

use std::cell::RefCell;
use std::io::Write;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::exit::UsageError;

use report::Recorder;
use tasks::{Shopper, Task};

/// How the load is applied.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// This many tasks per second, on schedule.
    Rate(f64),
    /// This many shoppers, back to back.
    Users(usize),
}

/// Tasks in flight at most in the fixed-rate mode (beyond it, due tasks
/// wait, and their waiting counts in their latency).
const RATE_IN_FLIGHT: usize = 1024;
/// The most closed-loop users a run may have (`--users`).
const MAX_USERS: usize = 10_000;

/// The longest the tasks still running when the run's time is up get to
/// finish (if the run was longer): as long as one request may take.
const DRAIN: Duration = tasks::REQUEST_TIMEOUT;

/// How a run ended, beyond its figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ended {
    /// Tasks stopped unanswered, a while after the run's time was up
    /// (see [`drain`]).
    pub unfinished: u64,
    /// The signal that ended the run early, if one did.
    pub interrupted: Option<&'static str>,
}

/// Runs the load and prints the report.
pub fn load(target: &str, duration: &str, mode: Mode, json: bool) -> anyhow::Result<ExitCode> {
    let duration = parse_duration(duration).map_err(UsageError)?;
    let target = target.trim_end_matches('/').to_owned();
    if !target.starts_with("http://") {
        return Err(UsageError(format!(
            "--target {target:?}: give the shop's address as http://HOST:PORT"
        ))
        .into());
    }
    match mode {
        Mode::Rate(rate) if !(rate > 0.0 && rate <= 1_000_000.0) => {
            return Err(UsageError(format!(
                "--rate {rate}: give 0 < R <= 1000000 tasks per second"
            ))
            .into());
        }
        Mode::Users(users) if !(1..=MAX_USERS).contains(&users) => {
            return Err(UsageError(format!(
                "--users {users}: give 1 to {MAX_USERS} users (each holds a connection and a task)"
            ))
            .into());
        }
        _ => {}
    }
    // Each user, or task in flight, holds a connection: room for them in
    // the open-file limit, or fewer tasks in flight at a fixed rate.
    let rate_in_flight = match mode {
        Mode::Users(users) => {
            let granted = open_files::room_for(users as u64).map_err(UsageError)?;
            if granted < users as u64 {
                return Err(UsageError(open_files::too_few(users as u64, granted)).into());
            }
            RATE_IN_FLIGHT
        }
        Mode::Rate(_) => {
            let granted = open_files::room_for(RATE_IN_FLIGHT as u64).map_err(UsageError)?;
            let granted = usize::try_from(granted).unwrap_or(RATE_IN_FLIGHT).max(1);
            if granted < RATE_IN_FLIGHT {
                to_stderr!(
                    "note: {}; at most {granted} tasks in flight",
                    open_files::too_few(RATE_IN_FLIGHT as u64, granted as u64)
                );
            }
            granted
        }
    };
    let system = actix_rt::System::new();
    let (report, ended) = system.block_on(async move {
        let mut stop = super::signal::StopSignals::watch();
        // The shop must answer before the clock starts; it says what it
        // sells. A Ctrl-C meanwhile stops the wait.
        let products = tokio::select! {
            products = Shopper::products(&target) => products?,
            why = stop.next() => anyhow::bail!("{why}: stopped before the run began"),
        };
        let recorder = Rc::new(RefCell::new(Recorder::new()));
        let started = Instant::now();
        let progress = report::progress(Rc::clone(&recorder), started, duration);
        let run = async {
            match mode {
                Mode::Users(users) => {
                    run_users(&target, &products, users, duration, &recorder).await
                }
                Mode::Rate(rate) => {
                    run_rate(
                        &target,
                        &products,
                        rate,
                        rate_in_flight,
                        duration,
                        &recorder,
                    )
                    .await
                }
            }
        };
        // Interrupted, the run's tasks are dropped with it, unrecorded.
        let ended = tokio::select! {
            unfinished = run => Ended { unfinished, interrupted: None },
            why = stop.next() => Ended { unfinished: 0, interrupted: Some(why) },
        };
        progress.abort();
        let elapsed = recorder.borrow().answered_for(started, Instant::now());
        let report = recorder.borrow().report(elapsed, mode, ended);
        anyhow::Ok((report, ended))
    })?;
    let text = if json {
        format!("{}\n", serde_json::to_string(report.to_json())?)
    } else {
        report.to_text()
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // Whoever reads it stopped reading (`| head`): nothing to add.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("cannot write the report")?,
    }
    Ok(match ended.interrupted {
        Some(_) => ExitCode::from(crate::exit::INTERRUPTED),
        None => ExitCode::SUCCESS,
    })
}

/// Waits for the tasks still `running` when the run's time is up, for as
/// long as the run took (`duration`), at most [`DRAIN`]; stops those still
/// running then, and returns how many they were.
async fn drain(running: &mut tokio::task::JoinSet<()>, duration: Duration) -> u64 {
    let deadline = tokio::time::Instant::now() + duration.min(DRAIN);
    loop {
        match tokio::time::timeout_at(deadline, running.join_next()).await {
            Ok(Some(_)) => {}
            Ok(None) => return 0,
            Err(_) => {
                let left = running.len() as u64;
                running.abort_all();
                return left;
            }
        }
    }
}

/// `users` shoppers, each doing tasks back to back until `duration` is up;
/// how many tasks were left unfinished ([`drain`]).
async fn run_users(
    target: &str,
    products: &Rc<[String]>,
    users: usize,
    duration: Duration,
    recorder: &Rc<RefCell<Recorder>>,
) -> u64 {
    let until = Instant::now() + duration;
    let mut shoppers = tokio::task::JoinSet::new();
    for _ in 0..users {
        let mut shopper = Shopper::new(target, Rc::clone(products));
        let recorder = Rc::clone(recorder);
        shoppers.spawn_local(async move {
            // Each user starts at the home page, as Locust's do.
            let home = shopper.home().await;
            recorder.borrow_mut().record_requests(&home);
            while Instant::now() < until {
                let task = Task::pick();
                let began = Instant::now();
                let done = shopper.run(task, began).await;
                recorder.borrow_mut().record(task, &done, began.elapsed());
            }
        });
    }
    tokio::time::sleep_until(until.into()).await;
    drain(&mut shoppers, duration).await
}

/// `rate` tasks per second on schedule for `duration`, at most `in_flight`
/// at once; each task's latency counts from when it was issued, or from
/// when it was due if it had to wait for a slot in flight (see the
/// module's doc). Returns how many
/// tasks were left unfinished ([`drain`]).
async fn run_rate(
    target: &str,
    products: &Rc<[String]>,
    rate: f64,
    in_flight: usize,
    duration: Duration,
    recorder: &Rc<RefCell<Recorder>>,
) -> u64 {
    // Idle shoppers; a task that finds none makes one.
    let idle: Rc<RefCell<Vec<Shopper>>> = Rc::default();
    let slots = Rc::new(tokio::sync::Semaphore::new(in_flight));
    let start = tokio::time::Instant::now();
    // Rounded to the nearest millionth first: 0.29 × 100 is 28.999…
    let total = ((rate * duration.as_secs_f64() * 1e6).round() / 1e6).floor() as u64;
    let target: Rc<str> = target.into();
    let mut running = tokio::task::JoinSet::new();
    for n in 0..total {
        let due = start + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(due).await;
        // The timer fires up to a millisecond late (its resolution), and
        // later if this loop falls behind: that lag is the generator's, not
        // the shop's, so it is reported apart and not charged to the task.
        let issued = Instant::now();
        let due = due.into_std();
        recorder
            .borrow_mut()
            .record_lag(issued.saturating_duration_since(due));
        // Finished tasks are let go as they finish, not kept to the end.
        while running.try_join_next().is_some() {}
        let idle = Rc::clone(&idle);
        let target = Rc::clone(&target);
        let products = Rc::clone(products);
        let recorder = Rc::clone(recorder);
        let slots = Rc::clone(&slots);
        running.spawn_local(async move {
            // A task that must wait for a slot in flight waits because the
            // shop is slow: it counts from when it was due.
            let (_slot, began) = match slots.try_acquire() {
                Ok(slot) => (slot, issued),
                Err(_) => match slots.acquire().await {
                    Ok(slot) => (slot, due),
                    Err(_) => return,
                },
            };
            let popped = idle.borrow_mut().pop();
            let mut shopper = popped.unwrap_or_else(|| Shopper::new(&target, products));
            let task = Task::pick();
            let done = shopper.run(task, began).await;
            recorder.borrow_mut().record(task, &done, began.elapsed());
            idle.borrow_mut().push(shopper);
        });
    }
    drain(&mut running, duration).await
}

/// The longest load run: a week.
const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

/// `30s`, `2m`, `500ms`, `1h`, or a number of seconds; at most a week.
fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_duration_of("--duration", text)
}

/// [`parse_duration`] for the command-line option `flag`, which its
/// messages name.
pub(crate) fn parse_duration_of(flag: &str, text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0)
        .ok_or_else(|| format!("{flag} {text:?}: give a time like 30s, 2m or 500ms"))?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        other => {
            return Err(format!(
                "{flag} {text:?}: unknown unit {other:?} (ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|duration| *duration <= LONGEST)
        .ok_or_else(|| format!("{flag} {text:?}: give at most a week (168h)"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_with_their_units_and_junk_is_refused() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(
            parse_duration("168h").unwrap(),
            Duration::from_secs(7 * 24 * 3600)
        );
        for bad in [
            "",
            "s",
            "0s",
            "-1s",
            "3 weeks",
            "10d",
            "169h",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
