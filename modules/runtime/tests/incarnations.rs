//! A node restarted on the same address (a new incarnation) is accepted
//! again without restarting anyone else, and nothing of its old life
//! reaches new calls.

mod support;

use std::time::Duration;

use runtime::CallError;
use support::*;

const LONG: Duration = Duration::from_secs(30);

#[actix_rt::test]
async fn a_node_restarted_on_the_same_address_is_accepted_again() {
    let (la, lb) = (bind(), bind());
    let a_addr = addr(&la);
    let plan = plan_with(a_addr, addr(&lb), TEST_RUNTIME);
    let a = start_node(&plan, "a", la).await;
    let b = start_node(&plan, "b", lb).await;
    let toy = b.service::<Toy>().unwrap().with_timeout(LONG);
    assert_eq!(toy.call(Count {}).await.unwrap(), Ok(1));
    assert_eq!(toy.call(Count {}).await.unwrap(), Ok(2));
    let held = hold(&toy, 1).await;

    // a goes away with a call in flight, and comes back on the same port.
    a.shutdown();
    drop(a);
    let error = held.await.unwrap().unwrap_err();
    assert!(
        matches!(error, CallError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    let again = std::net::TcpListener::bind(a_addr).unwrap();
    let a = start_node(&plan, "a", again).await;

    // b was not restarted: it redials and reaches the new a, whose state
    // is new, and where the old hold does not exist.
    assert!(
        b.wait_connected("a", Duration::from_secs(10)).await,
        "b never reconnected"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let count = loop {
        match toy.call(Count {}).await {
            Ok(count) => break count.unwrap(),
            Err(error) => {
                assert!(error.is_safe_to_retry(), "{error:?}");
                assert!(
                    std::time::Instant::now() < deadline,
                    "the new a never answered: {error}"
                );
                tokio::task::yield_now().await;
            }
        }
    };
    assert_eq!(count, 1);
    assert_eq!(toy.call(Held {}).await.unwrap(), Ok(vec![]));
    assert_eq!(b.connections_to("a"), 2);
    // And the new a calls b as well: one connection, both ways.
    let asked = a
        .service::<Toy>()
        .unwrap()
        .call(AskOther { text: "hi".into() })
        .await;
    assert_eq!(asked.unwrap().unwrap(), "pong: hi");
    assert_eq!(b.connections_to("a"), 2);
}
