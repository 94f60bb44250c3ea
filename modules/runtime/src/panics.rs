//! Panics, logged and counted.
//!
//! A panic in a handler never takes a node down, but where it lands
//! decides what happens next:
//!
//! - in a synchronous handler, or in an actor future (`ResponseActFuture`,
//!   which works on the actor's state): the actor dies with it, and the
//!   supervisor starts the module again, fresh (see `supervise.rs`);
//! - in a handler's plain future (`ResponseFuture`, which actix runs as a
//!   task of its own and which holds no `&mut` to the actor): that task
//!   alone ends. The actor and its state are untouched, so it is not
//!   restarted; the caller gets *outcome unknown*, saying the handler
//!   panicked.
//!
//! Either way Rust's panic hook runs first, on the panicking thread, in
//! whatever span is entered there (the call's, for a handler that runs in
//! `call.span()`, as the shop's do). [`install`] makes that hook write a
//! `tracing` error line (the span gives it the module, the message and the
//! call id) and count the panic, for `boutique_panics` on `/metrics` and
//! [`count`]. Without it, Rust's default hook prints a few lines to stderr
//! that no log collector parses, and nothing counts them. Where the log's
//! filter would drop that line (`RUST_LOG=off`, or a filter for other
//! targets), Rust's default output is written instead: a panic is never
//! silent.

use std::panic::PanicHookInfo;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// Panics in this process since it started, once [`install`]ed.
static PANICS: AtomicU64 = AtomicU64::new(0);

/// What the hook does besides logging and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultOutput {
    /// Nothing: the log line is the report (the binary).
    Replace,
    /// Rust's default output as well (tests, whose harness shows it for a
    /// failed assertion).
    Keep,
}

/// Makes every panic in this process a `tracing` error line, counted. The
/// first call installs the hook; later ones do nothing.
pub fn install(default_output: DefaultOutput) {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::Relaxed);
            let logged = tracing::enabled!(tracing::Level::ERROR);
            if logged {
                log(info);
            }
            if default_output == DefaultOutput::Keep || !logged {
                previous(info);
            }
        }));
    });
}

/// Panics in this process since [`install`] (0 without it). One count for
/// the process: nodes that share a process (tests) share it.
pub fn count() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

fn log(info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic with a payload that is not text)");
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("unnamed");
    // Captured only when RUST_BACKTRACE asks for it, as Rust's hook does.
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        tracing::error!(%location, thread, %backtrace, "panicked: {message}");
    } else {
        tracing::error!(%location, thread, "panicked: {message}");
    }
}
