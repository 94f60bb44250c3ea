//! Fuzz target: the frame reader and parser on any byte stream, cut at
//! points chosen by the input's first 8 bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use runtime::fuzzing::Chunked;
use runtime::transport::frame::{Frame, FrameReader};

fuzz_target!(|data: &[u8]| {
    let (seed, bytes) = data.split_at(data.len().min(8));
    let seed = seed.iter().fold(0u64, |s, b| s << 8 | u64::from(*b));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut reader = FrameReader::new(Chunked::new(bytes.to_vec(), seed), 64 * 1024);
        while let Ok(Some(body)) = reader.next().await {
            let _ = Frame::parse(body);
        }
    });
});
