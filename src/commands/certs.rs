//! `boutique certs DIR`: a development CA (made, or the one in DIR kept;
//! `--force` makes a new one) and one certificate per node of the config
//! (plus one for clients such as `boutique call`), for
//! `[cluster.tls]`. For trying TLS out; production deployments use their
//! own CA.

use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

use runtime::config;
use runtime::transport::tls::{CLIENT_CERT_NAME, write_dev_certs};

use crate::cli::ConfigArgs;

/// Writes the certificates into `dir` and says how to use them.
/// A CA in `dir` is kept and signs the certificates (renewed, or for
/// nodes added); with `force`, a new CA is made.
pub fn certs(args: &ConfigArgs, dir: &Path, force: bool) -> anyhow::Result<ExitCode> {
    // The raw config: a deployment that cannot start without TLS yet is
    // exactly the one that needs certificates.
    let deployment = config::load(&args.source())?;
    let mut names: Vec<&str> = deployment.nodes.keys().map(String::as_str).collect();
    names.push(CLIENT_CERT_NAME);
    let written = write_dev_certs(dir, &names, force)?;
    let mut out = String::new();
    if !written.iter().any(|path| path.ends_with("ca.pem")) {
        writeln!(
            out,
            "kept the CA in {} (ca.pem, ca.key): the certificates below are signed by it, and \
             the nodes holding older ones trust them; --force makes a new CA",
            dir.display()
        )?;
    }
    for path in &written {
        writeln!(out, "wrote {}", path.display())?;
    }
    writeln!(
        out,
        "\nAdd to the config (the same on every node; keep the .key files private):\n\n\
         [cluster.tls]\nca = \"{dir}/ca.pem\"\ncert = \"{dir}/{{node}}.pem\"\nkey = \"{dir}/{{node}}.key\"",
        dir = dir.display()
    )?;
    // A reader that stopped reading (`| head`) is no error: the files are
    // written.
    super::print(&out)?;
    Ok(ExitCode::SUCCESS)
}
