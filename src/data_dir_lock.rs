//! Who uses a data directory: every node process holds a shared lock on
//! `DATA_DIR/.nodes.lock` while it runs, so that `boutique call`, before
//! it starts a module with state in-process (against a node that does not
//! listen), can tell that a node is running on the same files: it tries
//! the lock alone for a moment ([`node_running`]), and lets it go at once,
//! so that two calls do not stop each other.
//!
//! The in-process module would write the files behind the running one's
//! back (the cart keeps carts in memory, and would go on showing a cart
//! the other process emptied), so `call` refuses instead. Several nodes on
//! one machine (`boutique up`) share the lock; locks go with the process,
//! however it ends. `flock(2)`: advisory, on this machine only.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// A node's hold on a data directory, while this lives.
pub struct NodeLock {
    _file: File,
}

/// Takes the shared lock a running node holds (several nodes may).
pub fn hold_as_node(data_dir: &Path) -> io::Result<NodeLock> {
    let file = open(data_dir)?;
    // SAFETY: flock(2) on a file descriptor this function owns; no memory
    // is shared with the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH) } == 0 {
        Ok(NodeLock { _file: file })
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether a node runs on `data_dir` (holds its lock). Another `call`
/// testing at the same moment holds it for microseconds: a few tries
/// apart tell the two apart.
pub fn node_running(data_dir: &Path) -> io::Result<bool> {
    let file = open(data_dir)?;
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // SAFETY: as in `hold_as_node`.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            // Let go at once (closing the file would too).
            // SAFETY: as above.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            return Ok(false);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::WouldBlock {
            return Err(error);
        }
    }
    Ok(true)
}

fn open(data_dir: &Path) -> io::Result<File> {
    std::fs::create_dir_all(data_dir)?;
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join(".nodes.lock"))
}
