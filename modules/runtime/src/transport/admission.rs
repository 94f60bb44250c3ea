//! How many inbound connections may be in their handshake at once.
//!
//! Anyone who can reach a node's port can open connections, and until the
//! handshake has proved the cluster secret each one costs the node a task,
//! a socket and a read buffer for up to the handshake timeout. Without a
//! limit, a stream of connections that never finish their handshake would
//! hold a file descriptor each until the node could accept no more, and
//! real peers would be shut out. So the accept loop lets at most
//! [`MAX_PENDING`] connections be in their handshake, and at most
//! [`MAX_PENDING_PER_ADDRESS`] from one IP address (so that one flooding
//! host does not use up the room of the others). An IPv6 address counts
//! by its /64, the block one host is given: one host has as many
//! addresses in it as it likes. A connection past either
//! limit is closed at once, unread, and counted; one that finishes its
//! handshake (or fails it) frees its place. An authenticated connection
//! counts no more: what a peer with the secret may do is bounded by the
//! limits on calls in flight.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Connections in their handshake at once, from everywhere.
pub(crate) const MAX_PENDING: usize = 256;
/// Connections in their handshake at once, from one IP address. Every node
/// of a deployment on one host dials from the same address, as do the
/// `boutique call` clients there; a handshake takes milliseconds, so this
/// leaves room for many at once.
pub(crate) const MAX_PENDING_PER_ADDRESS: usize = 32;

/// The connections in their handshake now.
#[derive(Default)]
pub(crate) struct Handshakes {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TurnedAway {
    /// [`MAX_PENDING`] are in their handshake.
    Full,
    /// [`MAX_PENDING_PER_ADDRESS`] from its address are.
    FullForAddress,
}

impl std::fmt::Display for TurnedAway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnedAway::Full => write!(
                f,
                "{MAX_PENDING} connections are in their handshake already"
            ),
            TurnedAway::FullForAddress => write!(
                f,
                "{MAX_PENDING_PER_ADDRESS} connections from its address are in their handshake already"
            ),
        }
    }
}

impl Handshakes {
    /// A place for a connection from `address` in its handshake, held until
    /// the returned ticket is dropped; or why there is none.
    pub(crate) fn enter(self: &Arc<Self>, address: IpAddr) -> Result<HandshakeTicket, TurnedAway> {
        let address = source(address);
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.total >= MAX_PENDING {
            return Err(TurnedAway::Full);
        }
        let from_address = pending.by_address.entry(address).or_default();
        if *from_address >= MAX_PENDING_PER_ADDRESS {
            return Err(TurnedAway::FullForAddress);
        }
        *from_address += 1;
        pending.total += 1;
        Ok(HandshakeTicket {
            handshakes: Arc::clone(self),
            address,
        })
    }

    /// How many connections are in their handshake now.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// The source a connection from `address` counts against: an IPv4
/// address (an IPv4-mapped IPv6 one too) as it is, an IPv6 one by its /64.
fn source(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// One connection's place among those in their handshake.
pub(crate) struct HandshakeTicket {
    handshakes: Arc<Handshakes>,
    address: IpAddr,
}

impl Drop for HandshakeTicket {
    fn drop(&mut self) {
        let mut pending = self
            .handshakes
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pending.total -= 1;
        if let Some(from_address) = pending.by_address.get_mut(&self.address) {
            *from_address -= 1;
            if *from_address == 0 {
                // Addresses are not kept once they have none pending: the
                // table holds at most `MAX_PENDING` of them.
                pending.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn one_address_gets_its_share_and_the_others_still_get_in() {
        let handshakes = Arc::new(Handshakes::default());
        let flood: Vec<HandshakeTicket> = (0..MAX_PENDING_PER_ADDRESS)
            .map(|_| {
                handshakes
                    .enter(address(1))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        assert_eq!(
            handshakes.enter(address(1)).err(),
            Some(TurnedAway::FullForAddress)
        );
        assert!(handshakes.enter(address(2)).is_ok());
        drop(flood);
        assert_eq!(handshakes.pending(), 0);
        assert!(handshakes.enter(address(1)).is_ok());
    }

    #[test]
    fn an_ipv6_host_counts_by_its_64_block_however_many_addresses_it_uses() {
        let handshakes = Arc::new(Handshakes::default());
        let in_block = |n: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, n]);
        let flood: Vec<HandshakeTicket> = (0..MAX_PENDING_PER_ADDRESS)
            .map(|n| {
                handshakes
                    .enter(in_block(u16::try_from(n).unwrap_or(0)))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        assert_eq!(
            handshakes.enter(in_block(999)).err(),
            Some(TurnedAway::FullForAddress)
        );
        // Another block, and an IPv4 host behind a mapped address, get in.
        assert!(
            handshakes
                .enter(IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]))
                .is_ok()
        );
        assert!(
            handshakes
                .enter(IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001]))
                .is_ok()
        );
        drop(flood);
        assert_eq!(handshakes.pending(), 0);
    }

    #[test]
    fn no_more_than_the_limit_in_all_and_a_place_is_freed_when_its_ticket_goes() {
        let handshakes = Arc::new(Handshakes::default());
        let mut held = Vec::new();
        for n in 0..MAX_PENDING {
            let from = address(u8::try_from(n % 200).unwrap_or(0));
            held.push(
                handshakes
                    .enter(from)
                    .unwrap_or_else(|e| panic!("{n}: {e}")),
            );
        }
        assert_eq!(handshakes.enter(address(250)).err(), Some(TurnedAway::Full));
        held.pop();
        assert!(handshakes.enter(address(250)).is_ok());
        // The ticket just made was dropped at once: its place is free too.
        assert_eq!(handshakes.pending(), MAX_PENDING - 1);
        drop(held);
        assert_eq!(handshakes.pending(), 0);
        assert!(handshakes.pending.lock().unwrap().by_address.is_empty());
    }
}
