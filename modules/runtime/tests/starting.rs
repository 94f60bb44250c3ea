//! A node still starting its modules, called by a peer over a connection
//! one of its modules opened as it started: the call is refused as *not
//! delivered* (the node is starting), not rejected as a method it does not
//! know, and served once the node is up.

mod support;

use std::sync::OnceLock;

use actix::{Actor, Context, Handler};
use runtime::config::{self, Plan};
use runtime::{
    CallError, Catalogue, Empty, Module, NoConfig, Node, Service, StartContext, StartError,
};
use serde::{Deserialize, Serialize};
use support::*;
use tokio::sync::Notify;

/// The module's one message (never sent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Nothing {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum LateError {
    #[error("never")]
    Never,
}

runtime::service! {
    /// A service whose module calls `other` as it starts, then waits.
    pub Late = "late", error LateError {
        Nothing -> Empty,
    }
}

/// Told once `late`'s start has called `other` (a connection is open).
fn called_out() -> &'static Notify {
    static CALLED_OUT: OnceLock<Notify> = OnceLock::new();
    CALLED_OUT.get_or_init(Notify::new)
}

/// Lets `late`'s start finish.
fn release() -> &'static Notify {
    static RELEASE: OnceLock<Notify> = OnceLock::new();
    RELEASE.get_or_init(Notify::new)
}

struct LateModule;

impl Module for LateModule {
    type Service = Late;
    type Config = NoConfig;
    fn dependencies() -> Vec<&'static str> {
        vec![Other::NAME]
    }
    async fn start(_: NoConfig, ctx: StartContext) -> Result<Late, StartError> {
        let other = ctx.service::<Other>()?;
        let pong = other.call(Ping { text: "hi".into() }).await;
        assert!(matches!(pong, Ok(Ok(_))), "{pong:?}");
        called_out().notify_one();
        release().notified().await;
        Ok(Late::start(LateActor))
    }
}

struct LateActor;

impl Actor for LateActor {
    type Context = Context<Self>;
}

impl Handler<runtime::Call<Nothing>> for LateActor {
    type Result = Result<Empty, LateError>;
    fn handle(&mut self, _: runtime::Call<Nothing>, _: &mut Context<Self>) -> Self::Result {
        Ok(Empty {})
    }
}

fn starting_catalogue() -> Catalogue {
    catalogue().with::<LateModule>()
}

#[actix_rt::test]
async fn a_call_to_a_node_still_starting_is_not_delivered_then_served() {
    let (la, lb) = (bind(), bind());
    let text = format!(
        "[cluster]\nsecret_env = \"TOY_SECRET_UNUSED\"\n\
         [nodes.a]\nlisten = \"{}\"\nmodules = [\"toy\", \"late\"]\n\
         [nodes.b]\nlisten = \"{}\"\nmodules = [\"other\", \"relay\"]\n{TEST_RUNTIME}",
        addr(&la),
        addr(&lb)
    );
    let plan = Plan::new(config::parse(&text).unwrap(), &starting_catalogue()).unwrap();
    let b = Node::builder(&plan, &starting_catalogue())
        .listener(lb)
        .secret(secret())
        .start("b")
        .await
        .unwrap();
    let plan_a = plan.clone();
    let starting = tokio::task::spawn_local(async move {
        Node::builder(&plan_a, &starting_catalogue())
            .listener(la)
            .secret(secret())
            .start("a")
            .await
    });
    called_out().notified().await;

    // Node b calls toy on a, over the connection a opened: a has not
    // started its modules yet. (Before, this was rejected as a method a
    // does not know, which no caller tries elsewhere.)
    let error = echo_error(&b).await;
    assert!(matches!(error, CallError::NotDelivered { .. }), "{error:?}");
    assert!(
        error.to_string().contains("node 'a' is starting"),
        "{error}"
    );
    assert_eq!(error.service(), "toy", "{error}");

    release().notify_one();
    let _a = starting.await.unwrap().unwrap();
    let reply = b
        .service::<Toy>()
        .unwrap()
        .call(Echo {
            text: "up".into(),
            local_only: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.text, "up");
}
