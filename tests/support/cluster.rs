//! A split deployment of the real binary for fault-injection tests: one OS
//! process per node of `deploy/three-nodes.toml`, each on an ephemeral port
//! with its own data, that a test can kill, stop, resume, restart on the
//! same port, or fault through `boutique run --fault-control`; and a client
//! node in the test process that calls them.
//!
//! Each node's stderr (its `warn` log) is kept, so a test can show that
//! something was, or was not, logged.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use runtime::{Node, Service, ServiceRef};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::{SECRET, plan, repo, secret, shop_overrides};

/// The deployment every fault test runs.
const DEPLOYMENT: &str = "deploy/three-nodes.toml";

/// How long a node may take to say it is listening, or to acknowledge a fault.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// One node, running as a process.
struct NodeProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: mpsc::UnboundedReceiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

/// The deployment, as processes, and a client node to call it.
pub struct Cluster {
    /// Every node's files; gone with the cluster.
    data: storage::testing::TempDir,
    /// The overrides each node was started with (its address included), by
    /// name: a restart uses them again.
    overrides: Vec<(String, Vec<String>)>,
    processes: Vec<(String, NodeProcess)>,
    /// Admin sockets bound by the test, by node: handed to the node at
    /// every start, as `boutique up` does.
    admin_sockets: Vec<(String, std::net::TcpListener)>,
    client: Node,
}

impl Cluster {
    /// Starts every node, callees first; `extra` adds overrides for one
    /// node (`("store", "runtime.max_in_flight_per_peer=16")`).
    pub async fn start(extra: &[(&str, &str)]) -> Cluster {
        Cluster::start_with_admins(extra, &[]).await
    }

    /// [`Cluster::start`], and nodes `admins` get admin endpoints, on
    /// sockets bound here and handed to them (`boutique::handoff`), so that
    /// every node is told every admin address before any starts.
    pub async fn start_with_admins(extra: &[(&str, &str)], admins: &[&str]) -> Cluster {
        let admin_sockets: Vec<(String, std::net::TcpListener)> = admins
            .iter()
            .map(|node| {
                let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                ((*node).to_owned(), socket)
            })
            .collect();
        let template = plan(DEPLOYMENT, &[]);
        let order: Vec<String> = template
            .node_start_order()
            .iter()
            .map(|n| n.name.clone())
            .collect();
        let data = storage::testing::TempDir::new("faults");
        // Warnings and worse, unless a test asks for more (`logging.level`
        // of one node, given in `extra`, comes later and wins).
        let mut known = shop_overrides(&data);
        known.push("logging.level=warn".to_owned());
        for (node, socket) in &admin_sockets {
            known.push(format!(
                "nodes.{node}.admin={}",
                socket.local_addr().unwrap()
            ));
        }
        let mut overrides = Vec::new();
        let mut processes = Vec::new();
        for name in &order {
            let mut own = known.clone();
            own.extend(
                extra
                    .iter()
                    .filter(|(node, _)| node == name)
                    .map(|(_, entry)| (*entry).to_owned()),
            );
            let mut first = own.clone();
            first.push(format!("nodes.{name}.listen=127.0.0.1:0"));
            let (process, addr) = spawn(name, &first, admin_socket(&admin_sockets, name)).await;
            let listen = format!("nodes.{name}.listen={addr}");
            own.push(listen.clone());
            known.push(listen);
            overrides.push((name.clone(), own));
            processes.push((name.clone(), process));
        }
        let client = Node::builder(&plan(DEPLOYMENT, &known), &boutique::catalogue())
            .secret(secret())
            .client()
            .await
            .unwrap();
        Cluster {
            data,
            overrides,
            processes,
            admin_sockets,
            client,
        }
    }

    /// The test's own node (a client of the deployment).
    pub fn client(&self) -> &Node {
        &self.client
    }

    /// A ref to service `S` from the test's client node, waiting at most
    /// `timeout` per call.
    pub fn service<S: Service>(&self, timeout: Duration) -> ServiceRef<S> {
        self.client.service::<S>().unwrap().with_timeout(timeout)
    }

    fn process(&mut self, name: &str) -> &mut NodeProcess {
        self.processes
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
            .unwrap_or_else(|| panic!("no node {name} is running"))
    }

    fn pid(&mut self, name: &str) -> i32 {
        let pid = self.process(name).child.id().expect("the node has exited");
        i32::try_from(pid).unwrap()
    }

    /// Sends `signal` (`libc::SIGSTOP`, `libc::SIGCONT`, ...) to node `name`.
    pub fn signal(&mut self, name: &str, signal: i32) {
        let pid = self.pid(name);
        // SAFETY: kill(2) with a pid this test started and still owns.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill({pid}, {signal}) failed");
    }

    /// Takes node `name`'s process out of the running ones.
    fn take(&mut self, name: &str) -> NodeProcess {
        let index = self
            .processes
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no node {name} is running"));
        self.processes.remove(index).1
    }

    /// `kill -9` node `name`, and waits until it is gone.
    pub async fn kill(&mut self, name: &str) {
        self.take(name).child.kill().await.unwrap();
    }

    /// Sends node `name` SIGTERM and waits for it to exit; returns how.
    pub async fn terminate(&mut self, name: &str) -> std::process::ExitStatus {
        self.signal(name, libc::SIGTERM);
        let mut process = self.take(name);
        tokio::time::timeout(ANSWER_WITHIN, process.child.wait())
            .await
            .unwrap_or_else(|_| panic!("node {name} did not exit after SIGTERM"))
            .unwrap()
    }

    /// Starts node `name` again, with the same config, address and data.
    pub async fn restart(&mut self, name: &str) {
        assert!(
            self.processes.iter().all(|(n, _)| n != name),
            "node {name} is still running"
        );
        let (_, overrides) = self
            .overrides
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no node {name} in the deployment"));
        let (process, _) = spawn(
            name,
            &overrides.clone(),
            admin_socket(&self.admin_sockets, name),
        )
        .await;
        self.processes.push((name.to_owned(), process));
    }

    /// Has node `name` apply one fault-control command (`cut web`, `stall
    /// store`, ...) and waits until it says it did.
    pub async fn fault(&mut self, name: &str, command: &str) {
        let process = self.process(name);
        process
            .stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        process.stdin.flush().await.unwrap();
        let applied = format!("fault applied: {command}");
        tokio::time::timeout(ANSWER_WITHIN, async {
            while let Some(line) = process.stdout.recv().await {
                assert!(!line.contains("fault refused"), "{line}");
                if line.contains(&applied) {
                    return;
                }
            }
            panic!("node {name} exited before it applied {command:?}");
        })
        .await
        .unwrap_or_else(|_| panic!("node {name} did not apply {command:?}"));
    }

    /// The lines node `name` has logged so far (level warn and above).
    pub fn log(&mut self, name: &str) -> Vec<String> {
        self.process(name)
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Node `name`'s peak resident memory so far, in KiB (`VmHWM`).
    pub fn peak_memory_kib(&mut self, name: &str) -> u64 {
        let pid = self.pid(name);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
    }

    /// The shop's URL, asked of the frontend wherever it runs.
    pub async fn shop_url(&self) -> String {
        let status = self
            .service::<frontend::api::Frontend>(Duration::from_secs(10))
            .call(frontend::api::GetStatus {})
            .await
            .unwrap()
            .unwrap();
        status.url
    }

    /// The URL of node `name`'s admin endpoints (started with
    /// `nodes.NAME.admin=127.0.0.1:0`), as it printed it.
    pub async fn admin_url(&mut self, name: &str) -> String {
        self.stdout_line(name, "admin on ").await
    }

    /// What follows `marker` in the next line of node `name`'s stdout that
    /// has it.
    pub async fn stdout_line(&mut self, name: &str, marker: &str) -> String {
        let process = self.process(name);
        tokio::time::timeout(ANSWER_WITHIN, async {
            while let Some(line) = process.stdout.recv().await {
                if let Some((_, rest)) = line.split_once(marker) {
                    return rest.trim().to_owned();
                }
            }
            panic!("node {name} exited before it said {marker:?}");
        })
        .await
        .unwrap_or_else(|_| panic!("node {name} did not say {marker:?}"))
    }

    /// Where the nodes keep their files.
    pub fn data(&self) -> &storage::testing::TempDir {
        &self.data
    }
}

/// The admin socket held for node `name`, if any.
fn admin_socket<'a>(
    sockets: &'a [(String, std::net::TcpListener)],
    name: &str,
) -> Option<&'a std::net::TcpListener> {
    sockets
        .iter()
        .find(|(node, _)| node == name)
        .map(|(_, socket)| socket)
}

/// Starts `boutique run --node NAME --fault-control`, handing it
/// `admin_socket`, and waits until it listens.
async fn spawn(
    name: &str,
    overrides: &[String],
    admin_socket: Option<&std::net::TcpListener>,
) -> (NodeProcess, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_boutique"));
    command.arg("--config").arg(repo(DEPLOYMENT));
    for entry in overrides {
        command.arg("--set").arg(entry);
    }
    command
        .args(["run", "--node", name, "--fault-control"])
        .env("BOUTIQUE_SECRET", SECRET)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(socket) = admin_socket {
        boutique::handoff::hand_to(&mut command, socket);
    }
    let mut child = command.spawn().unwrap();
    let stdin = child.stdin.take().unwrap();

    let (lines_tx, mut stdout) = mpsc::unbounded_channel();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let log = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&log);
    let prefix = name.to_owned();
    let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            eprintln!("[{prefix}] {line}");
            kept.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line);
        }
    });

    let addr = tokio::time::timeout(ANSWER_WITHIN, async {
        while let Some(line) = stdout.recv().await {
            if let Some((_, addr)) = line.split_once("listening on ") {
                return addr.trim().parse::<SocketAddr>().unwrap();
            }
        }
        panic!("node {name} exited before it said it was listening");
    })
    .await
    .unwrap_or_else(|_| panic!("node {name} did not listen within {ANSWER_WITHIN:?}"));
    let process = NodeProcess {
        child,
        stdin,
        stdout,
        log,
    };
    (process, addr)
}
