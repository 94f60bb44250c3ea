//! Who uses a data directory, so that `boutique call` never runs a module
//! with state in-process (against a node that does not listen) beside a
//! node on the same files: the module would write them behind the node's
//! back (the cart keeps carts in memory, and would go on showing a cart
//! the call emptied).
//!
//! Two `flock(2)` files in the directory:
//!
//! - `.nodes.lock`: every node holds it shared while it runs (several
//!   nodes on one machine, as under `boutique up`, may);
//! - `.calls.lock`: every such call holds it shared while it runs (calls
//!   do not stop each other: each is a short-lived writer like any other);
//! - `.probe.lock`: held alone by a call while it looks at `.nodes.lock`,
//!   so that two calls looking at once do not take each other for a node.
//!
//! A call takes `.calls.lock`, then refuses if it cannot take
//! `.nodes.lock` alone for a moment (a node holds it). A node takes
//! `.nodes.lock`, then waits until it can take `.calls.lock` alone (no
//! call runs), and lets that go. Whichever comes second sees the first.
//! Locks go with the process, however it ends; they are advisory, and on
//! this machine only.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// A hold on a data directory, while this lives.
pub struct Held {
    _file: File,
}

/// What a call found.
pub enum CallCheck {
    /// No node runs on the directory; none will start until this is
    /// dropped.
    Clear(Held),
    /// A node runs on it.
    NodeRunning,
}

/// Marks this process as a node on `data_dir`, once no call runs there.
pub fn hold_as_node(data_dir: &Path) -> io::Result<Held> {
    let node = open(data_dir, ".nodes.lock")?;
    flock(&node, libc::LOCK_SH)?;
    // Wait for calls already running (each lasts one call).
    let calls = open(data_dir, ".calls.lock")?;
    match flock(&calls, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            tracing::info!(
                data_dir = %data_dir.display(),
                "waiting for a boutique call running on this data directory to finish"
            );
            flock(&calls, libc::LOCK_EX)?;
        }
        Err(e) => return Err(e),
    }
    drop(calls);
    Ok(Held { _file: node })
}

/// Marks this process as a call on `data_dir`, unless a node runs there.
pub fn hold_as_call(data_dir: &Path) -> io::Result<CallCheck> {
    let calls = open(data_dir, ".calls.lock")?;
    flock(&calls, libc::LOCK_SH)?;
    // One call looks at a time (for a moment each): another's look would
    // hold `.nodes.lock` alone, and be taken for a node.
    let probe = open(data_dir, ".probe.lock")?;
    flock(&probe, libc::LOCK_EX)?;
    let nodes = open(data_dir, ".nodes.lock")?;
    match flock(&nodes, libc::LOCK_EX | libc::LOCK_NB) {
        // No node; let go at once (closing the file would too), so that
        // other calls may look as well.
        Ok(()) => {
            drop(nodes);
            Ok(CallCheck::Clear(Held { _file: calls }))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(CallCheck::NodeRunning),
        Err(e) => Err(e),
    }
}

fn open(data_dir: &Path, name: &str) -> io::Result<File> {
    // For this user alone: the modules' databases go in it.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(data_dir)?;
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join(name))
}

fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    // SAFETY: flock(2) on a file descriptor `file` owns; no memory is
    // shared with the call.
    if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use storage::testing::TempDir;

    #[test]
    fn calls_looking_at_once_do_not_take_each_other_for_a_node() {
        let temp = TempDir::new("lock-calls");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let dir = temp.path().to_path_buf();
                std::thread::spawn(move || {
                    (0..2000)
                        .filter(|_| matches!(hold_as_call(&dir).unwrap(), CallCheck::NodeRunning))
                        .count()
                })
            })
            .collect();
        let mistaken: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(mistaken, 0, "calls took each other for a node");
    }

    #[test]
    fn a_call_beside_a_node_is_refused_and_one_after_it_is_not() {
        let temp = TempDir::new("lock-node");
        let dir = temp.path();
        let node = hold_as_node(dir).unwrap();
        assert!(matches!(hold_as_call(dir).unwrap(), CallCheck::NodeRunning));
        drop(node);
        assert!(matches!(hold_as_call(dir).unwrap(), CallCheck::Clear(_)));
    }
}
