//! The four runners of the scenario suite, and helpers for running the real
//! binary.
//!
//! | runner | where the modules run | how the test calls them |
//! |---|---|---|
//! | local | one node, `config.toml` | that node's refs: plain actix calls |
//! | serialized | one node, every call through the codec | that node's refs |
//! | split | three nodes of `deploy/three-nodes.toml` in this process | a client node, over TCP |
//! | processes | the `boutique` binary, three OS processes | a client node, over TCP |
//!
//! Every address is an ephemeral port; readiness is awaited (the binary
//! prints `listening on ADDR`), never slept for.

#![allow(dead_code)]

pub mod cluster;
pub mod load;
pub mod purchases;
pub mod shopper;
pub mod webdriver;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use runtime::config::{self, ConfigSource, EnvSource, Plan};
use runtime::transport::handshake::Secret;
use runtime::{Node, Service, ServiceRef};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The secret the split runners share.
pub const SECRET: &str = "the-test-cluster-secret-0123456789";

/// How long a child process may take to say it is listening.
const READY_WITHIN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    Local,
    Serialized,
    Split,
    Processes,
}

/// A path in the repository.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub fn secret() -> Secret {
    Secret::from_bytes("test", SECRET.as_bytes().to_vec()).unwrap()
}

/// Loads a config file of the repository with overrides, ignoring the environment.
pub fn plan(file: &str, overrides: &[String]) -> Plan {
    let source = ConfigSource {
        file: Some(repo(file)),
        env: EnvSource::Ignore,
        overrides: overrides.to_vec(),
    };
    Plan::new(config::load(&source).unwrap(), &boutique::catalogue()).unwrap()
}

/// The shop, running under one runner.
pub struct App {
    pub runner: Runner,
    /// Every module's files (databases) go here, and go away with the app.
    pub data: storage::testing::TempDir,
    /// Where the test's calls come from.
    entry: Node,
    /// Nodes started in this process (split).
    nodes: Vec<Node>,
    /// Nodes started as processes, by name.
    children: Vec<(String, Child)>,
    /// The deployment, with the addresses its nodes got.
    plan: Plan,
}

impl App {
    pub async fn start(runner: Runner) -> App {
        match runner {
            Runner::Local => App::single(runner, &[]).await,
            Runner::Serialized => {
                App::single(runner, &["runtime.serialize_local_calls=true".to_owned()]).await
            }
            Runner::Split => App::split().await,
            Runner::Processes => App::processes().await,
        }
    }

    async fn single(runner: Runner, overrides: &[String]) -> App {
        let data = storage::testing::TempDir::new("app");
        let mut overrides = overrides.to_vec();
        overrides.extend(shop_overrides(&data));
        let plan = plan("config.toml", &overrides);
        let entry = Node::start(&plan, "main", &boutique::catalogue())
            .await
            .unwrap();
        App {
            runner,
            data,
            entry,
            nodes: Vec::new(),
            children: Vec::new(),
            plan,
        }
    }

    async fn split() -> App {
        App::split_from("deploy/three-nodes.toml").await
    }

    /// Every node of the deployment `file`, in this process.
    pub async fn split_from(file: &str) -> App {
        App::split_from_with(file, &[]).await
    }

    /// Every node of the deployment `file`, in this process, with `extra`
    /// overrides.
    pub async fn split_from_with(file: &str, extra: &[String]) -> App {
        let catalogue = boutique::catalogue();
        let data = storage::testing::TempDir::new("app");
        let template = plan(file, &[]);
        let names: Vec<String> = template.nodes().iter().map(|n| n.name.clone()).collect();
        let listeners: Vec<std::net::TcpListener> = names
            .iter()
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut overrides: Vec<String> = names
            .iter()
            .zip(&listeners)
            .map(|(name, l)| format!("nodes.{name}.listen={}", l.local_addr().unwrap()))
            .collect();
        overrides.extend(shop_overrides(&data));
        overrides.extend_from_slice(extra);
        let plan = plan(file, &overrides);
        let mut nodes = Vec::new();
        for (name, listener) in names.iter().zip(listeners) {
            let node = Node::builder(&plan, &catalogue)
                .listener(listener)
                .secret(secret())
                .start(name)
                .await
                .unwrap();
            nodes.push(node);
        }
        let entry = Node::builder(&plan, &catalogue)
            .secret(secret())
            .client()
            .await
            .unwrap();
        App {
            runner: Runner::Split,
            data,
            entry,
            nodes,
            children: Vec::new(),
            plan,
        }
    }

    async fn processes() -> App {
        // Start callees first, so each node is given the addresses of the
        // nodes it calls; every node listens on an ephemeral port.
        let template = plan("deploy/three-nodes.toml", &[]);
        let order: Vec<String> = template
            .node_start_order()
            .iter()
            .map(|n| n.name.clone())
            .collect();
        let data = storage::testing::TempDir::new("app");
        let mut known: Vec<String> = shop_overrides(&data);
        let mut children = Vec::new();
        for name in &order {
            let mut overrides = known.clone();
            overrides.push(format!("nodes.{name}.listen=127.0.0.1:0"));
            let (child, addr) = spawn_node("deploy/three-nodes.toml", name, &overrides).await;
            known.push(format!("nodes.{name}.listen={addr}"));
            children.push((name.clone(), child));
        }
        let plan = plan("deploy/three-nodes.toml", &known);
        let entry = Node::builder(&plan, &boutique::catalogue())
            .secret(secret())
            .client()
            .await
            .unwrap();
        App {
            runner: Runner::Processes,
            data,
            entry,
            nodes: Vec::new(),
            children,
            plan,
        }
    }

    /// A ref to service `S`, as this runner's caller sees it.
    pub fn service<S: Service>(&self) -> ServiceRef<S> {
        self.entry.service::<S>().unwrap()
    }

    /// The shop's URL (`http://127.0.0.1:PORT`), asked of the frontend
    /// module wherever it runs.
    pub async fn shop_url(&self) -> String {
        let status = self
            .service::<frontend::api::Frontend>()
            .call(frontend::api::GetStatus {})
            .await
            .unwrap()
            .unwrap();
        status.url
    }

    /// A shopper with no cookies, at the shop.
    pub async fn shopper(&self) -> shopper::Shopper {
        shopper::Shopper::new(&self.shop_url().await)
    }

    /// Node `name`, started in this process (split runner).
    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name() == name)
            .unwrap_or_else(|| panic!("no node {name} in this process"))
    }

    /// Starts node `name` again, in this process, on its address (split
    /// runner, after [`App::stop_node`]).
    pub async fn restart_node(&mut self, name: &str) {
        let node = Node::builder(&self.plan, &boutique::catalogue())
            .secret(secret())
            .start(name)
            .await
            .unwrap();
        self.nodes.push(node);
    }

    /// Stops node `name` (split and processes runners).
    pub async fn stop_node(&mut self, name: &str) {
        if let Some(index) = self.nodes.iter().position(|n| n.name() == name) {
            self.nodes.remove(index).shutdown();
        }
        if let Some(index) = self.children.iter().position(|(n, _)| n == name) {
            let (_, mut child) = self.children.remove(index);
            child.kill().await.unwrap();
        }
    }
}

/// What every runner sets: the data directory, and the web server on a
/// free port.
pub fn shop_overrides(dir: &storage::testing::TempDir) -> Vec<String> {
    vec![
        data_dir(dir),
        "modules.frontend.listen=127.0.0.1:0".to_owned(),
    ]
}

/// The override that puts a node's files in `dir`.
pub fn data_dir(dir: &storage::testing::TempDir) -> String {
    format!("runtime.data_dir={}", dir.path().display())
}

/// Starts `boutique --config FILE --set ... run --node NAME` and waits for it
/// to print the address it listens on.
pub async fn spawn_node(file: &str, name: &str, overrides: &[String]) -> (Child, SocketAddr) {
    spawn_node_with_secret(file, name, overrides, SECRET.as_ref()).await
}

/// [`spawn_node`], the node given `secret` as its cluster secret.
pub async fn spawn_node_with_secret(
    file: &str,
    name: &str,
    overrides: &[String],
    secret: &std::ffi::OsStr,
) -> (Child, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_boutique"));
    command.arg("--config").arg(repo(file));
    for entry in overrides {
        command.arg("--set").arg(entry);
    }
    command
        .args(["run", "--node", name])
        .env("BOUTIQUE_SECRET", secret)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let addr = await_line(&mut child, &format!("node {name}"), "listening on ").await;
    (child, addr.parse().unwrap())
}

/// Starts the whole shop as one `boutique run` process (config.toml) with
/// overrides, and waits for it to print the shop's URL.
pub async fn spawn_shop(overrides: &[String]) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_boutique"));
    command.arg("--config").arg(repo("config.toml"));
    for entry in overrides {
        command.arg("--set").arg(entry);
    }
    command
        .arg("run")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let url = await_line(&mut child, "the shop", "shop open at ").await;
    (child, url)
}

/// Reads `child`'s stdout until a line contains `marker`, and returns what
/// follows it; then keeps reading in the background, so the child never
/// blocks on a full pipe.
async fn await_line(child: &mut Child, what: &str, marker: &str) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(READY_WITHIN, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some((_, rest)) = line.split_once(marker) {
                return rest.trim().to_owned();
            }
        }
        panic!("{what} exited before it said {marker:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("{what} did not say {marker:?} within {READY_WITHIN:?}"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    found
}

/// Generates one test per scenario and runner.
#[macro_export]
macro_rules! scenarios {
    ($($scenario:ident),* $(,)?) => {
        $crate::scenarios!(@runner local, Local, $($scenario),*);
        $crate::scenarios!(@runner serialized, Serialized, $($scenario),*);
        $crate::scenarios!(@runner split, Split, $($scenario),*);
        $crate::scenarios!(@runner processes, Processes, $($scenario),*);
    };
    (@runner $module:ident, $runner:ident, $($scenario:ident),*) => {
        mod $module {
            $(
                #[actix_rt::test]
                async fn $scenario() {
                    let app = $crate::support::App::start($crate::support::Runner::$runner).await;
                    $crate::scenarios::$scenario(&app).await;
                }
            )*
        }
    };
}
