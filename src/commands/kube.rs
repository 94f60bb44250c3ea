//! `boutique deploy kube --image IMAGE`: the Kubernetes manifests of the
//! config's deployment, as YAML on stdout (`| kubectl apply -f -`).
//!
//! What it writes, for a config with nodes N1, N2...:
//!
//! - a ConfigMap `boutique-config` holding the config file as given, and
//!   the files it names for modules to read (`products_file`: see
//!   `data_files`), each mounted in the pods of the nodes that run its
//!   module;
//! - per node, a Deployment `boutique-NODE` (one pod: a node is one
//!   process; replicate a module by placing it on several nodes) running
//!   `boutique --config /etc/boutique/config.toml run --node NODE`, and a
//!   Service `boutique-NODE` in front of it. The pod listens on `0.0.0.0`
//!   at the node's configured port, and every node is told to dial the
//!   others by their Service names (`[nodes.N] address`), set through
//!   `BOUTIQUE__NODES__N__...` variables, so the file itself is unchanged;
//! - the cluster secret from the Secret `boutique-cluster-secret` (key
//!   `secret`), which is not written here: it must never be in a manifest;
//! - startup and liveness (`/healthz`) and readiness (`/readyz`) probes on
//!   the admin port 9400, resource requests, a termination grace of the
//!   config's `shutdown_grace_ms` and 7 s (the node stops its admin
//!   endpoints and flushes its spans after it), the pod security
//!   standard "restricted" (no privilege escalation, no capabilities, the
//!   runtime's seccomp profile, a read-only root file system), a hash of
//!   the config on the pod template (a changed config rolls the pods), and
//!   a data directory per pod: an `emptyDir`, lost when the pod is
//!   replaced (modules that must keep data use a database URL, e.g.
//!   PostgreSQL, in their config section; the command warns of those that
//!   do not);
//! - with `[cluster.tls]`, the certificates from the Secret `boutique-tls`
//!   (made from `boutique certs DIR`, without the CA's key and the
//!   client's pair: docs/operations.md), each pod given only the CA's
//!   certificate and its own node's pair; without it, the config must say
//!   `insecure = true`
//!   (pods listen beyond loopback), and a NetworkPolicy lets only the
//!   deployment's own pods reach the node ports.
//!
//! docs/operations.md shows the whole procedure, image build included.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use runtime::config::{self, Plan};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::cli::ConfigArgs;

mod data_files;
use data_files::DataFile;

/// The port of every node's admin endpoints, in the pod.
const ADMIN_PORT: u16 = 9400;
/// The port the shop is served on, in the pod of the node that runs it.
const HTTP_PORT: u16 = 8080;
/// Where the config file is mounted.
const CONFIG_PATH: &str = "/etc/boutique/config.toml";
/// The user (and group) id the image runs as (`USER` in the Dockerfile).
const IMAGE_USER: u32 = 10001;

/// Where the TLS files are mounted.
const TLS_DIR: &str = "/etc/boutique/tls";
/// Where a pod keeps its modules' files.
const DATA_DIR: &str = "/var/lib/boutique";
/// The Secret that holds the cluster secret.
const SECRET_NAME: &str = "boutique-cluster-secret";

/// Writes the manifests.
pub fn kube(
    args: &ConfigArgs,
    image: &str,
    namespace: Option<&str>,
    secret_env: &[String],
) -> anyhow::Result<ExitCode> {
    refuse_setting_variables()?;
    let catalogue = boutique::catalogue();
    let config = config::load(&args.source())?;
    let insecure = config.cluster.insecure;
    let plan = Plan::new(config, &catalogue)?;
    let file = args.file().ok_or_else(|| {
        crate::exit::UsageError(
            "deploy kube needs a config file (--config FILE): it goes into a ConfigMap".to_owned(),
        )
    })?;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read the config file {}", file.display()))?;
    // Data kept in the pod's emptyDir goes with the pod.
    // A module on several nodes (replicas) is named once.
    let on_each_node: Vec<&str> = placed_modules(&plan)
        .into_iter()
        .filter(|module| {
            matches!(
                plan.storage(&catalogue, module),
                runtime::Storage::OnEachNode(_)
            )
        })
        .collect();
    if !on_each_node.is_empty() {
        to_stderr!(
            "boutique: warning: {} keep their data in the pod's data directory, an emptyDir: it is \
             lost whenever the pod is replaced (an update, an eviction, a drain). For data that must \
             last, give each a database in its config section, e.g. [modules.orders] database = \
             \"postgres://...\"",
            on_each_node.join(", ")
        );
    }
    let data_files = data_files::read(&plan, &catalogue, &text)?;
    let manifests = manifests(&Inputs {
        plan: &plan,
        config_text: &text,
        data_files: &data_files,
        insecure,
        overrides: &args.overrides,
        secret_env,
        image,
        namespace,
    })?;
    super::print(&manifests).context("cannot write the manifests to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// What the manifests are made from.
struct Inputs<'a> {
    plan: &'a Plan,
    config_text: &'a str,
    /// The files the config names for its modules to read.
    data_files: &'a [DataFile],
    insecure: bool,
    overrides: &'a [String],
    /// `--secret-env VAR=SECRET/KEY`, as given.
    secret_env: &'a [String],
    image: &'a str,
    namespace: Option<&'a str>,
}

/// Refuses to write manifests while a `BOUTIQUE__` variable is set here:
/// the checks would see its setting, and the pods would not get it (they
/// get the config file and the `--set`s), so what was checked would not
/// be what runs. A setting the manifests make themselves (the data
/// directory, addresses) does not matter: the pods get theirs.
fn refuse_setting_variables() -> anyhow::Result<()> {
    let variables: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            runtime::config::setting_key(name)
                .is_some_and(|key| set_by_the_manifests(&key).is_none())
        })
        .collect();
    if variables.is_empty() {
        return Ok(());
    }
    Err(crate::exit::UsageError(format!(
        "deploy kube: {} set in this environment, but the pods would not get it: the \
         manifests carry the config file and the --set values only. Give each setting as \
         --set KEY=VALUE (or in the file), then unset the variable",
        variables.join(", ")
    ))
    .into())
}

/// One `--secret-env VAR=SECRET/KEY`, as the pods' environment entry.
/// `modules` are the modules the deployment runs: a setting a Secret gives
/// is one of theirs (`BOUTIQUE__MODULES__ORDERS__DATABASE`), which the
/// manifests do not depend on.
fn secret_env_entry(entry: &str, modules: &[&str]) -> anyhow::Result<(String, Value)> {
    let usage = |why: &str| {
        refused(&format!(
            "--secret-env {entry}: {why}; write VAR=SECRET/KEY, e.g. PGPASSWORD=shop-db/password"
        ))
    };
    let (var, from) = entry
        .split_once('=')
        .ok_or_else(|| usage("no '=' between the variable and the Secret"))?;
    let (secret, key) = from
        .split_once('/')
        .ok_or_else(|| usage("no '/' between the Secret's name and its key"))?;
    let var_ok = var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !var_ok {
        return Err(usage(&format!(
            "'{var}' is not a variable name (letters, digits, '_')"
        )));
    }
    // A Secret's name is a DNS subdomain; its keys are letters, digits,
    // '-', '_' and '.'.
    let secret_ok = !secret.is_empty()
        && secret.len() <= 253
        && secret.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if !secret_ok {
        return Err(usage(&format!(
            "'{secret}' is not a Secret's name (lowercase letters, digits, '-' and '.')"
        )));
    }
    let key_ok = !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !key_ok {
        return Err(usage(&format!(
            "'{key}' is not a key of a Secret (letters, digits, '-', '_' and '.')"
        )));
    }
    if let Some(setting) = runtime::config::setting_key(var) {
        if let Some(why) = set_by_the_manifests(&setting) {
            return Err(refused(&format!(
                "--secret-env {entry}: the manifests set {setting} themselves ({why}); leave it out"
            )));
        }
        // Not checked with the rest of the config (its value is in the
        // Secret): only a module's own setting, of a module that runs.
        let parts: Vec<&str> = setting.split('.').collect();
        let of_a_module = matches!(parts.as_slice(), ["modules", module, field]
            if modules.contains(module)
                && !field.is_empty()
                && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if !of_a_module {
            return Err(refused(&format!(
                "--secret-env {entry}: a Secret may give a module's own setting \
                 (BOUTIQUE__MODULES__MODULE__KEY, of a module the deployment runs: {}), \
                 not {setting}, which the manifests are made without",
                modules.join(", ")
            )));
        }
    }
    let value = json!({
        "name": var,
        "valueFrom": {"secretKeyRef": {"name": secret, "key": key}},
    });
    Ok((var.to_owned(), value))
}

/// Whether a `database` setting is a PostgreSQL URL with a password in
/// it (a SQLite path may hold an `@` or the word `password`, and no
/// secret).
fn is_url_with_password(url: &str) -> bool {
    (url.starts_with("postgres://") || url.starts_with("postgresql://"))
        && storage::holds_password(url)
}

/// The label every object carries.
fn part_of() -> Value {
    json!({"app.kubernetes.io/part-of": "boutique"})
}

/// `boutique-NODE`, checked to be a Kubernetes name.
fn object_name(node: &str) -> anyhow::Result<String> {
    let name = format!("boutique-{node}");
    // The node's name is a label's value too (`boutique/node`), which
    // starts and ends with a letter or digit.
    let valid = name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !node.starts_with('-')
        && !name.ends_with('-');
    if !valid {
        return Err(refused(&format!(
            "node '{node}' cannot name Kubernetes objects (boutique-{node}): use lower-case \
             letters, digits and '-' in node names, starting and ending with a letter or a \
             digit, at most 54 characters"
        )));
    }
    Ok(name)
}

/// Why the manifests set config key `key` themselves, if they do: each
/// pod's addresses, and the paths of what is mounted in it.
fn set_by_the_manifests(key: &str) -> Option<&'static str> {
    match key.split('.').collect::<Vec<_>>().as_slice() {
        ["runtime", "data_dir"] => Some("the pod's volume"),
        ["modules", "frontend", "listen"] => Some("the shop's port in its pod"),
        ["cluster", "tls", "ca" | "cert" | "key"] => Some("the files of the Secret boutique-tls"),
        ["nodes", _, "listen" | "admin"] => Some("the node's ports in its pod"),
        ["nodes", _, "address"] => Some("the node's Service"),
        _ => None,
    }
}

/// `BOUTIQUE__A__B=value` for the config key `a.b`.
fn env_override(key: &str, value: &str) -> Value {
    json!({
        "name": format!("BOUTIQUE__{}", key.replace('.', "__").to_uppercase()),
        "value": value,
    })
}

fn metadata(name: &str, namespace: Option<&str>) -> Value {
    let mut metadata = json!({"name": name, "labels": part_of()});
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    metadata
}

/// Every module the plan places on some node, each once, in name order.
fn placed_modules(plan: &Plan) -> Vec<&'static str> {
    let mut modules: Vec<&'static str> = plan
        .nodes()
        .iter()
        .flat_map(|node| node.modules.iter().copied())
        .collect();
    modules.sort_unstable();
    modules.dedup();
    modules
}

/// A config the manifests cannot be made from (exit code 78, as any
/// config the deployment would refuse).
fn refused(problem: &str) -> anyhow::Error {
    runtime::config::ConfigError::Invalid(vec![problem.to_owned()]).into()
}

/// Every manifest, as one YAML stream.
fn manifests(inputs: &Inputs) -> anyhow::Result<String> {
    let plan = inputs.plan;
    let tls = plan.tls.is_some();
    // A node that listens at all listens on the pod network in its pod.
    let listens = plan.is_split() || plan.nodes().iter().any(|n| n.listen.is_some());
    if !tls && !inputs.insecure && listens {
        return Err(refused(
            "in Kubernetes every node listens on the pod network, beyond loopback: configure \
             [cluster.tls] (certificates from the Secret boutique-tls), or set [cluster] \
             insecure = true to accept traffic that is authenticated only when a connection is made, not encrypted (the \
             manifests then add a NetworkPolicy that admits only the deployment's own pods)",
        ));
    }
    if let Some(cycle) = plan.node_call_cycle() {
        let nodes: Vec<String> = cycle.iter().map(|node| format!("'{node}'")).collect();
        return Err(refused(&format!(
            "the modules of nodes {} call each other round: in Kubernetes a node turns \
             ready once it reaches the nodes it calls, through Services that send only to \
             ready pods, so none of them ever would; place the modules so that calls \
             between nodes go one way (as deploy/kube.toml's do: web calls store and pay)",
            nodes.join(", ")
        )));
    }
    let secret_env = plan.secret_env.clone();
    if listens && secret_env.is_none() {
        return Err(refused(
            "a deployment whose nodes listen needs [cluster] secret_env, the variable the secret is read from",
        ));
    }
    // Each override as the pods get it: an environment variable with the
    // value `--set` gave here (not its TOML text: `"x"` is `x`).
    let mut common_env = Vec::new();
    for entry in inputs.overrides {
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        if let Some(why) = set_by_the_manifests(&key.trim().to_lowercase()) {
            // Both would reach the pods, and theirs, later, would win.
            return Err(refused(&format!(
                "--set {entry}: the manifests set {} themselves ({why}); leave it out",
                key.trim()
            )));
        }
        // In the value as the pods would get it (a TOML string's quotes,
        // of either kind, gone).
        let parsed = runtime::config::override_as_env_value(value.trim());
        let url = parsed.as_deref().unwrap_or(value.trim());
        if key.trim().to_lowercase().ends_with("database") && is_url_with_password(url) {
            return Err(refused(&format!(
                "--set {}=...: the URL holds a password, which would be written into every \
                 pod's environment in plain text; leave it out of the URL and give it from a \
                 Secret: --secret-env PGPASSWORD=SECRET/KEY",
                key.trim()
            )));
        }
        let Some(value) = parsed else {
            return Err(refused(&format!(
                "--set {entry}: the pods get overrides as environment variables, which cannot \
                 hold a list or a table; put it in the config file instead"
            )));
        };
        common_env.push(env_override(key.trim(), &value));
    }
    // The same in the config file: it goes into a ConfigMap, which whoever
    // may read the namespace's settings reads.
    for module in placed_modules(plan) {
        let url = plan
            .module_config(module)
            .and_then(|section| section.clone().into_table().ok())
            .and_then(|table| table.get("database").cloned())
            .and_then(|value| value.into_string().ok());
        if url.as_deref().is_some_and(is_url_with_password) {
            return Err(refused(&format!(
                "[modules.{module}] database: the URL holds a password, which would be written \
                 into the ConfigMap in plain text; leave it out of the URL and give it from a \
                 Secret: --secret-env PGPASSWORD=SECRET/KEY"
            )));
        }
    }

    // Where each node listens in its pod, and the Service name others dial:
    // its configured port, unless that is 0 or one the pod uses already
    // (the admin endpoints', the shop's), since the manifests tell every
    // node where to dial anyway.
    let mut nodes = Vec::new();
    for (index, node) in plan.nodes().iter().enumerate() {
        let configured = node
            .listen
            .map(|a| a.port())
            .filter(|p| *p != 0 && *p != ADMIN_PORT && *p != HTTP_PORT);
        let port = match configured {
            Some(port) => port,
            None => u16::try_from(index + 1)
                .ok()
                .and_then(|n| n.checked_add(7400))
                .ok_or_else(|| refused("more nodes than there are ports to give them"))?,
        };
        nodes.push((node, object_name(&node.name)?, port));
    }
    // The files' too: a changed file changes the pods as a changed config does.
    let mut hashed = Sha256::new();
    hashed.update(inputs.config_text.as_bytes());
    for file in inputs.data_files {
        hashed.update(file.key().as_bytes());
        hashed.update(file.text.len().to_le_bytes());
        hashed.update(file.text.as_bytes());
    }
    let config_hash = format!("{:x}", hashed.finalize());
    let grace_seconds = plan
        .runtime
        .shutdown_grace_ms
        .div_ceil(1000)
        .saturating_add(7);
    for (node, service, port) in &nodes {
        if plan.is_split() {
            common_env.push(env_override(
                &format!("nodes.{}.address", node.name),
                &format!("{service}:{port}"),
            ));
        }
    }
    common_env.push(env_override("runtime.data_dir", DATA_DIR));
    if let Some(var) = &secret_env {
        common_env.push(json!({
            "name": var,
            "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": "secret"}},
        }));
    }
    // Variables from the user's own Secrets, each named once (a second
    // entry for one name would win unsaid).
    let modules = placed_modules(plan);
    // A setting's variable is one name in any case.
    let same = |a: &str, b: &str| {
        let setting = runtime::config::setting_key;
        a == b || setting(a).is_some_and(|key| setting(b) == Some(key))
    };
    for entry in inputs.secret_env {
        let (var, value) = secret_env_entry(entry, &modules)?;
        let taken = common_env.iter().any(|existing| {
            existing["name"]
                .as_str()
                .is_some_and(|name| same(name, &var))
        });
        if taken {
            return Err(refused(&format!(
                "--secret-env {entry}: the pods get {var} already (from another --secret-env, \
                 a --set or the cluster secret); give it once"
            )));
        }
        common_env.push(value);
    }
    if tls {
        common_env.push(env_override("cluster.tls.ca", &format!("{TLS_DIR}/ca.pem")));
        common_env.push(env_override(
            "cluster.tls.cert",
            &format!("{TLS_DIR}/{{node}}.pem"),
        ));
        common_env.push(env_override(
            "cluster.tls.key",
            &format!("{TLS_DIR}/{{node}}.key"),
        ));
    }

    let mut config_map_data = json!({"config.toml": inputs.config_text});
    for file in inputs.data_files {
        config_map_data[file.key()] = json!(file.text);
    }
    let mut docs = vec![json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata("boutique-config", inputs.namespace),
        "data": config_map_data,
    })];
    for (node, name, port) in &nodes {
        let serves_shop = node.modules.contains(&"frontend");
        let mut env = common_env.clone();
        // A file `--set` named for a module this node does not run: the
        // path on the machine the manifests were made on, of no use here.
        for file in inputs
            .data_files
            .iter()
            .filter(|file| !node.modules.contains(&file.module))
        {
            let setting = env_override(&file.config_key(), "");
            env.retain(|existing| existing["name"] != setting["name"]);
        }
        if plan.is_split() || node.listen.is_some() {
            env.push(env_override(
                &format!("nodes.{}.listen", node.name),
                &format!("0.0.0.0:{port}"),
            ));
        }
        env.push(env_override(
            &format!("nodes.{}.admin", node.name),
            &format!("0.0.0.0:{ADMIN_PORT}"),
        ));
        let mut ports = vec![json!({"name": "admin", "containerPort": ADMIN_PORT})];
        let mut service_ports =
            vec![json!({"name": "admin", "port": ADMIN_PORT, "targetPort": "admin"})];
        if plan.is_split() || node.listen.is_some() {
            ports.push(json!({"name": "node", "containerPort": port}));
            service_ports.push(json!({"name": "node", "port": port, "targetPort": "node"}));
        }
        if serves_shop {
            env.push(env_override(
                "modules.frontend.listen",
                &format!("0.0.0.0:{HTTP_PORT}"),
            ));
            ports.push(json!({"name": "http", "containerPort": HTTP_PORT}));
            service_ports.push(json!({"name": "http", "port": 80, "targetPort": "http"}));
        }
        // The root file system is read-only: files go to the data
        // directory, and temporary ones (SQLite's) to /tmp.
        let mut mounts = vec![
            json!({"name": "config", "mountPath": CONFIG_PATH, "subPath": "config.toml", "readOnly": true}),
            json!({"name": "data", "mountPath": DATA_DIR}),
            json!({"name": "tmp", "mountPath": "/tmp"}),
        ];
        let mut volumes = vec![
            json!({"name": "config", "configMap": {"name": "boutique-config"}}),
            json!({"name": "data", "emptyDir": {}}),
            json!({"name": "tmp", "emptyDir": {}}),
        ];
        for file in inputs
            .data_files
            .iter()
            .filter(|file| node.modules.contains(&file.module))
        {
            mounts.push(json!({
                "name": "config",
                "mountPath": file.path_in_pod(),
                "subPath": file.key(),
                "readOnly": true,
            }));
            // In place of a `--set` of the same setting (whose file this is).
            let setting = env_override(&file.config_key(), &file.path_in_pod());
            env.retain(|existing| existing["name"] != setting["name"]);
            env.push(setting);
        }
        if tls {
            // Only the CA's certificate and this node's own pair reach its
            // pod (the Secret holds every node's), readable by the image's
            // user through the pod's fsGroup.
            let own = |file: String| json!({"key": file, "path": file});
            let items = vec![
                own("ca.pem".to_owned()),
                own(format!("{}.pem", node.name)),
                own(format!("{}.key", node.name)),
            ];
            mounts.push(json!({"name": "tls", "mountPath": TLS_DIR, "readOnly": true}));
            volumes.push(json!({"name": "tls", "secret": {
                "secretName": "boutique-tls",
                "items": items,
                "defaultMode": 0o440,
            }}));
        }
        let selector = json!({"app.kubernetes.io/part-of": "boutique", "boutique/node": node.name});
        let probe = |path: &str, period: u32, failures: u32| {
            json!({
                "httpGet": {"path": path, "port": "admin"},
                "periodSeconds": period,
                "failureThreshold": failures,
            })
        };
        docs.push(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(name, inputs.namespace),
            "spec": {
                "replicas": 1,
                // One process per node at a time: the old pod goes before
                // the new one starts (same name, same place in the plan).
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {
                        "labels": selector,
                        // The config is mounted by subPath, which a pod
                        // never sees change: a changed config changes the
                        // template, and so replaces the pods.
                        "annotations": {"boutique/config-sha256": config_hash},
                    },
                    "spec": {
                        "terminationGracePeriodSeconds": grace_seconds,
                        "automountServiceAccountToken": false,
                        // The image's user (Dockerfile); volumes (the TLS
                        // files) are given its group.
                        "securityContext": {
                            "runAsNonRoot": true,
                            "runAsUser": IMAGE_USER,
                            "runAsGroup": IMAGE_USER,
                            "fsGroup": IMAGE_USER,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [{
                            "name": "boutique",
                            "image": inputs.image,
                            "args": ["--config", CONFIG_PATH, "run", "--node", node.name],
                            "ports": ports,
                            "env": env,
                            "volumeMounts": mounts,
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            // Opening the databases (migrations, a slow
                            // PostgreSQL) may take a while: up to five
                            // minutes before liveness counts.
                            "startupProbe": probe("/healthz", 2, 150),
                            "readinessProbe": probe("/readyz", 5, 3),
                            "livenessProbe": probe("/healthz", 10, 3),
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                        }],
                        "volumes": volumes,
                    },
                },
            },
        }));
        docs.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(name, inputs.namespace),
            "spec": {"selector": selector, "ports": service_ports},
        }));
    }
    if listens && !tls {
        let node_ports: Vec<Value> = nodes
            .iter()
            .map(|(_, _, port)| json!({"protocol": "TCP", "port": port}))
            .collect();
        docs.push(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata("boutique-nodes", inputs.namespace),
            "spec": {
                "podSelector": {"matchLabels": part_of()},
                "policyTypes": ["Ingress"],
                "ingress": [
                    // Node ports: only from the deployment's own pods.
                    {"from": [{"podSelector": {"matchLabels": part_of()}}], "ports": node_ports},
                    // The shop and the probes (and the admin endpoints:
                    // metrics, the dashboard): from any source.
                    {"ports": [
                        {"protocol": "TCP", "port": HTTP_PORT},
                        {"protocol": "TCP", "port": ADMIN_PORT},
                    ]},
                ],
            },
        }));
    }
    let mut out = String::new();
    for doc in &docs {
        out.push_str("---\n");
        yaml(&mut out, doc, 0);
    }
    Ok(out)
}

/// Writes `value` as block YAML at `indent`. Strings are double-quoted
/// (JSON's escaping is YAML's), except multi-line ones, written as literal
/// blocks so that the config file in the ConfigMap reads as itself.
fn yaml(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let _ = write!(out, "{pad}{}:", scalar_key(key));
                child(out, value, indent);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                let _ = write!(out, "{pad}-");
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        // The first key on the dash's line, the rest below.
                        let mut first = true;
                        for (key, value) in map {
                            if first {
                                let _ = write!(out, " {}:", scalar_key(key));
                                first = false;
                            } else {
                                let _ = write!(out, "{pad}  {}:", scalar_key(key));
                            }
                            child(out, value, indent + 2);
                        }
                    }
                    other => child(out, other, indent),
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other));
        }
    }
}

/// Writes the value that follows `key:` (or `-`).
fn child(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            yaml(out, value, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            yaml(out, value, indent + 2);
        }
        Value::String(text) if text.contains('\n') => {
            // The indentation given (2): YAML would take it from the
            // first line, wrong for a text whose first line is indented.
            out.push_str(if text.ends_with('\n') {
                " |2\n"
            } else {
                " |2-\n"
            });
            let pad = " ".repeat(indent + 2);
            for line in text.lines() {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "{pad}{line}");
                }
            }
        }
        other => {
            let _ = writeln!(out, " {}", scalar(other));
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        // JSON's quoting is valid YAML for strings, numbers, bools and null.
        other => other.to_string(),
    }
}

/// A key, bare when it is a plain word (`apiVersion`,
/// `app.kubernetes.io/part-of`), else quoted.
fn scalar_key(key: &str) -> String {
    let plain = key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'));
    if plain {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}
