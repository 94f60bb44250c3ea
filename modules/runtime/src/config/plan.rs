//! From a parsed config to a [`Plan`]: where every module runs, checked.
//!
//! Every problem is collected and reported together, each naming its
//! culprit: an unknown module (with a suggestion), a module placed nowhere
//! or twice, a node without an address in a split deployment, two nodes on
//! one address, a split deployment without a secret, a module section that
//! its module refuses, calls that go round in a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, ToSocketAddrs};

use super::listeners::{self, Listener};
use super::{ConfigError, DeploymentConfig, RuntimeConfig};
use crate::catalogue::Catalogue;
use crate::codec::MAX_DECODE_BYTES;
use crate::module::Storage;
use crate::transport::address::DialAddress;

/// In `[access]` lists: clients of the deployment (`boutique call`, test
/// clients), which are no module.
pub const CLIENT: &str = "client";

/// The longest node name (a DNS label's length: with TLS, node names are
/// certificate names).
pub const MAX_NODE_NAME: usize = 63;

/// The highest `max_in_flight_per_peer` (also the most a peer may say it
/// has in flight, in its handshake). It bounds what a node keeps for a
/// peer that stops reading: the refusals of that peer's calls past the
/// node's own limit wait for it, up to this many, about 150 bytes each
/// (some 10 MB), before it is cut off (docs/failures.md, Backpressure).
pub const MAX_IN_FLIGHT_PER_PEER: usize = 65_536;

/// The smallest `max_frame_bytes` a config may give, and a peer may say in
/// the handshake (the largest is the codec's `MAX_DECODE_BYTES`): one
/// range, so that nodes of valid configs never refuse each other.
pub const MIN_FRAME_BYTES: usize = 4096;

/// Whether `name` may name a node: 1 to [`MAX_NODE_NAME`] lower-case
/// letters, digits, `-` and `_`. Lower case: environment variables name a
/// node in upper case and are read back in lower case, so a node named
/// `Web` could not be set from the environment. The handshake holds the
/// name a dialer gives to the same rule.
pub fn is_node_name(name: &str) -> bool {
    (1..=MAX_NODE_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A validated deployment.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The cluster name.
    pub cluster: String,
    /// The variable holding the cluster secret.
    pub secret_env: Option<String>,
    /// TLS between nodes, if configured.
    pub tls: Option<super::TlsConfig>,
    /// Runtime timeouts and limits.
    pub runtime: RuntimeConfig,
    nodes: Vec<NodePlan>,
    dependencies: Vec<(&'static str, &'static str)>,
    modules: BTreeMap<String, config::Value>,
    access: BTreeMap<&'static str, Vec<String>>,
    routing: BTreeMap<&'static str, Routing>,
    warnings: Vec<String>,
}

/// How calls to a replicated module choose a replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Routing {
    /// The replica with fewer calls in flight, of two picked at random
    /// (the default).
    #[default]
    LeastLoaded,
    /// All calls with the same key (a message field declared with
    /// `[key = field]`) to the same replica while it is up; calls without
    /// a key as `LeastLoaded`.
    ByKey,
}

/// One node of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// Its name.
    pub name: String,
    /// Where it listens for other nodes, if anywhere.
    pub listen: Option<SocketAddr>,
    /// Its modules, in start order (dependencies first).
    pub modules: Vec<&'static str>,
    /// Where it serves its admin endpoints, if anywhere.
    pub admin: Option<SocketAddr>,
    /// Where other nodes dial it, if not at its listen address.
    pub address: Option<DialAddress>,
}

impl NodePlan {
    /// Where other nodes dial it: its `address`, else its listen address
    /// unless that is port 0 (then it cannot be dialled, but may dial).
    pub fn dial_address(&self) -> Option<DialAddress> {
        self.address.clone().or_else(|| {
            self.listen
                .filter(|a| a.port() != 0)
                .map(DialAddress::Socket)
        })
    }
}

/// A module-to-module call that crosses the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    /// The calling module.
    pub caller: &'static str,
    /// Its node.
    pub caller_node: String,
    /// The called module.
    pub callee: &'static str,
    /// Its node.
    pub callee_node: String,
}

impl Plan {
    /// Checks `config` against the modules in `catalogue`.
    pub fn new(config: DeploymentConfig, catalogue: &Catalogue) -> Result<Plan, ConfigError> {
        let mut problems = Vec::new();
        let known: Vec<&'static str> = catalogue.modules().iter().map(|m| m.name()).collect();

        if config.nodes.is_empty() {
            problems.push(
                "no nodes are configured; add one, e.g. [nodes.main] with modules = [\"*\"]"
                    .to_owned(),
            );
        }
        if config.cluster.name.trim().is_empty() {
            problems.push("[cluster] name is empty".to_owned());
        }
        check_runtime(&config.runtime, &mut problems);
        check_logging(&config.logging, &mut problems);
        if let Some(endpoint) = &config.telemetry.otlp_endpoint
            && let Err(problem) = super::check_otlp_endpoint(endpoint)
        {
            problems.push(problem.0);
        }

        // Placement: which node lists which module.
        let mut placed: BTreeMap<&'static str, Vec<&str>> = BTreeMap::new();
        let mut wildcard: Vec<&str> = Vec::new();
        for (node, node_config) in &config.nodes {
            if !is_node_name(node) {
                problems.push(format!(
                    "node name '{node}' may only use lower-case letters, digits, '-' and '_', \
                     at most {MAX_NODE_NAME} of them"
                ));
            }
            if node == CLIENT {
                // The name clients (`boutique call`) go by: in `[access]`
                // lists, and as the certificate `boutique certs` writes
                // for them, which a node of that name would share.
                problems.push(format!(
                    "node name '{CLIENT}' is reserved for clients such as boutique call; name the node otherwise"
                ));
            }
            if node_config.modules.is_empty() {
                problems.push(format!(
                    "node '{node}' runs no modules; list some, or remove the node"
                ));
            }
            let mut seen = BTreeSet::new();
            for module in &node_config.modules {
                if !seen.insert(module.as_str()) {
                    problems.push(format!("node '{node}' lists module '{module}' twice"));
                    continue;
                }
                if module == "*" {
                    wildcard.push(node);
                    continue;
                }
                match known.iter().find(|k| **k == module) {
                    Some(name) => placed.entry(name).or_default().push(node),
                    None => problems.push(unknown_module(
                        &format!("node '{node}' lists"),
                        module,
                        &known,
                    )),
                }
            }
        }
        if wildcard.len() > 1 {
            problems.push(format!(
                "nodes {} all list \"*\"; only one node may take the modules nobody else lists",
                quoted(&wildcard)
            ));
        }
        // A module listed by several nodes has a replica on each.
        let mut nodes_of: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for module in &known {
            match (placed.get(module), wildcard.first()) {
                (Some(nodes), _) => {
                    nodes_of.insert(module, nodes.iter().map(|n| (*n).to_owned()).collect());
                }
                (None, Some(node)) => {
                    nodes_of.insert(module, vec![(*node).to_owned()]);
                }
                (None, None) => problems.push(format!(
                    "module '{module}' is placed on no node; add it to a node's modules (or use \"*\")"
                )),
            }
        }
        // A node of "*" alone, when every module is listed elsewhere, would
        // run nothing, and still need an address and the secret.
        for node in &wildcard {
            let runs_something = nodes_of
                .values()
                .any(|nodes| nodes.iter().any(|n| n == *node));
            if !runs_something {
                problems.push(format!(
                    "node '{node}' lists only \"*\", but the other nodes list every module, so it \
                     would run none; remove the node, or take modules off the others"
                ));
            }
        }
        // How calls choose among a module's replicas.
        let mut routing: BTreeMap<&'static str, Routing> = BTreeMap::new();
        for (module, text) in &config.routing {
            let Some(module) = known.iter().find(|k| **k == module) else {
                problems.push(unknown_module("[routing] names", module, &known));
                continue;
            };
            match text.as_str() {
                "least-loaded" => {
                    routing.insert(module, Routing::LeastLoaded);
                }
                "by-key" => {
                    // A call with no key goes least-loaded: with none
                    // keyed, by-key would route nothing by key (and would
                    // silence the warning about state on each node).
                    let keyed = catalogue
                        .entry(module)
                        .is_some_and(|entry| !entry.keyed_messages.is_empty());
                    if keyed {
                        routing.insert(module, Routing::ByKey);
                    } else {
                        problems.push(format!(
                            "[routing] {module} = \"by-key\": no message of {module} declares a \
                             routing key ([key = field] in its service! declaration), so every \
                             call would go least-loaded; route it \"least-loaded\", or declare \
                             the keys"
                        ));
                    }
                }
                other => problems.push(format!(
                    "[routing] {module} = \"{other}\": use \"least-loaded\" or \"by-key\""
                )),
            }
        }

        // Module sections: known modules only, each checked by its module.
        for (module, section) in &config.modules {
            match catalogue.entry(module) {
                Some(entry) => {
                    match (entry.check_config)(Some(section)) {
                        Ok(()) => {}
                        // Said once: the message is a config problem already.
                        Err(crate::StartError::Config(why)) => {
                            problems.push(format!("[modules.{module}]: {why}"));
                        }
                        Err(e) => problems.push(format!("[modules.{module}]: {e}")),
                    }
                }
                None => problems.push(unknown_module(
                    &format!("[modules.{module}] configures"),
                    module,
                    &known,
                )),
            }
        }

        // Addresses and the secret.
        let mut listens: Vec<(String, Option<SocketAddr>)> = Vec::new();
        for (node, node_config) in &config.nodes {
            let listen = match &node_config.listen {
                None => None,
                Some(text) => match parse_address(text) {
                    Ok(addr) => Some(addr),
                    Err(problem) => {
                        problems.push(format!(
                            "node '{node}': listen = '{text}' {problem} (e.g. 127.0.0.1:7401)"
                        ));
                        None
                    }
                },
            };
            listens.push((node.clone(), listen));
        }
        let split = config.nodes.len() > 1;
        if split {
            for (node, node_config) in &config.nodes {
                if node_config.listen.is_none() {
                    problems.push(format!(
                        "node '{node}' has no listen address; in a split deployment every node needs one"
                    ));
                }
            }
        }
        let mut addresses: BTreeMap<String, DialAddress> = BTreeMap::new();
        for (node, node_config) in &config.nodes {
            if let Some(text) = &node_config.address {
                match DialAddress::parse(text) {
                    Some(address) => {
                        addresses.insert(node.clone(), address);
                    }
                    None => problems.push(format!(
                        "node '{node}': address = '{text}' is not HOST:PORT with a port other than 0 \
                         (e.g. store.boutique.svc:7402)"
                    )),
                }
            }
        }
        let mut admins: BTreeMap<String, SocketAddr> = BTreeMap::new();
        for (node, node_config) in &config.nodes {
            if let Some(text) = &node_config.admin {
                match parse_address(text) {
                    Ok(addr) => {
                        admins.insert(node.clone(), addr);
                    }
                    Err(problem) => problems.push(format!(
                        "node '{node}': admin = '{text}' {problem} (e.g. 127.0.0.1:9400)"
                    )),
                }
            }
        }
        let mut listeners = Vec::new();
        for (node, listen) in &listens {
            if let Some(addr) = listen {
                listeners.push(Listener::node(node, *addr));
            }
        }
        for (node, addr) in &admins {
            listeners.push(Listener::admin(node, *addr));
        }
        for (module, nodes) in &nodes_of {
            let Some(entry) = catalogue.entry(module) else {
                continue;
            };
            for addr in (entry.listen_addresses)(config.modules.get(*module)) {
                for node in nodes {
                    listeners.push(Listener::module(node, module, addr));
                }
            }
        }
        listeners::check(&listeners, listeners::Hosts::Separate, &mut problems);
        if config
            .cluster
            .secret_env
            .as_deref()
            .is_none_or(|v| v.trim().is_empty())
        {
            if split {
                problems.push(format!(
                    "this deployment splits its modules over {} nodes, but [cluster] secret_env is not set; \
                     nodes authenticate each other with a shared secret: add secret_env = \"BOUTIQUE_SECRET\" \
                     under [cluster] and set that variable on every node",
                    config.nodes.len()
                ));
            } else if let Some((node, _)) = listens.iter().find(|(_, l)| l.is_some()) {
                problems.push(format!(
                    "node '{node}' listens for other nodes, but [cluster] secret_env is not set; \
                     add secret_env = \"BOUTIQUE_SECRET\" under [cluster] and set that variable"
                ));
            }
        }
        if let Some(problem) = config
            .cluster
            .secret_env
            .as_deref()
            .and_then(super::secret_env_problem)
        {
            problems.push(problem);
        }

        // Dependencies: every one must exist, and they must not form a cycle.
        let mut dependencies = Vec::new();
        for entry in catalogue.modules() {
            for dependency in entry.dependencies() {
                if catalogue.entry(dependency).is_none() {
                    problems.push(format!(
                        "module '{}' depends on '{dependency}', which this binary does not have",
                        entry.name()
                    ));
                } else {
                    dependencies.push((entry.name(), *dependency));
                }
            }
        }
        // Without TLS, traffic is readable: only loopback, unless the
        // config says it accepts that.
        if config.cluster.tls.is_none() && !config.cluster.insecure {
            for (node, listen) in &listens {
                if let Some(addr) = listen.filter(|a| !a.ip().is_loopback()) {
                    problems.push(format!(
                        "node '{node}' listens on {addr}, beyond this machine, without TLS: the traffic \
                         between nodes could be read, and calls injected into it, on the network. Configure [cluster.tls] \
                         (`boutique certs DIR` writes certificates to start with), or set \
                         insecure = true under [cluster] to accept this"
                    ));
                }
            }
        }
        if config.cluster.tls.is_some() {
            for node in config.nodes.keys() {
                if !crate::transport::tls::is_certificate_name(node) {
                    problems.push(format!(
                        "node '{node}': with TLS, node names are certificate names, so letters, digits \
                         and inner '-' only, and not a number (`1`, `0x1f`: TLS would read it as \
                         an address)"
                    ));
                }
            }
        }

        // Access: known services and callers, and no module forbidden to
        // call what it depends on.
        let mut access: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for (service, callers) in &config.access {
            let Some(service) = known.iter().find(|k| **k == service) else {
                problems.push(unknown_module("[access] names", service, &known));
                continue;
            };
            for caller in callers {
                if caller != CLIENT && !known.contains(&caller.as_str()) {
                    problems.push(format!(
                        "[access] {service}: '{caller}' is not a module of this binary (nor \"{CLIENT}\", for clients such as `boutique call`)"
                    ));
                }
            }
            access.insert(service, callers.clone());
        }
        for (caller, callee) in &dependencies {
            if let Some(callers) = access.get(callee)
                && !callers.iter().any(|c| c == caller)
            {
                problems.push(format!(
                    "module '{caller}' calls '{callee}', but [access] {callee} = {callers:?} does not allow it"
                ));
            }
        }

        let order = match start_order(&known, &dependencies) {
            Ok(order) => order,
            Err(cycle) => {
                problems.push(format!(
                    "modules {} call each other in a cycle; they could not be started in order",
                    quoted(&cycle)
                ));
                known.clone()
            }
        };

        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        let warnings = replicated_state(catalogue, &config.modules, &nodes_of, &routing);
        let nodes = listens
            .into_iter()
            .map(|(name, listen)| NodePlan {
                modules: order
                    .iter()
                    .copied()
                    .filter(|m| nodes_of.get(m).is_some_and(|nodes| nodes.contains(&name)))
                    .collect(),
                admin: admins.get(&name).copied(),
                address: addresses.get(&name).cloned(),
                name,
                listen,
            })
            .collect();
        Ok(Plan {
            cluster: config.cluster.name,
            secret_env: config.cluster.secret_env,
            tls: config.cluster.tls,
            runtime: config.runtime,
            nodes,
            dependencies,
            modules: config.modules,
            access,
            routing,
            warnings,
        })
    }

    /// The nodes, sorted by name.
    pub fn nodes(&self) -> &[NodePlan] {
        &self.nodes
    }

    /// The node of that name.
    pub fn node(&self, name: &str) -> Result<&NodePlan, ConfigError> {
        self.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            ConfigError::Invalid(vec![format!(
                "there is no node '{name}'; the nodes are: {}",
                self.node_names()
            )])
        })
    }

    /// The node that runs `module` (the first, if it has replicas).
    pub fn node_of(&self, module: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.modules.contains(&module))
    }

    /// Every node that runs `module`: one, or one per replica.
    pub fn nodes_of(&self, module: &str) -> Vec<&NodePlan> {
        self.nodes
            .iter()
            .filter(|n| n.modules.contains(&module))
            .collect()
    }

    /// What the deployment may get wrong without being invalid (a module
    /// with state on each node, placed on several): `boutique plan` shows
    /// them, and every node logs them at start.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// How calls to `module` choose among its replicas.
    pub fn routing(&self, module: &str) -> Routing {
        self.routing.get(module).copied().unwrap_or_default()
    }

    /// The same plan, except that node `node` runs only `module` and the
    /// modules of that node it needs, directly or not, in start order.
    /// `boutique call` uses it to start what one call needs rather than a
    /// whole node (which may hold a web server on a fixed port).
    pub fn narrowed_to(&self, node: &str, module: &str) -> Plan {
        let mut plan = self.clone();
        let Some(target) = plan.nodes.iter_mut().find(|n| n.name == node) else {
            return plan;
        };
        let mut needed: Vec<&str> = vec![module];
        let mut next = 0;
        while let Some(&caller) = needed.get(next) {
            next += 1;
            for &(from, to) in &self.dependencies {
                if from == caller && target.modules.contains(&to) && !needed.contains(&to) {
                    needed.push(to);
                }
            }
        }
        target.modules.retain(|m| needed.contains(m));
        plan
    }

    /// Who may call `service`, if the config says (`[access]`); the name
    /// [`CLIENT`] stands for clients such as `boutique call`.
    pub fn allowed_callers(&self, service: &str) -> Option<&[String]> {
        self.access.get(service).map(Vec::as_slice)
    }

    /// True if the modules are spread over more than one node.
    pub fn is_split(&self) -> bool {
        self.nodes.len() > 1
    }

    /// Every module-to-module call that crosses from one node to another.
    pub fn crossings(&self) -> Vec<Crossing> {
        let mut crossings = Vec::new();
        for (caller, callee) in &self.dependencies {
            for from in self.nodes_of(caller) {
                // A replica on the caller's own node is called there.
                let callees = self.nodes_of(callee);
                if callees.iter().any(|to| to.name == from.name) {
                    continue;
                }
                for to in callees {
                    crossings.push(Crossing {
                        caller,
                        caller_node: from.name.clone(),
                        callee,
                        callee_node: to.name.clone(),
                    });
                }
            }
        }
        crossings
    }

    /// The nodes in an order where every node starts after the nodes it
    /// calls (when the calls between nodes allow one): how to start a split
    /// deployment whose addresses are only known once each node listens.
    pub fn node_start_order(&self) -> Vec<&NodePlan> {
        self.with_node_calls(|names, calls| {
            let order = start_order(names, calls).unwrap_or_else(|_| names.to_vec());
            order
                .iter()
                .filter_map(|name| self.nodes.iter().find(|n| n.name == *name))
                .collect()
        })
    }

    /// The nodes on cycles of calls between nodes (`a` calls `b`, which
    /// calls `a`), in the config's order; `None` if the calls between nodes
    /// go one way. A node that only calls into a cycle, or is only called
    /// from one, is not on it.
    pub fn node_call_cycle(&self) -> Option<Vec<String>> {
        self.with_node_calls(|names, calls| {
            on_cycles(names, calls).map(|left| left.into_iter().map(str::to_owned).collect())
        })
    }

    /// `f` of the nodes' names and of the calls between them (caller
    /// node, callee node).
    fn with_node_calls<'a, T>(&'a self, f: impl FnOnce(&[&'a str], &[(&str, &str)]) -> T) -> T {
        let crossings = self.crossings();
        let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        let calls: Vec<(&str, &str)> = crossings
            .iter()
            .map(|c| (c.caller_node.as_str(), c.callee_node.as_str()))
            .collect();
        f(&names, &calls)
    }

    /// The clashes among the addresses the nodes listen on if they all run
    /// on one machine, as `boutique up` runs them (see `listeners`): empty
    /// if there are none. `Plan::new` has checked them for nodes on
    /// machines of their own.
    pub fn clashes_on_one_host(&self, catalogue: &Catalogue) -> Vec<String> {
        let mut listeners = Vec::new();
        for node in &self.nodes {
            if let Some(addr) = node.listen {
                listeners.push(Listener::node(&node.name, addr));
            }
            if let Some(addr) = node.admin {
                listeners.push(Listener::admin(&node.name, addr));
            }
            for module in &node.modules {
                for addr in self.listen_addresses(catalogue, module) {
                    listeners.push(Listener::module(&node.name, module, addr));
                }
            }
        }
        let mut problems = Vec::new();
        listeners::check(&listeners, listeners::Hosts::One, &mut problems);
        problems
    }

    /// A module's config section, if the config has one.
    pub fn module_config(&self, module: &str) -> Option<&config::Value> {
        self.modules.get(module)
    }

    /// Where module `module` listens itself under this config (the shop's
    /// web server; none for a module the catalogue does not have).
    pub fn listen_addresses(&self, catalogue: &Catalogue, module: &str) -> Vec<SocketAddr> {
        catalogue.entry(module).map_or_else(Vec::new, |entry| {
            entry.listen_addresses_with(self.module_config(module))
        })
    }

    /// Where module `module` keeps its state under this config (nothing,
    /// for a module the catalogue does not have).
    pub fn storage(&self, catalogue: &Catalogue, module: &str) -> Storage {
        catalogue.entry(module).map_or(Storage::Nothing, |entry| {
            entry.storage_with(self.module_config(module))
        })
    }

    /// The files module `module` reads as it starts under this config,
    /// each with the setting that names it (see `Module::data_files`).
    pub fn data_files(
        &self,
        catalogue: &Catalogue,
        module: &str,
    ) -> Vec<(&'static str, std::path::PathBuf)> {
        catalogue.entry(module).map_or_else(Vec::new, |entry| {
            entry.data_files_with(self.module_config(module))
        })
    }

    fn node_names(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The items on cycles of `dependencies` (`(a, b)`: `a` needs `b`), in
/// `items`' order; `None` if there is none. What [`start_order`] cannot
/// order is the cycles and the items that need them; of those, the ones
/// none of the rest needs go, until only items on cycles are left.
fn on_cycles<'a>(items: &[&'a str], dependencies: &[(&'a str, &'a str)]) -> Option<Vec<&'a str>> {
    let mut left = start_order(items, dependencies).err()?;
    loop {
        let kept: Vec<&str> = left
            .iter()
            .copied()
            .filter(|item| {
                dependencies
                    .iter()
                    .any(|(needs, needed)| needed == item && left.contains(needs))
            })
            .collect();
        if kept.len() == left.len() {
            return Some(left);
        }
        left = kept;
    }
}

/// Orders `items` so that each comes after everything it depends on
/// (`(item, dependency)` pairs), keeping the given order otherwise. Returns
/// the items on a cycle if there is one.
fn start_order<'a>(
    items: &[&'a str],
    dependencies: &[(&'a str, &'a str)],
) -> Result<Vec<&'a str>, Vec<&'a str>> {
    let mut order = Vec::with_capacity(items.len());
    let mut remaining: Vec<&'a str> = items.to_vec();
    while !remaining.is_empty() {
        let ready = remaining.iter().position(|item| {
            dependencies
                .iter()
                .filter(|(from, _)| from == item)
                .all(|(_, to)| order.contains(to) || !items.contains(to) || to == item)
        });
        match ready {
            Some(index) => order.push(remaining.remove(index)),
            None => return Err(remaining),
        }
    }
    Ok(order)
}

/// `[logging] level`: a filter the binary can read (it would fall back to
/// its default level, with only a warning); and a bare word that is no
/// level is a mistyped level (`verbose`, `warning`), though the filter
/// syntax would read it as a target, and log next to nothing.
fn check_logging(logging: &crate::config::LoggingConfig, problems: &mut Vec<String>) {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let Some(level) = &logging.level else { return };
    if let Err(error) = tracing_subscriber::EnvFilter::try_new(level) {
        problems.push(format!(
            "[logging] level = {level:?} is not a log filter ({error}): give a level (info) or \
             directives (warn,frontend=debug)"
        ));
        return;
    }
    for directive in level.split(',').map(str::trim) {
        let bare = !directive.is_empty() && !directive.contains(['=', '[', '{']);
        if bare && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(directive)) {
            problems.push(format!(
                "[logging] level = {level:?}: '{directive}' is no level (trace, debug, info, warn, \
                 error or off); for the lines of one target, write '{directive}=debug'"
            ));
        }
    }
}

/// The longest timeout, interval or grace a config may give.
const ONE_DAY_MS: u64 = 24 * 60 * 60 * 1000;

fn check_runtime(runtime: &RuntimeConfig, problems: &mut Vec<String>) {
    for (name, value) in [
        ("call_timeout_ms", runtime.call_timeout_ms),
        ("connect_timeout_ms", runtime.connect_timeout_ms),
        ("handshake_timeout_ms", runtime.handshake_timeout_ms),
        ("reconnect_min_ms", runtime.reconnect_min_ms),
        ("reconnect_max_ms", runtime.reconnect_max_ms),
        ("heartbeat_interval_ms", runtime.heartbeat_interval_ms),
        ("failure_timeout_ms", runtime.failure_timeout_ms),
    ] {
        if value == 0 {
            problems.push(format!("[runtime] {name} must be more than 0"));
        } else if value > ONE_DAY_MS {
            // A heartbeat a week apart turns failure detection off, and a
            // timeout of 2^64 ms is none.
            problems.push(format!(
                "[runtime] {name} = {value} is more than a day ({ONE_DAY_MS} ms)"
            ));
        }
    }
    if runtime.shutdown_grace_ms > ONE_DAY_MS {
        problems.push(format!(
            "[runtime] shutdown_grace_ms = {} is more than a day ({ONE_DAY_MS} ms)",
            runtime.shutdown_grace_ms
        ));
    }
    if runtime.reconnect_min_ms > runtime.reconnect_max_ms {
        problems.push(format!(
            "[runtime] reconnect_min_ms ({}) is more than reconnect_max_ms ({})",
            runtime.reconnect_min_ms, runtime.reconnect_max_ms
        ));
    }
    if !(1..=MAX_IN_FLIGHT_PER_PEER).contains(&runtime.max_in_flight_per_peer) {
        problems.push(format!(
            "[runtime] max_in_flight_per_peer = {} is out of range (1 to {MAX_IN_FLIGHT_PER_PEER})",
            runtime.max_in_flight_per_peer
        ));
    }
    // Saturating: an interval of 2^63 ms or more (from `--set` or the
    // environment, which are not limited to TOML's i64) must be refused,
    // not wrapped to 0 and let through.
    if runtime.failure_timeout_ms < runtime.heartbeat_interval_ms.saturating_mul(2) {
        problems.push(format!(
            "[runtime] failure_timeout_ms ({}) must be at least twice heartbeat_interval_ms ({}), \
             or one late heartbeat would declare a live peer dead",
            runtime.failure_timeout_ms, runtime.heartbeat_interval_ms
        ));
    }
    if !(MIN_FRAME_BYTES..=MAX_DECODE_BYTES).contains(&runtime.max_frame_bytes) {
        problems.push(format!(
            "[runtime] max_frame_bytes = {} is out of range ({MIN_FRAME_BYTES} to {MAX_DECODE_BYTES})",
            runtime.max_frame_bytes
        ));
    }
}

/// A listen or admin address: an IP address and port, or a host name
/// this machine resolves now, and a port. The error says which part is
/// wrong, to follow the quoted address in a problem.
///
/// A name that does not resolve is a config problem (exit 78, which `up`
/// does not restart), not a passing one: these are addresses to bind on
/// this machine, which are IP addresses or names in its own hosts file
/// (`localhost`), so a lookup that fails means a mistyped name, not a
/// slow DNS server.
fn parse_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let has_port = text
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !has_port {
        return Err("is not HOST:PORT".to_owned());
    }
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| "names a host with no address".to_owned()),
        Err(e) => Err(format!(
            "names a host this machine cannot resolve ({e}); give an IP address"
        )),
    }
}

/// Warnings for modules placed on several nodes that keep their state on
/// each node (DESIGN: "a stateful module needs a store shared by its
/// replicas (or key routing), and the config check says so"). Warnings,
/// not errors: replicas on one machine, with one data directory, do share
/// a SQLite file, and the config cannot tell machines apart.
fn replicated_state(
    catalogue: &Catalogue,
    sections: &BTreeMap<String, config::Value>,
    nodes_of: &BTreeMap<&'static str, Vec<String>>,
    routing: &BTreeMap<&'static str, Routing>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for (module, nodes) in nodes_of.iter().filter(|(_, nodes)| nodes.len() > 1) {
        if routing.get(module) == Some(&Routing::ByKey) {
            continue;
        }
        let Some(entry) = catalogue.entry(module) else {
            continue;
        };
        if let Storage::OnEachNode(where_kept) = entry.storage_with(sections.get(*module)) {
            let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
            // Routing by key is a remedy only for a service with keys.
            let or_by_key = if entry.keyed_messages.is_empty() {
                String::new()
            } else {
                format!(" or route calls by key ([routing] {module} = \"by-key\")")
            };
            warnings.push(format!(
                "module '{module}' runs on nodes {} and keeps its state in {where_kept}: \
                 replicas on different machines do not see each other's writes (only replicas \
                 on one machine, with one data directory, share it); give them a database they \
                 share ([modules.{module}] database = \"postgres://...\"){or_by_key}",
                quoted(&nodes)
            ));
        }
    }
    warnings
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_module(context: &str, module: &str, known: &[&str]) -> String {
    let suggestion = known
        .iter()
        .map(|k| (edit_distance(module, k), k))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default();
    format!(
        "{context} module '{module}', which does not exist{suggestion}; the modules are: {}",
        known.join(", ")
    )
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("catalog", "catalog"), 0);
        assert_eq!(edit_distance("catalgo", "catalog"), 2);
        assert_eq!(edit_distance("cart", "carts"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn only_the_items_on_a_cycle_are_named_as_on_it() {
        // d needs a, which is on the cycle a -> b -> a; c needs nothing.
        let deps = [("a", "b"), ("b", "a"), ("d", "a"), ("b", "c")];
        assert_eq!(
            on_cycles(&["a", "b", "c", "d"], &deps),
            Some(vec!["a", "b"])
        );
        assert_eq!(on_cycles(&["a", "b"], &[("a", "b")]), None);
    }

    #[test]
    fn start_order_puts_dependencies_first_and_finds_cycles() {
        let order = start_order(&["a", "b", "c"], &[("a", "b"), ("b", "c")]).unwrap();
        assert_eq!(order, vec!["c", "b", "a"]);
        let cycle = start_order(&["a", "b", "c"], &[("a", "b"), ("b", "a")]).unwrap_err();
        assert_eq!(cycle, vec!["a", "b"]);
    }

    #[test]
    fn an_address_that_does_not_resolve_is_told_apart_from_one_that_is_not_host_port() {
        assert_eq!(
            parse_address("127.0.0.1:7401"),
            Ok("127.0.0.1:7401".parse().unwrap())
        );
        assert!(parse_address("localhost:7401").is_ok_and(|a| a.port() == 7401));
        for not_one in [
            "nowhere",
            "localhost",
            ":7401",
            "localhost:port",
            "localhost:70000",
        ] {
            assert_eq!(
                parse_address(not_one),
                Err("is not HOST:PORT".to_owned()),
                "{not_one}"
            );
        }
        // `.invalid` never resolves (RFC 2606).
        let unresolved = parse_address("node-a.invalid:7401").unwrap_err();
        assert!(
            unresolved.starts_with("names a host this machine cannot resolve ("),
            "{unresolved}"
        );
    }
}
