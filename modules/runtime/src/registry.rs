//! A typed map from service to [`ServiceRef`]: what a node (or a test) can
//! hand out to modules.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use crate::call_metrics::CallMetrics;
use crate::service::Service;
use crate::service_ref::ServiceRef;

/// The [`ServiceRef`] of each service, by name. Cloning it is cheap.
#[derive(Default, Clone)]
pub struct ServiceRegistry {
    refs: HashMap<&'static str, Arc<dyn Any + Send + Sync>>,
    /// Where the calls of refs added from now on are counted (a node's
    /// registry), if anywhere.
    metrics: Option<Arc<CallMetrics>>,
}

impl ServiceRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry whose refs count their calls in `metrics`.
    pub(crate) fn measured_by(metrics: Arc<CallMetrics>) -> Self {
        ServiceRegistry {
            refs: HashMap::new(),
            metrics: Some(metrics),
        }
    }

    /// Adds (or replaces) the ref to `S`.
    pub fn insert<S: Service>(&mut self, service: ServiceRef<S>) {
        let service = match &self.metrics {
            // Counted as a client's calls, until a module asks for it.
            Some(metrics) => service.measured(metrics, "client"),
            None => service,
        };
        self.refs.insert(S::NAME, Arc::new(service));
    }

    /// The same registry with the ref to `S` added.
    pub fn with<S: Service>(mut self, service: ServiceRef<S>) -> Self {
        self.insert(service);
        self
    }

    /// The ref to `S`, if there is one.
    pub fn get<S: Service>(&self) -> Option<ServiceRef<S>> {
        self.refs
            .get(S::NAME)
            .and_then(|any| any.downcast_ref::<ServiceRef<S>>())
            .cloned()
    }

    /// True if there is a ref to the service of that name.
    pub fn contains(&self, name: &str) -> bool {
        self.refs.contains_key(name)
    }
}
