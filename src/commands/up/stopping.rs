//! How `up` stops its nodes: callers first.
//!
//! A node asked to stop (SIGTERM) finishes the calls it is serving and
//! refuses new ones as *not delivered*. If every node were asked at once,
//! the web node's checkout still running would find payment's node
//! refusing its charge, or its refund, and the order would be left in
//! doubt. So a node is asked to stop only once every node that calls it
//! has exited: in the three-node deployment, `web` first, then `store`
//! and `pay` together. Nodes that call each other (a cycle, which the
//! plan allows) are asked together, once no node outside the cycle calls
//! any of them; the nodes they call wait for them as for any caller.
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
    nodes: BTreeMap<String, Supervised>,
    calls: &[(String, String)],
    exited: &mut mpsc::UnboundedReceiver<Exit>,
    grace: Duration,
    stop: &mut signal::StopSignals,
) -> Stopped {
    // Each running node, with where it is in its stop.
    let mut nodes: BTreeMap<String, (Supervised, Stop)> = nodes
        .into_iter()
        .filter(|(_, node)| node.child.is_some())
        .map(|(name, node)| (name, (node, Stop::Waiting)))
        .collect();
    let mut killed_late = false;
    let mut killed_asked = false;
    let mut unclean = false;
    while !nodes.is_empty() {
        ask_those_no_caller_waits_for(&mut nodes, calls, grace);
        let next = nodes
            .values()
            .filter_map(|(_, stop)| match stop {
                Stop::Waiting => None,
                Stop::Asked(at) | Stop::Killed(at) => Some(*at),
            })
            .min()
            .unwrap_or_else(|| Instant::now() + grace);
        let report = tokio::select! {
            report = tokio::time::timeout_at(next, exited.recv()) => report,
            why = stop.next(), if !killed_asked => {
                say!("[up] {why} again: killing every node now");
                for (node, stop) in nodes.values_mut() {
                    node.signal(libc::SIGKILL);
                    *stop = Stop::Killed(Instant::now() + KILLED_WITHIN);
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
                if nodes.get(&name).is_some_and(|(n, _)| n.is_start(start)) {
                    nodes.remove(&name);
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
                nodes.retain(|name, (node, stop)| match *stop {
                    Stop::Asked(by) if by <= now => {
                        say!(
                            "[up] node '{name}' did not stop within {} ms; killing it",
                            grace.as_millis()
                        );
                        node.signal(libc::SIGKILL);
                        *stop = Stop::Killed(now + KILLED_WITHIN);
                        killed_late = true;
                        true
                    }
                    Stop::Killed(by) if by <= now => {
                        say!("[up] node '{name}' was killed but has not been reported gone");
                        false
                    }
                    _ => true,
                });
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

/// Asks to stop (SIGTERM) each waiting node that no running node waits
/// for: every running node that calls it (directly or through others)
/// is one it calls back in turn (a cycle), so none of them can go first.
fn ask_those_no_caller_waits_for(
    nodes: &mut BTreeMap<String, (Supervised, Stop)>,
    calls: &[(String, String)],
    grace: Duration,
) {
    let running: Vec<&str> = nodes.keys().map(String::as_str).collect();
    let waiting: Vec<&str> = nodes
        .iter()
        .filter(|(_, (_, stop))| matches!(stop, Stop::Waiting))
        .map(|(name, _)| name.as_str())
        .collect();
    let called_by = |name: &str, running_only: bool| {
        calls.iter().any(|(caller, callee)| {
            callee == name
                && caller != name
                && (!running_only || running.contains(&caller.as_str()))
        })
    };
    let free: Vec<(String, &str)> = free_to_stop(&running, &waiting, calls)
        .into_iter()
        .map(|name| {
            let why = if called_by(&name, true) {
                " (it and the nodes that call it call each other)"
            } else if called_by(&name, false) {
                " (the nodes that call it have stopped)"
            } else {
                ""
            };
            (name, why)
        })
        .collect();
    for (name, why) in free {
        say!("[up] stopping node '{name}'{why}");
        if let Some((node, stop)) = nodes.get_mut(&name) {
            node.signal(libc::SIGTERM);
            *stop = Stop::Asked(Instant::now() + grace);
        }
    }
}

/// Of the `waiting` nodes, those no other `running` node waits for: each
/// running node that calls one of them (directly or through others) is
/// called back by it in turn (they are on a cycle, and go together).
fn free_to_stop(running: &[&str], waiting: &[&str], calls: &[(String, String)]) -> Vec<String> {
    // Whether `from` calls `to`, directly or through other running nodes.
    let reaches = |from: &str, to: &str| {
        let mut seen = vec![from];
        let mut next = vec![from];
        while let Some(at) = next.pop() {
            for (caller, callee) in calls {
                let callee = callee.as_str();
                if caller == at && running.contains(&callee) && !seen.contains(&callee) {
                    if callee == to {
                        return true;
                    }
                    seen.push(callee);
                    next.push(callee);
                }
            }
        }
        false
    };
    waiting
        .iter()
        .filter(|name| {
            running
                .iter()
                .filter(|other| *other != *name)
                .all(|other| !reaches(other, name) || reaches(name, other))
        })
        .map(|name| (*name).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn callers_go_first_and_their_callees_once_they_have() {
        let three = calls(&[("web", "store"), ("web", "pay")]);
        let all = ["pay", "store", "web"];
        assert_eq!(free_to_stop(&all, &all, &three), ["web"]);
        let left = ["pay", "store"];
        assert_eq!(free_to_stop(&left, &left, &three), ["pay", "store"]);
    }

    #[test]
    fn a_cycle_goes_together_and_what_it_calls_waits_for_it() {
        // web and store call each other; store calls pay.
        let cycle = calls(&[("web", "store"), ("store", "web"), ("store", "pay")]);
        let all = ["pay", "store", "web"];
        assert_eq!(free_to_stop(&all, &all, &cycle), ["store", "web"]);
        // Asked, still running: pay still waits.
        assert!(free_to_stop(&all, &["pay"], &cycle).is_empty());
        assert_eq!(free_to_stop(&["pay"], &["pay"], &cycle), ["pay"]);
        // A node that calls into the cycle goes before it.
        let fed = calls(&[("web", "store"), ("store", "web"), ("edge", "web")]);
        let all = ["edge", "store", "web"];
        assert_eq!(free_to_stop(&all, &all, &fed), ["edge"]);
    }
}
