//! The `boutique` binary: parse the command line, set up logging, run the
//! command, turn the outcome into an exit code (see `exit.rs`).

/// `eprintln!`, but what a closed stderr cannot take is dropped (`2>&1 |
/// head`, once `head` has its line): `eprintln!` panics there, and the
/// exit code would be a panic's, not the one documented.
macro_rules! to_stderr {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cli;
mod commands;
mod data_dir_lock;
mod exit;
mod telemetry;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, DeployTarget, LogFormatArg};

fn main() -> ExitCode {
    // First, before anything opens a descriptor: a socket handed down by
    // `boutique up` (see `boutique::handoff`).
    let handed_admin = boutique::handoff::take_admin_listener();
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
    let default_level = match command {
        Command::Run { .. } | Command::Up { .. } => "info",
        Command::Plan | Command::Certs { .. } | Command::Deploy { .. } | Command::Load { .. } => {
            "warn"
        }
        // The outcome is printed; log lines would only repeat it.
        Command::Call { .. } => "error",
    };
    // A config that does not load is reported by the command itself.
    let config = runtime::config::load(&cli.config.source()).ok();
    let logging = config
        .as_ref()
        .map(|config| config.logging.clone())
        .unwrap_or_default();
    init_logging(default_level, cli.log_format, &logging);
    let secret_env = config.and_then(|config| config.cluster.secret_env);
    warn_of_mistyped_variables(secret_env.as_deref());
    let outcome = match &command {
        Command::Run {
            node,
            fault_control,
        } => commands::run::run(&cli.config, node.clone(), *fault_control, handed_admin),
        Command::Plan => commands::plan::plan(&cli.config),
        Command::Call {
            service,
            message,
            json,
        } => commands::call::call(&cli.config, service, message, json.as_deref()),
        Command::Up { give_up_after } => {
            commands::up::up(&cli.config, cli.log_format, give_up_after)
        }
        Command::Certs { dir, force } => commands::certs::certs(&cli.config, dir, *force),
        Command::Load {
            target,
            duration,
            rate,
            users,
            json,
        } => {
            let mode = match (rate, users) {
                (Some(rate), _) => commands::load::Mode::Rate(*rate),
                (None, users) => commands::load::Mode::Users(users.unwrap_or(1)),
            };
            commands::load::load(target, duration, mode, *json)
        }
        Command::Deploy {
            target:
                DeployTarget::Kube {
                    image,
                    namespace,
                    secret_env,
                },
        } => commands::kube::kube(&cli.config, image, namespace.as_deref(), secret_env),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            to_stderr!("error: {error:#}");
            exit::code_for(&error)
        }
    }
}

/// Says so of each variable that looks meant as a setting but is not read
/// as one, which would be ignored without a word: one underscore after
/// the prefix (`BOUTIQUE_RUNTIME__CALL_TIMEOUT_MS`), or single underscores
/// throughout (`BOUTIQUE_RUNTIME_CALL_TIMEOUT_MS`). (One underscore after
/// the section, `BOUTIQUE__RUNTIME_CALL_TIMEOUT_MS`, is read, as a key no
/// section has, and the config is refused.) `BOUTIQUE_SECRET` and the
/// like, which name no section, are not settings, and neither is the
/// variable the config reads the secret from (`secret_env`), whatever
/// its name.
fn warn_of_mistyped_variables(secret_env: Option<&str>) {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if secret_env.is_some_and(|secret| secret.eq_ignore_ascii_case(name)) {
            continue;
        }
        if let Some(meant) = setting_meant_by(name) {
            to_stderr!(
                "warning: {name} is not read: a setting's variable starts with BOUTIQUE__ \
                 (two underscores), and two more go between section and key, as {meant}"
            );
        }
    }
}

/// The sections of the config, as they start a setting's variable.
const SECTIONS: [&str; 8] = [
    "cluster",
    "runtime",
    "nodes",
    "modules",
    "access",
    "routing",
    "logging",
    "telemetry",
];

/// The setting's variable that `name` was likely meant as, if it starts
/// with `BOUTIQUE_` and one underscore (any case, as the config crate
/// matches the prefix), then `__` somewhere, or a section and `_`.
fn setting_meant_by(name: &str) -> Option<String> {
    let prefix = "BOUTIQUE_";
    let rest = name
        .get(..prefix.len())
        .filter(|start| start.eq_ignore_ascii_case(prefix))
        .and_then(|_| name.get(prefix.len()..))
        .filter(|rest| !rest.starts_with('_'))?;
    if rest.contains("__") {
        return Some(format!("BOUTIQUE__{rest}"));
    }
    let lower = rest.to_ascii_lowercase();
    SECTIONS.iter().find_map(|section| {
        lower
            .strip_prefix(section)
            .and_then(|after| after.strip_prefix('_'))
            .filter(|key| !key.is_empty())
            .map(|_| {
                let (section, key) = rest.split_at(section.len());
                let key = key.strip_prefix('_').unwrap_or(key);
                format!("BOUTIQUE__{section}__{key}")
            })
    })
}

/// Logs go to stderr. The level: `RUST_LOG`, else `[logging] level`, else
/// the command's default; the format: `--log-format`, else `[logging]
/// format`, else text.
fn init_logging(
    default_level: &str,
    format: Option<LogFormatArg>,
    config: &runtime::config::LoggingConfig,
) {
    let configured = config.level.as_deref().unwrap_or(default_level);
    let from_env =
        std::env::var("RUST_LOG")
            .ok()
            .and_then(|text| match EnvFilter::try_new(&text) {
                Ok(filter) => Some(filter),
                Err(error) => {
                    to_stderr!(
                        "warning: RUST_LOG={text:?} is not a log filter ({error}); ignoring it"
                    );
                    None
                }
            });
    let filter = from_env
        .map(Ok)
        .unwrap_or_else(|| EnvFilter::try_new(configured))
        .unwrap_or_else(|error| {
            to_stderr!("warning: [logging] level = {configured:?} is not a log filter ({error}); using {default_level:?}");
            EnvFilter::new(default_level)
        });
    let json = match format {
        Some(format) => format == LogFormatArg::Json,
        None => config.format == Some(runtime::config::LogFormat::Json),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A line the log cannot take is lost: its default, saying so with
        // `eprintln!`, panics in whichever thread logged when stderr is
        // closed.
        .log_internal_errors(false);
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
    // A panic is one log line, with the call's fields, and counted.
    runtime::panics::install(runtime::panics::DefaultOutput::Replace);
}
