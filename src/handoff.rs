//! A listening socket handed from `boutique up` to a node it starts.
//!
//! `up` chooses each node's admin port itself, so that every node can be
//! told every admin address before any starts. Choosing a port by binding
//! port 0 and letting it go does not reserve it: the next bind of port 0 in
//! any process (the node's own listener, say) may be handed the same port,
//! and the node then fails to serve its admin endpoints. So `up` keeps the
//! socket it bound, listening, and hands it to the child: the descriptor
//! stays open across `exec` and its number is in [`ADMIN_FD_ENV`]. The node
//! serves its admin endpoints on that socket instead of binding. A node
//! started again after a crash gets the same socket, so its admin address
//! never changes, and a request that arrives while it is down waits in the
//! socket's queue instead of being refused.
//!
//! The variable is for `up`'s children only; set by hand to anything but
//! an inherited listening socket, the node refuses to start, saying so.

use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

/// The environment variable that carries the descriptor's number.
pub const ADMIN_FD_ENV: &str = "BOUTIQUE_ADMIN_LISTENER_FD";

/// Why the handed socket cannot be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "{ADMIN_FD_ENV}={value}: {why} (`boutique up` sets it for the nodes it starts; unset it to let the node bind its admin address itself)"
)]
pub struct HandoffError {
    value: String,
    why: String,
}

/// Takes ownership of the admin socket this process was handed, if any.
///
/// Call it first thing in `main`, before anything opens a descriptor:
/// only then is a descriptor this process did not open its own to take.
pub fn take_admin_listener() -> Result<Option<TcpListener>, HandoffError> {
    let Some(value) = std::env::var_os(ADMIN_FD_ENV) else {
        return Ok(None);
    };
    let value = value.to_string_lossy().into_owned();
    let fail = |why: &str| HandoffError {
        value: value.clone(),
        why: why.to_owned(),
    };
    let fd: RawFd = value.parse().map_err(|_| fail("not a descriptor number"))?;
    if fd <= 2 {
        return Err(fail("standard input, output or error, not a socket"));
    }
    if !is_listening_socket(fd) {
        return Err(fail("not an open listening socket"));
    }
    // SAFETY: `fd` is open and a listening socket (checked above), and
    // nothing in this process owns it: it was inherited across `exec`, and
    // this runs before the process opens descriptors of its own.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    // Not passed on to whatever this process starts in turn.
    // SAFETY: F_SETFD on a descriptor this process now owns.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(Some(listener))
}

/// True if `fd` is an open socket that listens.
fn is_listening_socket(fd: RawFd) -> bool {
    let mut listening: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `listening`; on a
    // descriptor that is not an open socket it fails and writes nothing.
    let status = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut listening as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    status == 0 && listening != 0
}

/// Makes `command` hand `listener` to the child it starts (and to no other).
pub fn hand_to(command: &mut tokio::process::Command, listener: &TcpListener) {
    let fd = listener.as_raw_fd();
    command.env(ADMIN_FD_ENV, fd.to_string());
    // SAFETY: the closure runs in the child between fork and exec, and only
    // calls fcntl, which is async-signal-safe. Clearing close-on-exec there
    // changes the child's descriptor table, not this process's.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_listening_socket_is_taken() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(is_listening_socket(listener.as_raw_fd()));
        let connected = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(!is_listening_socket(connected.as_raw_fd()));
        let file = std::fs::File::open("Cargo.toml").unwrap();
        assert!(!is_listening_socket(file.as_raw_fd()));
        assert!(!is_listening_socket(-1));
    }
}
