//! Calls to a module that runs on several nodes (a module listed by several
//! nodes in the config has a replica on each).
//!
//! Each call picks one replica among those not known to be down or leaving:
//!
//! - **least loaded** (the default): two replicas at random, and the one
//!   with fewer calls in flight from this node ("power of two choices":
//!   nearly as good as asking all, at the cost of asking two), leaving out
//!   a replica never called yet (dialed in the background) or whose first
//!   dial is under way while others can take calls;
//! - **by key** (`[routing] cart = "by-key"`): a message with a declared key
//!   (`AddItem -> Empty [key = user_id]`) goes to the replica that ranks
//!   highest for that key (rendezvous hashing), so one user's calls meet one
//!   replica while it is up, and only the keys of a replica that goes down
//!   move elsewhere.
//!
//! A call that fails as *not delivered* or *outcome unknown* is tried on
//! another replica if its message is declared `[idempotent]`, while time
//! and untried replicas remain. Any call that surely did not run (*not
//! delivered*, *overloaded*: the replica's module restarting, its
//! connection lost before the frame left) is tried on another too when
//! it was routed least-loaded (a message with no key is, under by-key
//! routing too): it runs once all the same. Routed by its key, only
//! idempotent ones move (another replica's state for the key is not this
//! one's). Any other failure is reported as it is, never sent
//! twice. The message is encoded once, whichever replica takes it. A node
//! that runs a replica itself calls it, and another only while its own is
//! being restarted (its actor stopped by a panic): then a call that may
//! move as above goes to the others, instead of failing as not delivered.

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
            (candidates, Some(key)) => {
                ranked_first(key, candidates.iter().map(|i| (*i, self.peers[*i].name())))
            }
            (candidates, None) => {
                // A replica whose first dial is under way shows no calls in
                // flight (those waiting for it hold no slot), so it drew
                // most calls, and if its dial hangs (a stopped process
                // whose kernel still accepts) they all waited to their
                // deadline. While it dials, the others take the calls. So
                // with one never called yet: it is dialed in the
                // background, and the call that would have dialed it
                // waited for that dial before.
                let unsettled = |i: &usize| self.peers[*i].is_unsettled();
                let settled: Vec<usize>;
                let candidates = if candidates.iter().any(unsettled) {
                    settled = candidates
                        .iter()
                        .copied()
                        .filter(|i| !unsettled(i))
                        .collect();
                    if settled.is_empty() {
                        candidates
                    } else {
                        for i in candidates.iter().filter(|i| unsettled(i)) {
                            self.peers[*i].kick();
                        }
                        settled.as_slice()
                    }
                } else {
                    candidates
                };
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

    /// Whether `message`, which surely did not run on this node's own
    /// replica, may go to one of these: as a call that did not run fails
    /// over, unless it is routed by its key and not idempotent (another
    /// replica's state for the key is not this one's).
    pub(crate) fn may_take_unrun<M: Request>(&self, message: &M) -> bool {
        M::IDEMPOTENT
            || match self.routing {
                Routing::ByKey => message.routing_key().is_none(),
                Routing::LeastLoaded => true,
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
        // Why an earlier replica may have run the call, if one may have:
        // then what a later one says cannot make it "did not run".
        let mut may_have_run: Option<String> = None;
        loop {
            let Some(replica) = self.choose(key, &tried) else {
                let none = Err(CallError::not_delivered(service, "no replica to call"));
                return still_unknown(none, service, may_have_run);
            };
            tried.push(replica);
            let peer = &self.peers[replica];
            let outcome = peer
                .call_encoded::<M>(&encoded, meta.clone(), caller, None)
                .await;
            let may_move = |error: &CallError| match error {
                CallError::NotDelivered { .. } | CallError::OutcomeUnknown { .. }
                    if M::IDEMPOTENT =>
                {
                    true
                }
                // Routed least-loaded (under by-key routing too, for a
                // message with no key): any replica would have done.
                _ => error.is_safe_to_retry() && key.is_none(),
            };
            let failed_over = match &outcome {
                Err(error)
                    if may_move(error)
                        && !meta.remaining().is_zero()
                        && tried.len() < self.peers.len() =>
                {
                    crate::call::call_span(service, M::NAME, meta.id.0, Some(meta.trace)).in_scope(|| {
                        tracing::info!(
                            node = peer.name(),
                            %error,
                            "replica failed; trying another (the message is idempotent, or did not run)"
                        );
                    });
                    if !error.did_not_run() {
                        may_have_run = Some(format!("node '{}': {error}", peer.name()));
                    }
                    true
                }
                _ => false,
            };
            if !failed_over {
                return still_unknown(outcome, service, may_have_run);
            }
        }
    }
}

/// The outcome of a call that failed over: a last replica that did not
/// run it (not delivered, overloaded, rejected) does not make it "did not
/// run" if an earlier one may have (`may_have_run`, why): that is still
/// *outcome unknown*, with both reasons.
fn still_unknown<T>(
    outcome: Result<T, CallError>,
    service: &str,
    may_have_run: Option<String>,
) -> Result<T, CallError> {
    match (outcome, may_have_run) {
        (Err(last), Some(earlier)) if last.did_not_run() => Err(CallError::outcome_unknown(
            service,
            format!("{earlier}; then {last}"),
        )),
        (outcome, _) => outcome,
    }
}

/// Of `replicas` (index and node name), the one that ranks highest for
/// `key` (rendezvous hashing: a key's order of replicas is the same on
/// every node, and a replica's going leaves the others' order as it was).
fn ranked_first<'a>(key: u64, replicas: impl Iterator<Item = (usize, &'a str)>) -> Option<usize> {
    replicas
        .max_by_key(|(_, name)| routing_key(&(key, name)))
        .map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spread_evenly_over_replicas_whose_names_differ_in_their_last_letter() {
        let share = |names: &[&str]| {
            let mut counts = vec![0usize; names.len()];
            for user in 0..20_000u64 {
                let key = routing_key(&format!("user-{user}"));
                let best = ranked_first(key, names.iter().copied().enumerate()).unwrap();
                counts[best] += 1;
            }
            counts
        };
        // Unmixed FNV gave 4948, 2599, 2568, 9885 and 10000, 5000, 5000.
        for names in [
            &["store-1", "store-2", "store-3", "store-4"][..],
            &["a", "b", "c"][..],
            &["n1", "n2", "n3", "n4", "n5", "n6"][..],
        ] {
            let fair = 20_000 / names.len();
            let counts = share(names);
            assert!(
                counts.iter().all(|c| c.abs_diff(fair) < fair / 10),
                "{names:?}: {counts:?}"
            );
        }
    }

    #[test]
    fn a_call_an_earlier_replica_may_have_run_stays_unknown_whatever_the_last_says() {
        let earlier = Some("node 'a': connection lost".to_owned());
        let last = CallError::not_delivered("orders", "node 'b' is shutting down");
        let outcome = still_unknown::<()>(Err(last.clone()), "orders", earlier.clone());
        let error = outcome.unwrap_err();
        assert!(!error.did_not_run(), "{error}");
        assert!(matches!(error, CallError::OutcomeUnknown { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("node 'a': connection lost; then"),
            "{error}"
        );
        // Nothing earlier may have run it: the last word stands.
        assert_eq!(
            still_unknown::<()>(Err(last.clone()), "orders", None).unwrap_err(),
            last
        );
        // An answer is an answer; and a last failure that may have run
        // says so itself.
        assert_eq!(still_unknown(Ok(7), "orders", earlier.clone()).unwrap(), 7);
        let unknown = CallError::outcome_unknown("orders", "node 'b': connection lost");
        assert_eq!(
            still_unknown::<()>(Err(unknown.clone()), "orders", earlier).unwrap_err(),
            unknown
        );
    }
}
