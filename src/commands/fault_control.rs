//! `boutique run --fault-control` (hidden, for failure tests): the node reads
//! fault-injection commands from stdin, one per line, and applies them to its
//! connections through [`FaultInjector`]. This is how the
//! fault-injection suite (`tests/faults.rs`) blackholes, delays or drops
//! traffic between real processes. Without the flag nothing reads stdin and
//! no fault can be injected.
//!
//! | line | effect on this node's traffic with node PEER |
//! |---|---|
//! | `stall PEER` | blackhole: nothing moves either way (TCP keeps retrying) |
//! | `resume PEER` | ends a stall |
//! | `delay PEER MS` | every read from PEER waits MS milliseconds (0: none) |
//! | `cut PEER` | drop: the connection is reset now (PEER may be redialled) |
//!
//! Each applied command is acknowledged on stdout with
//! `boutique: fault applied: LINE`; a line that is not understood gets
//! `boutique: fault refused: LINE (REASON)` and changes nothing.

use std::io::{BufRead, Write};
use std::time::Duration;

use runtime::transport::fault::FaultInjector;

/// Reads commands from stdin (on a thread of its own: reading stdin
/// blocks) and applies them on this node's runtime, until stdin closes.
/// Call from within the node's runtime.
pub fn spawn(faults: FaultInjector, node: String) {
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    actix_rt::spawn(async move {
        while let Some(line) = lines.recv().await {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let answer = match apply(&faults, line) {
                Ok(()) => {
                    tracing::warn!(node = %node, fault = line, "fault injected");
                    format!("boutique: fault applied: {line}")
                }
                Err(reason) => format!("boutique: fault refused: {line} ({reason})"),
            };
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{answer}")
                .and_then(|()| out.flush())
                .is_err()
            {
                break;
            }
        }
    });
}

/// Applies one command line.
fn apply(faults: &FaultInjector, line: &str) -> Result<(), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["stall", peer] => faults.stall(peer, true),
        ["resume", peer] => faults.stall(peer, false),
        ["cut", peer] => faults.cut(peer),
        ["delay", peer, ms] => {
            let ms: u64 = ms
                .parse()
                .map_err(|_| format!("{ms:?} is not a number of milliseconds"))?;
            faults.delay_reads(peer, Duration::from_millis(ms));
        }
        _ => {
            return Err(
                "expected `stall PEER`, `resume PEER`, `delay PEER MS` or `cut PEER`".to_owned(),
            );
        }
    }
    Ok(())
}
