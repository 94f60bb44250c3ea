//! `boutique run`: start one node and serve until Ctrl-C or SIGTERM, then
//! shut down gracefully: new calls are refused, peers are told, calls in
//! flight get `[runtime] shutdown_grace_ms` to finish, and the exit code is 0.
//!
//! The first lines on stdout say what runs and where it listens; scripts and
//! tests wait for `listening on ADDR` (or `running`, for a node that does not
//! listen) to know the node is ready. A node that runs the frontend also
//! prints `shop open at URL`; one with an admin address, `admin on URL` and
//! `dashboard at URL`.

use std::fmt::Write;
use std::process::ExitCode;
use std::sync::Arc;

use frontend::api::{Frontend, GetStatus};
use runtime::{Node, Service};

use super::{load_plan, signal};
use crate::cli::ConfigArgs;
use crate::exit::UsageError;
use boutique::handoff::HandoffError;

/// The node `--node` names, or the config's only node; a name the config
/// does not have, or none where it has several, is a usage error (64).
fn node_to_run(plan: &runtime::Plan, node: Option<String>) -> Result<String, UsageError> {
    let names = || {
        plan.nodes()
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (node, plan.nodes()) {
        (Some(name), nodes) if nodes.iter().any(|n| n.name == name) => Ok(name),
        (Some(name), _) => Err(UsageError(format!(
            "--node {name}: this config has no node '{name}'; its nodes are: {}",
            names()
        ))),
        (None, [only]) => Ok(only.name.clone()),
        (None, nodes) => Err(UsageError(format!(
            "this config has {} nodes ({}); choose one: boutique run --node NAME",
            nodes.len(),
            names()
        ))),
    }
}

/// Runs node `node` (or the config's only node) until asked to stop; with
/// `fault_control`, takes fault-injection commands on stdin (tests only).
///
/// `handed_admin` is the admin socket `boutique up` handed this process, as
/// `main` took it (see `handoff`).
pub fn run(
    args: &ConfigArgs,
    node: Option<String>,
    fault_control: bool,
    handed_admin: Result<Option<std::net::TcpListener>, HandoffError>,
) -> anyhow::Result<ExitCode> {
    let handed_admin = handed_admin?;
    let catalogue = boutique::catalogue();
    let plan = load_plan(args, &catalogue)?;
    let name = node_to_run(&plan, node)?;
    for warning in plan.warnings() {
        tracing::warn!(node = %name, "{warning}");
    }
    // Held until the process ends: `boutique call` will not run a module
    // with state on these files beside this node (see `data_dir_lock`).
    let _data_dir_lock = match crate::data_dir_lock::hold_as_node(&plan.runtime.data_dir) {
        Ok(held) => Some(held),
        Err(error) => {
            tracing::warn!(node = %name, %error, data_dir = %plan.runtime.data_dir.display(), "cannot lock the data directory; boutique call will not know this node uses it");
            None
        }
    };
    let telemetry_config = runtime::config::load(&args.source())?.telemetry;
    super::on_system(async {
        // The stop signals are taken over before anything starts: one
        // that comes while the node starts, or just after it says it is
        // ready, stops it gracefully once it is up, not at once; a second
        // one while it starts (a module's start waiting on a database's
        // lock, say) stops it at once, as it would once up.
        let mut stop = signal::StopSignals::watch();
        let telemetry = match &telemetry_config.otlp_endpoint {
            Some(endpoint) => Some(crate::telemetry::start(endpoint, &name)?),
            None => None,
        };
        let starting = Node::start(&plan, &name, &catalogue);
        tokio::pin!(starting);
        let mut asked_to_stop: Option<&'static str> = None;
        let node = loop {
            tokio::select! {
                started = &mut starting => break Arc::new(started?),
                why = stop.next() => {
                    if asked_to_stop.is_some() {
                        tracing::warn!(node = %name, signal = why, "asked again while starting: stopped at once");
                        return Ok(ExitCode::from(crate::exit::INTERRUPTED));
                    }
                    tracing::info!(node = %name, signal = why, "asked to stop while starting: stopping once started (a second signal stops it at once)");
                    asked_to_stop = Some(why);
                }
            }
        };
        // Bound before the node says it listens (which `boutique up` takes
        // as ready): a node that cannot serve its admin endpoints fails
        // before it says anything.
        let admin = match node.admin_addr() {
            Some(addr) => Some(super::admin::serve(
                Arc::clone(&node),
                &plan,
                addr,
                handed_admin,
            )?),
            None => None,
        };
        // Written as soon as known (`up` starts the next node once it
        // reads where this one listens); a reader that stopped reading
        // (`| head -1`) does not stop the node.
        let mut out = String::new();
        writeln!(
            out,
            "boutique: node '{}' running {}",
            node.name(),
            node.modules().join(", ")
        )?;
        match node.local_addr() {
            Some(addr) => writeln!(out, "boutique: node '{}' listening on {addr}", node.name())?,
            None => writeln!(
                out,
                "boutique: every module runs in this process; Ctrl-C stops it"
            )?,
        }
        let admin = match admin {
            Some((bound, handle)) => {
                writeln!(
                    out,
                    "boutique: node '{}' admin on http://{bound}",
                    node.name()
                )?;
                writeln!(out, "boutique: dashboard at http://{bound}/")?;
                Some(handle)
            }
            None => None,
        };
        super::print(&out)?;
        if let Some(url) = shop_url(&node).await {
            super::print(&format!("boutique: shop open at {url}\n"))?;
        }
        if fault_control {
            match node.faults() {
                Some(faults) => super::fault_control::spawn(faults, node.name().to_owned()),
                None => tracing::warn!(
                    node = node.name(),
                    "--fault-control ignored: this node has no connections to fault"
                ),
            }
        }
        let why = match asked_to_stop {
            Some(why) => why,
            None => stop.next().await,
        };
        let grace = std::time::Duration::from_millis(plan.runtime.shutdown_grace_ms);
        tracing::info!(
            node = node.name(),
            signal = why,
            grace_ms = plan.runtime.shutdown_grace_ms,
            "stopping (a second signal stops it at once)"
        );
        let stopping = async {
            let unfinished = node.shutdown_gracefully(grace).await;
            if let Some(admin) = admin {
                admin.stop(false).await;
            }
            if let Some(telemetry) = telemetry {
                telemetry.flush(std::time::Duration::from_secs(2)).await;
            }
            unfinished
        };
        tokio::select! {
            unfinished = stopping => {
                tracing::info!(node = node.name(), unfinished, "stopped");
                Ok(ExitCode::SUCCESS)
            }
            why = stop.next() => {
                // The calls still running end with the process.
                tracing::warn!(node = node.name(), signal = why, "asked again: stopped at once");
                Ok(ExitCode::from(crate::exit::INTERRUPTED))
            }
        }
    })
}

/// The shop's URL, if the frontend runs on this node.
async fn shop_url(node: &Node) -> Option<String> {
    if !node.modules().contains(&Frontend::NAME) {
        return None;
    }
    match node.service::<Frontend>().ok()?.call(GetStatus {}).await {
        Ok(Ok(status)) => Some(status.url),
        other => {
            tracing::warn!(result = ?other, "the frontend did not say where it listens");
            None
        }
    }
}
