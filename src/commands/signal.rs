//! Waiting for Ctrl-C or SIGTERM.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// Resolves when the process is asked to stop; says which signal asked.
///
/// The signals are taken over when this is called, not when the future is
/// first polled: from then on SIGINT and SIGTERM no longer end the process,
/// they resolve the future. Call it before starting anything that must be
/// stopped on a signal. Needs a tokio runtime.
pub fn stop_requested() -> impl Future<Output = &'static str> {
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => tokio::select! {
                _ = interrupt.recv() => "interrupt",
                _ = terminate.recv() => "terminate",
            },
            (Ok(mut interrupt), Err(e)) => {
                tracing::warn!(error = %e, "cannot watch for SIGTERM; only Ctrl-C will stop this process");
                interrupt.recv().await;
                "interrupt"
            }
            (Err(e), Ok(mut terminate)) => {
                tracing::warn!(error = %e, "cannot watch for Ctrl-C; only SIGTERM will stop this process");
                terminate.recv().await;
                "terminate"
            }
            (Err(e), Err(_)) => {
                tracing::warn!(error = %e, "cannot watch for Ctrl-C or SIGTERM; they end this process at once");
                std::future::pending().await
            }
        }
    }
}
