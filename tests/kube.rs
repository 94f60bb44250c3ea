//! `boutique deploy kube`: the manifests of a split deployment pass the
//! Kubernetes schemas (`kubernetes-validate --strict`, from PyPI; `.ci/run`
//! installs it and names it in `BOUTIQUE_TEST_KUBE_VALIDATE`), and say what
//! a cluster needs: a Deployment and a Service per node, the config in a
//! ConfigMap, the secret from a Secret, probes on the admin port, resource
//! requests, peers dialled by Service name.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use support::repo;

/// `deploy kube` of deploy/three-nodes.toml with `cluster.insecure` set
/// (so that it needs no TLS files), and `extra`.
fn split_insecure(extra: &[&str]) -> Output {
    deploy_kube(
        "deploy/three-nodes.toml",
        &[&["--set", "cluster.insecure=true"][..], extra].concat(),
    )
}

fn deploy_kube(config: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boutique"))
        .args([
            "--config",
            config,
            "deploy",
            "kube",
            "--image",
            "boutique:test",
        ])
        .args(extra)
        .current_dir(repo(""))
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// The validator, if this machine has it.
fn validator() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("BOUTIQUE_TEST_KUBE_VALIDATE") {
        return Some(PathBuf::from(path));
    }
    let found = Command::new("kubernetes-validate")
        .arg("--version")
        .output();
    found
        .is_ok_and(|o| o.status.success())
        .then(|| PathBuf::from("kubernetes-validate"))
}

/// The manifests as documents, each with its kind and name.
fn documents(yaml: &str) -> Vec<(String, String, String)> {
    yaml.split("---\n")
        .filter(|doc| !doc.trim().is_empty())
        .map(|doc| {
            let field = |prefix: &str| {
                doc.lines()
                    .find_map(|line| line.strip_prefix(prefix))
                    .unwrap_or_default()
                    .trim()
                    .trim_matches('"')
                    .to_owned()
            };
            (field("kind: "), field("  name: "), doc.to_owned())
        })
        .collect()
}

#[test]
fn the_manifests_of_a_split_deployment_pass_the_kubernetes_schemas_and_wire_the_nodes() {
    let output = deploy_kube("deploy/kube.toml", &["--namespace", "shop"]);
    let yaml = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docs = documents(&yaml);
    let kinds: Vec<(&str, &str)> = docs
        .iter()
        .map(|(kind, name, _)| (kind.as_str(), name.as_str()))
        .collect();
    for expected in [
        ("ConfigMap", "boutique-config"),
        ("Deployment", "boutique-web"),
        ("Service", "boutique-web"),
        ("Deployment", "boutique-store"),
        ("Service", "boutique-store"),
        ("Deployment", "boutique-pay"),
        ("Service", "boutique-pay"),
        ("NetworkPolicy", "boutique-nodes"),
    ] {
        assert!(
            kinds.contains(&expected),
            "{expected:?} missing from {kinds:?}"
        );
    }
    let web = &docs
        .iter()
        .find(|(kind, name, _)| kind == "Deployment" && name == "boutique-web")
        .unwrap()
        .2;
    for needle in [
        "namespace: \"shop\"",
        "image: \"boutique:test\"",
        "- \"web\"",
        "path: \"/readyz\"",
        "path: \"/healthz\"",
        "port: \"admin\"",
        "cpu: \"100m\"",
        "name: \"BOUTIQUE__NODES__STORE__ADDRESS\"\n              value: \"boutique-store:7402\"",
        "name: \"BOUTIQUE__NODES__WEB__LISTEN\"\n              value: \"0.0.0.0:7401\"",
        "name: \"BOUTIQUE__MODULES__FRONTEND__LISTEN\"\n              value: \"0.0.0.0:8080\"",
        "name: \"BOUTIQUE_SECRET\"\n              valueFrom:\n                secretKeyRef:\n                  key: \"secret\"\n                  name: \"boutique-cluster-secret\"",
    ] {
        assert!(web.contains(needle), "{needle:?} not in:\n{web}");
    }
    // The config, as written, in the ConfigMap.
    let config = std::fs::read_to_string(repo("deploy/kube.toml")).unwrap();
    assert!(
        yaml.contains(
            &config
                .lines()
                .map(|l| if l.is_empty() {
                    String::new()
                } else {
                    format!("    {l}")
                })
                .collect::<Vec<_>>()
                .join("\n")
        ),
        "the ConfigMap holds the config file verbatim:\n{yaml}"
    );

    passes_the_schemas(&yaml, docs.len());
}

/// Checks every document of `yaml` (`count` of them) against the
/// Kubernetes 1.30 schemas, if this machine has the validator (it must,
/// with `BOUTIQUE_TEST_KUBE=required`).
fn passes_the_schemas(yaml: &str, count: usize) {
    let Some(validator) = validator() else {
        assert_ne!(
            std::env::var("BOUTIQUE_TEST_KUBE").as_deref(),
            Ok("required"),
            "kubernetes-validate is required but not found"
        );
        // Past the test harness's capture, which takes `eprintln!`: a
        // passing run says so too.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "kubernetes-validate not found (pip install kubernetes-validate): schemas not checked"
        );
        return;
    };
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "kube-{}-{}.yaml",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&file, yaml).unwrap();
    let checked = Command::new(&validator)
        .args(["--strict", "--kubernetes-version", "1.30.0"])
        .arg(&file)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&checked.stdout).into_owned()
        + &String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{report}");
    assert_eq!(report.matches("passed").count(), count, "{report}");
}

#[test]
fn a_deployment_whose_nodes_listen_without_tls_or_insecure_is_refused_with_the_way_out() {
    // Split, or one node that listens (its pod would refuse to start).
    for (config, extra) in [
        ("deploy/three-nodes.toml", &[][..]),
        (
            "config.toml",
            &[
                "--set",
                "nodes.main.listen=127.0.0.1:7401",
                "--set",
                "cluster.secret_env=BOUTIQUE_SECRET",
            ][..],
        ),
    ] {
        let output = deploy_kube(config, extra);
        assert_eq!(output.status.code(), Some(78), "{config}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(
            message.contains("[cluster.tls]") && message.contains("insecure = true"),
            "{message}"
        );
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn an_override_the_pods_cannot_be_given_is_refused() {
    let output = split_insecure(&[
        "--set",
        r#"nodes.pay.modules=["payment", "shipping", "email"]"#,
    ]);
    assert_eq!(output.status.code(), Some(78));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("cannot hold a list"), "{message}");
    assert!(output.stdout.is_empty());

    // A key the manifests set themselves: both would reach the pods, and
    // theirs would win.
    for key in ["runtime.data_dir", "nodes.web.address", "nodes.pay.listen"] {
        let output = split_insecure(&["--set", &format!("{key}=[fd00::1]:7401")]);
        assert_eq!(output.status.code(), Some(78), "{key}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(
            message.contains(&format!("the manifests set {key} themselves")),
            "{message}"
        );
    }

    // A value that merely starts with a bracket (as an IPv6 address does)
    // is one value, and goes through.
    let output = split_insecure(&[
        "--set",
        "modules.email.sink=directory",
        "--set",
        "modules.email.directory=[fd00::1]",
        // Values as `--set` reads them, not as typed: a TOML string
        // without its quotes, a number in its plain form.
        "--set",
        r#"modules.orders.database="postgres://shop@db/boutique""#,
        "--set",
        "runtime.call_timeout_ms=5_000",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = String::from_utf8(output.stdout).unwrap();
    for (name, value) in [
        ("BOUTIQUE__MODULES__EMAIL__DIRECTORY", "[fd00::1]"),
        (
            "BOUTIQUE__MODULES__ORDERS__DATABASE",
            "postgres://shop@db/boutique",
        ),
        ("BOUTIQUE__RUNTIME__CALL_TIMEOUT_MS", "5000"),
    ] {
        let pair = format!("name: \"{name}\"\n              value: \"{value}\"");
        assert!(yaml.contains(&pair), "{pair:?} not in:\n{yaml}");
    }
}

#[test]
fn a_password_goes_to_the_pods_from_a_secret_never_in_plain_text() {
    // In a --set, a database URL's password would be a plain `value:` in
    // every Deployment: refused, with the way out.
    for url in [
        "postgres://shop:s3cret@db/boutique",
        "postgres://shop@db/boutique?password=s3cret",
        // TOML strings, as --set reads them: the pods get the URL within.
        "'postgres://shop:s3cret@db/boutique'",
        "\"postgres://shop:s3cret@db/boutique\"",
    ] {
        let set = format!("modules.orders.database={url}");
        let output = split_insecure(&["--set", &set]);
        assert_eq!(output.status.code(), Some(78), "{url}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains("--secret-env PGPASSWORD="), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
        assert!(output.stdout.is_empty());
    }

    // In the config file, it would be in the ConfigMap: refused too.
    let config = kube_config_with(|text| {
        format!("{text}\n[modules.orders]\ndatabase = \"postgres://shop:s3cret@db/boutique\"\n")
    });
    let output = deploy_kube(&config, &[]);
    assert_eq!(output.status.code(), Some(78));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("[modules.orders] database: the URL holds a password")
            && message.contains("--secret-env PGPASSWORD="),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert!(output.stdout.is_empty());

    // A setting given both ways, in another case: refused, not left to
    // the order of the variables.
    let output = split_insecure(&[
        "--set",
        "modules.orders.database=postgres://shop@db/boutique",
        "--secret-env",
        "boutique__modules__orders__database=shop-db/url",
    ]);
    assert_eq!(output.status.code(), Some(78));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("the pods get boutique__modules__orders__database already"),
        "{message}"
    );

    // A SQLite path is no password, whatever it holds.
    let output = split_insecure(&["--set", "modules.cart.database=sqlite:data/passwords@x.db"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // From the user's own Secret, by reference.
    let output = split_insecure(&[
        "--set",
        "modules.orders.database=postgres://shop@db/boutique",
        "--secret-env",
        "PGPASSWORD=shop-db/password",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = String::from_utf8(output.stdout).unwrap();
    let reference = "name: \"PGPASSWORD\"\n              valueFrom:\n                \
                     secretKeyRef:\n                  key: \"password\"\n                  \
                     name: \"shop-db\"";
    for node in ["web", "store", "pay"] {
        let deployment = deployment_of(&yaml, node);
        assert!(
            deployment.contains(reference),
            "{reference:?} not in:\n{deployment}"
        );
    }
    passes_the_schemas(&yaml, documents(&yaml).len());

    // Entries that are not VAR=SECRET/KEY, a Secret's name Kubernetes
    // would refuse, a variable given twice, a setting the manifests make.
    for (entry, expected) in [
        ("PGPASSWORD", "no '='"),
        ("PGPASSWORD=shop-db", "no '/'"),
        ("PG-PASSWORD=shop-db/password", "not a variable name"),
        ("PGPASSWORD=Shop_DB/password", "not a Secret's name"),
        ("PGPASSWORD=shop-db/pass word", "not a key of a Secret"),
        (
            "BOUTIQUE_SECRET=shop-db/secret",
            "the pods get BOUTIQUE_SECRET already",
        ),
        (
            "BOUTIQUE__RUNTIME__DATA_DIR=shop-db/dir",
            "the manifests set runtime.data_dir themselves",
        ),
        // Only a module's own setting: the manifests are made without it.
        (
            "BOUTIQUE__NODES__WEB__MODULES=shop-db/placement",
            "not nodes.web.modules",
        ),
        (
            "BOUTIQUE__MODULES__ORDER__DATABASE=shop-db/url",
            "not modules.order.database",
        ),
    ] {
        let output = split_insecure(&["--secret-env", entry]);
        assert_eq!(output.status.code(), Some(78), "{entry}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(expected), "{entry}: {message}");
    }
}

#[test]
fn a_setting_variable_in_the_environment_is_refused_since_the_pods_would_not_get_it() {
    // Lower case too: the config crate reads the prefix in any case.
    for name in [
        "BOUTIQUE__MODULES__ORDERS__DATABASE",
        "boutique__modules__orders__database",
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_boutique"))
            .args(["--config", "deploy/three-nodes.toml", "deploy", "kube"])
            .args(["--image", "boutique:test", "--set", "cluster.insecure=true"])
            .env(name, "postgres://shop@db/boutique")
            .current_dir(repo(""))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{name}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(
            message.contains(name) && message.contains("the pods would not get it"),
            "{message}"
        );
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn with_tls_the_certificates_come_from_a_secret_and_no_policy_is_needed() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let config = dir.join(format!("kube-tls-{}.toml", std::process::id()));
    let text = std::fs::read_to_string(repo("deploy/three-nodes.toml")).unwrap()
        + "\n[cluster.tls]\nca = \"certs/ca.pem\"\ncert = \"certs/{node}.pem\"\nkey = \"certs/{node}.key\"\n";
    std::fs::write(&config, text).unwrap();
    let output = deploy_kube(config.to_str().unwrap(), &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = String::from_utf8(output.stdout).unwrap();
    assert!(yaml.contains("secretName: \"boutique-tls\""), "{yaml}");
    // Each pod gets the CA's certificate and its own pair, readable by the
    // image's user; never the CA's key, nor another node's.
    assert!(yaml.contains("fsGroup: 10001"), "{yaml}");
    for file in ["ca.pem", "web.pem", "web.key", "pay.key"] {
        assert!(yaml.contains(&format!("key: \"{file}\"")), "{file}: {yaml}");
    }
    assert!(!yaml.contains("ca.key"), "{yaml}");
    let web = yaml
        .split("\n---")
        .find(|doc| {
            doc.contains("kind: \"Deployment\"") && doc.contains("name: \"boutique-web\"\n")
        })
        .expect("the web node's Deployment");
    assert!(!web.contains("pay.key"), "{web}");
    passes_the_schemas(&yaml, documents(&yaml).len());
    assert!(
        yaml.contains("value: \"/etc/boutique/tls/{node}.pem\""),
        "{yaml}"
    );
    assert!(!yaml.contains("NetworkPolicy"), "{yaml}");
}

/// `deploy/kube.toml` with `change` made to its text, in a file.
fn kube_config_with(change: impl Fn(String) -> String) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let text = change(std::fs::read_to_string(repo("deploy/kube.toml")).unwrap());
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "kube-config-{}-{}.toml",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&file, text).unwrap();
    file.to_string_lossy().into_owned()
}

/// The Deployment of node `node` in `yaml`.
fn deployment_of(yaml: &str, node: &str) -> String {
    documents(yaml)
        .into_iter()
        .find(|(kind, name, _)| kind == "Deployment" && name == &format!("boutique-{node}"))
        .unwrap_or_else(|| panic!("no Deployment of {node} in:\n{yaml}"))
        .2
}

#[test]
fn the_pods_follow_the_config_grace_ports_and_text() {
    // A first line that is indented (YAML would take its indentation for
    // the whole block), a long grace, and node ports the pods use for
    // their admin endpoints and the shop.
    let config = kube_config_with(|text| {
        format!(
            "  # indented first line\n{text}\n[runtime]\nshutdown_grace_ms = 60000\n\
             [modules.frontend]\nlisten = \"127.0.0.1:8000\"\n"
        )
        .replace("127.0.0.1:7401", "127.0.0.1:8080")
        .replace("127.0.0.1:7402", "127.0.0.1:9400")
    });
    let output = deploy_kube(&config, &[]);
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{said}");
    let yaml = String::from_utf8(output.stdout).unwrap();
    let web = deployment_of(&yaml, "web");
    // The node's own grace, and the admin endpoints' stop and the spans'
    // flush after it.
    assert!(web.contains("terminationGracePeriodSeconds: 67"), "{web}");
    // Each port once in a pod: the nodes moved off the shop's port and
    // the admin endpoints'.
    let listen = |deployment: &str, node: &str| {
        let name = format!("name: \"BOUTIQUE__NODES__{node}__LISTEN\"\n");
        let (_, after) = deployment.split_once(&name).unwrap();
        after.lines().next().unwrap().trim().to_owned()
    };
    assert_eq!(web.matches("containerPort: 8080").count(), 1, "{web}");
    assert!(!listen(&web, "WEB").ends_with(":8080\""), "{web}");
    let store = deployment_of(&yaml, "store");
    assert_eq!(store.matches("containerPort: 9400").count(), 1, "{store}");
    assert!(!listen(&store, "STORE").ends_with(":9400\""), "{store}");
    for needle in [
        "allowPrivilegeEscalation: false",
        "readOnlyRootFilesystem: true",
        "type: \"RuntimeDefault\"",
        "startupProbe:",
        "boutique/config-sha256:",
    ] {
        assert!(web.contains(needle), "{needle} not in:\n{web}");
    }
    // The data that goes with the pod is named.
    assert!(
        said.contains(
            "auth, cart, orders, payment keep their data in the pod's data directory, an emptyDir"
        ),
        "{said}"
    );
    passes_the_schemas(&yaml, documents(&yaml).len());

    // Another config text, another hash: the pods are replaced.
    let hash = |yaml: &str| {
        deployment_of(yaml, "web")
            .lines()
            .find(|line| line.contains("boutique/config-sha256:"))
            .unwrap()
            .to_owned()
    };
    let other = deploy_kube(
        &kube_config_with(|text| format!("{text}\n# changed\n")),
        &[],
    );
    let other = String::from_utf8(other.stdout).unwrap();
    assert_ne!(hash(&yaml), hash(&other));
}

#[test]
fn a_node_whose_name_cannot_name_kubernetes_objects_is_refused() {
    // `-web` makes `boutique--web`, a valid object name, but the label
    // value `-web` is none: kubectl refused what deploy kube printed.
    for node in ["-web", "web_1", "web-"] {
        let config =
            kube_config_with(|text| text.replace("[nodes.web]", &format!("[nodes.{node}]")));
        let output = deploy_kube(&config, &[]);
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(78), "{node}: {said}");
        assert!(
            said.contains(&format!("node '{node}' cannot name Kubernetes objects")),
            "{node}: {said}"
        );
        assert!(output.stdout.is_empty(), "{node}");
    }
}

/// Nodes whose modules call each other round would never turn ready under
/// the manifests (each waits to reach the other through a Service that
/// sends only to ready pods): refused, naming them, with the way out.
#[test]
fn a_layout_whose_nodes_call_each_other_round_is_refused() {
    // The frontend (web) calls checkout (store), which calls currency (web).
    let config = kube_config_with(|text| {
        text.replace(
            r#"["frontend", "checkout", "recommendation", "ads"]"#,
            r#"["frontend", "currency", "recommendation", "ads"]"#,
        )
        .replace(
            r#"["catalog", "currency", "cart", "auth", "orders"]"#,
            r#"["catalog", "checkout", "cart", "auth", "orders"]"#,
        )
    });
    let output = deploy_kube(&config, &[]);
    assert_eq!(output.status.code(), Some(78));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("call each other round"), "{message}");
    assert!(
        message.contains("'web'") && message.contains("'store'"),
        "{message}"
    );
    assert!(output.stdout.is_empty());
}

/// One node that listens, without TLS, gets the NetworkPolicy too: its
/// port is on the pod network, unencrypted, as a split deployment's are.
#[test]
fn a_single_node_that_listens_without_tls_gets_the_network_policy() {
    let config = kube_config_with(|_| {
        "[cluster]\nsecret_env = \"BOUTIQUE_SECRET\"\ninsecure = true\n\
         [nodes.main]\nlisten = \"127.0.0.1:7401\"\nmodules = [\"*\"]\n"
            .to_owned()
    });
    let output = deploy_kube(&config, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = String::from_utf8(output.stdout).unwrap();
    assert!(yaml.contains("kind: \"NetworkPolicy\""), "{yaml}");
}

/// A file the config names for a module to read (`products_file`) goes to
/// the pods that run the module: into the ConfigMap, mounted there, the
/// setting pointed at it (over a `--set` of it). Before, the pods were
/// told a path on this machine, and the node exited 78 over and over.
/// One that cannot be read here is refused, saying which.
#[test]
fn a_file_a_module_reads_goes_into_the_configmap_and_the_pods_that_run_it() {
    let products = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kube-products-{}.json", std::process::id()));
    let text = std::fs::read_to_string(repo("modules/catalog/data/products.json")).unwrap();
    std::fs::write(&products, &text).unwrap();
    let setting = format!("modules.catalog.products_file={}", products.display());
    let output = split_insecure(&["--set", &setting]);
    let yaml = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docs = documents(&yaml);
    let config_map = &docs
        .iter()
        .find(|(kind, _, _)| kind == "ConfigMap")
        .unwrap()
        .2;
    let first_line = text.lines().find(|line| !line.trim().is_empty()).unwrap();
    assert!(
        config_map.contains("  catalog.products_file: |")
            && config_map.contains(&format!("    {first_line}")),
        "{config_map}"
    );
    let store = deployment_of(&yaml, "store");
    for needle in [
        "mountPath: \"/etc/boutique/files/catalog.products_file\"",
        "subPath: \"catalog.products_file\"",
        "name: \"BOUTIQUE__MODULES__CATALOG__PRODUCTS_FILE\"\n              value: \"/etc/boutique/files/catalog.products_file\"",
    ] {
        assert!(store.contains(needle), "{needle:?} not in:\n{store}");
    }
    assert_eq!(
        store
            .matches("BOUTIQUE__MODULES__CATALOG__PRODUCTS_FILE")
            .count(),
        1,
        "{store}"
    );
    // The web node runs no catalog: nothing of it (the --set's path on
    // this machine went to every pod).
    let web = deployment_of(&yaml, "web");
    assert!(!web.to_lowercase().contains("products_file"), "{web}");
    passes_the_schemas(&yaml, docs.len());

    // Nothing said of a file this small; of one past what `kubectl apply`
    // keeps in its annotation, the way to apply it.
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!said.contains("--server-side"), "{said}");
    let many: Vec<String> = (0..1500)
        .map(|n| {
            format!(
                r#"{{"id": "P{n:05}", "name": "Product {n}", "description": "{}",
                "picture": "/static/img/products/mug.jpg",
                "priceUsd": {{"currencyCode": "USD", "units": 1, "nanos": 0}},
                "categories": ["kitchen"]}}"#,
                "A thing to buy. ".repeat(8)
            )
        })
        .collect();
    let large = products.with_extension("large.json");
    std::fs::write(&large, format!(r#"{{"products": [{}]}}"#, many.join(",\n"))).unwrap();
    let setting = format!("modules.catalog.products_file={}", large.display());
    let output = split_insecure(&["--set", &setting]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(
        said.contains("apply the manifests with `kubectl apply --server-side -f -`"),
        "{said}"
    );

    let missing = "modules.catalog.products_file=/nonexistent/products.json";
    let refused = split_insecure(&["--set", missing]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(78), "{said}");
    assert!(
        said.contains("[modules.catalog] products_file = \"/nonexistent/products.json\""),
        "{said}"
    );
}
