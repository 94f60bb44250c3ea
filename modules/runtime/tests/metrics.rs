//! Calls as a node counts them (`boutique_calls_total`): every call made
//! through a ref the node hands out ends counted once, under how it ended,
//! including a call whose caller stopped waiting before it ended.

mod support;

use std::time::Duration;

use runtime::Node;
use support::*;

/// The count of calls to toy's `message` that ended as `outcome`.
fn counted(node: &Node, message: &str, outcome: &str) -> u64 {
    let text = node.metrics_text();
    text.lines()
        .filter(|line| line.starts_with("boutique_calls_total{"))
        .filter(|line| line.contains(&format!("message=\"{message}\"")))
        .filter(|line| line.contains(&format!("outcome=\"{outcome}\"")))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[actix_rt::test]
async fn a_call_given_up_on_before_it_ended_is_counted_as_cancelled() {
    let node = one_node().await;
    let toy = node.service::<Toy>().unwrap();

    // Waited on for a moment, then dropped while the actor still holds it.
    let waited = tokio::time::timeout(Duration::from_millis(20), toy.call(Hold { key: 1 })).await;
    assert!(waited.is_err(), "the hold ended on its own: {waited:?}");
    // Made and dropped without ever being polled.
    drop(toy.call(Hold { key: 2 }));

    assert_eq!(
        counted(&node, "Hold", "cancelled"),
        2,
        "{}",
        node.metrics_text()
    );
    assert_eq!(counted(&node, "Hold", "ok"), 0);
    // A call that ends is counted as it ended, and not as cancelled too.
    toy.call(Count {}).await.unwrap().unwrap();
    assert_eq!(counted(&node, "Count", "ok"), 1, "{}", node.metrics_text());
    assert_eq!(counted(&node, "Count", "cancelled"), 0);
}

/// `boutique_peer_state` is a state set: every state of a peer, 1 for the
/// one it is in, 0 for the others. (Only the current state's series was
/// there: "was it down?" read as no data rather than 0.)
#[actix_rt::test]
async fn a_peers_state_is_a_state_set() {
    let cluster = cluster().await;
    let toy = cluster.b.service::<Toy>().unwrap();
    let echo = Echo {
        text: "x".into(),
        local_only: None,
    };
    assert!(matches!(toy.call(echo).await, Ok(Ok(_))));
    let metrics = cluster.b.metrics_text();
    for (state, value) in [
        ("idle", 0),
        ("connecting", 0),
        ("up", 1),
        ("leaving", 0),
        ("down", 0),
    ] {
        let line =
            format!("boutique_peer_state{{node=\"b\",peer=\"a\",state=\"{state}\"}} {value}\n");
        assert!(metrics.contains(&line), "no {line:?} in\n{metrics}");
    }
}
