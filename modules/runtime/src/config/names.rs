//! Lists of names in the config (a node's `modules`, an `[access]` entry),
//! read from a TOML list or from one string of names separated by commas.
//!
//! An environment variable holds one string, so without this no list could
//! be set from the environment (`BOUTIQUE__NODES__MAIN__MODULES=cart` was
//! "invalid type: string, expected a sequence"), though the config says
//! every key can be. In a string, `"catalog, cart"` is `["catalog",
//! "cart"]`, and `""` is `[]`; no name contains a comma.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, Deserialize, SeqAccess, Visitor};

/// A list of names: a list, or names separated by commas.
pub(super) fn names<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    deserializer.deserialize_any(NamesVisitor)
}

/// A table whose values are [`names`].
pub(super) fn names_by_key<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    let table = BTreeMap::<String, Names>::deserialize(deserializer)?;
    Ok(table.into_iter().map(|(key, list)| (key, list.0)).collect())
}

/// [`names`], as a type (for the values of a table).
struct Names(Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        names(deserializer).map(Names)
    }
}

struct NamesVisitor;

impl<'de> Visitor<'de> for NamesVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of names, or names separated by commas")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<String>, E> {
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(name) = seq.next_element::<String>()? {
            list.push(name);
        }
        Ok(list)
    }
}
