//! `boutique plan`: check the config and show the deployment.

use std::process::ExitCode;

use super::load_plan;
use crate::cli::ConfigArgs;

/// Prints the nodes, their addresses and modules, the calls that cross the
/// network, and what the config may get wrong without being invalid;
/// fails, naming every problem, on a bad config.
pub fn plan(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let catalogue = boutique::catalogue();
    let plan = load_plan(args, &catalogue)?;
    let source = match args.file() {
        Some(path) => path.display().to_string(),
        None => "built-in default".to_owned(),
    };
    println!("config: {source}");
    println!("cluster: {}", plan.cluster);
    if plan.nodes().iter().any(|n| n.listen.is_some()) {
        let var = plan.secret_env.as_deref().unwrap_or("?");
        println!("secret: read from ${var} on every node");
    }
    println!("API fingerprint: {}", catalogue.fingerprint()?);
    println!();
    let width = plan.nodes().iter().map(|n| n.name.len()).max().unwrap_or(4);
    println!("nodes:");
    for node in plan.nodes() {
        let listen = node
            .listen
            .map(|a| a.to_string())
            .unwrap_or_else(|| "(does not listen)".to_owned());
        println!(
            "  {:width$}  {listen:21}  {}",
            node.name,
            node.modules.join(", ")
        );
    }
    println!();
    let crossings = plan.crossings();
    if crossings.is_empty() {
        println!("module-to-module calls crossing the network: none (every call is local)");
    } else {
        println!("module-to-module calls crossing the network:");
        for c in crossings {
            println!(
                "  {} ({}) -> {} ({})",
                c.caller, c.caller_node, c.callee, c.callee_node
            );
        }
    }
    if !plan.warnings().is_empty() {
        println!();
        println!("warnings:");
        for warning in plan.warnings() {
            println!("  {warning}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
