//! Where a node is dialled: an IP address and port, or a host name and port
//! looked up at each dial. A name lets peers follow a node that moves (a
//! Kubernetes Service, a DNS record): `[nodes.store] address =
//! "store:7402"` while the node itself listens on `0.0.0.0:7402`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

/// A peer's dial address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialAddress {
    /// An IP address and port.
    Socket(SocketAddr),
    /// A host name and port, looked up when dialling.
    Host {
        /// The name.
        host: String,
        /// The port.
        port: u16,
    },
}

impl DialAddress {
    /// Parses `HOST:PORT` (an IP address, `[v6]`, or a name); `None` if it
    /// is not that or the port is 0 (a node on port 0 cannot be dialled).
    pub fn parse(text: &str) -> Option<DialAddress> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return (addr.port() != 0).then_some(DialAddress::Socket(addr));
        }
        let (host, port) = text.rsplit_once(':')?;
        let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
        let valid_host = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        valid_host.then(|| DialAddress::Host {
            host: host.to_owned(),
            port,
        })
    }

    /// Connects to it within `limit`: to each address the name resolves
    /// to, in turn, until one answers (see `connect_each`).
    pub async fn connect(&self, limit: Duration) -> std::io::Result<TcpStream> {
        let deadline = crate::deadline::instant_after(limit);
        match self {
            DialAddress::Socket(addr) => connect_each(vec![*addr], deadline).await,
            DialAddress::Host { host, port } => {
                let addrs = tokio::time::timeout_at(
                    deadline,
                    tokio::net::lookup_host((host.as_str(), *port)),
                )
                .await
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "looking {host} up took longer than {} ms",
                            limit.as_millis()
                        ),
                    )
                })??;
                let addrs: Vec<SocketAddr> = addrs.collect();
                if addrs.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{host} resolves to no address"),
                    ));
                }
                connect_each(addrs, deadline).await
            }
        }
    }
}

/// Connects to the first of `addrs` that answers by `deadline`, trying
/// them in turn, each for an even share of the time left: one that drops
/// packets (a dead IPv6 route of a dual-stack name, a stale record) takes
/// its share, not the whole dial, and every redial found the next address
/// out of time. The last error is the one returned.
pub(crate) async fn connect_each(
    addrs: Vec<SocketAddr>,
    deadline: tokio::time::Instant,
) -> std::io::Result<TcpStream> {
    let mut last = None;
    let count = addrs.len();
    for (tried, addr) in addrs.into_iter().enumerate() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let share = left / u32::try_from(count - tried).unwrap_or(u32::MAX);
        match tokio::time::timeout(share, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer from {addr} within {} ms", share.as_millis()),
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address to connect to")
    }))
}

impl fmt::Display for DialAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialAddress::Socket(addr) => write!(f, "{addr}"),
            DialAddress::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_parse_and_port_0_or_junk_does_not() {
        assert_eq!(
            DialAddress::parse("127.0.0.1:7401"),
            Some(DialAddress::Socket("127.0.0.1:7401".parse().unwrap()))
        );
        assert_eq!(
            DialAddress::parse("store.boutique.svc.cluster.local:7402"),
            Some(DialAddress::Host {
                host: "store.boutique.svc.cluster.local".to_owned(),
                port: 7402
            })
        );
        for bad in [
            "127.0.0.1:0",
            "store:0",
            "store",
            ":7402",
            "st ore:1",
            "store:99999",
        ] {
            assert_eq!(DialAddress::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_name_is_looked_up_when_dialling() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let name = DialAddress::parse(&format!("localhost:{port}")).unwrap();
        let (dialled, accepted) =
            tokio::join!(name.connect(Duration::from_secs(10)), listener.accept());
        assert_eq!(
            dialled.unwrap().peer_addr().unwrap(),
            accepted.unwrap().0.local_addr().unwrap()
        );
    }

    #[tokio::test]
    async fn an_address_that_does_not_answer_leaves_time_for_the_next() {
        // Accepts one connection into its queue and never takes it: the
        // next connection attempt gets no answer at all.
        let silent = tokio::net::TcpSocket::new_v4().unwrap();
        silent.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let silent = silent.listen(0).unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let _queued = std::net::TcpStream::connect(silent_addr).unwrap();
        let answering = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let answering_addr = answering.local_addr().unwrap();

        let started = tokio::time::Instant::now();
        let deadline = started + Duration::from_secs(4);
        let connected = connect_each(vec![silent_addr, answering_addr], deadline).await;
        let stream = connected.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), answering_addr);
        // The silent one had half the time. Before, it took the whole dial
        // (the next address, out of time, got in only if loopback answered
        // on the first try).
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{took:?}");

        // With nothing that answers, the last error says so, on time.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let error = connect_each(vec![silent_addr], deadline).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut, "{error}");
    }
}
