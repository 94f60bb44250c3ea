//! Helpers for feeding hostile bytes to the runtime: the fuzz tests of this
//! workspace and the cargo-fuzz targets in `fuzz/` use them.
//!
//! - [`Chunked`] hands bytes out in random small pieces, as a socket might;
//! - [`mutate`] changes, cuts or adds a few bytes of a valid input;
//! - [`Counting`], installed as a test binary's global allocator, lets
//!   [`largest_allocation`] tell how much one piece of work asked for at
//!   once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncRead, ReadBuf};

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, noting the largest single allocation a thread
/// makes while [`largest_allocation`] watches it. Install it with
/// `#[global_allocator] static A: Counting = Counting;`.
pub struct Counting;

fn note(size: usize) {
    if TRACKING.with(Cell::get) {
        LARGEST.with(|largest| largest.set(largest.get().max(size)));
    }
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// bookkeeping touches only const-initialized thread-locals, which do not
// allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `work` and returns the largest single allocation it made on this
/// thread (needs [`Counting`] as the global allocator; 0 otherwise).
pub fn largest_allocation(work: impl FnOnce()) -> usize {
    LARGEST.with(|largest| largest.set(0));
    TRACKING.with(|tracking| tracking.set(true));
    work();
    TRACKING.with(|tracking| tracking.set(false));
    LARGEST.with(Cell::get)
}

/// Bytes handed out in random pieces of 1 to 64 bytes.
pub struct Chunked {
    bytes: Vec<u8>,
    at: usize,
    rng: StdRng,
}

impl Chunked {
    /// `bytes`, cut at points chosen by `seed`.
    pub fn new(bytes: Vec<u8>, seed: u64) -> Chunked {
        Chunked {
            bytes,
            at: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }
}

impl AsyncRead for Chunked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let left = this.bytes.len() - this.at;
        let n = left.min(buf.remaining()).min(this.rng.random_range(1..=64));
        buf.put_slice(&this.bytes[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

/// Up to `max` random bytes.
pub fn random_bytes(rng: &mut impl Rng, max: usize) -> Vec<u8> {
    let len = rng.random_range(0..max.max(1));
    (0..len).map(|_| rng.random()).collect()
}

/// `bytes` with one to three random bytes changed, cut or added.
pub fn mutate(rng: &mut impl Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..3) {
            0 if !bytes.is_empty() => {
                let i = rng.random_range(0..bytes.len());
                bytes[i] = rng.random();
            }
            1 if !bytes.is_empty() => bytes.truncate(rng.random_range(0..bytes.len())),
            _ => bytes.push(rng.random()),
        }
    }
    bytes
}
