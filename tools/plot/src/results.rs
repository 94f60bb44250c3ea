//! The load results a chart is drawn from: the JSON reports that
//! `boutique load --json` writes, one file per run, named
//! `DEPLOYMENT-users-N.json` (N shoppers, no think time) or
//! `DEPLOYMENT-rate-R.json` (R tasks per second on schedule), as
//! benches/monolith-vs-split.sh leaves them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

/// One run of `boutique load`, as the charts need it.
#[derive(Debug, Clone)]
pub struct Run {
    /// HTTP requests per second.
    pub requests_per_second: f64,
    /// Median latency of an HTTP request, in ms.
    pub p50_ms: f64,
    /// 99th percentile latency of an HTTP request, in ms.
    pub p99_ms: f64,
    /// `(percentile, ms)` points of the HTTP requests' latency distribution.
    pub distribution: Vec<(f64, f64)>,
}

/// Every run found, by deployment (`monolith`, `split`, ...).
#[derive(Debug, Default)]
pub struct Results {
    /// Closed-loop runs by number of users.
    pub by_users: BTreeMap<String, BTreeMap<u32, Run>>,
    /// Open-loop runs by rate (tasks per second).
    pub by_rate: BTreeMap<String, Vec<(f64, Run)>>,
}

impl Results {
    /// Reads every `*-users-N.json` and `*-rate-R.json` in `dir`; other
    /// files are left alone. An error names the file it could not read.
    pub fn read(dir: &Path) -> anyhow::Result<Results> {
        let mut results = Results::default();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list the results in {}", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot list the results in {}", dir.display()))?
                .path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some((deployment, kind, amount)) = parse_name(name) else {
                continue;
            };
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let report: Value = serde_json::from_str(&text).with_context(|| {
                format!("{} is not a `boutique load --json` report", path.display())
            })?;
            let run = Run::from_report(&report)
                .with_context(|| format!("{} lacks a figure the charts need", path.display()))?;
            match kind {
                Kind::Users => {
                    // A whole number of users, or not a run of this kind.
                    let Some(users) = (amount.fract() == 0.0 && amount >= 0.0)
                        .then(|| u32::try_from(amount as u64).ok())
                        .flatten()
                    else {
                        anyhow::bail!("{}: {amount} is not a number of users", path.display());
                    };
                    results
                        .by_users
                        .entry(deployment)
                        .or_default()
                        .insert(users, run);
                }
                Kind::Rate => results
                    .by_rate
                    .entry(deployment)
                    .or_default()
                    .push((amount, run)),
            }
        }
        for runs in results.by_rate.values_mut() {
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        if results.by_users.is_empty() && results.by_rate.is_empty() {
            bail!(
                "no results in {}: expected files named DEPLOYMENT-users-N.json or DEPLOYMENT-rate-R.json \
                 (run benches/monolith-vs-split.sh)",
                dir.display()
            );
        }
        Ok(results)
    }
}

impl Run {
    fn from_report(report: &Value) -> anyhow::Result<Run> {
        let number = |value: &Value, what: &str| {
            value
                .as_f64()
                .with_context(|| format!("`{what}` is missing or not a number"))
        };
        let latency = &report["latency_ms"];
        let distribution = report["latency_distribution_ms"]
            .as_array()
            .context("`latency_distribution_ms` is missing")?
            .iter()
            .map(|point| {
                Ok((
                    number(&point[0], "latency_distribution_ms")?,
                    number(&point[1], "latency_distribution_ms")?,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Run {
            requests_per_second: number(&report["requests_per_second"], "requests_per_second")?,
            p50_ms: number(&latency["p50"], "latency_ms.p50")?,
            p99_ms: number(&latency["p99"], "latency_ms.p99")?,
            distribution,
        })
    }
}

#[derive(Debug, PartialEq)]
enum Kind {
    Users,
    Rate,
}

/// `monolith-users-16.json` → ("monolith", Users, 16).
fn parse_name(name: &str) -> Option<(String, Kind, f64)> {
    let stem = name.strip_suffix(".json")?;
    let (rest, amount) = stem.rsplit_once('-')?;
    let (deployment, kind) = rest.rsplit_once('-')?;
    let kind = match kind {
        "users" => Kind::Users,
        "rate" => Kind::Rate,
        _ => return None,
    };
    let amount: f64 = amount.parse().ok().filter(|a: &f64| *a > 0.0)?;
    if deployment.is_empty() || (kind == Kind::Users && amount.fract() != 0.0) {
        return None;
    }
    Some((deployment.to_owned(), kind, amount))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_files_are_known_by_their_names_and_others_are_not() {
        assert_eq!(
            parse_name("monolith-users-16.json"),
            Some(("monolith".to_owned(), Kind::Users, 16.0))
        );
        assert_eq!(
            parse_name("three-nodes-rate-100.json"),
            Some(("three-nodes".to_owned(), Kind::Rate, 100.0))
        );
        for other in [
            "monolith-users-1.5.json",
            "monolith-users-0.json",
            "users-16.json",
            "monolith-users-16.txt",
            "cpu.json",
            "monolith-load-16.json",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }
}
