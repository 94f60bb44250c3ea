//! Tracking ids: `LL-<salt length><3 digits>-<salt length / 2><7 digits>`,
//! where the salt is `"<street>, <city>, <state>"` (Online Boutique's shape).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;

use crate::api::Address;

/// A tracking id for a shipment to `address`: random, or derived from `key`
/// (the same id for the same key on every replica and in every build: by
/// ChaCha12, which `rand_chacha` promises to keep, not rand's `StdRng`,
/// which rand may change in any version).
pub fn tracking_id(address: &Address, key: &str) -> String {
    let mut rng = if key.is_empty() {
        ChaCha12Rng::from_rng(&mut rand::rng())
    } else {
        ChaCha12Rng::seed_from_u64(fnv1a(key.as_bytes()))
    };
    let salt = format!(
        "{}, {}, {}",
        address.street_address, address.city, address.state
    );
    // Go's `len`: bytes, not characters (`Köln` is 5).
    let len = salt.len();
    let letter = |rng: &mut ChaCha12Rng| char::from(b'A' + rng.random_range(0..26u8));
    let digits = |rng: &mut ChaCha12Rng, n: usize| {
        (0..n)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect::<String>()
    };
    let (a, b) = (letter(&mut rng), letter(&mut rng));
    let three = digits(&mut rng, 3);
    let seven = digits(&mut rng, 7);
    format!("{a}{b}-{len}{three}-{}{seven}", len / 2)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> Address {
        Address {
            street_address: "1600 Amphitheatre Parkway".into(),
            city: "Mountain View".into(),
            state: "CA".into(),
            country: "United States".into(),
            zip_code: 94043,
        }
    }

    #[test]
    fn ids_have_the_original_shape() {
        let id = tracking_id(&address(), "");
        // The default form address makes a salt of 44 characters.
        assert_eq!(id.len(), 18, "{id}");
        let (letters, rest) = id.split_at(2);
        assert!(letters.chars().all(|c| c.is_ascii_uppercase()), "{id}");
        assert!(rest.starts_with("-44"), "{id}");
        assert_eq!(&rest[6..9], "-22", "{id}");
    }

    #[test]
    fn the_same_key_gives_the_same_id_and_letters_include_z() {
        assert_eq!(tracking_id(&address(), "k1"), tracking_id(&address(), "k1"));
        assert_ne!(tracking_id(&address(), "k1"), tracking_id(&address(), "k2"));
        let letters: String = (0..2000)
            .map(|i| tracking_id(&address(), &i.to_string())[..2].to_owned())
            .collect();
        assert!(letters.contains('Z'), "no Z in 4000 letters");
    }

    #[test]
    fn an_id_derived_from_a_key_stays_the_same_from_build_to_build() {
        // Recorded once: a generator that changed its output (rand's
        // StdRng may, in any version) would give a retry after an
        // upgrade another id for the same shipment.
        assert_eq!(tracking_id(&address(), "order-1"), "OF-44027-222869215");
    }

    #[test]
    fn the_salt_is_measured_in_bytes_as_the_original_measures_it() {
        let address = Address {
            street_address: "Königstraße 5".into(),
            city: "Köln".into(),
            state: "NRW".into(),
            ..address()
        };
        // "Königstraße 5, Köln, NRW": 24 characters, 27 bytes.
        let id = tracking_id(&address, "k");
        assert!(id[2..].starts_with("-27"), "{id}");
        assert_eq!(&id[8..11], "-13", "{id}");
    }
}
