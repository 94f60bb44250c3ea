//! Deadlines across hops: a call made for another call waits no longer than
//! it, and work whose deadline has passed is dropped before it runs, and
//! counted.

mod support;

use std::time::{Duration, Instant};

use runtime::transport::frame::FrameBuf;
use runtime::{CallError, CallMeta, Request};
use support::*;
use tokio::io::AsyncWriteExt;

const LONG: Duration = Duration::from_secs(10);

#[actix_rt::test]
async fn a_call_made_inside_a_scope_waits_no_longer_than_the_scope() {
    let node = one_node().await;
    let toy = node.service::<Toy>().unwrap().with_timeout(LONG);
    let outer = CallMeta::local(Duration::from_millis(200));

    let started = Instant::now();
    let error = outer
        .scope(async { toy.call(Hold { key: 1 }).await })
        .await
        .unwrap_err();

    assert!(
        matches!(error, CallError::TimedOut { after_ms, .. } if after_ms <= 200),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[actix_rt::test]
async fn a_call_made_for_a_call_whose_time_is_up_is_not_run() {
    let node = one_node().await;
    let toy = node.service::<Toy>().unwrap().with_timeout(LONG);
    let expired = CallMeta::local(Duration::ZERO);

    let error = expired
        .scope(async { toy.call(Hold { key: 3 }).await })
        .await
        .unwrap_err();

    // Not delivered: it surely did not run (a caller must not take it for
    // a call that may have).
    assert!(
        matches!(&error, CallError::NotDelivered { reason, .. } if reason.contains("no time was left")),
        "{error:?}"
    );
    assert!(error.did_not_run());
    // The actor never got it (it used to hold it, for nobody).
    assert_eq!(toy.call(Held {}).await.unwrap().unwrap(), Vec::<u32>::new());
}

#[actix_rt::test]
async fn a_shorter_timeout_of_its_own_still_applies_inside_a_scope() {
    let node = one_node().await;
    let toy = node
        .service::<Toy>()
        .unwrap()
        .with_timeout(Duration::from_millis(100));
    let outer = CallMeta::local(LONG);
    let error = outer
        .scope(async { toy.call(Hold { key: 1 }).await })
        .await
        .unwrap_err();
    assert!(
        matches!(error, CallError::TimedOut { after_ms, .. } if after_ms <= 100),
        "{error:?}"
    );
}

#[actix_rt::test]
async fn the_deadline_travels_across_nodes_and_expired_work_is_counted() {
    let cluster = cluster().await;
    let client = client(&cluster.plan).await;
    // client -> relay (b) -> toy (a): b's call to a inherits 300 ms, not
    // its ref's default 5 s.
    let relay = client
        .service::<RelayService>()
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let error = relay.call(RelayHold { key: 9 }).await.unwrap_err();
    assert!(matches!(error, CallError::TimedOut { .. }), "{error:?}");

    // Node a stops the held call at the inherited deadline, long before
    // 5 s, and counts it.
    let started = Instant::now();
    while cluster.a.stats().expired_in_service == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a never dropped the expired call"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(cluster.a.stats().expired_in_service, 1);
}

#[actix_rt::test]
async fn a_call_that_arrives_past_its_deadline_is_dropped_unrun() {
    let cluster = cluster().await;
    let (_reader, mut writer) = raw_dial(
        &cluster.a,
        "raw",
        runtime::transport::handshake::Role::Client,
    )
    .await;

    // A Hold with no time left: it must never reach the actor.
    let mut frame = FrameBuf::request(1, <Hold as Request>::METHOD.0, 0);
    runtime::codec::encode_into(&Hold { key: 5 }, frame.buf()).unwrap();
    writer
        .write_all(&frame.finish(1 << 20).unwrap())
        .await
        .unwrap();

    let started = Instant::now();
    while cluster.a.stats().expired_on_arrival == 0 {
        assert!(started.elapsed() < Duration::from_secs(2), "never counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let toy = cluster.a.service::<Toy>().unwrap();
    assert_eq!(toy.call(Held {}).await.unwrap().unwrap(), Vec::<u32>::new());
}

#[actix_rt::test]
async fn detached_work_keeps_its_own_timeouts_inside_a_scope() {
    let node = one_node().await;
    let toy = node
        .service::<Toy>()
        .unwrap()
        .with_timeout(Duration::from_millis(600));
    let outer = CallMeta::local(Duration::from_millis(50));
    let started = Instant::now();
    let error = outer
        .scope(async { runtime::detached(async { toy.call(Hold { key: 1 }).await }).await })
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::TimedOut { .. }), "{error:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it inherited: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_panic_inside_a_scope_leaves_its_deadline_and_trace_behind_on_no_thread() {
    // A handler's scoped work that panics: the executor catches the panic
    // and the thread goes on to make other calls.
    let handled = CallMeta::local(Duration::from_millis(1));
    let mut work = Box::pin(handled.scope(async { panic!("a bug in a handler") }));
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let _ = work.as_mut().poll(&mut context);
    }));
    assert!(polled.is_err(), "the work panicked");

    // A call made afterwards, outside any scope, has its own deadline and
    // starts its own trace.
    let next = CallMeta::local(LONG);
    assert!(next.remaining() > LONG / 2, "{:?}", next.remaining());
    assert_eq!(next.parent, 0);
    assert_ne!(next.trace, handled.trace);
}

#[actix_rt::test]
async fn a_call_that_waited_to_be_sent_past_its_deadline_is_not_run() {
    let cluster = cluster().await;
    let toy = cluster.b.service::<Toy>().unwrap();
    warm_up(&toy).await;

    // Nothing b writes to a moves (a link that drops every packet), so a
    // call's frame waits in b's outbox past its caller's 200 ms.
    cluster.b.faults().unwrap().stall("a", true);
    let held = toy
        .with_timeout(Duration::from_millis(200))
        .call(Hold { key: 7 })
        .await;
    assert!(matches!(held, Err(CallError::TimedOut { .. })), "{held:?}");
    cluster.b.faults().unwrap().stall("a", false);

    // When it leaves, it says it has no time left, and a drops it unrun.
    // (It used to carry the 200 ms it had when queued: a ran it after its
    // caller had given up.)
    let started = Instant::now();
    while cluster.a.stats().expired_on_arrival == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never dropped on arrival; held: {:?}",
            cluster.a.service::<Toy>().unwrap().call(Held {}).await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held_at_a = cluster.a.service::<Toy>().unwrap().call(Held {}).await;
    assert_eq!(held_at_a.unwrap().unwrap(), Vec::<u32>::new());
}
