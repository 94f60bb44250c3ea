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
//! decoder reserve more than [`MAX_DECODE_BYTES`], and bytes left over after
//! the value are an error, not silently ignored.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Names the wire format; part of the API fingerprint.
pub const FORMAT: &str = "bincode-2.0.1-standard";

/// The most memory one decode may claim for strings and collections. Frames
/// are never larger than this either (see the transport's frame limit).
pub const MAX_DECODE_BYTES: usize = 16 * 1024 * 1024;

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

/// Appends the encoding of `value` to `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, encode_config())
        .map(|_| ())
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// The encoding of `value`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Decodes a `T` that must fill `bytes` exactly.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice::<T, _>(bytes, decode_config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes {
            extra: bytes.len() - read,
        });
    }
    Ok(value)
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
