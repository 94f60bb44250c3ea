//! How `up` stops its nodes: callers first.
//!
//! A node asked to stop (SIGTERM) finishes the calls it is serving and
//! refuses new ones as *not delivered*. If every node were asked at once,
//! the web node's checkout still running would find payment's node
//! refusing its charge, or its refund, and the order would be left in
//! doubt. So a node is asked to stop only once every node that calls it
//! has exited: in the three-node deployment, `web` first, then `store`
//! and `pay` together. Nodes that call each other (a cycle, which the
//! plan allows) are asked together, once nothing else can go first.
//!
//! Each node has its grace from when it is asked; one still running past
//! it is killed (and so frees the nodes it called). A second Ctrl-C
//! kills every node left at once, asked or not.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Exit, KILLED_WITHIN, Supervised, say_line, signal};

/// How the nodes stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stopped {
    /// Each within its grace.
    Gracefully,
    /// Some were killed: they had not stopped within the grace.
    KilledLate,
    /// Killed at once: asked to stop a second time.
    KilledAsked,
    /// Each within its grace, but not each cleanly: one exited with a
    /// code other than 0 (it failed, or was stopped at once by a second
    /// signal, one `up` did not send).
    Unclean,
}

/// Where a running node is in its stop.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// Not asked yet: a node that calls it still runs.
    Waiting,
    /// Asked (SIGTERM); killed if still running at this instant.
    Asked(Instant),
    /// Killed (SIGKILL); given up on if not reported gone by this instant.
    Killed(Instant),
}

/// Stops every running node of `nodes`, callers first (see the module
/// doc): `calls` are the calls between nodes, (caller node, callee node);
/// each node asked has `grace` to stop, and `stop` is the signal to kill
/// them all at once. Nodes waiting to be started again have no process:
/// they are simply not started.
pub(super) async fn stop_all(
    mut nodes: BTreeMap<String, Supervised>,
    calls: &[(String, String)],
    exited: &mut mpsc::UnboundedReceiver<Exit>,
    grace: Duration,
    stop: &mut signal::StopSignals,
) -> Stopped {
    nodes.retain(|_, node| node.child.is_some());
    let mut stops: BTreeMap<String, Stop> = nodes
        .keys()
        .map(|name| (name.clone(), Stop::Waiting))
        .collect();
    let mut killed_late = false;
    let mut killed_asked = false;
    let mut unclean = false;
    while !nodes.is_empty() {
        ask_those_no_caller_waits_for(&nodes, calls, &mut stops, grace);
        let next = stops
            .values()
            .filter_map(|stop| match stop {
                Stop::Waiting => None,
                Stop::Asked(at) | Stop::Killed(at) => Some(*at),
            })
            .min()
            .unwrap_or_else(|| Instant::now() + grace);
        let report = tokio::select! {
            report = tokio::time::timeout_at(next, exited.recv()) => report,
            why = stop.next(), if !killed_asked => {
                say!("[up] {why} again: killing every node now");
                for (name, node) in &nodes {
                    node.signal(libc::SIGKILL);
                    stops.insert(name.clone(), Stop::Killed(Instant::now() + KILLED_WITHIN));
                }
                killed_asked = true;
                continue;
            }
        };
        match report {
            Ok(Some(Exit {
                node: name,
                start,
                status,
                code,
            })) => {
                if nodes.get(&name).is_some_and(|n| n.is_start(start)) {
                    nodes.remove(&name);
                    stops.remove(&name);
                    say!("[up] node '{name}' stopped: {status}");
                    // A code other than 0: it failed, or stopped at once
                    // on a second signal. (No code: ended by the SIGTERM
                    // sent here, before it could take the signal over.)
                    unclean |= code.is_some_and(|code| code != 0);
                }
            }
            Ok(None) => break,
            Err(_) => {
                let now = Instant::now();
                for (name, stop) in stops.iter_mut() {
                    match *stop {
                        Stop::Asked(by) if by <= now => {
                            say!(
                                "[up] node '{name}' did not stop within {} ms; killing it",
                                grace.as_millis()
                            );
                            if let Some(node) = nodes.get(name) {
                                node.signal(libc::SIGKILL);
                            }
                            *stop = Stop::Killed(now + KILLED_WITHIN);
                            killed_late = true;
                        }
                        Stop::Killed(by) if by <= now => {
                            say!("[up] node '{name}' was killed but has not been reported gone");
                            nodes.remove(name);
                        }
                        _ => {}
                    }
                }
                stops.retain(|name, _| nodes.contains_key(name));
            }
        }
    }
    if killed_asked {
        Stopped::KilledAsked
    } else if killed_late {
        Stopped::KilledLate
    } else if unclean {
        Stopped::Unclean
    } else {
        Stopped::Gracefully
    }
}

/// Asks to stop (SIGTERM) each waiting node that no other running node
/// calls; if none can go and none is stopping, the ones left call each
/// other (a cycle), and all of them are asked.
fn ask_those_no_caller_waits_for(
    nodes: &BTreeMap<String, Supervised>,
    calls: &[(String, String)],
    stops: &mut BTreeMap<String, Stop>,
    grace: Duration,
) {
    let waiting: Vec<String> = stops
        .iter()
        .filter(|(_, stop)| matches!(stop, Stop::Waiting))
        .map(|(name, _)| name.clone())
        .collect();
    if waiting.is_empty() {
        return;
    }
    let called_by = |name: &str, running: bool| {
        calls.iter().any(|(caller, callee)| {
            callee == name && caller != name && (!running || nodes.contains_key(caller))
        })
    };
    let mut free: Vec<&String> = waiting
        .iter()
        .filter(|name| !called_by(name, true))
        .collect();
    let cycle = free.is_empty() && stops.len() == waiting.len();
    if cycle {
        free = waiting.iter().collect();
    }
    for name in free {
        let why = if cycle {
            " (the nodes left call each other)"
        } else if called_by(name, false) {
            " (the nodes that call it have stopped)"
        } else {
            ""
        };
        say!("[up] stopping node '{name}'{why}");
        if let Some(node) = nodes.get(name) {
            node.signal(libc::SIGTERM);
        }
        stops.insert(name.clone(), Stop::Asked(Instant::now() + grace));
    }
}
