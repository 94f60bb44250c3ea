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
    let (logs, _guard) = Logs::capture();

    // A client may not call toy...
    let toy = client.service::<Toy>().unwrap();
    let (trace, refused) = runtime::new_trace(async move {
        toy.call(Echo {
            text: "x".into(),
            local_only: None,
        })
        .await
    });
    let error = refused.await.unwrap_err();
    match error {
        CallError::Rejected {
            reason: Rejection::NotAllowed { caller, service },
            ..
        } => assert_eq!((caller.as_str(), service.as_str()), ("a client", "toy")),
        other => panic!("expected NotAllowed, got {other:?}"),
    }
    assert_eq!(a.stats().refused_not_allowed, 1);
    // The node that refused it says so in the call's span, with the
    // trace the caller's request belongs to.
    let text = logs.text();
    let said = text
        .lines()
        .find(|line| line.contains("call refused"))
        .unwrap_or_else(|| panic!("no line says the call was refused:\n{text}"));
    assert!(said.contains("call{module=\"toy\" Echo call_id="), "{said}");
    assert!(said.contains(&format!("trace_id={trace}")), "{said}");

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

/// A raw connection to node `a` that introduced itself as some node or
/// client.
struct RawPeer {
    reader: runtime::transport::frame::FrameReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    calls: u64,
}

impl RawPeer {
    async fn dial(
        a: &runtime::Node,
        name: &str,
        role: runtime::transport::handshake::Role,
    ) -> RawPeer {
        let (reader, writer) = raw_dial(a, name, role).await;
        RawPeer {
            reader,
            writer,
            calls: 0,
        }
    }

    /// Calls Echo claiming `caller` as the calling module; returns the
    /// reply's status and, if the call was rejected, why.
    async fn echo_as(
        &mut self,
        caller: u64,
    ) -> (runtime::transport::frame::ReplyStatus, Option<Rejection>) {
        use runtime::Request;
        use runtime::transport::frame::{Frame, FrameBuf, ReplyStatus, RequestHeader};
        use tokio::io::AsyncWriteExt;

        self.calls += 1;
        let header = RequestHeader {
            call_id: self.calls,
            method: <Echo as Request>::METHOD.0,
            budget_us: 30_000_000,
            caller,
            trace: 0,
            parent: 0,
        };
        let mut frame = FrameBuf::request_into(Vec::new(), header);
        let echo = Echo {
            text: "claimed".into(),
            local_only: None,
        };
        runtime::codec::encode_into(&echo, frame.buf()).unwrap();
        self.writer
            .write_all(&frame.finish(1 << 20).unwrap())
            .await
            .unwrap();
        match next_frame(&mut self.reader).await {
            Frame::Reply {
                status, payload, ..
            } => {
                let why = (status == ReplyStatus::Rejected)
                    .then(|| runtime::codec::decode::<Rejection>(&payload).unwrap());
                (status, why)
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }
}

#[actix_rt::test]
async fn a_caller_is_held_to_the_modules_its_node_runs() {
    use runtime::transport::frame::{ReplyStatus, caller_id};
    use runtime::transport::handshake::Role;

    let (la, lb) = (bind(), bind());
    let plan = plan_with(addr(&la), addr(&lb), ONLY_RELAY);
    let a = start_node(&plan, "a", la).await;

    // Node b runs relay: calling as relay, it may call toy.
    let mut b = RawPeer::dial(&a, "b", Role::Node).await;
    assert_eq!(
        b.echo_as(caller_id("relay")).await,
        (ReplyStatus::Outcome, None)
    );

    // Node b claiming to be toy (which runs on a), or a client claiming to
    // be relay, is refused.
    let mut probe = RawPeer::dial(&a, "probe", Role::Client).await;
    for (peer, claimed, who) in [
        (&mut b, "toy", "node 'b'"),
        (&mut probe, "relay", "client 'probe'"),
    ] {
        match peer.echo_as(caller_id(claimed)).await {
            (ReplyStatus::Rejected, Some(Rejection::NotAllowed { caller, service })) => {
                assert!(caller.starts_with(who), "{caller}");
                assert!(
                    caller.contains(&format!("calling as module {claimed}")),
                    "{caller}"
                );
                assert_eq!(service, "toy");
            }
            other => panic!("expected NotAllowed, got {other:?}"),
        }
    }
    assert_eq!(a.stats().refused_not_allowed, 2);
}
