//! Reading config values into typed settings without guessing.
//!
//! The `config` crate's own deserializer converts freely between kinds: a
//! boolean given to a number is 0 or 1 (`call_timeout_ms = true` timed
//! calls out after 1 ms), a number given to a boolean is "not zero", and
//! the words `yes`, `on`, `off`, `no` are booleans. A typo in a setting
//! then becomes another setting, unsaid. This deserializer walks the same
//! [`config::Value`]s and takes a value only as what it is:
//!
//! - a number field takes a number, or text that is a number in full
//!   (environment variables are text: `BOUTIQUE__RUNTIME__CALL_TIMEOUT_MS=200`);
//! - a boolean field takes a boolean, or the text `true` or `false`;
//! - a text field takes text, or a number or boolean as it was written
//!   (`--set cluster.name=7` names the cluster `7`);
//! - anything else is refused, naming the key: `invalid type: boolean
//!   `true`, expected u64 for key `runtime.call_timeout_ms``;
//! - a key no field takes is refused, whether or not the type says
//!   `deny_unknown_fields`.

use std::fmt;

use config::{Value, ValueKind};
use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Unexpected, Visitor};

/// Reads `value` as a `T`. Errors name the key where the value sits,
/// relative to `value`.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, StrictError> {
    T::deserialize(Strict(value))
}

/// A value that is not what its setting takes, and where it is.
#[derive(Debug)]
pub(crate) struct StrictError {
    /// The key, `runtime.call_timeout_ms` or `nodes.main.modules[1]`;
    /// empty for the top level.
    key: String,
    message: String,
}

impl StrictError {
    /// The same error, one level further out: `segment` is a table's key
    /// (`runtime`) or a list's index (`[1]`).
    fn under(mut self, segment: &str) -> Self {
        self.key = match (self.key.is_empty(), self.key.starts_with('[')) {
            (true, _) => segment.to_owned(),
            (false, true) => format!("{segment}{}", self.key),
            (false, false) => format!("{segment}.{}", self.key),
        };
        self
    }
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{} for key `{}`", self.message, self.key)
        }
    }
}

impl std::error::Error for StrictError {}

impl de::Error for StrictError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        StrictError {
            key: String::new(),
            message: message.to_string(),
        }
    }
}

/// One config value, read strictly.
struct Strict(Value);

impl Strict {
    /// What the value is, for an error that says what was expected.
    fn unexpected(&self) -> Unexpected<'_> {
        match &self.0.kind {
            ValueKind::Nil => Unexpected::Unit,
            ValueKind::Boolean(value) => Unexpected::Bool(*value),
            ValueKind::I64(value) => Unexpected::Signed(*value),
            ValueKind::I128(_) => Unexpected::Other("a 128-bit integer"),
            ValueKind::U64(value) => Unexpected::Unsigned(*value),
            ValueKind::U128(_) => Unexpected::Other("a 128-bit integer"),
            ValueKind::Float(value) => Unexpected::Float(*value),
            ValueKind::String(text) => Unexpected::Str(text),
            ValueKind::Table(_) => Unexpected::Map,
            ValueKind::Array(_) => Unexpected::Seq,
        }
    }

    fn refuse<'de, V: Visitor<'de>>(&self, visitor: &V) -> StrictError {
        de::Error::invalid_type(self.unexpected(), visitor)
    }

    /// A whole number, from a number or from text that is one in full.
    /// (A float here is whole: `refuse_fractions` has refused the others.)
    fn integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        match &self.0.kind {
            ValueKind::I64(value) => visitor.visit_i64(*value),
            ValueKind::U64(value) => visitor.visit_u64(*value),
            ValueKind::I128(value) => visitor.visit_i128(*value),
            ValueKind::U128(value) => visitor.visit_u128(*value),
            ValueKind::Float(value) if value.fract() == 0.0 && *value >= 0.0 => {
                visitor.visit_u64(*value as u64)
            }
            ValueKind::Float(value) if value.fract() == 0.0 => visitor.visit_i64(*value as i64),
            ValueKind::String(text) => {
                let digits = text.strip_prefix('-').unwrap_or(text);
                let whole = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
                match (whole, text.parse::<i64>(), text.parse::<u64>()) {
                    (true, Ok(value), _) => visitor.visit_i64(value),
                    (true, _, Ok(value)) => visitor.visit_u64(value),
                    _ => Err(self.refuse(&visitor)),
                }
            }
            _ => Err(self.refuse(&visitor)),
        }
    }

    /// A number that may have a fraction, from a number or from text.
    fn float<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        match &self.0.kind {
            ValueKind::Float(value) => visitor.visit_f64(*value),
            ValueKind::I64(value) => visitor.visit_i64(*value),
            ValueKind::U64(value) => visitor.visit_u64(*value),
            ValueKind::String(text) => match text.parse::<f64>() {
                Ok(value) if value.is_finite() => visitor.visit_f64(value),
                _ => Err(self.refuse(&visitor)),
            },
            _ => Err(self.refuse(&visitor)),
        }
    }
}

impl<'de> de::Deserializer<'de> for Strict {
    type Error = StrictError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        match self.0.kind {
            ValueKind::Nil => visitor.visit_unit(),
            ValueKind::Boolean(value) => visitor.visit_bool(value),
            ValueKind::I64(value) => visitor.visit_i64(value),
            ValueKind::I128(value) => visitor.visit_i128(value),
            ValueKind::U64(value) => visitor.visit_u64(value),
            ValueKind::U128(value) => visitor.visit_u128(value),
            ValueKind::Float(value) => visitor.visit_f64(value),
            ValueKind::String(text) => visitor.visit_string(text),
            ValueKind::Array(items) => visitor.visit_seq(Items {
                items: items.into_iter().enumerate(),
            }),
            ValueKind::Table(table) => visitor.visit_map(Entries {
                entries: table.into_iter(),
                value: None,
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        match &self.0.kind {
            ValueKind::Boolean(value) => visitor.visit_bool(*value),
            ValueKind::String(text) if text.eq_ignore_ascii_case("true") => {
                visitor.visit_bool(true)
            }
            ValueKind::String(text) if text.eq_ignore_ascii_case("false") => {
                visitor.visit_bool(false)
            }
            _ => Err(self.refuse(&visitor)),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.integer(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.integer(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.integer(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.integer(visitor)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.integer(visitor)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.integer(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.integer(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.integer(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.integer(visitor)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.integer(visitor)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.float(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.float(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        // A scalar is text as written; a table or list is not.
        match self.0.kind {
            ValueKind::String(text) => visitor.visit_string(text),
            ValueKind::Boolean(_)
            | ValueKind::I64(_)
            | ValueKind::I128(_)
            | ValueKind::U64(_)
            | ValueKind::U128(_)
            | ValueKind::Float(_) => visitor.visit_string(self.0.to_string()),
            _ => Err(self.refuse(&visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        match self.0.kind {
            ValueKind::Nil => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, StrictError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, StrictError> {
        // Settings' enums are words (`format = "json"`).
        match self.0.kind {
            ValueKind::String(text) => {
                let word: StringDeserializer<StrictError> = text.into_deserializer();
                visitor.visit_enum(word)
            }
            _ => Err(self.refuse(&visitor)),
        }
    }

    /// A key the setting's type has no field for: serde skips it unless
    /// the type says `deny_unknown_fields`. Here it is refused either way,
    /// so a module's own section is checked as the runtime's are, whether
    /// or not its author asked (`max_line = 5` is a typo, not a setting).
    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, StrictError> {
        Err(de::Error::custom(
            "no such setting (check its spelling and its section)",
        ))
    }

    serde::forward_to_deserialize_any! {
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier
    }
}

/// A list's items, each read strictly; errors name the index.
struct Items {
    items: std::iter::Enumerate<std::vec::IntoIter<Value>>,
}

impl<'de> de::SeqAccess<'de> for Items {
    type Error = StrictError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, StrictError> {
        match self.items.next() {
            None => Ok(None),
            Some((index, item)) => seed
                .deserialize(Strict(item))
                .map(Some)
                .map_err(|e| e.under(&format!("[{index}]"))),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// A table's entries, each value read strictly; errors name the key.
struct Entries {
    entries: <config::Map<String, Value> as IntoIterator>::IntoIter,
    /// The entry whose key was just given out, waiting for its value.
    value: Option<(String, Value)>,
}

impl<'de> de::MapAccess<'de> for Entries {
    type Error = StrictError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, StrictError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let word: StringDeserializer<StrictError> = key.clone().into_deserializer();
        let read = seed.deserialize(word)?;
        self.value = Some((key, value));
        Ok(Some(read))
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, StrictError> {
        let (key, value) = self.value.take().ok_or_else(|| {
            <StrictError as de::Error>::custom("a value asked for before its key")
        })?;
        seed.deserialize(Strict(value)).map_err(|e| e.under(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default)]
        timeout_ms: u64,
        #[serde(default)]
        insecure: bool,
        #[serde(default)]
        name: String,
        #[serde(default)]
        small: u8,
        #[serde(default)]
        ports: Vec<u16>,
        #[serde(default)]
        rate: f64,
        #[serde(default)]
        level: Option<Level>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Level {
        Low,
        High,
    }

    fn read(toml: &str) -> Result<Settings, String> {
        read_as(toml)
    }

    fn read_as<T: DeserializeOwned>(toml: &str) -> Result<T, String> {
        let value: Value = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| e.to_string())?;
        from_value(value).map_err(|e| e.to_string())
    }

    /// A module's section whose type does not say `deny_unknown_fields`
    /// is checked all the same.
    #[test]
    fn a_key_no_field_takes_is_refused_even_where_the_type_would_skip_it() {
        #[derive(Debug, Deserialize, Default)]
        #[serde(default)]
        struct Lenient {
            max_lines: u32,
            inner: Inner,
        }
        #[derive(Debug, Deserialize, Default)]
        #[serde(default)]
        struct Inner {
            keep: u32,
        }
        let read = read_as::<Lenient>;
        let lenient = read("max_lines = 5\n[inner]\nkeep = 2\n").unwrap();
        assert_eq!((lenient.max_lines, lenient.inner.keep), (5, 2));
        let error = read("max_line = 5\n").unwrap_err();
        assert!(
            error.contains("no such setting") && error.contains("`max_line`"),
            "{error}"
        );
        let error = read("[inner]\nkeeps = 2\n").unwrap_err();
        assert!(error.contains("`inner.keeps`"), "{error}");
    }

    #[test]
    fn values_of_their_own_kind_are_read() {
        let settings = read(
            "timeout_ms = 200\ninsecure = true\nname = \"x\"\nsmall = 7\nports = [1, 2]\n\
             rate = 0.5\nlevel = \"high\"\n",
        )
        .unwrap();
        assert_eq!(
            settings,
            Settings {
                timeout_ms: 200,
                insecure: true,
                name: "x".to_owned(),
                small: 7,
                ports: vec![1, 2],
                rate: 0.5,
                level: Some(Level::High),
            }
        );
    }

    #[test]
    fn text_in_full_form_is_read_as_a_number_or_a_boolean() {
        // As an environment variable gives them.
        let settings = read(
            "timeout_ms = \"200\"\ninsecure = \"false\"\nsmall = \"7\"\nrate = \"1.5\"\n\
             name = 7\nports = [\"80\"]\n",
        )
        .unwrap();
        assert_eq!(settings.timeout_ms, 200);
        assert!(!settings.insecure);
        assert_eq!(settings.small, 7);
        assert_eq!(settings.rate, 1.5);
        assert_eq!(settings.name, "7");
        assert_eq!(settings.ports, vec![80]);
        assert!(read("insecure = \"TRUE\"\n").unwrap().insecure);
    }

    #[test]
    fn a_value_of_another_kind_is_refused_naming_its_key() {
        for (toml, expected) in [
            (
                "timeout_ms = true\n",
                "invalid type: boolean `true`, expected u64 for key `timeout_ms`",
            ),
            (
                "insecure = 1\n",
                "invalid type: integer `1`, expected a boolean for key `insecure`",
            ),
            (
                "insecure = \"yes\"\n",
                "invalid type: string \"yes\", expected a boolean for key `insecure`",
            ),
            (
                "timeout_ms = \"5s\"\n",
                "invalid type: string \"5s\", expected u64 for key `timeout_ms`",
            ),
            (
                "timeout_ms = \"+5\"\n",
                "invalid type: string \"+5\", expected u64 for key `timeout_ms`",
            ),
            (
                "timeout_ms = -1\n",
                "invalid value: integer `-1`, expected u64 for key `timeout_ms`",
            ),
            (
                "small = 300\n",
                "invalid value: integer `300`, expected u8 for key `small`",
            ),
            (
                "ports = [1, true]\n",
                "invalid type: boolean `true`, expected u16 for key `ports[1]`",
            ),
            (
                "name = [\"a\"]\n",
                "invalid type: sequence, expected a string for key `name`",
            ),
            (
                "level = \"middle\"\n",
                "unknown variant `middle`, expected `low` or `high` for key `level`",
            ),
            (
                "rate = true\n",
                "invalid type: boolean `true`, expected f64 for key `rate`",
            ),
        ] {
            assert_eq!(read(toml).unwrap_err(), expected, "{toml}");
        }
    }

    #[test]
    fn an_unknown_key_is_refused() {
        assert_eq!(
            read("timeout = 1\n").unwrap_err(),
            "unknown field `timeout`, expected one of `timeout_ms`, `insecure`, `name`, \
             `small`, `ports`, `rate`, `level`"
        );
    }
}
