//! `boutique-plot RESULTS OUT`: draws the charts of docs/performance.md
//! (PNG) from the `boutique load --json` reports in RESULTS, into OUT.
//!
//! ```sh
//! benches/monolith-vs-split.sh target/perf         # the runs
//! cargo run -p boutique-plot -- target/perf docs/perf
//! ```
//!
//! See `results` for the file names it reads and `charts` for what it draws.

mod charts;
mod results;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Draws the load results' charts.
#[derive(Parser)]
#[command(name = "boutique-plot")]
struct Args {
    /// The directory of `boutique load --json` reports
    /// (DEPLOYMENT-users-N.json, DEPLOYMENT-rate-R.json).
    results: PathBuf,
    /// Where the PNG files go (made if missing).
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let drawn = results::Results::read(&args.results)
        .and_then(|results| charts::draw_all(&results, &args.out));
    match drawn {
        Ok(files) => {
            for file in files {
                println!("{}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("boutique-plot: {error:#}");
            ExitCode::FAILURE
        }
    }
}
