//! Who uses a data directory: every node process holds a shared lock on
//! `DATA_DIR/.nodes.lock` while it runs, so that `boutique call`, before
//! it starts a module with state in-process (against a node that does not
//! listen), can tell that a node is running on the same files.
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

/// A lock on a data directory, held while this lives.
pub struct DataDirLock {
    _file: File,
}

/// How a lock was taken, or not.
pub enum Taken {
    /// Held.
    Held(DataDirLock),
    /// Another process holds it in a way that excludes this one.
    Busy,
}

/// Takes the shared lock a running node holds (several nodes may), waiting
/// while a `boutique call` holds it alone (for the length of one call).
pub fn shared(data_dir: &Path) -> io::Result<Taken> {
    take(data_dir, libc::LOCK_SH)
}

/// Takes the lock only if no node holds it; does not wait.
pub fn exclusive(data_dir: &Path) -> io::Result<Taken> {
    take(data_dir, libc::LOCK_EX | libc::LOCK_NB)
}

fn take(data_dir: &Path, mode: libc::c_int) -> io::Result<Taken> {
    std::fs::create_dir_all(data_dir)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join(".nodes.lock"))?;
    // SAFETY: flock(2) on a file descriptor this function owns; no memory
    // is shared with the call.
    let taken = unsafe { libc::flock(file.as_raw_fd(), mode) };
    if taken == 0 {
        return Ok(Taken::Held(DataDirLock { _file: file }));
    }
    let error = io::Error::last_os_error();
    if error.kind() == io::ErrorKind::WouldBlock {
        Ok(Taken::Busy)
    } else {
        Err(error)
    }
}
