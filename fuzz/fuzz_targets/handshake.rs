//! Fuzz target: both sides of the handshake, reading the input as what the
//! other side sent. Neither may accept it, panic or hang.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use runtime::fuzzing::Chunked;
use runtime::transport::frame::FrameReader;
use runtime::transport::handshake::{self, HANDSHAKE_MAX_FRAME, Identity, Role, Secret};

fuzz_target!(|data: &[u8]| {
    let me = Identity {
        cluster: "boutique".into(),
        node: "a".into(),
        role: Role::Node,
        incarnation: 1,
        fingerprint: boutique::catalogue().fingerprint().unwrap(),
        max_in_flight: 1024,
        max_frame: 4 * 1024 * 1024,
        heartbeat: Default::default(),
        secret: Arc::new(
            Secret::from_bytes("fuzz", b"a-fuzzing-secret-0123456789".to_vec()).unwrap(),
        ),
    };
    let addr = "127.0.0.1:9".parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut reader = FrameReader::new(Chunked::new(data.to_vec(), 1), HANDSHAKE_MAX_FRAME);
        assert!(
            handshake::accept(&mut reader, &mut tokio::io::sink(), &me, addr)
                .await
                .is_err()
        );
        let mut reader = FrameReader::new(Chunked::new(data.to_vec(), 2), HANDSHAKE_MAX_FRAME);
        assert!(
            handshake::dial(&mut reader, &mut tokio::io::sink(), &me, Some("b"), addr)
                .await
                .is_err()
        );
    });
});
