//! Where a node is dialled: an IP address and port, or a host name and port
//! looked up at each dial. A name lets peers follow a node that moves (a
//! Kubernetes Service, a DNS record): `[nodes.store] address =
//! "store:7402"` while the node itself listens on `0.0.0.0:7402`.

use std::fmt;
use std::net::SocketAddr;

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

    /// Connects to it: to each address the name resolves to, in turn,
    /// until one answers.
    pub async fn connect(&self) -> std::io::Result<TcpStream> {
        match self {
            DialAddress::Socket(addr) => TcpStream::connect(addr).await,
            DialAddress::Host { host, port } => {
                let mut last = None;
                for addr in tokio::net::lookup_host((host.as_str(), *port)).await? {
                    match TcpStream::connect(addr).await {
                        Ok(stream) => return Ok(stream),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{host} resolves to no address"),
                    )
                }))
            }
        }
    }
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
        let (dialled, accepted) = tokio::join!(name.connect(), listener.accept());
        assert_eq!(
            dialled.unwrap().peer_addr().unwrap(),
            accepted.unwrap().0.local_addr().unwrap()
        );
    }
}
