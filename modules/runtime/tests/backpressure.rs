//! Backpressure: at most `max_in_flight_per_peer` calls in flight to a
//! peer; more wait for room until their deadline, then fail as
//! overloaded; a caller that forgets its calls cannot pile work up on the
//! peer; a peer that ignores the limit is refused.

mod support;

use std::time::{Duration, Instant};

use runtime::transport::frame::{Frame, FrameBuf, FrameReader, ReplyStatus};
use runtime::transport::handshake::{self, Identity, Role};
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
    tokio::time::sleep(Duration::from_millis(100)).await;
    held(&cluster, LIMIT).await;
}

#[actix_rt::test]
async fn a_peer_that_ignores_the_limit_is_refused_as_overloaded() {
    let cluster = limited_cluster().await;
    let addr = cluster.a.local_addr().unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut reader = FrameReader::new(reader, 1 << 20);
    let me = Identity {
        cluster: "boutique".into(),
        node: "greedy".into(),
        role: Role::Client,
        incarnation: 7,
        fingerprint: catalogue().fingerprint().unwrap(),
        secret: std::sync::Arc::new(secret()),
    };
    handshake::dial(&mut reader, &mut writer, &me, Some("a"), addr)
        .await
        .unwrap();

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
