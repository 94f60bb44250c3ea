//! `boutique up`: every node of the config as a child process of this one.
//!
//! Each child is `boutique run --node N` with the same config and overrides.
//! Nodes start one at a time, callees first, each once the one before says
//! it is ready; a node configured to listen on port 0 gets a free port, and
//! the nodes started after it are told that address (`--set
//! nodes.N.listen=ADDR`), so a whole split deployment runs on free ports.
//! Their output is merged into one stream, each line prefixed with its
//! node's name. A child that exits is reported and the others keep running;
//! Ctrl-C (or SIGTERM) asks every child to stop with SIGTERM, waits for them,
//! and kills any that do not stop within ten seconds.

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
        let mut running: BTreeMap<String, u32> = BTreeMap::new();
        let mut overrides = args.overrides.clone();
        for node in plan.node_start_order() {
            let mut command = Command::new(&exe);
            if let Some(config) = &config {
                command.arg("--config").arg(config);
            }
            for entry in &overrides {
                command.arg("--set").arg(entry);
            }
            command
                .args(["run", "--node", &node.name])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let mut child = command.spawn()?;
            let pid = child.id().unwrap_or_default();
            forward(&node.name, child.stderr.take());
            let ready = match child.stdout.take() {
                Some(stdout) => forward_until_ready(&node.name, stdout).await,
                None => Ready::Exited,
            };
            running.insert(node.name.clone(), pid);
            println!("[up] started node '{}' (pid {pid})", node.name);
            match ready {
                Ready::Listening(addr) => overrides.push(format!("nodes.{}.listen={addr}", node.name)),
                Ready::Running => {}
                Ready::Exited => println!("[up] node '{}' exited before it was ready", node.name),
                Ready::TimedOut => println!(
                    "[up] node '{}' did not say it was ready within {READY_WITHIN:?}; starting the rest",
                    node.name
                ),
            }
            let exits = exits.clone();
            let name = node.name.clone();
            tokio::spawn(async move {
                let status = wait(child).await;
                let _ = exits.send((name, status));
            });
        }
        drop(exits);

        let stop = signal::stop_requested();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                why = &mut stop => {
                    println!("[up] {why}: stopping every node");
                    break;
                }
                report = exited.recv() => match report {
                    Some((name, status)) => {
                        running.remove(&name);
                        println!("[up] node '{name}' exited: {status}");
                        if running.is_empty() {
                            println!("[up] every node has exited");
                            return Ok(ExitCode::FAILURE);
                        }
                    }
                    None => return Ok(ExitCode::FAILURE),
                },
            }
        }
        for pid in running.values() {
            send_signal(*pid, libc::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while !running.is_empty() {
            match tokio::time::timeout_at(deadline, exited.recv()).await {
                Ok(Some((name, status))) => {
                    running.remove(&name);
                    println!("[up] node '{name}' stopped: {status}");
                }
                Ok(None) => break,
                Err(_) => {
                    for (name, pid) in &running {
                        println!("[up] node '{name}' did not stop in time; killing it");
                        send_signal(*pid, libc::SIGKILL);
                    }
                    break;
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait(mut child: Child) -> String {
    match child.wait().await {
        Ok(status) => status.to_string(),
        Err(e) => format!("could not be waited for: {e}"),
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
