//! A steady load of calls, and a record of what every caller saw: one call
//! started every period, each in its own task (a slow call never holds up
//! the next), each recorded with when it started, how long it took and how
//! it ended. Fault tests read the record to measure detection (the first
//! failure after a fault) and recovery (the first success after it ends).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use runtime::CallErrorKind;

/// How one call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The right answer.
    Ok,
    /// An answer, but not the one asked for (a stale or crossed reply).
    Wrong(String),
    /// The service said no.
    Refused(String),
    /// The call failed.
    Failed(CallErrorKind),
}

/// One call.
#[derive(Debug, Clone)]
pub struct Record {
    /// When it started, from the start of the load.
    pub at: Duration,
    /// How long it took.
    pub took: Duration,
    /// How it ended.
    pub seen: Seen,
}

impl Record {
    /// When it ended, from the start of the load.
    pub fn ended(&self) -> Duration {
        self.at + self.took
    }
}

/// A load running in the background.
pub struct Load {
    name: &'static str,
    started: Instant,
    records: Arc<Mutex<Vec<Record>>>,
    stop: Arc<AtomicBool>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Load {
    /// Starts calling: every `every`, `call(n)` for n = 0, 1, 2...
    pub fn start<F, Fut>(name: &'static str, every: Duration, call: F) -> Load
    where
        F: Fn(u64) -> Fut + 'static,
        Fut: Future<Output = Seen> + 'static,
    {
        let started = Instant::now();
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let records = Arc::clone(&records);
            let stop = Arc::clone(&stop);
            actix_rt::spawn(async move {
                let mut calls = tokio::task::JoinSet::new();
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut n = 0;
                while !stop.load(Ordering::Acquire) {
                    ticks.tick().await;
                    let future = call(n);
                    n += 1;
                    let records = Arc::clone(&records);
                    calls.spawn_local(async move {
                        let at = started.elapsed();
                        let seen = future.await;
                        let took = started.elapsed() - at;
                        records
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(Record { at, took, seen });
                    });
                    while calls.try_join_next().is_some() {}
                }
                while calls.join_next().await.is_some() {}
            })
        };
        Load {
            name,
            started,
            records,
            stop,
            ticker,
        }
    }

    /// Time since the load started.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// The calls that have ended so far.
    pub fn records(&self) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until a call that started at or after `since` has ended as
    /// `wanted` says, and returns it; panics after `limit`.
    pub async fn first(
        &self,
        since: Duration,
        limit: Duration,
        wanted: impl Fn(&Seen) -> bool,
    ) -> Record {
        let deadline = Instant::now() + limit;
        let mut poll = tokio::time::interval(Duration::from_millis(10));
        loop {
            poll.tick().await;
            let found = self
                .records()
                .into_iter()
                .filter(|r| r.ended() >= since && wanted(&r.seen))
                .min_by_key(Record::ended);
            if let Some(record) = found {
                return record;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no such call within {limit:?} after {since:?}",
                self.name
            );
        }
    }

    /// Waits until `count` more calls have succeeded after `since`.
    pub async fn successes_after(&self, since: Duration, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut poll = tokio::time::interval(Duration::from_millis(10));
        loop {
            poll.tick().await;
            let ok = self
                .records()
                .iter()
                .filter(|r| r.at >= since && r.seen == Seen::Ok)
                .count();
            if ok >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: only {ok} of {count} calls succeeded in 60 s",
                self.name
            );
        }
    }

    /// Stops starting calls, waits for those in flight, and returns them all.
    pub async fn stop(self) -> Vec<Record> {
        self.stop.store(true, Ordering::Release);
        let records = Arc::clone(&self.records);
        self.ticker.await.unwrap();
        let mut records = records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        records.sort_by_key(|r| r.at);
        records
    }
}

/// What callers saw, in numbers.
#[derive(Debug, Default)]
pub struct Tally {
    /// Right answers.
    pub ok: usize,
    /// Wrong answers.
    pub wrong: usize,
    /// Refusals by the service.
    pub refused: usize,
    /// Failures by kind.
    pub failed: BTreeMap<String, usize>,
    /// The longest any call took.
    pub slowest: Duration,
}

impl Tally {
    /// Counts `records`.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Tally {
        let mut tally = Tally::default();
        for record in records {
            tally.slowest = tally.slowest.max(record.took);
            match &record.seen {
                Seen::Ok => tally.ok += 1,
                Seen::Wrong(_) => tally.wrong += 1,
                Seen::Refused(_) => tally.refused += 1,
                Seen::Failed(kind) => *tally.failed.entry(format!("{kind:?}")).or_default() += 1,
            }
        }
        tally
    }

    /// How many calls failed.
    pub fn failures(&self) -> usize {
        self.failed.values().sum()
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ok, {} wrong, {} refused, failed {:?}, slowest {:?}",
            self.ok, self.wrong, self.refused, self.failed, self.slowest
        )
    }
}
