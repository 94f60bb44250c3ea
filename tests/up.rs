//! `boutique up` from the outside: it starts every node of a deployment,
//! tells each where the others listen, starts again a node that died, and
//! stops them all on a signal, whenever the signal comes.

mod support;

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use storage::testing::TempDir;
use support::shopper::Shopper;
use support::{SECRET, repo};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// How long `up` gets to say what a test waits for.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `boutique up`, and everything it said so far.
struct Up {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    said: Vec<String>,
    /// Where its nodes keep their files (removed when the test ends).
    _data: TempDir,
}

impl Up {
    /// `up` of the three-node deployment, every node on a free port, its
    /// files in `data`.
    fn three_nodes(data: TempDir) -> Up {
        Up::three_nodes_with(&[], data)
    }

    /// [`Up::three_nodes`], with `extra` arguments after its own.
    fn three_nodes_with(extra: &[&str], data: TempDir) -> Up {
        let own = [
            "--config",
            "deploy/three-nodes.toml",
            "--set",
            "nodes.web.listen=127.0.0.1:0",
            "--set",
            "nodes.store.listen=127.0.0.1:0",
            "--set",
            "nodes.pay.listen=127.0.0.1:0",
        ];
        Up::spawn(&[&own[..], extra].concat(), data)
    }

    /// `up` of the one-node `config.toml`.
    fn one_node(data: TempDir) -> Up {
        Up::spawn(&[], data)
    }

    fn spawn(args: &[&str], data: TempDir) -> Up {
        Up::spawn_logging(args, data, "warn")
    }

    /// [`Up::spawn`], with `RUST_LOG` set to `rust_log`.
    fn spawn_logging(args: &[&str], data: TempDir, rust_log: &str) -> Up {
        Up::spawn_from(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_boutique")),
            args,
            data,
            rust_log,
        )
    }

    /// `up` of the one-node `config.toml`, started with `signal` ignored:
    /// SIGHUP as `nohup` starts a command, SIGINT as a shell without job
    /// control starts one in the background (`&` in a script).
    fn one_node_ignoring(signal: libc::c_int, data: TempDir) -> Up {
        Up::one_node_with(signal, libc::SIG_IGN, data)
    }

    /// `up` of the one-node `config.toml`, started with `signal` set to
    /// `disposition` (`SIG_IGN` or `SIG_DFL`), whatever this process has.
    fn one_node_with(signal: libc::c_int, disposition: libc::sighandler_t, data: TempDir) -> Up {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_boutique"));
        // SAFETY: signal(2) is async-signal-safe; nothing else runs
        // between fork and exec.
        unsafe {
            command.pre_exec(move || {
                libc::signal(signal, disposition);
                Ok(())
            });
        }
        Up::spawn_from(command, &[], data, "warn")
    }

    fn spawn_from(
        mut command: tokio::process::Command,
        args: &[&str],
        data: TempDir,
        rust_log: &str,
    ) -> Up {
        // The shop on a free port, unless `args` (later, so they win) say
        // otherwise. `args` that name `up` give its own options after it.
        command
            .args(["--set", "modules.frontend.listen=127.0.0.1:0"])
            .args(args);
        if !args.contains(&"up") {
            command.arg("up");
        }
        let mut child = command
            .current_dir(repo(""))
            .env("BOUTIQUE__RUNTIME__DATA_DIR", data.path())
            .env("BOUTIQUE_SECRET", SECRET)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            // A process group of its own, as a shell gives a command it
            // runs in the foreground: the group is what a terminal's
            // Ctrl-C reaches (see `interrupt_from_the_terminal`).
            .process_group(0)
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Up {
            child,
            lines,
            said: Vec::new(),
            _data: data,
        }
    }

    /// Reads what `up` says until a line contains `marker`; returns it.
    async fn until(&mut self, marker: &str) -> String {
        let waited = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                self.said.push(line.clone());
                if line.contains(marker) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match waited {
            Ok(Some(line)) => line,
            Ok(None) => panic!("up exited before saying {marker:?}:\n{}", self.said()),
            Err(_) => panic!("up did not say {marker:?} in time:\n{}", self.said()),
        }
    }

    /// Everything `up` said so far.
    fn said(&self) -> String {
        self.said.join("\n")
    }

    /// Sends `up` itself `signal`.
    fn signal(&self, signal: libc::c_int) {
        send_signal(&self.child, signal);
    }

    /// Sends SIGINT to `up`'s whole process group, as a Ctrl-C in the
    /// terminal it runs in does.
    fn interrupt_from_the_terminal(&self) {
        let group = libc::pid_t::try_from(self.child.id().unwrap()).unwrap();
        // SAFETY: signalling the process group our own child leads.
        unsafe { libc::kill(-group, libc::SIGINT) };
    }

    /// Reads the rest of what `up` says and waits for it to exit.
    async fn finish(mut self) -> (ExitStatus, String) {
        let waited = tokio::time::timeout(PATIENCE, async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                self.said.push(line);
            }
            self.child.wait().await.unwrap()
        })
        .await;
        match waited {
            Ok(status) => (status, self.said()),
            Err(_) => panic!("up did not stop:\n{}", self.said()),
        }
    }
}

/// Sends `child`, not yet reaped, `signal`.
fn send_signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id().unwrap()).unwrap();
    // SAFETY: sending a signal to our own child process, not yet reaped.
    unsafe { libc::kill(pid, signal) };
}

/// The pid in a line of `up`'s such as `[up] started node 'pay' (pid 42)`.
fn pid_in(line: &str) -> libc::pid_t {
    let (_, pid) = line.split_once("(pid ").unwrap();
    pid.trim_end_matches(')').parse().unwrap()
}

/// The address at the end of a line such as `... listening on ADDR`.
fn after<'a>(line: &'a str, marker: &str) -> &'a str {
    line.split_once(marker).unwrap().1.trim()
}

/// The shop at `shop` answers its home page with the catalogue.
async fn shows_the_catalogue(shop: &str) {
    let mut home = awc::Client::new()
        .get(format!("{shop}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(home.status().as_u16(), 200);
    let body = home.body().await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("Sunglasses"));
}

/// Whether process `pid` is gone (or a zombie nobody has reaped yet).
fn is_gone(pid: libc::pid_t) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // `PID (NAME) STATE ...`: the state follows the name's parenthesis.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[actix_rt::test]
async fn up_starts_every_node_and_stops_them_on_interrupt() {
    // The three-node deployment, every node on a free port: `up` tells each
    // node the addresses of the nodes started before it.
    let mut up = Up::three_nodes(TempDir::new("up"));
    let mut listening = Vec::new();
    while listening.len() < 3 {
        listening.push(up.until("listening on").await);
    }
    for node in ["web", "store", "pay"] {
        assert!(
            listening
                .iter()
                .any(|l| l.starts_with(&format!("[{node}] boutique: node '{node}' listening on"))),
            "{node} missing from {listening:?}"
        );
    }
    let dashboard = up.until("[up] dashboard at ").await;
    let dashboard = after(&dashboard, "dashboard at ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let shop = up.until("shop open at ").await;
    let shop = after(&shop, "shop open at ").to_owned();

    // The home page needs the catalog and currency (store) from the
    // frontend (web): the nodes found each other.
    shows_the_catalogue(&shop).await;

    // The dashboard `up` printed sees all three nodes up.
    let mut page = awc::Client::new().get(&dashboard).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.body().await.unwrap();
    assert!(String::from_utf8_lossy(&html).contains("Call graph"));
    let mut api = awc::Client::new()
        .get(format!("{dashboard}api/deployment"))
        .send()
        .await
        .unwrap();
    let deployment: serde_json::Value = api.json().await.unwrap();
    let states: Vec<(String, String)> = deployment["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                n["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(states.len(), 3, "{deployment}");
    assert!(
        states.iter().all(|(_, state)| state == "up"),
        "{deployment}"
    );

    // A Ctrl-C in the terminal reaches `up` alone, which stops each node
    // once, gracefully: each exits 0. (The nodes had it too, and `up`'s
    // SIGTERM was their second signal: each stopped at once, 130.)
    up.interrupt_from_the_terminal();
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(0), "{said}");
    for node in ["web", "store", "pay"] {
        assert!(
            said.contains(&format!("node '{node}' stopped: exit status: 0")),
            "{node} not stopped cleanly: {said}"
        );
    }
    // Callers first: web (which calls both) had stopped before store and
    // pay were asked to, so its last calls found them serving.
    let at = |line: &str| {
        said.find(line)
            .unwrap_or_else(|| panic!("no {line:?} in {said}"))
    };
    let web_gone = at("[up] node 'web' stopped");
    assert!(at("[up] stopping node 'web'") < web_gone, "{said}");
    for callee in ["store", "pay"] {
        assert!(
            web_gone < at(&format!("[up] stopping node '{callee}'")),
            "{said}"
        );
    }
}

#[actix_rt::test]
async fn up_starts_a_node_that_died_again_on_its_address() {
    let mut up = Up::three_nodes(TempDir::new("up"));
    // A node's own lines up to `listening on` come before `up` says it
    // started it.
    let listening = up.until("[pay] boutique: node 'pay' listening on").await;
    let first = pid_in(&up.until("started node 'pay'").await);
    let pay_admin = up.until("[pay] boutique: node 'pay' admin on ").await;
    let pay_admin = after(&pay_admin, "admin on ").to_owned();
    let shop = up.until("shop open at ").await;
    let shop = after(&shop, "shop open at ").to_owned();

    // SAFETY: the pid is a child of `up`, alive (it said it listens).
    unsafe { libc::kill(first, libc::SIGKILL) };
    let exited = up.until("node 'pay' exited").await;
    assert!(exited.contains("starting it again in 100 ms"), "{exited}");
    // `up` holds pay's admin socket and hands it to each pay it starts: a
    // request made while pay is down waits for the next one, instead of
    // being refused.
    let while_down = actix_rt::spawn(async move {
        let response = awc::Client::new()
            .get(format!("{pay_admin}/healthz"))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        response
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    });
    let relistening = up.until("[pay] boutique: node 'pay' listening on").await;
    let again = up.until("started node 'pay'").await;
    assert_ne!(pid_in(&again), first);
    assert_eq!(
        after(&relistening, "listening on"),
        after(&listening, "listening on"),
        "the same address"
    );
    assert_eq!(
        while_down.await.unwrap(),
        Ok(200),
        "the health check made while pay was down"
    );

    // The cart page needs a shipping quote from pay: web reaches the new
    // pay (it redials with backoff; wait for it).
    let mut shopper = Shopper::new(&shop);
    shopper.add_to_cart("OLJCESPC7Z", 1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let cart = shopper.get("/cart").await;
        if cart.status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", cart.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    up.signal(libc::SIGINT);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(0), "{said}");
}

/// A node started again is the build `up` runs, though its binary's path
/// has since been given another file (a `cargo build` meanwhile): here a
/// script that exits 99.
#[actix_rt::test]
async fn a_node_started_again_is_the_build_up_runs_not_the_file_now_at_its_path() {
    let bin = TempDir::new("up-binary");
    let copy = bin.path().join("boutique");
    std::fs::copy(env!("CARGO_BIN_EXE_boutique"), &copy).unwrap();
    let mut up = Up::spawn_from(
        tokio::process::Command::new(&copy),
        &[],
        TempDir::new("up"),
        "warn",
    );
    let first = pid_in(&up.until("started node 'main'").await);
    up.until("shop open at").await;
    std::fs::remove_file(&copy).unwrap();
    std::fs::write(&copy, "#!/bin/sh\nexit 99\n").unwrap();
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    // SAFETY: the pid is a child of `up`, alive (its shop is open).
    unsafe { libc::kill(first, libc::SIGKILL) };
    up.until("node 'main' exited").await;
    let again = pid_in(&up.until("started node 'main'").await);
    assert_ne!(again, first);
    up.until("shop open at").await;
    up.signal(libc::SIGINT);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(!said.contains("exit status: 99"), "{said}");
}

#[actix_rt::test]
async fn a_node_that_first_comes_up_on_a_restart_is_found_by_the_nodes_that_need_it() {
    // The store node's first starts fail (its cart database cannot be
    // opened: a directory is in the way); the web node, which needs the
    // catalog on store, cannot start either until store listens somewhere.
    let data = TempDir::new("up");
    let in_the_way = data.path().join("cart.db");
    std::fs::create_dir(&in_the_way).unwrap();
    let mut up = Up::three_nodes(data);
    up.until("node 'store' exited before it was ready").await;
    up.until("[web] error: module recommendation did not start: needs service catalog")
        .await;
    std::fs::remove_dir(&in_the_way).unwrap();
    // Store comes up on a free port on one of its restarts; web, started
    // again after that, is told where.
    up.until("[store] boutique: node 'store' listening on")
        .await;
    let shop = up.until("shop open at ").await;
    let shop = after(&shop, "shop open at ").to_owned();
    shows_the_catalogue(&shop).await;

    up.signal(libc::SIGINT);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(0), "{said}");
}

#[actix_rt::test]
async fn up_stops_at_once_while_a_node_waits_to_be_started_again() {
    // The one node fails every start (its cart database cannot be
    // opened), so it is always either starting or waiting to start again.
    let data = TempDir::new("up");
    std::fs::create_dir(data.path().join("cart.db")).unwrap();
    let mut up = Up::one_node(data);
    up.until("node 'main' exited: exit status: 70; starting it again in 400 ms")
        .await;
    up.signal(libc::SIGINT);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(
        said.contains("[up] interrupt: stopping every node"),
        "{said}"
    );
    // A node waiting to start has no process to stop: nothing is killed
    // after the grace, and no restart happens after the signal.
    assert!(!said.contains("killing"), "{said}");
    let after_signal = said.split("stopping every node").nth(1).unwrap_or_default();
    assert!(!after_signal.contains("starting node"), "{said}");
}

/// Whether process `pid` is stopped (SIGSTOP): it handles no signal but
/// SIGKILL until it is continued.
fn is_stopped(pid: libc::pid_t) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat.rsplit_once(") ")?.1.starts_with('T')))
        .unwrap_or(false)
}

/// `up` of `config.toml` with `args`, its node frozen (SIGSTOP) once the
/// shop is open, as a node that hangs: it will not stop when told.
async fn up_with_a_frozen_node(args: &[&str]) -> (Up, libc::pid_t) {
    let mut up = Up::spawn(args, TempDir::new("up"));
    let node = pid_in(&up.until("[up] started node 'main'").await);
    up.until("shop open at").await;
    // SAFETY: a signal to a process `up` started and has not reaped.
    assert_eq!(unsafe { libc::kill(node, libc::SIGSTOP) }, 0);
    let deadline = std::time::Instant::now() + PATIENCE;
    while !is_stopped(node) {
        assert!(
            std::time::Instant::now() < deadline,
            "node {node} did not freeze"
        );
        tokio::task::yield_now().await;
    }
    (up, node)
}

/// Node `node` (main) was killed, by what `up` said and by the system.
fn was_killed(node: libc::pid_t, said: &str) {
    assert!(
        said.contains("node 'main' stopped: signal: 9 (SIGKILL)"),
        "{said}"
    );
    assert!(is_gone(node), "node process {node} still runs:\n{said}");
}

#[actix_rt::test]
async fn a_second_signal_kills_the_nodes_still_stopping() {
    let (mut up, node) = up_with_a_frozen_node(&[]).await;
    up.signal(libc::SIGINT);
    up.until("[up] interrupt: stopping every node").await;
    up.signal(libc::SIGINT);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(
        said.contains("[up] interrupt again: killing every node now"),
        "{said}"
    );
    was_killed(node, &said);
}

#[actix_rt::test]
async fn a_node_that_does_not_stop_within_its_grace_is_killed_and_up_says_so() {
    // The node's own grace, and 5 s more, `up` waits.
    let (up, node) = up_with_a_frozen_node(&["--set", "runtime.shutdown_grace_ms=0"]).await;
    up.signal(libc::SIGTERM);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(70), "{said}");
    assert!(
        said.contains("node 'main' did not stop within 5000 ms; killing it"),
        "{said}"
    );
    was_killed(node, &said);
}

#[actix_rt::test]
async fn a_signal_while_nodes_are_starting_stops_the_nodes_started() {
    let mut up = Up::three_nodes(TempDir::new("up"));
    let starting = up.until("[up] starting node '").await;
    let first = pid_in(&starting);
    let node = after(&starting, "starting node '")
        .split('\'')
        .next()
        .unwrap()
        .to_owned();
    up.signal(libc::SIGTERM);
    let (status, said) = up.finish().await;
    // `up` handled the signal (a process killed by it has no exit code),
    // and stopped the node it had started.
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(
        said.contains("[up] terminate: stopping every node"),
        "{said}"
    );
    assert!(said.contains(&format!("node '{node}' stopped")), "{said}");
    assert!(is_gone(first), "node process {first} still runs:\n{said}");
}

#[actix_rt::test]
async fn the_nodes_stop_when_up_is_killed_outright() {
    let mut up = Up::one_node(TempDir::new("up"));
    let node = pid_in(&up.until("[up] started node 'main'").await);
    // Its last line: from here on it writes nothing (a node whose output
    // is cut mid-start stops with an error, whatever `up` does).
    up.until("shop open at").await;
    up.signal(libc::SIGKILL);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), None, "{said}");
    // The kernel tells the orphaned node to stop; it does, shortly.
    let deadline = std::time::Instant::now() + PATIENCE;
    while !is_gone(node) {
        assert!(
            std::time::Instant::now() < deadline,
            "node process {node} outlived up:\n{said}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn up_stops_every_node_in_order_when_nobody_reads_what_it_says() {
    // As `boutique up | tee log` and a Ctrl-C, which stops `tee` too: from
    // the signal on, `up` writes to a pipe nobody reads.
    let mut up = Up::one_node(TempDir::new("up"));
    let node = pid_in(&up.until("[up] started node 'main'").await);
    up.until("shop open at").await;
    let Up {
        mut child,
        lines,
        said,
        _data,
    } = up;
    drop(lines);
    send_signal(&child, libc::SIGINT);
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap_or_else(|_| panic!("up did not stop:\n{}", said.join("\n")))
        .unwrap();
    // It stopped the node and exited as it does when heard (a panic on the
    // closed pipe exits 101, after killing the node without its grace).
    assert_eq!(status.code(), Some(0), "{}", said.join("\n"));
    assert!(is_gone(node), "node process {node} still runs");
}

#[actix_rt::test]
async fn up_exits_78_once_every_node_has_exited_for_its_config() {
    // A products file only the node reads, as it starts the catalog: not
    // a catalogue, so the node exits 78, is not started again, and none
    // is left: `up` exits 78 too (it was 70).
    let data = TempDir::new("up");
    let broken = data.path().join("products.json");
    std::fs::write(&broken, "{\"products\": 7}").unwrap();
    let products = format!("modules.catalog.products_file={}", broken.display());
    let mut up = Up::spawn(&["--set", &products], data);
    up.until("its config is wrong, so it is not started again")
        .await;
    up.until("[up] every node has exited").await;
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(78), "{said}");
}

/// A node that can never start (its shop's port is taken: it exits 70,
/// not a config error) is given up on once it has failed for
/// `--give-up-after` (and five tries), instead of being started again every
/// ten seconds for ever; with none left, `up` exits 70.
#[actix_rt::test]
async fn up_gives_up_on_a_node_that_never_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = format!("modules.frontend.listen={}", taken.local_addr().unwrap());
    let mut up = Up::spawn(
        &["--set", &listen, "up", "--give-up-after", "1s"],
        TempDir::new("up"),
    );
    up.until("without ever being ready").await;
    up.until("[up] every node has exited").await;
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(70), "{said}");
    assert_eq!(
        said.matches("[up] starting node 'main'").count(),
        5,
        "{said}"
    );
    drop(taken);
}

/// A node given up on (web: its shop's port is taken) leaves the others
/// running; stopped then, `up` exits 70, not 0: the deployment never ran
/// whole.
#[actix_rt::test]
async fn up_stopped_after_giving_up_on_a_node_exits_70() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let shop = format!("modules.frontend.listen={}", taken.local_addr().unwrap());
    let mut up = Up::three_nodes_with(
        &["--set", &shop, "up", "--give-up-after", "1s"],
        TempDir::new("up"),
    );
    up.until("without ever being ready").await;
    up.signal(libc::SIGINT);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(70), "{said}");
    for node in ["store", "pay"] {
        assert!(
            said.contains(&format!("node '{node}' stopped: exit status: 0")),
            "{said}"
        );
    }
    assert!(said.contains("1 node(s) had been given up on"), "{said}");
    drop(taken);
}

#[actix_rt::test]
async fn with_json_logs_every_node_log_line_up_forwards_is_json_naming_its_node() {
    let mut up = Up::spawn_logging(&["--log-format", "json"], TempDir::new("up"), "info");
    // The flag reaches the node, and its lines come out as JSON objects.
    let line = up.until(r#"{"node":"main","#).await;
    let parsed: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(parsed["node"], "main", "{line}");
    assert!(parsed["level"].is_string(), "{line}");
    up.until("shop open at").await;
    up.signal(libc::SIGINT);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(0), "{said}");
    // Not one log line is left prefixed as text.
    assert!(!said.contains("[main] {"), "{said}");
}

/// Under `nohup` (SIGHUP ignored when it starts), `up` outlives its
/// terminal: the hangup is not taken as a stop. A SIGTERM then is the
/// first stop, graceful. (Taken over, the hangup began the stop, and the
/// SIGTERM, a second signal, killed every node.)
#[actix_rt::test]
async fn under_nohup_a_hangup_does_not_stop_up() {
    let mut up = Up::one_node_ignoring(libc::SIGHUP, TempDir::new("up"));
    up.until("shop open at ").await;
    up.signal(libc::SIGHUP);
    up.signal(libc::SIGTERM);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(
        said.contains("[up] terminate: stopping every node"),
        "{said}"
    );
    assert!(!said.contains("hangup"), "{said}");
}

/// A reader that stops reading `up`'s output without closing it (`up |
/// less` while it pages) stalls neither `up` nor the shop: lines past what
/// `up` queues are dropped and counted, the shop keeps answering, and a
/// signal still stops everything. (`up` wrote each line itself: blocked
/// on the full pipe, it stopped reading its nodes' output, and each node
/// blocked on its next log line, the shop with it.)
#[actix_rt::test]
async fn a_reader_that_stops_reading_stalls_neither_up_nor_the_shop() {
    // Debug logs: every request makes lines, far more than a pipe holds.
    let mut up = Up::spawn_logging(&[], TempDir::new("up"), "debug");
    let shop = up.until("shop open at http").await;
    let shop = after(&shop, "shop open at ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    // From here on, nobody reads what `up` says (the pipe stays open).
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    for _ in 0..500 {
        let answered = client.get(format!("{shop}/")).send().await;
        let status = answered.map(|r| r.status().as_u16());
        assert!(matches!(status, Ok(200)), "the shop stalled: {status:?}");
    }
    up.signal(libc::SIGTERM);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(
        said.contains("lines dropped here: the reader of this output fell behind"),
        "{}",
        said.len()
    );
}

/// Started in the background by a script (SIGINT ignored, as a shell
/// without job control starts it), `up` still stops on the script's `kill
/// -INT`, gracefully: only SIGHUP stays ignored.
#[actix_rt::test]
async fn started_with_sigint_ignored_up_still_stops_on_it() {
    let mut up = Up::one_node_ignoring(libc::SIGINT, TempDir::new("up"));
    up.until("shop open at ").await;
    up.signal(libc::SIGINT);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(
        said.contains("[up] interrupt: stopping every node"),
        "{said}"
    );
}

/// The state letter of process `pid` (`R`, `S`, `T` for stopped...).
fn process_state(pid: libc::pid_t) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Waits (up to `PATIENCE`) until process `pid` is in state `state` or not.
async fn until_state(pid: libc::pid_t, stopped: bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while (process_state(pid) == Some('T')) != stopped {
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} is {:?}",
            process_state(pid)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Ctrl-Z stops `up` and its nodes with it (in process groups of their
/// own, they do not get it from the terminal): none is left serving with
/// nobody reading its output. Resumed, `up` resumes them.
#[actix_rt::test]
async fn ctrl_z_stops_the_nodes_with_up_and_resuming_resumes_them() {
    // As from a terminal, whatever this test process was started with.
    let mut up = Up::one_node_with(libc::SIGTSTP, libc::SIG_DFL, TempDir::new("up"));
    let node = pid_in(&up.until("[up] started node 'main'").await);
    up.until("shop open at").await;
    let pid = libc::pid_t::try_from(up.child.id().unwrap()).unwrap();

    up.signal(libc::SIGTSTP);
    until_state(node, true).await;
    until_state(pid, true).await;

    up.signal(libc::SIGCONT);
    until_state(pid, false).await;
    until_state(node, false).await;
    up.until("[up] resumed, with every node").await;

    up.signal(libc::SIGTERM);
    let (status, said) = up.finish().await;
    assert_eq!(status.code(), Some(0), "{said}");
}

/// `up` runs every node on this machine: two replicas of the frontend on
/// one shop address (which `plan` takes, for two machines), or one node
/// on `0.0.0.0:P` beside another on `127.0.0.1:P`, could not both listen.
/// It refuses before starting anything (78), rather than start a node that
/// fails to bind until it is given up on.
#[actix_rt::test]
async fn up_refuses_listeners_that_clash_on_one_machine() {
    let cases: [&[&str]; 2] = [
        &[
            "--set",
            "nodes.catalog-1.modules=[\"catalog\",\"currency\",\"frontend\"]",
            "--set",
            "modules.frontend.listen=127.0.0.1:48080",
        ],
        &[
            "--set",
            "nodes.catalog-1.listen=0.0.0.0:7401",
            "--set",
            "cluster.insecure=true",
        ],
    ];
    for overrides in cases {
        let data = TempDir::new("up");
        let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_boutique"))
            .args(["--config", "deploy/replicated.toml"])
            .args(overrides)
            .arg("up")
            .current_dir(repo(""))
            .env("BOUTIQUE__RUNTIME__DATA_DIR", data.path())
            .env("BOUTIQUE_SECRET", SECRET)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(PATIENCE, run)
            .await
            .unwrap_or_else(|_| panic!("{overrides:?}: up did not refuse"))
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(78), "{overrides:?}: {said}");
        assert!(
            said.contains("up runs every node on this machine"),
            "{said}"
        );
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("starting node"),
            "{overrides:?}"
        );
    }
}
