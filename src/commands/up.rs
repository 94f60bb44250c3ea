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
//! Their output is merged into one stream (stdout), each line prefixed
//! with its node's name. With `--log-format json` (passed on to the
//! nodes) or `[logging] format = "json"`, a node's log line, a JSON
//! object, is forwarded as that object with a `"node"` field first
//! instead, so that every log line stays JSON; `up`'s own lines and the
//! nodes' ready lines stay text (they do not start with `{`).
//!
//! A child that exits is reported and started again, on the same
//! address, after a backoff (100 ms, doubling to 10 s; back to 100 ms
//! once it has run for 30 s), while the others keep running; one that exits
//! with a config or usage error (exit code 78 or 64) would only fail again,
//! and is not. A node that first comes up on a restart (its first start
//! failed) is given the address it got from then on, and the nodes started
//! after that are told it.
//!
//! Ctrl-C (or SIGTERM), at any time from the start, asks every running
//! child to stop with SIGTERM, callers first (a node once every node that
//! calls it has exited: see `stopping`), waits for them, and kills any
//! that do not stop within its `shutdown_grace_ms` and five seconds more;
//! a node waiting to be started again is simply not started. Signals reach a child only through the task that holds
//! it, and only until it has been reaped, so never a process that was
//! given its pid since. If `up` itself is killed outright, the kernel
//! sends its children SIGTERM (`PR_SET_PDEATHSIG`).

use std::collections::BTreeMap;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use super::{load_plan, signal};
use crate::cli::{ConfigArgs, LogFormatArg};

/// Writes a line of `up`'s output (its own, and the nodes' it forwards).
/// A reader that went away (`up | head`, or a `tee` stopped by the same
/// Ctrl-C) is no reason to stop: the line is dropped, and `up` goes on
/// supervising, and stopping, the nodes. `println!` would panic there: on
/// `up`'s own thread its unwinding would kill every node without its grace
/// period, and a forwarding task that stopped would leave its node blocked
/// on a full pipe.
macro_rules! say {
    ($($line:tt)*) => {
        say_line(format_args!($($line)*))
    };
}

/// Queues one line for `say!`. A thread of its own writes them, through
/// [`super::print`] (any failure to write is dropped: nothing is left to
/// tell it to). A reader that stops reading without closing the pipe
/// (`up | less` while it pages, Ctrl-S in a terminal) blocks that thread
/// only: `up` goes on handling signals and reading its nodes' output, and
/// once [`QUEUED_LINES`] wait, further lines are dropped and counted, and
/// the count is written when the reader takes lines again. (Written from
/// here, a stalled reader stalled `up`, then every node, blocked on its
/// next log line.)
fn say_line(line: std::fmt::Arguments<'_>) {
    let text = format!("{line}\n");
    match output() {
        Some(queue) => {
            // The lines dropped since the last one queued go with this
            // one: their count is written where they are missing.
            let dropped = DROPPED_LINES.swap(0, std::sync::atomic::Ordering::Relaxed);
            if let Err(std::sync::mpsc::TrySendError::Full(_)) =
                queue.try_send(Output::Line { dropped, text })
            {
                DROPPED_LINES.fetch_add(dropped + 1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        None => {
            let _ = super::print(&text);
        }
    }
}

/// Lines waiting for the reader of `up`'s output, at most (each at most
/// [`MAX_LINE_BYTES`]: 64 MiB in all, at the very most).
const QUEUED_LINES: usize = 1_000;

/// Lines dropped since the last count was written.
static DROPPED_LINES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What the writer thread is given.
enum Output {
    /// A line, after `dropped` lines that found the queue full.
    Line { dropped: u64, text: String },
    /// Says when every line queued before it is written.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The writer thread's queue, started on first use; `None` if no thread
/// could be started (lines are then written where they are said).
fn output() -> Option<&'static std::sync::mpsc::SyncSender<Output>> {
    static QUEUE: std::sync::OnceLock<Option<std::sync::mpsc::SyncSender<Output>>> =
        std::sync::OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (queue, queued) = std::sync::mpsc::sync_channel(QUEUED_LINES);
            std::thread::Builder::new()
                .name("up-output".to_owned())
                .spawn(move || {
                    for output in queued {
                        match output {
                            Output::Line { dropped, text } => {
                                say_dropped(dropped);
                                let _ = super::print(&text);
                            }
                            Output::Flush(done) => {
                                // Lines dropped after the last one queued.
                                say_dropped(
                                    DROPPED_LINES.swap(0, std::sync::atomic::Ordering::Relaxed),
                                );
                                let _ = done.send(());
                            }
                        }
                    }
                })
                .ok()
                .map(|_| queue)
        })
        .as_ref()
}

/// Writes, where they are missing, how many lines were dropped.
fn say_dropped(dropped: u64) {
    if dropped > 0 {
        let _ = super::print(&format!(
            "[up] {dropped} lines dropped here: the reader of this output fell behind\n"
        ));
    }
}

/// Waits until the lines said so far are written, or [`LAST_LINES_WITHIN`]
/// has passed (a reader stalled for good does not keep `up` from exiting).
fn flush_output() {
    let Some(queue) = output() else { return };
    let (done, written) = std::sync::mpsc::channel();
    let deadline = std::time::Instant::now() + LAST_LINES_WITHIN;
    let mut flush = Output::Flush(done);
    loop {
        match queue.try_send(flush) {
            Ok(()) => break,
            Err(std::sync::mpsc::TrySendError::Full(again)) => {
                if std::time::Instant::now() >= deadline {
                    return;
                }
                flush = again;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return,
        }
    }
    let _ = written.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
}

/// How long children get to stop after SIGTERM, beyond their own
/// `shutdown_grace_ms`: a node stops its admin endpoints and flushes its
/// telemetry after the grace (up to about 3 s).
const STOP_MARGIN: Duration = Duration::from_secs(5);
/// How long killed children get to be reaped and reported.
const KILLED_WITHIN: Duration = Duration::from_secs(5);
/// How long a child may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long a node's exit waits for its last lines to be forwarded.
const LAST_LINES_WITHIN: Duration = Duration::from_secs(1);
/// A node's line longer than this is forwarded in pieces of this size: a
/// node that writes without line breaks does not grow `up`'s memory.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Starts every node and supervises them until asked to stop.
pub fn up(
    args: &ConfigArgs,
    log_format: Option<LogFormatArg>,
    give_up_after: &str,
) -> anyhow::Result<ExitCode> {
    let give_up_after = super::load::parse_duration_of("--give-up-after", give_up_after)
        .map_err(crate::exit::UsageError)?;
    let catalogue = boutique::catalogue();
    let plan = load_plan(args, &catalogue)?;
    let json_logs = match log_format {
        Some(format) => format == LogFormatArg::Json,
        None => {
            runtime::config::load(&args.source())?.logging.format
                == Some(runtime::config::LogFormat::Json)
        }
    };
    if let Some(var) = plan.secret_env.as_deref().filter(|_| plan.is_split()) {
        // Every child would fail the same way; say it once.
        runtime::transport::handshake::Secret::from_env(var)?;
    }
    let clashes = plan.clashes_on_one_host(&catalogue);
    if !clashes.is_empty() {
        // Each node would fail to bind, and be started again, until given up.
        let clashes: Vec<String> = clashes
            .into_iter()
            .map(|clash| format!("{clash} (up runs every node on this machine)"))
            .collect();
        return Err(runtime::config::ConfigError::Invalid(clashes).into());
    }
    let exe = std::env::current_exe()?;
    let config = args.file().map(std::path::absolute).transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        // Signals are watched before the first child starts: a Ctrl-C
        // while nodes are starting stops the ones started, it does not
        // leave them running without a parent.
        let mut stop = signal::StopSignals::watch();
        let (exits, mut exited) = mpsc::unbounded_channel();
        let (restarts, mut restart) = mpsc::unbounded_channel::<String>();
        // How a restarted node's start went: awaited beside the others'
        // exits, not before them (a node slow to come back would hold up
        // every other node's restart for up to a minute).
        let (readied, mut ready): (ReadySender, _) = mpsc::unbounded_channel();
        let mut nodes: BTreeMap<String, Supervised> = BTreeMap::new();
        let mut overrides = Overrides(args.overrides.clone());
        // Every node gets admin endpoints (and so a dashboard), and every
        // node is told all of their addresses, so that each dashboard shows
        // the whole deployment.
        let admins = admin_endpoints(&plan)?;
        for admin in &admins {
            overrides.set(&admin.node, "admin", &admin.addr.to_string());
        }
        let mut launcher = Launcher {
            exe,
            config,
            log_format,
            json_logs,
            exits,
            late_ready: readied.clone(),
            admins,
            starts: 0,
        };
        let mut stopping = None;
        let mut failed = None;
        // The exit codes of the nodes given up on.
        let mut given_up: Vec<Option<u8>> = Vec::new();
        for node in plan.node_start_order() {
            let started = match launcher.start(&node.name, &overrides.0) {
                Ok(started) => started,
                Err(error) => {
                    failed = Some(anyhow::anyhow!("node '{}' could not be started: {error}", node.name));
                    break;
                }
            };
            nodes.insert(node.name.clone(), Supervised::new(started.child));
            match ready_or_stop(started.ready, &mut stop).await {
                Came::Ready(ready) => note_ready(&mut nodes, &mut overrides, &node.name, ready),
                Came::Stop(why) => {
                    stopping = Some(why);
                    break;
                }
            }
        }
        if stopping.is_none() && failed.is_none() {
            // The dashboard of the node that serves the shop, or the first.
            let shown = plan
                .nodes()
                .iter()
                .find(|n| n.modules.contains(&"frontend"))
                .or_else(|| plan.nodes().first())
                .and_then(|n| launcher.admins.iter().find(|admin| admin.node == n.name));
            if let Some(Admin { node, addr, .. }) = shown {
                say!("[up] dashboard at http://{addr}/ (node '{node}'; every node serves one)");
            }
        }

        let mut suspend = signal::suspend_signal();
        while stopping.is_none() && failed.is_none() {
            tokio::select! {
                // First: a stop asked for meanwhile is not followed by a
                // node started again.
                biased;
                why = stop.next() => stopping = Some(why),
                Some(()) = signal::next_suspend(&mut suspend) => {
                    // Ctrl-Z: the nodes, in process groups of their own, do
                    // not get it from the terminal. Stopped here with `up`,
                    // they are not left serving with nobody reading their
                    // output; `fg` or `bg` resumes `up`, which resumes them.
                    // The tasks that hold the nodes send the signals; each
                    // says when it has (or that its node is gone), so `up`
                    // stops only after every node has been stopped.
                    let sent: Vec<_> = nodes
                        .values()
                        .filter_map(|node| node.signal(libc::SIGSTOP))
                        .collect();
                    for signalled in sent {
                        let _ = signalled.await;
                    }
                    // SAFETY: raise(3) stops this process until SIGCONT.
                    unsafe { libc::raise(libc::SIGSTOP) };
                    for node in nodes.values() {
                        node.signal(libc::SIGCONT);
                    }
                    say!("[up] resumed, with every node");
                }
                Some(name) = restart.recv() => {
                    // A node given up on meanwhile is not started again.
                    let Some(node) = nodes.get_mut(&name) else { continue };
                    match launcher.start(&name, &overrides.0) {
                        Ok(started) => {
                            let start = started.child.start;
                            node.restarted(started.child);
                            let readied = readied.clone();
                            tokio::spawn(async move {
                                let _ = readied.send((name, start, started.ready.await));
                            });
                        }
                        Err(error) => {
                            // Perhaps for a moment (out of processes or
                            // descriptors): tried again, backing off, as
                            // an exit soon after a start is.
                            let backoff = node.exited();
                            say!("[up] node '{name}' could not be started again: {error}; trying again in {} ms", backoff.as_millis());
                            start_again_after(backoff, name, &restarts);
                        }
                    }
                }
                // Said by the start running now (an earlier one's words,
                // coming late, are old news).
                Some((name, start, came)) = ready.recv() => {
                    if nodes.get(&name).is_some_and(|node| node.is_start(start)) {
                        note_ready(&mut nodes, &mut overrides, &name, came);
                    }
                }
                report = exited.recv() => match report {
                    Some(Exit { node: name, start, status, code }) => {
                        let Some(node) = nodes.get_mut(&name).filter(|n| n.is_start(start)) else {
                            continue;
                        };
                        let backoff = node.exited();
                        let why_not_again = if matches!(code, Some(crate::exit::CONFIG | crate::exit::USAGE)) {
                            Some("its config is wrong".to_owned())
                        } else if node.hopeless(give_up_after) {
                            Some(format!("it has failed to start for {} ms without ever being ready (its own lines above say why; --give-up-after)", give_up_after.as_millis()))
                        } else {
                            None
                        };
                        match why_not_again {
                            Some(why) => {
                                say!("[up] node '{name}' exited: {status}; {why}, so it is not started again");
                                nodes.remove(&name);
                                given_up.push(code);
                            }
                            None => {
                                say!("[up] node '{name}' exited: {status}; starting it again in {} ms", backoff.as_millis());
                                start_again_after(backoff, name, &restarts);
                            }
                        }
                    }
                    None => failed = Some(anyhow::anyhow!("lost track of the nodes")),
                },
            }
            if nodes.is_empty() {
                say!("[up] every node has exited");
                // Each for its config: so is `up`'s exit (78, or 64).
                let code = match given_up.first() {
                    Some(&Some(code))
                        if matches!(code, crate::exit::CONFIG | crate::exit::USAGE)
                            && given_up.iter().all(|c| *c == Some(code)) =>
                    {
                        code
                    }
                    _ => crate::exit::SOFTWARE,
                };
                return Ok(ExitCode::from(code));
            }
        }
        if let Some(why) = stopping {
            say!("[up] {why}: stopping every node (a second Ctrl-C kills them)");
        }
        let grace = Duration::from_millis(plan.runtime.shutdown_grace_ms) + STOP_MARGIN;
        let calls: Vec<(String, String)> = plan
            .crossings()
            .into_iter()
            .map(|crossing| (crossing.caller_node, crossing.callee_node))
            .collect();
        let stopped = stop_all(nodes, &calls, &mut exited, grace, &mut stop).await;
        match (failed, stopped) {
            (Some(error), _) => Err(error),
            // A node was given up on: the deployment did not run whole.
            (None, Stopped::Gracefully) if !given_up.is_empty() => {
                say!(
                    "[up] {} node(s) had been given up on (see above): exiting {}",
                    given_up.len(),
                    crate::exit::SOFTWARE
                );
                Ok(ExitCode::from(crate::exit::SOFTWARE))
            }
            (None, Stopped::Gracefully) => Ok(ExitCode::SUCCESS),
            (None, Stopped::Unclean) => Ok(ExitCode::from(crate::exit::SOFTWARE)),
            (None, Stopped::KilledLate) => Ok(ExitCode::from(crate::exit::SOFTWARE)),
            (None, Stopped::KilledAsked) => Ok(ExitCode::from(crate::exit::INTERRUPTED)),
        }
    });
    flush_output();
    result
}

/// Asks for node `name` to be started again once `backoff` has passed.
fn start_again_after(backoff: Duration, name: String, restarts: &mpsc::UnboundedSender<String>) {
    let restarts = restarts.clone();
    tokio::spawn(async move {
        tokio::time::sleep(backoff).await;
        let _ = restarts.send(name);
    });
}

/// How node `node`'s start went: remembered for its supervision (a node
/// once ready is never given up on) and for the overrides (where it
/// listens).
fn note_ready(
    nodes: &mut BTreeMap<String, Supervised>,
    overrides: &mut Overrides,
    node: &str,
    ready: Result<Ready, oneshot::error::RecvError>,
) {
    if let Some(supervised) = nodes.get_mut(node) {
        supervised.ever_ready |= matches!(ready, Ok(Ready::Listening(_) | Ready::Running));
    }
    overrides.note_ready(node, ready);
}

/// What came first after a node was started.
enum Came {
    /// It said how its start went (or its reader went away).
    Ready(Result<Ready, oneshot::error::RecvError>),
    /// `up` was asked to stop, by this signal.
    Stop(&'static str),
}

/// Waits for a just-started node to say how its start went, or for the
/// signal to stop, whichever comes first.
async fn ready_or_stop(ready: oneshot::Receiver<Ready>, stop: &mut signal::StopSignals) -> Came {
    tokio::select! {
        ready = ready => Came::Ready(ready),
        why = stop.next() => Came::Stop(why),
    }
}

/// The `--set` overrides every node is started with: the command line's,
/// then the addresses `up` chose or learnt.
struct Overrides(Vec<String>);

impl Overrides {
    /// Sets `nodes.NODE.KEY`, in place of any earlier setting of it.
    fn set(&mut self, node: &str, key: &str, value: &str) {
        let setting = format!("nodes.{node}.{key}=");
        self.0.retain(|entry| !entry.starts_with(&setting));
        self.0.push(format!("{setting}{value}"));
    }

    /// Node `node` started and says `ready`: if it listens, the nodes
    /// started from now on are told where (nodes started before it learn
    /// it when they are started again), and it is started again there.
    fn note_ready(&mut self, node: &str, ready: Result<Ready, oneshot::error::RecvError>) {
        match ready.unwrap_or(Ready::Exited) {
            Ready::Listening(addr) => self.set(node, "listen", &addr),
            Ready::Running => {}
            Ready::Exited => say!("[up] node '{node}' exited before it was ready"),
            Ready::TimedOut => say!(
                "[up] node '{node}' did not say it was ready within {READY_WITHIN:?}; going on"
            ),
        }
    }
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
                    let bound = std::net::TcpListener::bind((ip, 0))
                        .and_then(|socket| Ok((socket.local_addr()?, socket)));
                    let (addr, socket) = bound.map_err(|e| {
                        anyhow::anyhow!(
                            "node '{0}' cannot have an admin port on {ip} ([nodes.{0}] admin): {e}; \
                             give an address of this machine",
                            node.name
                        )
                    })?;
                    (addr, Some(socket))
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
// After `say!`, which it uses.
mod stopping;
use stopping::{Stopped, stop_all};

/// A node that has never been ready is given up on once it has exited this
/// many times in a row and `--give-up-after` has passed since its first
/// exit: what stops it (a port taken, a database it cannot open) has not
/// gone away by itself in that time.
const GIVE_UP_AFTER: u32 = 5;

/// A node `up` looks after: its process while it runs, and its record of
/// restarts.
struct Supervised {
    /// The running process; `None` while it waits to be started again.
    child: Option<ChildHandle>,
    since: tokio::time::Instant,
    /// Exits in a row, each soon after a start.
    quick_exits: u32,
    /// It said it was ready at least once.
    ever_ready: bool,
    /// When its process first exited (while it had never been ready).
    first_exit: Option<tokio::time::Instant>,
}

impl Supervised {
    fn new(child: ChildHandle) -> Supervised {
        Supervised {
            child: Some(child),
            since: tokio::time::Instant::now(),
            quick_exits: 0,
            ever_ready: false,
            first_exit: None,
        }
    }

    /// Whether to give up on it, after an exit: it has never been ready,
    /// it exited [`GIVE_UP_AFTER`] times in a row, and `give_up_after` has
    /// passed since the first.
    fn hopeless(&mut self, give_up_after: Duration) -> bool {
        if self.ever_ready {
            return false;
        }
        let first = *self
            .first_exit
            .get_or_insert_with(tokio::time::Instant::now);
        self.quick_exits >= GIVE_UP_AFTER && first.elapsed() >= give_up_after
    }

    /// Whether `start` is the process running now (an exit reported for an
    /// earlier one is old news).
    fn is_start(&self, start: u64) -> bool {
        self.child
            .as_ref()
            .is_some_and(|child| child.start == start)
    }

    fn restarted(&mut self, child: ChildHandle) {
        self.child = Some(child);
        self.since = tokio::time::Instant::now();
    }

    /// Its process exited: how long to wait before starting it again.
    fn exited(&mut self) -> Duration {
        self.child = None;
        if self.since.elapsed() >= RAN_WELL {
            self.quick_exits = 0;
        }
        let backoff = RESTART_FIRST
            .saturating_mul(1 << self.quick_exits.min(10))
            .min(RESTART_MAX);
        self.quick_exits = self.quick_exits.saturating_add(1);
        backoff
    }

    /// Sends `signal` to its process, if it runs. What is returned
    /// resolves once the signal has been sent, or with an error once the
    /// process is known to have exited (it was not sent, and need not be).
    fn signal(&self, signal: libc::c_int) -> Option<oneshot::Receiver<()>> {
        let child = self.child.as_ref()?;
        let (sent, signalled) = oneshot::channel();
        // The task that holds the process is gone only once it exited.
        let _ = child.signals.send((signal, sent));
        Some(signalled)
    }
}

/// One start of a node's process, held by the task that waits for it.
struct ChildHandle {
    /// Which start this is (counted over all nodes).
    start: u64,
    /// Signals for the task to send to the process: it sends them only
    /// while the process has not been reaped, so never to a pid that could
    /// have been given to another process since.
    signals: mpsc::UnboundedSender<(libc::c_int, oneshot::Sender<()>)>,
}

/// A node just started: its process, and whether it came up.
struct Started {
    child: ChildHandle,
    /// Resolves once the node says it is ready (or exits, or says nothing
    /// within [`READY_WITHIN`]).
    ready: oneshot::Receiver<Ready>,
}

/// A child's exit, reported by the task that waits for it.
struct Exit {
    node: String,
    start: u64,
    status: String,
    code: Option<u8>,
}

/// The file to start a node from: on Linux, `/proc/self/exe`, the very
/// binary `up` runs, even after `exe`, its path, has been given a new build
/// (a `cargo build` while `up` runs): a node started again from the path
/// would be that build, which its peers refuse if its API differs, and
/// which the deployment must not mix in silently if not. Elsewhere, `exe`.
fn this_binary(exe: &std::path::Path) -> &std::path::Path {
    let own = std::path::Path::new("/proc/self/exe");
    if own.exists() { own } else { exe }
}

/// Starts nodes as children of this process.
struct Launcher {
    exe: std::path::PathBuf,
    config: Option<std::path::PathBuf>,
    /// `--log-format`, passed on to every node.
    log_format: Option<LogFormatArg>,
    /// Whether the nodes log JSON (see the file's comment).
    json_logs: bool,
    exits: mpsc::UnboundedSender<Exit>,
    /// Where a node that said it was ready only after [`READY_WITHIN`]
    /// says so (its address is still to be learnt).
    late_ready: ReadySender,
    /// Every node's admin endpoint.
    admins: Vec<Admin>,
    /// Processes started so far.
    starts: u64,
}

impl Launcher {
    /// Starts node `name` with `overrides` and forwards its output; a task
    /// holds the process and reports its exit.
    fn start(&mut self, name: &str, overrides: &[String]) -> std::io::Result<Started> {
        let mut command = Command::new(this_binary(&self.exe));
        command.arg0(&self.exe);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        for entry in overrides {
            command.arg("--set").arg(entry);
        }
        if let Some(format) = self.log_format {
            command.arg("--log-format").arg(match format {
                LogFormatArg::Text => "text",
                LogFormatArg::Json => "json",
            });
        }
        command
            .args(["run", "--node", name])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // A process group of its own: a Ctrl-C in the terminal (sent
            // to the terminal's whole foreground group) or the terminal
            // closing reaches `up` alone, which stops each node once. Had
            // the node had it too, `up`'s SIGTERM would have been its
            // second signal, and it would have stopped at once, undrained.
            .process_group(0);
        let handed = self.admins.iter().find(|admin| admin.node == name);
        if let Some(socket) = handed.and_then(|admin| admin.socket.as_ref()) {
            boutique::handoff::hand_to(&mut command, socket);
        }
        // A node outlives a `up` killed outright (SIGKILL, a crash) only
        // as an orphan nobody stops: the kernel sends it SIGTERM instead.
        // If `up` died before the child asked, no signal would come: the
        // child sees it has another parent already, and stops.
        let parent = std::process::id();
        // SAFETY: signal(2), prctl(2), getppid(2) and raise(3) are
        // async-signal-safe, and the closure touches nothing else between
        // fork and exec.
        unsafe {
            command.pre_exec(move || {
                // Until exec, the child has `up`'s handler for SIGTERM,
                // which would take the signal and let it run on: the
                // default ends it.
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                if u32::try_from(libc::getppid()).ok() != Some(parent) {
                    libc::raise(libc::SIGTERM);
                }
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        self.starts += 1;
        let start = self.starts;
        let pid = child.id().unwrap_or_default();
        say!("[up] starting node '{name}' (pid {pid})");
        let lines = Lines {
            node: name.to_owned(),
            json: self.json_logs,
        };
        // Each forwarder holds a sender; its exit is reported once both
        // have forwarded the node's last line (its closing words come
        // before `up` says it stopped), or a second after it exited.
        let (forwarding, mut forwarded) = mpsc::channel::<()>(1);
        forward(lines.clone(), child.stderr.take(), forwarding.clone());
        let (said_ready, ready) = oneshot::channel();
        match child.stdout.take() {
            Some(stdout) => {
                let node = name.to_owned();
                let late_ready = (self.late_ready.clone(), start);
                tokio::spawn(async move {
                    let ready = forward_until_ready(lines, stdout, forwarding, late_ready).await;
                    if !matches!(ready, Ready::Exited) {
                        say!("[up] started node '{node}' (pid {pid})");
                    }
                    let _ = said_ready.send(ready);
                });
            }
            None => {
                let _ = said_ready.send(Ready::Exited);
            }
        }
        let (signals, to_send) = mpsc::unbounded_channel();
        let exits = self.exits.clone();
        let node = name.to_owned();
        tokio::spawn(async move {
            let (status, code) = wait(child, to_send).await;
            let _ = tokio::time::timeout(LAST_LINES_WITHIN, forwarded.recv()).await;
            let _ = exits.send(Exit {
                node,
                start,
                status,
                code,
            });
        });
        Ok(Started {
            child: ChildHandle { start, signals },
            ready,
        })
    }
}

/// Waits for `child` to exit, sending it the signals that come meanwhile;
/// returns how it exited, for people, and its exit code.
async fn wait(
    mut child: Child,
    mut signals: mpsc::UnboundedReceiver<(libc::c_int, oneshot::Sender<()>)>,
) -> (String, Option<u8>) {
    let exited = loop {
        tokio::select! {
            exited = child.wait() => break exited,
            Some((signal, sent)) = signals.recv() => {
                // `id` is `None` once the process has been reaped.
                if let Some(pid) = child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
                    // SAFETY: kill(2) has no memory effects; the pid is our
                    // own child, not yet reaped, so not another process's.
                    unsafe {
                        libc::kill(pid, signal);
                    }
                    let _ = sent.send(());
                }
                // Not sent (the process was reaped): `sent` is dropped,
                // which says so.
            }
        }
    };
    match exited {
        Ok(status) => (
            status.to_string(),
            status.code().and_then(|c| u8::try_from(c).ok()),
        ),
        Err(e) => (format!("could not be waited for: {e}"), None),
    }
}

/// How a node's start went.
#[derive(Debug, Clone, PartialEq, Eq)]
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
async fn forward_until_ready(
    node: Lines,
    stream: impl AsyncRead + Unpin + Send + 'static,
    forwarding: mpsc::Sender<()>,
    (late_ready, start): (ReadySender, u64),
) -> Ready {
    let mut lines = NodeOutput::new(stream);
    let ready = tokio::time::timeout(READY_WITHIN, async {
        while let Some(line) = lines.next_line().await {
            node.say(&line);
            if let Some(ready) = ready_in(&line) {
                return ready;
            }
        }
        Ready::Exited
    })
    .await
    .unwrap_or(Ready::TimedOut);
    let mut waiting = ready == Ready::TimedOut;
    tokio::spawn(async move {
        while let Some(line) = lines.next_line().await {
            node.say(&line);
            // Slow, not stuck: its address is still to be learnt (a node
            // on port 0 is found by the nodes started after it only so).
            if waiting && let Some(ready) = ready_in(&line) {
                waiting = false;
                say!("[up] node '{}' is ready after all", node.node);
                let _ = late_ready.send((node.node.clone(), start, Ok(ready)));
            }
        }
        drop(forwarding);
    });
    ready
}

/// What a node's output line says of its start, if it says it is ready.
fn ready_in(line: &str) -> Option<Ready> {
    if let Some((_, addr)) = line.split_once("listening on ") {
        return Some(Ready::Listening(addr.trim().to_owned()));
    }
    line.contains("every module runs in this process")
        .then_some(Ready::Running)
}

/// Where how a node's start went is sent: its name, which start of it
/// (see `Launcher::starts`), and what it said.
type ReadySender = mpsc::UnboundedSender<(String, u64, Result<Ready, oneshot::error::RecvError>)>;

fn forward(
    node: Lines,
    stream: Option<impl AsyncRead + Unpin + Send + 'static>,
    forwarding: mpsc::Sender<()>,
) {
    let Some(stream) = stream else { return };
    tokio::spawn(async move {
        let mut lines = NodeOutput::new(stream);
        while let Some(line) = lines.next_line().await {
            node.say(&line);
        }
        drop(forwarding);
    });
}

/// A node's output, line by line. Bytes that are not UTF-8 (a node logs
/// UTF-8, but a library it loads may write anything) are shown as U+FFFD
/// instead of ending the forwarding: the node, its pipe no longer read,
/// would block on its next write.
struct NodeOutput<R> {
    reader: BufReader<R>,
    /// The line being read (kept if a read is cancelled midway).
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin> NodeOutput<R> {
    fn new(stream: R) -> NodeOutput<R> {
        NodeOutput {
            reader: BufReader::new(stream),
            line: Vec::new(),
        }
    }

    /// The next line, without its line break; `None` at the end of the
    /// output, or if it cannot be read. Cancel-safe: what a cancelled
    /// call read starts the next one's line.
    async fn next_line(&mut self) -> Option<String> {
        // `read_until` with a bound: what is read is kept in `line` as it
        // is consumed, so a read cancelled midway loses nothing.
        let read = loop {
            let available = match self.reader.fill_buf().await {
                Ok(available) => available,
                Err(e) => break Err(e),
            };
            if available.is_empty() {
                break Ok(());
            }
            let room = MAX_LINE_BYTES.saturating_sub(self.line.len());
            let window = &available[..available.len().min(room)];
            let (taken, ended) = match window.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (window.len(), window.len() == room),
            };
            self.line.extend_from_slice(&available[..taken]);
            self.reader.consume(taken);
            if ended {
                break Ok(());
            }
        };
        if read.is_err() {
            return None;
        }
        if self.line.is_empty() {
            return None;
        }
        // The piece's end: all of `line`, but for a piece cut at the bound,
        // a character cut in two is left for the next piece (not shown as
        // U+FFFD on both sides), and a line break right after it is taken
        // with it (no empty line after it).
        let mut cut = self.line.len();
        if cut >= MAX_LINE_BYTES && self.line.last() != Some(&b'\n') {
            match self.reader.fill_buf().await {
                Ok([b'\n', ..]) => self.reader.consume(1),
                Ok([next, ..]) if next & 0xC0 == 0x80 => {
                    let start = (1..cut.min(4))
                        .map(|back| cut - back)
                        .find(|at| self.line[*at] & 0xC0 != 0x80);
                    if let Some(start) = start.filter(|start| *start > 0) {
                        cut = start;
                    }
                }
                _ => {}
            }
        }
        let mut end = cut;
        if self.line[..end].ends_with(b"\n") {
            end -= 1;
        }
        if self.line[..end].ends_with(b"\r") {
            end -= 1;
        }
        let text = String::from_utf8_lossy(&self.line[..end]).into_owned();
        self.line.drain(..cut);
        Some(text)
    }
}

/// How one node's lines are forwarded (see the file's comment).
#[derive(Clone)]
struct Lines {
    node: String,
    /// The node logs JSON.
    json: bool,
}

impl Lines {
    fn say(&self, line: &str) {
        say!("{}", self.forwarded(line));
    }

    /// `line` as `up` writes it: `[node] line`, or a JSON log line with
    /// `"node"` added.
    fn forwarded(&self, line: &str) -> String {
        let node = serde_json::Value::from(self.node.as_str());
        match line.strip_prefix('{') {
            Some(rest) if self.json => {
                let rest = rest.trim_start();
                let comma = if rest.starts_with('}') { "" } else { "," };
                format!("{{\"node\":{node}{comma}{rest}")
            }
            _ => format!("[{}] {line}", self.node),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Lines, NodeOutput};

    #[tokio::test]
    async fn a_node_line_that_is_not_utf8_is_forwarded_and_the_rest_after_it() {
        let output: &[u8] = b"first\nbad \xff\xfe bytes\r\nlast, no line break";
        let mut lines = NodeOutput::new(output);
        assert_eq!(lines.next_line().await.as_deref(), Some("first"));
        assert_eq!(
            lines.next_line().await.as_deref(),
            Some("bad \u{fffd}\u{fffd} bytes")
        );
        assert_eq!(
            lines.next_line().await.as_deref(),
            Some("last, no line break")
        );
        assert_eq!(lines.next_line().await, None);
    }

    #[tokio::test]
    async fn a_line_longer_than_the_bound_is_forwarded_in_pieces() {
        let long = "x".repeat(super::MAX_LINE_BYTES * 2 + 10);
        let output = format!("{long}\nshort\n");
        let mut lines = NodeOutput::new(output.as_bytes());
        let mut pieces = Vec::new();
        while let Some(line) = lines.next_line().await {
            pieces.push(line);
        }
        let sizes: Vec<usize> = pieces.iter().map(String::len).collect();
        assert_eq!(
            sizes,
            [super::MAX_LINE_BYTES, super::MAX_LINE_BYTES, 10, 5],
            "every byte forwarded, none in a piece over the bound"
        );
        assert_eq!(pieces[3], "short");

        // A line of exactly the bound: no empty line after it.
        let exact = format!("{}\nnext\n", "y".repeat(super::MAX_LINE_BYTES));
        let mut lines = NodeOutput::new(exact.as_bytes());
        assert_eq!(
            lines.next_line().await.map(|l| l.len()),
            Some(super::MAX_LINE_BYTES)
        );
        assert_eq!(lines.next_line().await.as_deref(), Some("next"));
        assert_eq!(lines.next_line().await, None);

        // A character across the bound stays whole, in the next piece.
        let across = format!("{}é and on\n", "z".repeat(super::MAX_LINE_BYTES - 1));
        let mut lines = NodeOutput::new(across.as_bytes());
        let first = lines.next_line().await.unwrap();
        assert_eq!(first.len(), super::MAX_LINE_BYTES - 1);
        assert_eq!(lines.next_line().await.as_deref(), Some("é and on"));
    }

    #[test]
    fn a_json_log_line_gets_its_node_as_a_field_and_anything_else_a_prefix() {
        let json = Lines {
            node: "pay".to_owned(),
            json: true,
        };
        let line = json.forwarded(r#"{"level":"WARN","fields":{"message":"m"}}"#);
        assert_eq!(
            line,
            r#"{"node":"pay","level":"WARN","fields":{"message":"m"}}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["node"], "pay");
        assert_eq!(json.forwarded("{}"), r#"{"node":"pay"}"#);
        assert_eq!(
            json.forwarded("boutique: node 'pay' listening on 127.0.0.1:1"),
            "[pay] boutique: node 'pay' listening on 127.0.0.1:1"
        );
        let text = Lines {
            node: "pay".to_owned(),
            json: false,
        };
        assert_eq!(text.forwarded(r#"{"a":1}"#), r#"[pay] {"a":1}"#);
    }
}
