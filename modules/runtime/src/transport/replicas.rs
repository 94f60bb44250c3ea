//! Calls to a module that runs on several nodes (a module listed by several
//! nodes in the config has a replica on each).
//!
//! Each call picks one replica among those not known to be down or leaving:
//!
//! - **least loaded** (the default): two replicas at random, and the one
//!   with fewer calls in flight from this node ("power of two choices":
//!   nearly as good as asking all, at the cost of asking two);
//! - **by key** (`[routing] cart = "by-key"`): a message with a declared key
//!   (`AddItem -> Empty [key = user_id]`) goes to the replica that ranks
//!   highest for that key (rendezvous hashing), so one user's calls meet one
//!   replica while it is up, and only the keys of a replica that goes down
//!   move elsewhere.
//!
//! A call that fails as *not delivered* or *outcome unknown* is tried on
//! another replica only if its message is declared `[idempotent]`, while
//! time and untried replicas remain; any other call reports its failure as
//! it is, never sent twice. The message is encoded once, whichever replica
//! takes it. A node that runs a replica itself calls it, never another.

use std::sync::Arc;

use rand::Rng;

use super::peer::Peer;
use crate::call::CallMeta;
use crate::codec;
use crate::config::Routing;
use crate::error::CallError;
use crate::service::{Outcome, Request, Service, routing_key};

/// The remote replicas of one module, and how to choose among them.
pub(crate) struct Replicas {
    peers: Vec<Arc<Peer>>,
    routing: Routing,
}

impl Replicas {
    pub(crate) fn new(peers: Vec<Arc<Peer>>, routing: Routing) -> Replicas {
        Replicas { peers, routing }
    }

    /// The nodes of the replicas.
    pub(crate) fn nodes(&self) -> Vec<String> {
        self.peers.iter().map(|p| p.name().to_owned()).collect()
    }

    /// The replica to try next: not tried yet, available if any is.
    fn choose(&self, key: Option<u64>, tried: &[usize]) -> Option<usize> {
        let untried: Vec<usize> = (0..self.peers.len())
            .filter(|i| !tried.contains(i))
            .collect();
        let available: Vec<usize> = untried
            .iter()
            .copied()
            .filter(|i| self.peers[*i].is_available())
            .collect();
        let candidates = if available.is_empty() {
            untried
        } else {
            available
        };
        match (candidates.as_slice(), key) {
            ([], _) => None,
            ([only], _) => Some(*only),
            (candidates, Some(key)) => candidates
                .iter()
                .copied()
                .max_by_key(|i| routing_key(&(key, self.peers[*i].name()))),
            (candidates, None) => {
                let mut rng = rand::rng();
                let a = candidates[rng.random_range(0..candidates.len())];
                let b = candidates[rng.random_range(0..candidates.len())];
                Some(if self.peers[b].in_flight() < self.peers[a].in_flight() {
                    b
                } else {
                    a
                })
            }
        }
    }

    /// Sends `message` to a replica, failing over if it may.
    pub(crate) async fn call<M: Request>(
        self: Arc<Self>,
        message: M,
        meta: CallMeta,
        caller: u64,
    ) -> Result<Outcome<M>, CallError> {
        let service = <M::Service as Service>::NAME;
        let key = match self.routing {
            Routing::ByKey => message.routing_key(),
            Routing::LeastLoaded => None,
        };
        let encoded = codec::encode(&message).map_err(|e| {
            CallError::not_delivered(service, format!("{} could not be encoded: {e}", M::NAME))
        })?;
        drop(message);
        let mut tried = Vec::new();
        loop {
            let Some(replica) = self.choose(key, &tried) else {
                return Err(CallError::not_delivered(service, "no replica to call"));
            };
            tried.push(replica);
            let peer = &self.peers[replica];
            let outcome = peer.call_encoded::<M>(&encoded, meta.clone(), caller).await;
            let failed_over = match &outcome {
                Err(
                    error @ (CallError::NotDelivered { .. } | CallError::OutcomeUnknown { .. }),
                ) if M::IDEMPOTENT
                    && !meta.remaining().is_zero()
                    && tried.len() < self.peers.len() =>
                {
                    tracing::info!(
                        module = service,
                        message = M::NAME,
                        call_id = meta.id.0,
                        node = peer.name(),
                        %error,
                        "replica failed; trying another (the message is idempotent)"
                    );
                    true
                }
                _ => false,
            };
            if !failed_over {
                return outcome;
            }
        }
    }
}
