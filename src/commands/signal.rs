//! Waiting for Ctrl-C or SIGTERM.

use tokio::signal::unix::{SignalKind, signal};

/// Resolves when the process is asked to stop; says which signal asked.
pub async fn stop_requested() -> &'static str {
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "interrupt",
            _ = terminate.recv() => "terminate",
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch for SIGTERM; only Ctrl-C will stop this process");
            let _ = tokio::signal::ctrl_c().await;
            "interrupt"
        }
    }
}
