//! A node: the modules placed here, refs to every other, and the listener.
//!
//! Starting a node from a [`Plan`]:
//!
//! 1. make a `Peer` for every other node that listens (nothing is dialed
//!    yet: connections are made by the first call);
//! 2. put a remote [`ServiceRef`] to every module placed elsewhere into the
//!    registry;
//! 3. start this node's modules in dependency order, each given refs to
//!    what it calls, and register their local refs and dispatchers;
//! 4. listen, if the node has an address.
//!
//! Nodes may start in any order. Dropping a [`Node`] (or [`Node::shutdown`])
//! stops its listener and connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::catalogue::{Catalogue, LocalRefs};
use crate::config::{ConfigError, Plan};
use crate::dispatch::DispatchTable;
use crate::fingerprint::SchemaError;
use crate::module::{StartContext, StartError};
use crate::registry::ServiceRegistry;
use crate::service::Service;
use crate::service_ref::ServiceRef;
use crate::transport::handshake::{Identity, Role, Secret, SecretError};
use crate::transport::peer::Peer;
use crate::transport::replicas::Replicas;
use crate::transport::{Settings, Shared, Transport, listener};

/// A node did not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The plan has no such node, or another config problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The cluster secret is missing or unusable.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The API could not be fingerprinted (a message type the codec cannot carry).
    #[error(transparent)]
    Fingerprint(#[from] SchemaError),
    /// A module refused to start.
    #[error("module {module} did not start: {error}")]
    Start {
        /// The module.
        module: String,
        /// Why.
        error: StartError,
    },
    /// TLS is configured, but its files could not be used.
    #[error(transparent)]
    Tls(#[from] crate::transport::tls::TlsError),
    /// The listen address could not be bound.
    #[error(
        "node '{node}' cannot listen on {addr} ([nodes.{node}] listen): {detail}; if another \
         process has it (another boutique run --node {node}?), stop that one, or give this \
         one another address: --set nodes.{node}.listen=HOST:PORT"
    )]
    Listen {
        /// The node.
        node: String,
        /// The address.
        addr: String,
        /// The OS error.
        detail: String,
    },
    /// No ref to that service can be made from this node.
    #[error("service {service} cannot be reached from here: {why}")]
    Unreachable {
        /// The service.
        service: String,
        /// Why not.
        why: String,
    },
}

/// A running node.
pub struct Node {
    name: String,
    modules: Vec<&'static str>,
    local_addr: Option<SocketAddr>,
    registry: ServiceRegistry,
    transport: Option<Arc<Transport>>,
    shutdown: watch::Sender<bool>,
    /// Made true when the node closes (the end of a graceful shutdown):
    /// supervisors restart modules until then.
    closed: watch::Sender<bool>,
    /// Work outside the modules' actors a graceful shutdown waits for.
    holds: Arc<crate::shutdown_hold::ShutdownHolds>,
    counters: Arc<crate::stats::Counters>,
    /// Where the admin endpoints are to be served, from the config.
    admin: Option<SocketAddr>,
    /// The remote modules this node's modules call.
    needs: Vec<crate::health::Need>,
    metrics: prometheus_client::registry::Registry,
    /// When its main thread last ran (see `pulse`); none for a client.
    pulse: Option<Arc<crate::pulse::Pulse>>,
}

impl Node {
    /// Starts node `name` of `plan`, listening on its configured address,
    /// with the secret from the environment variable the config names.
    /// Must run inside an actix system.
    pub async fn start(plan: &Plan, name: &str, catalogue: &Catalogue) -> Result<Node, NodeError> {
        Node::builder(plan, catalogue).start(name).await
    }

    /// A client of the deployment in `plan`: runs no module, listens nowhere,
    /// and reaches every module on a listening node remotely.
    pub async fn client(plan: &Plan, catalogue: &Catalogue) -> Result<Node, NodeError> {
        Node::builder(plan, catalogue).client().await
    }

    /// A node with options: a listener bound beforehand, a secret given
    /// directly rather than read from the environment.
    pub fn builder<'a>(plan: &'a Plan, catalogue: &'a Catalogue) -> NodeBuilder<'a> {
        NodeBuilder {
            plan,
            catalogue,
            listener: None,
            secret: None,
        }
    }

    /// Where the config says this node serves its admin endpoints.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// Whether this node can do its work now: every module its modules
    /// call on other nodes has a replica it is connected to. Asking starts
    /// dialing the peers not called yet.
    pub fn readiness(&self) -> crate::health::Readiness {
        let mut readiness = crate::health::check(&self.needs);
        // A module of its own whose actor died and is not yet running again
        // (a restart that keeps failing, its database gone): every call to
        // it fails here.
        for module in self.counters.modules_down() {
            readiness.problems.insert(
                0,
                format!(
                    "module '{module}' is down: its actor died, and it is not running again yet"
                ),
            );
        }
        let silent = self.main_thread_silent_for();
        if silent >= crate::pulse::UNREADY_AFTER {
            readiness.problems.insert(0, stalled(silent));
        }
        // From the moment it is told to stop: it refuses new calls, and the
        // frontend's server stops taking requests.
        if *self.shutdown.borrow() {
            readiness
                .problems
                .insert(0, format!("node '{}' is shutting down", self.name));
        }
        readiness
    }

    /// How long the node's main thread has not run for (zero for a
    /// client, which has none).
    fn main_thread_silent_for(&self) -> Duration {
        self.pulse
            .as_ref()
            .map_or(Duration::ZERO, |pulse| pulse.silent_for())
    }

    /// Whether the node still runs: `Err` saying why not when its main
    /// thread, where its modules and connections run, has been stuck for
    /// [`UNHEALTHY_AFTER`](crate::pulse::UNHEALTHY_AFTER) (a handler
    /// blocking it, a deadlock). Served as `/healthz`.
    pub fn health(&self) -> Result<(), String> {
        let silent = self.main_thread_silent_for();
        if silent >= crate::pulse::UNHEALTHY_AFTER {
            return Err(stalled(silent));
        }
        Ok(())
    }

    /// This node's metrics in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        crate::metrics::encode(&self.metrics).unwrap_or_else(|error| {
            tracing::error!(node = %self.name, %error, "the metrics could not be encoded");
            String::new()
        })
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The modules running here, in start order.
    pub fn modules(&self) -> &[&'static str] {
        &self.modules
    }

    /// The address the node listens on, if it listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The refs this node hands out.
    pub fn registry(&self) -> &ServiceRegistry {
        &self.registry
    }

    /// A ref to service `S`, local or remote.
    pub fn service<S: Service>(&self) -> Result<ServiceRef<S>, NodeError> {
        self.registry
            .get::<S>()
            .ok_or_else(|| NodeError::Unreachable {
                service: S::NAME.to_owned(),
                why: "it runs on a node that does not listen, or is not in this binary".to_owned(),
            })
    }

    /// True if this node's connection to node `peer` is up now.
    pub fn is_connected(&self, peer: &str) -> bool {
        self.transport
            .as_ref()
            .and_then(|t| t.peers.get(peer))
            .is_some_and(|p| p.is_up())
    }

    /// Waits until the connection to node `peer` is up, at most `limit`.
    /// Returns whether it is.
    pub async fn wait_connected(&self, peer: &str, limit: Duration) -> bool {
        let Some(peer) = self.transport.as_ref().and_then(|t| t.peers.get(peer)) else {
            return false;
        };
        peer.wait_until_up(limit).await
    }

    /// How many connections to node `peer` this node has put in use since it
    /// started (one, while nothing fails: calls both ways share it).
    pub fn connections_to(&self, peer: &str) -> u64 {
        self.transport
            .as_ref()
            .and_then(|t| t.peers.get(peer))
            .map_or(0, |p| p.connections_installed())
    }

    /// What this node has counted since it started.
    pub fn stats(&self) -> crate::stats::NodeStats {
        self.counters.snapshot()
    }

    /// Fault injection on this node's connections, for failure tests;
    /// `None` for a node without a transport (a single node that does not
    /// listen).
    pub fn faults(&self) -> Option<crate::transport::fault::FaultInjector> {
        let transport = self.transport.as_ref()?;
        Some(crate::transport::fault::FaultInjector {
            shared: Arc::clone(&transport.shared),
        })
    }

    /// Shuts down gracefully, as on SIGTERM: stops listening and refuses
    /// new calls from other nodes (as *not delivered*, so callers may go
    /// elsewhere), tells every peer it is leaving (they stop sending to it
    /// at once, instead of waiting for heartbeats to fail), tells modules
    /// to stop ([`StartContext::stopped`]) and waits for the work they hold
    /// the shutdown for (a web server's requests in flight:
    /// [`StartContext::hold_shutdown`]), lets the calls it is serving
    /// finish, all within `grace`, then closes every connection (until
    /// then it dials peers as before: that work may need a connection
    /// lost meanwhile back). Returns
    /// how many calls were still running, and holds still held, when the
    /// grace ran out.
    ///
    /// [`StartContext::stopped`]: crate::StartContext::stopped
    /// [`StartContext::hold_shutdown`]: crate::StartContext::hold_shutdown
    pub async fn shutdown_gracefully(&self, grace: Duration) -> usize {
        let deadline = crate::deadline::instant_after(grace);
        let connections = match &self.transport {
            Some(transport) => {
                let shared = &transport.shared;
                shared
                    .draining
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                let connections = shared.live_connections();
                for connection in &connections {
                    connection.send_leaving();
                }
                connections
            }
            None => Vec::new(),
        };
        let _ = self.shutdown.send(true);
        // First the work outside the actors: it may still call modules,
        // here and on other nodes, over the connections kept open till the
        // end.
        if self.holds.held() > 0 {
            tracing::info!(node = %self.name, holds = self.holds.held(), "waiting for modules to finish their work (a hold each: the web server, each checkout in progress)");
        }
        let Some(transport) = &self.transport else {
            let held = self.holds.released_by(deadline).await;
            if held > 0 {
                tracing::warn!(node = %self.name, holds = held, "grace period over: stopping with modules' work unfinished");
            }
            self.closed.send_replace(true);
            return held;
        };
        let shared = &transport.shared;
        let serving = || connections.iter().map(|c| c.serving()).sum::<usize>();
        let held = loop {
            let held = self.holds.released_by(deadline).await;
            loop {
                let drained = shared.drained.notified();
                tokio::pin!(drained);
                drained.as_mut().enable();
                let left = serving();
                if left == 0 {
                    break;
                }
                tracing::info!(node = %self.name, calls = left, "waiting for calls in flight to finish");
                if tokio::time::timeout_at(deadline, drained).await.is_err() {
                    break;
                }
            }
            // A call served meanwhile may have taken a hold once its actor
            // ran it (checkout takes one per order), after the holds were
            // looked at: its caller may have given up (no longer served),
            // but its work goes on. Looked at again, within the grace.
            let now_held = self.holds.held();
            if now_held == 0 || held > 0 || tokio::time::Instant::now() >= deadline {
                break now_held;
            }
        };
        if held > 0 {
            tracing::warn!(node = %self.name, holds = held, "grace period over: stopping with modules' work unfinished");
        }
        let unfinished = serving();
        if unfinished > 0 {
            tracing::warn!(node = %self.name, calls = unfinished, "grace period over: closing with calls still running");
        }
        // Calls a peer made before it heard that this node is leaving may
        // still be on their way: each is refused as it arrives, and a peer
        // says when the last has been sent. Closing before that would
        // leave them with an unknown outcome, though none of them ran. The
        // connections are listed again: one dialed during the grace (for
        // the work it waited for) may carry such calls too.
        let connections = shared.live_connections();
        for connection in &connections {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !connection.await_no_more_calls(left).await && !connection.is_closed() {
                tracing::warn!(
                    node = %self.name,
                    peer = %connection.peer().node,
                    "grace period over before the peer confirmed it sends no more calls"
                );
            }
        }
        // The last replies are on their way out: let them go first, all
        // within what is left of the grace (at least 100 ms).
        let flushed_by = deadline.max(tokio::time::Instant::now() + Duration::from_millis(100));
        for connection in &connections {
            let left = flushed_by.saturating_duration_since(tokio::time::Instant::now());
            connection.flush(left).await;
        }
        self.closed.send_replace(true);
        shared.close_all("this node has shut down");
        unfinished + held
    }

    /// Stops listening and closes every connection at once; calls in
    /// flight on them fail with *outcome unknown*.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        self.closed.send_replace(true);
        if let Some(transport) = &self.transport {
            transport.shared.close_all("this node is shutting down");
        }
    }
}

/// Options for starting a [`Node`]; see [`Node::builder`].
pub struct NodeBuilder<'a> {
    plan: &'a Plan,
    catalogue: &'a Catalogue,
    listener: Option<std::net::TcpListener>,
    secret: Option<Arc<Secret>>,
}

impl NodeBuilder<'_> {
    /// Listen on this socket instead of the configured address (tests bind
    /// port 0 first, so every node's address is known before any starts).
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Use this cluster secret instead of reading `[cluster] secret_env`.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(Arc::new(secret));
        self
    }

    /// Starts node `name` of the plan.
    pub async fn start(self, name: &str) -> Result<Node, NodeError> {
        start(self, Role::Node, name).await
    }

    /// Starts a client: no modules, no listener, every module remote.
    pub async fn client(self) -> Result<Node, NodeError> {
        let name = format!("client-{}", std::process::id());
        start(self, Role::Client, &name).await
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn start(options: NodeBuilder<'_>, role: Role, name: &str) -> Result<Node, NodeError> {
    let NodeBuilder {
        plan,
        catalogue,
        listener,
        secret,
    } = options;
    let placed = match role {
        Role::Node => plan.node(name)?.clone(),
        Role::Client => crate::config::NodePlan {
            name: name.to_owned(),
            listen: None,
            modules: Vec::new(),
            admin: None,
            address: None,
        },
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (closed, _) = watch::channel(false);
    // A client may run on any tokio runtime (no actix system, no main
    // thread of modules): it has no pulse.
    let pulse = matches!(role, Role::Node).then(crate::pulse::Pulse::start);
    let holds = Arc::new(crate::shutdown_hold::ShutdownHolds::default());
    let counters = Arc::new(crate::stats::Counters::default());
    let call_timeout = Duration::from_millis(plan.runtime.call_timeout_ms);
    // Every method this build knows, by name; the modules started here
    // are added as they start.
    let mut table = DispatchTable::new();
    for entry in catalogue.modules() {
        for (message, method) in entry.methods() {
            table.know(method, entry.name(), message);
        }
    }

    let listens = listener.is_some() || placed.listen.is_some();
    let transport = if role == Role::Client || plan.is_split() || listens {
        let secret = match secret {
            Some(secret) => secret,
            None => {
                let var = plan.secret_env.as_deref().ok_or_else(|| {
                    ConfigError::Invalid(vec![
                        "talking to other nodes needs a cluster secret, but [cluster] secret_env is not set"
                            .to_owned(),
                    ])
                })?;
                let read = Secret::from_env(var).map_err(|error| match error {
                    SecretError::Missing { var } if role == Role::Client => {
                        SecretError::MissingForClient { var }
                    }
                    other => other,
                });
                Arc::new(read?)
            }
        };
        let identity = Identity {
            cluster: plan.cluster.clone(),
            node: name.to_owned(),
            role,
            incarnation: rand::random(),
            fingerprint: catalogue.fingerprint()?,
            // Validated by the plan: 1 to MAX_IN_FLIGHT_PER_PEER (65,536).
            max_in_flight: u32::try_from(plan.runtime.max_in_flight_per_peer).unwrap_or(u32::MAX),
            // Validated by the plan: MIN_FRAME_BYTES to MAX_DECODE_BYTES (16 MiB).
            max_frame: u32::try_from(plan.runtime.max_frame_bytes).unwrap_or(u32::MAX),
            // Validated by the plan: at most a day, in ms.
            heartbeat: crate::transport::handshake::Heartbeat {
                interval_ms: u32::try_from(plan.runtime.heartbeat_interval_ms).unwrap_or(u32::MAX),
                failure_timeout_ms: u32::try_from(plan.runtime.failure_timeout_ms)
                    .unwrap_or(u32::MAX),
            },
            secret,
        };
        let tls = match &plan.tls {
            None => None,
            Some(config) => {
                let certificate = match role {
                    Role::Node => name,
                    Role::Client => crate::transport::tls::CLIENT_CERT_NAME,
                };
                Some(crate::transport::tls::Tls::load(config, certificate)?)
            }
        };
        let shared = Arc::new(Shared::new(
            identity,
            Settings::from_config(&plan.runtime),
            crate::transport::Stops {
                shutdown: shutdown_rx,
                closed: closed.subscribe(),
            },
            Arc::clone(&counters),
            crate::transport::access::Access::from_plan(plan, catalogue),
            tls,
            table.clone(),
        ));
        let peers = plan
            .nodes()
            .iter()
            .filter(|node| node.name != name)
            .map(|node| {
                // A node on port 0 here cannot be dialled, but may dial us.
                (
                    node.name.clone(),
                    Peer::new(&node.name, node.dial_address(), Arc::clone(&shared)),
                )
            })
            .collect();
        Some(Arc::new(Transport { shared, peers }))
    } else {
        None
    };

    let mut metrics = crate::metrics::registry(name);
    let mut registry =
        ServiceRegistry::measured_by(crate::call_metrics::CallMetrics::new(&mut metrics));
    let http_metrics = crate::http_metrics::HttpMetrics::new(&mut metrics);
    for entry in catalogue.modules() {
        if placed.modules.contains(&entry.name()) {
            continue;
        }
        // Every node that runs it and can be dialled: one, or a replica each.
        let peers: Vec<Arc<Peer>> = plan
            .nodes_of(entry.name())
            .into_iter()
            .filter_map(|host| transport.as_ref()?.peers.get(&host.name))
            .filter(|peer| peer.has_address())
            .cloned()
            .collect();
        (entry.remote)(
            peers,
            plan.routing(entry.name()),
            call_timeout,
            &mut registry,
        );
    }
    let serialized = plan
        .runtime
        .serialize_local_calls
        .then_some(plan.runtime.max_frame_bytes);
    for module in &placed.modules {
        let Some(entry) = catalogue.entry(module) else {
            continue;
        };
        let ctx = StartContext::new(
            name,
            entry.dependencies().to_vec(),
            registry.clone(),
            &plan.runtime.data_dir,
        )
        .for_module(entry.name())
        .with_replicas(plan.nodes_of(module).len())
        .with_stop_signal(shutdown.subscribe())
        .with_closed_signal(closed.subscribe())
        .with_shutdown_holds(Arc::clone(&holds))
        .with_counters(Arc::clone(&counters))
        .with_http_metrics(http_metrics.clone());
        let started = (entry.start)(plan.module_config(module), ctx)
            .await
            .map_err(|error| NodeError::Start {
                module: (*module).to_owned(),
                error,
            })?;
        // Its replicas on other nodes, which can be dialled.
        let others: Vec<Arc<Peer>> = plan
            .nodes_of(module)
            .into_iter()
            .filter(|host| host.name != name)
            .filter_map(|host| transport.as_ref()?.peers.get(&host.name))
            .filter(|peer| peer.has_address())
            .cloned()
            .collect();
        let local = LocalRefs {
            serialized,
            timeout: call_timeout,
            others: (!others.is_empty())
                .then(|| Arc::new(Replicas::new(others, plan.routing(module)))),
        };
        started(&mut table, &mut registry, local);
        tracing::info!(node = name, module, "module started");
    }

    let mut local_addr = None;
    if let Some(transport) = &transport {
        transport.shared.set_table(table);
        let bound = match (listener, placed.listen) {
            (Some(listener), _) => Some(bind_std(name, listener)?),
            (None, Some(addr)) => {
                Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|e| NodeError::Listen {
                            node: name.to_owned(),
                            addr: addr.to_string(),
                            detail: e.to_string(),
                        })?,
                )
            }
            (None, None) => None,
        };
        if let Some(bound) = bound {
            local_addr = bound.local_addr().ok();
            transport
                .shared
                .spawn(listener::serve(bound, Arc::clone(transport)));
        }
    }
    let mut needs = Vec::new();
    for module in &placed.modules {
        let Some(entry) = catalogue.entry(module) else {
            continue;
        };
        for callee in entry.dependencies() {
            if placed.modules.contains(callee) {
                continue;
            }
            // The replicas calls can reach: those with an address, as the
            // module's ref has them (one on port 0 may be connected, having
            // dialled us, but no call is sent to it).
            let peers = plan
                .nodes_of(callee)
                .into_iter()
                .filter_map(|host| transport.as_ref()?.peers.get(&host.name))
                .filter(|peer| peer.has_address())
                .cloned()
                .collect();
            needs.push(crate::health::Need {
                caller: entry.name(),
                callee,
                peers,
            });
        }
    }
    metrics.register_collector(Box::new(crate::metrics::NodeCollector {
        node: name.to_owned(),
        counters: Arc::clone(&counters),
        peers: transport
            .as_ref()
            .map(|t| {
                t.peers
                    .iter()
                    .map(|(name, peer)| (name.clone(), Arc::clone(peer)))
                    .collect()
            })
            .unwrap_or_default(),
        traffic: transport.as_ref().map(|t| Arc::clone(&t.shared)),
    }));
    Ok(Node {
        pulse,
        admin: placed.admin,
        needs,
        metrics,
        name: name.to_owned(),
        modules: placed.modules.clone(),
        local_addr,
        registry,
        transport,
        shutdown,
        closed,
        holds,
        counters,
    })
}

/// What a main thread silent for `silent` means, in words.
fn stalled(silent: Duration) -> String {
    format!(
        "the node's main thread, where its modules and connections run, has not run for {} ms \
         (a handler blocking it?)",
        silent.as_millis()
    )
}

fn bind_std(node: &str, listener: std::net::TcpListener) -> Result<TcpListener, NodeError> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".to_owned());
    let listen_error = |e: std::io::Error| NodeError::Listen {
        node: node.to_owned(),
        addr: addr.clone(),
        detail: e.to_string(),
    };
    listener.set_nonblocking(true).map_err(listen_error)?;
    TcpListener::from_std(listener).map_err(listen_error)
}
