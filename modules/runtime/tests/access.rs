//! Who may call whom: `[access]` allow-lists, checked by the node that
//! receives a call, and by `Plan::new` against the modules' declared
//! dependencies.

mod support;

use runtime::{CallError, Rejection};
use support::*;

const ONLY_RELAY: &str = "[runtime]\nhandshake_timeout_ms = 1000\n[access]\ntoy = [\"relay\"]\n";

#[actix_rt::test]
async fn a_caller_not_on_the_list_is_refused_and_counted() {
    let (la, lb) = (bind(), bind());
    let plan = plan_with(addr(&la), addr(&lb), ONLY_RELAY);
    let a = start_node(&plan, "a", la).await;
    let _b = start_node(&plan, "b", lb).await;
    let client = client(&plan).await;

    // A client may not call toy...
    let error = client
        .service::<Toy>()
        .unwrap()
        .call(Echo {
            text: "x".into(),
            local_only: None,
        })
        .await
        .unwrap_err();
    match error {
        CallError::Rejected {
            reason: Rejection::NotAllowed { caller, service },
            ..
        } => assert_eq!((caller.as_str(), service.as_str()), ("a client", "toy")),
        other => panic!("expected NotAllowed, got {other:?}"),
    }
    assert_eq!(a.stats().refused_not_allowed, 1);

    // ...but relay, on node b, may.
    let relayed = client
        .service::<RelayService>()
        .unwrap()
        .call(Relay {
            text: "via relay".into(),
        })
        .await;
    assert_eq!(relayed.unwrap().unwrap().text, "via relay");
    assert_eq!(a.stats().refused_not_allowed, 1);
}

#[test]
fn a_list_that_forbids_a_declared_dependency_is_a_config_error() {
    let text = "[nodes.main]\nmodules = [\"*\"]\n[access]\ntoy = [\"other\"]\nnope = [\"toy\"]\nother = [\"ghost\"]\n";
    let error = runtime::Plan::new(runtime::config::parse(text).unwrap(), &catalogue())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("module 'relay' calls 'toy', but [access] toy"),
        "{error}"
    );
    assert!(error.contains("[access] names"), "{error}");
    assert!(error.contains("'ghost' is not a module"), "{error}");
}
