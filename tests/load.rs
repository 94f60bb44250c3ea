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
    // Every HTTP request is counted once, in the task that made it (or a
    // user's first home page, which is no task: at most one per user).
    let requests = users["requests"].as_u64().unwrap();
    let all_tasks = users["all_tasks"]["tasks"].as_u64().unwrap();
    assert!(all_tasks > 20, "{users}");
    let tasks = users["tasks"].as_object().unwrap();
    let count = |field: &str| -> u64 { tasks.values().map(|t| t[field].as_u64().unwrap()).sum() };
    assert_eq!(count("tasks"), all_tasks, "{users}");
    assert!(
        (requests - 2..=requests).contains(&count("requests")),
        "{users}"
    );
    // A checkout makes three requests, an addToCart two: more requests
    // than tasks.
    assert!(requests > all_tasks, "{users}");
    // browseProduct weighs 10 of 19: the most frequent task.
    let most = tasks
        .iter()
        .max_by_key(|(_, t)| t["tasks"].as_u64().unwrap())
        .unwrap()
        .0;
    assert_eq!(most, "browseProduct", "{users}");
    for latency in [&users["latency_ms"], &users["all_tasks"]["latency_ms"]] {
        let p = |q: &str| latency[q].as_f64().unwrap();
        assert!(
            0.0 < p("p50")
                && p("p50") <= p("p90")
                && p("p90") <= p("p99")
                && p("p99") <= p("p99.9"),
            "{latency}"
        );
    }
    // The whole distribution, for plots: rising, and through the p50.
    let distribution = users["latency_distribution_ms"].as_array().unwrap();
    let points: Vec<(f64, f64)> = distribution
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert!(points.len() > 10, "{users}");
    assert!(
        points
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "{points:?}"
    );
    assert!(
        points.contains(&(50.0, users["latency_ms"]["p50"].as_f64().unwrap())),
        "{points:?}"
    );
    // A task takes as long as its requests together: the longest task
    // at least as long as the longest request.
    let longest = |of: &serde_json::Value| of["latency_ms"]["max"].as_f64().unwrap();
    assert!(longest(&users["all_tasks"]) >= longest(&users), "{users}");
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
    assert_eq!(rate["all_tasks"]["tasks"], 40, "{rate}");
    assert!(rate["requests"].as_u64().unwrap() >= 40, "{rate}");
    // The schedule's own lateness is reported apart, and only for a schedule.
    let lag = &rate["schedule_lag_ms"];
    assert!(
        lag["p50"].as_f64().unwrap() <= lag["max"].as_f64().unwrap(),
        "{rate}"
    );
    assert!(users.get("schedule_lag_ms").is_none(), "{users}");
    assert_eq!(rate["mode"]["rate"], 40.0, "{rate}");

    // Text, for people.
    let text = boutique_load(&["--target", &url, "--duration", "500ms", "--users", "1"]).await;
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("requests/s")
            && text.contains("browseProduct")
            && text.contains("HTTP requests")
            && text.contains("p99.9"),
        "{text}"
    );
}

#[actix_rt::test]
async fn bad_arguments_and_an_absent_shop_are_refused_with_a_message() {
    // An address nobody listens on: a socket bound, never listening, and
    // kept for the whole test (let go, another test could take the port).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = format!("http://{}", socket.local_addr().unwrap());
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

/// A stand-in shop: it lists one product, and answers every other request
/// at once with an empty page, or, if `hangs`, never; it counts them.
fn stand_in_shop(hangs: bool) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&seen);
    let server = HttpServer::new(move || {
        let counted = std::sync::Arc::clone(&counted);
        App::new()
            .route(
                "/api/v1/products",
                web::get().to(|| async {
                    HttpResponse::Ok().json(serde_json::json!({"products": [{"id": "OLJCESPC7Z"}]}))
                }),
            )
            .default_service(web::to(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    if hangs {
                        std::future::pending::<()>().await;
                    }
                    HttpResponse::Ok().body("")
                }
            }))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}", server.addrs()[0]);
    actix_rt::spawn(server.run());
    (url, seen)
}

#[actix_rt::test]
async fn a_shop_that_stops_answering_does_not_hold_the_run() {
    // Every request after the product list hangs: each user's first one
    // would hold the run for the requests' 30 s timeout.
    let (url, _) = stand_in_shop(true);
    let started = std::time::Instant::now();
    let output = boutique_load(&[
        "--target",
        &url,
        "--duration",
        "1s",
        "--users",
        "3",
        "--json",
    ])
    .await;
    let took = started.elapsed();
    let report = report(&output);
    // As long again as the run, then the tasks still running are stopped.
    assert!(took < std::time::Duration::from_secs(15), "took {took:?}");
    assert_eq!(report["unfinished_tasks"], 3, "{report}");
    assert_eq!(report["all_tasks"]["tasks"], 0, "{report}");
}

#[actix_rt::test]
async fn an_interrupted_run_reports_what_it_measured_so_far() {
    let (url, seen) = stand_in_shop(false);
    let mut load = tokio::process::Command::new(env!("CARGO_BIN_EXE_boutique"))
        .args([
            "load",
            "--target",
            &url,
            "--duration",
            "60s",
            "--users",
            "2",
            "--json",
        ])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while seen.load(std::sync::atomic::Ordering::SeqCst) < 20 {
        assert!(std::time::Instant::now() < deadline, "the load never came");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let pid = libc::pid_t::try_from(load.id().unwrap()).unwrap();
    // SAFETY: a signal to our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let mut stdout = load.stdout.take().unwrap();
    let mut text = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut text)
        .await
        .unwrap();
    let status = load.wait().await.unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&text)
    );
    let report: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(report["interrupted"], "interrupt", "{report}");
    // The fake saw 20 or more; all but those in flight (one per user)
    // were answered, and counted.
    assert!(report["requests"].as_u64().unwrap() >= 18, "{report}");
    assert!(report["seconds"].as_f64().unwrap() < 60.0, "{report}");
}
