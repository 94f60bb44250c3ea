//! The accept loop: every inbound connection is handshaken on its own task,
//! then admitted as a node's connection or served as a client's. How many
//! may be in their handshake at once is bounded (see `admission`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::admission::{HandshakeTicket, Handshakes, TurnedAway};
use super::connection::Connection;
use super::fault::{FaultSlot, Faulty, PeerFaults};
use super::frame::FrameReader;
use super::handshake::{self, HANDSHAKE_MAX_FRAME, HandshakeError, Refusal, Role};
use super::{Shared, Transport};

/// Accepts connections until the node shuts down.
pub(crate) async fn serve(listener: TcpListener, transport: Arc<Transport>) {
    let mut shutdown = transport.shared.shutdown.clone();
    let handshakes = Arc::new(Handshakes::default());
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => match handshakes.enter(addr.ip()) {
                Ok(ticket) => {
                    transport
                        .shared
                        .spawn(inbound(stream, addr, ticket, Arc::clone(&transport)));
                }
                Err(why) => turn_away(&transport.shared, stream, addr, why),
            },
            Err(e) => {
                // Out of file descriptors and the like: back off a little
                // instead of spinning on the same error.
                tracing::warn!(node = %transport.shared.identity.node, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Closes a connection that found no room among those in their handshake,
/// unread; counts it, and logs the 1st, 2nd, 4th, 8th... (a flood of them
/// must not flood the log too).
fn turn_away(shared: &Shared, stream: TcpStream, addr: SocketAddr, why: TurnedAway) {
    drop(stream);
    let count = 1 + shared
        .counters
        .connections_turned_away
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if count.is_power_of_two() {
        tracing::warn!(node = %shared.identity.node, %addr, reason = %why, turned_away = count, "inbound connection turned away before its handshake (logged at the 1st, 2nd, 4th... time)");
    } else {
        tracing::debug!(node = %shared.identity.node, %addr, reason = %why, "inbound connection turned away before its handshake");
    }
}

/// Logs at `$level` the line of a handshake dialed in that failed, so many
/// a second ([`Shared::refusals_logged`](super::Shared)), the next saying
/// how many were left out; at debug past that.
macro_rules! limited {
    ($shared:expr, $level:ident, $($line:tt)*) => {
        match $shared.refusals_logged.admit() {
            Some(left_out) => tracing::$level!(node = %$shared.identity.node, left_out, $($line)*),
            None => tracing::debug!(node = %$shared.identity.node, $($line)*),
        }
    };
}

async fn inbound(
    stream: TcpStream,
    addr: SocketAddr,
    ticket: HandshakeTicket,
    transport: Arc<Transport>,
) {
    let shared = &transport.shared;
    let _ = stream.set_nodelay(true);
    // One deadline for TLS and the handshake after it: each had the whole
    // timeout, so a stranger held a place among the connections in their
    // handshake for twice as long as said.
    let deadline = crate::deadline::instant_after(shared.settings.handshake_timeout);
    let (reader, writer, presented) = match &shared.tls {
        None => {
            let (reader, writer) = super::split_plain(stream);
            (reader, writer, None)
        }
        Some(tls) => match tokio::time::timeout_at(deadline, tls.accept(stream)).await {
            Ok(Ok((reader, writer, presented))) => (reader, writer, Some(presented)),
            Ok(Err(e)) => {
                limited!(shared, warn, %addr, error = %e, "inbound connection refused: TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(node = %shared.identity.node, %addr, "inbound connection dropped: no TLS handshake in time");
                return;
            }
        },
    };
    // Whose faults apply is known after the handshake.
    let slot = FaultSlot::default();
    let mut writer = Faulty::new(writer, Arc::clone(&slot));
    let mut reader = FrameReader::new(Faulty::new(reader, Arc::clone(&slot)), HANDSHAKE_MAX_FRAME);
    let handshake = handshake::accept(&mut reader, &mut writer, &shared.identity, addr);
    let (info, welcome) = match tokio::time::timeout_at(deadline, handshake).await {
        Ok(Ok(accepted)) => (accepted.peer, accepted.welcome),
        // What differed, said on this side too, so many a second: whoever
        // reaches the port may loop on it.
        Ok(Err(HandshakeError::RefusedPeer { peer, refusal })) => {
            limited!(shared, warn, peer, %refusal, "refused the handshake");
            return;
        }
        // Whoever connects may cause these too (garbage, a probe that
        // connects and closes, a refusal for a hello): as many a second.
        Ok(Err(e)) => {
            limited!(shared, info, %addr, error = %e, "inbound connection dropped");
            return;
        }
        Err(_) => {
            tracing::info!(node = %shared.identity.node, %addr, "inbound connection dropped: no handshake in time");
            return;
        }
    };
    // Authenticated: no longer one of the connections in their handshake.
    drop(ticket);
    reader.set_max(shared.settings.max_frame);
    // Over TLS, the certificate must be for the name the peer gave.
    if let Some(presented) = &presented {
        let expected = match info.role {
            Role::Node => &*info.node,
            Role::Client => super::tls::CLIENT_CERT_NAME,
        };
        if let Err(detail) = super::tls::check_name(presented, expected) {
            let refusal = Refusal::Certificate {
                node: info.node.to_string(),
                detail,
            };
            handshake::refuse_admission(&mut writer, &shared.identity, &info, refusal).await;
            return;
        }
    }
    // A node of the deployment has its switches (and byte counts) kept by
    // name. A client, or a node the deployment does not have (refused
    // below), gets switches kept nowhere: the names they give must not
    // grow the table (every `boutique call` is a client of its own name).
    let faults = match info.role {
        Role::Node if transport.peers.contains_key(&*info.node) => shared.faults.peer(&info.node),
        _ => Arc::new(PeerFaults::default()),
    };
    let _ = slot.set(faults);
    if *shared.shutdown.borrow() {
        handshake::refuse_admission(&mut writer, &shared.identity, &info, Refusal::ShuttingDown)
            .await;
        return;
    }
    match info.role {
        Role::Client => {
            Connection::prepare(
                reader,
                writer,
                info,
                false,
                Arc::clone(shared),
                Some(welcome),
                None,
            )
            .start();
        }
        Role::Node => match transport.peers.get(&*info.node) {
            None => {
                let refusal = Refusal::UnknownNode {
                    node: info.node.to_string(),
                };
                handshake::refuse_admission(&mut writer, &shared.identity, &info, refusal).await;
            }
            Some(peer) => {
                if let Err((refusal, mut writer)) =
                    peer.admit(info.clone(), welcome, reader, writer)
                {
                    handshake::refuse_admission(&mut writer, &shared.identity, &info, refusal)
                        .await;
                }
            }
        },
    }
}
