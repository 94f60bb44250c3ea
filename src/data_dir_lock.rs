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
//!   do not stop each other: each is a short-lived writer like any other).
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
