//! `boutique plan`: check the config and show the deployment.

use std::fmt::Write;
use std::process::ExitCode;

use super::load_plan;
use crate::cli::ConfigArgs;

/// Prints the nodes, their addresses and modules, the calls that cross the
/// network, and what the config may get wrong without being invalid;
/// fails, naming every problem, on a bad config.
pub fn plan(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let catalogue = boutique::catalogue();
    let plan = load_plan(args, &catalogue)?;
    // Written whole at the end: a reader that stops early (`| head`) is
    // not an error.
    let mut out = String::new();
    let source = match args.file() {
        Some(path) => path.display().to_string(),
        None => "built-in default".to_owned(),
    };
    writeln!(out, "config: {source}")?;
    // What overrides the file: which layer won is otherwise a guess.
    let variables = std::env::vars_os()
        .filter(|(name, _)| {
            name.to_str()
                .is_some_and(runtime::config::is_setting_variable)
        })
        .count();
    if variables > 0 || !args.overrides.is_empty() {
        writeln!(
            out,
            "overridden by: {variables} BOUTIQUE__ variable(s), then {} --set (the values below are the result)",
            args.overrides.len()
        )?;
    }
    writeln!(out, "cluster: {}", plan.cluster)?;
    let runtime = &plan.runtime;
    writeln!(out, "data directory: {}", runtime.data_dir.display())?;
    writeln!(
        out,
        "runtime: calls time out after {} ms; heartbeat every {} ms, a peer silent {} ms is down; \
         at most {} calls in flight per peer; frames up to {} bytes; shutdown grace {} ms{}",
        runtime.call_timeout_ms,
        runtime.heartbeat_interval_ms,
        runtime.failure_timeout_ms,
        runtime.max_in_flight_per_peer,
        runtime.max_frame_bytes,
        runtime.shutdown_grace_ms,
        if runtime.serialize_local_calls {
            "; local calls go through the codec"
        } else {
            ""
        }
    )?;
    if plan.nodes().iter().any(|n| n.listen.is_some()) {
        let var = plan.secret_env.as_deref().unwrap_or("?");
        writeln!(out, "secret: read from ${var} on every node")?;
    }
    writeln!(out, "API fingerprint: {}", catalogue.fingerprint()?)?;
    writeln!(out)?;
    let width = plan.nodes().iter().map(|n| n.name.len()).max().unwrap_or(4);
    writeln!(out, "nodes:")?;
    for node in plan.nodes() {
        let listen = node
            .listen
            .map(|a| a.to_string())
            .unwrap_or_else(|| "(does not listen)".to_owned());
        writeln!(
            out,
            "  {:width$}  {listen:21}  {}",
            node.name,
            node.modules.join(", ")
        )?;
        // The node's other addresses, where it has them.
        let pad = " ".repeat(width);
        if let Some(address) = &node.address {
            writeln!(out, "  {pad}  dialled at {address}")?;
        }
        if let Some(admin) = node.admin {
            writeln!(out, "  {pad}  admin endpoints at http://{admin}")?;
        }
        for module in &node.modules {
            for addr in plan.listen_addresses(&catalogue, module) {
                writeln!(out, "  {pad}  {module} serves http://{addr}")?;
            }
        }
    }
    writeln!(out)?;
    let crossings = plan.crossings();
    if crossings.is_empty() {
        writeln!(
            out,
            "module-to-module calls crossing the network: none (every call is local)"
        )?;
    } else {
        writeln!(out, "module-to-module calls crossing the network:")?;
        for c in crossings {
            writeln!(
                out,
                "  {} ({}) -> {} ({})",
                c.caller, c.caller_node, c.callee, c.callee_node
            )?;
        }
    }
    // Said by `plan` alone, not by every `run`: a pod under `deploy kube`
    // serves its admin endpoints beyond loopback on purpose, for its
    // probes, behind the manifests' NetworkPolicy.
    let exposed = plan.nodes().iter().filter_map(|node| {
        let addr = node.admin.filter(|addr| !addr.ip().is_loopback())?;
        Some(format!(
            "node '{}': admin = '{addr}' is not a loopback address: its metrics, topology \
             and dashboard answer anyone who can reach it, unauthenticated; keep it on \
             127.0.0.1, or behind a firewall or an authenticating proxy",
            node.name
        ))
    });
    let warnings: Vec<String> = plan.warnings().iter().cloned().chain(exposed).collect();
    if !warnings.is_empty() {
        writeln!(out)?;
        writeln!(out, "warnings:")?;
        for warning in &warnings {
            writeln!(out, "  {warning}")?;
        }
    }
    super::print(&out)?;
    Ok(ExitCode::SUCCESS)
}
