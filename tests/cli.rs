//! The `boutique` binary from the outside: `plan` on good and bad configs,
//! `call` and its exit codes, `certs`, the admin socket handed down (`up`
//! itself: `tests/up.rs`).

mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use support::{SECRET, repo};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Where the binary's modules keep their files in these tests: a fresh
/// directory for every run of the binary.
fn data_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-data-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn boutique(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boutique"))
        .args(args)
        .current_dir(repo(""))
        .env("BOUTIQUE_SECRET", SECRET)
        .env("BOUTIQUE__RUNTIME__DATA_DIR", data_dir())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// [`boutique`], with no cluster secret in the environment.
fn boutique_without_secret(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boutique"))
        .args(args)
        .current_dir(repo(""))
        .env("BOUTIQUE__RUNTIME__DATA_DIR", data_dir())
        .env_remove("BOUTIQUE_SECRET")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs the binary with `args` and checks it refuses them as bad usage
/// (exit 64), saying `says`, without a panic.
fn refused_as_bad_usage(args: &[&str], says: &str) {
    let output = boutique(args);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(64), "{args:?}: {said}");
    assert!(said.contains(says), "{args:?}: {said}");
    assert!(!said.contains("panicked"), "{args:?}: {said}");
}

/// Writes `text` to a fresh config file under the target directory.
fn config_file(text: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-configs");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{}-{}.toml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn plan_shows_the_values_in_effect_and_what_overrode_the_file() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_boutique"));
    // Only the test's own variables.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("BOUTIQUE__") {
            command.env_remove(name);
        }
    }
    let output = command
        .args(["--set", "runtime.call_timeout_ms=300", "plan"])
        .current_dir(repo(""))
        .env("BOUTIQUE__RUNTIME__CALL_TIMEOUT_MS", "200")
        .env("BOUTIQUE__RUNTIME__DATA_DIR", "/tmp/boutique-plan-test")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        said.contains("overridden by: 2 BOUTIQUE__ variable(s), then 1 --set"),
        "{said}"
    );
    // --set wins over the environment.
    assert!(said.contains("calls time out after 300 ms"), "{said}");
    assert!(
        said.contains("data directory: /tmp/boutique-plan-test"),
        "{said}"
    );
}

#[test]
fn plan_shows_the_shipped_deployments() {
    let single = boutique(&["plan"]);
    assert_eq!(single.status.code(), Some(0), "{}", stderr(&single));
    assert!(stdout(&single).contains("main"), "{}", stdout(&single));
    assert!(
        stdout(&single).contains("none (every call is local)"),
        "{}",
        stdout(&single)
    );

    let split = boutique(&["--config", "deploy/three-nodes.toml", "plan"]);
    assert_eq!(split.status.code(), Some(0), "{}", stderr(&split));
    let text = stdout(&split);
    assert!(
        text.contains("recommendation (web) -> catalog (store)"),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:7402"), "{text}");
    // Each node's other addresses: where it is dialled, its admin
    // endpoints, the shop's web server.
    let addressed = boutique(&[
        "--config",
        "deploy/three-nodes.toml",
        "--set",
        "nodes.web.admin=127.0.0.1:9400",
        "--set",
        "nodes.store.address=store.example:7402",
        "plan",
    ]);
    let text = stdout(&addressed);
    for line in [
        "dialled at store.example:7402",
        "admin endpoints at http://127.0.0.1:9400",
        "frontend serves http://127.0.0.1:8080",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
}

#[test]
fn plan_refuses_bad_configs_naming_the_problem() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown module",
            "[nodes.main]\nmodules = [\"catalogg\", \"*\"]\n",
            &["'catalogg'", "does not exist", "did you mean 'catalog'"],
        ),
        (
            "module placed nowhere",
            "[nodes.main]\nmodules = [\"catalog\", \"cart\", \"recommendation\"]\n",
            &["module 'currency' is placed on no node"],
        ),
        (
            "a \"*\" node the others leave nothing to",
            "[nodes.a]\nmodules = [\"ads\", \"auth\", \"cart\", \"catalog\", \"checkout\", \"currency\", \"email\", \"frontend\", \"orders\", \"payment\", \"recommendation\", \"shipping\"]\n[nodes.b]\nmodules = [\"*\"]\n",
            &["node 'b' lists only \"*\", but the other nodes list every module"],
        ),
        (
            "a log level that is none",
            "[nodes.main]\nmodules = [\"*\"]\n[logging]\nlevel = \"warning,frontend=debug\"\n",
            &["'warning' is no level"],
        ),
        (
            "a log filter that does not parse",
            "[nodes.main]\nmodules = [\"*\"]\n[logging]\nlevel = \"frontend=loud\"\n",
            &["level = \"frontend=loud\" is not a log filter"],
        ),
        (
            "a boolean given to a number",
            "[runtime]\ncall_timeout_ms = true\n[nodes.main]\nmodules = [\"*\"]\n",
            &["invalid type: boolean `true`, expected u64 for key `runtime.call_timeout_ms`"],
        ),
        (
            "a word given to a boolean",
            "[cluster]\ninsecure = \"yes\"\n[nodes.main]\nmodules = [\"*\"]\n",
            &["expected a boolean for key `cluster.insecure`"],
        ),
        (
            "a boolean given to a module's number",
            "[nodes.main]\nmodules = [\"*\"]\n[modules.cart]\nmax_lines = true\n",
            &["[modules.cart]: invalid type: boolean `true`, expected usize for key `max_lines`"],
        ),
        (
            "timeouts beyond a day",
            "[nodes.main]\nmodules = [\"*\"]\n\
             [runtime]\nheartbeat_interval_ms = 90000000\nfailure_timeout_ms = 180000000\n",
            &[
                "heartbeat_interval_ms = 90000000 is more than a day",
                "failure_timeout_ms = 180000000 is more than a day",
            ],
        ),
        (
            "module values their modules refuse (found before anything starts)",
            "[nodes.main]\nmodules = [\"*\"]\n\
             [modules.frontend]\nlisten = \"garbage\"\n\
             [modules.cart]\nmax_lines = 0\n\
             [modules.email]\nsink = \"smtp\"\n\
             [modules.auth]\nsession_ttl_hours = 0\n\
             [modules.checkout]\nfinisher_every_ms = 0\n",
            &[
                "listen = \"garbage\" is not an address",
                "max_lines must be at least 1",
                "sink = \"smtp\" is not a sink",
                "session_ttl_hours must be at least 1",
                "finisher_every_ms",
            ],
        ),
        (
            "a directory for emails that go to the log",
            "[nodes.main]\nmodules = [\"*\"]\n[modules.email]\ndirectory = \"/var/mail\"\n",
            &[
                "[modules.email]: directory is where the \"directory\" sink writes, and sink = \"log\"",
            ],
        ),
        (
            "a database URL no module can open (found by plan, not at start; its password hidden)",
            "[nodes.main]\nmodules = [\"*\"]\n\
             [modules.orders]\ndatabase = \"postgress://shop:secret@db/shop\"\n",
            &["[modules.orders]: database = 'postgress://shop:***@db/shop' is not a database URL"],
        ),
        (
            "argon2 memory the node would try to take at start (4 TiB)",
            "[nodes.main]\nmodules = [\"*\"]\n\
             [modules.auth]\nargon2_memory_kib = 4294967295\n",
            &["argon2_memory_kib = 4294967295 is more than 1048576"],
        ),
        (
            "unknown routing for replicas",
            "[cluster]\nsecret_env = \"S\"\n\
             [nodes.a]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n\
             [nodes.b]\nlisten = \"127.0.0.1:7402\"\nmodules = [\"cart\"]\n\
             [nodes.c]\nlisten = \"127.0.0.1:7403\"\nmodules = [\"cart\", \"catalog\"]\n\
             [routing]\ncart = \"random\"\n",
            &["[routing] cart = \"random\"", "by-key"],
        ),
        (
            "routing by key for a service none of whose messages has a key",
            "[cluster]\nsecret_env = \"S\"\n\
             [nodes.a]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n\
             [nodes.b]\nlisten = \"127.0.0.1:7402\"\nmodules = [\"payment\"]\n\
             [routing]\npayment = \"by-key\"\n",
            &["[routing] payment = \"by-key\": no message of payment declares a routing key"],
        ),
        (
            "two nodes on one address",
            "[cluster]\nsecret_env = \"S\"\n\
             [nodes.a]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n\
             [nodes.b]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"cart\"]\n",
            &["nodes 'a', 'b' all listen on 127.0.0.1:7401"],
        ),
        (
            "an admin endpoint on a node's address",
            "[cluster]\nsecret_env = \"S\"\n\
             [nodes.a]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n\
             [nodes.b]\nlisten = \"127.0.0.1:7402\"\nmodules = [\"cart\"]\nadmin = \"127.0.0.1:7401\"\n",
            &["nodes 'a', 'b (admin)' all listen on 127.0.0.1:7401"],
        ),
        (
            "an admin endpoint on the shop's address",
            "[nodes.main]\nmodules = [\"*\"]\nadmin = \"127.0.0.1:8080\"\n",
            &["nodes 'main (admin)', 'main (frontend)' all listen on 127.0.0.1:8080"],
        ),
        (
            "the shop on a node's port, on an address that takes it too",
            "[cluster]\nsecret_env = \"S\"\n\
             [nodes.main]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n\
             [modules.frontend]\nlisten = \"0.0.0.0:7401\"\n",
            &[
                "node 'main': 'main' listens on 127.0.0.1:7401 and 'main (frontend)' on 0.0.0.0:7401",
            ],
        ),
        (
            "a trace collector over https",
            "[nodes.main]\nmodules = [\"*\"]\n[telemetry]\notlp_endpoint = \"https://collector:4318\"\n",
            &[
                "[telemetry] otlp_endpoint = \"https://collector:4318\"",
                "http://HOST:PORT",
            ],
        ),
        (
            "a dial address that is not one",
            "[cluster]\nsecret_env = \"S\"\n\
             [nodes.a]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n\
             [nodes.b]\nlisten = \"127.0.0.1:7402\"\naddress = \"store\"\nmodules = [\"cart\"]\n",
            &["node 'b': address = 'store' is not HOST:PORT"],
        ),
        (
            "an admin address that is not one",
            "[nodes.main]\nmodules = [\"*\"]\nadmin = \"port 9400\"\n",
            &["node 'main': admin = 'port 9400' is not HOST:PORT"],
        ),
        (
            "split without a secret",
            "[nodes.a]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n\
             [nodes.b]\nlisten = \"127.0.0.1:7402\"\nmodules = [\"cart\"]\n",
            &["splits its modules over 2 nodes", "secret_env is not set"],
        ),
        (
            "split node without an address",
            "[cluster]\nsecret_env = \"S\"\n\
             [nodes.a]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n\
             [nodes.b]\nmodules = [\"cart\"]\n",
            &["node 'b' has no listen address"],
        ),
        (
            "a node name the environment cannot set",
            "[nodes.Web]\nmodules = [\"*\"]\n",
            &["node name 'Web' may only use lower-case letters"],
        ),
        (
            "a node name longer than a DNS label",
            "[nodes.a123456789b123456789c123456789d123456789e123456789f123456789xyzw]\nmodules = [\"*\"]\n",
            &["at most 63 of them"],
        ),
        (
            "a node named as clients are",
            "[nodes.client]\nmodules = [\"*\"]\n",
            &["node name 'client' is reserved"],
        ),
        (
            "unknown module section",
            "[nodes.main]\nmodules = [\"*\"]\n[modules.paymnt]\n",
            &["[modules.paymnt]", "does not exist"],
        ),
        (
            "bad module setting",
            "[nodes.main]\nmodules = [\"*\"]\n[modules.catalog]\nproducts = \"x.json\"\n",
            &["[modules.catalog]", "products"],
        ),
        (
            "bad listen address",
            "[cluster]\nsecret_env = \"S\"\n[nodes.main]\nlisten = \"nowhere\"\nmodules = [\"*\"]\n",
            &["listen = 'nowhere' is not HOST:PORT"],
        ),
        (
            "unknown key",
            "[runtime]\ncall_timeout = 5\n[nodes.main]\nmodules = [\"*\"]\n",
            &["call_timeout"],
        ),
    ];
    for (what, text, expected) in cases {
        let path = config_file(text);
        let output = boutique(&["--config", path.to_str().unwrap(), "plan"]);
        assert_eq!(
            output.status.code(),
            Some(78),
            "{what}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        for needle in *expected {
            assert!(
                message.contains(needle),
                "{what}: expected {needle:?} in:\n{message}"
            );
        }
        assert!(!message.contains("panicked"), "{what}: {message}");
    }
}

#[test]
fn replicas_of_a_module_may_share_its_listen_address() {
    // The frontend on two nodes (two machines): one [modules.frontend]
    // section, so one address, each on its own node.
    let text = "[cluster]\nsecret_env = \"S\"\n\
         [nodes.a]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n\
         [nodes.b]\nlisten = \"127.0.0.1:7402\"\nmodules = [\"frontend\"]\n\
         [nodes.c]\nlisten = \"127.0.0.1:7403\"\nmodules = [\"frontend\"]\n";
    let output = boutique(&["--config", config_file(text).to_str().unwrap(), "plan"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn plan_warns_of_replicas_that_each_keep_their_own_state() {
    let replicated = "[cluster]\nsecret_env = \"S\"\n\
         [nodes.a]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n\
         [nodes.b]\nlisten = \"127.0.0.1:7402\"\nmodules = [\"payment\", \"catalog\"]\n\
         [nodes.c]\nlisten = \"127.0.0.1:7403\"\nmodules = [\"payment\", \"catalog\"]\n";
    let output = boutique(&[
        "--config",
        config_file(replicated).to_str().unwrap(),
        "plan",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("warnings:"), "{text}");
    assert!(
        text.contains(
            "module 'payment' runs on nodes 'b', 'c' and keeps its state in a SQLite file"
        ),
        "{text}"
    );
    // The catalog keeps nothing between calls: nothing to say.
    assert!(!text.contains("module 'catalog'"), "{text}");
    // Payment's calls have no key: routing by key is no remedy for it.
    assert!(!text.contains("by-key"), "{text}");

    // The cart's have: it is one, and said.
    let carts = replicated.replace("\"payment\"", "\"cart\"");
    let output = boutique(&["--config", config_file(&carts).to_str().unwrap(), "plan"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("or route calls by key ([routing] cart = \"by-key\")"),
        "{}",
        stdout(&output)
    );
    let by_key = format!("{carts}[routing]\ncart = \"by-key\"\n");
    let output = boutique(&["--config", config_file(&by_key).to_str().unwrap(), "plan"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !stdout(&output).contains("warnings:"),
        "{}",
        stdout(&output)
    );

    // On a database the replicas share, nothing either.
    let remedy = "[modules.payment]\ndatabase = \"postgres://db.example/shop\"\n";
    let config = config_file(&format!("{replicated}{remedy}"));
    let output = boutique(&["--config", config.to_str().unwrap(), "plan"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !stdout(&output).contains("warnings:"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn plan_warns_of_an_admin_address_anyone_may_reach() {
    let open = "[nodes.main]\nmodules = [\"*\"]\nadmin = \"0.0.0.0:9400\"\n";
    let output = boutique(&["--config", config_file(open).to_str().unwrap(), "plan"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("node 'main': admin = '0.0.0.0:9400' is not a loopback address"),
        "{text}"
    );
    // On loopback: nothing to say.
    let closed = open.replace("0.0.0.0", "127.0.0.1");
    let output = boutique(&["--config", config_file(&closed).to_str().unwrap(), "plan"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !stdout(&output).contains("warnings:"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn commands_write_to_a_reader_that_stopped_reading_without_a_panic() {
    use std::os::fd::FromRawFd;
    for args in [
        &["plan"][..],
        &["call", "catalog", "GetProduct", r#"{"id":"OLJCESPC7Z"}"#][..],
        &[
            "--config",
            "deploy/kube.toml",
            "deploy",
            "kube",
            "--image",
            "boutique:test",
        ][..],
    ] {
        let mut ends = [0; 2];
        // Close-on-exec: no process another test starts meanwhile may
        // inherit the read end and keep it open.
        // SAFETY: pipe2(2) fills the two descriptors, owned from here on.
        assert_eq!(
            unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) },
            0
        );
        // SAFETY: both are open descriptors nothing else owns.
        let (read, write) = unsafe {
            (
                std::fs::File::from_raw_fd(ends[0]),
                std::fs::File::from_raw_fd(ends[1]),
            )
        };
        // Nobody will ever read what it writes (as `boutique plan | true`).
        drop(read);
        let output = Command::new(env!("CARGO_BIN_EXE_boutique"))
            .args(args)
            .current_dir(repo(""))
            .env("BOUTIQUE__RUNTIME__DATA_DIR", data_dir())
            .stdin(Stdio::null())
            .stdout(write)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    }
}

#[test]
fn a_heartbeat_interval_too_long_to_double_is_refused_not_wrapped() {
    // 2^63 ms: TOML's integers stop below it, `--set` and the environment
    // do not. Doubled, it wrapped to 0 in a release build (the check
    // passed, and heartbeats stopped) and panicked in a debug one.
    let output = boutique(&[
        "--set",
        "runtime.heartbeat_interval_ms=9223372036854775808",
        "plan",
    ]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(78), "{message}");
    assert!(
        message.contains("failure_timeout_ms (2500) must be at least twice heartbeat_interval_ms (9223372036854775808)"),
        "{message}"
    );
}

#[test]
fn load_refuses_bad_arguments_as_bad_usage() {
    for (args, says) in [
        (
            &["--target", "https://shop.example", "--users", "1"][..],
            "--target",
        ),
        (
            &["--target", "http://127.0.0.1:9", "--users", "0"][..],
            "--users 0",
        ),
        (
            &["--target", "http://127.0.0.1:9", "--users", "1000000000"][..],
            "--users 1000000000: give 1 to 10000 users",
        ),
        (
            &[
                "--target",
                "http://127.0.0.1:9",
                "--users",
                "1",
                "--duration",
                "soon",
            ][..],
            "--duration",
        ),
        (
            &[
                "--target",
                "http://127.0.0.1:9",
                "--users",
                "1",
                "--duration",
                "99999999999999999999h",
            ][..],
            "at most a week",
        ),
    ] {
        refused_as_bad_usage(&[&["load"][..], args].concat(), says);
    }
}

#[test]
fn several_problems_are_reported_together() {
    let path = config_file(
        "[nodes.a]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"catalog\", \"nope\"]\n\
         [nodes.b]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"cart\"]\n",
    );
    let output = boutique(&["--config", path.to_str().unwrap(), "plan"]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(78));
    for needle in [
        "'nope'",
        "all listen on 127.0.0.1:7401",
        "secret_env is not set",
        "'currency' is placed on no node",
    ] {
        assert!(
            message.contains(needle),
            "expected {needle:?} in:\n{message}"
        );
    }
}

#[test]
fn call_prints_the_reply_as_json() {
    let output = boutique(&[
        "call",
        "currency",
        "Convert",
        r#"{"from":{"currency_code":"USD","units":19,"nanos":990000000},"to_code":"EUR"}"#,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let reply: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        reply,
        serde_json::json!({"currency_code": "EUR", "units": 17, "nanos": 682441398})
    );
}

#[actix_rt::test]
async fn call_does_not_start_a_module_with_state_beside_a_node_on_its_files() {
    // The shop runs (its node does not listen) on a data directory.
    let dir = storage::testing::TempDir::new("cli");
    let data = format!("runtime.data_dir={}", dir.path().display());
    let (mut shop, _url) = support::spawn_shop(&[
        data.clone(),
        "modules.frontend.listen=127.0.0.1:0".to_owned(),
    ])
    .await;
    let get_cart = [
        "--set",
        &data,
        "call",
        "cart",
        "GetCart",
        r#"{"user_id":"u1"}"#,
    ];

    // A second cart on its files would write behind its back (and its
    // cart keeps carts in memory): refused, saying what to do.
    let refused = boutique(&get_cart);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let text = stderr(&refused);
    assert!(
        text.contains("a node is running on data directory"),
        "{text}"
    );
    assert!(text.contains("listen address"), "{text}");
    // A module that keeps nothing may still be started here.
    let product = boutique(&[
        "--set",
        &data,
        "call",
        "catalog",
        "GetProduct",
        r#"{"id":"OLJCESPC7Z"}"#,
    ]);
    assert_eq!(product.status.code(), Some(0), "{}", stderr(&product));

    // Once the shop has stopped, the cart can be called here.
    shop.kill().await.unwrap();
    let answered = boutique(&get_cart);
    assert_eq!(answered.status.code(), Some(0), "{}", stderr(&answered));
}

#[test]
fn call_starts_only_what_the_called_module_needs() {
    // The web server's port is taken: starting the frontend would fail.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = format!("modules.frontend.listen={}", taken.local_addr().unwrap());
    let output = boutique(&[
        "--set",
        &listen,
        "call",
        "recommendation",
        "ListRecommendations",
        r#"{"user_id":"u1","product_ids":[]}"#,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let reply: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(reply["product_ids"].as_array().unwrap().len(), 5);
}

#[test]
fn a_data_file_the_config_names_but_cannot_be_read_is_a_config_error() {
    // Starting again would not find it: 78, which `up` does not restart.
    let output = boutique(&[
        "--set",
        "modules.catalog.products_file=/nonexistent/products.json",
        "call",
        "catalog",
        "ListProducts",
    ]);
    assert_eq!(output.status.code(), Some(78), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot read products_file /nonexistent/products.json"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn call_reports_a_domain_error_with_exit_1() {
    let output = boutique(&["call", "catalog", "GetProduct", r#"{"id":"NOPE"}"#]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty());
    assert!(
        stderr(&output).contains("no product with ID NOPE"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains(r#"{"ProductNotFound":{"id":"NOPE"}}"#),
        "{}",
        stderr(&output)
    );
}

#[actix_rt::test]
async fn a_secret_is_its_bytes_not_their_text() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    // Two secrets that differ only in bytes that are not UTF-8: as text
    // (each such byte a replacement character) they would be one.
    let secret = OsStr::from_bytes(b"a-secret-of-bytes-\xff\xfe");
    let another = OsStr::from_bytes(b"a-secret-of-bytes-\xfe\xff");
    assert_eq!(secret.to_string_lossy(), another.to_string_lossy());
    let dir = storage::testing::TempDir::new("secret-bytes");
    let overrides = [
        support::data_dir(&dir),
        "nodes.store.listen=127.0.0.1:0".to_owned(),
    ];
    let (_store, addr) =
        support::spawn_node_with_secret("deploy/three-nodes.toml", "store", &overrides, secret)
            .await;
    let call = |secret: &OsStr| {
        Command::new(env!("CARGO_BIN_EXE_boutique"))
            .args(["--config", "deploy/three-nodes.toml", "--set"])
            .arg(format!("nodes.store.listen={addr}"))
            .args(["call", "catalog", "GetProduct", r#"{"id":"OLJCESPC7Z"}"#])
            .current_dir(repo(""))
            .env("BOUTIQUE_SECRET", secret)
            .env("BOUTIQUE__RUNTIME__DATA_DIR", data_dir())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let answered = call(secret);
    assert_eq!(answered.status.code(), Some(0), "{}", stderr(&answered));
    let refused = call(another);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("authentication failed"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn call_reports_an_unreachable_node_with_exit_2() {
    // A bound socket that does not listen: connections are refused. Kept
    // for the whole test, so no other test takes the port meanwhile.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let listen = format!("nodes.store.listen={addr}");
    let output = boutique(&[
        "--config",
        "deploy/three-nodes.toml",
        "--set",
        &listen,
        "call",
        "catalog",
        "ListProducts",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not delivered"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("node 'store'"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn call_will_not_stand_in_for_a_split_node_on_port_0() {
    // Its address is known only once it runs; started here, the module
    // would be that node (a new incarnation) to the others, and take the
    // running node's place at its peers.
    let output = boutique(&[
        "--config",
        "deploy/three-nodes.toml",
        "--set",
        "nodes.web.listen=127.0.0.1:0",
        "call",
        "recommendation",
        "ListRecommendations",
        r#"{"user_id":"u","product_ids":[]}"#,
    ]);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains("node 'web' listens on port 0"), "{said}");
    assert!(
        said.contains("would take the running node's place"),
        "{said}"
    );
}

#[test]
fn call_dials_a_replica_on_a_fixed_port_when_another_is_on_port_0() {
    // The replica on port 0 cannot be dialed, the other can: the call goes
    // to it (it was refused for the first replica's port 0). Here the
    // other's port is bound but not listening, so the call is not
    // delivered, to that node.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let second = format!("nodes.catalog-2.listen={addr}");
    let output = boutique(&[
        "--config",
        "deploy/replicated.toml",
        "--set",
        "nodes.catalog-1.listen=127.0.0.1:0",
        "--set",
        &second,
        "call",
        "catalog",
        "ListProducts",
    ]);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(!said.contains("listens on port 0"), "{said}");
    assert!(said.contains("not delivered"), "{said}");
    assert!(said.contains("catalog-2"), "{said}");
}

#[test]
fn call_names_a_data_directory_it_cannot_use() {
    let output = boutique(&[
        "--set",
        "runtime.data_dir=Cargo.toml/data",
        "call",
        "cart",
        "GetCart",
        r#"{"user_id":"u"}"#,
    ]);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(70), "{said}");
    assert!(
        said.contains("cannot use data directory Cargo.toml/data (runtime.data_dir)"),
        "{said}"
    );
    assert!(said.contains("--set runtime.data_dir=PATH"), "{said}");
}

#[test]
fn call_refuses_bad_input_with_exit_64() {
    for (args, needle) in [
        (
            vec!["call", "catalogue", "ListProducts"],
            "unknown service 'catalogue'",
        ),
        (
            vec!["call", "catalog", "ListProduct"],
            "no message 'ListProduct'",
        ),
        (
            vec!["call", "catalog", "GetProduct", "{not json"],
            "not valid JSON",
        ),
        (
            vec!["call", "catalog", "GetProduct", r#"{"idd":"x"}"#],
            "unknown field `idd`",
        ),
        // A wrong type deep in the message: the error names the field.
        (
            vec![
                "call",
                "currency",
                "Convert",
                r#"{"from":{"currency_code":"USD","units":"x","nanos":0},"to_code":"EUR"}"#,
            ],
            r#"not a valid currency Convert: from.units: invalid type: string "x", expected i64"#,
        ),
        (vec!["call"], "SERVICE"),
        // Checked before the node is dialled (none runs here: that was
        // exit 2, not delivered).
        (
            vec![
                "--config",
                "deploy/three-nodes.toml",
                "call",
                "currency",
                "Nope",
            ],
            "no message 'Nope'",
        ),
        (
            vec![
                "--config",
                "deploy/three-nodes.toml",
                "call",
                "catalog",
                "GetProduct",
                r#"{"idd":"x"}"#,
            ],
            "unknown field `idd`",
        ),
    ] {
        refused_as_bad_usage(&args, needle);
    }
}

#[test]
fn run_needs_a_node_name_when_there_are_several() {
    // Bad usage (64), not a bad config: the config is fine.
    let output = boutique(&["--config", "deploy/three-nodes.toml", "run"]);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("choose one: boutique run --node NAME"),
        "{}",
        stderr(&output)
    );
    let output = boutique(&[
        "--config",
        "deploy/three-nodes.toml",
        "run",
        "--node",
        "nope",
    ]);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--node nope: this config has no node 'nope'; its nodes are: "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn run_without_the_secret_says_how_to_set_it() {
    let output = boutique_without_secret(&[
        "--config",
        "deploy/three-nodes.toml",
        "--set",
        "nodes.store.listen=127.0.0.1:0",
        "run",
        "--node",
        "store",
    ]);
    assert_eq!(output.status.code(), Some(78));
    assert!(
        stderr(&output).contains("BOUTIQUE_SECRET, which is not set"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("the same random string on every node"),
        "{}",
        stderr(&output)
    );

    // A client of running nodes is told to use theirs: a new random secret
    // would only be refused.
    let output = boutique_without_secret(&[
        "--config",
        "deploy/three-nodes.toml",
        "call",
        "catalog",
        "ListProducts",
    ]);
    assert_eq!(output.status.code(), Some(78), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("set it to the secret the running nodes were started with"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn run_refuses_an_admin_socket_that_is_not_one() {
    for (value, why) in [
        ("banana", "not a descriptor number"),
        ("1", "standard input, output or error"),
        ("987", "not an open listening socket"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_boutique"))
            .args([
                "--set",
                "nodes.main.admin=127.0.0.1:0",
                "--set",
                "modules.frontend.listen=127.0.0.1:0",
                "run",
            ])
            .current_dir(repo(""))
            .env("BOUTIQUE__RUNTIME__DATA_DIR", data_dir())
            .env("BOUTIQUE_ADMIN_LISTENER_FD", value)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(78),
            "{value}: {}",
            stderr(&output)
        );
        let said = stderr(&output);
        assert!(
            said.contains(&format!("BOUTIQUE_ADMIN_LISTENER_FD={value}: {why}")),
            "{value}: {said}"
        );
        assert!(said.contains("unset it"), "{said}");
    }
}

#[actix_rt::test]
async fn run_serves_its_admin_endpoints_on_a_socket_handed_down() {
    // As `boutique up` does: the socket is bound here, listening, and the
    // node inherits it.
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_boutique"));
    command
        .args(["--set", &format!("nodes.main.admin={addr}")])
        .args(["--set", "modules.frontend.listen=127.0.0.1:0", "run"])
        .current_dir(repo(""))
        .env("BOUTIQUE__RUNTIME__DATA_DIR", data_dir())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    boutique::handoff::hand_to(&mut command, &socket);
    let mut child = command.spawn().unwrap();
    // Only the node has it now: a request can only be answered by the node.
    drop(socket);
    // Kept open to the end: the node fails writing to a closed stdout.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let admin_line = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("the node exited");
            if line.contains("admin on ") {
                return line;
            }
        }
    })
    .await
    .expect("the node said where its admin endpoints are");
    assert!(
        admin_line.ends_with(&format!("admin on http://{addr}")),
        "{admin_line}"
    );
    let mut health = awc::Client::new()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.body().await.unwrap(), "ok\n");
    drop(lines);
}

#[test]
fn certs_writes_a_ca_and_a_certificate_per_node_and_for_clients() {
    let dir = data_dir();
    let output = boutique(&[
        "--config",
        "deploy/three-nodes.toml",
        "certs",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for name in ["ca", "web", "store", "pay", "client"] {
        let cert = std::fs::read_to_string(dir.join(format!("{name}.pem"))).unwrap();
        assert!(
            cert.starts_with("-----BEGIN CERTIFICATE-----"),
            "{name}: {cert}"
        );
        let key = dir.join(format!("{name}.key"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600,
            "{name}.key"
        );
    }
    assert!(
        stdout(&output).contains("[cluster.tls]"),
        "{}",
        stdout(&output)
    );
    // Again into the same directory: the CA is kept, and signs the new
    // certificates (renewed: nodes with the older ones trust them); a new
    // one only if asked for.
    let ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    let web = std::fs::read_to_string(dir.join("web.pem")).unwrap();
    let certs_again = |force: bool| {
        let mut args = vec![
            "--config",
            "deploy/three-nodes.toml",
            "certs",
            dir.to_str().unwrap(),
        ];
        if force {
            args.push("--force");
        }
        boutique(&args)
    };
    let output = certs_again(false);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("kept the CA in"),
        "{}",
        stdout(&output)
    );
    assert_eq!(std::fs::read_to_string(dir.join("ca.pem")).unwrap(), ca);
    assert_ne!(std::fs::read_to_string(dir.join("web.pem")).unwrap(), web);
    let output = certs_again(true);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_ne!(std::fs::read_to_string(dir.join("ca.pem")).unwrap(), ca);
    // The CA's certificate without its key (kept off this machine): no
    // certificate can be signed by it, and a new CA is not made unasked.
    std::fs::remove_file(dir.join("ca.key")).unwrap();
    let output = certs_again(false);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("without the CA's key") && stderr(&output).contains("--force"),
        "{}",
        stderr(&output)
    );
    let _ = std::fs::remove_dir_all(&dir);

    // A node whose name is no certificate name (and would write its
    // files elsewhere): refused, nothing written.
    let config =
        config_file("[nodes.\"../outside\"]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n");
    let output = boutique(&[
        "--config",
        config.to_str().unwrap(),
        "certs",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(78), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("'../outside' cannot be a certificate name"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.join("ca.pem").exists(), "something was written");
    assert!(!dir.join("../outside.pem").exists());

    // A node whose files would be written over the CA's, or the clients':
    // refused, nothing written.
    for node in ["ca", "client"] {
        let config = config_file(&format!(
            "[nodes.{node}]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n"
        ));
        let output = boutique(&[
            "--config",
            config.to_str().unwrap(),
            "certs",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(78), "{}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!("'{node}' would be written over")),
            "{}",
            stderr(&output)
        );
        assert!(
            !dir.join("ca.pem").exists(),
            "{node}: something was written"
        );
    }
}

/// The JSON log lines in `stderr` (other lines are notes for people).
fn json_log_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn logs_are_json_lines_with_log_format_json_or_the_config_and_levels_come_from_the_config() {
    let call = ["call", "currency", "GetSupportedCurrencies"];
    // --log-format json, level from the config.
    let path = config_file(
        "[logging]\nlevel = \"info\"\n[nodes.main]\nmodules = [\"*\"]\n\
         [modules.frontend]\nlisten = \"127.0.0.1:0\"\n",
    );
    let mut args = vec!["--config", path.to_str().unwrap(), "--log-format", "json"];
    args.extend(call);
    let output = boutique(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines = json_log_lines(&stderr(&output));
    let started = lines
        .iter()
        .find(|line| line["fields"]["message"] == "module started")
        .unwrap_or_else(|| panic!("no 'module started' line in {lines:#?}"));
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["fields"]["module"], "currency");

    // The format from the config; without a level, `call` logs errors only.
    let path = config_file(
        "[logging]\nformat = \"json\"\n[nodes.main]\nmodules = [\"*\"]\n\
         [modules.frontend]\nlisten = \"127.0.0.1:0\"\n",
    );
    let mut args = vec!["--config", path.to_str().unwrap()];
    args.extend(call);
    let output = boutique(&args);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        json_log_lines(&stderr(&output)).is_empty(),
        "{}",
        stderr(&output)
    );
    let path = config_file(
        "[logging]\nformat = \"json\"\nlevel = \"info\"\n[nodes.main]\nmodules = [\"*\"]\n\
         [modules.frontend]\nlisten = \"127.0.0.1:0\"\n",
    );
    let mut args = vec!["--config", path.to_str().unwrap()];
    args.extend(call);
    let output = boutique(&args);
    assert!(
        !json_log_lines(&stderr(&output)).is_empty(),
        "{}",
        stderr(&output)
    );

    // The flag wins over the config.
    let mut args = vec!["--config", path.to_str().unwrap(), "--log-format", "text"];
    args.extend(call);
    let output = boutique(&args);
    let text = stderr(&output);
    assert!(json_log_lines(&text).is_empty(), "{text}");
    assert!(text.contains("module started"), "{text}");

    // Text by default: no format in the config, no flag.
    let path = config_file(
        "[logging]\nlevel = \"info\"\n[nodes.main]\nmodules = [\"*\"]\n\
         [modules.frontend]\nlisten = \"127.0.0.1:0\"\n",
    );
    let mut args = vec!["--config", path.to_str().unwrap()];
    args.extend(call);
    let output = boutique(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(json_log_lines(&text).is_empty(), "{text}");
    assert!(text.contains("module started"), "{text}");
}

#[actix_rt::test]
async fn run_told_to_stop_as_soon_as_it_says_it_runs_stops_gracefully() {
    // As a script, `up` or Kubernetes may: SIGTERM the moment the node
    // says it runs. The signal is the node's to handle from before it
    // starts, so it shuts down gracefully and exits 0 (it was killed by
    // the signal, with no grace, when it took the signals over only after
    // saying where the shop is).
    assert_eq!(run_and_signal(libc::SIGTERM).await.code(), Some(0));
}

#[actix_rt::test]
async fn run_stops_gracefully_when_its_terminal_goes_away() {
    // SIGHUP, as a closed terminal or a dropped SSH session sends: it
    // ended the node at once, with no grace.
    let status = run_and_signal(libc::SIGHUP).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// A node whose start waits (a module's database does not answer: sqlx
/// tries for 10 s) stops at once on a second Ctrl-C, exit 130, as it does
/// once up. Signals that came during the start were merged into one, and
/// acted on only once the start was over.
#[actix_rt::test]
async fn a_second_interrupt_while_the_node_starts_stops_it_at_once() {
    // A bound socket that does not listen: every connection is refused,
    // and sqlx keeps trying.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let database = format!(
        "modules.orders.database=postgres://shop@{}/shop",
        socket.local_addr().unwrap()
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_boutique"))
        .args([
            "--set",
            "modules.frontend.listen=127.0.0.1:0",
            "--set",
            &database,
            "run",
        ])
        .current_dir(repo(""))
        .env("BOUTIQUE__RUNTIME__DATA_DIR", data_dir())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // A module started: the node is starting, with the signals taken over.
    until_line(&mut lines, "module started", "a module started").await;
    let pid = libc::pid_t::try_from(child.id().unwrap()).unwrap();
    let started = std::time::Instant::now();
    let interrupt = || {
        // SAFETY: a signal to our own child, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    };
    // One, heard (two at once are one signal), then another.
    interrupt();
    until_line(
        &mut lines,
        "asked to stop while starting",
        "the node heard the first interrupt",
    )
    .await;
    interrupt();
    let reading = tokio::spawn(async move {
        let mut said = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            said.push_str(&line);
            said.push('\n');
        }
        said
    });
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the node stopped")
        .unwrap();
    let said = reading.await.unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}\n{said}");
    assert!(said.contains("asked again while starting"), "{said}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}: it waited for the start",
        started.elapsed()
    );
}

/// Reads a child's `lines` until one contains `needle` (within 60 s; the
/// child's exit first fails the test, as does the time: `what` says what
/// was awaited).
async fn until_line<R: tokio::io::AsyncRead + Unpin>(
    lines: &mut tokio::io::Lines<BufReader<R>>,
    needle: &str,
    what: &str,
) {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("the node exited");
            if line.contains(needle) {
                return;
            }
        }
    })
    .await
    .expect(what);
}

/// Starts `boutique run` and sends it `signal` as soon as it says it runs;
/// how it exited.
async fn run_and_signal(signal: libc::c_int) -> std::process::ExitStatus {
    run_and_signal_with_stderr(signal, Stdio::inherit()).await
}

/// [`run_and_signal`], the node's stderr being `stderr`.
async fn run_and_signal_with_stderr(
    signal: libc::c_int,
    stderr: Stdio,
) -> std::process::ExitStatus {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_boutique"))
        .args(["--set", "modules.frontend.listen=127.0.0.1:0", "run"])
        .current_dir(repo(""))
        .env("BOUTIQUE__RUNTIME__DATA_DIR", data_dir())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    until_line(
        &mut lines,
        "boutique: node 'main' running",
        "the node said it runs",
    )
    .await;
    let pid = libc::pid_t::try_from(child.id().unwrap()).unwrap();
    // SAFETY: a signal to our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    // Read on, so that its writes find a reader.
    let reading = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the node stopped")
        .unwrap();
    reading.abort();
    status
}

#[actix_rt::test]
async fn text_a_request_quotes_cannot_forge_a_log_line() {
    // An id in a URL is decoded: `%0A` a line break, which the refusal's
    // log line quoted as it was, starting a line the client wrote.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_boutique"))
        .args([
            "--set",
            "modules.frontend.listen=127.0.0.1:0",
            "--set",
            "logging.level=info",
            "run",
        ])
        .current_dir(repo(""))
        .env("BOUTIQUE__RUNTIME__DATA_DIR", data_dir())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("the node exited");
            if let Some(url) = line.strip_prefix("boutique: shop open at ") {
                return url.trim_end_matches('/').to_owned();
            }
        }
    })
    .await
    .expect("the node said where the shop is");
    let client = awc::Client::default();
    for path in [
        "/api/v1/orders/x%0A2026-01-01T00:00:00Z%20ERROR%20forged-line",
        "/static/%0A2026-01-01T00:00:00Z%20ERROR%20forged-line",
    ] {
        let response = client.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let pid = libc::pid_t::try_from(child.id().unwrap()).unwrap();
    // SAFETY: a signal to our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let reading = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the node stopped")
        .unwrap();
    reading.abort();
    let log = stderr(&output);
    // Both refusals were logged, the line break escaped within the line.
    assert_eq!(
        log.matches("\\n2026-01-01T00:00:00Z ERROR forged-line")
            .count(),
        2,
        "{log}"
    );
    assert!(
        !log.lines()
            .any(|line| line.starts_with("2026-01-01T00:00:00Z")),
        "{log}"
    );
}

/// A pipe whose reader is gone: every write to it fails (`2>&1 | head`
/// once `head` has its line).
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

#[actix_rt::test]
async fn a_closed_stderr_loses_what_is_said_not_the_exit_code() {
    // A domain error is said on stderr, with exit 1: not a panic's 101.
    let output = Command::new(env!("CARGO_BIN_EXE_boutique"))
        .args(["call", "catalog", "GetProduct", r#"{"id":"NOPE"}"#])
        .current_dir(repo(""))
        .env("BOUTIQUE__RUNTIME__DATA_DIR", data_dir())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    // A node whose log cannot be written runs, and stops gracefully (its
    // first log line panicked, in whichever thread wrote it).
    let status = run_and_signal_with_stderr(libc::SIGTERM, closed_pipe()).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn a_rust_log_that_is_no_filter_is_said_to_be_ignored() {
    let output = Command::new(env!("CARGO_BIN_EXE_boutique"))
        .arg("plan")
        .current_dir(repo(""))
        .env("RUST_LOG", "info=verbose=yes")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(
        said.contains(r#"warning: RUST_LOG="info=verbose=yes" is not a log filter"#),
        "{said}"
    );
}

#[test]
fn a_setting_variable_with_one_underscore_after_the_prefix_is_said_to_be_ignored() {
    let output = Command::new(env!("CARGO_BIN_EXE_boutique"))
        // The secret's variable, named like a setting: not one.
        .args(["--set", "cluster.secret_env=BOUTIQUE_CLUSTER_SECRET"])
        .env("BOUTIQUE_CLUSTER_SECRET", "a secret of sixteen bytes")
        .arg("plan")
        .current_dir(repo(""))
        .env("BOUTIQUE_RUNTIME__CALL_TIMEOUT_MS", "0")
        .env("BOUTIQUE_LOGGING_LEVEL", "debug")
        .env("BOUTIQUE_SECRET", "not a setting")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = stderr(&output);
    assert!(
        said.contains("warning: BOUTIQUE_RUNTIME__CALL_TIMEOUT_MS is not read")
            && said.contains("as BOUTIQUE__RUNTIME__CALL_TIMEOUT_MS\n"),
        "{said}"
    );
    // Single underscores throughout: the section says where the key starts.
    assert!(
        said.contains("warning: BOUTIQUE_LOGGING_LEVEL is not read")
            && said.contains("as BOUTIQUE__LOGGING__LEVEL\n"),
        "{said}"
    );
    // A variable that names no section is not a setting, nor the one the
    // secret is read from.
    assert!(!said.contains("BOUTIQUE_SECRET"), "{said}");
    assert!(!said.contains("BOUTIQUE_CLUSTER_SECRET"), "{said}");
}

#[test]
fn a_mistake_in_an_override_is_said_to_be_there_not_in_the_file() {
    let output = boutique(&["--set", "runtime.call_timout_ms=1", "plan"]);
    assert_eq!(output.status.code(), Some(78));
    let said = stderr(&output);
    assert!(said.contains("call_timout_ms"), "{said}");
    assert!(
        said.contains("in a BOUTIQUE__ variable or a --set: the file alone is valid"),
        "{said}"
    );
    // A mistake in the file itself is not blamed on the overrides.
    let path = config_file("[runtime]\ncall_timout_ms = 1\n[nodes.main]\nmodules = [\"*\"]\n");
    let output = boutique(&[
        "--config",
        path.to_str().unwrap(),
        "--set",
        "runtime.call_timeout_ms=5",
        "plan",
    ]);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(78), "{said}");
    assert!(!said.contains("the file alone is valid"), "{said}");
}

#[test]
fn a_value_that_only_looks_like_a_number_is_kept_as_typed() {
    let output = Command::new(env!("CARGO_BIN_EXE_boutique"))
        .args(["--set", "cluster.name=0x1F", "plan"])
        .current_dir(repo(""))
        .env("BOUTIQUE__RUNTIME__DATA_DIR", "1.50")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Read as numbers first, they were 31 and 1.5.
    assert!(said.contains("cluster: 0x1F"), "{said}");
    assert!(said.contains("data directory: 1.50"), "{said}");
}

#[test]
fn up_refuses_a_give_up_time_that_is_none() {
    let output = boutique(&["up", "--give-up-after", "soon"]);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--give-up-after \"soon\": give a time like 30s, 2m or 500ms"),
        "{}",
        stderr(&output)
    );
}
