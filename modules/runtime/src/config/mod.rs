//! The deployment config: which nodes exist, which modules each runs, and
//! each module's own settings.
//!
//! Layers, later ones winning: the TOML file (`config.toml` or `--config`),
//! then environment variables `BOUTIQUE__SECTION__KEY` (for example
//! `BOUTIQUE__NODES__WEB__LISTEN=0.0.0.0:7401` or
//! `BOUTIQUE__RUNTIME__CALL_TIMEOUT_MS=2000`), then overrides from the
//! command line (`--set nodes.web.listen=...`).
//!
//! ```toml
//! [cluster]
//! name = "boutique"              # nodes of other clusters are refused
//! secret_env = "BOUTIQUE_SECRET" # where the shared secret is read from
//!
//! [runtime]
//! call_timeout_ms = 5000
//!
//! [nodes.web]
//! listen = "127.0.0.1:7401"
//! modules = ["recommendation", "cart"]
//!
//! [modules.catalog]              # the catalog module's own section
//! ```
//!
//! Loading only parses; [`Plan::new`](plan::Plan::new) checks the whole
//! config against the binary's catalogue and reports every problem at once.

mod listeners;
mod names;
mod plan;
pub(crate) mod strict;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use plan::{
    CLIENT, Crossing, MAX_IN_FLIGHT_PER_PEER, MAX_NODE_NAME, MIN_FRAME_BYTES, NodePlan, Plan,
    Routing, is_node_name,
};

/// The whole config, as parsed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Cluster identity and authentication.
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Timeouts and limits of the runtime.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// The nodes, by name.
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeConfig>,
    /// Each module's own section, by module name, checked by the module.
    #[serde(default)]
    pub modules: BTreeMap<String, config::Value>,
    /// Who may call whom: `payment = ["checkout", "client"]` lets only the
    /// checkout module, and clients such as `boutique call`, call payment.
    /// Services not listed may be called by anyone.
    #[serde(default, deserialize_with = "names::names_by_key")]
    pub access: BTreeMap<String, Vec<String>>,
    /// How calls choose among a replicated module's replicas:
    /// `cart = "by-key"`, or `"least-loaded"` (the default).
    #[serde(default)]
    pub routing: BTreeMap<String, String>,
    /// How the binary logs.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Where traces go.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[telemetry]`: where the binary sends trace spans.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// An OpenTelemetry collector's OTLP/HTTP address, `http://HOST:4318`;
    /// unset: spans are not exported.
    pub otlp_endpoint: Option<String>,
}

/// Checks `[telemetry] otlp_endpoint`: `http://HOST[:PORT][/...]`; the
/// problem, in words, if not.
pub fn check_otlp_endpoint(endpoint: &str) -> Result<(), crate::ConfigRefused> {
    let host = endpoint
        .strip_prefix("http://")
        .map(|rest| rest.split('/').next().unwrap_or_default());
    if host.is_none_or(str::is_empty) {
        return Err(crate::ConfigRefused(format!(
            "[telemetry] otlp_endpoint = {endpoint:?}: give the collector's OTLP/HTTP address \
             as http://HOST:PORT (usually port 4318); https is not supported, run the \
             collector beside the node"
        )));
    }
    Ok(())
}

/// `[logging]`: what the binary logs and how. `RUST_LOG` and
/// `--log-format` win over both.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// Which lines, in `RUST_LOG` syntax: `info`, `warn,frontend=debug`.
    pub level: Option<String>,
    /// `text` (for people, the default) or `json` (one object a line).
    pub format: Option<LogFormat>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object a line, for machines.
    Json,
}

/// `[cluster]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// The cluster's name; nodes with another name are refused.
    pub name: String,
    /// The environment variable that holds the shared secret. Required as
    /// soon as any node listens.
    pub secret_env: Option<String>,
    /// TLS between nodes, with mutual authentication (see
    /// `runtime::transport::tls`).
    pub tls: Option<TlsConfig>,
    /// Accept listening on other than loopback without TLS (connections
    /// are then authenticated when made, but their traffic can be read,
    /// and frames injected into it, by anyone on the path).
    pub insecure: bool,
}

/// `[cluster.tls]`: where the CA and each node's certificate and key are.
/// `{node}` in `cert` and `key` becomes the node's name (`client` for
/// clients).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The CA certificate(s), PEM.
    pub ca: String,
    /// Each node's certificate chain, PEM.
    pub cert: String,
    /// Each node's private key, PEM.
    pub key: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            name: "boutique".to_owned(),
            secret_env: None,
            tls: None,
            insecure: false,
        }
    }
}

/// `[runtime]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// How long a call waits for its answer unless the caller says otherwise.
    pub call_timeout_ms: u64,
    /// How long a TCP connect to a peer may take.
    pub connect_timeout_ms: u64,
    /// How long the handshake may take after the connect.
    pub handshake_timeout_ms: u64,
    /// The largest frame accepted or sent.
    pub max_frame_bytes: usize,
    /// The first delay before redialing an unreachable peer.
    pub reconnect_min_ms: u64,
    /// The longest delay between redials.
    pub reconnect_max_ms: u64,
    /// The most calls this node has in flight to one peer at a time; more
    /// wait for room until their deadline, then fail as overloaded. A node
    /// also serves at most this many calls from one peer at a time (each
    /// until the writer takes its reply). Told to peers in the
    /// handshake: a peer cuts this node off if it leaves more of its calls
    /// unanswered there than this.
    pub max_in_flight_per_peer: usize,
    /// On SIGTERM, how long calls in flight here may take to finish before
    /// the node closes its connections anyway.
    pub shutdown_grace_ms: u64,
    /// How often each side of a node connection says it is alive.
    pub heartbeat_interval_ms: u64,
    /// How long a node connection may stay silent (no heartbeat, no byte)
    /// before the peer is declared unreachable and every call waiting on it
    /// fails.
    pub failure_timeout_ms: u64,
    /// Send even local calls through the codec (a test mode).
    pub serialize_local_calls: bool,
    /// Where modules keep their files (each module's SQLite database, for
    /// one). Created on first start. Relative paths are from the working
    /// directory.
    pub data_dir: PathBuf,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            call_timeout_ms: 5_000,
            connect_timeout_ms: 2_000,
            handshake_timeout_ms: 5_000,
            max_frame_bytes: 4 * 1024 * 1024,
            reconnect_min_ms: 100,
            reconnect_max_ms: 5_000,
            max_in_flight_per_peer: 1024,
            shutdown_grace_ms: 10_000,
            heartbeat_interval_ms: 500,
            failure_timeout_ms: 2_500,
            serialize_local_calls: false,
            data_dir: PathBuf::from("boutique-data"),
        }
    }
}

/// `[nodes.<name>]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the node listens for other nodes, `HOST:PORT`.
    #[serde(default)]
    pub listen: Option<String>,
    /// The modules it runs; `"*"` means every module no other node lists.
    /// (In the environment: names separated by commas.)
    #[serde(default, deserialize_with = "names::names")]
    pub modules: Vec<String>,
    /// Where other nodes dial it, `HOST:PORT` (a host name is looked up at
    /// each dial), when that is not its listen address: a DNS name such as
    /// a Kubernetes Service, while it listens on `0.0.0.0:PORT`.
    #[serde(default)]
    pub address: Option<String>,
    /// Where the node serves its admin endpoints (`/healthz`, `/readyz`,
    /// `/metrics`), `HOST:PORT`; none if unset.
    #[serde(default)]
    pub admin: Option<String>,
}

/// Where the environment layer comes from.
#[derive(Debug, Clone, Default)]
pub enum EnvSource {
    /// This process's environment.
    #[default]
    Process,
    /// A fixed map (tests).
    Map(HashMap<String, String>),
    /// No environment layer.
    Ignore,
}

/// The layers to load.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The TOML file; `None` means the built-in single-node default.
    pub file: Option<PathBuf>,
    /// The environment layer.
    pub env: EnvSource,
    /// `KEY=VALUE` overrides, applied last (`nodes.web.listen=127.0.0.1:0`).
    pub overrides: Vec<String>,
}

/// What starts the name of an environment variable that sets a setting.
pub const SETTING_PREFIX: &str = "BOUTIQUE__";

/// Whether the environment variable `name` sets a setting: it starts with
/// [`SETTING_PREFIX`] in any case, as the `config` crate matches it
/// (`boutique__runtime__call_timeout_ms` is read too, so it is checked
/// and counted too).
pub fn is_setting_variable(name: &str) -> bool {
    name.get(..SETTING_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(SETTING_PREFIX))
}

/// The config key the environment variable `name` sets, if it sets one:
/// `runtime.call_timeout_ms` for `BOUTIQUE__RUNTIME__CALL_TIMEOUT_MS`.
pub fn setting_key(name: &str) -> Option<String> {
    is_setting_variable(name).then(|| {
        name[SETTING_PREFIX.len()..]
            .to_lowercase()
            .replace("__", ".")
    })
}

/// What is wrong with `secret_env = name`, if anything: a `BOUTIQUE__`
/// variable sets a config key, so the secret in it would be read as a
/// setting (and refused as an unknown one).
pub(crate) fn secret_env_problem(name: &str) -> Option<String> {
    is_setting_variable(name).then(|| {
        format!(
            "[cluster] secret_env = \"{name}\" is a settings variable (BOUTIQUE__ variables set config keys): \
             name another, such as BOUTIQUE_SECRET"
        )
    })
}

/// The built-in default: one node runs every module.
pub const DEFAULT_CONFIG: &str = "[nodes.main]\nmodules = [\"*\"]\n";

/// The config could not be loaded or is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {detail}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        detail: String,
    },
    /// A layer does not parse or has the wrong shape.
    #[error("{0}")]
    Parse(String),
    /// A number with a fraction, which no setting takes: the `config`
    /// crate would round it into a whole-number field unsaid
    /// (`call_timeout_ms = 1.5` read 2).
    #[error(
        "{key} = {value}: no setting takes a fraction; write a whole number \
         (or quote the value if it is a name)"
    )]
    Fraction {
        /// Where it is: `runtime.call_timeout_ms`, `nodes.main.modules[1]`.
        key: String,
        /// The number as given.
        value: String,
    },
    /// An override is not `KEY=VALUE`.
    #[error("bad override '{0}': expected KEY=VALUE, e.g. nodes.main.listen=127.0.0.1:7401")]
    Override(String),
    /// An override's or an environment variable's key is not names joined
    /// by dots (an index such as `modules[3]` is refused: the `config`
    /// crate would make a list that long, and a large one ends the
    /// process).
    #[error(
        "{origin}: '{key}' is not a config key: a key is names joined by dots, e.g. \
         nodes.main.modules; set a whole list as one value: nodes.main.modules=[\"cart\"]"
    )]
    Key {
        /// Where it came from: `--set ...` or the variable's name.
        origin: String,
        /// The key.
        key: String,
    },
    /// The config parses but does not make a deployment.
    #[error("{}", Problems(.0))]
    Invalid(Vec<String>),
}

struct Problems<'a>(&'a [String]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "invalid config: {one}"),
            many => {
                write!(f, "invalid config ({} problems):", many.len())?;
                for problem in many {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

/// Loads the config from its layers.
pub fn load(source: &ConfigSource) -> Result<DeploymentConfig, ConfigError> {
    use config::{Config, Environment, File, FileFormat};

    let file_text = match &source.file {
        Some(path) => std::borrow::Cow::Owned(read(path)?),
        None => std::borrow::Cow::Borrowed(DEFAULT_CONFIG),
    };
    let mut builder = Config::builder().add_source(File::from_str(&file_text, FileFormat::Toml));
    let env_keys: Vec<String> = match &source.env {
        EnvSource::Process => std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect(),
        EnvSource::Map(map) => map.keys().cloned().collect(),
        EnvSource::Ignore => Vec::new(),
    };
    let mut variables = 0;
    for name in &env_keys {
        if let Some(key) = setting_key(name) {
            check_key(&key, name)?;
            variables += 1;
        }
    }
    // Values stay text here, and become numbers or booleans where a field
    // wants one: parsed first, `BOUTIQUE__CLUSTER__NAME=1e3` was `1000`.
    let env = Environment::with_prefix("BOUTIQUE")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(false);
    builder = match &source.env {
        EnvSource::Process => builder.add_source(env),
        EnvSource::Map(map) => {
            builder.add_source(env.source(Some(map.clone().into_iter().collect())))
        }
        EnvSource::Ignore => builder,
    };
    for entry in &source.overrides {
        let (key, value) = entry
            .split_once('=')
            .filter(|(key, _)| !key.trim().is_empty())
            .ok_or_else(|| ConfigError::Override(entry.clone()))?;
        check_key(key.trim(), &format!("--set {entry}"))?;
        builder = builder
            .set_override(key.trim(), parse_override(value.trim()))
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
    }
    // Which file, when it is the file: the config crate's messages name
    // only the key, and a TOML syntax error not even that.
    let in_file = |message: String| match &source.file {
        Some(path) => format!("{}: {message}", path.display()),
        None => message,
    };
    let layered = builder
        .build()
        .map_err(|e| ConfigError::Parse(in_file(e.to_string())))?;
    refuse_fractions(&layered)?;
    // Named so, the secret's own variable is read as a setting, refused
    // as an unknown key that says nothing of `secret_env`.
    if let Some(problem) = layered
        .get_string("cluster.secret_env")
        .ok()
        .as_deref()
        .and_then(secret_env_problem)
    {
        return Err(ConfigError::Invalid(vec![problem]));
    }
    deserialize(&layered).map_err(|e| {
        // Where to look: if the file alone is fine, the culprit is a
        // variable or a --set, which the message would not say.
        let overridden = variables > 0 || !source.overrides.is_empty();
        if overridden && parse(&file_text).is_ok() {
            ConfigError::Parse(format!(
                "{e} (in a BOUTIQUE__ variable or a --set: the file alone is valid)"
            ))
        } else {
            ConfigError::Parse(in_file(e.to_string()))
        }
    })
}

/// Parses a config from TOML text alone (no environment, no overrides).
pub fn parse(toml: &str) -> Result<DeploymentConfig, ConfigError> {
    use config::{Config, File, FileFormat};
    let config = Config::builder()
        .add_source(File::from_str(toml, FileFormat::Toml))
        .build()
        .map_err(|e| ConfigError::Parse(e.to_string()))?;
    refuse_fractions(&config)?;
    deserialize(&config).map_err(ConfigError::Parse)
}

/// The layered config as the deployment config, each value read as what
/// it is ([`strict`]: `call_timeout_ms = true` is refused, not 1 ms).
fn deserialize(layered: &config::Config) -> Result<DeploymentConfig, String> {
    use config::Source as _;
    let table = layered.collect().map_err(|e| e.to_string())?;
    let value = config::Value::new(None, config::ValueKind::Table(table));
    strict::from_value(value).map_err(|e| e.to_string())
}

/// Refuses the first number with a fraction in the layers, wherever it is.
/// No setting takes one, runtime's or a module's, and the `config` crate
/// rounds a fraction given to a whole-number field instead of refusing it.
/// A whole number written with a point (`1500.0`) is let through, as the
/// number it is, if a 64-bit float holds it exactly.
fn refuse_fractions(layered: &config::Config) -> Result<(), ConfigError> {
    use config::Source as _;
    let table = layered
        .collect()
        .map_err(|e| ConfigError::Parse(e.to_string()))?;
    table
        .iter()
        .try_for_each(|(key, value)| refuse_fraction_in(key.clone(), value))
}

fn refuse_fraction_in(key: String, value: &config::Value) -> Result<(), ConfigError> {
    /// Past 2^53 a float no longer holds every whole number.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match &value.kind {
        config::ValueKind::Float(number) if number.fract() != 0.0 || number.abs() > EXACT => {
            Err(ConfigError::Fraction {
                key,
                value: number.to_string(),
            })
        }
        config::ValueKind::Table(table) => table
            .iter()
            .try_for_each(|(name, value)| refuse_fraction_in(format!("{key}.{name}"), value)),
        config::ValueKind::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(index, value)| refuse_fraction_in(format!("{key}[{index}]"), value)),
        _ => Ok(()),
    }
}

/// Refuses a key that is not names (ASCII letters, digits, `_`, `-`)
/// joined by dots. `origin` says where it came from.
fn check_key(key: &str, origin: &str) -> Result<(), ConfigError> {
    let is_name = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if key.split('.').all(is_name) {
        Ok(())
    } else {
        Err(ConfigError::Key {
            origin: origin.to_owned(),
            key: key.to_owned(),
        })
    }
}

/// A `--set` value as an environment variable carries it (`deploy kube`
/// passes overrides to pods so): the value `--set` would give, in its
/// plain form (`"x"` is `x`, `5_000` is `5000`), which the environment
/// layer reads back as the same value. `None` for a list or a table (TOML
/// `[...]` or `{...}`), which no environment variable can carry.
pub fn override_as_env_value(value: &str) -> Option<String> {
    let parsed = parse_override(value);
    match parsed.kind {
        config::ValueKind::Array(_) | config::ValueKind::Table(_) => None,
        _ => parsed.into_string().ok(),
    }
}

/// An override's value: a TOML value if it parses as one (numbers, booleans,
/// arrays), otherwise the text as a string. A number written otherwise
/// than it reads back (`0x1F`, `1.50`, `1e3`) stays text: a field that
/// wants a number reads it from the text, and one that wants text keeps
/// what was typed (a cluster named `0x1F` was named `31`). Digit
/// separators (`5_000`) are a number's.
fn parse_override(value: &str) -> config::Value {
    let as_toml = format!("v = {value}");
    match config::Config::builder()
        .add_source(config::File::from_str(&as_toml, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.get::<config::Value>("v"))
    {
        Ok(parsed) => {
            let number = matches!(
                parsed.kind,
                config::ValueKind::I64(_)
                    | config::ValueKind::I128(_)
                    | config::ValueKind::U64(_)
                    | config::ValueKind::U128(_)
                    | config::ValueKind::Float(_)
            );
            if number && parsed.to_string() != value.replace('_', "") {
                config::Value::from(value)
            } else {
                parsed
            }
        }
        Err(_) => config::Value::from(value),
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> (tempdir::Dir, ConfigSource) {
        let dir = tempdir::Dir::new();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        (
            dir,
            ConfigSource {
                file: Some(path),
                env: EnvSource::Ignore,
                overrides: vec![],
            },
        )
    }

    mod tempdir {
        use std::path::{Path, PathBuf};
        use std::sync::atomic::{AtomicU32, Ordering};

        pub struct Dir(PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "boutique-config-test-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn the_default_is_one_node_with_everything() {
        let config = load(&ConfigSource {
            file: None,
            env: EnvSource::Ignore,
            overrides: vec![],
        })
        .unwrap();
        assert_eq!(config.nodes.len(), 1);
        assert_eq!(config.nodes["main"].modules, vec!["*"]);
        assert_eq!(config.runtime.call_timeout_ms, 5_000);
    }

    #[test]
    fn env_then_overrides_win_over_the_file() {
        let (_dir, mut source) = source(
            "[runtime]\ncall_timeout_ms = 100\n[nodes.web]\nlisten = \"127.0.0.1:1\"\nmodules = [\"*\"]\n",
        );
        source.env = EnvSource::Map(HashMap::from([
            (
                "BOUTIQUE__RUNTIME__CALL_TIMEOUT_MS".to_owned(),
                "200".to_owned(),
            ),
            (
                "BOUTIQUE__NODES__WEB__LISTEN".to_owned(),
                "127.0.0.1:2".to_owned(),
            ),
        ]));
        let config = load(&source).unwrap();
        assert_eq!(config.runtime.call_timeout_ms, 200);
        assert_eq!(config.nodes["web"].listen.as_deref(), Some("127.0.0.1:2"));

        source.overrides = vec![
            "nodes.web.listen=127.0.0.1:3".to_owned(),
            "runtime.call_timeout_ms=300".to_owned(),
        ];
        let config = load(&source).unwrap();
        assert_eq!(config.runtime.call_timeout_ms, 300);
        assert_eq!(config.nodes["web"].listen.as_deref(), Some("127.0.0.1:3"));
    }

    #[test]
    fn errors_of_the_file_name_the_file() {
        for text in [
            "[runtime]\ncall_timeout_ms = 127.0.0.1:7401\n",
            "[runtime]\ncall_timeout_ms = \"5s\"\n[nodes.main]\nmodules = [\"*\"]\n",
        ] {
            let (_dir, source) = source(text);
            let path = source.file.clone().unwrap();
            let error = load(&source).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("{}: ", path.display())),
                "{error}"
            );
        }
    }

    #[test]
    fn a_secret_in_a_settings_variable_is_refused_for_what_it_is() {
        let (_dir, mut source) = source(
            "[cluster]\nsecret_env = \"BOUTIQUE__SECRET\"\n[nodes.main]\nmodules = [\"*\"]\n",
        );
        // Set or not, the variable is named as the problem (set, it was
        // an unknown key `secret`).
        for set in [false, true] {
            if set {
                source.env = EnvSource::Map(HashMap::from([(
                    "BOUTIQUE__SECRET".to_owned(),
                    "the cluster's secret".to_owned(),
                )]));
            }
            let error = load(&source).unwrap_err().to_string();
            assert!(
                error.contains(
                    "secret_env = \"BOUTIQUE__SECRET\" is a settings variable \
                     (BOUTIQUE__ variables set config keys): name another, such as BOUTIQUE_SECRET"
                ),
                "{error}"
            );
            assert!(!error.contains("the cluster's secret"), "{error}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_and_named() {
        let (_dir, source) = source("[runtime]\ncall_timeout = 100\n");
        let error = load(&source).unwrap_err().to_string();
        assert!(error.contains("call_timeout"), "{error}");
    }

    #[test]
    fn a_list_of_names_may_come_from_the_environment_separated_by_commas() {
        let (_dir, mut source) =
            source("[nodes.main]\nmodules = [\"catalog\"]\n[access]\npayment = [\"checkout\"]\n");
        let config = load(&source).unwrap();
        assert_eq!(config.nodes["main"].modules, vec!["catalog"]);
        assert_eq!(config.access["payment"], vec!["checkout"]);
        source.env = EnvSource::Map(HashMap::from([
            (
                "BOUTIQUE__NODES__MAIN__MODULES".to_owned(),
                "catalog, cart,currency".to_owned(),
            ),
            (
                "BOUTIQUE__ACCESS__PAYMENT".to_owned(),
                "checkout,client".to_owned(),
            ),
        ]));
        let config = load(&source).unwrap();
        assert_eq!(
            config.nodes["main"].modules,
            vec!["catalog", "cart", "currency"]
        );
        assert_eq!(config.access["payment"], vec!["checkout", "client"]);
        // Not a list, nor names: said so.
        source.env = EnvSource::Ignore;
        source.overrides = vec!["nodes.main.modules={a = 1}".to_owned()];
        let error = load(&source).unwrap_err().to_string();
        assert!(
            error.contains("a list of names, or names separated by commas"),
            "{error}"
        );
    }

    #[test]
    fn a_number_with_a_fraction_is_refused_and_named_wherever_it_comes_from() {
        // The `config` crate read these as 2 and 3, unsaid.
        let (_dir, file) =
            source("[runtime]\ncall_timeout_ms = 1.5\n[nodes.main]\nmodules = [\"*\"]\n");
        assert_eq!(
            load(&file).unwrap_err(),
            ConfigError::Fraction {
                key: "runtime.call_timeout_ms".to_owned(),
                value: "1.5".to_owned()
            }
        );
        let error = parse("[modules.cart]\nmax_lines = 2.5\n[nodes.main]\nmodules = [\"*\"]\n")
            .unwrap_err();
        assert_eq!(
            error,
            ConfigError::Fraction {
                key: "modules.cart.max_lines".to_owned(),
                value: "2.5".to_owned()
            }
        );
        assert!(
            error.to_string().contains("write a whole number"),
            "{error}"
        );
        // From a --set, and inside a list.
        let (_other_dir, mut source) = source("[nodes.main]\nmodules = [\"*\"]\n");
        source.overrides = vec!["runtime.call_timeout_ms=0.5".to_owned()];
        assert!(matches!(
            load(&source).unwrap_err(),
            ConfigError::Fraction { ref key, .. } if key == "runtime.call_timeout_ms"
        ));
        source.overrides = vec!["nodes.main.modules=[\"cart\", 1.25]".to_owned()];
        assert!(matches!(
            load(&source).unwrap_err(),
            ConfigError::Fraction { ref key, .. } if key == "nodes.main.modules[1]"
        ));
        // A whole number with a point is the number; one too large for a
        // float to hold exactly is not.
        let whole = parse("[runtime]\ncall_timeout_ms = 1500.0\n[nodes.main]\nmodules = [\"*\"]\n");
        assert_eq!(whole.unwrap().runtime.call_timeout_ms, 1_500);
        let huge = parse("[runtime]\ncall_timeout_ms = 1e300\n[nodes.main]\nmodules = [\"*\"]\n");
        assert!(
            matches!(huge, Err(ConfigError::Fraction { ref value, .. }) if value.starts_with("1000")),
            "{huge:?}"
        );
    }

    #[test]
    fn a_missing_file_says_which() {
        let error = load(&ConfigSource {
            file: Some("/nonexistent/boutique.toml".into()),
            env: EnvSource::Ignore,
            overrides: vec![],
        })
        .unwrap_err();
        assert!(
            matches!(error, ConfigError::Read { ref path, .. } if path == "/nonexistent/boutique.toml")
        );
    }

    #[test]
    fn a_bad_override_is_refused() {
        let error = load(&ConfigSource {
            file: None,
            env: EnvSource::Ignore,
            overrides: vec!["nodes.main.listen".to_owned()],
        })
        .unwrap_err();
        assert_eq!(error, ConfigError::Override("nodes.main.listen".to_owned()));
    }

    #[test]
    fn a_key_with_an_index_or_other_signs_is_refused_not_made_into_a_huge_list() {
        // Unchecked, the first made the `config` crate ask for terabytes.
        for bad in [
            "nodes.main.modules[100000000000]=cart",
            "nodes..modules=[\"cart\"]",
            "runtime.call timeout=1",
        ] {
            let error = load(&ConfigSource {
                file: None,
                env: EnvSource::Ignore,
                overrides: vec![bad.to_owned()],
            })
            .unwrap_err();
            assert!(
                matches!(error, ConfigError::Key { ref origin, .. } if *origin == format!("--set {bad}")),
                "{error:?}"
            );
        }
        // The config crate reads the prefix in any case: so is it checked.
        for name in [
            "BOUTIQUE__NODES__MAIN__MODULES[100000000000]",
            "boutique__nodes__main__modules[100000000000]",
        ] {
            let error = load(&ConfigSource {
                file: None,
                env: EnvSource::Map(HashMap::from([(name.to_owned(), "cart".to_owned())])),
                overrides: vec![],
            })
            .unwrap_err();
            assert_eq!(
                error,
                ConfigError::Key {
                    origin: name.to_owned(),
                    key: "nodes.main.modules[100000000000]".to_owned()
                }
            );
            assert!(error.to_string().contains("not a config key"), "{error}");
        }
        assert!(is_setting_variable("Boutique__runtime__x"));
        assert!(!is_setting_variable("BOUTIQUE_SECRET"));
        assert!(!is_setting_variable("BOUTIQUE_"));
        // Names with `-` and `_` are keys.
        load(&ConfigSource {
            file: None,
            env: EnvSource::Ignore,
            overrides: vec!["runtime.call_timeout_ms=100".to_owned()],
        })
        .unwrap();
    }
}
