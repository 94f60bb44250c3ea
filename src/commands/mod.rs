//! The commands of the binary, one file each.

mod admin;
pub mod call;
pub mod certs;
mod fault_control;
pub mod kube;
pub mod load;
pub mod plan;
pub mod run;
pub mod up;

mod signal;

use runtime::Catalogue;
use runtime::config::{self, Plan};

use crate::cli::ConfigArgs;

/// Loads the config from its layers and checks it against `catalogue`.
fn load_plan(args: &ConfigArgs, catalogue: &Catalogue) -> anyhow::Result<Plan> {
    let config = config::load(&args.source())?;
    Ok(Plan::new(config, catalogue)?)
}

/// Writes `text` to stdout; a reader that stopped reading (`| head`) is
/// not an error (`println!` would panic).
pub fn print(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
