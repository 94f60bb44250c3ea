//! Hostile bytes, by the thousand: the frame reader, the handshake (both
//! sides) and every message decoder get random and mutated input, and
//! must answer with an error, never panic, never hang, and never allocate
//! much more than the frame limit. (The same targets run under cargo-fuzz:
//! see `fuzz/` and docs/fuzzing.md.)

mod support;

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runtime::fuzzing::{Chunked, Counting, largest_allocation, mutate, random_bytes};
use runtime::transport::frame::{Frame, FrameBuf, FrameReader, ReplyStatus};
use runtime::transport::handshake::{self, HANDSHAKE_MAX_FRAME, Identity, MAGIC, PROTOCOL_VERSION};
use support::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const MAX_FRAME: usize = 64 * 1024;

fn valid_frames() -> Vec<Vec<u8>> {
    vec![
        FrameBuf::request(1, 2, 3)
            .encode("hello")
            .unwrap()
            .finish(MAX_FRAME)
            .unwrap(),
        FrameBuf::reply(1, ReplyStatus::Outcome)
            .encode(&7u32)
            .unwrap()
            .finish(MAX_FRAME)
            .unwrap(),
        runtime::transport::frame::HEARTBEAT_FRAME.to_vec(),
        runtime::transport::frame::LEAVING_FRAME.to_vec(),
        runtime::transport::frame::NO_MORE_CALLS_FRAME.to_vec(),
    ]
}

#[test]
fn the_frame_reader_survives_any_bytes() {
    let mut rng = StdRng::seed_from_u64(0x5eed_f4a3);
    let rt = runtime();
    let valid = valid_frames();
    for case in 0..3_000 {
        let bytes = if case % 2 == 0 {
            random_bytes(&mut rng, 4_096)
        } else {
            let frame = valid[rng.random_range(0..valid.len())].clone();
            mutate(&mut rng, frame)
        };
        let seed = rng.random();
        let largest = largest_allocation(|| {
            rt.block_on(async {
                let input = Chunked::new(bytes, seed);
                let mut reader = FrameReader::new(input, MAX_FRAME);
                let read = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Ok(Some(body)) = reader.next().await {
                        let _ = Frame::parse(body);
                    }
                });
                read.await.expect("the frame reader hung");
            })
        });
        assert!(
            largest <= MAX_FRAME + 64 * 1024,
            "case {case}: allocated {largest} bytes"
        );
    }
}

fn identity() -> Identity {
    identity_of_a()
}

#[test]
fn the_handshake_survives_any_bytes_on_both_sides() {
    let mut rng = StdRng::seed_from_u64(0x4a4d_5ea1);
    let rt = runtime();
    let me = identity();
    let addr: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut hello = FrameBuf::handshake(runtime::transport::frame::Kind::Hello);
    hello.buf().extend_from_slice(&MAGIC);
    hello
        .buf()
        .extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    let hello = hello.finish(HANDSHAKE_MAX_FRAME).unwrap();
    for case in 0..2_000 {
        let bytes = match case % 3 {
            0 => random_bytes(&mut rng, 2_048),
            1 => mutate(&mut rng, hello.clone()),
            _ => {
                let mut bytes = hello.clone();
                bytes.extend(random_bytes(&mut rng, 512));
                bytes
            }
        };
        let seed = rng.random();
        let largest = largest_allocation(|| {
            rt.block_on(async {
                let shake = async {
                    let input = Chunked::new(bytes.clone(), seed);
                    let mut reader = FrameReader::new(input, HANDSHAKE_MAX_FRAME);
                    let accepted =
                        handshake::accept(&mut reader, &mut tokio::io::sink(), &me, addr).await;
                    assert!(accepted.is_err(), "case {case}: random bytes were accepted");
                    let input = Chunked::new(bytes, seed);
                    let mut reader = FrameReader::new(input, HANDSHAKE_MAX_FRAME);
                    let dialed =
                        handshake::dial(&mut reader, &mut tokio::io::sink(), &me, Some("b"), addr)
                            .await;
                    assert!(
                        dialed.is_err(),
                        "case {case}: random bytes completed a dial"
                    );
                };
                tokio::time::timeout(Duration::from_secs(1), shake)
                    .await
                    .expect("the handshake hung");
            })
        });
        assert!(
            largest <= MAX_FRAME,
            "case {case}: allocated {largest} bytes"
        );
    }
}

#[test]
fn every_message_decoder_survives_any_bytes() {
    let mut rng = StdRng::seed_from_u64(0xdec0_de00);
    let catalogue = catalogue();
    let valid = [
        runtime::codec::encode(&Echo {
            text: "hello".into(),
            local_only: None,
        })
        .unwrap(),
        runtime::codec::encode(&HoldBlob {
            key: 3,
            blob: vec![1; 100],
        })
        .unwrap(),
        runtime::codec::encode(&RelayHold { key: 4 }).unwrap(),
    ];
    for case in 0..5_000 {
        let bytes = if case % 2 == 0 {
            random_bytes(&mut rng, 1_024)
        } else {
            let pick = rng.random_range(0..valid.len());
            mutate(&mut rng, valid[pick].clone())
        };
        let largest = largest_allocation(|| {
            catalogue.decode_as_every_message(&bytes);
        });
        // Never more than the input, give or take serde's capped
        // preallocation (1 MiB).
        assert!(
            largest <= (1 << 20) + bytes.len(),
            "case {case}: allocated {largest} bytes"
        );
    }
    // A sanity check that the decoders do run.
    assert!(catalogue.decode_as_every_message(&valid[0]) >= 1);
}
