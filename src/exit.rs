//! Exit codes, and how errors map to them. Scripts can rely on these:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | `call`: the service answered with its domain error |
//! | 2 | `call`: the call failed (not delivered, outcome unknown, rejected, timed out) |
//! | 64 | bad command line or input (unknown service or message, invalid JSON) |
//! | 70 | the node failed at run time (could not listen, a module did not start); `up`: every node has exited, or one had to be killed, not having stopped within its grace; `load`: the shop does not answer |
//! | 78 | the config is invalid, a module's section included (or the environment: a bad `BOUTIQUE_ADMIN_LISTENER_FD`) |
//! | 130 | `run`, `up`: asked to stop a second time while stopping, so stopped at once (nodes killed); `load`: stopped by Ctrl-C (the report so far printed) |

use std::process::ExitCode;

use runtime::config::ConfigError;
use runtime::json::JsonCallError;
use runtime::node::NodeError;
use runtime::transport::handshake::SecretError;
use runtime::transport::tls::TlsError;

use boutique::handoff::HandoffError;

/// The service answered with its domain error.
pub const DOMAIN_ERROR: u8 = 1;
/// The call itself failed.
pub const CALL_ERROR: u8 = 2;
/// Bad usage or input.
pub const USAGE: u8 = 64;
/// A failure at run time.
pub const SOFTWARE: u8 = 70;
/// An invalid config.
pub const CONFIG: u8 = 78;
/// Stopped at once, on a second stop signal (128 + SIGINT, as a shell
/// reports a process Ctrl-C ended).
pub const INTERRUPTED: u8 = 130;

/// The exit code for an error that ended a command.
pub fn code_for(error: &anyhow::Error) -> ExitCode {
    let code = if error.downcast_ref::<ConfigError>().is_some()
        || error.downcast_ref::<SecretError>().is_some()
        || error.downcast_ref::<HandoffError>().is_some()
        // `certs` for a config whose node names cannot be certificates'.
        || matches!(error.downcast_ref::<TlsError>(), Some(TlsError::NodeName(_)))
    {
        CONFIG
    } else if matches!(
        error.downcast_ref::<TlsError>(),
        Some(TlsError::CaExists(_))
    ) {
        // `certs` into a directory with a CA's certificate but not its
        // key, without `--force`.
        USAGE
    } else if let Some(node) = error.downcast_ref::<NodeError>() {
        match node {
            NodeError::Config(_)
            | NodeError::Secret(_)
            // The files [cluster.tls] names: missing or unusable until the
            // config, or the files, change.
            | NodeError::Tls(_)
            // A module's config section, checked as it starts: as wrong
            // on the next start (`up` does not start it again).
            | NodeError::Start {
                error: runtime::StartError::Config(_),
                ..
            } => CONFIG,
            _ => SOFTWARE,
        }
    } else if let Some(call) = error.downcast_ref::<JsonCallError>() {
        match call {
            JsonCallError::Call(_) => CALL_ERROR,
            _ => USAGE,
        }
    } else if error.downcast_ref::<UsageError>().is_some() {
        USAGE
    } else {
        SOFTWARE
    };
    ExitCode::from(code)
}

/// Input on the command line that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
