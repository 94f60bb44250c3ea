//! Supervision: a handler that panics fails its call with a typed error;
//! the module's actor is started again with fresh state, logged and
//! counted; a module that keeps panicking is restarted with backoff.

mod support;

use std::time::{Duration, Instant};

use runtime::{CallError, Node, NodeStats};
use support::*;

/// Waits (up to 5 s) until `node` has counted `restarts` restarts.
async fn restarted(node: &Node, restarts: u64) -> NodeStats {
    let started = Instant::now();
    loop {
        let stats = node.stats();
        if stats.restarts >= restarts {
            return stats;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Calls Count until the restarted actor answers.
async fn count_after_restart(toy: &runtime::ServiceRef<Toy>) -> u64 {
    let started = Instant::now();
    loop {
        match toy.call(Count {}).await {
            Ok(count) => return count.unwrap(),
            Err(error) => {
                assert!(error.is_safe_to_retry(), "{error:?}");
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "never restarted"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[actix_rt::test]
async fn a_panic_fails_its_call_and_the_actor_restarts_with_fresh_state() {
    let node = one_node().await;
    let toy = node.service::<Toy>().unwrap();
    assert_eq!(toy.call(Count {}).await.unwrap(), Ok(1));
    assert_eq!(toy.call(Count {}).await.unwrap(), Ok(2));

    let error = toy.call(Panic {}).await.unwrap_err();
    assert!(
        matches!(error, CallError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("panicked"), "{error}");

    assert_eq!(restarted(&node, 1).await.restarts, 1);
    // The same ref reaches the new actor, which starts counting afresh.
    assert_eq!(count_after_restart(&toy).await, 1);
}

/// A panic in a handler's future (a task of its own, holding no `&mut` to
/// the actor) ends that call only: the caller is told the handler
/// panicked, the actor keeps its state and is not restarted, and the
/// runtime's hook logs the panic and counts it.
#[actix_rt::test]
async fn a_panic_in_a_handlers_future_fails_its_call_and_keeps_the_actor() {
    runtime::panics::install(runtime::panics::DefaultOutput::Keep);
    let (logs, _guard) = Logs::capture();
    let node = one_node().await;
    let toy = node.service::<Toy>().unwrap();
    assert_eq!(toy.call(Count {}).await.unwrap(), Ok(1));
    let panics = runtime::panics::count();

    let error = toy.call(PanicLater {}).await.unwrap_err();
    assert!(
        matches!(error, CallError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("panicked"), "{error}");

    // The same actor: its count goes on.
    assert_eq!(toy.call(Count {}).await.unwrap(), Ok(2));
    assert_eq!(node.stats().restarts, 0);
    assert!(
        runtime::panics::count() > panics,
        "the panic was not counted"
    );
    // Logged as one error line, by the hook (the default hook writes to
    // stderr, not through tracing).
    let text = logs.text();
    assert!(
        text.contains("ERROR")
            && text.contains("panicked: the toy handler's future panics on purpose"),
        "{text}"
    );
}

#[actix_rt::test]
async fn a_remote_caller_reaches_the_restarted_actor() {
    let cluster = cluster().await;
    let toy = cluster.b.service::<Toy>().unwrap();
    let error = toy.call(Panic {}).await.unwrap_err();
    assert!(
        matches!(error, CallError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    restarted(&cluster.a, 1).await;
    assert_eq!(count_after_restart(&toy).await, 1);
}

#[actix_rt::test]
async fn a_module_that_keeps_panicking_is_restarted_with_backoff() {
    let node = one_node().await;
    let toy = node.service::<Toy>().unwrap();
    let started = Instant::now();
    for crash in 1..=5 {
        count_after_restart(&toy).await;
        let error = toy.call(Panic {}).await.unwrap_err();
        assert!(
            matches!(error, CallError::OutcomeUnknown { .. }),
            "{error:?}"
        );
        restarted(&node, crash).await;
    }
    count_after_restart(&toy).await;
    // Restarts 3, 4 and 5 waited 100, 200 and 400 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
}

#[actix_rt::test]
async fn calls_queued_behind_a_panic_do_not_run_on_the_broken_actor() {
    let node = one_node().await;
    let toy = node.service::<Toy>().unwrap();
    assert_eq!(toy.call(Count {}).await.unwrap(), Ok(1));
    // Queued together: a panic, a second one (had it run as the first
    // unwound, the process would have aborted), and a count (had it run
    // on the broken actor, it would have answered 2).
    let (first, second, count) =
        tokio::join!(toy.call(Panic {}), toy.call(Panic {}), toy.call(Count {}));
    for result in [first, second, count.map(|_| Ok(runtime::Empty {}))] {
        let error = result.unwrap_err();
        assert!(
            matches!(error, CallError::OutcomeUnknown { .. }),
            "{error:?}"
        );
    }
    assert_eq!(restarted(&node, 1).await.restarts, 1);
    // One restart, and a fresh actor: nothing ran after the panic.
    assert_eq!(count_after_restart(&toy).await, 1);
    assert_eq!(node.stats().restarts, 1);
}

/// While a module's actor is down (died, and its restart waits out its
/// backoff, or keeps failing), the node says it is not ready, naming the
/// module; once it runs again, it is ready.
#[actix_rt::test]
async fn a_module_down_makes_its_node_unready_until_it_runs_again() {
    let node = one_node().await;
    let toy = node.service::<Toy>().unwrap();
    assert!(node.readiness().is_ready(), "{:?}", node.readiness());
    // From the third crash in a row, each restart waits: 100, 200 ms.
    // Looked at until the restart is counted, which is once the module
    // runs again: while it is down, the restart is not counted yet (it
    // was, from the crash, though the module might never come back).
    let toy_down = || {
        node.readiness()
            .problems
            .iter()
            .any(|p| p.contains("module 'toy' is down"))
    };
    let mut seen_down = false;
    for crash in 1..=4 {
        count_after_restart(&toy).await;
        let _ = toy.call(Panic {}).await;
        let started = Instant::now();
        loop {
            // Counted before the look: down then means not back yet.
            let counted = node.stats().restarts;
            if toy_down() {
                seen_down = true;
                assert_eq!(counted, crash - 1, "counted while still down");
            } else if counted >= crash {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "not restarted");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(seen_down, "never unready while the toy module was down");
    count_after_restart(&toy).await;
    assert!(node.readiness().is_ready(), "{:?}", node.readiness());
}

/// A node whose main thread is stuck (here: the test's own, which runs
/// it, sleeping) is not ready, though its admin thread could still
/// answer; it is again once the thread runs.
#[actix_rt::test]
async fn a_node_whose_main_thread_is_stuck_is_not_ready() {
    let node = std::sync::Arc::new(one_node().await);
    assert!(node.readiness().is_ready(), "{:?}", node.readiness());
    let watcher = {
        let node = std::sync::Arc::clone(&node);
        std::thread::spawn(move || {
            // As the admin endpoints would see it, from their own thread.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let readiness = node.readiness();
                if !readiness.is_ready() {
                    return (readiness, node.health());
                }
                assert!(Instant::now() < deadline, "ready all along");
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    // Stuck: nothing else runs on this thread meanwhile.
    while !watcher.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (readiness, health) = watcher.join().unwrap();
    assert!(
        readiness.problems[0].contains("main thread") && readiness.problems[0].contains("not run"),
        "{readiness:?}"
    );
    // Stuck for seconds, not for the 15 that make it unhealthy.
    assert_eq!(health, Ok(()));
    let started = Instant::now();
    while !node.readiness().is_ready() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            node.readiness()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// --- Restarts during a graceful shutdown ----------------------------------

/// Work a graceful shutdown waits for may need a module that crashes
/// meanwhile (a checkout storing its order): it is restarted until the
/// node closes, not left down from the moment the shutdown began.
#[actix_rt::test]
async fn a_module_that_crashes_during_a_graceful_shutdown_is_restarted() {
    let node = one_node_of(&catalogue().with::<holder::HolderModule>()).await;
    let toy = node.service::<Toy>().unwrap();
    assert_eq!(toy.call(Count {}).await.unwrap(), Ok(1));

    let shutdown = node.shutdown_gracefully(Duration::from_secs(30));
    tokio::pin!(shutdown);
    let during = async {
        let error = toy.call(Panic {}).await.unwrap_err();
        assert!(error.to_string().contains("panicked"), "{error}");
        // Restarted within the grace, with fresh state.
        assert_eq!(count_after_restart(&toy).await, 1);
        holder::RELEASE.notify_one();
    };
    tokio::select! {
        () = during => {}
        unfinished = &mut shutdown => panic!("shut down ({unfinished} unfinished) while the holder held it"),
    }
    assert_eq!(shutdown.await, 0);
}

// --- A restart whose start panics ------------------------------------------

/// Starts of the [`Fragile`] module so far (one test in this binary
/// starts it).
static FRAGILE_STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Fragile's one message: panics in its handler.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Crash {}

runtime::service! {
    /// A module whose second start panics.
    pub Fragile = "fragile", error holder::Never {
        Crash -> runtime::Empty,
    }
}

struct FragileModule;

impl runtime::Module for FragileModule {
    type Service = Fragile;
    type Config = runtime::NoConfig;
    async fn start(
        _: runtime::NoConfig,
        _: runtime::StartContext,
    ) -> Result<Fragile, runtime::StartError> {
        let start = FRAGILE_STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        assert_ne!(start, 2, "the second start panics");
        Ok(Fragile::start(FragileActor))
    }
}

struct FragileActor;

impl actix::Actor for FragileActor {
    type Context = actix::Context<Self>;
}

impl actix::Handler<runtime::Call<Crash>> for FragileActor {
    type Result = Result<runtime::Empty, holder::Never>;
    fn handle(&mut self, _: runtime::Call<Crash>, _: &mut Self::Context) -> Self::Result {
        panic!("crash, as asked");
    }
}

/// A restart whose start panics is a failed start, tried again with
/// backoff: before, the panic ended the supervisor, and the module stayed
/// down (its node unready) for good.
#[actix_rt::test]
async fn a_restart_whose_start_panics_is_tried_again() {
    let node = one_node_of(&catalogue().with::<FragileModule>()).await;
    let fragile = node.service::<Fragile>().unwrap();
    let crashed = fragile.call(Crash {}).await.unwrap_err();
    assert!(
        matches!(crashed, CallError::OutcomeUnknown { .. }),
        "{crashed:?}"
    );
    // Start 2 panics, start 3 runs: the module answers again (with the
    // same panic, from a running actor), and the node is ready.
    let started = Instant::now();
    while FRAGILE_STARTS.load(std::sync::atomic::Ordering::SeqCst) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not started again after the panicking start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    while !node.readiness().is_ready() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            node.readiness()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
