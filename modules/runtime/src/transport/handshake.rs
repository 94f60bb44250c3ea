//! The handshake: before any call, two nodes check that they belong together.
//!
//! ```text
//! dialer                                   acceptor
//!   Hello  {magic, version, cluster, node, role, incarnation, fingerprint,
//!           max_in_flight, max_frame, heartbeat, nonce_d}  ->
//!                                          checks version, cluster, fingerprint, limits
//!   <-  HelloAck {cluster, node, incarnation, fingerprint, max_in_flight, max_frame,
//!                 heartbeat, nonce_a}
//!   checks them
//!   Auth {proof_d = HMAC(secret, "dialer" | transcript)}  ->
//!                                          checks proof_d, admits the peer
//!   <-  Welcome {proof_a = HMAC(secret, "acceptor" | transcript)}
//!   checks proof_a                         (or Refused {why} at any step)
//! ```
//!
//! Each side says how many calls it may have in flight to the other and the
//! largest frame it reads; frames to a peer are built to the smaller of the
//! two limits, so a call too large for the peer fails alone, before it is
//! sent. Each also says how often it sends heartbeats and how long it
//! gives a silent peer: a pair in which one's failure timeout is less than
//! twice the other's heartbeat interval is refused ([`Refusal::Heartbeat`]),
//! since one would declare the other dead whenever it was idle.
//!
//! The transcript binds both nonces, both node names, both incarnations,
//! both sides' limits and heartbeat settings and the cluster name, so a proof cannot be replayed or reflected. The secret
//! itself never crosses. Whichever side finds a mismatch sends `Refused` with
//! a typed [`Refusal`] that says exactly what differed, and both sides log
//! it (the accepting side's listener 16 a second at most).
//!
//! The dialer proves first. Anyone can dial a node's port; had the acceptor
//! proved first, anyone could have had a MAC of the secret over a transcript
//! it knows, to guess the secret offline at leisure. A dialer only proves to
//! the address its config names, and the acceptor proves only to a dialer
//! that proved.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::frame::{Frame, FrameBuf, FrameReader, Kind};
use crate::codec;
use crate::fingerprint::Fingerprint;

/// The version of this protocol. Nodes with different versions refuse each other.
pub const PROTOCOL_VERSION: u32 = 8;
/// The first bytes of every `Hello`, so strangers are told apart from old versions.
pub const MAGIC: [u8; 8] = *b"BOUTIQUE";
/// Frames before authentication are small; a stranger cannot make us buffer more.
pub const HANDSHAKE_MAX_FRAME: usize = 16 * 1024;
/// The shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// What a connection's far end is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A node of the deployment: may host services and be called back.
    Node,
    /// A client such as `boutique call`: calls, hosts nothing.
    Client,
}

/// The cluster secret. Never printed, never sent.
pub struct Secret(Vec<u8>);

/// The cluster secret is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The variable is not set, for a node that would start a cluster.
    #[error(
        "the cluster secret is read from the environment variable {var}, which is not set; \
         set it to the same random string on every node, e.g. \
         `export {var}=$(od -An -N32 -tx1 /dev/urandom | tr -d \" \\n\")`"
    )]
    Missing {
        /// The variable's name.
        var: String,
    },
    /// The variable is not set, for a client of running nodes (`boutique
    /// call`): a new random secret would only be refused.
    #[error(
        "the cluster secret is read from the environment variable {var}, which is not set; \
         set it to the secret the running nodes were started with"
    )]
    MissingForClient {
        /// The variable's name.
        var: String,
    },
    /// The secret is too short to be worth anything.
    #[error("the cluster secret in {var} is {len} bytes; use at least {min} random bytes")]
    TooShort {
        /// The variable's name.
        var: String,
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
}

impl Secret {
    /// Reads the secret from the environment variable `var`.
    pub fn from_env(var: &str) -> Result<Secret, SecretError> {
        match std::env::var_os(var) {
            // Its bytes as they are: made valid UTF-8 first, every invalid
            // byte would become the same three, and different secrets one.
            Some(value) if !value.is_empty() => Secret::from_bytes(var, value.into_encoded_bytes()),
            _ => Err(SecretError::Missing {
                var: var.to_owned(),
            }),
        }
    }

    /// A secret from bytes; `source` names where they came from, for errors.
    pub fn from_bytes(source: &str, bytes: Vec<u8>) -> Result<Secret, SecretError> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort {
                var: source.to_owned(),
                len: bytes.len(),
                min: MIN_SECRET_LEN,
            });
        }
        Ok(Secret(bytes))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Who this end of a connection is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The cluster name; both sides must agree.
    pub cluster: String,
    /// This node's name (a client's is informational).
    pub node: String,
    /// Node or client.
    pub role: Role,
    /// Random per process start, so a restarted node is told apart.
    pub incarnation: u64,
    /// The API fingerprint; both sides must agree.
    pub fingerprint: Fingerprint,
    /// The most calls this side has in flight to one peer
    /// (`max_in_flight_per_peer`): the peer cuts it off if it leaves more
    /// than that many of its calls unanswered there.
    pub max_in_flight: u32,
    /// The largest frame this side reads (`max_frame_bytes`): the peer
    /// sends it none larger, so one call too large for this side fails
    /// alone instead of closing the connection under every other call.
    pub max_frame: u32,
    /// How often this side sends heartbeats, and how long a silent peer
    /// has before it is declared unreachable: two nodes whose settings do
    /// not fit (one's heartbeats too seldom for the other's patience)
    /// refuse each other, rather than one declaring the other dead
    /// whenever it is idle.
    pub heartbeat: Heartbeat,
    /// The cluster secret.
    pub secret: Arc<Secret>,
}

/// A side's heartbeat settings (`[runtime] heartbeat_interval_ms` and
/// `failure_timeout_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// How often it sends a heartbeat to a connected peer, in ms.
    pub interval_ms: u32,
    /// How long a peer may send nothing before it is declared
    /// unreachable, in ms.
    pub failure_timeout_ms: u32,
}

impl Default for Heartbeat {
    /// The config's defaults: 500 ms and 2.5 s.
    fn default() -> Self {
        Heartbeat {
            interval_ms: 500,
            failure_timeout_ms: 2_500,
        }
    }
}

impl Heartbeat {
    /// Whether a peer that sends heartbeats as `peer` says can be told
    /// alive by a side as patient as `self`: at least two of its heartbeats
    /// fit in this side's failure timeout (as the plan asks of one node's
    /// own settings).
    fn hears(self, peer: Heartbeat) -> bool {
        u64::from(self.failure_timeout_ms) >= u64::from(peer.interval_ms) * 2
    }
}

/// Who the far end turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its node name.
    pub node: Arc<str>,
    /// Node or client.
    pub role: Role,
    /// Its incarnation.
    pub incarnation: u64,
    /// The most calls it has in flight to this node, by its own account.
    pub max_in_flight: u32,
    /// The largest frame it reads.
    pub max_frame: u32,
    /// Its socket address.
    pub addr: SocketAddr,
}

/// Why one side refused the other. Sent over the wire, so both sides can say it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The protocol versions differ. (Keep this variant first: its encoding
    /// must stay readable by every version.)
    #[error("protocol versions differ: the dialer speaks {dialer}, the acceptor {acceptor}")]
    Version {
        /// The dialer's version.
        dialer: u32,
        /// The acceptor's version.
        acceptor: u32,
    },
    /// The cluster names differ.
    #[error("cluster names differ: the dialer is in '{dialer}', the acceptor in '{acceptor}'")]
    Cluster {
        /// The dialer's cluster.
        dialer: String,
        /// The acceptor's cluster.
        acceptor: String,
    },
    /// The API fingerprints differ: the two builds do not agree on the messages.
    #[error(
        "API fingerprints differ: the dialer has {dialer}, the acceptor {acceptor} \
         (the nodes run different builds; deploy the same binary everywhere)"
    )]
    Fingerprint {
        /// The dialer's fingerprint.
        dialer: Fingerprint,
        /// The acceptor's fingerprint.
        acceptor: Fingerprint,
    },
    /// A proof of the cluster secret was wrong: the secrets differ.
    #[error(
        "authentication failed: the {side} could not prove it knows the cluster secret (the secrets differ)"
    )]
    Authentication {
        /// "dialer" or "acceptor": whose proof was wrong.
        side: String,
    },
    /// The certificate the dialer presented over TLS is not for the node
    /// (or client) it says it is.
    #[error("'{node}' presented a certificate that is not its own: {detail}")]
    Certificate {
        /// The name it gave.
        node: String,
        /// What is wrong with the certificate.
        detail: String,
    },
    /// The dialer says it is a node this deployment does not have.
    #[error("node '{node}' is not part of this deployment's config")]
    UnknownNode {
        /// The name it gave.
        node: String,
    },
    /// The dialer reached a different node than it meant to.
    #[error(
        "expected node '{expected}' at this address, found node '{found}' (check the listen addresses)"
    )]
    WrongNode {
        /// The node the dialer meant to reach.
        expected: String,
        /// The node that answered.
        found: String,
    },
    /// A connection between the two nodes already exists or is being made
    /// from the other side; the dialer should use that one.
    #[error("a connection between '{dialer}' and '{acceptor}' already exists")]
    Duplicate {
        /// The dialer.
        dialer: String,
        /// The acceptor.
        acceptor: String,
    },
    /// The acceptor is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// One side says it may have a number of calls in flight that no
    /// config allows (see `max_in_flight_per_peer`).
    #[error(
        "the {side} says it may have {said} calls in flight, out of range (1 to {})",
        crate::config::MAX_IN_FLIGHT_PER_PEER
    )]
    InFlight {
        /// "dialer" or "acceptor": who said it.
        side: String,
        /// What it said.
        said: u32,
    },
    /// One side says it reads frames of a size no config allows (see
    /// `max_frame_bytes`).
    #[error(
        "the {side} says it reads frames of up to {said} bytes, out of range ({} to {})",
        crate::config::MIN_FRAME_BYTES,
        crate::codec::MAX_DECODE_BYTES
    )]
    FrameLimit {
        /// "dialer" or "acceptor": who said it.
        side: String,
        /// What it said.
        said: u32,
    },
    /// The two sides' heartbeat settings do not fit: one sends heartbeats
    /// too seldom for the other's failure timeout.
    #[error(
        "heartbeat settings do not fit: the dialer sends one every {} ms and gives a silent peer {} ms, the acceptor every {} ms and {} ms; each side's failure timeout must be at least twice the other's heartbeat interval: give every node the same [runtime] heartbeat_interval_ms and failure_timeout_ms",
        .dialer.interval_ms, .dialer.failure_timeout_ms, .acceptor.interval_ms, .acceptor.failure_timeout_ms
    )]
    Heartbeat {
        /// The dialer's settings.
        dialer: Heartbeat,
        /// The acceptor's settings.
        acceptor: Heartbeat,
    },
}

/// The handshake did not produce a connection.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The far end refused us.
    #[error("{peer} refused the connection: {refusal}")]
    RefusedByPeer {
        /// Who, for people.
        peer: String,
        /// Why.
        refusal: Refusal,
    },
    /// We refused the far end.
    #[error("refused {peer}: {refusal}")]
    RefusedPeer {
        /// Who, for people.
        peer: String,
        /// Why.
        refusal: Refusal,
    },
    /// The exchange itself failed: I/O, a malformed record, a stranger.
    #[error("handshake with {peer} failed: {detail}")]
    Failed {
        /// Who, for people.
        peer: String,
        /// What happened.
        detail: String,
    },
}

impl HandshakeError {
    /// The refusal, whichever side made it.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            HandshakeError::RefusedByPeer { refusal, .. }
            | HandshakeError::RefusedPeer { refusal, .. } => Some(refusal),
            HandshakeError::Failed { .. } => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Hello {
    cluster: String,
    node: String,
    role: Role,
    incarnation: u64,
    fingerprint: Fingerprint,
    max_in_flight: u32,
    max_frame: u32,
    heartbeat: Heartbeat,
    nonce: [u8; 32],
}

#[derive(Serialize, Deserialize)]
struct HelloAck {
    cluster: String,
    node: String,
    incarnation: u64,
    fingerprint: Fingerprint,
    max_in_flight: u32,
    max_frame: u32,
    heartbeat: Heartbeat,
    nonce: [u8; 32],
}

/// The dialer's proof (`Auth`) or the acceptor's (`Welcome`).
#[derive(Serialize, Deserialize)]
struct Proof {
    proof: [u8; 32],
}

/// What both proofs are computed over.
struct Transcript<'a> {
    cluster: &'a str,
    dialer: &'a str,
    dialer_incarnation: u64,
    dialer_max_in_flight: u32,
    dialer_max_frame: u32,
    dialer_heartbeat: Heartbeat,
    dialer_nonce: &'a [u8; 32],
    acceptor: &'a str,
    acceptor_incarnation: u64,
    acceptor_max_in_flight: u32,
    acceptor_max_frame: u32,
    acceptor_heartbeat: Heartbeat,
    acceptor_nonce: &'a [u8; 32],
}

impl Transcript<'_> {
    fn mac(&self, secret: &Secret, label: &str) -> HmacSha256 {
        let mut mac = secret.mac();
        let mut field = |bytes: &[u8]| {
            mac.update(&(bytes.len() as u64).to_le_bytes());
            mac.update(bytes);
        };
        field(b"boutique-handshake-v3");
        field(label.as_bytes());
        field(self.cluster.as_bytes());
        field(self.dialer.as_bytes());
        field(&self.dialer_incarnation.to_le_bytes());
        field(&self.dialer_max_in_flight.to_le_bytes());
        field(&self.dialer_max_frame.to_le_bytes());
        field(&self.dialer_heartbeat.interval_ms.to_le_bytes());
        field(&self.dialer_heartbeat.failure_timeout_ms.to_le_bytes());
        field(self.dialer_nonce);
        field(self.acceptor.as_bytes());
        field(&self.acceptor_incarnation.to_le_bytes());
        field(&self.acceptor_max_in_flight.to_le_bytes());
        field(&self.acceptor_max_frame.to_le_bytes());
        field(&self.acceptor_heartbeat.interval_ms.to_le_bytes());
        field(&self.acceptor_heartbeat.failure_timeout_ms.to_le_bytes());
        field(self.acceptor_nonce);
        mac
    }

    fn proof(&self, secret: &Secret, label: &str) -> [u8; 32] {
        self.mac(secret, label).finalize().into_bytes().into()
    }

    fn verify(&self, secret: &Secret, label: &str, proof: &[u8; 32]) -> bool {
        self.mac(secret, label).verify_slice(proof).is_ok()
    }
}

fn nonce() -> [u8; 32] {
    rand::random()
}

/// A `Welcome` frame carrying the acceptor's `proof`. [`accept`] makes the
/// one that admits its dialer, with the right proof.
pub fn welcome_frame(proof: [u8; 32]) -> Vec<u8> {
    FrameBuf::handshake(Kind::Welcome)
        .encode(&Proof { proof })
        .ok()
        .and_then(|frame| frame.finish(HANDSHAKE_MAX_FRAME).ok())
        .unwrap_or_else(|| unreachable!("32 bytes encode, and fit in a handshake frame"))
}

/// A dialer [`accept`] authenticated, and the `Welcome` that admits it.
#[derive(Debug)]
pub struct Accepted {
    /// Who the dialer is.
    pub peer: PeerInfo,
    /// The `Welcome` frame, with this side's proof: the first frame to
    /// send if the dialer is admitted (else a refusal, and no proof).
    pub welcome: Vec<u8>,
}

/// Sends `Refused` with `refusal`, best effort: the connection is closed next anyway.
pub async fn send_refusal<W: AsyncWrite + Unpin>(writer: &mut W, refusal: &Refusal) {
    if let Ok(frame) = FrameBuf::handshake(Kind::Refused)
        .encode(refusal)
        .map_err(|e| e.to_string())
        .and_then(|f| f.finish(HANDSHAKE_MAX_FRAME).map_err(|e| e.to_string()))
    {
        let _ = writer.write_all(&frame).await;
        let _ = writer.flush().await;
    }
}

async fn send<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    kind: Kind,
    prefix: &[u8],
    record: &T,
    peer: &str,
) -> Result<(), HandshakeError> {
    let failed = |detail: String| HandshakeError::Failed {
        peer: peer.to_owned(),
        detail,
    };
    let mut frame = FrameBuf::handshake(kind);
    frame.buf().extend_from_slice(prefix);
    let frame = frame
        .encode(record)
        .map_err(|e| failed(e.to_string()))?
        .finish(HANDSHAKE_MAX_FRAME)
        .map_err(|e| failed(e.to_string()))?;
    writer
        .write_all(&frame)
        .await
        .map_err(|e| failed(format!("write failed: {e}")))
}

/// Whether the peer may answer a read with a refusal: not before this side
/// has said anything (a stranger's first frame), so that whoever connects
/// cannot put a refusal of its choosing ("the secrets differ") in the log.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusable {
    Yes,
    NotYet,
}

/// Reads the next handshake record; a `Refused`, where `refusable`,
/// becomes [`HandshakeError::RefusedByPeer`].
async fn receive<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    expected: Kind,
    refusable: Refusable,
    me: &Identity,
    peer: &str,
) -> Result<bytes::Bytes, HandshakeError> {
    let failed = |detail: String| HandshakeError::Failed {
        peer: peer.to_owned(),
        detail,
    };
    let body = reader
        .next()
        .await
        .map_err(|e| failed(e.to_string()))?
        .ok_or_else(|| failed("the connection was closed".to_owned()))?;
    match Frame::parse(body).map_err(|e| failed(e.to_string()))? {
        Frame::Handshake { kind, payload } if kind == expected => Ok(payload),
        Frame::Handshake {
            kind: Kind::Refused,
            payload,
        } if refusable == Refusable::Yes => {
            let refusal = codec::decode::<Refusal>(&payload)
                .map_err(|e| failed(format!("unreadable refusal: {e}")))?
                .made_harmless();
            tracing::warn!(node = %me.node, peer, %refusal, "the peer refused the handshake");
            Err(HandshakeError::RefusedByPeer {
                peer: peer.to_owned(),
                refusal,
            })
        }
        // Named by its kind and size only: its payload is a stranger's
        // bytes, up to 16 KiB, and would go whole into a log line.
        other => {
            let got = match &other {
                Frame::Request { payload, .. } => format!("a call ({} bytes)", payload.len()),
                Frame::Reply { payload, .. } => format!("a reply ({} bytes)", payload.len()),
                Frame::Heartbeat => "a heartbeat".to_owned(),
                Frame::Leaving => "a leaving notice".to_owned(),
                Frame::NoMoreCalls => "a no-more-calls notice".to_owned(),
                Frame::Handshake { kind, payload } => {
                    format!("{kind:?} ({} bytes)", payload.len())
                }
            };
            Err(failed(format!("expected {expected:?}, got {got}")))
        }
    }
}

/// Refuses the far end: sends the refusal, logs it, returns the error.
async fn refuse<W: AsyncWrite + Unpin>(
    writer: &mut W,
    me: &Identity,
    peer: &str,
    refusal: Refusal,
) -> HandshakeError {
    tracing::warn!(node = %me.node, peer, %refusal, "refused the handshake");
    refuse_unlogged(writer, peer, refusal).await
}

/// Refuses the far end, leaving the log line to the caller: [`accept`]'s
/// refusals, whoever dialed in may cause, as often as it connects (the
/// listener logs them, so many a second).
async fn refuse_unlogged<W: AsyncWrite + Unpin>(
    writer: &mut W,
    peer: &str,
    refusal: Refusal,
) -> HandshakeError {
    send_refusal(writer, &refusal).await;
    HandshakeError::RefusedPeer {
        peer: peer.to_owned(),
        refusal,
    }
}

/// Runs the dialer's side. `expected` is the node we meant to reach.
pub async fn dial<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut W,
    me: &Identity,
    expected: Option<&str>,
    addr: SocketAddr,
) -> Result<PeerInfo, HandshakeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let peer = match expected {
        Some(node) => format!("node '{node}' at {addr}"),
        None => addr.to_string(),
    };
    let hello = Hello {
        cluster: me.cluster.clone(),
        node: me.node.clone(),
        role: me.role,
        incarnation: me.incarnation,
        fingerprint: me.fingerprint,
        max_in_flight: me.max_in_flight,
        max_frame: me.max_frame,
        heartbeat: me.heartbeat,
        nonce: nonce(),
    };
    let mut prefix = MAGIC.to_vec();
    prefix.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    send(writer, Kind::Hello, &prefix, &hello, &peer).await?;

    let payload = receive(reader, Kind::HelloAck, Refusable::Yes, me, &peer).await?;
    let ack: HelloAck = codec::decode(&payload).map_err(|e| HandshakeError::Failed {
        peer: peer.clone(),
        detail: format!("unreadable HelloAck: {e}"),
    })?;
    if ack.cluster != me.cluster {
        let refusal = Refusal::Cluster {
            dialer: me.cluster.clone(),
            acceptor: harmless(&ack.cluster, SHOWN),
        };
        return Err(refuse(writer, me, &peer, refusal).await);
    }
    if ack.fingerprint != me.fingerprint {
        let refusal = Refusal::Fingerprint {
            dialer: me.fingerprint,
            acceptor: ack.fingerprint,
        };
        return Err(refuse(writer, me, &peer, refusal).await);
    }
    if let Some(refusal) = in_flight_refusal("acceptor", ack.max_in_flight) {
        return Err(refuse(writer, me, &peer, refusal).await);
    }
    if let Some(refusal) = frame_limit_refusal("acceptor", ack.max_frame) {
        return Err(refuse(writer, me, &peer, refusal).await);
    }
    if let Some(refusal) = heartbeat_refusal(me.heartbeat, ack.heartbeat) {
        return Err(refuse(writer, me, &peer, refusal).await);
    }
    if let Some(expected) = expected
        && expected != ack.node
    {
        let refusal = Refusal::WrongNode {
            expected: expected.to_owned(),
            found: harmless(&ack.node, SHOWN),
        };
        return Err(refuse(writer, me, &peer, refusal).await);
    }
    let transcript = Transcript {
        cluster: &me.cluster,
        dialer: &me.node,
        dialer_incarnation: me.incarnation,
        dialer_max_in_flight: me.max_in_flight,
        dialer_max_frame: me.max_frame,
        dialer_heartbeat: me.heartbeat,
        dialer_nonce: &hello.nonce,
        acceptor: &ack.node,
        acceptor_incarnation: ack.incarnation,
        acceptor_max_in_flight: ack.max_in_flight,
        acceptor_max_frame: ack.max_frame,
        acceptor_heartbeat: ack.heartbeat,
        acceptor_nonce: &ack.nonce,
    };
    let auth = Proof {
        proof: transcript.proof(&me.secret, "dialer"),
    };
    send(writer, Kind::Auth, &[], &auth, &peer).await?;
    let payload = receive(reader, Kind::Welcome, Refusable::Yes, me, &peer).await?;
    let welcome: Proof = codec::decode(&payload).map_err(|e| HandshakeError::Failed {
        peer: peer.clone(),
        detail: format!("unreadable Welcome: {e}"),
    })?;
    if !transcript.verify(&me.secret, "acceptor", &welcome.proof) {
        // It took our proof without knowing the secret: an impostor at
        // the address (a node with another secret refuses ours instead).
        let refusal = Refusal::Authentication {
            side: "acceptor".to_owned(),
        };
        return Err(refuse(writer, me, &peer, refusal).await);
    }
    Ok(PeerInfo {
        node: ack.node.into(),
        role: Role::Node,
        incarnation: ack.incarnation,
        max_in_flight: ack.max_in_flight,
        max_frame: ack.max_frame,
        addr,
    })
}

/// Runs the acceptor's side up to, not including, `Welcome`: the caller
/// admits the peer (or refuses it with [`send_refusal`]) and sends
/// [`Accepted::welcome`] itself.
pub async fn accept<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut W,
    me: &Identity,
    addr: SocketAddr,
) -> Result<Accepted, HandshakeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut peer = addr.to_string();
    let failed = |peer: &str, detail: String| HandshakeError::Failed {
        peer: peer.to_owned(),
        detail,
    };
    let payload = receive(reader, Kind::Hello, Refusable::NotYet, me, &peer).await?;
    if payload.len() < MAGIC.len() + 4 || payload[..MAGIC.len()] != MAGIC {
        return Err(failed(
            &peer,
            "not a Boutique node (no handshake magic)".to_owned(),
        ));
    }
    let mut version = [0; 4];
    version.copy_from_slice(&payload[MAGIC.len()..MAGIC.len() + 4]);
    let version = u32::from_le_bytes(version);
    if version != PROTOCOL_VERSION {
        let refusal = Refusal::Version {
            dialer: version,
            acceptor: PROTOCOL_VERSION,
        };
        return Err(refuse_unlogged(writer, &peer, refusal).await);
    }
    let hello: Hello = codec::decode(&payload[MAGIC.len() + 4..])
        .map_err(|e| failed(&peer, format!("unreadable Hello: {e}")))?;
    // Checked before the name goes into any log line or error: it is
    // whatever the dialer sent, up to a frame's length, any bytes.
    if !crate::config::is_node_name(&hello.node) {
        return Err(failed(
            &peer,
            format!(
                "the Hello gives {} as its node's name, which is none (1 to {} lower-case letters, digits, '-' and '_')",
                shown(&hello.node),
                crate::config::MAX_NODE_NAME
            ),
        ));
    }
    peer = format!("{} '{}' at {addr}", role_name(hello.role), hello.node);
    if let Some(refusal) = in_flight_refusal("dialer", hello.max_in_flight) {
        return Err(refuse_unlogged(writer, &peer, refusal).await);
    }
    if let Some(refusal) = frame_limit_refusal("dialer", hello.max_frame) {
        return Err(refuse_unlogged(writer, &peer, refusal).await);
    }
    if hello.cluster != me.cluster {
        let refusal = Refusal::Cluster {
            // Told back to the dialer and logged here: shown, not as sent.
            dialer: shown(&hello.cluster),
            acceptor: me.cluster.clone(),
        };
        return Err(refuse_unlogged(writer, &peer, refusal).await);
    }
    if hello.fingerprint != me.fingerprint {
        let refusal = Refusal::Fingerprint {
            dialer: hello.fingerprint,
            acceptor: me.fingerprint,
        };
        return Err(refuse_unlogged(writer, &peer, refusal).await);
    }
    // After the cluster: a stranger is told it is one, not how to fit in.
    if let Some(refusal) = heartbeat_refusal(hello.heartbeat, me.heartbeat) {
        return Err(refuse_unlogged(writer, &peer, refusal).await);
    }
    let ack_nonce = nonce();
    let transcript = Transcript {
        cluster: &me.cluster,
        dialer: &hello.node,
        dialer_incarnation: hello.incarnation,
        dialer_max_in_flight: hello.max_in_flight,
        dialer_max_frame: hello.max_frame,
        dialer_heartbeat: hello.heartbeat,
        dialer_nonce: &hello.nonce,
        acceptor: &me.node,
        acceptor_incarnation: me.incarnation,
        acceptor_max_in_flight: me.max_in_flight,
        acceptor_max_frame: me.max_frame,
        acceptor_heartbeat: me.heartbeat,
        acceptor_nonce: &ack_nonce,
    };
    let ack = HelloAck {
        cluster: me.cluster.clone(),
        node: me.node.clone(),
        incarnation: me.incarnation,
        fingerprint: me.fingerprint,
        max_in_flight: me.max_in_flight,
        max_frame: me.max_frame,
        heartbeat: me.heartbeat,
        nonce: ack_nonce,
    };
    send(writer, Kind::HelloAck, &[], &ack, &peer).await?;
    let payload = receive(reader, Kind::Auth, Refusable::Yes, me, &peer).await?;
    let auth: Proof =
        codec::decode(&payload).map_err(|e| failed(&peer, format!("unreadable Auth: {e}")))?;
    if !transcript.verify(&me.secret, "dialer", &auth.proof) {
        let refusal = Refusal::Authentication {
            side: "dialer".to_owned(),
        };
        return Err(refuse_unlogged(writer, &peer, refusal).await);
    }
    // Proven only now, to a dialer that proved.
    let welcome = welcome_frame(transcript.proof(&me.secret, "acceptor"));
    Ok(Accepted {
        peer: PeerInfo {
            node: hello.node.into(),
            role: hello.role,
            incarnation: hello.incarnation,
            max_in_flight: hello.max_in_flight,
            max_frame: hello.max_frame,
            addr,
        },
        welcome,
    })
}

/// The refusal of a peer (the `side`) that says it may have `said` calls
/// in flight, unless that is 1 to [`MAX_IN_FLIGHT_PER_PEER`], as a config
/// allows. A peer is cut off if it leaves more than that many of its calls
/// unanswered.
///
/// [`MAX_IN_FLIGHT_PER_PEER`]: crate::config::MAX_IN_FLIGHT_PER_PEER
fn in_flight_refusal(side: &str, said: u32) -> Option<Refusal> {
    let allowed = 1..=crate::config::MAX_IN_FLIGHT_PER_PEER;
    (!allowed.contains(&(said as usize))).then(|| Refusal::InFlight {
        side: side.to_owned(),
        said,
    })
}

/// The refusal of a peer (the `side`) that says it reads frames of up to
/// `said` bytes, unless a config allows that ([`MIN_FRAME_BYTES`] to
/// [`MAX_DECODE_BYTES`]). Frames to it are built to the smaller of its
/// limit and this node's.
///
/// [`MAX_DECODE_BYTES`]: crate::codec::MAX_DECODE_BYTES
/// [`MIN_FRAME_BYTES`]: crate::config::MIN_FRAME_BYTES
fn frame_limit_refusal(side: &str, said: u32) -> Option<Refusal> {
    let allowed = crate::config::MIN_FRAME_BYTES..=crate::codec::MAX_DECODE_BYTES;
    (!allowed.contains(&(said as usize))).then(|| Refusal::FrameLimit {
        side: side.to_owned(),
        said,
    })
}

/// The refusal of a pair whose heartbeat settings do not fit (see
/// [`Heartbeat::hears`]), either way.
fn heartbeat_refusal(dialer: Heartbeat, acceptor: Heartbeat) -> Option<Refusal> {
    (!(dialer.hears(acceptor) && acceptor.hears(dialer)))
        .then_some(Refusal::Heartbeat { dialer, acceptor })
}

/// A name a dialer sent, fit for a log line: its first 64 characters, with
/// control characters and quotes escaped (no forged log lines), and `…`
/// if it went on.
fn shown(name: &str) -> String {
    clipped(name, SHOWN, |_| true)
}

/// How many characters of a name from the network are logged or told.
const SHOWN: usize = 64;

/// `text` cut to `max` characters (`…` after if it was longer), with the
/// characters `escape` picks escaped (a line break shows as `\n`).
fn clipped(text: &str, max: usize, escape: fn(char) -> bool) -> String {
    // `…` is neither a control character nor one `escape_debug` changes.
    let mut shown = String::new();
    for c in crate::text::clipped(text, max).chars() {
        if escape(c) {
            shown.extend(c.escape_debug());
        } else {
            shown.push(c);
        }
    }
    shown
}

impl Refusal {
    /// A refusal read from the far end, before anything is proven about
    /// it: every text in it cut short, its control characters escaped (a
    /// line break shows as `\n`), since it is logged and shown to people:
    /// a stranger could otherwise write lines of its own into this node's
    /// log, 16 KiB at a time. (Only control characters: a name the far end
    /// escaped already, telling back what it got, reads the same.)
    fn made_harmless(self) -> Refusal {
        let name = |text: String| harmless(&text, SHOWN);
        match self {
            Refusal::Cluster { dialer, acceptor } => Refusal::Cluster {
                dialer: name(dialer),
                acceptor: name(acceptor),
            },
            Refusal::Authentication { side } => Refusal::Authentication { side: name(side) },
            Refusal::Certificate { node, detail } => Refusal::Certificate {
                node: name(node),
                detail: harmless(&detail, 512),
            },
            Refusal::UnknownNode { node } => Refusal::UnknownNode { node: name(node) },
            Refusal::WrongNode { expected, found } => Refusal::WrongNode {
                expected: name(expected),
                found: name(found),
            },
            Refusal::Duplicate { dialer, acceptor } => Refusal::Duplicate {
                dialer: name(dialer),
                acceptor: name(acceptor),
            },
            Refusal::InFlight { side, said } => Refusal::InFlight {
                side: name(side),
                said,
            },
            Refusal::FrameLimit { side, said } => Refusal::FrameLimit {
                side: name(side),
                said,
            },
            other @ (Refusal::Version { .. }
            | Refusal::Fingerprint { .. }
            | Refusal::Heartbeat { .. }
            | Refusal::ShuttingDown) => other,
        }
    }
}

/// `text` cut to `max` characters, its control characters escaped.
fn harmless(text: &str, max: usize) -> String {
    clipped(text, max, char::is_control)
}

/// Refuses an authenticated peer at admission (after [`accept`]): sends and
/// logs the refusal.
pub async fn refuse_admission<W: AsyncWrite + Unpin>(
    writer: &mut W,
    me: &Identity,
    peer: &PeerInfo,
    refusal: Refusal,
) -> HandshakeError {
    let name = format!("{} '{}' at {}", role_name(peer.role), peer.node, peer.addr);
    refuse(writer, me, &name, refusal).await
}

pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Node => "node",
        Role::Client => "client",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Fingerprint;

    fn identity(node: &str, secret: &[u8]) -> Identity {
        Identity {
            cluster: "boutique".into(),
            node: node.into(),
            role: Role::Node,
            incarnation: 7,
            fingerprint: Fingerprint([3; 32]),
            max_in_flight: 1024,
            max_frame: 4 * 1024 * 1024,
            heartbeat: Heartbeat::default(),
            secret: Arc::new(Secret::from_bytes("test", secret.to_vec()).unwrap()),
        }
    }

    const SHARED: &[u8] = b"the secret the nodes share";

    /// Plays a dialer by hand against `accept` on node "a", proving with
    /// `secret`. Returns every frame body the acceptor sent (its `Welcome`
    /// too, if it admitted the dialer) and the proof of the shared secret
    /// the acceptor would give over that exchange's transcript.
    async fn dial_by_hand(secret: &[u8]) -> (Vec<u8>, [u8; 32]) {
        let acceptor = identity("a", SHARED);
        let dialer = identity("stranger", secret);
        let (near, far) = tokio::io::duplex(64 * 1024);
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let accepting = tokio::spawn(async move {
            let (read, mut write) = tokio::io::split(far);
            let mut reader = FrameReader::new(read, HANDSHAKE_MAX_FRAME);
            let accepted = accept(&mut reader, &mut write, &acceptor, addr).await;
            if let Ok(accepted) = &accepted {
                write.write_all(&accepted.welcome).await.unwrap();
            }
            accepted.is_ok()
        });
        let (read, mut write) = tokio::io::split(near);
        let mut reader = FrameReader::new(read, HANDSHAKE_MAX_FRAME);
        let hello = Hello {
            cluster: dialer.cluster.clone(),
            node: dialer.node.clone(),
            role: Role::Node,
            incarnation: dialer.incarnation,
            fingerprint: dialer.fingerprint,
            max_in_flight: dialer.max_in_flight,
            max_frame: dialer.max_frame,
            heartbeat: dialer.heartbeat,
            nonce: nonce(),
        };
        let mut prefix = MAGIC.to_vec();
        prefix.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        send(&mut write, Kind::Hello, &prefix, &hello, "a")
            .await
            .unwrap();
        let mut received = Vec::new();
        let ack = reader.next().await.unwrap().unwrap();
        received.extend_from_slice(&ack);
        let Frame::Handshake { payload, .. } = Frame::parse(ack).unwrap() else {
            panic!("not a handshake frame");
        };
        let ack: HelloAck = codec::decode(&payload).unwrap();
        let transcript = Transcript {
            cluster: "boutique",
            dialer: &hello.node,
            dialer_incarnation: hello.incarnation,
            dialer_max_in_flight: hello.max_in_flight,
            dialer_max_frame: hello.max_frame,
            dialer_heartbeat: hello.heartbeat,
            dialer_nonce: &hello.nonce,
            acceptor: &ack.node,
            acceptor_incarnation: ack.incarnation,
            acceptor_max_in_flight: ack.max_in_flight,
            acceptor_max_frame: ack.max_frame,
            acceptor_heartbeat: ack.heartbeat,
            acceptor_nonce: &ack.nonce,
        };
        let auth = Proof {
            proof: transcript.proof(&dialer.secret, "dialer"),
        };
        send(&mut write, Kind::Auth, &[], &auth, "a").await.unwrap();
        let admitted = accepting.await.unwrap();
        assert_eq!(admitted, secret == SHARED);
        drop(write);
        while let Ok(Some(body)) = reader.next().await {
            received.extend_from_slice(&body);
        }
        let shared = Secret::from_bytes("test", SHARED.to_vec()).unwrap();
        (received, transcript.proof(&shared, "acceptor"))
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[tokio::test]
    async fn a_dialer_that_cannot_prove_the_secret_gets_no_proof_of_it() {
        // Anyone can dial: a MAC of the secret over a transcript it knows
        // would let it guess the secret offline.
        let (received, proof) = dial_by_hand(b"a guess at the shared secret").await;
        assert!(
            !contains(&received, &proof),
            "the acceptor proved to a stranger"
        );
        // The same exchange with the secret gets the proof, in `Welcome`.
        let (received, proof) = dial_by_hand(SHARED).await;
        assert!(
            contains(&received, &proof),
            "no proof in the acceptor's frames"
        );
    }

    #[tokio::test]
    async fn an_acceptor_that_takes_the_proof_without_proving_is_refused() {
        // An impostor at a node's address: it answers, takes the dialer's
        // proof, and welcomes it without knowing the secret.
        let dialer = identity("b", SHARED);
        let (near, far) = tokio::io::duplex(64 * 1024);
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let impostor = tokio::spawn(async move {
            let (read, mut write) = tokio::io::split(far);
            let mut reader = FrameReader::new(read, HANDSHAKE_MAX_FRAME);
            reader.next().await.unwrap().unwrap();
            let ack = HelloAck {
                cluster: "boutique".into(),
                node: "a".into(),
                incarnation: 1,
                fingerprint: Fingerprint([3; 32]),
                max_in_flight: 1024,
                max_frame: 4 * 1024 * 1024,
                heartbeat: Heartbeat::default(),
                nonce: nonce(),
            };
            send(&mut write, Kind::HelloAck, &[], &ack, "b")
                .await
                .unwrap();
            reader.next().await.unwrap().unwrap();
            write.write_all(&welcome_frame([0; 32])).await.unwrap();
            // What the dialer says next.
            let body = reader.next().await.unwrap().unwrap();
            match Frame::parse(body).unwrap() {
                Frame::Handshake {
                    kind: Kind::Refused,
                    payload,
                } => codec::decode::<Refusal>(&payload).unwrap(),
                other => panic!("not a refusal: {other:?}"),
            }
        });
        let (read, mut write) = tokio::io::split(near);
        let mut reader = FrameReader::new(read, HANDSHAKE_MAX_FRAME);
        let error = dial(&mut reader, &mut write, &dialer, Some("a"), addr)
            .await
            .unwrap_err();
        let expected = Refusal::Authentication {
            side: "acceptor".into(),
        };
        assert_eq!(error.refusal(), Some(&expected), "{error}");
        assert!(
            matches!(error, HandshakeError::RefusedPeer { .. }),
            "{error}"
        );
        assert_eq!(impostor.await.unwrap(), expected, "the impostor is told");
    }

    #[tokio::test]
    async fn a_refusal_in_place_of_hello_is_a_failed_handshake_not_the_peers_word() {
        // A stranger's first frame, a refusal saying the secrets differ:
        // logged as the peer's refusal, it sent operators after a secret
        // that was right.
        let acceptor = identity("a", SHARED);
        let (near, far) = tokio::io::duplex(64 * 1024);
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let (_, mut write) = tokio::io::split(near);
        let refusal = Refusal::Authentication {
            side: "acceptor".into(),
        };
        send(&mut write, Kind::Refused, &[], &refusal, "a")
            .await
            .unwrap();
        let (read, mut reply) = tokio::io::split(far);
        let mut reader = FrameReader::new(read, HANDSHAKE_MAX_FRAME);
        let Err(error) = accept(&mut reader, &mut reply, &acceptor, addr).await else {
            panic!("a refusal was taken for a hello");
        };
        match &error {
            HandshakeError::Failed { detail, .. } => {
                assert!(detail.contains("expected Hello, got Refused"), "{detail}");
            }
            other => panic!("not a failed handshake: {other}"),
        }
    }
}
