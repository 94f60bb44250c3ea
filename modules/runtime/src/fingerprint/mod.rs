//! The API fingerprint: one hash of every service, message and type a build
//! knows, compared in the handshake.
//!
//! Two nodes may only talk if they agree on the wire format of everything
//! they could send each other. Service Weaver left that to the deployer; here
//! the handshake checks it. The fingerprint is a SHA-256 over a canonical text
//! description of the API: each service's name and domain error, each
//! message's name, method id, request and reply types, traced structurally
//! through serde (field names, field order, variant names, primitive types;
//! see [`SchemaTracer`]), plus the codec's [`FORMAT`](crate::codec::FORMAT).
//! Renaming a field, reordering variants or changing a type changes it.

mod schema;

use std::fmt;

use sha2::{Digest, Sha256};

pub use schema::{SchemaError, SchemaTracer};

use crate::service::Service;

/// A SHA-256 of the API description.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of an API description (see [`describe_service`]).
    pub fn of_description(description: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(crate::codec::FORMAT.as_bytes());
        hasher.update(b"\n");
        hasher.update(description.as_bytes());
        Fingerprint(hasher.finalize().into())
    }
}

impl fmt::Display for Fingerprint {
    /// The first 8 bytes in hex: enough for people to tell two apart.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Adds service `S` to the description being traced.
pub fn describe_service<S: Service>(tracer: &mut SchemaTracer) -> Result<(), SchemaError> {
    tracer.line(format!("service {}", S::NAME));
    tracer.line("error".to_owned());
    tracer.trace::<S::Error>()?;
    for message in S::messages() {
        tracer.line(format!("message {} {}", message.name, message.method));
        (message.trace)(tracer)?;
    }
    Ok(())
}
