//! TLS between nodes, optional (`[cluster.tls]`), with mutual
//! authentication: every node, and every client, presents a certificate
//! signed by the deployment's CA whose name is its node name (`client` for
//! clients), and checks the other side's.
//!
//! ```toml
//! [cluster.tls]
//! ca = "certs/ca.pem"          # the CA both sides trust
//! cert = "certs/{node}.pem"    # {node} becomes the node's name
//! key = "certs/{node}.key"
//! ```
//!
//! `boutique certs DIR` writes a development CA (or keeps the one in DIR
//! and signs with it) and one certificate per node of the config (and one
//! for clients) with [`write_dev_certs`]. The HMAC
//! handshake still runs inside TLS: the cluster secret and the API
//! fingerprint are checked either way.
//!
//! Without TLS, a connection is authenticated when it is made (the HMAC
//! handshake), but its traffic is neither private nor protected after
//! that: anyone on the path can read it, and inject frames into it (as
//! any module of the node it joined, past `[access]`). So a deployment
//! that listens on anything but loopback must say `insecure = true` under
//! `[cluster]` to start (see `Plan::new`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::{ReadHalf, WriteHalf};
use crate::config::TlsConfig;

/// The name in a client's certificate.
pub const CLIENT_CERT_NAME: &str = "client";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error("[cluster.tls] {what} {path}: {detail}")]
    File {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// rustls refused the setup.
    #[error("TLS setup failed: {0}")]
    Setup(String),
    /// The certificates could not be generated or written.
    #[error("could not write certificates: {0}")]
    Generate(String),
    /// A node of the config cannot have a certificate of its own under its
    /// name: a config problem (the same config fails again).
    #[error("could not write certificates: {0}")]
    NodeName(String),
    /// The directory holds a CA's certificate without its key: new
    /// certificates cannot be signed by it, and replacing it was not asked
    /// for.
    #[error(
        "{0} is there without the CA's key (ca.key): certificates signed by a new CA would \
         not be trusted by the nodes that hold the old one's; give the directory that holds \
         the key, or --force to make a new CA and replace every certificate there"
    )]
    CaExists(PathBuf),
}

/// How long a development certificate is valid for, from the day before
/// it is made (a day's slack for clocks behind): a year for a node's, five
/// for the CA. (rcgen's default was 1975 to 4096: a key that leaked was
/// good for ever.)
const LEAF_VALIDITY_DAYS: u64 = 365;
const CA_VALIDITY_DAYS: u64 = 5 * 365;

/// The civil date (UTC) of `days` days after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_date(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // In range by construction: a day of 1 to 31, a month of 1 to 12, and
    // a year within i32 for any date a clock gives.
    (
        i32::try_from(year).unwrap_or(i32::MAX),
        month as u8,
        day as u8,
    )
}

/// A node's TLS: how it accepts and how it dials.
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn path_for(template: &str, node: &str) -> PathBuf {
    PathBuf::from(template.replace("{node}", node))
}

fn file_error(what: &'static str, path: &Path, detail: impl ToString) -> TlsError {
    TlsError::File {
        what,
        path: path.to_owned(),
        detail: detail.to_string(),
    }
}

impl Tls {
    /// Loads the CA and the certificate and key of `node` (`client` for a
    /// client) from the files `config` names.
    pub(crate) fn load(config: &TlsConfig, node: &str) -> Result<Tls, TlsError> {
        let ca_path = PathBuf::from(&config.ca);
        let cert_path = path_for(&config.cert, node);
        let key_path = path_for(&config.key, node);
        let mut roots = RootCertStore::empty();
        let cas =
            CertificateDer::pem_file_iter(&ca_path).map_err(|e| file_error("ca", &ca_path, e))?;
        for ca in cas {
            let ca = ca.map_err(|e| file_error("ca", &ca_path, e))?;
            roots.add(ca).map_err(|e| file_error("ca", &ca_path, e))?;
        }
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
            .map_err(|e| file_error("cert", &cert_path, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| file_error("cert", &cert_path, e))?;
        if certs.is_empty() {
            return Err(file_error("cert", &cert_path, "no certificate in the file"));
        }
        let key =
            PrivateKeyDer::from_pem_file(&key_path).map_err(|e| file_error("key", &key_path, e))?;
        let roots = Arc::new(roots);
        let setup = |e: rustls::Error| TlsError::Setup(e.to_string());

        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), provider())
            .build()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(setup)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(setup)?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(setup)?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(setup)?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }

    /// TLS over an accepted connection: the halves, and the certificate the
    /// other side presented (checked against its claimed name later).
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<(ReadHalf, WriteHalf, CertificateDer<'static>)> {
        let stream = self.acceptor.accept(stream).await?;
        let presented = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first().cloned())
            .ok_or_else(|| std::io::Error::other("the peer presented no certificate"))?;
        let (read, write) = tokio::io::split(stream);
        Ok((Box::new(read), Box::new(write), presented))
    }

    /// TLS over a dialed connection to node `peer`, whose certificate must
    /// be for that name.
    pub(crate) async fn connect(
        &self,
        peer: &str,
        stream: TcpStream,
    ) -> std::io::Result<(ReadHalf, WriteHalf)> {
        let name = ServerName::try_from(peer.to_owned()).map_err(std::io::Error::other)?;
        let stream = self.connector.connect(name, stream).await?;
        let (read, write) = tokio::io::split(stream);
        Ok((Box::new(read), Box::new(write)))
    }
}

/// Whether `name` can name a node under TLS: a certificate's DNS name made
/// of letters, digits and inner `-`, that rustls takes as one (it refuses
/// a name that is all digits, or a number such as `0x1f`, which could be
/// read as an address).
pub fn is_certificate_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && matches!(ServerName::try_from(name), Ok(ServerName::DnsName(_)))
}

/// Checks that `presented` (a CA-verified certificate) is for `name`.
pub(crate) fn check_name(presented: &CertificateDer<'_>, name: &str) -> Result<(), String> {
    let cert = webpki::EndEntityCert::try_from(presented)
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    let server_name = ServerName::try_from(name)
        .map_err(|e| format!("'{name}' cannot be a certificate name: {e}"))?;
    cert.verify_is_valid_for_subject_name(&server_name)
        .map_err(|_| format!("its certificate is not for '{name}'"))
}

/// Writes, for each of `names`, a certificate and key (`NAME.pem`,
/// `NAME.key`) into `dir`, signed by the development CA there (`ca.pem`,
/// `ca.key`), which is made first if there is none, or if `replace`.
/// Keys are written readable by their owner only. A name given twice, or
/// `ca`, is refused before anything is written: its files would replace
/// another's (a node named `ca` would overwrite the CA, and every node's
/// TLS would fail). Kept, the CA renews certificates (they last a year)
/// and makes them for nodes added, which the nodes holding the older ones
/// trust; a new CA would be trusted by none of them. A `ca.pem` without
/// its `ca.key` is refused, unless `replace`. Certificates are valid from
/// the day before for a year (the CA for five).
pub fn write_dev_certs(
    dir: &Path,
    names: &[&str],
    replace: bool,
) -> Result<Vec<PathBuf>, TlsError> {
    for (i, name) in names.iter().enumerate() {
        // A certificate name, as a node's must be under TLS; anything else
        // (`../x`) could also write outside `dir`.
        if !is_certificate_name(name) {
            return Err(TlsError::NodeName(format!(
                "'{name}' cannot be a certificate name: name the node with letters, digits \
                 and inner '-' only, not all digits"
            )));
        }
        if *name == "ca" || names[..i].contains(name) {
            return Err(TlsError::NodeName(format!(
                "'{name}' would be written over another certificate's files ({dir}/{name}.pem): \
                 name the node otherwise (`ca` and `{CLIENT_CERT_NAME}` are taken)",
                dir = dir.display()
            )));
        }
    }
    let (ca_pem, ca_key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    let kept_ca = !replace && ca_pem.exists();
    if kept_ca && !ca_key_path.exists() {
        return Err(TlsError::CaExists(ca_pem));
    }
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, date_time_ymd,
    };
    let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let days_since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() / 86_400);
    let (year, month, day) = civil_date(i64::try_from(days_since_epoch).unwrap_or(0) - 1);
    let not_before = date_time_ymd(year, month, day);
    let days = |n: u64| std::time::Duration::from_secs(n * 86_400);
    std::fs::create_dir_all(dir)
        .map_err(|e| TlsError::Generate(format!("{}: {e}", dir.display())))?;
    let mut written = Vec::new();
    let mut write = |name: String, text: String, secret: bool| -> Result<(), TlsError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(name);
        let failed = |e: std::io::Error| TlsError::Generate(format!("{}: {e}", path.display()));
        // A key is created readable by its owner only, never for a moment
        // more widely (a file written first and restricted after could be
        // opened in between, and kept open); an old one is replaced, not
        // rewritten in place with its old permissions.
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if secret {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
                _ => {}
            }
            options.create_new(true).mode(0o600);
        } else {
            options.create(true).truncate(true);
        }
        let mut file = options.open(&path).map_err(failed)?;
        file.write_all(text.as_bytes()).map_err(failed)?;
        written.push(path);
        Ok(())
    };

    // The CA as it is made, and as it signs: an issuer is its name, how
    // its key is identified and what the key may do, and the key.
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.not_before = not_before;
    ca.not_after = not_before + days(CA_VALIDITY_DAYS);
    ca.distinguished_name
        .push(DnType::CommonName, "Boutique development CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = if kept_ca {
        let text = std::fs::read_to_string(&ca_key_path)
            .map_err(|e| TlsError::Generate(format!("{}: {e}", ca_key_path.display())))?;
        KeyPair::from_pem(&text).map_err(|e| {
            TlsError::Generate(format!(
                "{}: not a key this tool wrote ({e}); --force makes a new CA",
                ca_key_path.display()
            ))
        })?
    } else {
        let ca_key = KeyPair::generate().map_err(generate)?;
        let ca_cert = ca.self_signed(&ca_key).map_err(generate)?;
        write("ca.pem".to_owned(), ca_cert.pem(), false)?;
        write("ca.key".to_owned(), ca_key.serialize_pem(), true)?;
        ca_key
    };
    let issuer = Issuer::new(ca, ca_key);

    for name in names {
        let key = KeyPair::generate().map_err(generate)?;
        let mut params = CertificateParams::new(vec![(*name).to_owned()]).map_err(generate)?;
        params.distinguished_name.push(DnType::CommonName, *name);
        params.not_before = not_before;
        params.not_after = not_before + days(LEAF_VALIDITY_DAYS);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &issuer).map_err(generate)?;
        write(format!("{name}.pem"), cert.pem(), false)?;
        write(format!("{name}.key"), key.serialize_pem(), true)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::civil_date;

    #[test]
    fn days_since_the_epoch_are_the_dates_of_the_calendar() {
        for (days, date) in [
            (0, (1970, 1, 1)),
            (59, (1970, 3, 1)),
            (11_016, (2000, 2, 29)),
            (20_785, (2026, 11, 28)),
            (-1, (1969, 12, 31)),
            (2_932_896, (9999, 12, 31)),
        ] {
            assert_eq!(civil_date(days), date, "{days}");
        }
    }
}
