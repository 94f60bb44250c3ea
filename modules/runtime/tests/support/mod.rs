//! Toy services and a two-node harness for the runtime's own tests.
//!
//! Three services, placed so that calls cross both ways between nodes `a`
//! and `b`: `relay` (on b) calls `toy` (on a), which calls `other` (on b).
//! `toy` can also hold a call unanswered until told to release it, which lets
//! tests have calls in flight without sleeping.

#![allow(dead_code)]

pub mod holder;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use actix::{Actor, Context, Handler, ResponseFuture};
use runtime::config::{self, Plan};
use runtime::transport::handshake::Secret;
use runtime::{
    Call, CallError, Catalogue, Empty, Module, NoConfig, Node, Service, ServiceRef, StartContext,
    StartError,
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// Echoes its text. `local_only` is not serialized, so only a call that
/// skipped the codec still has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Echo {
    pub text: String,
    #[serde(skip)]
    pub local_only: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoReply {
    pub text: String,
    pub saw_local_only: bool,
}

/// Answered only when a `Release` with the same key arrives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hold {
    pub key: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    pub key: u32,
}

/// Always answers with the domain error `Failed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fail {
    pub reason: String,
}

/// The keys of the calls held right now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Held {}

/// Like `Hold`, with a payload to take up room.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HoldBlob {
    pub key: u32,
    pub blob: Vec<u8>,
}

/// Like `Hold`, but declared idempotent: it may fail over between replicas.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Wait {
    pub key: u32,
}

/// Counts calls per key since the actor started; routed by `key`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyedCount {
    pub key: String,
}

/// The handler panics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Panic {}

/// The handler's future panics, after it has waited once: in a task of its
/// own, not on the actor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PanicLater {}

/// Counts calls to it since the actor started: its state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Count {}

/// How many nodes run toy, as this replica was told when it started
/// (`StartContext::replicas`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replicas {}

/// Who made the call, as the toy saw it: `local`, `node NAME` or
/// `client NAME` (from its `CallMeta::origin`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Caller {}

/// Asks `other` to ping.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AskOther {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ToyError {
    #[error("failed: {reason}")]
    Failed { reason: String },
    #[error("nothing held under key {key}")]
    NotHeld { key: u32 },
    #[error("other is unavailable: {0}")]
    Other(CallError),
}

runtime::service! {
    /// The toy service.
    pub Toy = "toy", error ToyError {
        Echo -> EchoReply [idempotent],
        Hold -> Empty,
        Release -> Empty,
        Fail -> Empty,
        Held -> Vec<u32>,
        AskOther -> String,
        Panic -> Empty,
        PanicLater -> Empty,
        Count -> u64,
        HoldBlob -> Empty,
        Wait -> Empty [idempotent],
        KeyedCount -> u64 [key = key],
        Replicas -> usize,
        Caller -> String,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ping {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum OtherError {
    #[error("never")]
    Never,
}

runtime::service! {
    /// A second service, on the other node.
    pub Other = "other", error OtherError {
        Ping -> String,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relay {
    pub text: String,
}

/// Asks toy to hold `key`, as part of this call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayHold {
    pub key: u32,
}

runtime::service! {
    /// Calls toy's Echo, or its Hold.
    pub RelayService = "relay", error ToyError {
        Relay -> EchoReply,
        RelayHold -> Empty,
    }
}

pub struct ToyModule;

impl Module for ToyModule {
    type Service = Toy;
    type Config = NoConfig;
    fn dependencies() -> Vec<&'static str> {
        vec![Other::NAME]
    }
    async fn start(_: NoConfig, ctx: StartContext) -> Result<Toy, StartError> {
        let actor = ToyActor {
            replicas: ctx.replicas(),
            other: ctx.service::<Other>()?,
            held: HashMap::new(),
            count: 0,
            keyed: HashMap::new(),
        };
        Ok(Toy::start(actor))
    }
}

struct ToyActor {
    replicas: usize,
    other: ServiceRef<Other>,
    held: HashMap<u32, oneshot::Sender<()>>,
    count: u64,
    keyed: HashMap<String, u64>,
}

impl Handler<Call<Wait>> for ToyActor {
    type Result = ResponseFuture<Result<Empty, ToyError>>;
    fn handle(&mut self, call: Call<Wait>, _: &mut Context<Self>) -> Self::Result {
        let (release, released) = oneshot::channel();
        self.held.insert(call.key, release);
        Box::pin(async move {
            let _ = released.await;
            Ok(Empty {})
        })
    }
}

impl Handler<Call<KeyedCount>> for ToyActor {
    type Result = Result<u64, ToyError>;
    fn handle(&mut self, call: Call<KeyedCount>, _: &mut Context<Self>) -> Self::Result {
        let count = self.keyed.entry(call.into_message().key).or_default();
        *count += 1;
        Ok(*count)
    }
}

impl Handler<Call<Panic>> for ToyActor {
    type Result = Result<Empty, ToyError>;
    fn handle(&mut self, _: Call<Panic>, _: &mut Context<Self>) -> Self::Result {
        panic!("the toy handler panics on purpose");
    }
}

impl Handler<Call<HoldBlob>> for ToyActor {
    type Result = ResponseFuture<Result<Empty, ToyError>>;
    fn handle(&mut self, call: Call<HoldBlob>, _: &mut Context<Self>) -> Self::Result {
        let (release, released) = oneshot::channel();
        self.held.insert(call.key, release);
        Box::pin(async move {
            let _ = released.await;
            Ok(Empty {})
        })
    }
}

impl Handler<Call<PanicLater>> for ToyActor {
    type Result = ResponseFuture<Result<Empty, ToyError>>;
    fn handle(&mut self, _: Call<PanicLater>, _: &mut Context<Self>) -> Self::Result {
        Box::pin(async {
            tokio::task::yield_now().await;
            panic!("the toy handler's future panics on purpose");
        })
    }
}

impl Handler<Call<Count>> for ToyActor {
    type Result = Result<u64, ToyError>;
    fn handle(&mut self, _: Call<Count>, _: &mut Context<Self>) -> Self::Result {
        self.count += 1;
        Ok(self.count)
    }
}

impl Handler<Call<Replicas>> for ToyActor {
    type Result = Result<usize, ToyError>;
    fn handle(&mut self, _: Call<Replicas>, _: &mut Context<Self>) -> Self::Result {
        Ok(self.replicas)
    }
}

impl Handler<Call<Caller>> for ToyActor {
    type Result = Result<String, ToyError>;
    fn handle(&mut self, call: Call<Caller>, _: &mut Context<Self>) -> Self::Result {
        Ok(match &call.meta().origin {
            runtime::Origin::Local => "local".to_owned(),
            runtime::Origin::Remote(node) => format!("node {node}"),
            runtime::Origin::Client(name) => format!("client {name}"),
        })
    }
}

impl Actor for ToyActor {
    type Context = Context<Self>;
}

impl Handler<Call<Echo>> for ToyActor {
    type Result = Result<EchoReply, ToyError>;
    fn handle(&mut self, call: Call<Echo>, _: &mut Context<Self>) -> Self::Result {
        let Echo { text, local_only } = call.into_message();
        Ok(EchoReply {
            text,
            saw_local_only: local_only.is_some(),
        })
    }
}

impl Handler<Call<Hold>> for ToyActor {
    type Result = ResponseFuture<Result<Empty, ToyError>>;
    fn handle(&mut self, call: Call<Hold>, _: &mut Context<Self>) -> Self::Result {
        let (release, released) = oneshot::channel();
        self.held.insert(call.key, release);
        Box::pin(async move {
            let _ = released.await;
            Ok(Empty {})
        })
    }
}

impl Handler<Call<Release>> for ToyActor {
    type Result = Result<Empty, ToyError>;
    fn handle(&mut self, call: Call<Release>, _: &mut Context<Self>) -> Self::Result {
        match self.held.remove(&call.key) {
            Some(release) => {
                let _ = release.send(());
                Ok(Empty {})
            }
            None => Err(ToyError::NotHeld { key: call.key }),
        }
    }
}

impl Handler<Call<Fail>> for ToyActor {
    type Result = Result<Empty, ToyError>;
    fn handle(&mut self, call: Call<Fail>, _: &mut Context<Self>) -> Self::Result {
        Err(ToyError::Failed {
            reason: call.into_message().reason,
        })
    }
}

impl Handler<Call<Held>> for ToyActor {
    type Result = Result<Vec<u32>, ToyError>;
    fn handle(&mut self, _: Call<Held>, _: &mut Context<Self>) -> Self::Result {
        self.held.retain(|_, release| !release.is_closed());
        Ok(self.held.keys().copied().collect())
    }
}

impl Handler<Call<AskOther>> for ToyActor {
    type Result = ResponseFuture<Result<String, ToyError>>;
    fn handle(&mut self, call: Call<AskOther>, _: &mut Context<Self>) -> Self::Result {
        let other = self.other.clone();
        let text = call.into_message().text;
        Box::pin(async move {
            match other.call(Ping { text }).await {
                Ok(Ok(pong)) => Ok(pong),
                Ok(Err(OtherError::Never)) => unreachable!("other never fails"),
                Err(error) => Err(ToyError::Other(error)),
            }
        })
    }
}

pub struct OtherModule;

impl Module for OtherModule {
    type Service = Other;
    type Config = NoConfig;
    async fn start(_: NoConfig, _: StartContext) -> Result<Other, StartError> {
        Ok(Other::start(OtherActor))
    }
}

struct OtherActor;

impl Actor for OtherActor {
    type Context = Context<Self>;
}

impl Handler<Call<Ping>> for OtherActor {
    type Result = Result<String, OtherError>;
    fn handle(&mut self, call: Call<Ping>, _: &mut Context<Self>) -> Self::Result {
        Ok(format!("pong: {}", call.text))
    }
}

pub struct RelayModule;

impl Module for RelayModule {
    type Service = RelayService;
    type Config = NoConfig;
    fn dependencies() -> Vec<&'static str> {
        vec![Toy::NAME]
    }
    async fn start(_: NoConfig, ctx: StartContext) -> Result<RelayService, StartError> {
        let actor = RelayActor {
            toy: ctx.service::<Toy>()?,
        };
        Ok(RelayService::start(actor))
    }
}

struct RelayActor {
    toy: ServiceRef<Toy>,
}

impl Actor for RelayActor {
    type Context = Context<Self>;
}

impl Handler<Call<Relay>> for RelayActor {
    type Result = ResponseFuture<Result<EchoReply, ToyError>>;
    fn handle(&mut self, call: Call<Relay>, _: &mut Context<Self>) -> Self::Result {
        let toy = self.toy.clone();
        let text = call.into_message().text;
        Box::pin(async move {
            toy.call(Echo {
                text,
                local_only: None,
            })
            .await
            .map_err(ToyError::Other)?
        })
    }
}

impl Handler<Call<RelayHold>> for RelayActor {
    type Result = ResponseFuture<Result<Empty, ToyError>>;
    fn handle(&mut self, call: Call<RelayHold>, _: &mut Context<Self>) -> Self::Result {
        let toy = self.toy.clone();
        let key = call.key;
        // The toy call inherits this call's deadline.
        Box::pin(call.scope(async move { toy.call(Hold { key }).await.map_err(ToyError::Other)? }))
    }
}

/// Every toy module.
pub fn catalogue() -> Catalogue {
    Catalogue::new()
        .with::<ToyModule>()
        .with::<OtherModule>()
        .with::<RelayModule>()
}

/// One node, `main`, running every module of `catalogue`, in process.
pub async fn one_node_of(catalogue: &Catalogue) -> Node {
    let text = "[nodes.main]\nmodules = [\"*\"]\n";
    let plan = Plan::new(config::parse(text).unwrap(), catalogue).unwrap();
    Node::start(&plan, "main", catalogue).await.unwrap()
}

/// [`one_node_of`] the toy modules.
pub async fn one_node() -> Node {
    one_node_of(&catalogue()).await
}

/// The secret every test node shares.
pub fn secret() -> Secret {
    Secret::from_bytes("test", b"a shared secret for the tests".to_vec()).unwrap()
}

/// A socket on an ephemeral loopback port.
pub fn bind() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap()
}

pub fn addr(listener: &std::net::TcpListener) -> SocketAddr {
    listener.local_addr().unwrap()
}

/// Node `a` runs toy, node `b` runs other and relay.
pub fn plan(a: SocketAddr, b: SocketAddr) -> Plan {
    plan_with(a, b, "")
}

/// [`plan`] with extra TOML (e.g. a `[runtime]` section).
pub fn plan_with(a: SocketAddr, b: SocketAddr, extra: &str) -> Plan {
    let text = format!(
        "[cluster]\nsecret_env = \"TOY_SECRET_UNUSED\"\n\
         [nodes.a]\nlisten = \"{a}\"\nmodules = [\"toy\"]\n\
         [nodes.b]\nlisten = \"{b}\"\nmodules = [\"other\", \"relay\"]\n{extra}"
    );
    Plan::new(config::parse(&text).unwrap(), &catalogue()).unwrap()
}

/// Nodes `a` and `b`, running, on ephemeral ports.
pub struct Cluster {
    pub plan: Plan,
    pub a: Node,
    pub b: Node,
}

/// Handshakes that stall give up after this long in the test cluster.
pub const TEST_RUNTIME: &str = "[runtime]\nhandshake_timeout_ms = 1000\n";

pub async fn cluster() -> Cluster {
    let (la, lb) = (bind(), bind());
    let plan = plan_with(addr(&la), addr(&lb), TEST_RUNTIME);
    let a = start_node(&plan, "a", la).await;
    let b = start_node(&plan, "b", lb).await;
    Cluster { plan, a, b }
}

/// Starts node `name` of `plan` on `listener`, with the shared secret.
pub async fn start_node(plan: &Plan, name: &str, listener: std::net::TcpListener) -> Node {
    Node::builder(plan, &catalogue())
        .listener(listener)
        .secret(secret())
        .start(name)
        .await
        .unwrap()
}

/// What an `Echo` through `client` fails with.
pub async fn echo_error(client: &Node) -> CallError {
    let echo = Echo {
        text: "x".into(),
        local_only: None,
    };
    client
        .service::<Toy>()
        .unwrap()
        .call(echo)
        .await
        .unwrap_err()
}

/// Starts `Hold { key }` on `toy` and returns once the actor holds it.
pub async fn hold(
    toy: &ServiceRef<Toy>,
    key: u32,
) -> tokio::task::JoinHandle<Result<Result<Empty, ToyError>, CallError>> {
    let held = tokio::spawn({
        let toy = toy.clone();
        async move { toy.call(Hold { key }).await }
    });
    loop {
        let keys = toy.call(Held {}).await.unwrap().unwrap();
        if keys.contains(&key) {
            return held;
        }
        assert!(!held.is_finished(), "the hold ended before it was held");
        tokio::task::yield_now().await;
    }
}

/// A client of `plan` with the shared secret.
pub async fn client(plan: &Plan) -> Node {
    Node::builder(plan, &catalogue())
        .secret(secret())
        .client()
        .await
        .unwrap()
}

/// Log lines written while a test runs (on its thread).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Starts capturing; capture stops when the guard is dropped.
    ///
    /// The first capture also sets a global subscriber that takes every
    /// event (and drops it): `tracing` caches, per call site, whether any
    /// subscriber wants its events, and a call site first reached while
    /// no capture of another test was alive, racing with a capture being
    /// set on another thread, could be cached as wanted by nobody, losing
    /// that line from every capture after (a rare flake of the tests that
    /// look for log lines). With a global subscriber that wants
    /// everything, no call site is ever cached so.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        static EVERY_EVENT_WANTED: std::sync::Once = std::sync::Once::new();
        EVERY_EVENT_WANTED.call_once(|| {
            let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        });
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Waits (up to 10 s) until `logs` holds a line with `needle`.
pub async fn wait_for_log(logs: &Logs, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !logs.text().contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no log line with {needle:?}:\n{}",
            logs.text()
        );
        tokio::task::yield_now().await;
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A raw connection to node `a`, as `role` named `name` (introduced with
/// the shared secret): frames are then sent and read by hand. It says it
/// may have as many calls in flight as any node may.
pub async fn raw_dial(
    a: &Node,
    name: &str,
    role: runtime::transport::handshake::Role,
) -> (
    runtime::transport::frame::FrameReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let most = u32::try_from(runtime::config::MAX_IN_FLIGHT_PER_PEER).unwrap();
    raw_dial_saying(a, name, role, most).await
}

/// Node "a" of [`plan_with`]'s deployment as it introduces itself in the
/// handshake, for a test that plays it (or, changed, another node) by
/// hand.
pub fn identity_of_a() -> runtime::transport::handshake::Identity {
    runtime::transport::handshake::Identity {
        cluster: "boutique".into(),
        node: "a".into(),
        role: runtime::transport::handshake::Role::Node,
        incarnation: 1,
        fingerprint: catalogue().fingerprint().unwrap(),
        max_in_flight: 1024,
        max_frame: 4 * 1024 * 1024,
        heartbeat: Default::default(),
        secret: std::sync::Arc::new(secret()),
    }
}

/// A connection a fake node took: its reader and its writer.
pub type Accepted = (
    runtime::transport::frame::FrameReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
);

/// Plays node "a" on `listener`: takes the next dialer through the
/// handshake and welcomes it; its connection, or `None` if the handshake
/// failed.
pub async fn accept_as_a(listener: &tokio::net::TcpListener) -> Option<Accepted> {
    accept_as_a_with(listener, Default::default()).await
}

/// [`accept_as_a`], saying `heartbeat` are its heartbeat settings (the
/// dialer's must fit them).
pub async fn accept_as_a_with(
    listener: &tokio::net::TcpListener,
    heartbeat: runtime::transport::handshake::Heartbeat,
) -> Option<Accepted> {
    use runtime::transport::handshake::{self, HANDSHAKE_MAX_FRAME, Identity};
    use tokio::io::AsyncWriteExt;
    let (stream, addr) = listener.accept().await.ok()?;
    let (read, mut write) = stream.into_split();
    let mut reader = runtime::transport::frame::FrameReader::new(read, HANDSHAKE_MAX_FRAME);
    let me = Identity {
        heartbeat,
        ..identity_of_a()
    };
    let welcomed = handshake::accept(&mut reader, &mut write, &me, addr)
        .await
        .ok()?;
    write.write_all(&welcomed.welcome).await.ok()?;
    Some((reader, write))
}

/// [`raw_dial`], saying in the handshake it may have `max_in_flight` calls
/// in flight.
pub async fn raw_dial_saying(
    a: &Node,
    name: &str,
    role: runtime::transport::handshake::Role,
    max_in_flight: u32,
) -> (
    runtime::transport::frame::FrameReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    use runtime::transport::handshake::{self, Identity};
    let addr = a.local_addr().unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut reader = runtime::transport::frame::FrameReader::new(reader, 1 << 20);
    let me = Identity {
        node: name.into(),
        role,
        incarnation: 9,
        max_in_flight,
        ..identity_of_a()
    };
    handshake::dial(&mut reader, &mut writer, &me, Some("a"), addr)
        .await
        .unwrap();
    (reader, writer)
}

/// The next frame from a raw node connection that is not a heartbeat.
pub async fn next_frame<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut runtime::transport::frame::FrameReader<R>,
) -> runtime::transport::frame::Frame {
    use runtime::transport::frame::Frame;
    loop {
        let body = reader.next().await.unwrap().expect("the connection ended");
        match Frame::parse(body).unwrap() {
            Frame::Heartbeat => continue,
            frame => return frame,
        }
    }
}

/// One call to `toy`, answered: the connection to its node is up.
pub async fn warm_up(toy: &ServiceRef<Toy>) {
    let echo = Echo {
        text: "warm up".into(),
        local_only: None,
    };
    toy.call(echo).await.unwrap().unwrap();
}
