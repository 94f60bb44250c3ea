//! The `boutique` binary: parse the command line, set up logging, run the
//! command, turn the outcome into an exit code (see `exit.rs`).

mod cli;
mod commands;
mod exit;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { exit::USAGE } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let command = cli.command.unwrap_or(Command::Run {
        node: None,
        fault_control: false,
    });
    init_logging(match command {
        Command::Run { .. } | Command::Up => "info",
        Command::Plan | Command::Certs { .. } => "warn",
        // The outcome is printed; log lines would only repeat it.
        Command::Call { .. } => "error",
    });
    let outcome = match &command {
        Command::Run {
            node,
            fault_control,
        } => commands::run::run(&cli.config, node.clone(), *fault_control),
        Command::Plan => commands::plan::plan(&cli.config),
        Command::Call {
            service,
            message,
            json,
        } => commands::call::call(&cli.config, service, message, json.as_deref()),
        Command::Up => commands::up::up(&cli.config),
        Command::Certs { dir } => commands::certs::certs(&cli.config, dir),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit::code_for(&error)
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the default level.
fn init_logging(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
