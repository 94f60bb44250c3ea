//! The command line: `boutique [run|plan|call|up|certs|load|deploy kube]`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use runtime::config::{ConfigSource, EnvSource};

/// One binary holds the whole shop; the config decides where each module runs.
#[derive(Debug, Parser)]
#[command(name = "boutique", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// How to write log lines (stderr) [default: [logging] format, else text]
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    /// For people
    Text,
    /// One JSON object a line
    Json,
}

/// Where the config comes from.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The deployment config [default: ./config.toml if there is one, else one node running every module]
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one config value, e.g. --set nodes.web.listen=127.0.0.1:7401 (repeatable; wins over the file and BOUTIQUE__* variables)
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

impl ConfigArgs {
    /// The config file actually used: the one given, or `./config.toml`.
    pub fn file(&self) -> Option<PathBuf> {
        match &self.config {
            Some(path) => Some(path.clone()),
            None => {
                let default = PathBuf::from("config.toml");
                default.is_file().then_some(default)
            }
        }
    }

    /// The layers to load.
    pub fn source(&self) -> ConfigSource {
        ConfigSource {
            file: self.file(),
            env: EnvSource::Process,
            overrides: self.overrides.clone(),
        }
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start one node of the deployment (the default command)
    Run {
        /// The node to start [default: the only node of the config]
        #[arg(long)]
        node: Option<String>,
        /// Test only: read fault-injection commands from stdin (see docs/failures.md)
        #[arg(long, hide = true)]
        fault_control: bool,
    },
    /// Check the config and show where every module runs
    Plan,
    /// Send one message to a service wherever it runs and print the reply as JSON
    Call {
        /// The service, e.g. currency
        service: String,
        /// The message, e.g. Convert
        message: String,
        /// The message as JSON [default: {}]
        json: Option<String>,
    },
    /// Start every node of the config as a child process; Ctrl-C stops them all
    Up {
        /// Stop starting again a node that has never been ready, once it has
        /// failed to start for this long, e.g. 60s, 2m
        #[arg(long, default_value = "60s")]
        give_up_after: String,
    },
    /// Write a certificate per node of the config, signed by the development CA in DIR (made if there is none), for [cluster.tls]
    Certs {
        /// Where to write them
        dir: PathBuf,
        /// Make a new CA too, where one is kept (nodes holding certificates
        /// of the old one will not trust the new)
        #[arg(long)]
        force: bool,
    },
    /// Drive a shop's web frontend with Online Boutique's user mix and report throughput and latency
    Load {
        /// The shop, e.g. http://127.0.0.1:8080
        #[arg(long)]
        target: String,
        /// How long, e.g. 30s, 2m, 500ms
        #[arg(long, default_value = "30s")]
        duration: String,
        /// Tasks per second on a fixed schedule (latency counted from when each was sent, or was due if it waited for a slot)
        #[arg(long, conflicts_with = "users", required_unless_present = "users")]
        rate: Option<f64>,
        /// Concurrent users, each doing tasks back to back with no think time
        #[arg(long)]
        users: Option<usize>,
        /// Print the report as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Write what it takes to run the config's deployment elsewhere
    Deploy {
        #[command(subcommand)]
        target: DeployTarget,
    },
}

/// Where `deploy` deploys to.
#[derive(Debug, Subcommand)]
pub enum DeployTarget {
    /// Kubernetes manifests (YAML on stdout, for kubectl apply -f -): a Deployment and a Service per node, the config as a ConfigMap
    Kube {
        /// The container image with the boutique binary (see docs/operations.md)
        #[arg(long)]
        image: String,
        /// The namespace to put every object in [default: kubectl's]
        #[arg(long)]
        namespace: Option<String>,
        /// VAR=SECRET/KEY: give every pod the environment variable VAR from key KEY of
        /// your Secret SECRET (e.g. PGPASSWORD=shop-db/password); repeatable
        #[arg(long = "secret-env", value_name = "VAR=SECRET/KEY")]
        secret_env: Vec<String>,
    },
}
