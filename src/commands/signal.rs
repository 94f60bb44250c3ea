//! Waiting for the signals that ask this process to stop: Ctrl-C (SIGINT),
//! SIGTERM, and SIGHUP (the terminal that started it went away).
//!
//! The first asks for a graceful stop; `run` and `up` stop at once on a
//! second, as a user who presses Ctrl-C again means.
//!
//! SIGHUP, if this process was started with it ignored, stays ignored:
//! `nohup boutique up &` must outlive its terminal. SIGINT and SIGTERM are
//! always taken over: a shell without job control starts a background
//! command (`boutique run &` in a script) with SIGINT ignored, and the
//! script's `kill -INT` is still meant to stop it.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The stop signals, taken over from the process's default (which ends it
/// at once).
pub struct StopSignals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
    hangup: Option<Signal>,
}

impl StopSignals {
    /// Takes the signals over now, not when first awaited: from here on
    /// they no longer end the process, [`StopSignals::next`] returns them.
    /// Call it before starting anything that must be stopped on a signal.
    /// Needs a tokio runtime.
    pub fn watch() -> StopSignals {
        let take = |kind: SignalKind, name: &str| {
            if kind == SignalKind::hangup() && is_ignored(kind.as_raw_value()) {
                tracing::debug!(
                    signal = name,
                    "this signal was ignored when the process started; it stays ignored"
                );
                return None;
            }
            match signal(kind) {
                Ok(signal) => Some(signal),
                Err(error) => {
                    tracing::warn!(%error, signal = name, "cannot watch for this signal; it ends this process at once");
                    None
                }
            }
        };
        StopSignals {
            interrupt: take(SignalKind::interrupt(), "SIGINT"),
            terminate: take(SignalKind::terminate(), "SIGTERM"),
            hangup: take(SignalKind::hangup(), "SIGHUP"),
        }
    }

    /// Resolves at the next stop signal, with its name. Cancel-safe: a
    /// signal that comes while nobody waits is kept for the next call.
    pub async fn next(&mut self) -> &'static str {
        async fn received(signal: &mut Option<Signal>) -> Option<()> {
            match signal {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            Some(()) = received(&mut self.interrupt) => "interrupt",
            Some(()) = received(&mut self.terminate) => "terminate",
            Some(()) = received(&mut self.hangup) => "hangup",
            else => std::future::pending().await,
        }
    }
}

/// True if `signal` is ignored (`SIG_IGN`), as `nohup` leaves SIGHUP.
fn is_ignored(signal: libc::c_int) -> bool {
    // SAFETY: sigaction(2) with no new action only reads the current one
    // into `current`, a zeroed struct of the right type.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// Ctrl-Z (SIGTSTP), taken over unless it was ignored when the process
/// started (a process started in the background has no terminal to stop
/// it). `None` if it cannot be watched: it then stops this process alone.
pub fn suspend_signal() -> Option<Signal> {
    let kind = SignalKind::from_raw(libc::SIGTSTP);
    if is_ignored(kind.as_raw_value()) {
        return None;
    }
    signal(kind)
        .inspect_err(|error| {
            tracing::warn!(%error, "cannot watch for Ctrl-Z; it stops this process alone");
        })
        .ok()
}

/// The next Ctrl-Z, if [`suspend_signal`] watches for it; never otherwise.
pub async fn next_suspend(suspend: &mut Option<Signal>) -> Option<()> {
    match suspend {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}
