//! Replicas: a module listed by two nodes runs on both; callers spread
//! their calls, idempotent calls fail over when a replica dies and others
//! do not, and keyed calls stay on one replica while it is up.

mod support;

use std::time::{Duration, Instant};

use runtime::{CallError, Empty, Node, Plan, ServiceRef, config};
use support::*;

const LONG: Duration = Duration::from_secs(30);

/// toy runs on a and c; other and relay on b.
struct Replicated {
    a: Node,
    _b: Node,
    c: Node,
    client: Node,
}

async fn replicated(extra: &str) -> Replicated {
    let (la, lb, lc) = (bind(), bind(), bind());
    let text = format!(
        "[cluster]\nsecret_env = \"UNUSED\"\n[runtime]\nhandshake_timeout_ms = 1000\n\
         [nodes.a]\nlisten = \"{}\"\nmodules = [\"toy\"]\n\
         [nodes.b]\nlisten = \"{}\"\nmodules = [\"other\", \"relay\"]\n\
         [nodes.c]\nlisten = \"{}\"\nmodules = [\"toy\"]\n{extra}",
        addr(&la),
        addr(&lb),
        addr(&lc)
    );
    let plan = Plan::new(config::parse(&text).unwrap(), &catalogue()).unwrap();
    let b = start_node(&plan, "b", lb).await;
    let a = start_node(&plan, "a", la).await;
    let c = start_node(&plan, "c", lc).await;
    let client = client(&plan).await;
    Replicated {
        a,
        _b: b,
        c,
        client,
    }
}

/// Waits until `node`'s toy holds `key`; true if it does (within 2 s).
async fn holds(node: &Node, key: u32) -> bool {
    let toy = node.service::<Toy>().unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        if toy.call(Held {}).await.unwrap().unwrap().contains(&key) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// Which of a and c holds `key` (the other one is returned second).
async fn holder(r: &Replicated, key: u32) -> (&Node, &Node) {
    let started = Instant::now();
    loop {
        for (x, y) in [(&r.a, &r.c), (&r.c, &r.a)] {
            let held = x
                .service::<Toy>()
                .unwrap()
                .call(Held {})
                .await
                .unwrap()
                .unwrap();
            if held.contains(&key) {
                return (x, y);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "nobody holds {key}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn toy(node: &Node) -> ServiceRef<Toy> {
    node.service::<Toy>().unwrap().with_timeout(LONG)
}

#[actix_rt::test]
async fn calls_spread_over_the_replicas() {
    let r = replicated("").await;
    // Each replica is told it is one of two (a cache would be wrong).
    for node in [&r.a, &r.c] {
        assert_eq!(toy(node).call(Replicas {}).await.unwrap(), Ok(2));
    }
    let toy = toy(&r.client);
    for _ in 0..100 {
        toy.call(Count {}).await.unwrap().unwrap();
    }
    // Each replica's own count (plus this one).
    let on_a =
        r.a.service::<Toy>()
            .unwrap()
            .call(Count {})
            .await
            .unwrap()
            .unwrap()
            - 1;
    let on_c =
        r.c.service::<Toy>()
            .unwrap()
            .call(Count {})
            .await
            .unwrap()
            .unwrap()
            - 1;
    assert_eq!(on_a + on_c, 100);
    assert!(on_a >= 10 && on_c >= 10, "a got {on_a}, c got {on_c}");
}

#[actix_rt::test]
async fn an_idempotent_call_fails_over_when_its_replica_dies() {
    let r = replicated("").await;
    let toy = toy(&r.client);
    let waiting = tokio::spawn({
        let toy = toy.clone();
        async move { toy.call(Wait { key: 1 }).await }
    });
    let (first, other) = holder(&r, 1).await;
    first.shutdown();
    // The same call, sent again to the other replica, is held there.
    assert!(holds(other, 1).await, "the call did not fail over");
    other
        .service::<Toy>()
        .unwrap()
        .call(Release { key: 1 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(waiting.await.unwrap(), Ok(Ok(Empty {})));
}

/// A node whose own replica is being restarted (its actor stopped by a
/// panic) sends the calls that may move to another replica meanwhile: they
/// failed as not delivered, though the other was up.
#[actix_rt::test]
async fn calls_go_to_another_replica_while_the_nodes_own_is_restarted() {
    let r = replicated("").await;
    let on_a = toy(&r.a);
    // c's replica has counted 10 calls; a restarted replica counts from 1.
    let on_c = toy(&r.c);
    for _ in 0..10 {
        on_c.call(Count {}).await.unwrap().unwrap();
    }
    // From the third crash in a row, a restart waits (100, 200, 400 ms):
    // the fifth leaves a's replica down for 400 ms at least.
    for crash in 1..=5 {
        let error = on_a.call(Panic {}).await.unwrap_err();
        assert!(error.to_string().contains("panicked"), "{error}");
        if crash == 5 {
            break;
        }
        let started = Instant::now();
        while r.a.stats().restarts < crash {
            assert!(started.elapsed() < Duration::from_secs(5), "not restarted");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(
        on_a.call(Count {}).await.unwrap(),
        Ok(11),
        "not counted by c"
    );
}

/// A call that surely did not run goes to another replica, idempotent or
/// not (calls routed least-loaded): here the link to replica a stalls with
/// the calls' frames still unsent, a is declared unreachable after the
/// failure timeout, and each call there fails as *not delivered*. They
/// failed so before, though c was up.
#[actix_rt::test]
async fn a_call_a_replica_did_not_run_goes_to_another() {
    a_call_a_replica_did_not_run_goes_to_another_with("").await;
}

/// Under by-key routing, a message with no key is routed least-loaded,
/// and moves as such (it did not: the module's setting was asked, not how
/// the call was routed).
#[actix_rt::test]
async fn an_unkeyed_call_of_a_keyed_module_a_replica_did_not_run_goes_to_another() {
    a_call_a_replica_did_not_run_goes_to_another_with("[routing]\ntoy = \"by-key\"\n").await;
}

async fn a_call_a_replica_did_not_run_goes_to_another_with(routing: &str) {
    let r = replicated(routing).await;
    let toy = toy(&r.client);
    // Connected to both replicas first.
    for _ in 0..20 {
        toy.call(Count {}).await.unwrap().unwrap();
    }
    let (logs, _guard) = Logs::capture();
    let on_c = |node: &Node| {
        let toy = node.service::<Toy>().unwrap();
        async move { toy.call(Count {}).await.unwrap().unwrap() }
    };
    let before = on_c(&r.c).await;
    r.client.faults().unwrap().stall("a", true);
    // Count is not idempotent. Eight at once: some pick a.
    let calls = (0..8).map(|_| toy.call(Count {}));
    let counted = futures_util::future::join_all(calls).await;
    for outcome in &counted {
        assert!(matches!(outcome, Ok(Ok(_))), "{outcome:?}");
    }
    // All eight ran on c, once each (and the count before and after),
    // some of them after a said it had not run them.
    assert_eq!(on_c(&r.c).await - before, 9);
    let text = logs.text();
    let moved = text
        .lines()
        .find(|line| line.contains("replica failed; trying another"))
        .unwrap_or_else(|| panic!("no call moved:\n{text}"));
    // In the call's span, with the fields a handler's lines have (the
    // text format writes a field named `message` by its value alone).
    assert!(
        moved.contains("call{module=\"toy\" Count call_id="),
        "{moved}"
    );
    // And its trace's id, to follow the request it was made for.
    assert!(moved.contains(" trace_id="), "{moved}");
}

#[actix_rt::test]
async fn a_call_that_is_not_idempotent_never_fails_over() {
    let r = replicated("").await;
    let toy = toy(&r.client);
    let held = tokio::spawn({
        let toy = toy.clone();
        async move { toy.call(Hold { key: 2 }).await }
    });
    let (first, other) = holder(&r, 2).await;
    first.shutdown();
    let error = held.await.unwrap().unwrap_err();
    assert!(
        matches!(error, CallError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    // It failed rather than waiting on the other replica, which never saw it.
    let held_there = other
        .service::<Toy>()
        .unwrap()
        .call(Held {})
        .await
        .unwrap()
        .unwrap();
    assert!(
        !held_there.contains(&2),
        "a call that is not idempotent was sent twice"
    );
}

#[actix_rt::test]
async fn keyed_calls_stay_on_one_replica_while_it_is_up() {
    let r = replicated("[routing]\ntoy = \"by-key\"\n").await;
    let toy = toy(&r.client);
    let count = |key: &str| toy.call(KeyedCount { key: key.into() });
    // Counts per key per replica: one replica saw every call for a key.
    for expected in 1..=20 {
        assert_eq!(count("user-1").await.unwrap().unwrap(), expected);
        count(&format!("other-{expected}")).await.unwrap().unwrap();
    }
    // Find the replica of "user-1" (asking a counts one more there), and
    // stop it: the key moves on to the other.
    let on_a =
        r.a.service::<Toy>()
            .unwrap()
            .call(KeyedCount {
                key: "user-1".into(),
            })
            .await
            .unwrap()
            .unwrap();
    let home_is_a = on_a > 1;
    let (home, seen_elsewhere) = if home_is_a { (&r.a, 0) } else { (&r.c, 1) };
    let home_name = if home_is_a { "a" } else { "c" };
    home.shutdown();
    // Once the client has seen it go, the key's calls go to the other.
    let started = Instant::now();
    while r.client.is_connected(home_name) {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the client never saw {home_name} go"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        count("user-1").await.unwrap().unwrap(),
        seen_elsewhere + 1,
        "the key did not move, or moved back and forth"
    );
}

/// Nodes a and b started, and c's address bound but never answered: c's
/// kernel accepts connections but nothing answers (a stopped process), so
/// a dial to c hangs in the handshake for 10 s. Returns a, b and c's
/// socket (to keep it bound).
async fn a_and_b_with_c_stopped() -> (Node, Node, std::net::TcpListener) {
    let (la, lb, lc) = (bind(), bind(), bind());
    let text = format!(
        "[cluster]\nsecret_env = \"UNUSED\"\n[runtime]\nhandshake_timeout_ms = 10000\n\
         [nodes.a]\nlisten = \"{}\"\nmodules = [\"toy\"]\n\
         [nodes.b]\nlisten = \"{}\"\nmodules = [\"other\", \"relay\"]\n\
         [nodes.c]\nlisten = \"{}\"\nmodules = [\"toy\"]\n",
        addr(&la),
        addr(&lb),
        addr(&lc)
    );
    let plan = Plan::new(config::parse(&text).unwrap(), &catalogue()).unwrap();
    let a = start_node(&plan, "a", la).await;
    let b = start_node(&plan, "b", lb).await;
    (a, b, lc)
}

/// Twenty calls at once from `node` to toy, each with 1 s to answer: how
/// those that failed ended.
async fn twenty_calls_failed(node: &Node) -> Vec<String> {
    let toy = node
        .service::<Toy>()
        .unwrap()
        .with_timeout(Duration::from_secs(1));
    let calls = (0..20).map(|n| {
        toy.call(Echo {
            text: format!("call {n}"),
            local_only: None,
        })
    });
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .filter_map(|reply| match reply {
            Ok(Ok(_)) => None,
            other => Some(format!("{other:?}")),
        })
        .collect()
}

#[actix_rt::test]
async fn calls_do_not_pile_on_a_replica_whose_first_dial_hangs() {
    let (_a, b, _c) = a_and_b_with_c_stopped().await;
    // Asking b whether it is ready dials both replicas of toy (relay
    // calls it): a answers, c hangs.
    let _ = b.readiness();
    assert!(b.wait_connected("a", LONG).await);
    assert!(!b.is_connected("c"));
    let failed = twenty_calls_failed(&b).await;
    // Before, c showed no calls in flight (they wait for its dial holding
    // no slot) and drew most of them, each failing at its deadline.
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
}

#[actix_rt::test]
async fn a_replica_never_called_yet_does_not_draw_calls_while_another_is_up() {
    let (a, b, _c) = a_and_b_with_c_stopped().await;
    // a's toy calls other on b: a dials b, so b has a connection to a's
    // replica of toy, and has never dialed c's (idle).
    let asked = toy(&a).call(AskOther { text: "hi".into() }).await;
    assert!(matches!(asked, Ok(Ok(_))), "{asked:?}");
    assert!(b.wait_connected("a", LONG).await);
    assert!(!b.is_connected("c"));
    let failed = twenty_calls_failed(&b).await;
    // Before, c, never called, showed no calls in flight and drew the
    // calls that dialed it, each failing at its deadline.
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
}
