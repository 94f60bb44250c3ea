//! TLS between nodes with mutual authentication: certificates from the
//! deployment's CA, for the right names, or no connection. And without
//! TLS, no listening beyond loopback unless the config says so.

mod support;

use std::path::{Path, PathBuf};

use runtime::transport::tls::write_dev_certs;
use runtime::{CallError, Plan, config};
use support::*;

/// A directory of its own under the system's temporary directory.
struct Dir(PathBuf);

impl Dir {
    fn new(label: &str) -> Dir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "boutique-tls-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `[cluster.tls]` section for certificates in `dir`; `cert` names the
/// certificate (with `{node}`, each node's own).
fn tls_section(dir: &Path, cert: &str) -> String {
    let d = dir.display();
    format!(
        "[runtime]\nhandshake_timeout_ms = 1000\n[cluster.tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/{cert}.pem\"\nkey = \"{d}/{cert}.key\"\n"
    )
}

fn certificates(label: &str) -> Dir {
    let dir = Dir::new(label);
    write_dev_certs(&dir.0, &["a", "b", "client"], false).unwrap();
    dir
}

/// Nodes a and b, and a client, with the certificates in `certs`: the
/// client's call through b to a (two TLS connections, both ways) answers.
async fn a_call_goes_through_b_to_a(certs: &Dir, text: &str) {
    let (la, lb) = (bind(), bind());
    let plan = plan_with(addr(&la), addr(&lb), &tls_section(&certs.0, "{node}"));
    let _a = start_node(&plan, "a", la).await;
    let _b = start_node(&plan, "b", lb).await;
    let client = client(&plan).await;
    let relayed = client
        .service::<RelayService>()
        .unwrap()
        .call(Relay { text: text.into() })
        .await;
    assert_eq!(relayed.unwrap().unwrap().text, text);
}

#[actix_rt::test]
async fn nodes_and_clients_with_certificates_of_the_ca_talk_over_tls() {
    a_call_goes_through_b_to_a(&certificates("ok"), "sealed").await;
}

/// Certificates made again into a directory that holds the CA are signed
/// by it: a node with a renewed one (or a node added) is trusted by the
/// nodes holding the older ones. (A new CA each time would be trusted by
/// none of them.)
#[actix_rt::test]
async fn a_certificate_renewed_by_the_kept_ca_is_trusted_by_the_others() {
    let certs = certificates("renewed");
    let ca = std::fs::read(certs.0.join("ca.pem")).unwrap();
    let b = std::fs::read(certs.0.join("b.pem")).unwrap();
    write_dev_certs(&certs.0, &["b"], false).unwrap();
    assert_eq!(std::fs::read(certs.0.join("ca.pem")).unwrap(), ca);
    assert_ne!(std::fs::read(certs.0.join("b.pem")).unwrap(), b);
    // b's renewed certificate, a's as before.
    a_call_goes_through_b_to_a(&certs, "renewed").await;
}

#[actix_rt::test]
async fn a_node_whose_certificate_is_from_another_ca_is_refused() {
    let ours = certificates("ours");
    let theirs = certificates("theirs");
    let (la, lb) = (bind(), bind());
    let (a_addr, b_addr) = (addr(&la), addr(&lb));
    let _a = start_node(
        &plan_with(a_addr, b_addr, &tls_section(&ours.0, "{node}")),
        "a",
        la,
    )
    .await;
    let b = start_node(
        &plan_with(a_addr, b_addr, &tls_section(&theirs.0, "{node}")),
        "b",
        lb,
    )
    .await;
    let error = b
        .service::<Toy>()
        .unwrap()
        .call(Echo {
            text: "x".into(),
            local_only: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::NotDelivered { .. }), "{error:?}");
    assert!(error.to_string().contains("TLS"), "{error}");
}

#[actix_rt::test]
async fn a_node_presenting_another_nodes_certificate_is_refused() {
    let certs = certificates("stolen");
    let (la, lb) = (bind(), bind());
    let (a_addr, b_addr) = (addr(&la), addr(&lb));
    let _a = start_node(
        &plan_with(a_addr, b_addr, &tls_section(&certs.0, "{node}")),
        "a",
        la,
    )
    .await;
    // b presents a's certificate (and key) as its own.
    let b = start_node(
        &plan_with(a_addr, b_addr, &tls_section(&certs.0, "a")),
        "b",
        lb,
    )
    .await;
    let error = b
        .service::<Toy>()
        .unwrap()
        .call(Echo {
            text: "x".into(),
            local_only: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::NotDelivered { .. }), "{error:?}");
    assert!(error.to_string().contains("not its own"), "{error}");
}

fn plan_error(text: &str) -> Option<String> {
    Plan::new(config::parse(text).unwrap(), &catalogue())
        .err()
        .map(|e| e.to_string())
}

#[test]
fn listening_beyond_loopback_needs_tls_or_insecure() {
    let open =
        "[cluster]\nsecret_env = \"S\"\n[nodes.a]\nlisten = \"0.0.0.0:7401\"\nmodules = [\"*\"]\n";
    let error = plan_error(open).unwrap();
    assert!(error.contains("without TLS"), "{error}");
    assert!(error.contains("insecure = true"), "{error}");

    let accepted = open.replace("[cluster]\n", "[cluster]\ninsecure = true\n");
    assert_eq!(plan_error(&accepted), None);
    let loopback = open.replace("0.0.0.0", "127.0.0.1");
    assert_eq!(plan_error(&loopback), None);
    let with_tls = format!(
        "{open}[cluster.tls]\nca = \"ca.pem\"\ncert = \"{{node}}.pem\"\nkey = \"{{node}}.key\"\n"
    );
    assert_eq!(plan_error(&with_tls), None);
    let underscore = with_tls.replace("[nodes.a]", "[nodes.a_1]");
    assert!(
        plan_error(&underscore)
            .unwrap()
            .contains("certificate names")
    );
    // A number: rustls would refuse it as a name on every dial.
    for number in ["1", "0x1f"] {
        let named = with_tls.replace("[nodes.a]", &format!("[nodes.{number}]"));
        let error = plan_error(&named).unwrap_or_default();
        assert!(
            error.contains(&format!("node '{number}'")) && error.contains("not a number"),
            "{number}: {error}"
        );
    }
    let letters = with_tls.replace("[nodes.a]", "[nodes.ab-1]");
    assert_eq!(plan_error(&letters), None);
}
