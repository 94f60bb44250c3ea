//! `boutique call SERVICE MESSAGE [JSON]`: one message, from the command line.
//!
//! The reply's success value is printed as JSON on stdout (exit 0); the
//! service's domain error goes to stderr (exit 1); a failed call
//! (unreachable, refused, timed out) to stderr (exit 2).
//!
//! The call goes to the node that runs the service, as a client of the
//! deployment (it needs the cluster secret); it is refused if that node
//! listens on port 0 in a split deployment (an address known only once it
//! runs). If that node does not listen
//! (the default single-process config), there is no way in from outside: the
//! node is started inside this command instead (only the module called and
//! the modules it needs, on the same data directory), and the call runs
//! against that fresh instance. Not while a node runs on that data
//! directory, if a module started so would keep state there: it would
//! write the running node's files behind its back (see `data_dir_lock`).
//! Two calls at once are fine: each is a short-lived writer like any other;
//! a node that starts meanwhile waits for the call to end.

use std::process::ExitCode;

use runtime::Node;
use runtime::json::{JsonCallError, JsonReply};

use super::load_plan;
use crate::cli::ConfigArgs;
use crate::data_dir_lock::CallCheck;
use crate::exit::{CALL_ERROR, DOMAIN_ERROR, UsageError};

/// The first module of node `node` in `plan` that keeps state, if any.
fn keeps_state(
    plan: &runtime::Plan,
    node: &str,
    catalogue: &runtime::Catalogue,
) -> Option<&'static str> {
    let node = plan.nodes().iter().find(|n| n.name == node)?;
    node.modules
        .iter()
        .copied()
        .find(|module| plan.storage(catalogue, module) != runtime::Storage::Nothing)
}

/// Sends `message` (JSON, default `{}`) to `service` and reports the outcome.
pub fn call(
    args: &ConfigArgs,
    service: &str,
    message: &str,
    json: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let input: serde_json::Value = match json {
        None => serde_json::Value::Object(Default::default()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| UsageError(format!("the message is not valid JSON: {e}")))?,
    };
    let catalogue = boutique::catalogue();
    // The service, the message and its fields are checked first, so that
    // a mistyped call is told so (64) before any node is dialled or
    // started, or the config is even read.
    catalogue.check_json(service, message, &input)?;
    let plan = load_plan(args, &catalogue)?;
    // A replica on a fixed port, if any: the client dials whichever it
    // reaches; one on port 0 cannot be dialed.
    let hosts = plan.nodes_of(service);
    let host = hosts
        .iter()
        .find(|node| node.listen.is_some_and(|a| a.port() != 0))
        .or(hosts.first())
        .copied()
        .ok_or_else(|| JsonCallError::UnknownService {
            service: service.to_owned(),
            known: catalogue.names(),
        })?;
    super::on_system(async {
        // Held until the call ends, when modules with state run here.
        let mut _data_dir_lock = None;
        let node = if host.listen.is_some_and(|a| a.port() != 0) {
            Node::client(&plan, &catalogue).await?
        } else if plan.is_split() {
            // Started here, the module would be node `host` to the other
            // nodes (a new incarnation of it), and take the running node's
            // place at its peers.
            to_stderr!(
                "error: node '{0}' listens on port 0 (a free port it picks as it starts), so this \
                 command cannot know where to call its {service}; starting {service} here as node \
                 '{0}' would take the running node's place at its peers. Give the node a fixed \
                 port ([nodes.{0}] listen = \"127.0.0.1:7400\", or --set nodes.{0}.listen=ADDRESS \
                 with the address it runs on).",
                host.name
            );
            return Ok(ExitCode::from(CALL_ERROR));
        } else {
            let needed = plan.narrowed_to(&host.name, service);
            let data_dir = &plan.runtime.data_dir;
            let check = match keeps_state(&needed, &host.name, &catalogue) {
                Some(stateful) => {
                    let check = crate::data_dir_lock::hold_as_call(data_dir).map_err(|e| {
                        anyhow::anyhow!(
                            "cannot use data directory {} (runtime.data_dir) to run {stateful} \
                             here: {e}; give one this user may write: --set runtime.data_dir=PATH",
                            data_dir.display()
                        )
                    })?;
                    Some((stateful, check))
                }
                None => None,
            };
            if let Some((_, CallCheck::Clear(held))) = check {
                _data_dir_lock = Some(held);
            } else if let Some((stateful, CallCheck::NodeRunning)) = check {
                to_stderr!(
                    "error: a node is running on data directory {}, and node '{}' does not listen, \
                             so its {service} cannot be called from outside; starting {stateful} here would \
                             write its files behind the running node's back. Give the node a listen address \
                             and a secret ([nodes.{}] listen = \"127.0.0.1:7400\", [cluster] secret_env) to \
                             call it, or stop it first.",
                    data_dir.display(),
                    host.name,
                    host.name
                );
                return Ok(ExitCode::from(CALL_ERROR));
            }
            to_stderr!(
                "note: node '{}' does not listen, so this call runs against a fresh {service} module started here",
                host.name
            );
            Node::start(&needed, &host.name, &catalogue).await?
        };
        let reply = catalogue
            .call_json(node.registry(), service, message, input)?
            .await;
        match reply {
            Ok(JsonReply::Ok(text)) => {
                super::print(&format!("{text}\n"))?;
                Ok(ExitCode::SUCCESS)
            }
            Ok(JsonReply::DomainError {
                error,
                message: text,
            }) => {
                to_stderr!("{service} {message} failed: {text}");
                to_stderr!("{error}");
                Ok(ExitCode::from(DOMAIN_ERROR))
            }
            Err(JsonCallError::Call(error)) => {
                to_stderr!("error: {error}");
                Ok(ExitCode::from(CALL_ERROR))
            }
            Err(other) => Err(other.into()),
        }
    })
}
