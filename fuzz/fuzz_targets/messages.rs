//! Fuzz target: the input decoded as every message and outcome of every
//! module of the shop, as a node decodes them off the wire.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let catalogue = boutique::catalogue();
    catalogue.decode_as_every_message(data);
});
