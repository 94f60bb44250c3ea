//! The runtime across nodes: calls, failures, handshake refusals and hostile
//! input, with toy services on two nodes in one test process.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime::codec;
use runtime::transport::frame::{Frame, FrameBuf, FrameReader, ReplyStatus};
use runtime::transport::handshake::{self, HandshakeError, Identity, Refusal, Role, Secret};
use runtime::{CallError, Empty, MethodId, Node, Rejection, Request, ServiceRef};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LONG: Duration = Duration::from_secs(30);

fn echo(text: &str) -> Echo {
    Echo {
        text: text.into(),
        local_only: Some("only in memory".into()),
    }
}

#[actix_rt::test]
async fn a_remote_call_returns_the_reply_and_domain_errors_intact() {
    let cluster = cluster().await;
    let client = client(&cluster.plan).await;
    let toy = client.service::<Toy>().unwrap();
    assert_eq!(
        toy.call(echo("hello")).await.unwrap(),
        Ok(EchoReply {
            text: "hello".into(),
            saw_local_only: false
        })
    );
    assert_eq!(
        toy.call(Fail {
            reason: "because".into()
        })
        .await
        .unwrap(),
        Err(ToyError::Failed {
            reason: "because".into()
        })
    );
}

#[actix_rt::test]
async fn module_to_module_calls_cross_both_ways_on_one_connection() {
    let cluster = cluster().await;
    let client = client(&cluster.plan).await;
    // relay (b) -> toy (a), and toy (a) -> other (b), at the same time.
    let relay = client.service::<RelayService>().unwrap();
    let toy = client.service::<Toy>().unwrap();
    let (relayed, asked) = tokio::join!(
        relay.call(Relay { text: "r".into() }),
        toy.call(AskOther { text: "o".into() })
    );
    assert_eq!(relayed.unwrap().unwrap().text, "r");
    assert_eq!(asked.unwrap().unwrap(), "pong: o");
    for _ in 0..10 {
        relay
            .call(Relay {
                text: "again".into(),
            })
            .await
            .unwrap()
            .unwrap();
        toy.call(AskOther {
            text: "again".into(),
        })
        .await
        .unwrap()
        .unwrap();
    }
    assert_eq!(cluster.a.connections_to("b"), 1);
    assert_eq!(cluster.b.connections_to("a"), 1);
}

#[actix_rt::test]
async fn replies_come_back_out_of_order() {
    let cluster = cluster().await;
    let client = client(&cluster.plan).await;
    let toy = client.service::<Toy>().unwrap().with_timeout(LONG);
    let held = hold(&toy, 1).await;
    // Sent after the hold, answered before it: the connection is not blocked.
    assert_eq!(
        toy.call(echo("first")).await.unwrap().unwrap().text,
        "first"
    );
    assert!(!held.is_finished());
    assert_eq!(toy.call(Release { key: 1 }).await.unwrap(), Ok(Empty {}));
    assert_eq!(held.await.unwrap(), Ok(Ok(Empty {})));
}

#[actix_rt::test]
async fn many_calls_in_flight_each_get_their_own_reply() {
    let cluster = cluster().await;
    let client = client(&cluster.plan).await;
    let toy = client.service::<Toy>().unwrap();
    let calls: Vec<_> = (0..500)
        .map(|i| {
            let toy = toy.clone();
            tokio::spawn(async move { (i, toy.call(echo(&format!("call {i}"))).await) })
        })
        .collect();
    for call in calls {
        let (i, reply) = call.await.unwrap();
        assert_eq!(reply.unwrap().unwrap().text, format!("call {i}"));
    }
}

#[actix_rt::test]
async fn a_call_past_its_deadline_is_timed_out() {
    let cluster = cluster().await;
    let client = client(&cluster.plan).await;
    let toy = client
        .service::<Toy>()
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let error = toy.call(Hold { key: 7 }).await.unwrap_err();
    assert!(
        matches!(error, CallError::TimedOut { after_ms, .. } if after_ms <= 200),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[actix_rt::test]
async fn a_local_call_to_a_handler_that_never_answers_times_out() {
    let node = one_node().await;
    let toy = node
        .service::<Toy>()
        .unwrap()
        .with_timeout(Duration::from_millis(100));
    let started = Instant::now();
    let error = toy.call(Hold { key: 1 }).await.unwrap_err();
    assert!(
        matches!(error, CallError::TimedOut { after_ms: 100, .. }),
        "{error:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(90),
        "gave up early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "gave up late: {waited:?}");
}

#[actix_rt::test]
async fn a_lost_connection_fails_calls_in_flight_at_once() {
    let cluster = cluster().await;
    let client = client(&cluster.plan).await;
    let toy = client.service::<Toy>().unwrap().with_timeout(LONG);
    let held = hold(&toy, 1).await;
    let started = Instant::now();
    let Cluster { a, .. } = cluster;
    a.shutdown();
    let error = held.await.unwrap().unwrap_err();
    assert!(
        matches!(error, CallError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // And new calls are not delivered, at once.
    let started = Instant::now();
    let error = toy.call(echo("after")).await.unwrap_err();
    assert!(matches!(error, CallError::NotDelivered { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[actix_rt::test]
async fn a_cut_connection_tells_calls_it_began_to_write_from_those_it_did_not() {
    let cluster = cluster().await;
    let b = &cluster.b;
    let toy = b.service::<Toy>().unwrap().with_timeout(LONG);
    warm_up(&toy).await;
    // A link that takes 1 KiB a second: of three calls of 4 KiB queued
    // at once, and written as one batch, the first is cut in the middle,
    // the other two never leave.
    let faults = b.faults().unwrap();
    faults.throttle_writes("a", 1024, Duration::from_secs(1));
    let before = sent_to(b, "a");
    let text = "x".repeat(4096);
    let calls = futures_util::future::join3(
        toy.call(echo(&text)),
        toy.call(echo(&text)),
        toy.call(echo(&text)),
    );
    let cut = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while sent_to(b, "a") == before {
            assert!(
                Instant::now() < deadline,
                "nothing was written:\n{}",
                b.metrics_text()
            );
            tokio::task::yield_now().await;
        }
        faults.cut("a");
    };
    let ((first, second, third), ()) = futures_util::future::join(calls, cut).await;
    let first = first.unwrap_err();
    assert!(
        matches!(first, CallError::OutcomeUnknown { .. }),
        "{first:?}"
    );
    for error in [second.unwrap_err(), third.unwrap_err()] {
        assert!(matches!(error, CallError::NotDelivered { .. }), "{error:?}");
    }
}

/// The bytes `node` has written to node `peer`, by its metrics.
fn sent_to(node: &Node, peer: &str) -> u64 {
    let label = format!("peer=\"{peer}\"");
    let text = node.metrics_text();
    let line = text
        .lines()
        .find(|line| line.starts_with("boutique_peer_sent_bytes_total{") && line.contains(&label));
    line.and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no bytes sent to {peer} in:\n{text}"))
}

#[actix_rt::test]
async fn a_module_tells_a_client_from_a_node_and_from_itself() {
    let cluster = cluster().await;
    let client = client(&cluster.plan).await;
    let caller = |node: &Node| node.service::<Toy>().unwrap().with_timeout(LONG);
    // Toy runs on a.
    let seen = caller(&cluster.a).call(Caller {}).await.unwrap().unwrap();
    assert_eq!(seen, "local");
    let seen = caller(&cluster.b).call(Caller {}).await.unwrap().unwrap();
    assert_eq!(seen, "node b");
    let seen = caller(&client).call(Caller {}).await.unwrap().unwrap();
    assert_eq!(seen, format!("client {}", client.name()));
}

/// A loopback port that is bound but not listening: connections to it are
/// refused for as long as the socket lives.
fn not_listening() -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket
}

#[actix_rt::test]
async fn a_node_that_is_down_fails_fast_as_not_delivered() {
    let (a, b) = (not_listening(), not_listening());
    let plan = plan(a.local_addr().unwrap(), b.local_addr().unwrap());
    let client = client(&plan).await;
    let toy = client.service::<Toy>().unwrap().with_timeout(LONG);
    for _ in 0..3 {
        let started = Instant::now();
        let error = toy.call(echo("anyone?")).await.unwrap_err();
        assert!(matches!(error, CallError::NotDelivered { .. }), "{error:?}");
        assert!(error.to_string().contains("node 'a'"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }
}

#[actix_rt::test]
async fn nodes_may_start_in_any_order() {
    // b starts first; a's port is reserved but not listening yet.
    let a_socket = not_listening();
    let lb = bind();
    let plan = plan_with(a_socket.local_addr().unwrap(), addr(&lb), TEST_RUNTIME);
    let b = start_node(&plan, "b", lb).await;
    let client = client(&plan).await;
    let relay = client.service::<RelayService>().unwrap();
    // relay (b) cannot reach toy (a): a typed, fast failure inside its domain error.
    let started = Instant::now();
    match relay
        .call(Relay {
            text: "early".into(),
        })
        .await
        .unwrap()
    {
        Err(ToyError::Other(CallError::NotDelivered { .. })) => {}
        other => panic!("expected not delivered, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    // a starts; b reconnects on its own, with backoff.
    let la = a_socket.listen(128).unwrap().into_std().unwrap();
    let _a = start_node(&plan, "a", la).await;
    assert!(
        b.wait_connected("a", Duration::from_secs(10)).await,
        "b never reconnected to a"
    );
    assert_eq!(
        relay
            .call(Relay {
                text: "late".into()
            })
            .await
            .unwrap()
            .unwrap()
            .text,
        "late"
    );
}

#[actix_rt::test]
async fn the_serialized_route_goes_through_the_codec() {
    // One node running everything, once plain, once serialized.
    for (serialize, saw_local_only) in [(false, true), (true, false)] {
        let text = format!(
            "[runtime]\nserialize_local_calls = {serialize}\n[nodes.main]\nmodules = [\"*\"]\n"
        );
        let plan =
            runtime::Plan::new(runtime::config::parse(&text).unwrap(), &catalogue()).unwrap();
        let node = Node::start(&plan, "main", &catalogue()).await.unwrap();
        let toy = node.service::<Toy>().unwrap();
        let reply = toy.call(echo("x")).await.unwrap().unwrap();
        assert_eq!(
            reply.saw_local_only, saw_local_only,
            "serialize_local_calls = {serialize}"
        );
        assert_eq!(
            toy.call(Fail { reason: "r".into() }).await.unwrap(),
            Err(ToyError::Failed { reason: "r".into() })
        );
        // Calls run in the order they are made, whichever is awaited
        // first (a serialized call was queued when first polled).
        let first = toy.call(Count {});
        let second = toy.call(Count {});
        let (second, first) = futures_util::future::join(second, first).await;
        assert_eq!(
            (first.unwrap().unwrap(), second.unwrap().unwrap()),
            (1, 2),
            "serialize_local_calls = {serialize}"
        );
    }
}

/// The serialized route has the frame limit calls between nodes have: a
/// message too large for a frame is not delivered there either (it went
/// through, and failed only once split).
#[actix_rt::test]
async fn the_serialized_route_keeps_to_the_frame_limit() {
    let text = "[runtime]\nserialize_local_calls = true\nmax_frame_bytes = 4096\n\
                [nodes.main]\nmodules = [\"*\"]\n";
    let plan = runtime::Plan::new(runtime::config::parse(text).unwrap(), &catalogue()).unwrap();
    let node = Node::start(&plan, "main", &catalogue()).await.unwrap();
    let toy = node.service::<Toy>().unwrap();
    let error = toy.call(echo(&"x".repeat(5000))).await.unwrap_err();
    assert!(
        matches!(&error, CallError::NotDelivered { reason, .. } if reason.contains("too large to send")),
        "{error:?}"
    );
    assert_eq!(toy.call(echo("fits")).await.unwrap().unwrap().text, "fits");
}

// --- Handshake refusals -------------------------------------------------

fn identity(cluster: &str, secret: Secret) -> Identity {
    Identity {
        cluster: cluster.into(),
        node: "probe".into(),
        role: Role::Client,
        incarnation: 42,
        secret: Arc::new(secret),
        ..identity_of_a()
    }
}

async fn dial(addr: std::net::SocketAddr, me: &Identity) -> Result<(), HandshakeError> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut reader = FrameReader::new(reader, handshake::HANDSHAKE_MAX_FRAME);
    handshake::dial(&mut reader, &mut writer, me, Some("a"), addr)
        .await
        .map(drop)
}

#[actix_rt::test]
async fn a_wrong_secret_is_refused_and_both_sides_say_so() {
    let (logs, _guard) = Logs::capture();
    let cluster = cluster().await;
    let a = cluster.a.local_addr().unwrap();
    let wrong = Secret::from_bytes("test", b"not the secret the nodes share".to_vec()).unwrap();
    let error = dial(a, &identity("boutique", wrong)).await.unwrap_err();
    // The dialer proves first: the node refuses it before proving anything.
    assert!(
        matches!(error, HandshakeError::RefusedByPeer { refusal: Refusal::Authentication { ref side }, .. } if side == "dialer"),
        "{error:?}"
    );
    // The dialer logs the refusal it received, the node the one it made.
    wait_for_log(&logs, "the peer refused the handshake").await;
    let text = logs.text();
    let line_with = |parts: &[&str]| text.lines().any(|l| parts.iter().all(|p| l.contains(p)));
    assert!(
        line_with(&[
            "node=probe",
            "the peer refused the handshake",
            "dialer could not prove"
        ]),
        "{text}"
    );
    assert!(
        line_with(&["node=a", "refused the handshake", "dialer could not prove"]),
        "{text}"
    );

    // Through the public API, a client with the wrong secret gets not delivered.
    let wrong = Secret::from_bytes("test", b"not the secret the nodes share".to_vec()).unwrap();
    let client = Node::builder(&cluster.plan, &catalogue())
        .secret(wrong)
        .client()
        .await
        .unwrap();
    let error = echo_error(&client).await;
    assert!(matches!(error, CallError::NotDelivered { .. }), "{error:?}");
    assert!(
        error.to_string().contains("authentication failed")
            && error.to_string().contains("trying again will not help"),
        "{error}"
    );
}

#[actix_rt::test]
async fn another_cluster_is_refused_and_both_sides_say_so() {
    let (logs, _guard) = Logs::capture();
    let cluster = cluster().await;
    let error = dial(
        cluster.a.local_addr().unwrap(),
        &identity("elsewhere", secret()),
    )
    .await
    .unwrap_err();
    let expected = Refusal::Cluster {
        dialer: "elsewhere".into(),
        acceptor: "boutique".into(),
    };
    assert!(
        matches!(&error, HandshakeError::RefusedByPeer { refusal, .. } if *refusal == expected),
        "{error:?}"
    );
    // Node a logs the refusal it made, the dialer the one it received,
    // each naming both clusters.
    wait_for_log(&logs, "the peer refused the handshake").await;
    let text = logs.text();
    let line_with = |parts: &[&str]| text.lines().any(|l| parts.iter().all(|p| l.contains(p)));
    assert!(
        line_with(&[
            "node=a",
            " refused the handshake",
            "'elsewhere'",
            "'boutique'"
        ]),
        "{text}"
    );
    assert!(
        line_with(&[
            "node=probe",
            "the peer refused the handshake",
            "'elsewhere'",
            "'boutique'"
        ]),
        "{text}"
    );
}

#[actix_rt::test]
async fn another_api_fingerprint_is_refused_and_both_sides_say_so() {
    let (logs, _guard) = Logs::capture();
    let cluster = cluster().await;
    let mut me = identity("boutique", secret());
    me.fingerprint = runtime::fingerprint::Fingerprint([7; 32]);
    let error = dial(cluster.a.local_addr().unwrap(), &me)
        .await
        .unwrap_err();
    assert!(
        matches!(error.refusal(), Some(Refusal::Fingerprint { dialer, .. }) if dialer.0 == [7; 32]),
        "{error:?}"
    );
    // Each side logs it, with both fingerprints and what to do.
    let theirs = me.fingerprint.to_string();
    let ours = catalogue().fingerprint().unwrap().to_string();
    wait_for_log(&logs, "the peer refused the handshake").await;
    let text = logs.text();
    let line_with = |parts: &[&str]| text.lines().any(|l| parts.iter().all(|p| l.contains(p)));
    for node in ["node=a", "node=probe"] {
        assert!(
            line_with(&[
                node,
                "refused the handshake",
                "API fingerprints differ",
                &theirs,
                &ours,
                "deploy the same binary everywhere"
            ]),
            "{node}: {text}"
        );
    }

    // A build with other services has another fingerprint: its calls are refused.
    let smaller = runtime::Catalogue::new()
        .with::<ToyModule>()
        .with::<OtherModule>();
    assert_ne!(
        smaller.fingerprint().unwrap(),
        catalogue().fingerprint().unwrap()
    );
    let text = format!(
        "[cluster]\nsecret_env = \"X\"\n[nodes.a]\nlisten = \"{}\"\nmodules = [\"toy\"]\n\
         [nodes.b]\nlisten = \"{}\"\nmodules = [\"other\"]\n",
        cluster.a.local_addr().unwrap(),
        cluster.b.local_addr().unwrap()
    );
    let plan = runtime::Plan::new(runtime::config::parse(&text).unwrap(), &smaller).unwrap();
    let client = Node::builder(&plan, &smaller)
        .secret(secret())
        .client()
        .await
        .unwrap();
    let error = echo_error(&client).await;
    assert!(
        error.to_string().contains("API fingerprints differ"),
        "{error}"
    );
}

#[actix_rt::test]
async fn another_protocol_version_is_refused_and_the_node_says_so() {
    let (logs, _guard) = Logs::capture();
    let cluster = cluster().await;
    let mut stream = TcpStream::connect(cluster.a.local_addr().unwrap())
        .await
        .unwrap();
    let mut hello = FrameBuf::handshake(runtime::transport::frame::Kind::Hello);
    hello.buf().extend_from_slice(&handshake::MAGIC);
    hello.buf().extend_from_slice(&99u32.to_le_bytes());
    stream
        .write_all(&hello.finish(1024).unwrap())
        .await
        .unwrap();
    let mut reader = FrameReader::new(stream, 1024);
    let body = reader.next().await.unwrap().unwrap();
    match Frame::parse(body).unwrap() {
        Frame::Handshake { payload, .. } => {
            let refusal: Refusal = codec::decode(&payload).unwrap();
            assert_eq!(
                refusal,
                Refusal::Version {
                    dialer: 99,
                    acceptor: handshake::PROTOCOL_VERSION
                }
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The dialer here is bytes, not a node: the node's side is logged.
    let said = format!(
        "protocol versions differ: the dialer speaks 99, the acceptor {}",
        handshake::PROTOCOL_VERSION
    );
    wait_for_log(&logs, &said).await;
    let text = logs.text();
    assert!(
        text.lines().any(|l| l.contains("node=a")
            && l.contains("refused the handshake")
            && l.contains(&said)),
        "{text}"
    );
}

// --- Hostile input -------------------------------------------------------

/// True once the node has closed the connection (EOF or reset).
async fn closed_by_node(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or(false)
}

async fn still_serves(plan: &runtime::Plan) {
    let client = client(plan).await;
    let reply = client
        .service::<Toy>()
        .unwrap()
        .call(echo("still here"))
        .await;
    assert_eq!(reply.unwrap().unwrap().text, "still here");
}

#[actix_rt::test]
async fn random_bytes_close_that_connection_only() {
    let cluster = cluster().await;
    let addr = cluster.a.local_addr().unwrap();
    for seed in 0..16u64 {
        let len = 1 + (seed as usize * 97) % 700;
        let bytes: Vec<u8> = (0..len)
            .map(|i| (i as u64 * 31 + seed * 17 + 7) as u8 ^ (seed as u8))
            .collect();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        assert!(
            closed_by_node(&mut stream).await,
            "seed {seed}: connection left open"
        );
    }
    for _ in 0..16 {
        let bytes: Vec<u8> = (0..256).map(|_| rand::random()).collect();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        assert!(
            closed_by_node(&mut stream).await,
            "random bytes: connection left open"
        );
    }
    still_serves(&cluster.plan).await;
}

#[actix_rt::test]
async fn connections_past_the_handshake_limit_from_one_address_are_turned_away_and_others_get_in() {
    // A long handshake timeout: the idle connections below stay in their
    // handshake for the whole test (a connection let in would be closed
    // only after a minute, one turned away at once).
    let (la, lb) = (bind(), bind());
    let plan = plan_with(
        addr(&la),
        addr(&lb),
        "[runtime]\nhandshake_timeout_ms = 60000\n",
    );
    let a = start_node(&plan, "a", la).await;
    let target = a.local_addr().unwrap();
    // As many as one address may have in their handshake at once (32, in
    // `transport::admission`), saying nothing.
    let mut idle = Vec::new();
    for _ in 0..32 {
        idle.push(TcpStream::connect(target).await.unwrap());
    }
    let mut one_too_many = TcpStream::connect(target).await.unwrap();
    assert!(
        closed_by_node(&mut one_too_many).await,
        "the 33rd connection from one address was let in"
    );
    assert_eq!(a.stats().connections_turned_away, 1);
    assert!(
        a.metrics_text()
            .contains("boutique_connections_turned_away_total{node=\"a\"} 1"),
        "{}",
        a.metrics_text()
    );

    // Another address still gets in, and through the handshake.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let (reader, mut writer) = socket.connect(target).await.unwrap().into_split();
    let mut reader = FrameReader::new(reader, handshake::HANDSHAKE_MAX_FRAME);
    let me = identity("boutique", secret());
    handshake::dial(&mut reader, &mut writer, &me, Some("a"), target)
        .await
        .unwrap();
    assert_eq!(a.stats().connections_turned_away, 1);
    drop(idle);
}

#[actix_rt::test]
async fn a_stranger_that_loops_on_refused_handshakes_does_not_fill_the_log() {
    let (logs, _guard) = Logs::capture();
    let cluster = cluster().await;
    let a = cluster.a.local_addr().unwrap();
    for _ in 0..100 {
        let error = dial(a, &identity("other", secret())).await.unwrap_err();
        assert!(
            matches!(error, HandshakeError::RefusedByPeer { .. }),
            "{error:?}"
        );
    }
    // The acceptor's lines (the dialer here says "the peer refused"): 16
    // a second at most, so a few seconds' worth of them; each said before.
    let text = logs.text();
    let said = text
        .lines()
        .filter(|line| line.contains("refused the handshake") && !line.contains("the peer refused"))
        .count();
    assert!((1..=64).contains(&said), "{said} lines:\n{text}");
}

#[actix_rt::test]
async fn names_in_a_hello_are_checked_before_they_are_logged_or_told_back() {
    let (logs, _guard) = Logs::capture();
    let cluster = cluster().await;
    let a = cluster.a.local_addr().unwrap();
    // A node name that is none: the connection is closed, and the log
    // shows the name escaped (no forged line) and cut short.
    for (name, shown) in [
        ("probe\nforged line", "probe\\nforged line"),
        (&*"x".repeat(1000), &*format!("{}…", "x".repeat(64))),
    ] {
        let me = Identity {
            node: name.into(),
            ..identity("boutique", secret())
        };
        let error = dial(a, &me).await.unwrap_err();
        assert!(matches!(error, HandshakeError::Failed { .. }), "{error:?}");
        wait_for_log(&logs, shown).await;
        let text = logs.text();
        assert!(text.contains("which is none"), "{text}");
        assert!(!text.contains(name), "{text}");
    }
    // Another cluster's name is told back (and logged) escaped too.
    let error = dial(a, &identity("other\ncluster", secret()))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, HandshakeError::RefusedByPeer { refusal: Refusal::Cluster { dialer, .. }, .. } if dialer == "other\\ncluster"),
        "{error:?}"
    );
    assert!(!logs.text().contains("other\ncluster"));

    // A stranger that sends a refusal instead of its hello cannot write
    // lines of its own into the log either: the refusal is named by its
    // kind and size, not taken for the peer's word.
    let mut stream = TcpStream::connect(a).await.unwrap();
    let forged = Refusal::UnknownNode {
        node: "x'\n2026-11-27T00:00:00Z  INFO admitted node 'pay'".to_owned(),
    };
    let frame = FrameBuf::handshake(runtime::transport::frame::Kind::Refused)
        .encode(&forged)
        .unwrap()
        .finish(1 << 20)
        .unwrap();
    stream.write_all(&frame).await.unwrap();
    wait_for_log(&logs, "expected Hello, got Refused (").await;
    assert!(
        !logs.text().contains("admitted node 'pay'"),
        "{}",
        logs.text()
    );

    // A stranger whose first frame is a call of 16,000 bytes: the log
    // names it by kind and size, not with its bytes.
    let mut stream = TcpStream::connect(a).await.unwrap();
    let frame = FrameBuf::request(1, 1, 0)
        .encode(&"y".repeat(16_000))
        .unwrap()
        .finish(1 << 20)
        .unwrap();
    stream.write_all(&frame).await.unwrap();
    wait_for_log(&logs, "expected Hello, got a call (").await;
    assert!(
        !logs.text().contains(&"y".repeat(100)),
        "the call's bytes were logged"
    );
    still_serves(&cluster.plan).await;
}

#[actix_rt::test]
async fn a_dialer_that_says_no_or_too_many_calls_in_flight_is_refused() {
    let (logs, _guard) = Logs::capture();
    let cluster = cluster().await;
    let a = cluster.a.local_addr().unwrap();
    // The node cuts off a peer with more calls unanswered than it says it
    // may have in flight: none would make no sense, and too many would
    // let it pile up refusals without end.
    let most = u32::try_from(runtime::config::MAX_IN_FLIGHT_PER_PEER).unwrap();
    for said in [0, most + 1, u32::MAX] {
        let me = Identity {
            max_in_flight: said,
            ..identity("boutique", secret())
        };
        let error = dial(a, &me).await.unwrap_err();
        assert!(
            matches!(error, HandshakeError::RefusedByPeer { refusal: Refusal::InFlight { said: s, .. }, .. } if s == said),
            "{error:?}"
        );
        // Both sides say why.
        let why = format!(
            "the dialer says it may have {said} calls in flight, out of range (1 to {most})"
        );
        assert!(error.to_string().contains(&why), "{error}");
        wait_for_log(&logs, &why).await;
    }
    // The bounds themselves are fine.
    for said in [1, most] {
        let me = Identity {
            max_in_flight: said,
            ..identity("boutique", secret())
        };
        dial(a, &me).await.unwrap();
    }
    still_serves(&cluster.plan).await;
}

#[actix_rt::test]
async fn a_dialer_that_says_a_frame_limit_no_config_allows_is_refused() {
    let (logs, _guard) = Logs::capture();
    let cluster = cluster().await;
    let a = cluster.a.local_addr().unwrap();
    let most = u32::try_from(runtime::codec::MAX_DECODE_BYTES).unwrap();
    for said in [0, 4095, most + 1] {
        let me = Identity {
            max_frame: said,
            ..identity("boutique", secret())
        };
        let error = dial(a, &me).await.unwrap_err();
        assert!(
            matches!(error, HandshakeError::RefusedByPeer { refusal: Refusal::FrameLimit { said: s, .. }, .. } if s == said),
            "{error:?}"
        );
        let why = format!(
            "the dialer says it reads frames of up to {said} bytes, out of range (4096 to {most})"
        );
        assert!(error.to_string().contains(&why), "{error}");
        wait_for_log(&logs, &why).await;
    }
    for said in [4096, most] {
        let me = Identity {
            max_frame: said,
            ..identity("boutique", secret())
        };
        dial(a, &me).await.unwrap();
    }
    still_serves(&cluster.plan).await;
}

/// Heartbeat settings are exchanged: a dialer whose heartbeats come too
/// seldom for the node's failure timeout (or whose failure timeout is too
/// short for the node's heartbeats) is refused, both sides saying both
/// settings and what to do. Before, each node checked its own only, and
/// one declared the other dead whenever it was idle.
#[actix_rt::test]
async fn heartbeat_settings_that_do_not_fit_are_refused_and_both_sides_say_so() {
    use runtime::transport::handshake::Heartbeat;
    let (logs, _guard) = Logs::capture();
    let cluster = cluster().await;
    let a = cluster.a.local_addr().unwrap();
    // The cluster's nodes: every 500 ms, silent peers given 2,500 ms.
    for (interval_ms, failure_timeout_ms) in [(3_000, 10_000), (100, 800)] {
        let heartbeat = Heartbeat {
            interval_ms,
            failure_timeout_ms,
        };
        let me = Identity {
            heartbeat,
            ..identity("boutique", secret())
        };
        let error = dial(a, &me).await.unwrap_err();
        assert!(
            matches!(error.refusal(), Some(Refusal::Heartbeat { dialer, .. }) if *dialer == heartbeat),
            "{error:?}"
        );
        let why = format!(
            "the dialer sends one every {interval_ms} ms and gives a silent peer {failure_timeout_ms} ms, the acceptor every 500 ms and 2500 ms"
        );
        assert!(error.to_string().contains(&why), "{error}");
        wait_for_log(&logs, &why).await;
        let text = logs.text();
        for node in ["node=a", "node=probe"] {
            assert!(
                text.lines().any(|l| l.contains(node)
                    && l.contains(&why)
                    && l.contains("give every node the same [runtime] heartbeat_interval_ms")),
                "{node}: {text}"
            );
        }
    }
    // Settings that differ but fit are taken.
    let me = Identity {
        heartbeat: Heartbeat {
            interval_ms: 1_000,
            failure_timeout_ms: 5_000,
        },
        ..identity("boutique", secret())
    };
    dial(a, &me).await.unwrap();
    still_serves(&cluster.plan).await;
}

#[actix_rt::test]
async fn a_4_gib_length_prefix_closes_the_connection() {
    let cluster = cluster().await;
    let mut stream = TcpStream::connect(cluster.a.local_addr().unwrap())
        .await
        .unwrap();
    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert!(closed_by_node(&mut stream).await);
    still_serves(&cluster.plan).await;
}

/// An authenticated raw connection to node `a`, for sending frames by hand.
async fn authenticated(
    cluster: &Cluster,
) -> (
    FrameReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let addr = cluster.a.local_addr().unwrap();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut reader = FrameReader::new(reader, 1 << 20);
    handshake::dial(
        &mut reader,
        &mut writer,
        &identity("boutique", secret()),
        Some("a"),
        addr,
    )
    .await
    .unwrap();
    (reader, writer)
}

async fn rejection(
    reader: &mut FrameReader<tokio::net::tcp::OwnedReadHalf>,
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    call_id: u64,
    method: MethodId,
    payload: &[u8],
) -> Rejection {
    let mut frame = FrameBuf::request(call_id, method.0, 5_000_000);
    frame.buf().extend_from_slice(payload);
    writer
        .write_all(&frame.finish(1 << 20).unwrap())
        .await
        .unwrap();
    match next_frame(reader).await {
        Frame::Reply {
            call_id: id,
            status: ReplyStatus::Rejected,
            payload,
        } => {
            assert_eq!(id, call_id);
            codec::decode(&payload).unwrap()
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[actix_rt::test]
async fn bad_calls_are_rejected_and_the_connection_keeps_serving() {
    let cluster = cluster().await;
    let (mut reader, mut writer) = authenticated(&cluster).await;

    let unknown = rejection(&mut reader, &mut writer, 1, MethodId(0xdead_beef), b"").await;
    assert_eq!(
        unknown,
        Rejection::UnknownMethod {
            method: 0xdead_beef
        }
    );

    let not_here = rejection(
        &mut reader,
        &mut writer,
        2,
        <Ping as Request>::METHOD,
        &codec::encode(&Ping { text: "x".into() }).unwrap(),
    )
    .await;
    assert_eq!(
        not_here,
        Rejection::NotHosted {
            service: "other".into(),
            node: "a".into()
        }
    );

    let garbage = rejection(
        &mut reader,
        &mut writer,
        3,
        <Echo as Request>::METHOD,
        &[0xff; 9],
    )
    .await;
    assert!(
        matches!(garbage, Rejection::Undecodable { ref message, .. } if message == "Echo"),
        "{garbage:?}"
    );

    // The same connection still runs a good call.
    let mut frame = FrameBuf::request(4, <Echo as Request>::METHOD.0, 5_000_000);
    codec::encode_into(&echo("good"), frame.buf()).unwrap();
    writer
        .write_all(&frame.finish(1 << 20).unwrap())
        .await
        .unwrap();
    match next_frame(&mut reader).await {
        Frame::Reply {
            call_id: 4,
            status: ReplyStatus::Outcome,
            payload,
        } => {
            let outcome: Result<EchoReply, ToyError> = codec::decode(&payload).unwrap();
            assert_eq!(outcome.unwrap().text, "good");
        }
        other => panic!("expected the echo, got {other:?}"),
    }
}

#[actix_rt::test]
async fn a_flood_of_bad_calls_is_logged_once_a_second_not_once_a_call() {
    let (logs, _guard) = Logs::capture();
    let cluster = cluster().await;
    let (mut reader, mut writer) = authenticated(&cluster).await;
    let started = Instant::now();
    const CALLS: u64 = 200;
    let mut frames = Vec::new();
    for call_id in 1..=CALLS {
        let frame = FrameBuf::request(call_id, 0xdead_beef, 5_000_000);
        frames.extend_from_slice(&frame.finish(1 << 20).unwrap());
    }
    writer.write_all(&frames).await.unwrap();
    for _ in 1..=CALLS {
        // Every call is still answered.
        assert!(matches!(
            next_frame(&mut reader).await,
            Frame::Reply {
                status: ReplyStatus::Rejected,
                ..
            }
        ));
    }
    assert_eq!(cluster.a.stats().rejected, CALLS, "each is counted");
    let lines = logs.text().matches("call rejected").count();
    let most = 1 + started.elapsed().as_secs() as usize;
    assert!(
        (1..=most).contains(&lines),
        "{lines} lines for {CALLS} rejected calls, in {:?}:\n{}",
        started.elapsed(),
        logs.text()
    );
    still_serves(&cluster.plan).await;
}

#[actix_rt::test]
async fn an_oversized_or_misplaced_frame_after_the_handshake_closes_that_connection_only() {
    let cluster = cluster().await;
    let (reader, mut writer) = authenticated(&cluster).await;
    // Over the node's frame limit (4 MiB by default).
    writer
        .write_all(&(64u32 << 20).to_be_bytes())
        .await
        .unwrap();
    let mut stream = writer.reunite(reader.into_inner()).unwrap();
    assert!(closed_by_node(&mut stream).await);

    let (reader, mut writer) = authenticated(&cluster).await;
    writer
        .write_all(&handshake::welcome_frame([0; 32]))
        .await
        .unwrap();
    let mut stream = writer.reunite(reader.into_inner()).unwrap();
    assert!(closed_by_node(&mut stream).await);

    still_serves(&cluster.plan).await;
}

/// Checked when it compiles: a ref may be cloned, and sent to and shared
/// between threads.
#[test]
fn refs_are_clone_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<ServiceRef<Toy>>();
}

/// Waits until `needle` appears in the captured logs (the other side of a
/// refusal logs a moment after the refused side returns).
#[test]
fn a_client_works_from_a_multi_threaded_tokio_runtime() {
    // The nodes run in an actix system on their own thread ...
    let (la, lb) = (bind(), bind());
    let plan = plan_with(addr(&la), addr(&lb), TEST_RUNTIME);
    let server_plan = plan.clone();
    let (ready, is_ready) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let servers = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let _a = start_node(&server_plan, "a", la).await;
            let _b = start_node(&server_plan, "b", lb).await;
            ready.send(()).unwrap();
            let _ = stopped.await;
        });
    });
    is_ready.recv().unwrap();
    // ... and the client on a plain multi-threaded tokio runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = client(&plan).await;
        let toy = client.service::<Toy>().unwrap();
        let calls: Vec<_> = (0..50)
            .map(|i| {
                let toy = toy.clone();
                tokio::spawn(async move { toy.call(echo(&format!("{i}"))).await })
            })
            .collect();
        for (i, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap().unwrap().unwrap().text, i.to_string());
        }
        // Deadlines hold here too.
        let error = toy
            .with_timeout(Duration::from_millis(100))
            .call(Hold { key: 9 })
            .await
            .unwrap_err();
        assert!(matches!(error, CallError::TimedOut { .. }), "{error:?}");
    });
    let _ = stop.send(());
    servers.join().unwrap();
}

#[actix_rt::test]
async fn a_node_is_dialled_by_host_name_when_its_address_is_one() {
    let (la, lb) = (bind(), bind());
    let (a, b) = (addr(&la), addr(&lb));
    // Node a listens on an IP address; the others dial it by name, looked
    // up when they dial (as a Kubernetes Service would be).
    let text = format!(
        "[cluster]\nsecret_env = \"TOY_SECRET_UNUSED\"\n\
         [nodes.a]\nlisten = \"{a}\"\naddress = \"localhost:{}\"\nmodules = [\"toy\"]\n\
         [nodes.b]\nlisten = \"{b}\"\nmodules = [\"other\", \"relay\"]\n",
        a.port()
    );
    let plan = runtime::Plan::new(runtime::config::parse(&text).unwrap(), &catalogue()).unwrap();
    let _a = start_node(&plan, "a", la).await;
    let _b = start_node(&plan, "b", lb).await;
    let client = client(&plan).await;
    // The client dials a by name; relay on b dials a by name too.
    let toy = client.service::<Toy>().unwrap();
    assert_eq!(
        toy.call(echo("by name")).await.unwrap().unwrap().text,
        "by name"
    );
    let relay = client.service::<RelayService>().unwrap();
    assert_eq!(
        relay
            .call(Relay {
                text: "via b".into()
            })
            .await
            .unwrap()
            .unwrap()
            .text,
        "via b"
    );
    assert_eq!(
        format!("{:?}", toy.location()),
        "Remote { node: \"a\" }",
        "a remote ref"
    );
}

#[actix_rt::test]
async fn a_connection_outlives_the_thread_whose_call_opened_it() {
    let cluster = cluster().await;
    let toy = cluster
        .b
        .service::<Toy>()
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    // The first call, which dials a, is made on another arbiter's thread
    // (as an HTTP worker's would be); then that thread stops.
    let arbiter = actix_rt::Arbiter::new();
    let (answered, answer) = tokio::sync::oneshot::channel();
    let first = toy.clone();
    assert!(arbiter.spawn(async move {
        let _ = answered.send(
            first
                .call(Echo {
                    text: "first".into(),
                    local_only: None,
                })
                .await,
        );
    }));
    let first = answer.await.unwrap();
    assert!(matches!(first, Ok(Ok(_))), "{first:?}");
    arbiter.stop();
    arbiter.join().unwrap();

    // The connection is still served: a call from here is answered at once,
    // not left in an outbox nobody writes until its deadline.
    let started = Instant::now();
    let again = toy
        .call(Echo {
            text: "again".into(),
            local_only: None,
        })
        .await;
    assert!(matches!(again, Ok(Ok(_))), "{again:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// Nodes with different frame limits: each sends the other no frame over
/// the smaller limit (told in the handshake), so a call too large for the
/// peer fails alone, not delivered, and the connection stays up under the
/// calls in flight on it. (Sent, it closed the connection: every call on
/// it failed, and the next such call did it again.)
#[actix_rt::test]
async fn a_call_too_large_for_the_peers_frame_limit_fails_alone() {
    let (la, lb) = (bind(), bind());
    let small = plan_with(
        addr(&la),
        addr(&lb),
        "[runtime]\nhandshake_timeout_ms = 1000\nmax_frame_bytes = 65536\n",
    );
    let large = plan_with(addr(&la), addr(&lb), TEST_RUNTIME);
    let a = start_node(&small, "a", la).await;
    let b = start_node(&large, "b", lb).await;
    let toy = b.service::<Toy>().unwrap();
    let held = hold(&toy, 1).await;

    let big = Echo {
        text: "x".repeat(100_000),
        local_only: None,
    };
    let error = toy.call(big).await.unwrap_err();
    assert!(matches!(error, CallError::NotDelivered { .. }), "{error:?}");
    assert!(error.to_string().contains("too large"), "{error}");

    // The call in flight is still there, and answers.
    toy.call(Release { key: 1 }).await.unwrap().unwrap();
    assert_eq!(held.await.unwrap(), Ok(Ok(Empty {})));
    let small_echo = Echo {
        text: "x".repeat(1_000),
        local_only: None,
    };
    assert_eq!(
        toy.call(small_echo).await.unwrap().unwrap().text.len(),
        1_000
    );
    drop(a);
}

/// Calls from one caller to one peer arrive in the order they were made,
/// even when the first had to wait (made before the connection was up)
/// and the second could have gone at once: it waits behind the first.
#[actix_rt::test]
async fn a_call_made_later_is_not_sent_ahead_of_one_still_waiting() {
    let cluster = cluster().await;
    let toy = cluster.b.service::<Toy>().unwrap();
    // Made while b has no connection to a: it waits to be sent.
    let first = toy.call(Count {});
    // The connection comes up meanwhile, through another call.
    let warm = Echo {
        text: "warm".into(),
        local_only: None,
    };
    toy.call(warm).await.unwrap().unwrap();
    // Made with the connection up: it could go at once, ahead of `first`.
    let second = toy.call(Count {});
    let (first, second) = tokio::join!(first, second);
    assert_eq!(
        (first.unwrap(), second.unwrap()),
        (Ok(1), Ok(2)),
        "the calls reached the actor out of order"
    );
}
