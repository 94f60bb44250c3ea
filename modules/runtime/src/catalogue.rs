//! The catalogue: every module a binary can run, with its type erased.
//!
//! The binary lists its modules once (`Catalogue::new().with::<CatalogModule>()...`).
//! From each [`Module`] type the catalogue keeps the monomorphized functions
//! the runtime needs without knowing the type: check and start the module,
//! make a remote ref to it, trace its API for the fingerprint, call it from
//! JSON. Config validation, node start and `boutique call` all work from here.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::config::Routing;
use crate::dispatch::{BoxFuture, DispatchTable};
use crate::fingerprint::{Fingerprint, SchemaError, SchemaTracer, describe_service};
use crate::json::{JsonCallError, JsonReply};
use crate::module::{Module, StartContext, StartError};
use crate::registry::ServiceRegistry;
use crate::service::{MessageInfo, MethodId, Service};
use crate::service_ref::ServiceRef;
use crate::supervise::{Slot, supervise};
use crate::transport::peer::Peer;
use crate::transport::replicas::Replicas;

/// How a node makes refs to the modules it runs itself.
#[derive(Clone)]
pub(crate) struct LocalRefs {
    /// Route every local call through the codec (a test mode), with
    /// frames of at most this many bytes, as between nodes.
    pub serialized: Option<usize>,
    /// The default call timeout.
    pub timeout: Duration,
    /// The module's replicas on other nodes, if it has any: a call its
    /// local actor cannot take (it is being restarted) goes to one of
    /// them, if it may (see [`Replicas::may_take_unrun`]).
    pub others: Option<Arc<Replicas>>,
}

/// A started module waiting to be registered: adds its endpoints to the
/// dispatch table and its ref to the registry.
pub(crate) type Started = Box<dyn FnOnce(&mut DispatchTable, &mut ServiceRegistry, LocalRefs)>;

type JsonCallFuture = BoxFuture<Result<JsonReply, JsonCallError>>;

/// Starts a module from its config section, once its dependencies are up.
pub(crate) type StartFn =
    fn(Option<&config::Value>, StartContext) -> LocalBoxFuture<Result<Started, StartError>>;

/// A boxed future that stays on its thread.
pub(crate) type LocalBoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T>>>;

/// One module of the catalogue.
pub struct ModuleEntry {
    name: &'static str,
    dependencies: Vec<&'static str>,
    messages: Vec<(&'static str, MethodId)>,
    /// The messages declared with a routing key (`[key = field]`).
    pub(crate) keyed_messages: Vec<&'static str>,
    pub(crate) check_config: fn(Option<&config::Value>) -> Result<(), StartError>,
    /// [`Module::listen_addresses`] for a config section (none if the
    /// section is invalid: `check_config` says why).
    pub(crate) listen_addresses: fn(Option<&config::Value>) -> Vec<std::net::SocketAddr>,
    /// [`Module::storage`] for a config section (as for the default one if
    /// the section is invalid).
    pub(crate) storage: fn(Option<&config::Value>) -> crate::module::Storage,
    /// [`Module::data_files`] for a config section (none if the section
    /// is invalid: `check_config` says why).
    data_files: fn(Option<&config::Value>) -> Vec<(&'static str, std::path::PathBuf)>,
    pub(crate) start: StartFn,
    pub(crate) remote: fn(Vec<Arc<Peer>>, Routing, Duration, &mut ServiceRegistry),
    decode: fn(&[u8]) -> usize,
    describe: fn(&mut SchemaTracer) -> Result<(), SchemaError>,
    json: fn(&ServiceRegistry, &str, serde_json::Value) -> Result<JsonCallFuture, JsonCallError>,
    check_json: fn(&str, &serde_json::Value) -> Result<(), JsonCallError>,
}

impl ModuleEntry {
    fn of<M: Module>() -> Self {
        ModuleEntry {
            name: <M::Service as Service>::NAME,
            dependencies: M::dependencies(),
            messages: <M::Service as Service>::messages()
                .iter()
                .map(|info| (info.name, info.method))
                .collect(),
            keyed_messages: <M::Service as Service>::messages()
                .iter()
                .filter(|info| info.keyed)
                .map(|info| info.name)
                .collect(),
            check_config: |section| checked_config::<M>(section).map(drop),
            listen_addresses: |section| {
                parse_config::<M::Config>(section)
                    .map(|config| M::listen_addresses(&config))
                    .unwrap_or_default()
            },
            storage: |section| {
                let config = parse_config::<M::Config>(section).unwrap_or_default();
                M::storage(&config)
            },
            data_files: |section| {
                parse_config::<M::Config>(section)
                    .map(|config| M::data_files(&config))
                    .unwrap_or_default()
            },
            start: start_module::<M>,
            remote: |mut peers, routing, timeout, registry| {
                let service = match (peers.pop(), peers.is_empty()) {
                    (None, _) => return,
                    (Some(peer), true) => ServiceRef::<M::Service>::remote(peer),
                    (Some(peer), false) => {
                        peers.push(peer);
                        ServiceRef::<M::Service>::replicated(Replicas::new(peers, routing))
                    }
                };
                registry.insert(service.with_timeout(timeout));
            },
            decode: |bytes| {
                <M::Service as Service>::messages()
                    .iter()
                    .map(|info| {
                        let (message, outcome) = (info.decode)(bytes);
                        usize::from(message) + usize::from(outcome)
                    })
                    .sum()
            },
            describe: describe_service::<M::Service>,
            json: json_call::<M::Service>,
            check_json: |message, input| (message_info::<M::Service>(message)?.check_json)(input),
        }
    }

    /// The module's (and its service's) name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where it keeps its state, configured by `section`
    /// ([`Module::storage`]).
    pub fn storage_with(&self, section: Option<&config::Value>) -> crate::module::Storage {
        (self.storage)(section)
    }

    /// The files it reads as it starts, configured by `section`
    /// ([`Module::data_files`]).
    pub fn data_files_with(
        &self,
        section: Option<&config::Value>,
    ) -> Vec<(&'static str, std::path::PathBuf)> {
        (self.data_files)(section)
    }

    /// Where it listens itself (the shop's web server), configured by
    /// `section` ([`Module::listen_addresses`]).
    pub fn listen_addresses_with(
        &self,
        section: Option<&config::Value>,
    ) -> Vec<std::net::SocketAddr> {
        (self.listen_addresses)(section)
    }

    /// The services it calls.
    pub fn dependencies(&self) -> &[&'static str] {
        &self.dependencies
    }

    /// The names of the messages its service handles.
    pub fn messages(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.messages.iter().map(|(name, _)| *name)
    }

    pub(crate) fn methods(&self) -> impl Iterator<Item = (&'static str, MethodId)> + '_ {
        self.messages.iter().copied()
    }
}

impl fmt::Debug for ModuleEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleEntry")
            .field("name", &self.name)
            .field("dependencies", &self.dependencies)
            .finish()
    }
}

fn parse_config<C: serde::de::DeserializeOwned + Default>(
    section: Option<&config::Value>,
) -> Result<C, StartError> {
    match section {
        None => Ok(C::default()),
        // Strictly: `max_lines = true` is refused, not 1.
        Some(value) => crate::config::strict::from_value::<C>(value.clone())
            .map_err(|e| StartError::Config(e.to_string())),
    }
}

/// Module `M`'s config from its section, its values checked
/// ([`Module::check`]).
fn checked_config<M: Module>(section: Option<&config::Value>) -> Result<M::Config, StartError> {
    let config = parse_config::<M::Config>(section)?;
    M::check(&config)?;
    Ok(config)
}

/// Starts module `M`, and a supervisor that starts it again if its actor
/// dies (see `supervise`).
fn start_module<M: Module>(
    section: Option<&config::Value>,
    ctx: StartContext,
) -> LocalBoxFuture<Result<Started, StartError>> {
    let config = checked_config::<M>(section);
    let section = section.cloned();
    Box::pin(async move {
        let service = M::start(config?, ctx.clone()).await?;
        let slot = Slot::new(service);
        let counters = ctx.counters();
        let config = move || checked_config::<M>(section.as_ref());
        actix::spawn(supervise::<M>(Arc::clone(&slot), config, ctx, counters));
        let started: Started = Box::new(move |table, registry, refs| {
            table.host_slot(&slot);
            let service_ref = ServiceRef::from_slot(slot, refs.serialized, refs.others);
            registry.insert(service_ref.with_timeout(refs.timeout));
        });
        Ok(started)
    })
}

fn json_call<S: Service>(
    registry: &ServiceRegistry,
    message: &str,
    input: serde_json::Value,
) -> Result<JsonCallFuture, JsonCallError> {
    let service = registry
        .get::<S>()
        .ok_or_else(|| JsonCallError::UnknownService {
            service: S::NAME.to_owned(),
            known: "(none reachable from here)".to_owned(),
        })?;
    Ok((message_info::<S>(message)?.json)(&service, input))
}

/// `S`'s message named `message`, or the error that lists its messages.
fn message_info<S: Service>(message: &str) -> Result<MessageInfo<S>, JsonCallError> {
    let mut messages = S::messages();
    match messages.iter().position(|info| info.name == message) {
        Some(found) => Ok(messages.swap_remove(found)),
        None => Err(JsonCallError::UnknownMessage {
            service: S::NAME.to_owned(),
            message: message.to_owned(),
            known: messages
                .iter()
                .map(|info| info.name)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Every module a binary can run.
#[derive(Default)]
pub struct Catalogue {
    modules: Vec<ModuleEntry>,
    fingerprint: OnceLock<Result<Fingerprint, SchemaError>>,
}

impl Catalogue {
    /// An empty catalogue.
    pub fn new() -> Self {
        Self::default()
    }

    /// The catalogue with module `M` added.
    ///
    /// # Panics
    ///
    /// If a module of the same name is already in the catalogue: that is a
    /// bug in the binary's list of modules, not something input can cause.
    pub fn with<M: Module>(mut self) -> Self {
        let entry = ModuleEntry::of::<M>();
        assert!(
            self.entry(entry.name).is_none(),
            "module {} is in the catalogue twice",
            entry.name
        );
        self.modules.push(entry);
        self.fingerprint = OnceLock::new();
        self
    }

    /// Tries `bytes` as every message, and every outcome, of every module,
    /// as a node would decode them off the wire; returns how many decoded.
    /// For fuzzing: whatever the bytes, this must not panic, hang, or
    /// build a value of more than `codec::MAX_DECODED_MEMORY` (as the
    /// codec counts it: a growing `Vec` may have reserved up to twice
    /// that when the decode stops).
    pub fn decode_as_every_message(&self, bytes: &[u8]) -> usize {
        self.modules.iter().map(|m| (m.decode)(bytes)).sum()
    }

    /// The modules, in the order they were added.
    pub fn modules(&self) -> &[ModuleEntry] {
        &self.modules
    }

    /// The module of that name.
    pub fn entry(&self, name: &str) -> Option<&ModuleEntry> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// The names of all modules, comma-separated, for messages.
    pub fn names(&self) -> String {
        self.modules
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The text the API fingerprint is computed from.
    pub fn describe(&self) -> Result<String, SchemaError> {
        let mut tracer = SchemaTracer::new();
        // What travels bare in replies, whatever the service: a call
        // error (status 2) and a rejection (status 1).
        tracer.line("runtime".to_owned());
        tracer.trace::<crate::error::CallError>()?;
        tracer.trace::<crate::error::Rejection>()?;
        let mut modules: Vec<&ModuleEntry> = self.modules.iter().collect();
        modules.sort_by_key(|m| m.name);
        for module in modules {
            (module.describe)(&mut tracer)?;
        }
        Ok(tracer.finish())
    }

    /// The API fingerprint (computed once).
    pub fn fingerprint(&self) -> Result<Fingerprint, SchemaError> {
        self.fingerprint
            .get_or_init(|| {
                self.describe()
                    .map(|text| Fingerprint::of_description(&text))
            })
            .clone()
    }

    /// Whether `input` is a `message` of `service`, checked before anything
    /// is started or dialled: the errors [`call_json`](Self::call_json)
    /// would give for an unknown service or message, or JSON that is not
    /// the message (naming the field).
    pub fn check_json(
        &self,
        service: &str,
        message: &str,
        input: &serde_json::Value,
    ) -> Result<(), JsonCallError> {
        (self.json_entry(service)?.check_json)(message, input)
    }

    /// Starts a JSON call of `service`'s `message` through the refs in `registry`.
    pub fn call_json(
        &self,
        registry: &ServiceRegistry,
        service: &str,
        message: &str,
        input: serde_json::Value,
    ) -> Result<JsonCallFuture, JsonCallError> {
        (self.json_entry(service)?.json)(registry, message, input)
    }

    /// The entry of `service`, or the error that lists the services.
    fn json_entry(&self, service: &str) -> Result<&ModuleEntry, JsonCallError> {
        self.entry(service)
            .ok_or_else(|| JsonCallError::UnknownService {
                service: service.to_owned(),
                known: self.names(),
            })
    }
}

impl fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.modules.iter().map(|m| m.name))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    /// A call error and a rejection cross the wire bare, whatever the
    /// service: a change to them is a change of the API (it passed the
    /// handshake unseen).
    #[test]
    fn the_description_holds_what_every_reply_may_carry() {
        let described = super::Catalogue::new().describe().unwrap();
        for name in ["CallError", "NotDelivered", "Rejection", "Unreadable"] {
            assert!(described.contains(name), "{name} not in:\n{described}");
        }
    }
}
