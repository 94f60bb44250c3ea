//! Backpressure: at most `max_in_flight_per_peer` calls in flight to a
//! peer; more wait for room until their deadline, then fail as
//! overloaded; a caller that forgets its calls cannot pile work up on the
//! peer; a peer that ignores the limit is refused; a peer that sends calls
//! but never reads their replies is cut off.

mod support;

use std::time::{Duration, Instant};

use runtime::transport::frame::{Frame, FrameBuf, FrameReader, ReplyStatus};
use runtime::transport::handshake::Role;
use runtime::{CallError, Request};
use support::*;
use tokio::io::AsyncWriteExt;

const LIMIT: usize = 8;

async fn limited_cluster() -> Cluster {
    let (la, lb) = (bind(), bind());
    let runtime =
        format!("[runtime]\nmax_in_flight_per_peer = {LIMIT}\nhandshake_timeout_ms = 1000\n");
    let plan = plan_with(addr(&la), addr(&lb), &runtime);
    let a = start_node(&plan, "a", la).await;
    let b = start_node(&plan, "b", lb).await;
    Cluster { plan, a, b }
}

/// Waits until toy on `cluster.a` holds exactly `count` calls.
async fn held(cluster: &Cluster, count: usize) {
    let toy = cluster.a.service::<Toy>().unwrap();
    let started = Instant::now();
    loop {
        let keys = toy.call(Held {}).await.unwrap().unwrap();
        if keys.len() == count {
            return;
        }
        assert!(
            keys.len() < count,
            "holds {} calls, more than {count}",
            keys.len()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "holds {} calls, not {count}",
            keys.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix_rt::test]
async fn calls_past_the_limit_wait_for_room_then_fail_as_overloaded() {
    let cluster = limited_cluster().await;
    let toy = cluster
        .b
        .service::<Toy>()
        .unwrap()
        .with_timeout(Duration::from_secs(30));
    let holds: Vec<_> = (0..LIMIT as u32)
        .map(|key| {
            let toy = toy.clone();
            tokio::spawn(async move { toy.call(Hold { key }).await })
        })
        .collect();
    held(&cluster, LIMIT).await;

    // No room: waits its whole deadline, then overloaded (never sent).
    let started = Instant::now();
    let error = toy
        .with_timeout(Duration::from_millis(300))
        .call(Echo {
            text: "late".into(),
            local_only: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Overloaded { .. }), "{error:?}");
    assert!(error.is_safe_to_retry());
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(cluster.b.stats().calls_overloaded, 1);

    // Room appears: a waiting call goes through.
    let waiting = tokio::spawn({
        let toy = toy.clone();
        async move {
            toy.call(Echo {
                text: "waited".into(),
                local_only: None,
            })
            .await
        }
    });
    let a_toy = cluster.a.service::<Toy>().unwrap();
    a_toy.call(Release { key: 0 }).await.unwrap().unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().unwrap().text, "waited");
    for key in 1..LIMIT as u32 {
        a_toy.call(Release { key }).await.unwrap().unwrap();
    }
    for hold in holds {
        hold.await.unwrap().unwrap().unwrap();
    }
}

#[actix_rt::test]
async fn a_caller_that_forgets_its_calls_cannot_flood_the_peer() {
    let cluster = limited_cluster().await;
    let toy = cluster
        .b
        .service::<Toy>()
        .unwrap()
        .with_timeout(Duration::from_secs(30));
    // Connected first: a first call waits for the dial, and a forgotten
    // one would never be sent at all.
    toy.call(Echo {
        text: "hello".into(),
        local_only: None,
    })
    .await
    .unwrap()
    .unwrap();
    for key in 0..10_000 {
        // Fired and forgotten: the first LIMIT are sent and hold their
        // slots until answered; the rest find no room and are not sent.
        drop(toy.call(Hold { key }));
    }
    held(&cluster, LIMIT).await;
    // One slot freed, one more call: it leaves after every frame queued
    // before it on the connection, so once it is answered the peer has
    // seen all that was ever sent. Had more than LIMIT holds been sent,
    // more than LIMIT - 1 would still be held.
    let a_toy = cluster.a.service::<Toy>().unwrap();
    a_toy.call(Release { key: 0 }).await.unwrap().unwrap();
    let last = toy
        .call(Echo {
            text: "last".into(),
            local_only: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.text, "last");
    let keys = a_toy.call(Held {}).await.unwrap().unwrap();
    assert_eq!(keys.len(), LIMIT - 1, "{keys:?}");
    // And none arrived at a to be refused there: b sends nothing past its
    // limit (a's own limit would refuse such calls, and so hide them).
    assert_eq!(cluster.a.stats().refused_overloaded, 0);
}

#[actix_rt::test]
async fn a_peer_that_ignores_the_limit_is_refused_as_overloaded() {
    let cluster = limited_cluster().await;
    let (mut reader, mut writer) = raw_client(&cluster.a, "greedy").await;

    for key in 0..=LIMIT as u64 {
        let mut frame = FrameBuf::request(key, <Hold as Request>::METHOD.0, 30_000_000);
        runtime::codec::encode_into(&Hold { key: key as u32 }, frame.buf()).unwrap();
        writer
            .write_all(&frame.finish(1 << 20).unwrap())
            .await
            .unwrap();
    }
    // The one past the limit is answered at once, refused.
    match next_frame(&mut reader).await {
        Frame::Reply {
            call_id,
            status: ReplyStatus::Failed,
            payload,
        } => {
            assert_eq!(call_id, LIMIT as u64);
            let error: CallError = runtime::codec::decode(&payload).unwrap();
            assert!(matches!(error, CallError::Overloaded { .. }), "{error:?}");
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    held(&cluster, LIMIT).await;
    assert_eq!(cluster.a.stats().refused_overloaded, 1);
}

/// A raw client connection, named `name`, to `node` (node `a`): frames
/// are sent and read by hand.
async fn raw_client(
    node: &runtime::Node,
    name: &str,
) -> (
    FrameReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    raw_dial(node, name, Role::Client).await
}

/// An Echo request frame; its reply is as long as `text`.
fn echo_frame(call_id: u64, text: &str) -> Vec<u8> {
    let mut frame = FrameBuf::request(call_id, <Echo as Request>::METHOD.0, 30_000_000);
    runtime::codec::encode_into(
        &Echo {
            text: text.to_owned(),
            local_only: None,
        },
        frame.buf(),
    )
    .unwrap();
    frame.finish(1 << 20).unwrap().to_vec()
}

/// Writes `frame`; false once the node has closed the connection.
async fn still_open(writer: &mut tokio::net::tcp::OwnedWriteHalf, frame: &[u8]) -> bool {
    match tokio::time::timeout(Duration::from_secs(20), writer.write_all(frame)).await {
        Ok(result) => result.is_ok(),
        Err(_) => panic!("a write blocked for 20 s: the node stopped reading instead of closing"),
    }
}

/// Echo still answers on node `a` of `plan`, for another client.
async fn still_serves(plan: &runtime::config::Plan) {
    let client = client(plan).await;
    let reply = client
        .service::<Toy>()
        .unwrap()
        .call(Echo {
            text: "still here".into(),
            local_only: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.text, "still here");
}

#[actix_rt::test]
async fn a_peer_that_leaves_its_replies_unread_is_cut_off_before_they_pile_up() {
    let (logs, _guard) = Logs::capture();
    let (la, lb) = (bind(), bind());
    // Frames of at most 256 KiB: at most 16 MiB may wait for a peer. The
    // failure timeout is long, so that only the pile cuts this peer off.
    let runtime = "[runtime]\nmax_frame_bytes = 262144\nfailure_timeout_ms = 30000\nhandshake_timeout_ms = 1000\n";
    let plan = plan_with(addr(&la), addr(&lb), runtime);
    let a = start_node(&plan, "a", la).await;
    let (_reader, mut writer) = raw_client(&a, "deaf").await;

    // Calls of 64 KiB, their replies as big, none of them read. The node
    // reads them as fast as they come (refusing those past its limit of
    // calls in flight), so how many get written before the watcher's next
    // look (every 100 ms) depends on the machine: the bound is on time.
    // Without the watcher the peer would be cut off only when its calls
    // unanswered passed what it said it may have in flight (65,536, some
    // 4 GiB here), and the log would say so instead.
    let text = "x".repeat(64 * 1024);
    let started = std::time::Instant::now();
    let mut calls = 0u64;
    while still_open(&mut writer, &echo_frame(calls + 1, &text)).await {
        calls += 1;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still connected after {calls} unread replies ({} MiB) and {:?}",
            calls / 16,
            started.elapsed()
        );
    }
    let said = logs.text();
    assert!(
        said.lines().any(
            |line| line.contains("it reads too little of what this node sends")
                && line.contains("(limit 16777216)")
        ),
        "cut off after {calls} calls, but not for its backlog:\n{said}"
    );
    still_serves(&plan).await;
}

#[actix_rt::test]
async fn a_peer_that_reads_nothing_for_the_failure_timeout_is_cut_off() {
    let (logs, _guard) = Logs::capture();
    let (la, lb) = (bind(), bind());
    // A failure timeout long enough for the rest of the burst below to be
    // written after the node's writes stop (an unoptimised build on a
    // busy machine is slow at it), and short enough for a quick test.
    let runtime = "[runtime]\nheartbeat_interval_ms = 200\nfailure_timeout_ms = 3000\nhandshake_timeout_ms = 1000\n";
    let plan = plan_with(addr(&la), addr(&lb), runtime);
    let a = start_node(&plan, "a", la).await;
    let (_reader, mut writer) = raw_client(&a, "deaf").await;

    // 24 MiB of replies, more than the sockets' buffers hold and well
    // under what may wait (256 MiB): the node's writes stop moving.
    let text = "x".repeat(64 * 1024);
    for call_id in 1..=384 {
        assert!(still_open(&mut writer, &echo_frame(call_id, &text)).await);
    }
    // Then small calls, so the peer is not silent, only deaf, until the
    // node gives up on it.
    let stuck = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_millis(50));
    let mut call_id = 1_000;
    loop {
        pace.tick().await;
        call_id += 1;
        if !still_open(&mut writer, &echo_frame(call_id, "x")).await {
            break;
        }
        assert!(stuck.elapsed() < Duration::from_secs(20), "never cut off");
    }
    // (The node counts from when its writes stopped, during the burst.)
    assert!(
        stuck.elapsed() >= Duration::from_millis(500),
        "{:?}",
        stuck.elapsed()
    );
    let said = logs.text();
    assert!(said.contains("it reads nothing this node sends"), "{said}");
    still_serves(&plan).await;
}

#[actix_rt::test]
async fn a_peer_that_reads_slowly_cannot_pile_replies_up() {
    let (logs, _guard) = Logs::capture();
    let (la, lb) = (bind(), bind());
    // The failure timeout is long and the frames are the default 4 MiB
    // (256 MiB may wait before the watcher looks twice): only the limits
    // of calls in flight stand between this peer and the node's memory.
    let runtime = format!(
        "[runtime]\nmax_in_flight_per_peer = {LIMIT}\nfailure_timeout_ms = 30000\nhandshake_timeout_ms = 1000\n"
    );
    let plan = plan_with(addr(&la), addr(&lb), &runtime);
    let a = start_node(&plan, "a", la).await;
    // It says it keeps to the node's limit; it reads one frame every
    // 10 ms, however long: always some progress.
    let (mut reader, mut writer) = raw_dial_saying(&a, "slow", Role::Client, LIMIT as u32).await;
    let reading = tokio::spawn(async move {
        while let Ok(Some(_)) = reader.next().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    // Calls of 64 KiB, their replies as big, sent as fast as the node
    // takes them: the node runs LIMIT of them and refuses the rest, all
    // their replies waiting for the slow reader, until more calls are
    // unanswered than the LIMIT it said it keeps to. Before, every call
    // ran and its reply waited: 2,000 of them are 125 MiB.
    let text = "x".repeat(64 * 1024);
    let mut calls = 0u64;
    while still_open(&mut writer, &echo_frame(calls + 1, &text)).await {
        calls += 1;
        assert!(
            calls < 2_000,
            "still connected after {calls} calls of 64 KiB: their replies pile up"
        );
    }
    let said = logs.text();
    assert!(
        said.contains("it sends calls faster than it reads their replies"),
        "{said}"
    );
    assert!(
        said.contains(
            "client 'slow' has 9 calls unanswered here, more than the 8 it may have in flight"
        ),
        "{said}"
    );
    reading.abort();
    still_serves(&plan).await;
}

#[actix_rt::test]
async fn a_caller_at_the_limit_that_reads_slowly_is_never_refused() {
    let cluster = limited_cluster().await;
    let toy = cluster
        .b
        .service::<Toy>()
        .unwrap()
        .with_timeout(Duration::from_secs(60));
    warm_up(&toy).await;
    // a's replies to b cross a slow link (64 KiB every 2 ms): they wait at
    // a, counted against b's calls in flight there, while b keeps its
    // LIMIT calls in flight.
    cluster
        .a
        .faults()
        .unwrap()
        .throttle_writes("b", 64 * 1024, Duration::from_millis(2));
    let text = "x".repeat(64 * 1024);
    let calls: Vec<_> = (0..20 * LIMIT)
        .map(|_| {
            let toy = toy.clone();
            let text = text.clone();
            tokio::spawn(async move {
                toy.call(Echo {
                    text,
                    local_only: None,
                })
                .await
            })
        })
        .collect();
    for call in calls {
        let reply = call.await.unwrap().unwrap().unwrap();
        assert_eq!(reply.text.len(), text.len());
    }
    assert_eq!(cluster.a.stats().refused_overloaded, 0);
    assert_eq!(cluster.b.connections_to("a"), 1, "cut off while reading");
}
