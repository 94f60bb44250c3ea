//! The codec seam: the one file that knows how values become bytes.
//!
//! Everything that crosses between nodes (messages, replies, domain errors,
//! handshake records) goes through [`encode_into`] and [`decode`]. Today that
//! is serde + `bincode` 2.0.1 (pinned; formally unmaintained, see
//! RUSTSEC-2025-0141) in its standard configuration: little-endian, varint
//! integers, no field names. Swapping in `postcard` or another serde format
//! means changing this file only; the handshake's API fingerprint includes
//! [`FORMAT`], so nodes built with different codecs refuse each other.
//!
//! Decoding is bounded: a length prefix inside a message can never make the
//! decoder reserve more than [`MAX_DECODE_BYTES`], the value it builds may
//! take at most [`MAX_DECODED_MEMORY`] (see `decode_budget`: a frame of
//! empty strings is small on the wire and not in memory), and bytes left
//! over after the value are an error, not silently ignored.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::decode_budget::{Budget, Budgeted};

/// Names the wire format; part of the API fingerprint.
pub const FORMAT: &str = "bincode-2.0.1-standard";

/// The most memory one decode may claim for strings and collections. Frames
/// are never larger than this either (see the transport's frame limit).
pub const MAX_DECODE_BYTES: usize = 16 * 1024 * 1024;

/// The most memory one decoded value may take, as `decode_budget` counts
/// it (each element of its sequences and maps at its type's size, and its
/// strings' bytes): four times the largest frame.
pub const MAX_DECODED_MEMORY: usize = 4 * MAX_DECODE_BYTES;

/// A value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The value could not be encoded.
    #[error("could not encode: {0}")]
    Encode(String),
    /// The bytes are not a valid encoding of the expected type.
    #[error("could not decode: {0}")]
    Decode(String),
    /// The value was decoded but bytes were left over.
    #[error("could not decode: {extra} unexpected bytes after the value")]
    TrailingBytes {
        /// How many bytes were left.
        extra: usize,
    },
}

fn encode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

fn decode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODE_BYTES>()
}

/// True if `encoded` is an encoded `Result` that holds its `Err` (a call's
/// outcome that is the service's domain error): the format writes an
/// enum's variant first, `Ok` as 0 and `Err` as 1.
pub fn is_err_outcome(encoded: &[u8]) -> bool {
    encoded.first() == Some(&1)
}

/// Appends the encoding of `value` to `out`. A `Serialize` that panics
/// is an encoding error here, not a panic in the connection's task, which
/// would close the connection and fail every call on it.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        bincode::serde::encode_into_std_write(value, &mut *out, encode_config())
    }))
    .map_err(|_| CodecError::Encode("the value's Serialize panicked".to_owned()))?;
    encoded
        .map(|_| ())
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// The encoding of `value`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Decodes a `T` that must fill `bytes` exactly, within
/// [`MAX_DECODED_MEMORY`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_within(bytes, MAX_DECODED_MEMORY)
}

/// [`decode`] with a memory budget of `budget` bytes. A `Deserialize`
/// that panics on the peer's bytes is a decoding error of that call, not
/// a panic in the connection's reader, which would close the connection
/// and fail every call on it.
fn decode_within<T: DeserializeOwned>(bytes: &[u8], budget: usize) -> Result<T, CodecError> {
    std::panic::catch_unwind(|| decode_unguarded(bytes, budget)).unwrap_or_else(|_| {
        Err(CodecError::Decode(
            "the type's Deserialize panicked".to_owned(),
        ))
    })
}

/// [`decode_within`], panics and all.
fn decode_unguarded<T: DeserializeOwned>(bytes: &[u8], budget: usize) -> Result<T, CodecError> {
    let mut unread = Unread(bytes);
    let budget = Budget::new(budget);
    let value = {
        let mut decoder =
            bincode::serde::OwnedSerdeDecoder::from_reader(&mut unread, decode_config());
        T::deserialize(Budgeted::new(decoder.as_deserializer(), &budget))
            .map_err(|e| CodecError::Decode(decode_error_text(e)))?
    };
    if !unread.0.is_empty() {
        return Err(CodecError::TrailingBytes {
            extra: unread.0.len(),
        });
    }
    Ok(value)
}

/// What a decode error says. A message of serde's (the budget's, a
/// type's own) comes as it was written; bincode's `Display` would show it
/// as `OtherString("...")`.
fn decode_error_text(error: bincode::error::DecodeError) -> String {
    match error {
        bincode::error::DecodeError::OtherString(text) => text,
        other => other.to_string(),
    }
}

/// The bytes not decoded yet: bincode's reader, which says afterwards what
/// is left.
struct Unread<'a>(&'a [u8]);

impl bincode::de::read::Reader for Unread<'_> {
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), bincode::error::DecodeError> {
        let Some((read, rest)) = self.0.split_at_checked(bytes.len()) else {
            return Err(bincode::error::DecodeError::UnexpectedEnd {
                additional: bytes.len() - self.0.len(),
            });
        };
        bytes.copy_from_slice(read);
        self.0 = rest;
        Ok(())
    }

    fn peek_read(&mut self, n: usize) -> Option<&[u8]> {
        self.0.get(..n)
    }

    fn consume(&mut self, n: usize) {
        self.0 = self.0.get(n..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        items: Vec<u32>,
        nested: Option<Box<Sample>>,
    }

    #[test]
    fn round_trips() {
        let value = Sample {
            name: "mug".into(),
            items: vec![1, 2, 300_000],
            nested: Some(Box::new(Sample {
                name: String::new(),
                items: vec![],
                nested: None,
            })),
        };
        let bytes = encode(&value).unwrap();
        assert_eq!(decode::<Sample>(&bytes).unwrap(), value);
    }

    /// What a value takes decoded is charged as it is built: a frame of
    /// empty strings (a byte each on the wire, 24 here) stops at the
    /// budget, inside sequences, maps and enums alike; a value within it
    /// decodes.
    #[test]
    fn decoding_stops_at_its_memory_budget() {
        use std::collections::BTreeMap;
        const STRINGS: usize = 100_000;
        let empty = vec![String::new(); STRINGS];
        let bytes = encode(&empty).unwrap();
        assert!(bytes.len() < STRINGS + 10);
        let memory = STRINGS * std::mem::size_of::<String>();
        let error = decode_within::<Vec<String>>(&bytes, memory / 2).unwrap_err();
        assert!(
            matches!(&error, CodecError::Decode(text) if text.contains("bytes of memory decoded")),
            "{error:?}"
        );
        assert_eq!(decode_within::<Vec<String>>(&bytes, memory).unwrap(), empty);

        let map: BTreeMap<u32, Vec<String>> = [(1, empty.clone())].into();
        let bytes = encode(&map).unwrap();
        assert!(decode_within::<BTreeMap<u32, Vec<String>>>(&bytes, memory / 2).is_err());

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        enum Holder {
            Lines { lines: Vec<String> },
            Pair(Vec<String>, u8),
        }
        for holder in [
            Holder::Lines {
                lines: empty.clone(),
            },
            Holder::Pair(empty.clone(), 1),
        ] {
            let bytes = encode(&holder).unwrap();
            assert!(decode_within::<Holder>(&bytes, memory / 2).is_err());
            assert_eq!(decode_within::<Holder>(&bytes, 2 * memory).unwrap(), holder);
        }

        // A string's bytes count too.
        let long = "x".repeat(1000);
        let bytes = encode(&long).unwrap();
        assert!(decode_within::<String>(&bytes, 999).is_err());
        assert_eq!(decode_within::<String>(&bytes, 1000).unwrap(), long);
    }

    /// A struct's fields are inside the struct: an element is charged its
    /// size once, not again field by field (bincode hands a struct over
    /// as a sequence of its fields), plus what its strings hold.
    #[test]
    fn a_struct_is_charged_once_with_what_it_holds() {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        struct Line {
            product_id: String,
            quantity: i32,
            pair: (u8, u16),
        }
        let lines = vec![
            Line {
                product_id: "ABC".into(),
                quantity: 1,
                pair: (2, 3),
            };
            1000
        ];
        let bytes = encode(&lines).unwrap();
        let exact = 1000 * (std::mem::size_of::<Line>() + "ABC".len());
        assert_eq!(decode_within::<Vec<Line>>(&bytes, exact).unwrap(), lines);
        assert!(decode_within::<Vec<Line>>(&bytes, exact - 1).is_err());
    }

    /// A sequence of values that take no bytes on the wire (a billion
    /// units, from a five-byte frame) is charged a byte each: it stops,
    /// where it used to spin through every one.
    #[test]
    fn elements_of_no_size_are_charged_too() {
        let mut bytes = vec![0xFC];
        bytes.extend_from_slice(&1_000_000_000u32.to_le_bytes());
        let error = decode_within::<Vec<()>>(&bytes, 1000).unwrap_err();
        assert!(
            matches!(&error, CodecError::Decode(text) if text.contains("bytes of memory decoded")),
            "{error:?}"
        );
    }

    #[test]
    fn an_encoded_outcome_says_whether_it_is_an_error() {
        let ok: Result<String, u32> = Ok("fine".into());
        let err: Result<String, u32> = Err(7);
        assert!(!is_err_outcome(&encode(&ok).unwrap()));
        assert!(is_err_outcome(&encode(&err).unwrap()));
        assert!(!is_err_outcome(&[]));
    }

    /// A type whose own serde code panics: it is that call's error.
    #[test]
    fn a_panicking_serde_impl_is_an_error_of_its_value() {
        struct Touchy;
        impl Serialize for Touchy {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                panic!("touchy serializer, on purpose")
            }
        }
        impl<'de> Deserialize<'de> for Touchy {
            fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
                panic!("touchy deserializer, on purpose")
            }
        }
        let mut out = Vec::new();
        assert!(matches!(
            encode_into(&Touchy, &mut out),
            Err(CodecError::Encode(text)) if text.contains("panicked")
        ));
        assert!(matches!(
            decode::<Touchy>(&[0]),
            Err(CodecError::Decode(text)) if text.contains("panicked")
        ));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut bytes = encode(&7u32).unwrap();
        bytes.push(0);
        assert_eq!(
            decode::<u32>(&bytes),
            Err(CodecError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn a_huge_length_prefix_is_refused_without_allocating_it() {
        // A string claiming u64::MAX / 2 bytes: varint marker 0xFD then 8 bytes.
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(matches!(
            decode::<String>(&bytes),
            Err(CodecError::Decode(_))
        ));
        // A vector claiming a billion elements.
        let mut bytes = vec![0xFC];
        bytes.extend_from_slice(&1_000_000_000u32.to_le_bytes());
        assert!(matches!(
            decode::<Vec<u64>>(&bytes),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn truncated_input_is_an_error() {
        let bytes = encode(&Sample {
            name: "sunglasses".into(),
            items: vec![1, 2, 3],
            nested: None,
        })
        .unwrap();
        for cut in 0..bytes.len() {
            assert!(decode::<Sample>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
