//! A node's metrics in the Prometheus text format, encoded by the
//! `prometheus-client` crate: what the node counted (calls served, expired,
//! refused, module restarts) and, per peer node, the connection's state and
//! the calls in flight. The counters are the node's own atomics, read at
//! each scrape, so collecting costs the call paths nothing new. Served as
//! `/metrics` by the binary's admin endpoint; every metric is described in
//! `docs/operations.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::stats::Counters;
use crate::transport::peer::Peer;

/// What a node exposes.
pub(crate) struct NodeCollector {
    pub node: String,
    pub counters: Arc<Counters>,
    pub peers: BTreeMap<String, Arc<Peer>>,
    /// The transport's state, where the bytes moved per peer are counted
    /// (nodes with a transport).
    pub traffic: Option<Arc<crate::transport::Shared>>,
}

impl fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCollector")
            .field("node", &self.node)
            .finish()
    }
}

/// Writes one metric without labels.
fn plain(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> fmt::Result {
    let metric_encoder = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(metric_encoder)
}

/// The states `boutique_peer_state` sets, as `Peer::describe` names them.
const PEER_STATES: [&str; 5] = ["idle", "connecting", "up", "leaving", "down"];

/// Writes one metric with one value per label set.
fn labelled<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: Vec<(Vec<(&'static str, String)>, M)>,
) -> fmt::Result {
    let Some((_, first)) = values.first() else {
        return Ok(());
    };
    let mut metric_encoder = encoder.encode_descriptor(name, help, None, first.metric_type())?;
    for (labels, metric) in &values {
        metric.encode(metric_encoder.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let count = |counter: &std::sync::atomic::AtomicU64| {
            ConstCounter::new(counter.load(Ordering::Relaxed))
        };
        let c = &self.counters;
        plain(
            &mut encoder,
            "boutique_calls_served",
            "Calls from other nodes handed to their module on this node (those whose deadline then passed before they ran are also in boutique_calls_expired_total, when in_service).",
            &count(&c.calls_served),
        )?;
        labelled(
            &mut encoder,
            "boutique_calls_expired",
            "Calls from other nodes answered timed out here, by when: on arrival (not run), or in service (dropped unrun from the actor's mailbox, or still running: what the handler does then stands).",
            vec![
                (
                    vec![("when", "on_arrival".to_owned())],
                    count(&c.expired_on_arrival),
                ),
                (
                    vec![("when", "in_service".to_owned())],
                    count(&c.expired_in_service),
                ),
            ],
        )?;
        labelled(
            &mut encoder,
            "boutique_calls_refused",
            "Calls from other nodes refused, by reason: overloaded (the caller had too many in flight here), not_allowed ([access]) or rejected (a method not served here, or a call that did not decode).",
            vec![
                (
                    vec![("reason", "overloaded".to_owned())],
                    count(&c.refused_overloaded),
                ),
                (
                    vec![("reason", "not_allowed".to_owned())],
                    count(&c.refused_not_allowed),
                ),
                (vec![("reason", "rejected".to_owned())], count(&c.rejected)),
            ],
        )?;
        plain(
            &mut encoder,
            "boutique_calls_overloaded",
            "Calls made from this node that found no room in their peer's in-flight limit before their deadline.",
            &count(&c.calls_overloaded),
        )?;
        plain(
            &mut encoder,
            "boutique_connections_turned_away",
            "Inbound connections closed unread because as many as the node allows were in their handshake already (in all, or from the same address).",
            &count(&c.connections_turned_away),
        )?;
        plain(
            &mut encoder,
            "boutique_module_restarts",
            "Times a module's actor died (a handler panicked) and was started again.",
            &count(&c.restarts),
        )?;
        plain(
            &mut encoder,
            "boutique_panics",
            "Panics in this process (in a handler or anywhere else), logged each as it happened; counted once the binary's panic hook is installed.",
            &ConstCounter::new(crate::panics::count()),
        )?;
        let peers =
            |value: &dyn Fn(&Peer) -> i64| -> Vec<(Vec<(&'static str, String)>, ConstGauge)> {
                self.peers
                    .iter()
                    .map(|(name, peer)| {
                        (vec![("peer", name.clone())], ConstGauge::new(value(peer)))
                    })
                    .collect()
            };
        labelled(
            &mut encoder,
            "boutique_peer_up",
            "1 if this node's connection to the peer node is up and the peer is not leaving, else 0.",
            peers(&|peer| i64::from(peer.takes_calls())),
        )?;
        // A state set: every state of every peer, 1 for the one it is in
        // and 0 for the others (a series that vanished when its state
        // ended read as no data, not as 0, to a query or an alert).
        let states: Vec<_> = self
            .peers
            .iter()
            .flat_map(|(name, peer)| {
                let described = peer.describe();
                let now = described.split(':').next().unwrap_or_default().to_owned();
                PEER_STATES.iter().map(move |state| {
                    (
                        vec![("peer", name.clone()), ("state", (*state).to_owned())],
                        ConstGauge::new(i64::from(*state == now)),
                    )
                })
            })
            .collect();
        labelled(
            &mut encoder,
            "boutique_peer_state",
            "The state of this node's connection to the peer node: 1 for the state it is in, 0 for the others (idle: never needed yet; connecting, up, leaving, down).",
            states,
        )?;
        labelled(
            &mut encoder,
            "boutique_peer_calls_in_flight",
            "Calls from this node to the peer node waiting for their reply.",
            peers(&|peer| i64::try_from(peer.in_flight()).unwrap_or(i64::MAX)),
        )?;
        let connections: Vec<_> = self
            .peers
            .iter()
            .map(|(name, peer)| {
                (
                    vec![("peer", name.clone())],
                    ConstCounter::new(peer.connections_installed()),
                )
            })
            .collect();
        labelled(
            &mut encoder,
            "boutique_peer_connections",
            "Connections to the peer node put in use since this node started (more than 1: it reconnected).",
            connections,
        )?;
        let bytes = |pick: fn(&crate::transport::fault::PeerFaults) -> u64| -> Vec<_> {
            self.peers
                .keys()
                .map(|name| {
                    let value = self
                        .traffic
                        .as_ref()
                        .map_or(0, |shared| pick(&shared.faults.peer(name)));
                    (vec![("peer", name.clone())], ConstCounter::new(value))
                })
                .collect()
        };
        labelled(
            &mut encoder,
            "boutique_peer_sent_bytes",
            "Bytes of frames this node wrote to the peer node (before TLS, if any).",
            bytes(|faults| faults.sent.load(Ordering::Relaxed)),
        )?;
        labelled(
            &mut encoder,
            "boutique_peer_received_bytes",
            "Bytes of frames this node read from the peer node (after TLS, if any).",
            bytes(|faults| faults.received.load(Ordering::Relaxed)),
        )?;
        Ok(())
    }
}

/// An empty registry whose metrics are labelled with the node's name.
pub(crate) fn registry(node: &str) -> Registry {
    Registry::with_labels(std::iter::once((
        std::borrow::Cow::Borrowed("node"),
        std::borrow::Cow::Owned(node.to_owned()),
    )))
}

/// `registry` in the Prometheus text format.
pub(crate) fn encode(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}
