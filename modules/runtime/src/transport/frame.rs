//! Frames: how bytes on a node connection are cut into messages.
//!
//! Every frame is a 4-byte big-endian length, then that many bytes of body.
//! The body starts with a one-byte [`Kind`]:
//!
//! ```text
//! request  | kind=1 | call id u64 | method u64 | budget µs u64 | caller u64 | trace id u128 | parent span u64 | message (codec)
//! reply    | kind=2 | call id u64 | status u8  | payload (codec)
//! heartbeat| kind=3 |
//! leaving  | kind=4 |
//! handshake| kind=16..20 | record (see handshake.rs)
//! ```
//!
//! Integers inside bodies are little-endian. A reply's status says what its
//! payload is: the handler's outcome, a [`Rejection`](crate::Rejection), or a
//! [`CallError`](crate::CallError) raised on the receiving node.
//!
//! [`FrameReader`] enforces the size limit *before* reading a body, so a
//! length prefix of 4 GiB costs nothing but the connection. It can also
//! stamp the time of every read that brought bytes, which is how a peer
//! busy sending one large frame still counts as alive.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::codec::{self, CodecError};

/// Bytes in the length prefix.
pub const PREFIX_LEN: usize = 4;
/// Bytes before a request's message: prefix, kind, call id, method,
/// budget, caller, trace id, parent span.
pub const REQUEST_HEADER_LEN: usize = PREFIX_LEN + 1 + 8 + 8 + 8 + 8 + 16 + 8;
/// Where a request's budget (µs, a little-endian u64) starts in its frame:
/// after the prefix, the kind, the call id and the method. The writer
/// rewrites it as the frame leaves (see `connection`).
pub const REQUEST_BUDGET_AT: usize = PREFIX_LEN + 1 + 8 + 8;
/// Bytes before a reply's payload: prefix, kind, call id, status.
pub const REPLY_HEADER_LEN: usize = PREFIX_LEN + 1 + 8 + 1;

/// How much to ask the socket for at a time.
const READ_CHUNK: usize = 16 * 1024;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A call.
    Request = 1,
    /// The answer to a call.
    Reply = 2,
    /// "Still here": sent every heartbeat interval, answered by nothing.
    Heartbeat = 3,
    /// "I am shutting down": send me no new calls.
    Leaving = 4,
    /// The answer to `Leaving`: no call follows this frame, so a leaving
    /// node that has read it has every call it will get.
    NoMoreCalls = 5,
    /// Handshake: the dialer introduces itself.
    Hello = 16,
    /// Handshake: the acceptor introduces itself (its proof of the secret
    /// waits for the dialer's, in `Welcome`).
    HelloAck = 17,
    /// Handshake: the dialer proves the secret.
    Auth = 18,
    /// Handshake: the acceptor lets the dialer in.
    Welcome = 19,
    /// Handshake: either side refuses, saying why.
    Refused = 20,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Request,
            2 => Kind::Reply,
            3 => Kind::Heartbeat,
            4 => Kind::Leaving,
            5 => Kind::NoMoreCalls,
            16 => Kind::Hello,
            17 => Kind::HelloAck,
            18 => Kind::Auth,
            19 => Kind::Welcome,
            20 => Kind::Refused,
            _ => return None,
        })
    }
}

/// What a reply's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReplyStatus {
    /// The handler's outcome: `Result<Reply, Error>`.
    Outcome = 0,
    /// The call was refused unrun: a `Rejection`.
    Rejected = 1,
    /// The receiving node's local call failed: a `CallError`.
    Failed = 2,
}

/// A frame that cannot be accepted. The connection it came on is closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is over the limit.
    #[error("frame of {len} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame with no body.
    #[error("empty frame")]
    Empty,
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The body does not parse.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Reading from the socket failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A parsed frame body.
#[derive(Debug)]
pub enum Frame {
    /// A call.
    Request {
        /// Who calls what, and for how long.
        header: RequestHeader,
        /// The encoded message.
        payload: Bytes,
    },
    /// An answer.
    Reply {
        /// The call answered.
        call_id: u64,
        /// What the payload is.
        status: ReplyStatus,
        /// The encoded payload.
        payload: Bytes,
    },
    /// A heartbeat.
    Heartbeat,
    /// The peer is shutting down.
    Leaving,
    /// The peer sends no more calls (it heard that this node is leaving).
    NoMoreCalls,
    /// A handshake record.
    Handshake {
        /// Which one.
        kind: Kind,
        /// Its bytes, after the kind.
        payload: Bytes,
    },
}

fn take_u128(body: &mut Bytes) -> Result<u128, FrameError> {
    if body.remaining() < 16 {
        return Err(FrameError::Malformed("header cut short".to_owned()));
    }
    Ok(body.get_u128_le())
}

fn take_u64(body: &mut Bytes) -> Result<u64, FrameError> {
    if body.remaining() < 8 {
        return Err(FrameError::Malformed("header cut short".to_owned()));
    }
    Ok(body.get_u64_le())
}

impl Frame {
    /// Parses a frame body (without its length prefix).
    pub fn parse(mut body: Bytes) -> Result<Frame, FrameError> {
        if body.is_empty() {
            return Err(FrameError::Empty);
        }
        let byte = body.get_u8();
        let kind = Kind::from_byte(byte)
            .ok_or_else(|| FrameError::Malformed(format!("unknown frame kind {byte}")))?;
        Ok(match kind {
            Kind::Request => Frame::Request {
                header: RequestHeader {
                    call_id: take_u64(&mut body)?,
                    method: take_u64(&mut body)?,
                    budget_us: take_u64(&mut body)?,
                    caller: take_u64(&mut body)?,
                    trace: take_u128(&mut body)?,
                    parent: take_u64(&mut body)?,
                },
                payload: body,
            },
            Kind::Reply => {
                let call_id = take_u64(&mut body)?;
                if body.is_empty() {
                    return Err(FrameError::Malformed("reply without status".to_owned()));
                }
                let status = match body.get_u8() {
                    0 => ReplyStatus::Outcome,
                    1 => ReplyStatus::Rejected,
                    2 => ReplyStatus::Failed,
                    other => {
                        return Err(FrameError::Malformed(format!(
                            "unknown reply status {other}"
                        )));
                    }
                };
                Frame::Reply {
                    call_id,
                    status,
                    payload: body,
                }
            }
            Kind::Heartbeat | Kind::Leaving | Kind::NoMoreCalls => {
                if !body.is_empty() {
                    return Err(FrameError::Malformed(format!(
                        "a {kind:?} frame with a body"
                    )));
                }
                match kind {
                    Kind::Heartbeat => Frame::Heartbeat,
                    Kind::Leaving => Frame::Leaving,
                    _ => Frame::NoMoreCalls,
                }
            }
            kind => Frame::Handshake {
                kind,
                payload: body,
            },
        })
    }
}

/// What a request frame says before its message.
#[derive(Debug, Clone, Copy)]
pub struct RequestHeader {
    /// The caller's call id.
    pub call_id: u64,
    /// The method.
    pub method: u64,
    /// Microseconds the caller will wait.
    pub budget_us: u64,
    /// The calling module ([`caller_id`]), or 0 for a client.
    pub caller: u64,
    /// The trace the call belongs to (0: none; the receiver starts one).
    pub trace: u128,
    /// The span (call id) of the call it was made for, or 0.
    pub parent: u64,
}

/// A frame being built: the header is written, the payload is appended, and
/// [`FrameBuf::finish`] writes the length.
pub struct FrameBuf(Vec<u8>);

impl FrameBuf {
    /// A request for `method` from a client (no calling module) with the
    /// given call id and time budget; the message is appended next.
    pub fn request(call_id: u64, method: u64, budget_us: u64) -> FrameBuf {
        FrameBuf::request_into(
            Vec::with_capacity(REQUEST_HEADER_LEN + 64),
            RequestHeader {
                call_id,
                method,
                budget_us,
                caller: 0,
                trace: 0,
                parent: 0,
            },
        )
    }

    /// A request with `header`, reusing `buf`'s allocation.
    pub fn request_into(mut buf: Vec<u8>, header: RequestHeader) -> FrameBuf {
        let RequestHeader {
            call_id,
            method,
            budget_us,
            caller,
            trace,
            parent,
        } = header;
        buf.clear();
        buf.extend_from_slice(&[0; PREFIX_LEN]);
        buf.push(Kind::Request as u8);
        buf.extend_from_slice(&call_id.to_le_bytes());
        buf.extend_from_slice(&method.to_le_bytes());
        buf.extend_from_slice(&budget_us.to_le_bytes());
        buf.extend_from_slice(&caller.to_le_bytes());
        buf.extend_from_slice(&trace.to_le_bytes());
        buf.extend_from_slice(&parent.to_le_bytes());
        FrameBuf(buf)
    }

    /// A reply to `call_id`; the payload is appended next.
    pub fn reply(call_id: u64, status: ReplyStatus) -> FrameBuf {
        let mut buf = Vec::with_capacity(REPLY_HEADER_LEN + 64);
        buf.extend_from_slice(&[0; PREFIX_LEN]);
        buf.push(Kind::Reply as u8);
        buf.extend_from_slice(&call_id.to_le_bytes());
        buf.push(status as u8);
        FrameBuf(buf)
    }

    /// A handshake record of `kind`; its bytes are appended next.
    pub fn handshake(kind: Kind) -> FrameBuf {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&[0; PREFIX_LEN]);
        buf.push(kind as u8);
        FrameBuf(buf)
    }

    /// Wraps a buffer that already holds a header written by one of the
    /// constructors (as handed out by [`FrameBuf::into_inner`]).
    pub fn from_inner(buf: Vec<u8>) -> FrameBuf {
        FrameBuf(buf)
    }

    /// The buffer, to append a payload to.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    /// The raw buffer, header included.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }

    /// Appends `value` encoded with the codec.
    pub fn encode<T: serde::Serialize + ?Sized>(
        mut self,
        value: &T,
    ) -> Result<FrameBuf, CodecError> {
        codec::encode_into(value, &mut self.0)?;
        Ok(self)
    }

    /// Writes the length prefix and returns the finished frame, or the
    /// frame's size if it is over `max`.
    pub fn finish(mut self, max: usize) -> Result<Vec<u8>, FrameError> {
        let len = self.0.len() - PREFIX_LEN;
        if len > max {
            return Err(FrameError::TooLarge { len, max });
        }
        let prefix = u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max })?;
        self.0[..PREFIX_LEN].copy_from_slice(&prefix.to_be_bytes());
        Ok(self.0)
    }
}

/// The id of module `name` as a caller on the wire (0 is a client).
pub const fn caller_id(name: &str) -> u64 {
    // The method id of a message nobody can name (messages are Rust
    // identifiers), so it never collides with a real method.
    crate::service::MethodId::of(name, "#caller").0
}

/// A whole heartbeat frame: a body of one byte, its kind.
pub const HEARTBEAT_FRAME: [u8; PREFIX_LEN + 1] = [0, 0, 0, 1, Kind::Heartbeat as u8];

/// A whole leaving frame.
pub const LEAVING_FRAME: [u8; PREFIX_LEN + 1] = [0, 0, 0, 1, Kind::Leaving as u8];

/// A whole no-more-calls frame.
pub const NO_MORE_CALLS_FRAME: [u8; PREFIX_LEN + 1] = [0, 0, 0, 1, Kind::NoMoreCalls as u8];

/// The kind of a finished frame, and its call id if it is a request.
pub fn request_call_id(frame: &[u8]) -> Option<u64> {
    if frame.len() >= REQUEST_HEADER_LEN && frame[PREFIX_LEN] == Kind::Request as u8 {
        let mut id = [0; 8];
        id.copy_from_slice(&frame[PREFIX_LEN + 1..PREFIX_LEN + 9]);
        Some(u64::from_le_bytes(id))
    } else {
        None
    }
}

/// Reads frames from a byte stream, never buffering more than one frame of
/// at most `max` bytes beyond what the socket delivered.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    max: usize,
    /// Stamped with the coarse clock's milliseconds after every read that
    /// brought bytes.
    progress: Option<Arc<AtomicU64>>,
    /// Stamped after every read that brought bytes of a call's frame (a
    /// request or a reply) and left it unfinished: the peer's outbox is
    /// moving, and the replies queued behind that frame are on their way.
    reply_progress: Option<Arc<AtomicU64>>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader accepting frames of at most `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::with_capacity(READ_CHUNK),
            max,
            progress: None,
            reply_progress: None,
        }
    }

    /// Stamps `progress` with the time of every read that brings bytes,
    /// even in the middle of a frame.
    pub fn report_progress(&mut self, progress: Arc<AtomicU64>) {
        self.progress = Some(progress);
    }

    /// Stamps `progress` with the time of every read that brings bytes of
    /// a request or reply frame and leaves it unfinished (a large message
    /// on its way, which the replies behind it wait for: the peer sends
    /// its own calls and its answers through one outbox).
    pub fn report_reply_progress(&mut self, progress: Arc<AtomicU64>) {
        self.reply_progress = Some(progress);
    }

    /// The length of the first frame's body in the buffer, once its prefix
    /// is there.
    fn head_len(&self) -> Option<usize> {
        let prefix: [u8; PREFIX_LEN] = self.buf.get(..PREFIX_LEN)?.try_into().ok()?;
        Some(u32::from_be_bytes(prefix) as usize)
    }

    /// True if the buffer holds less than the whole of its first frame.
    fn head_unfinished(&self) -> bool {
        self.head_len()
            .is_none_or(|len| self.buf.len() < PREFIX_LEN + len)
    }

    /// Changes the size limit (after the handshake, frames may be larger).
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// The underlying stream (bytes already buffered are dropped).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next frame's body, or `None` at a clean end of stream.
    pub async fn next(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            if let Some(len) = self.head_len() {
                if len == 0 {
                    return Err(FrameError::Empty);
                }
                if len > self.max {
                    return Err(FrameError::TooLarge { len, max: self.max });
                }
                if self.buf.len() >= PREFIX_LEN + len {
                    self.buf.advance(PREFIX_LEN);
                    return Ok(Some(self.buf.split_to(len).freeze()));
                }
                // Room for what is to come, a step at a time: a frame
                // announced large and then trickled (or never sent) took
                // its whole size at once, up to the frame limit.
                self.buf
                    .reserve((PREFIX_LEN + len - self.buf.len()).min(GROWTH_STEP));
            } else {
                self.buf.reserve(READ_CHUNK);
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
            if let Some(progress) = &self.progress {
                progress.store(crate::deadline::now_ms(), Ordering::Relaxed);
            }
            // The frame at the head of the buffer is the one this read
            // added to (whole frames were handed out before it): stamped if
            // it is a call's, and still unfinished.
            let calls = [Kind::Request as u8, Kind::Reply as u8];
            if let Some(progress) = &self.reply_progress
                && self
                    .buf
                    .get(PREFIX_LEN)
                    .is_some_and(|kind| calls.contains(kind))
                && self.head_unfinished()
            {
                progress.store(crate::deadline::now_ms(), Ordering::Relaxed);
            }
        }
    }
}

/// The most a frame's buffer grows by before its bytes arrive.
const GROWTH_STEP: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_announced_large_takes_room_as_its_bytes_arrive() {
        use tokio::io::AsyncWriteExt;
        let (mut near, far) = tokio::io::duplex(64 * 1024);
        let announced: u32 = 16 << 20;
        near.write_all(&announced.to_be_bytes()).await.unwrap();
        near.write_all(&[Kind::Request as u8; 100]).await.unwrap();
        let mut reader = FrameReader::new(far, 16 << 20);
        // Nothing more comes: the read waits.
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), reader.next()).await;
        assert!(waited.is_err(), "{waited:?}");
        assert!(
            reader.buf.capacity() <= 2 * GROWTH_STEP,
            "{} bytes taken for 104 received",
            reader.buf.capacity()
        );
    }

    async fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Result<Option<Bytes>, String>> {
        let mut reader = FrameReader::new(&bytes[..], max);
        let mut out = Vec::new();
        loop {
            let next = reader.next().await.map_err(|e| e.to_string());
            let stop = !matches!(next, Ok(Some(_)));
            out.push(next);
            if stop {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn frames_round_trip_and_split_at_their_lengths() {
        let header = RequestHeader {
            call_id: 7,
            method: 99,
            budget_us: 1000,
            caller: 3,
            trace: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            parent: 5,
        };
        let a = FrameBuf::request_into(Vec::new(), header)
            .encode("hello")
            .unwrap()
            .finish(1024)
            .unwrap();
        let b = FrameBuf::reply(7, ReplyStatus::Outcome)
            .encode(&42u32)
            .unwrap()
            .finish(1024)
            .unwrap();
        assert_eq!(request_call_id(&a), Some(7));
        assert_eq!(request_call_id(&b), None);
        let frames = read_all([a, b].concat(), 1024).await;
        assert_eq!(frames.len(), 3);
        match Frame::parse(frames[0].clone().unwrap().unwrap()).unwrap() {
            Frame::Request {
                header: parsed,
                payload,
            } => {
                assert_eq!(
                    (
                        parsed.call_id,
                        parsed.method,
                        parsed.budget_us,
                        parsed.caller
                    ),
                    (7, 99, 1000, 3)
                );
                assert_eq!((parsed.trace, parsed.parent), (header.trace, 5));
                assert_eq!(codec::decode::<String>(&payload).unwrap(), "hello");
            }
            other => panic!("expected a request, got {other:?}"),
        }
        match Frame::parse(frames[1].clone().unwrap().unwrap()).unwrap() {
            Frame::Reply {
                call_id,
                status,
                payload,
            } => {
                assert_eq!((call_id, status), (7, ReplyStatus::Outcome));
                assert_eq!(codec::decode::<u32>(&payload).unwrap(), 42);
            }
            other => panic!("expected a reply, got {other:?}"),
        }
        assert!(matches!(frames[2], Ok(None)));
    }

    #[tokio::test]
    async fn an_oversized_length_prefix_is_refused_before_reading_the_body() {
        let frames = read_all(u32::MAX.to_be_bytes().to_vec(), 1 << 20).await;
        assert_eq!(frames.len(), 1);
        assert!(frames[0].as_ref().unwrap_err().contains("over the limit"));
    }

    #[tokio::test]
    async fn a_frame_cut_short_is_an_error_not_an_end() {
        let mut a = FrameBuf::request(1, 2, 3)
            .encode("payload")
            .unwrap()
            .finish(1024)
            .unwrap();
        a.truncate(a.len() - 2);
        let frames = read_all(a, 1024).await;
        assert!(
            frames[0]
                .as_ref()
                .unwrap_err()
                .contains("middle of a frame")
        );
    }

    #[test]
    fn finish_refuses_frames_over_the_limit() {
        let frame = FrameBuf::request(1, 2, 3).encode(&vec![0u8; 100]).unwrap();
        assert!(matches!(frame.finish(50), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(Frame::parse(Bytes::from_static(&[])).is_err());
        assert!(Frame::parse(Bytes::from_static(&[99])).is_err());
        assert!(Frame::parse(Bytes::from_static(&[1, 0, 0])).is_err());
        assert!(Frame::parse(Bytes::from_static(&[2, 0, 0, 0, 0, 0, 0, 0, 0])).is_err());
        assert!(Frame::parse(Bytes::from_static(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 9])).is_err());
        // The body-less frames take no body.
        for kind in [Kind::Heartbeat, Kind::Leaving, Kind::NoMoreCalls] {
            assert!(
                Frame::parse(Bytes::from(vec![kind as u8, 0])).is_err(),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn the_control_frames_parse_as_themselves() {
        let parse = |frame: &[u8]| Frame::parse(Bytes::copy_from_slice(&frame[PREFIX_LEN..]));
        assert!(matches!(parse(&HEARTBEAT_FRAME), Ok(Frame::Heartbeat)));
        assert!(matches!(parse(&LEAVING_FRAME), Ok(Frame::Leaving)));
        assert!(matches!(
            parse(&NO_MORE_CALLS_FRAME),
            Ok(Frame::NoMoreCalls)
        ));
    }
}
