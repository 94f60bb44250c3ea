//! `boutique-plot` on reports shaped as `boutique load --json` writes them:
//! it draws one PNG per chart, of the stated size and not blank, and
//! refuses a directory without results or with a broken one, naming it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh, empty directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("plot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn plot(results: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boutique-plot"))
        .arg(results)
        .arg(out)
        .output()
        .unwrap()
}

/// A report as `boutique load --json` writes it (the fields the charts read).
fn report(requests_per_second: f64, p50: f64, p99: f64) -> String {
    let distribution: Vec<String> = [
        (0.0, p50 / 4.0),
        (50.0, p50),
        (90.0, (p50 + p99) / 2.0),
        (99.0, p99),
        (99.9, p99 * 2.0),
        (99.99, p99 * 3.0),
        (100.0, p99 * 4.0),
    ]
    .iter()
    .map(|(q, ms)| format!("[{q}, {ms}]"))
    .collect();
    format!(
        r#"{{"requests": 1000, "requests_per_second": {requests_per_second},
            "errors": {{}}, "latency_ms": {{"p50": {p50}, "p90": {p99}, "p99": {p99}, "p99.9": {p99}, "max": {p99}}},
            "latency_distribution_ms": [{}], "seconds": 10.0, "mode": {{"users": 1}},
            "all_tasks": {{}}, "tasks": {{}}}}"#,
        distribution.join(", ")
    )
}

/// Width and height from a PNG's header, if it is a PNG.
fn png_size(path: &Path) -> Option<(u32, u32)> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.get(..8)? != b"\x89PNG\r\n\x1a\n" || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    Some((word(16), word(20)))
}

#[test]
fn each_chart_is_drawn_from_the_reports_as_a_png() {
    let results = scratch("results");
    for (name, text) in [
        ("monolith-users-1.json", report(2500.0, 0.3, 1.7)),
        ("monolith-users-4.json", report(5400.0, 0.6, 3.4)),
        ("monolith-users-16.json", report(7500.0, 1.8, 7.8)),
        ("split-users-1.json", report(1100.0, 0.8, 4.3)),
        ("split-users-4.json", report(3300.0, 1.0, 6.5)),
        ("split-users-16.json", report(5100.0, 2.7, 11.7)),
        ("monolith-rate-100.json", report(121.0, 0.9, 2.9)),
        ("split-rate-100.json", report(121.0, 0.8, 3.6)),
        // Not a result: left alone.
        ("cpu.tsv", "deployment\trun\n".to_owned()),
    ] {
        std::fs::write(results.join(name), text).unwrap();
    }
    let out = scratch("charts").join("nested");
    let output = plot(&results, &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = String::from_utf8(output.stdout).unwrap();
    for chart in [
        "latency-distribution.png",
        "throughput-vs-users.png",
        "latency-vs-users.png",
    ] {
        let path = out.join(chart);
        assert!(listed.contains(chart), "{listed}");
        assert_eq!(png_size(&path), Some((960, 600)), "{chart}");
        // Lines, labels and a legend compress far worse than a blank page.
        let bytes = std::fs::metadata(&path).unwrap().len();
        assert!(bytes > 20_000, "{chart}: only {bytes} bytes");
    }
}

#[test]
fn no_results_or_a_broken_one_is_refused_with_its_name() {
    let empty = scratch("empty");
    let output = plot(&empty, &scratch("empty-out"));
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("no results") && message.contains("DEPLOYMENT-users-N.json"),
        "{message}"
    );

    let broken = scratch("broken");
    std::fs::write(broken.join("monolith-users-1.json"), "{\"requests\": ").unwrap();
    let output = plot(&broken, &scratch("broken-out"));
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("monolith-users-1.json"), "{message}");

    let missing = scratch("missing");
    std::fs::write(
        missing.join("split-rate-100.json"),
        r#"{"requests_per_second": 100, "latency_ms": {"p50": 1, "p99": 2}}"#,
    )
    .unwrap();
    let output = plot(&missing, &scratch("missing-out"));
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("split-rate-100.json") && message.contains("latency_distribution_ms"),
        "{message}"
    );
}
