//! `boutique call SERVICE MESSAGE [JSON]`: one message, from the command line.
//!
//! The reply's success value is printed as JSON on stdout (exit 0); the
//! service's domain error goes to stderr (exit 1); a failed call
//! (unreachable, refused, timed out) to stderr (exit 2).
//!
//! The call goes to the node that runs the service, as a client of the
//! deployment (it needs the cluster secret). If that node does not listen
//! (the default single-process config), there is no way in from outside: the
//! node is started inside this command instead (only the module called and
//! the modules it needs, on the same data directory), and the call runs
//! against that fresh instance.

use std::process::ExitCode;

use runtime::Node;
use runtime::json::{JsonCallError, JsonReply};

use super::load_plan;
use crate::cli::ConfigArgs;
use crate::exit::{CALL_ERROR, DOMAIN_ERROR, UsageError};

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
    let plan = load_plan(args, &catalogue)?;
    let host = plan
        .node_of(service)
        .ok_or_else(|| JsonCallError::UnknownService {
            service: service.to_owned(),
            known: catalogue.names(),
        })?;
    let system = actix_rt::System::new();
    system.block_on(async {
        let node = if host.listen.is_some_and(|a| a.port() != 0) {
            Node::client(&plan, &catalogue).await?
        } else {
            eprintln!(
                "note: node '{}' does not listen, so this call runs against a fresh {service} module started here",
                host.name
            );
            let needed = plan.narrowed_to(&host.name, service);
            Node::start(&needed, &host.name, &catalogue).await?
        };
        let reply = catalogue.call_json(node.registry(), service, message, input)?.await;
        match reply {
            Ok(JsonReply::Ok(text)) => {
                println!("{text}");
                Ok(ExitCode::SUCCESS)
            }
            Ok(JsonReply::DomainError { error, message: text }) => {
                eprintln!("{service} {message} failed: {text}");
                eprintln!("{error}");
                Ok(ExitCode::from(DOMAIN_ERROR))
            }
            Err(JsonCallError::Call(error)) => {
                eprintln!("error: {error}");
                Ok(ExitCode::from(CALL_ERROR))
            }
            Err(other) => Err(other.into()),
        }
    })
}
