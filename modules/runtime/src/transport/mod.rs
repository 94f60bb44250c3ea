//! The transport: what carries calls between nodes.
//!
//! - [`frame`]: length-prefixed frames, bounded before they are read;
//! - [`handshake`]: version, cluster, incarnation, API fingerprint, and
//!   mutual HMAC authentication, before any call;
//! - `connection`: one multiplexed connection, calls in flight by call id;
//! - `liveness`: heartbeats, and declaring a silent peer unreachable;
//! - `peer`: lazy dialing, reconnect with backoff, one connection per pair;
//! - `replicas`: choosing among a module's replicas, and failing over;
//! - `listener`: the accept loop;
//! - `admission`: how many inbound connections may be in their handshake;
//! - [`fault`]: stalls, delays and cuts on demand, for failure tests;
//! - [`tls`]: optional TLS with mutual authentication, under all of it.
//!
//! Semantics: at most once, FIFO per connection, no silent retries (the
//! one retry, of a call its message declares idempotent to another
//! replica, is the caller's choice in its API: see `replicas`). Every
//! failure is reported to the caller as a [`CallError`](crate::CallError)
//! that says whether the call may have run.

pub mod address;
pub mod fault;
pub mod frame;
pub mod handshake;
pub mod tls;

pub(crate) mod access;
pub(crate) mod admission;
pub(crate) mod connection;
pub(crate) mod listener;
pub(crate) mod liveness;
pub(crate) mod peer;
pub(crate) mod replicas;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::RuntimeConfig;
use crate::dispatch::DispatchTable;
use crate::service::MethodId;
use connection::Connection;
use handshake::Identity;
use peer::Peer;

/// Spawns a task on this thread's arbiter (for a node started outside one,
/// see [`Shared::spawn`]). On an actix arbiter's thread it joins the
/// arbiter's local task set, beside the actors it delivers to, so a call
/// moves between reader, actor and writer without crossing scheduler queues
/// (which saved about a fifth of a remote round trip); anywhere else it is
/// an ordinary tokio task.
fn spawn_here<F>(task: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    match actix_rt::Arbiter::try_current() {
        // `spawn` hands the task to the arbiter's own loop, so this works
        // from any task on the thread, in its local set or not.
        Some(arbiter) => {
            if !arbiter.spawn(task) {
                tracing::error!("the arbiter has stopped; a transport task was not started");
            }
        }
        None => {
            tokio::spawn(task);
        }
    }
}

/// The reading half of a node connection's stream (TCP, or TLS over it).
pub(crate) type ReadHalf = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
/// The writing half.
pub(crate) type WriteHalf = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// Splits a plain TCP stream into boxed halves.
pub(crate) fn split_plain(stream: tokio::net::TcpStream) -> (ReadHalf, WriteHalf) {
    let (read, write) = stream.into_split();
    (Box::new(read), Box::new(write))
}

/// Transport timing and limits, from [`RuntimeConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    pub max_frame: usize,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub heartbeat_interval: Duration,
    pub failure_timeout: Duration,
    pub max_in_flight: usize,
}

impl Settings {
    pub(crate) fn from_config(config: &RuntimeConfig) -> Self {
        Settings {
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
            handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
            max_frame: config.max_frame_bytes,
            reconnect_min: Duration::from_millis(config.reconnect_min_ms),
            reconnect_max: Duration::from_millis(config.reconnect_max_ms),
            heartbeat_interval: Duration::from_millis(config.heartbeat_interval_ms),
            failure_timeout: Duration::from_millis(config.failure_timeout_ms),
            max_in_flight: config.max_in_flight_per_peer,
        }
    }
}

/// The node's signals that stop its transport.
pub(crate) struct Stops {
    /// True from the start of a shutdown, graceful or not: the listener
    /// stops accepting.
    pub shutdown: watch::Receiver<bool>,
    /// True once the node has closed (the end of a graceful shutdown, or
    /// at once): connectors stop dialing. Until then, the work a graceful
    /// shutdown waits for may still need a lost connection back.
    pub closed: watch::Receiver<bool>,
}

/// What every connection of a node shares.
pub(crate) struct Shared {
    pub identity: Identity,
    pub settings: Settings,
    /// True from the start of a shutdown (see [`Stops`]).
    pub shutdown: watch::Receiver<bool>,
    /// True once the node has closed (see [`Stops`]).
    pub closed: watch::Receiver<bool>,
    pub(crate) faults: fault::Faults,
    pub(crate) counters: Arc<crate::stats::Counters>,
    /// Who may call whom.
    pub(crate) access: access::Access,
    /// TLS, if the deployment uses it.
    pub(crate) tls: Option<tls::Tls>,
    /// Set when the node starts shutting down: new calls are refused.
    pub(crate) draining: std::sync::atomic::AtomicBool,
    /// Notified when a call served here finishes while draining.
    pub(crate) drained: tokio::sync::Notify,
    table: OnceLock<DispatchTable>,
    /// Every method this build knows, none hosted: to name the service of
    /// a call refused before the table is set.
    known: DispatchTable,
    connections: Mutex<Vec<Weak<Connection>>>,
    /// Set by [`Shared::close_all`], under the `connections` lock: a
    /// connection made after it (a dial or an admission that was under way)
    /// closes itself as it starts (see `read_loop`).
    all_closed: AtomicBool,
    /// The arbiter the node started on, where its transport tasks run.
    home: Option<actix_rt::ArbiterHandle>,
    /// The lines of handshakes refused to whoever dialed in (see
    /// `listener`): a stranger that loops could fill the log.
    pub(crate) refusals_logged: crate::log_limit::BurstLimit,
}

impl Shared {
    pub(crate) fn new(
        identity: Identity,
        settings: Settings,
        stops: Stops,
        counters: Arc<crate::stats::Counters>,
        access: access::Access,
        tls: Option<tls::Tls>,
        known: DispatchTable,
    ) -> Self {
        Shared {
            known,
            identity,
            settings,
            shutdown: stops.shutdown,
            closed: stops.closed,
            faults: fault::Faults::default(),
            counters,
            access,
            tls,
            draining: std::sync::atomic::AtomicBool::new(false),
            drained: tokio::sync::Notify::new(),
            table: OnceLock::new(),
            connections: Mutex::new(Vec::new()),
            all_closed: AtomicBool::new(false),
            home: actix_rt::Arbiter::try_current(),
            refusals_logged: crate::log_limit::BurstLimit::default(),
        }
    }

    /// Runs a transport task (a connection's reader or writer, a
    /// connector, the listener) on the arbiter the node started on, which
    /// lives as long as the node. Not on whichever thread asked: a module's
    /// call can come from a thread that stops before the node does (an HTTP
    /// worker of the frontend, when its server stops or a worker is
    /// replaced), and a connection whose tasks went with it would stay
    /// open in name with nobody reading or writing it.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match &self.home {
            Some(home) => {
                if !home.spawn(task) {
                    tracing::error!(
                        node = %self.identity.node,
                        "the node's arbiter has stopped; a transport task was not started"
                    );
                }
            }
            None => spawn_here(task),
        }
    }

    /// Sets the services this node runs, once every module has started;
    /// calls that arrive earlier (on a connection a module starting early
    /// made) are refused as not delivered: see [`Shared::started_table`].
    pub(crate) fn set_table(&self, table: DispatchTable) {
        let _ = self.table.set(table);
    }

    /// True once [`Shared::close_all`] has run.
    pub(crate) fn all_closed(&self) -> bool {
        self.all_closed.load(Ordering::SeqCst)
    }

    /// Remembers a connection, to close it when the node shuts down.
    pub(crate) fn track(&self, connection: &Arc<Connection>) {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections.retain(|c| c.upgrade().is_some_and(|c| !c.is_closed()));
        connections.push(Arc::downgrade(connection));
    }

    /// Closes every connection of the node, and any made after (the node
    /// is done with them).
    pub(crate) fn close_all(&self, reason: &str) {
        let connections = {
            let mut connections = self
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.all_closed.store(true, Ordering::SeqCst);
            std::mem::take(&mut *connections)
        };
        for connection in connections.iter().filter_map(Weak::upgrade) {
            connection.close(reason);
        }
    }

    /// The live connections.
    pub(crate) fn live_connections(&self) -> Vec<Arc<Connection>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|c| !c.is_closed())
            .collect()
    }

    /// Closes this node's connections to node `peer`.
    pub(crate) fn close_peer(&self, peer: &str, reason: &str) {
        let connections: Vec<Arc<Connection>> = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|c| &*c.peer().node == peer)
            .collect();
        for connection in connections {
            connection.close(reason);
        }
    }

    /// The services this node runs, once it has started them all; `None`
    /// while it starts.
    pub(crate) fn started_table(&self) -> Option<&DispatchTable> {
        self.table.get()
    }

    /// The service of `method`, if this build knows it.
    pub(crate) fn service_of(&self, method: MethodId) -> Option<&'static str> {
        self.known.names(method).map(|(service, _)| service)
    }
}

/// A node's transport: its identity, its peers, and the listener's state.
pub(crate) struct Transport {
    pub shared: Arc<Shared>,
    pub peers: HashMap<String, Arc<Peer>>,
}
