//! Every message of the shop, and every outcome, decoded from random and
//! mutated bytes as a node would decode them off the wire: errors only, no
//! panic, and no allocation much beyond the input.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runtime::fuzzing::{Counting, largest_allocation, mutate, random_bytes};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn every_shop_message_decoder_survives_any_bytes() {
    let catalogue = boutique::catalogue();
    let mut rng = StdRng::seed_from_u64(0x5b0b_0b0b);
    let valid = [
        runtime::codec::encode(&cart::api::AddItem {
            user_id: "u1".into(),
            item: cart::api::CartItem {
                product_id: "OLJCESPC7Z".into(),
                quantity: 2,
            },
        })
        .unwrap(),
        runtime::codec::encode(&currency::api::Convert {
            from: currency::api::Money::new("USD", 19, 990_000_000),
            to_code: "EUR".into(),
        })
        .unwrap(),
        runtime::codec::encode(&catalog::api::GetProduct {
            id: "OLJCESPC7Z".into(),
        })
        .unwrap(),
    ];
    let mut decoded = 0;
    for case in 0..3_000 {
        let bytes = if case % 2 == 0 {
            random_bytes(&mut rng, 1_024)
        } else {
            let pick = rng.random_range(0..valid.len());
            mutate(&mut rng, valid[pick].clone())
        };
        let largest = largest_allocation(|| decoded += catalogue.decode_as_every_message(&bytes));
        assert!(
            largest <= (1 << 20) + bytes.len(),
            "case {case}: allocated {largest} bytes"
        );
    }
    // The decoders really ran: some mutated inputs still decode as something.
    assert!(decoded > 0);
    assert!(catalogue.decode_as_every_message(&valid[2]) >= 1);
}
