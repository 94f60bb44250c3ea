//! Liveness across nodes: heartbeats tell a silent peer from a slow one.
//! Faults are injected with [`Node::faults`]: a stall (nothing moves, as
//! when a network drops every packet) and a throttled link.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use runtime::{CallError, Empty};
use support::*;

const LONG: Duration = Duration::from_secs(30);

fn echo(text: String) -> Echo {
    Echo {
        text,
        local_only: None,
    }
}

fn say(text: String) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Stalls (or resumes) everything between nodes a and b, on both sides.
fn partition(cluster: &Cluster, on: bool) {
    cluster.a.faults().unwrap().stall("b", on);
    cluster.b.faults().unwrap().stall("a", on);
}

#[actix_rt::test]
async fn a_stalled_peer_is_declared_unreachable_within_3_s_and_its_calls_fail_at_once() {
    let cluster = cluster().await;
    // b calls toy on a; the call is held there, answered by nothing.
    let toy = cluster.b.service::<Toy>().unwrap().with_timeout(LONG);
    let held = hold(&toy, 1).await;

    // A partition: nothing moves between a and b, either way.
    partition(&cluster, true);
    let stalled = Instant::now();
    let error = held.await.unwrap().unwrap_err();
    let detected = stalled.elapsed();

    assert!(
        matches!(error, CallError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("declared unreachable"),
        "{error}"
    );
    // Not at the 30 s deadline, not before the failure timeout (2.5 s).
    assert!(
        detected < Duration::from_secs(3),
        "detected after {detected:?}"
    );
    assert!(
        detected >= Duration::from_millis(2_000),
        "declared dead after only {detected:?}"
    );
    say(format!(
        "liveness: a stalled peer was declared unreachable after {detected:?}"
    ));

    // The network comes back: the peer is redialled (with backoff) and
    // calls work again.
    partition(&cluster, false);
    let ended = Instant::now();
    assert!(
        cluster.b.wait_connected("a", Duration::from_secs(10)).await,
        "never reconnected"
    );
    let recovered = ended.elapsed();
    let reply = toy.call(echo("back".into())).await.unwrap().unwrap();
    assert_eq!(reply.text, "back");
    say(format!(
        "liveness: reconnected {recovered:?} after the stall ended"
    ));
}

#[actix_rt::test]
async fn a_peer_stalled_for_one_second_is_not_declared_dead() {
    let cluster = cluster().await;
    let toy = cluster.b.service::<Toy>().unwrap().with_timeout(LONG);
    let held = hold(&toy, 1).await;

    cluster.b.faults().unwrap().stall("a", true);
    // The fault itself: one second of silence.
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.b.faults().unwrap().stall("a", false);

    assert_eq!(toy.call(Release { key: 1 }).await.unwrap(), Ok(Empty {}));
    assert_eq!(held.await.unwrap(), Ok(Ok(Empty {})));
    assert_eq!(
        cluster.b.connections_to("a"),
        1,
        "the connection was never replaced"
    );
}

#[actix_rt::test]
async fn a_peer_busy_sending_a_large_message_over_a_slow_link_is_alive() {
    let (la, lb) = (bind(), bind());
    // A failure timeout well above a busy machine's scheduling hiccups,
    // and a link slow enough to hold b's heartbeats back for three times
    // it.
    let fast_detection = "[runtime]\nheartbeat_interval_ms = 200\nfailure_timeout_ms = 1000\nhandshake_timeout_ms = 1000\n";
    let plan = plan_with(addr(&la), addr(&lb), fast_detection);
    let a = start_node(&plan, "a", la).await;
    let b = start_node(&plan, "b", lb).await;
    let toy = b.service::<Toy>().unwrap().with_timeout(LONG);
    warm_up(&toy).await;
    let big = "x".repeat(1024 * 1024);
    // A call with a short deadline made right after the big one: its
    // request, or its reply, waits behind the big frame for longer than a
    // failure timeout past its deadline. It times out here; the peer,
    // which answers as fast as the link lets it, is not to blame.
    let short = b
        .service::<Toy>()
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    // The big call and the short one after it, over the slow link: the
    // big one arrives whole, slowly; the short one times out; the peer
    // stays connected.
    let slow_round = |direction: &'static str| {
        let (toy, short, big, b) = (&toy, &short, &big, &b);
        async move {
            let started = Instant::now();
            let (reply, small) = tokio::join!(
                toy.call(echo(big.clone())),
                short.call(echo("small".into()))
            );
            assert!(
                started.elapsed() > Duration::from_millis(3_000),
                "the link was not slow"
            );
            assert_eq!(reply.unwrap().unwrap().text.len(), big.len());
            assert!(small.is_err(), "{small:?}");
            assert_eq!(b.connections_to("a"), 1, "declared dead while {direction}");
        }
    };

    // 1 MiB at 16 KiB every 50 ms: over 3 s in which b's heartbeats (and
    // the short call's request) wait behind the message, three times the
    // failure timeout.
    b.faults()
        .unwrap()
        .throttle_writes("a", 16 * 1024, Duration::from_millis(50));
    slow_round("sending").await;

    // The other way: the big reply comes slowly, and the short call's
    // reply waits behind it at a.
    b.faults().unwrap().throttle_writes("a", 0, Duration::ZERO);
    a.faults()
        .unwrap()
        .throttle_writes("b", 16 * 1024, Duration::from_millis(50));
    slow_round("receiving").await;

    // b sends its big request slowly again, and a's short call to b (b
    // answers it at once) has its reply waiting behind it at b: at a, the
    // frame on its way is a request, not a reply, but b is no less busy
    // answering. Before, a cut b off a failure timeout past the short
    // call's deadline, and the big call failed with it.
    a.faults().unwrap().throttle_writes("b", 0, Duration::ZERO);
    b.faults()
        .unwrap()
        .throttle_writes("a", 16 * 1024, Duration::from_millis(50));
    let ping = a
        .service::<Other>()
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let (reply, small) = tokio::join!(
        toy.call(echo(big.clone())),
        ping.call(Ping {
            text: "small".into()
        })
    );
    assert_eq!(a.connections_to("b"), 1, "declared dead while answering");
    assert_eq!(reply.unwrap().unwrap().text.len(), big.len());
    assert!(small.is_err(), "{small:?}");
    assert!(
        started.elapsed() > Duration::from_millis(3_000),
        "the link was not slow"
    );
}

#[actix_rt::test]
async fn a_paused_node_does_not_blame_its_peers() {
    let cluster = cluster().await;
    let toy = cluster.b.service::<Toy>().unwrap().with_timeout(LONG);
    toy.call(echo("before".into())).await.unwrap().unwrap();

    // Both nodes run on this thread: blocking it pauses them both for
    // longer than the failure timeout, as SIGSTOP or a VM pause would.
    std::thread::sleep(Duration::from_secs(3));

    assert_eq!(
        toy.call(echo("after".into())).await.unwrap().unwrap().text,
        "after"
    );
    assert_eq!(
        cluster.b.connections_to("a"),
        1,
        "a pause was taken for a death"
    );
}

/// A peer that takes every connection through the handshake and then drops
/// it (a node in a crash loop behind a proxy, or one that a middlebox keeps
/// resetting) is dialled again with backoff, not in a loop. Over two
/// seconds: about six connections; it was hundreds.
#[actix_rt::test]
async fn a_peer_that_drops_every_connection_is_redialled_with_backoff() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = bind();
    let plan = plan_with(fake.local_addr().unwrap(), addr(&lb), TEST_RUNTIME);
    let accepted = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&accepted);
    let acceptor = tokio::spawn(async move {
        loop {
            // Dropped: the connection ends as soon as it is made.
            if accept_as_a(&fake).await.is_some() {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let b = start_node(&plan, "b", lb).await;
    // The first call starts the dialing.
    let _ = b.service::<Toy>().unwrap().call(echo("x".into())).await;
    // The window over which the redials are counted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connections = accepted.load(Ordering::SeqCst);
    acceptor.abort();
    assert!(
        (2..=10).contains(&connections),
        "{connections} connections in 2 s"
    );
}

/// A peer that sends heartbeats but answers no calls (stuck, or broken)
/// is declared unreachable a failure timeout after a call of ours went
/// unanswered past its deadline: a node answers every call by then. Its
/// calls no longer hold their slots until the connection ends.
#[actix_rt::test]
async fn a_peer_that_answers_no_calls_is_declared_unreachable() {
    use runtime::transport::frame::HEARTBEAT_FRAME;
    use tokio::io::AsyncWriteExt;

    let (logs, _guard) = Logs::capture();
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = bind();
    let runtime = "[runtime]\nhandshake_timeout_ms = 1000\n\
                   heartbeat_interval_ms = 100\nfailure_timeout_ms = 500\n";
    let plan = plan_with(fake.local_addr().unwrap(), addr(&lb), runtime);
    // Node "a", as far as b can tell: it takes the handshake, reads every
    // frame and sends heartbeats, and answers nothing.
    let stuck = tokio::spawn(async move {
        // Its heartbeat settings are the node's own, as they must be.
        let heartbeat = runtime::transport::handshake::Heartbeat {
            interval_ms: 100,
            failure_timeout_ms: 500,
        };
        let (mut reader, mut write) = accept_as_a_with(&fake, heartbeat).await.unwrap();
        reader.set_max(4 * 1024 * 1024);
        tokio::spawn(async move { while let Ok(Some(_)) = reader.next().await {} });
        let mut beat = tokio::time::interval(Duration::from_millis(100));
        loop {
            beat.tick().await;
            if write.write_all(&HEARTBEAT_FRAME).await.is_err() {
                return;
            }
        }
    });
    let b = start_node(&plan, "b", lb).await;
    let toy = b
        .service::<Toy>()
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let error = toy.call(echo("x".into())).await.unwrap_err();
    assert!(matches!(error, CallError::TimedOut { .. }), "{error:?}");
    // 200 ms to the deadline, then the failure timeout, then a look.
    wait_for_log(&logs, "answers no calls").await;
    assert!(
        logs.text().contains("has not answered call"),
        "{}",
        logs.text()
    );
    stuck.abort();
}
