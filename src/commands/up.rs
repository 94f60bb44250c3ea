//! `boutique up`: every node of the config as a child process of this one.
//!
//! Each child is `boutique run --node N` with the same config and overrides.
//! Nodes start one at a time, callees first, each once the one before says
//! it is ready; a node configured to listen on port 0 gets a free port, and
//! the nodes started after it are told that address (`--set
//! nodes.N.listen=ADDR`), so a whole split deployment runs on free ports.
//! Every node gets admin endpoints (the config's address, or a free port
//! on loopback, bound here and handed to the node: see `handoff`), every
//! node is told all of them, and `up` prints the URL of the dashboard, which
//! shows the whole deployment.
//! Their output is merged into one stream, each line prefixed with its
//! node's name. A child that exits is reported and started again, on the
//! same address, after a backoff (100 ms, doubling to 10 s; back to 100 ms
//! once it has run for 30 s), while the others keep running; one that exits
//! with a config or usage error (exit code 78 or 64) would only fail again,
//! and is not. Ctrl-C (or SIGTERM) asks every child to stop with SIGTERM,
//! waits for them, and kills any that do not stop within ten seconds.

use std::collections::BTreeMap;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::{load_plan, signal};
use crate::cli::ConfigArgs;

/// How long children get to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a child may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Starts every node and supervises them until asked to stop.
pub fn up(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let catalogue = boutique::catalogue();
    let plan = load_plan(args, &catalogue)?;
    if let Some(var) = plan.secret_env.as_deref().filter(|_| plan.is_split()) {
        // Every child would fail the same way; say it once.
        runtime::transport::handshake::Secret::from_env(var)?;
    }
    let exe = std::env::current_exe()?;
    let config = args.file().map(std::path::absolute).transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (exits, mut exited) = mpsc::unbounded_channel();
        let (restarts, mut restart) = mpsc::unbounded_channel::<String>();
        let mut running: BTreeMap<String, Running> = BTreeMap::new();
        let mut overrides = args.overrides.clone();
        // Every node gets admin endpoints (and so a dashboard), and every
        // node is told all of their addresses, so that each dashboard shows
        // the whole deployment.
        let admins = admin_endpoints(&plan)?;
        for admin in &admins {
            overrides.push(format!("nodes.{}.admin={}", admin.node, admin.addr));
        }
        let launcher = Launcher {
            exe,
            config,
            exits,
            admins,
        };
        for node in plan.node_start_order() {
            let (pid, ready) = launcher.start(&node.name, &overrides).await?;
            running.insert(node.name.clone(), Running::new(pid));
            if let Some(addr) = ready {
                overrides.push(format!("nodes.{}.listen={addr}", node.name));
            }
        }
        // The dashboard of the node that serves the shop, or the first.
        let shown = plan
            .nodes()
            .iter()
            .find(|n| n.modules.contains(&"frontend"))
            .or_else(|| plan.nodes().first())
            .and_then(|n| launcher.admins.iter().find(|admin| admin.node == n.name));
        if let Some(Admin { node, addr, .. }) = shown {
            println!("[up] dashboard at http://{addr}/ (node '{node}'; every node serves one)");
        }

        let stop = signal::stop_requested();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                why = &mut stop => {
                    println!("[up] {why}: stopping every node");
                    break;
                }
                Some(name) = restart.recv() => {
                    match launcher.start(&name, &overrides).await {
                        Ok((pid, _)) => {
                            if let Some(node) = running.get_mut(&name) {
                                node.restarted(pid);
                            }
                        }
                        Err(error) => {
                            println!("[up] node '{name}' could not be started again: {error}");
                            running.remove(&name);
                        }
                    }
                }
                report = exited.recv() => match report {
                    Some(Exit { node: name, pid, status, code }) => {
                        let Some(node) = running.get_mut(&name).filter(|n| n.pid == pid) else {
                            continue;
                        };
                        if matches!(code, Some(crate::exit::CONFIG | crate::exit::USAGE)) {
                            println!("[up] node '{name}' exited: {status}; its config is wrong, so it is not started again");
                            running.remove(&name);
                        } else {
                            let backoff = node.backoff();
                            println!("[up] node '{name}' exited: {status}; starting it again in {} ms", backoff.as_millis());
                            let restarts = restarts.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(backoff).await;
                                let _ = restarts.send(name);
                            });
                        }
                        if running.is_empty() {
                            println!("[up] every node has exited");
                            return Ok(ExitCode::FAILURE);
                        }
                    }
                    None => return Ok(ExitCode::FAILURE),
                },
            }
        }
        for node in running.values() {
            send_signal(node.pid, libc::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while !running.is_empty() {
            match tokio::time::timeout_at(deadline, exited.recv()).await {
                Ok(Some(Exit { node: name, pid, status, .. })) => {
                    if running.get(&name).is_some_and(|n| n.pid == pid) {
                        running.remove(&name);
                        println!("[up] node '{name}' stopped: {status}");
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    for (name, node) in &running {
                        println!("[up] node '{name}' did not stop in time; killing it");
                        send_signal(node.pid, libc::SIGKILL);
                    }
                    break;
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A node's admin endpoint, as `up` arranges it.
struct Admin {
    node: String,
    addr: std::net::SocketAddr,
    /// The socket bound for it here, handed to the node (see `handoff`);
    /// `None` when the config fixes the address and the node binds it.
    socket: Option<std::net::TcpListener>,
}

/// Each node's admin endpoint: the config's address, or a free port on
/// loopback for a node that has none (or port 0), chosen now so that every
/// node can be told every address. A port chosen here stays bound here,
/// for as long as `up` runs, and is handed to the node: a port let go would
/// not be reserved, and the node's own listener (or any other bind of port
/// 0) could be given it first.
fn admin_endpoints(plan: &runtime::Plan) -> anyhow::Result<Vec<Admin>> {
    plan.nodes()
        .iter()
        .map(|node| {
            let (addr, socket) = match node.admin.filter(|a| a.port() != 0) {
                Some(addr) => (addr, None),
                None => {
                    let ip = node
                        .admin
                        .map_or(std::net::Ipv4Addr::LOCALHOST.into(), |a| a.ip());
                    let socket = std::net::TcpListener::bind((ip, 0))?;
                    (socket.local_addr()?, Some(socket))
                }
            };
            Ok(Admin {
                node: node.name.clone(),
                addr,
                socket,
            })
        })
        .collect()
}

/// The first wait before starting a node that exited again.
const RESTART_FIRST: Duration = Duration::from_millis(100);
/// The longest wait.
const RESTART_MAX: Duration = Duration::from_secs(10);
/// A node that ran this long before it exited starts again at once.
const RAN_WELL: Duration = Duration::from_secs(30);

/// A node's child process, and its record of restarts.
struct Running {
    pid: u32,
    since: tokio::time::Instant,
    /// Exits in a row, each soon after a start.
    quick_exits: u32,
}

impl Running {
    fn new(pid: u32) -> Running {
        Running {
            pid,
            since: tokio::time::Instant::now(),
            quick_exits: 0,
        }
    }

    fn restarted(&mut self, pid: u32) {
        self.pid = pid;
        self.since = tokio::time::Instant::now();
    }

    /// How long to wait before starting it again, now that it exited.
    fn backoff(&mut self) -> Duration {
        if self.since.elapsed() >= RAN_WELL {
            self.quick_exits = 0;
        }
        let backoff = RESTART_FIRST
            .saturating_mul(1 << self.quick_exits.min(10))
            .min(RESTART_MAX);
        self.quick_exits = self.quick_exits.saturating_add(1);
        backoff
    }
}

/// A child's exit, reported by the task that waits for it.
struct Exit {
    node: String,
    pid: u32,
    status: String,
    code: Option<u8>,
}

/// Starts nodes as children of this process.
struct Launcher {
    exe: std::path::PathBuf,
    config: Option<std::path::PathBuf>,
    exits: mpsc::UnboundedSender<Exit>,
    /// Every node's admin endpoint.
    admins: Vec<Admin>,
}

impl Launcher {
    /// Starts node `name` with `overrides`, forwards its output, waits
    /// until it is ready; returns its pid and the address it listens on.
    async fn start(
        &self,
        name: &str,
        overrides: &[String],
    ) -> std::io::Result<(u32, Option<String>)> {
        let mut command = Command::new(&self.exe);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        for entry in overrides {
            command.arg("--set").arg(entry);
        }
        command
            .args(["run", "--node", name])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let handed = self.admins.iter().find(|admin| admin.node == name);
        if let Some(socket) = handed.and_then(|admin| admin.socket.as_ref()) {
            boutique::handoff::hand_to(&mut command, socket);
        }
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or_default();
        forward(name, child.stderr.take());
        let ready = match child.stdout.take() {
            Some(stdout) => forward_until_ready(name, stdout).await,
            None => Ready::Exited,
        };
        println!("[up] started node '{name}' (pid {pid})");
        let addr = match ready {
            Ready::Listening(addr) => Some(addr),
            Ready::Running => None,
            Ready::Exited => {
                println!("[up] node '{name}' exited before it was ready");
                None
            }
            Ready::TimedOut => {
                println!(
                    "[up] node '{name}' did not say it was ready within {READY_WITHIN:?}; going on"
                );
                None
            }
        };
        let exits = self.exits.clone();
        let node = name.to_owned();
        tokio::spawn(async move {
            let (status, code) = wait(child).await;
            let _ = exits.send(Exit {
                node,
                pid,
                status,
                code,
            });
        });
        Ok((pid, addr))
    }
}

/// Waits for `child` to exit: how, for people, and its exit code.
async fn wait(mut child: Child) -> (String, Option<u8>) {
    match child.wait().await {
        Ok(status) => (
            status.to_string(),
            status.code().and_then(|c| u8::try_from(c).ok()),
        ),
        Err(e) => (format!("could not be waited for: {e}"), None),
    }
}

fn send_signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid > 0 {
        // SAFETY: kill(2) has no memory effects; the pid is our own child,
        // not yet reaped (its exit has not been reported), so it is not reused.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// How a node's start went.
enum Ready {
    /// It listens on this address.
    Listening(String),
    /// It runs, without listening.
    Running,
    /// Its output ended first.
    Exited,
    /// It said nothing within [`READY_WITHIN`].
    TimedOut,
}

/// Forwards the node's stdout until it says it is ready, then forwards the
/// rest in the background.
async fn forward_until_ready(node: &str, stream: impl AsyncRead + Unpin + Send + 'static) -> Ready {
    let prefix = format!("[{node}]");
    let mut lines = BufReader::new(stream).lines();
    let ready = tokio::time::timeout(READY_WITHIN, async {
        while let Ok(Some(line)) = lines.next_line().await {
            println!("{prefix} {line}");
            if let Some((_, addr)) = line.split_once("listening on ") {
                return Ready::Listening(addr.trim().to_owned());
            }
            if line.contains("every module runs in this process") {
                return Ready::Running;
            }
        }
        Ready::Exited
    })
    .await
    .unwrap_or(Ready::TimedOut);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            println!("{prefix} {line}");
        }
    });
    ready
}

fn forward(node: &str, stream: Option<impl AsyncRead + Unpin + Send + 'static>) {
    let Some(stream) = stream else { return };
    let prefix = format!("[{node}]");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("{prefix} {line}");
        }
    });
}
