//! Modules: how a service's actor is configured and started.
//!
//! A module crate exposes its `api` (the service and its messages) and one
//! type implementing [`Module`]. The runtime reads the module's own config
//! section `[modules.<name>]` into its typed [`Module::Config`], hands it a
//! [`StartContext`] from which it takes the [`ServiceRef`]s it needs, and
//! gets back the service's local endpoints.
//!
//! ```ignore
//! // modules/recommendation/src/actor.rs, shortened (`check` left out).
//! use runtime::{Module, Service as _, StartContext, StartError};
//!
//! pub struct RecommendationModule;
//!
//! impl Module for RecommendationModule {
//!     type Service = Recommendation;
//!     type Config = RecommendationConfig; // `[modules.recommendation]`
//!     fn dependencies() -> Vec<&'static str> { vec![Catalog::NAME] }
//!     async fn start(
//!         config: RecommendationConfig,
//!         ctx: StartContext,
//!     ) -> Result<Recommendation, StartError> {
//!         let actor = RecommendationActor {
//!             catalog: ctx.service::<Catalog>()?,
//!             max_results: config.max_results,
//!         };
//!         Ok(Recommendation::start(actor)) // an actor with `Context<Self>`
//!     }
//! }
//! ```
//!
//! A module that keeps data also says where ([`Module::storage`]): the
//! plan, `boutique call` and `deploy kube` rely on it.
//!
//! `start` is async so that a module can open its database and migrate it
//! before it says it is ready; a node starts its modules one after another.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::registry::ServiceRegistry;
use crate::service::Service;
use crate::service_ref::ServiceRef;

/// A module: a service's actor, its config and its dependencies.
pub trait Module: 'static {
    /// The service this module implements.
    type Service: Service;
    /// The module's config section, `[modules.<name>]`. Absent sections use
    /// `Default` (and a section that gives some keys needs
    /// `#[serde(default)]` for the others). A key no field takes is refused
    /// when the config is read, whatever the type says; the shop's modules
    /// also say `#[serde(deny_unknown_fields)]`, for other readers of it.
    type Config: DeserializeOwned + Default + Send + 'static;

    /// The names of the services this module calls. Local ones are started
    /// first, and `boutique plan` reports those that cross nodes. Asking the
    /// [`StartContext`] for a service not listed here is an error.
    fn dependencies() -> Vec<&'static str> {
        Vec::new()
    }

    /// The addresses the module listens on itself, given its config (the
    /// frontend's web server, say); none by default. `boutique plan`
    /// refuses a deployment in which two listeners share an address, or
    /// a port on one node.
    fn listen_addresses(_config: &Self::Config) -> Vec<SocketAddr> {
        Vec::new()
    }

    /// Checks the config's values beyond their types (an address that is
    /// none, a count out of range), without starting anything: `boutique
    /// plan` reports what this says, with the other problems of a config,
    /// and `start` is never given a config it refuses. Nothing to check by
    /// default.
    fn check(_config: &Self::Config) -> Result<(), ConfigRefused> {
        Ok(())
    }

    /// Where the module keeps what it must remember between calls, given
    /// its config; nothing by default, so a module with a database must
    /// say so: `boutique plan` warns when a module that keeps it on each
    /// node is placed on several nodes, `boutique call` refuses to start
    /// a second copy on a running node's data directory, and `deploy kube`
    /// warns of data kept in a pod's emptyDir. [`Storage::database`] says
    /// it for a `database` setting.
    fn storage(_config: &Self::Config) -> Storage {
        Storage::Nothing
    }

    /// The files the module reads as it starts, given its config, each
    /// with the setting that names it (`("products_file", path)`); none
    /// by default. `deploy kube` ships each to the pods that run the
    /// module (a pod has nothing of the machine the manifests were made
    /// on), and points the setting at it there.
    fn data_files(_config: &Self::Config) -> Vec<(&'static str, PathBuf)> {
        Vec::new()
    }

    /// Starts the module's actor on the current arbiter (with the
    /// service's `start` or `create`, which the [`service!`](crate::service!)
    /// macro generates) and returns its endpoints.
    ///
    /// It runs again, with the same config, each time the actor dies (a
    /// handler panicked: see `supervise`), while what the first run set up
    /// outside the actor may still be there: whatever it takes hold of
    /// (a port, a file lock) must be released when its actor stops, or
    /// taken again without fail. The frontend binds its web server's port
    /// here; its one handler cannot panic, so it is never run twice (a
    /// restart would find the port taken, and be tried again with backoff,
    /// the shop still served by the first server).
    fn start(
        config: Self::Config,
        ctx: StartContext,
    ) -> impl std::future::Future<Output = Result<Self::Service, StartError>>;
}

/// Where a module keeps its state, as the config check needs to know it
/// ([`Module::storage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// It keeps nothing between calls (or only what it can lose: caches).
    Nothing,
    /// On each node that runs it, in what this says (a SQLite file in the
    /// node's data directory, say): replicas on different machines do not
    /// see each other's writes.
    OnEachNode(String),
    /// In a store its replicas share (a PostgreSQL database, say).
    Shared,
}

impl Storage {
    /// The storage of a module `module` whose data is in the database at
    /// `url` (its `database` setting): SQLite, by default a file in each
    /// node's data directory, is kept on each node; PostgreSQL is shared.
    pub fn database(module: &str, url: Option<&str>) -> Storage {
        match url {
            None => Storage::OnEachNode(format!(
                "a SQLite file in each node's data directory ({module}.db)"
            )),
            Some(url) if url.starts_with("sqlite:") => {
                Storage::OnEachNode(format!("the SQLite file {url} on each node's machine"))
            }
            Some(_) => Storage::Shared,
        }
    }
}

/// The config of a module that has none: an empty section, or none at all.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// A config value a module refuses ([`Module::check`]), and why, in words
/// for whoever wrote the config: `max_lines must be at least 1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigRefused(pub String);

impl From<String> for ConfigRefused {
    fn from(why: String) -> ConfigRefused {
        ConfigRefused(why)
    }
}

impl From<&str> for ConfigRefused {
    fn from(why: &str) -> ConfigRefused {
        ConfigRefused(why.to_owned())
    }
}

impl From<ConfigRefused> for StartError {
    fn from(refused: ConfigRefused) -> StartError {
        StartError::Config(refused.0)
    }
}

/// Why a module did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The module's config section is invalid: the same config fails
    /// again. `boutique run` exits 78 for it, and `up` does not start such
    /// a node again (a restart after a panic still tries, with backoff).
    #[error("invalid config: {0}")]
    Config(String),
    /// The module asked for a service it does not list in `dependencies()`.
    #[error("asked for service {service}, which it does not declare in Module::dependencies()")]
    UndeclaredDependency {
        /// The service asked for.
        service: String,
    },
    /// A declared dependency cannot be reached from this node: it is not in
    /// the catalogue, or its node has no address to dial.
    #[error(
        "needs service {service}, which this node cannot reach \
         (the node that runs it must have a known listen address, not port 0)"
    )]
    MissingService {
        /// The service asked for.
        service: String,
    },
    /// Anything else (a database out of reach, a file that cannot be
    /// read): the module says what, and a later start may succeed.
    #[error("{0}")]
    Failed(String),
}

impl StartError {
    /// A start failure described in words.
    pub fn failed(detail: impl Into<String>) -> Self {
        StartError::Failed(detail.into())
    }
}

/// What a module may use while it starts.
#[derive(Clone)]
pub struct StartContext {
    node: String,
    dependencies: Vec<&'static str>,
    services: ServiceRegistry,
    data_dir: PathBuf,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// Made true when the node closes, at the end of a graceful shutdown.
    closed: Option<tokio::sync::watch::Receiver<bool>>,
    /// What the node's graceful shutdown waits for besides calls.
    holds: std::sync::Arc<crate::shutdown_hold::ShutdownHolds>,
    counters: std::sync::Arc<crate::stats::Counters>,
    /// The module this context starts (its refs call as it).
    module: Option<&'static str>,
    http_metrics: crate::http_metrics::HttpMetrics,
    /// How many nodes run this module.
    replicas: usize,
}

impl StartContext {
    /// A context for a module on `node` that declared `dependencies`, whose
    /// refs come from `services`, and whose files go under `data_dir`. The
    /// runtime makes these; tests of one module make one with fakes.
    pub fn new(
        node: impl Into<String>,
        dependencies: Vec<&'static str>,
        services: ServiceRegistry,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        StartContext {
            node: node.into(),
            dependencies,
            services,
            data_dir: data_dir.into(),
            stop: None,
            closed: None,
            holds: std::sync::Arc::default(),
            counters: std::sync::Arc::default(),
            module: None,
            http_metrics: crate::http_metrics::HttpMetrics::default(),
            replicas: 1,
        }
    }

    /// How many nodes run this module: 1 unless it is placed on several
    /// (replicas). A module that keeps what it stores in memory as well
    /// (a cache in front of its database) can trust that copy only when it
    /// is the one replica: with several, another may change the database
    /// behind its back.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// The same context, for a module that `replicas` nodes run.
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.max(1);
        self
    }

    /// Where to record the HTTP requests the module serves: the node's
    /// metrics (`/metrics` on its admin endpoint).
    pub fn http_metrics(&self) -> crate::http_metrics::HttpMetrics {
        self.http_metrics.clone()
    }

    /// The same context, recording HTTP requests into `metrics`.
    pub(crate) fn with_http_metrics(mut self, metrics: crate::http_metrics::HttpMetrics) -> Self {
        self.http_metrics = metrics;
        self
    }

    /// The same context, for module `name`: the refs it hands out say that
    /// `name` is calling (for `[access]`).
    pub(crate) fn for_module(mut self, name: &'static str) -> Self {
        self.module = Some(name);
        self
    }

    /// The same context, counting into `counters` (the node's).
    pub(crate) fn with_counters(
        mut self,
        counters: std::sync::Arc<crate::stats::Counters>,
    ) -> Self {
        self.counters = counters;
        self
    }

    /// The node's counters.
    pub(crate) fn counters(&self) -> std::sync::Arc<crate::stats::Counters> {
        std::sync::Arc::clone(&self.counters)
    }

    /// The same context, whose [`StartContext::stopped`] resolves once
    /// `stop` turns true or its sender is dropped (the node does this).
    pub fn with_stop_signal(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// The same context, told by `closed` when the node closes (after a
    /// graceful shutdown's grace, not at its start).
    pub(crate) fn with_closed_signal(mut self, closed: tokio::sync::watch::Receiver<bool>) -> Self {
        self.closed = Some(closed);
        self
    }

    /// True once the node has begun to stop.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| *stop.borrow())
    }

    /// Resolves when the node closes: at the end of a graceful shutdown,
    /// once the work it waited for is done (or its grace is over), or when
    /// the node is dropped. Until then a supervisor keeps its module
    /// running: work finishing during the grace may need it.
    pub(crate) fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let closed = self.closed.clone();
        let stopped = self.stopped();
        async move {
            match closed {
                Some(mut closed) => drop(closed.wait_for(|closed| *closed).await),
                None => stopped.await,
            }
        }
    }

    /// The same context, whose [`StartContext::hold_shutdown`] holds
    /// `holds` (the node's).
    pub(crate) fn with_shutdown_holds(
        mut self,
        holds: std::sync::Arc<crate::shutdown_hold::ShutdownHolds>,
    ) -> Self {
        self.holds = holds;
        self
    }

    /// Holds the node's graceful shutdown open until the hold is dropped
    /// (for at most the grace period): for a module that owns work outside
    /// its actor, like a web server's requests in flight, to finish it
    /// after [`StartContext::stopped`] and before the node closes its
    /// connections and exits. See [`crate::shutdown_hold`].
    pub fn hold_shutdown(&self) -> crate::ShutdownHold {
        crate::shutdown_hold::ShutdownHolds::hold(&self.holds)
    }

    /// What takes [`StartContext::hold_shutdown`]'s holds later, for work
    /// that starts after the module did, one piece at a time: a module
    /// keeps it and holds the shutdown for each piece. See
    /// [`crate::shutdown_hold`].
    pub fn shutdown_holder(&self) -> crate::ShutdownHolder {
        crate::ShutdownHolder::new(&self.holds)
    }

    /// Resolves when the node this module runs on shuts down (or is
    /// dropped). A module that owns something outside its actor, like a
    /// listening socket, closes it then. Without a node ([`start_alone`]),
    /// it never resolves.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let stop = self.stop.clone();
        async move {
            match stop {
                // Either outcome means stop: true was sent, or the node is gone.
                Some(mut stop) => drop(stop.wait_for(|stopping| *stopping).await),
                None => std::future::pending().await,
            }
        }
    }

    /// The name of the node this module starts on.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Where modules keep their files (`[runtime] data_dir`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A ref to service `S`, which must be one of the module's dependencies.
    pub fn service<S: Service>(&self) -> Result<ServiceRef<S>, StartError> {
        if !self.dependencies.contains(&S::NAME) {
            return Err(StartError::UndeclaredDependency {
                service: S::NAME.to_owned(),
            });
        }
        let service = self
            .services
            .get::<S>()
            .ok_or_else(|| StartError::MissingService {
                service: S::NAME.to_owned(),
            })?;
        Ok(match self.module {
            Some(module) => service.calling_as(module),
            None => service,
        })
    }
}

/// The largest data file a module reads, in bytes.
pub const MAX_DATA_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The text of a data file that a module's config names (`key = path`), or
/// `built_in` when the config names none. The error says which key and file.
/// It is a config error when the config names a file that is not there,
/// not readable by this user, not a regular file (a directory; a device
/// or a pipe, which was read until memory ran out, or waited on for
/// ever), over [`MAX_DATA_FILE_BYTES`], under a file, a name too long,
/// or not text: starting again will not find it (`up` does not start such
/// a node again). Any other failure to read (a disk's or a network file
/// system's) may pass, and is [`StartError::Failed`].
pub fn data_file(
    key: &str,
    path: Option<&std::path::Path>,
    built_in: &'static str,
) -> Result<std::borrow::Cow<'static, str>, StartError> {
    match path {
        None => Ok(std::borrow::Cow::Borrowed(built_in)),
        Some(path) => read_data_file(key, path).map(std::borrow::Cow::Owned),
    }
}

/// [`data_file`]'s read of `path`.
fn read_data_file(key: &str, path: &std::path::Path) -> Result<String, StartError> {
    use std::io::Read as _;
    let refused =
        |why: String| StartError::Config(format!("cannot read {key} {}: {why}", path.display()));
    let failed = |e: std::io::Error| {
        let why = format!("cannot read {key} {}: {e}", path.display());
        match e.kind() {
            std::io::ErrorKind::NotFound
            | std::io::ErrorKind::PermissionDenied
            | std::io::ErrorKind::IsADirectory
            | std::io::ErrorKind::NotADirectory
            | std::io::ErrorKind::InvalidFilename
            | std::io::ErrorKind::InvalidData => StartError::Config(why),
            _ => StartError::Failed(why),
        }
    };
    // Looked at before it is opened: opening a pipe waits for a writer.
    let metadata = std::fs::metadata(path).map_err(failed)?;
    if !metadata.is_file() {
        return Err(refused(
            "it is not a regular file (a directory, a device or a pipe)".to_owned(),
        ));
    }
    let too_large = |len: u64| {
        refused(format!(
            "it holds {len} bytes, over the {MAX_DATA_FILE_BYTES} a data file may"
        ))
    };
    if metadata.len() > MAX_DATA_FILE_BYTES {
        return Err(too_large(metadata.len()));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(failed)?
        .take(MAX_DATA_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(failed)?;
    // Grown since it was looked at.
    if text.len() as u64 > MAX_DATA_FILE_BYTES {
        return Err(too_large(text.len() as u64));
    }
    Ok(text)
}

/// Starts module `M` alone with the given config (checked first, as a
/// node checks it), dependencies and data directory, and returns a local
/// ref to it: how actor-message tests get a module's actor with its
/// dependencies faked.
///
/// Unlike a node's, the module is not supervised (an actor that panics
/// stays down: later calls fail as not delivered), its calls are not
/// counted in any metrics, its refs wait the default 5 s unless
/// [`ServiceRef::with_timeout`] says otherwise, and nothing stops it but
/// the end of its actix system ([`StartContext::stopped`] never resolves).
pub async fn start_alone<M: Module>(
    config: M::Config,
    services: ServiceRegistry,
    data_dir: impl Into<PathBuf>,
) -> Result<ServiceRef<M::Service>, StartError> {
    M::check(&config)?;
    let ctx = StartContext::new("test", M::dependencies(), services, data_dir);
    M::start(config, ctx).await.map(ServiceRef::local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_file_that_will_not_be_there_on_a_restart_either_is_a_config_error() {
        let dir = std::env::temp_dir().join(format!("data-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_text = dir.join("not-text.json");
        std::fs::write(&not_text, [0xff, 0xfe, 0x00]).unwrap();
        let under_a_file = not_text.join("products.json");
        let too_large = dir.join("large.json");
        std::fs::File::create(&too_large)
            .unwrap()
            .set_len(MAX_DATA_FILE_BYTES + 1)
            .unwrap();
        for path in [
            dir.join("missing.json"),
            dir.clone(),
            not_text,
            under_a_file,
            too_large,
            // A device is read for ever: refused before it is opened.
            Path::new("/dev/zero").to_owned(),
        ] {
            let read = data_file("products_file", Some(&path), "");
            assert!(
                matches!(&read, Err(StartError::Config(why)) if why.contains("products_file")),
                "{path:?}: {read:?}"
            );
        }
        // A read that fails on the way (here an I/O error) may pass.
        let read = data_file("products_file", Some(Path::new("/proc/self/mem")), "");
        assert!(matches!(read, Err(StartError::Failed(_))), "{read:?}");
        assert_eq!(
            data_file("products_file", None, "built in").unwrap(),
            "built in"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
