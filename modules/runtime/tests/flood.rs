//! A flood far past the limit of calls in flight: memory stays bounded.
//! Its own test binary, so the process's peak memory is this test's.

mod support;

use std::io::Write;
use std::time::Duration;

use runtime::CallError;
use support::*;

/// The process's peak resident memory so far, in KiB (Linux).
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak memory (VmHWM) in /proc/self/status:\n{status}"))
}

#[actix_rt::test]
async fn a_flood_of_calls_past_the_limit_keeps_memory_bounded() {
    const CALLS: u32 = 200_000;
    const BLOB: usize = 4 * 1024;
    let cluster = cluster().await; // the default limit: 1024 in flight
    let toy = cluster
        .b
        .service::<Toy>()
        .unwrap()
        .with_timeout(Duration::from_secs(30));
    toy.call(Echo {
        text: "hello".into(),
        local_only: None,
    })
    .await
    .unwrap()
    .unwrap();
    let before = peak_kib();

    // 200,000 calls of 4 KiB each (800 MiB) fired and forgotten, at a
    // service that answers none of them.
    for key in 0..CALLS {
        drop(toy.call(HoldBlob {
            key,
            blob: vec![7; BLOB],
        }));
    }
    // And callers that wait: each finds no room, and is refused in time.
    let waiting: Vec<_> = (0..1_000)
        .map(|_| {
            let toy = toy.with_timeout(Duration::from_millis(200));
            tokio::spawn(async move {
                toy.call(Echo {
                    text: "x".into(),
                    local_only: None,
                })
                .await
            })
        })
        .collect();
    for call in waiting {
        let error = call.await.unwrap().unwrap_err();
        assert!(matches!(error, CallError::Overloaded { .. }), "{error:?}");
    }
    // The calls that got a slot reach node a in their own time: asking a
    // what it holds is a's own call, not queued behind them. On a busy
    // machine some may still be on their way; wait for them (and for any
    // beyond the limit, which would show up too).
    let held_by_a = cluster.a.service::<Toy>().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let held = loop {
        let held = held_by_a.call(Held {}).await.unwrap().unwrap();
        if held.len() >= 1024 || std::time::Instant::now() > deadline {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let after = peak_kib();

    assert_eq!(held.len(), 1024, "exactly the limit reached the peak");
    let grown_mib = after.saturating_sub(before) / 1024;
    let _ = writeln!(
        std::io::stderr(),
        "flood: {CALLS} calls of {BLOB} B past a limit of 1024; peak memory {} MiB (grew {grown_mib} MiB)",
        after / 1024
    );
    assert!(grown_mib < 64, "memory grew by {grown_mib} MiB");
    assert_eq!(cluster.b.stats().calls_overloaded, 1_000);
}
