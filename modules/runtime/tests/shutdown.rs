//! Graceful shutdown: new calls are refused, peers stop sending at once,
//! calls in flight finish within the grace period.

mod support;

use std::time::{Duration, Instant};

use runtime::{CallError, Empty};
use support::*;

const LONG: Duration = Duration::from_secs(30);

/// Calls Echo on `toy` until it fails; returns that error.
async fn first_refusal(toy: &runtime::ServiceRef<Toy>) -> CallError {
    let started = Instant::now();
    loop {
        match toy
            .call(Echo {
                text: "x".into(),
                local_only: None,
            })
            .await
        {
            Err(error) => return error,
            Ok(_) => {
                assert!(started.elapsed() < Duration::from_secs(5), "never refused");
                tokio::task::yield_now().await;
            }
        }
    }
}

#[actix_rt::test]
async fn a_leaving_node_refuses_new_calls_and_finishes_those_in_flight() {
    let cluster = cluster().await;
    let toy = cluster.b.service::<Toy>().unwrap().with_timeout(LONG);
    let held = hold(&toy, 1).await;
    // b's relay calls toy, on a: b is ready while a takes calls.
    let b = &cluster.b;
    assert!(b.readiness().is_ready(), "{:?}", b.readiness());
    assert!(
        b.metrics_text()
            .contains("boutique_peer_up{node=\"b\",peer=\"a\"} 1")
    );
    let a = std::rc::Rc::new(cluster.a);

    let shutdown = actix_rt::spawn({
        let a = std::rc::Rc::clone(&a);
        async move { a.shutdown_gracefully(Duration::from_secs(10)).await }
    });

    // b hears that a is leaving: new calls fail at once, not delivered.
    let error = first_refusal(&toy).await;
    assert!(matches!(error, CallError::NotDelivered { .. }), "{error:?}");
    assert!(error.to_string().contains("shutting down"), "{error}");
    assert!(
        !shutdown.is_finished(),
        "a did not wait for its call in flight"
    );
    // Nor is b ready: toy's one replica is leaving.
    let readiness = b.readiness();
    assert!(
        readiness
            .problems
            .iter()
            .any(|p| p.contains("relay calls toy")),
        "{readiness:?}"
    );
    assert!(
        b.metrics_text()
            .contains("boutique_peer_up{node=\"b\",peer=\"a\"} 0")
    );

    // The call in flight is allowed to finish; then a closes.
    let release = actix_rt::spawn({
        let a = std::rc::Rc::clone(&a);
        async move { a.service::<Toy>().unwrap().call(Release { key: 1 }).await }
    });
    assert_eq!(held.await.unwrap(), Ok(Ok(Empty {})));
    assert_eq!(release.await.unwrap(), Ok(Ok(Empty {})));
    assert_eq!(shutdown.await.unwrap(), 0, "no call was cut off");
}

#[actix_rt::test]
async fn calls_still_running_after_the_grace_period_are_cut_off() {
    let cluster = cluster().await;
    let toy = cluster.b.service::<Toy>().unwrap().with_timeout(LONG);
    let held = hold(&toy, 1).await;
    let started = Instant::now();
    let unfinished = cluster
        .a
        .shutdown_gracefully(Duration::from_millis(300))
        .await;
    assert_eq!(unfinished, 1);
    assert!(started.elapsed() >= Duration::from_millis(290));
    let error = held.await.unwrap().unwrap_err();
    assert!(
        matches!(error, CallError::OutcomeUnknown { .. }),
        "{error:?}"
    );
}

#[actix_rt::test]
async fn calls_racing_a_graceful_shutdown_are_answered_or_not_delivered_never_unknown() {
    // Callers on b keep calling a as fast as they can while a shuts down:
    // some of their calls are on the wire when a says it is leaving. Each
    // must still learn what happened to it: answered, or refused as not
    // delivered. None may be left with an unknown outcome, since none was
    // running when a closed.
    for round in 0..5 {
        let cluster = cluster().await;
        let toy = cluster.b.service::<Toy>().unwrap().with_timeout(LONG);
        let callers: Vec<_> = (0..32)
            .map(|_| {
                let toy = toy.clone();
                actix_rt::spawn(async move {
                    let mut answered = 0u32;
                    loop {
                        let call = toy.call(Echo {
                            text: "x".into(),
                            local_only: None,
                        });
                        match call.await {
                            Ok(_) => answered += 1,
                            Err(error) => return (answered, error),
                        }
                    }
                })
            })
            .collect();
        // Let the traffic get going, then leave.
        let first = toy
            .call(Echo {
                text: "first".into(),
                local_only: None,
            })
            .await;
        assert!(matches!(first, Ok(Ok(_))), "{first:?}");
        let unfinished = cluster.a.shutdown_gracefully(Duration::from_secs(5)).await;
        assert_eq!(unfinished, 0, "round {round}");
        for caller in callers {
            let (_, error) = caller.await.unwrap();
            assert!(
                matches!(error, CallError::NotDelivered { .. }),
                "round {round}: {error:?}"
            );
        }
    }
}

#[actix_rt::test]
async fn a_first_call_made_while_its_node_shuts_down_fails_at_once_not_at_its_deadline() {
    let cluster = cluster().await;
    // b has not called a yet: the call below would be b's first dial.
    assert_eq!(
        cluster.b.shutdown_gracefully(Duration::from_secs(1)).await,
        0
    );
    let toy = cluster.b.service::<Toy>().unwrap().with_timeout(LONG);
    let started = Instant::now();
    let error = toy
        .call(Echo {
            text: "x".into(),
            local_only: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::NotDelivered { .. }), "{error:?}");
    assert!(error.to_string().contains("shutting down"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the call waited {:?}",
        started.elapsed()
    );
}

#[actix_rt::test]
async fn waits_of_any_length_are_taken_as_long_as_it_takes() {
    // `Duration::MAX`, "as long as it takes": `now + limit` panicked.
    let cluster = cluster().await;
    let toy = cluster.b.service::<Toy>().unwrap();
    toy.call(Echo {
        text: "dial".into(),
        local_only: None,
    })
    .await
    .unwrap()
    .unwrap();
    assert!(cluster.b.wait_connected("a", Duration::MAX).await);
    assert_eq!(cluster.a.shutdown_gracefully(Duration::MAX).await, 0);
}

// --- Work a module holds the shutdown for ---------------------------------

async fn holder_node() -> runtime::Node {
    let catalogue = runtime::Catalogue::new().with::<holder::HolderModule>();
    let plan = runtime::config::parse("[nodes.main]\nmodules = [\"holder\"]\n").unwrap();
    let plan = runtime::Plan::new(plan, &catalogue).unwrap();
    runtime::Node::builder(&plan, &catalogue)
        .start("main")
        .await
        .unwrap()
}

#[actix_rt::test]
async fn a_graceful_shutdown_waits_for_the_work_a_module_holds_it_for() {
    let node = holder_node().await;
    assert!(node.readiness().is_ready(), "{:?}", node.readiness());
    let shutdown = node.shutdown_gracefully(LONG);
    tokio::pin!(shutdown);
    // Told to stop, the module is still at its work: the shutdown waits.
    let told = async {
        while !holder::STOPPING.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
    };
    tokio::select! {
        () = told => {}
        unfinished = &mut shutdown => panic!("shut down ({unfinished} unfinished) before the module was told"),
    }
    let still_waiting =
        std::future::poll_fn(|cx| std::task::Poll::Ready(shutdown.as_mut().poll(cx).is_pending()))
            .await;
    assert!(
        still_waiting,
        "the shutdown did not wait for the module's work"
    );
    // Meanwhile it is not ready: a load balancer sends it nothing new.
    let readiness = node.readiness();
    assert_eq!(
        readiness.problems,
        vec!["node 'main' is shutting down".to_owned()]
    );
    // The work done, the shutdown ends, with nothing unfinished.
    holder::RELEASE.notify_one();
    assert_eq!(shutdown.await, 0);

    // Work that outlasts the grace period is left, and counted.
    let node = holder_node().await;
    let started = Instant::now();
    assert_eq!(
        node.shutdown_gracefully(Duration::from_millis(300)).await,
        1
    );
    assert!(started.elapsed() >= Duration::from_millis(290));
}

// --- A hold taken by a served call after the shutdown began ---------------

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct TakeHold {}

/// Set when the taker's handler runs.
static TAKER_SERVING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

runtime::service! {
    /// A module whose calls take a hold on the node's shutdown once it is
    /// under way (as a checkout takes one per order), and keep it.
    Taker = "taker", error holder::Never {
        TakeHold -> Empty,
    }
}

struct TakerModule;

impl runtime::Module for TakerModule {
    type Service = Taker;
    type Config = runtime::NoConfig;
    async fn start(
        _: runtime::NoConfig,
        ctx: runtime::StartContext,
    ) -> Result<Taker, runtime::StartError> {
        Ok(Taker::start(TakerActor { ctx }))
    }
}

struct TakerActor {
    ctx: runtime::StartContext,
}

impl actix::Actor for TakerActor {
    type Context = actix::Context<Self>;
}

impl actix::Handler<runtime::Call<TakeHold>> for TakerActor {
    type Result = actix::ResponseFuture<Result<Empty, holder::Never>>;
    fn handle(&mut self, _: runtime::Call<TakeHold>, _: &mut Self::Context) -> Self::Result {
        TAKER_SERVING.store(true, std::sync::atomic::Ordering::SeqCst);
        let stopped = self.ctx.stopped();
        let holder = self.ctx.shutdown_holder();
        Box::pin(async move {
            stopped.await;
            let _hold = holder.hold();
            std::future::pending::<()>().await;
            Ok(Empty {})
        })
    }
}

/// A call served while the node shuts down takes a hold after the holds
/// were first looked at; its caller gives up (it is no longer served),
/// but the work goes on, and the shutdown waits for it to the end of the
/// grace. It closed as soon as the served calls were done, reporting
/// nothing unfinished.
#[actix_rt::test]
async fn a_hold_a_served_call_takes_during_the_shutdown_is_waited_for() {
    let catalogue = runtime::Catalogue::new().with::<TakerModule>();
    let listener = bind();
    let text = format!(
        "[cluster]\nsecret_env = \"TOY_SECRET_UNUSED\"\n\
         [nodes.a]\nlisten = \"{}\"\nmodules = [\"taker\"]\n",
        addr(&listener)
    );
    let plan = runtime::Plan::new(runtime::config::parse(&text).unwrap(), &catalogue).unwrap();
    let a = runtime::Node::builder(&plan, &catalogue)
        .listener(listener)
        .secret(secret())
        .start("a")
        .await
        .unwrap();
    let client = runtime::Node::builder(&plan, &catalogue)
        .secret(secret())
        .client()
        .await
        .unwrap();
    let taker = client
        .service::<Taker>()
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let call = tokio::spawn(async move { taker.call(TakeHold {}).await });
    // Served: the call is running at a.
    let started = Instant::now();
    while !TAKER_SERVING.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(started.elapsed() < Duration::from_secs(5), "never served");
        tokio::task::yield_now().await;
    }
    let grace = Duration::from_secs(2);
    let started = Instant::now();
    let unfinished = a.shutdown_gracefully(grace).await;
    assert!(call.await.unwrap().is_err());
    assert_eq!(unfinished, 1, "the hold was not waited for");
    assert!(
        started.elapsed() >= grace - Duration::from_millis(50),
        "closed after {:?}",
        started.elapsed()
    );
}

// --- Work during the grace that needs a lost connection back ---------------

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Idle {}

/// Set once the closer module has been told to stop.
static CLOSER_STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Lets the closer's work make its call.
static CLOSER_GO: tokio::sync::Notify = tokio::sync::Notify::const_new();
/// What the closer's call to toy came to: the echoed text, or the error.
static CLOSER_CALLED: std::sync::Mutex<Option<Result<String, String>>> =
    std::sync::Mutex::new(None);

runtime::service! {
    /// A module whose work, once it is told to stop, calls toy on another
    /// node (as a checkout finishing an order during the grace calls
    /// payment and orders), and holds the shutdown until it has.
    Closer = "closer", error holder::Never {
        Idle -> Empty,
    }
}

struct CloserModule;

impl runtime::Module for CloserModule {
    type Service = Closer;
    type Config = runtime::NoConfig;
    fn dependencies() -> Vec<&'static str> {
        vec![<Toy as runtime::Service>::NAME]
    }
    async fn start(
        _: runtime::NoConfig,
        ctx: runtime::StartContext,
    ) -> Result<Closer, runtime::StartError> {
        let toy = ctx.service::<Toy>()?.with_timeout(LONG);
        let hold = ctx.hold_shutdown();
        let stopped = ctx.stopped();
        actix::spawn(async move {
            stopped.await;
            CLOSER_STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
            CLOSER_GO.notified().await;
            let echo = Echo {
                text: "late".into(),
                local_only: None,
            };
            let called = match toy.call(echo).await {
                Ok(Ok(reply)) => Ok(reply.text),
                other => Err(format!("{other:?}")),
            };
            *CLOSER_CALLED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(called);
            drop(hold);
        });
        Ok(Closer::start(CloserActor))
    }
}

struct CloserActor;

impl actix::Actor for CloserActor {
    type Context = actix::Context<Self>;
}

impl actix::Handler<runtime::Call<Idle>> for CloserActor {
    type Result = Result<Empty, holder::Never>;
    fn handle(&mut self, _: runtime::Call<Idle>, _: &mut Self::Context) -> Self::Result {
        Ok(Empty {})
    }
}

/// Polls `check` until it is true, for at most 10 s.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(10), "never {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A node's connection lost during its graceful shutdown is dialed again
/// while the work the shutdown waits for may need it: that work's calls
/// go through. Before, the node stopped dialing as the shutdown began,
/// and the work's next call to that peer failed at once. The peer is told
/// on the new connection that the node is leaving, as on the old.
#[actix_rt::test]
async fn work_during_the_grace_gets_a_lost_connection_back() {
    let catalogue = runtime::Catalogue::new()
        .with::<ToyModule>()
        .with::<OtherModule>()
        .with::<CloserModule>();
    let (la, lb) = (bind(), bind());
    let text = format!(
        "[cluster]\nsecret_env = \"TOY_SECRET_UNUSED\"\n\
         [nodes.a]\nlisten = \"{}\"\nmodules = [\"toy\"]\n\
         [nodes.b]\nlisten = \"{}\"\nmodules = [\"other\", \"closer\"]\n{TEST_RUNTIME}",
        addr(&la),
        addr(&lb)
    );
    let plan = runtime::Plan::new(runtime::config::parse(&text).unwrap(), &catalogue).unwrap();
    let start = |name: &'static str, listener| {
        runtime::Node::builder(&plan, &catalogue)
            .listener(listener)
            .secret(secret())
            .start(name)
    };
    let a = start("a", la).await.unwrap();
    let b = std::rc::Rc::new(start("b", lb).await.unwrap());
    let echo = || Echo {
        text: "x".into(),
        local_only: None,
    };
    let toy = b.service::<Toy>().unwrap();
    assert!(matches!(toy.call(echo()).await, Ok(Ok(_))));

    let shutdown = actix_rt::spawn({
        let b = std::rc::Rc::clone(&b);
        async move { b.shutdown_gracefully(LONG).await }
    });
    until("told to stop", async || {
        CLOSER_STOPPING.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    // The connection is lost while the closer's work holds the shutdown.
    b.faults().unwrap().cut("a");
    let up = "boutique_peer_up{node=\"b\",peer=\"a\"} 1";
    until("dialed again", async || b.metrics_text().contains(up)).await;
    // a hears on the new connection that b is leaving, and stops sending
    // to it (its calls fail where they are made, not refused by b).
    let other = a.service::<Other>().unwrap();
    until("told b is leaving", async || {
        let ping = Ping { text: "x".into() };
        match other.call(ping).await {
            Err(error) => error
                .to_string()
                .contains("unreachable: it is shutting down"),
            Ok(answer) => panic!("b answered {answer:?} while leaving"),
        }
    })
    .await;

    CLOSER_GO.notify_one();
    assert_eq!(shutdown.await.unwrap(), 0, "the work outlasted the grace");
    let called = CLOSER_CALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert_eq!(called, Some(Ok("late".to_owned())));
}
