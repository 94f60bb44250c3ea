//! `boutique load` against the real shop (the binary, one process): the
//! user mix runs, the report adds up, a fixed rate sends exactly its
//! schedule, and bad arguments are refused with a message.

mod support;

use std::process::Output;

use serde_json::Value;
use support::{data_dir, spawn_shop};

async fn boutique_load(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_boutique"))
        .arg("load")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap()
}

fn report(output: &Output) -> Value {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[actix_rt::test]
async fn the_user_mix_runs_against_the_shop_and_the_report_adds_up() {
    let data = storage::testing::TempDir::new("load");
    let (_shop, url) = spawn_shop(&[
        data_dir(&data),
        "modules.frontend.listen=127.0.0.1:0".to_owned(),
    ])
    .await;

    // Closed loop: two users, no think time.
    let users = report(
        &boutique_load(&[
            "--target",
            &url,
            "--duration",
            "2s",
            "--users",
            "2",
            "--json",
        ])
        .await,
    );
    let requests = users["requests"].as_u64().unwrap();
    assert!(requests > 20, "{users}");
    let tasks = users["tasks"].as_object().unwrap();
    let by_task: u64 = tasks
        .values()
        .map(|t| t["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(by_task, requests, "{users}");
    // browseProduct weighs 10 of 19: the most frequent task.
    let most = tasks
        .iter()
        .max_by_key(|(_, t)| t["requests"].as_u64().unwrap())
        .unwrap()
        .0;
    assert_eq!(most, "browseProduct", "{users}");
    let latency = &users["latency_ms"];
    let p = |q: &str| latency[q].as_f64().unwrap();
    assert!(
        0.0 < p("p50") && p("p50") <= p("p90") && p("p90") <= p("p99") && p("p99") <= p("p99.9"),
        "{latency}"
    );
    // Declined cards (about 0.5% of fake Visa numbers) are the only errors
    // the mix may meet.
    for status in users["errors"].as_object().unwrap().keys() {
        assert_eq!(status, "402", "{users}");
    }

    // Open loop: 40 tasks a second for one second is 40 tasks.
    let rate = report(
        &boutique_load(&[
            "--target",
            &url,
            "--duration",
            "1s",
            "--rate",
            "40",
            "--json",
        ])
        .await,
    );
    assert_eq!(rate["requests"], 40, "{rate}");
    assert_eq!(rate["mode"]["rate"], 40.0, "{rate}");

    // Text, for people.
    let text = boutique_load(&["--target", &url, "--duration", "500ms", "--users", "1"]).await;
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("requests/s") && text.contains("browseProduct") && text.contains("p99.9"),
        "{text}"
    );
}

#[actix_rt::test]
async fn bad_arguments_and_an_absent_shop_are_refused_with_a_message() {
    // An address nobody listens on: bound, then let go.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    for (args, expected) in [
        (
            vec![
                "--target",
                "http://127.0.0.1:9",
                "--users",
                "1",
                "--rate",
                "5",
            ],
            "cannot be used with",
        ),
        (vec!["--target", "http://127.0.0.1:9"], "--rate"),
        (
            vec!["--target", "http://127.0.0.1:9", "--rate", "0"],
            "give 0 < R",
        ),
        (
            vec!["--target", "127.0.0.1:9", "--users", "1"],
            "http://HOST:PORT",
        ),
        (
            vec![
                "--target",
                "http://127.0.0.1:9",
                "--users",
                "1",
                "--duration",
                "3 weeks",
            ],
            "--duration",
        ),
        (
            vec![
                "--target",
                closed.as_str(),
                "--users",
                "1",
                "--duration",
                "1s",
            ],
            "does not answer",
        ),
    ] {
        let output = boutique_load(&args).await;
        assert_ne!(output.status.code(), Some(0), "{args:?}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(expected), "{args:?}: {message}");
    }
}
