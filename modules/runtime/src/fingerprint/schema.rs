//! Tracing a type's shape through serde, without a value.
//!
//! [`SchemaTracer`] drives a type's `Deserialize` impl with a deserializer
//! that invents values and writes down what was asked for: `u32`, `str`,
//! `option<..>`, struct names with their fields in order, enum names with
//! every variant. An enum is visited once per variant (the derive only lets a
//! deserializer pick one variant per run), so tracing repeats until every
//! variant of every enum reachable from the type has been seen.
//!
//! Types whose `Deserialize` needs a self-describing format
//! (`deserialize_any`: `#[serde(untagged)]`, `flatten`) cannot be traced, and
//! cannot be sent with the codec either; tracing reports them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

/// How deep a type may nest before tracing gives up (guards recursive types).
const MAX_DEPTH: usize = 48;
/// How many passes one root type may take to see every enum variant.
const MAX_PASSES: usize = 4096;

/// A type's shape could not be traced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot trace the wire format of {type_name}: {detail}")]
pub struct SchemaError {
    /// The root type being traced.
    pub type_name: &'static str,
    /// What went wrong.
    pub detail: String,
}

/// An error raised inside a trace, before we know the root type's name.
#[derive(Debug)]
struct TraceError(String);

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TraceError(msg.to_string())
    }
}

/// One variant of an enum: not yet seen, or seen with its payload's shape and
/// whether everything below it was complete at the time.
#[derive(Clone)]
enum VariantTrace {
    Unseen,
    Seen { shape: String, complete: bool },
}

struct EnumTrace {
    name: &'static str,
    variants: Vec<(&'static str, VariantTrace)>,
}

impl EnumTrace {
    fn is_complete(&self) -> bool {
        self.variants
            .iter()
            .all(|(_, v)| matches!(v, VariantTrace::Seen { complete: true, .. }))
    }
}

/// Accumulates the description of an API: lines written by the caller, the
/// shape of each traced root type, and every named struct and enum met.
#[derive(Default)]
pub struct SchemaTracer {
    lines: Vec<String>,
    containers: BTreeSet<String>,
    enums: BTreeMap<String, EnumTrace>,
    incomplete: bool,
    depth: usize,
}

impl SchemaTracer {
    /// An empty tracer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a line of text to the description.
    pub fn line(&mut self, line: String) {
        self.lines.push(line);
    }

    /// Traces the shape of `T` and adds it to the description.
    pub fn trace<T: DeserializeOwned>(&mut self) -> Result<(), SchemaError> {
        let type_name = std::any::type_name::<T>();
        let fail = |detail: String| SchemaError { type_name, detail };
        for _ in 0..MAX_PASSES {
            self.incomplete = false;
            self.depth = 0;
            let mut shape = String::new();
            T::deserialize(Tracer {
                tracer: self,
                out: &mut shape,
            })
            .map_err(|e| fail(e.0))?;
            if !self.incomplete {
                self.lines.push(format!("  {shape}"));
                return Ok(());
            }
        }
        Err(fail(format!(
            "its enums did not settle after {MAX_PASSES} passes"
        )))
    }

    /// The whole description: the lines in order, then every named type met,
    /// sorted.
    pub fn finish(self) -> String {
        let mut text = self.lines.join("\n");
        for container in &self.containers {
            text.push('\n');
            text.push_str(container);
        }
        for (key, trace) in &self.enums {
            let _ = write!(text, "\nenum {} [{key}] {{", trace.name);
            for (name, variant) in &trace.variants {
                let shape = match variant {
                    VariantTrace::Seen { shape, .. } => shape.as_str(),
                    VariantTrace::Unseen => "?",
                };
                let _ = write!(text, " {name}: {shape},");
            }
            text.push_str(" }");
        }
        text
    }

    fn record(&mut self, kind: &str, name: &str, shape: &str) {
        self.containers.insert(format!("{kind} {name} {shape}"));
    }
}

/// The deserializer that records what it is asked for into `out`.
struct Tracer<'a> {
    tracer: &'a mut SchemaTracer,
    out: &'a mut String,
}

impl<'a> Tracer<'a> {
    /// Traces a nested type into a fresh string and returns both.
    fn nested<'de, S: DeserializeSeed<'de>>(
        tracer: &mut SchemaTracer,
        seed: S,
    ) -> Result<(S::Value, String), TraceError> {
        if tracer.depth >= MAX_DEPTH {
            return Err(TraceError(format!(
                "types nest more than {MAX_DEPTH} deep (a recursive type?)"
            )));
        }
        tracer.depth += 1;
        let mut shape = String::new();
        let value = seed.deserialize(Tracer {
            tracer: &mut *tracer,
            out: &mut shape,
        });
        tracer.depth -= 1;
        Ok((value?, shape))
    }
}

macro_rules! primitive {
    ($($method:ident => $visit:ident($($value:expr)?), $name:literal;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
                self.out.push_str($name);
                visitor.$visit($($value)?)
            }
        )*
    };
}

impl<'de, 'a> de::Deserializer<'de> for Tracer<'a> {
    type Error = TraceError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, TraceError> {
        Err(TraceError(
            "a type needs a self-describing format (#[serde(untagged)], flatten, ...), \
             which the wire codec does not support"
                .to_owned(),
        ))
    }

    primitive! {
        deserialize_bool => visit_bool(false), "bool";
        deserialize_i8 => visit_i8(0), "i8";
        deserialize_i16 => visit_i16(0), "i16";
        deserialize_i32 => visit_i32(0), "i32";
        deserialize_i64 => visit_i64(0), "i64";
        deserialize_i128 => visit_i128(0), "i128";
        deserialize_u8 => visit_u8(0), "u8";
        deserialize_u16 => visit_u16(0), "u16";
        deserialize_u32 => visit_u32(0), "u32";
        deserialize_u64 => visit_u64(0), "u64";
        deserialize_u128 => visit_u128(0), "u128";
        deserialize_f32 => visit_f32(0.0), "f32";
        deserialize_f64 => visit_f64(0.0), "f64";
        deserialize_char => visit_char('a'), "char";
        deserialize_str => visit_string(String::new()), "str";
        deserialize_string => visit_string(String::new()), "str";
        deserialize_bytes => visit_byte_buf(Vec::new()), "bytes";
        deserialize_byte_buf => visit_byte_buf(Vec::new()), "bytes";
        deserialize_unit => visit_unit(), "unit";
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let mut inner = String::new();
        let value = visitor.visit_some(Tracer {
            tracer: &mut *self.tracer,
            out: &mut inner,
        })?;
        let _ = write!(self.out, "option<{inner}>");
        Ok(value)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.tracer.record("struct", name, "unit");
        self.out.push_str(name);
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut inner = String::new();
        let value = visitor.visit_newtype_struct(Tracer {
            tracer: &mut *self.tracer,
            out: &mut inner,
        })?;
        self.tracer.record("struct", name, &format!("({inner})"));
        self.out.push_str(name);
        Ok(value)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let mut shapes = Vec::new();
        let value = visitor.visit_seq(Elements {
            tracer: &mut *self.tracer,
            names: None,
            remaining: 1,
            shapes: &mut shapes,
        })?;
        let _ = write!(self.out, "seq<{}>", shapes.join(","));
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut shapes = Vec::new();
        let value = visitor.visit_seq(Elements {
            tracer: &mut *self.tracer,
            names: None,
            remaining: len,
            shapes: &mut shapes,
        })?;
        let _ = write!(self.out, "({})", shapes.join(","));
        Ok(value)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut shapes = Vec::new();
        let value = visitor.visit_seq(Elements {
            tracer: &mut *self.tracer,
            names: None,
            remaining: len,
            shapes: &mut shapes,
        })?;
        self.tracer
            .record("struct", name, &format!("({})", shapes.join(",")));
        self.out.push_str(name);
        Ok(value)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let mut key = String::new();
        let mut val = String::new();
        let value = visitor.visit_map(OneEntry {
            tracer: &mut *self.tracer,
            key: &mut key,
            value: &mut val,
            state: 0,
        })?;
        let _ = write!(self.out, "map<{key},{val}>");
        Ok(value)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut shapes = Vec::new();
        let value = visitor.visit_seq(Elements {
            tracer: &mut *self.tracer,
            names: Some(fields),
            remaining: fields.len(),
            shapes: &mut shapes,
        })?;
        self.tracer
            .record("struct", name, &format!("{{{}}}", shapes.join(",")));
        self.out.push_str(name);
        Ok(value)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        if variants.is_empty() {
            return Err(TraceError(format!("enum {name} has no variants")));
        }
        let key = format!("{name}:{}", variants.join("|"));
        let trace = self
            .tracer
            .enums
            .entry(key.clone())
            .or_insert_with(|| EnumTrace {
                name,
                variants: variants
                    .iter()
                    .map(|v| (*v, VariantTrace::Unseen))
                    .collect(),
            });
        // Visit the first variant not yet complete; once all are, the first.
        let index = trace
            .variants
            .iter()
            .position(|(_, v)| !matches!(v, VariantTrace::Seen { complete: true, .. }))
            .unwrap_or(0);
        let outer_incomplete = std::mem::replace(&mut self.tracer.incomplete, false);
        let mut shape = String::new();
        let value = visitor.visit_enum(Variant {
            tracer: &mut *self.tracer,
            index,
            out: &mut shape,
        })?;
        let complete = !self.tracer.incomplete;
        let trace = self
            .tracer
            .enums
            .get_mut(&key)
            .ok_or_else(|| TraceError(format!("enum {name} vanished while tracing")))?;
        trace.variants[index].1 = VariantTrace::Seen { shape, complete };
        self.tracer.incomplete = outer_incomplete || !trace.is_complete();
        self.out.push_str(name);
        Ok(value)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, TraceError> {
        Err(TraceError(
            "a type asked for a field name, which the wire codec never sends".to_owned(),
        ))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.deserialize_unit(visitor)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// Yields `remaining` traced elements: struct fields (with `names`), tuple
/// elements, or one element of a sequence.
struct Elements<'a> {
    tracer: &'a mut SchemaTracer,
    names: Option<&'static [&'static str]>,
    remaining: usize,
    shapes: &'a mut Vec<String>,
}

impl<'de, 'a> de::SeqAccess<'de> for Elements<'a> {
    type Error = TraceError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TraceError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let (value, shape) = Tracer::nested(self.tracer, seed)?;
        match self.names {
            Some(names) => {
                let name = names.get(self.shapes.len()).copied().unwrap_or("?");
                self.shapes.push(format!("{name}:{shape}"));
            }
            None => self.shapes.push(shape),
        }
        Ok(Some(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining)
    }
}

/// Yields one traced map entry.
struct OneEntry<'a> {
    tracer: &'a mut SchemaTracer,
    key: &'a mut String,
    value: &'a mut String,
    state: u8,
}

impl<'de, 'a> de::MapAccess<'de> for OneEntry<'a> {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TraceError> {
        if self.state != 0 {
            return Ok(None);
        }
        self.state = 1;
        let (key, shape) = Tracer::nested(self.tracer, seed)?;
        *self.key = shape;
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, TraceError> {
        self.state = 2;
        let (value, shape) = Tracer::nested(self.tracer, seed)?;
        *self.value = shape;
        Ok(value)
    }
}

/// The variant chosen for one visit of an enum.
struct Variant<'a> {
    tracer: &'a mut SchemaTracer,
    index: usize,
    out: &'a mut String,
}

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = TraceError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), TraceError> {
        let index =
            u32::try_from(self.index).map_err(|_| TraceError("too many variants".into()))?;
        let value = seed.deserialize(index.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de, 'a> de::VariantAccess<'de> for Variant<'a> {
    type Error = TraceError;

    fn unit_variant(self) -> Result<(), TraceError> {
        self.out.push_str("unit");
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, TraceError> {
        let (value, shape) = Tracer::nested(self.tracer, seed)?;
        let _ = write!(self.out, "({shape})");
        Ok(value)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        Tracer {
            tracer: self.tracer,
            out: self.out,
        }
        .deserialize_tuple_inline(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut shapes = Vec::new();
        let value = visitor.visit_seq(Elements {
            tracer: self.tracer,
            names: Some(fields),
            remaining: fields.len(),
            shapes: &mut shapes,
        })?;
        let _ = write!(self.out, "{{{}}}", shapes.join(","));
        Ok(value)
    }
}

impl<'a> Tracer<'a> {
    fn deserialize_tuple_inline<'de, V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Money {
        currency_code: String,
        units: i64,
        nanos: i32,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    enum Inner {
        A,
        B(u8),
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    enum Outer {
        Plain,
        Nested(Inner),
        Fields { money: Money, tags: Vec<String> },
    }

    fn describe<T: DeserializeOwned>() -> String {
        let mut tracer = SchemaTracer::new();
        tracer.trace::<T>().unwrap();
        tracer.finish()
    }

    #[test]
    fn structs_list_fields_in_order() {
        let text = describe::<Money>();
        assert!(
            text.contains("struct Money {currency_code:str,units:i64,nanos:i32}"),
            "{text}"
        );
    }

    #[test]
    fn every_variant_of_nested_enums_is_traced() {
        let text = describe::<Outer>();
        assert!(text.contains("Plain: unit"), "{text}");
        assert!(text.contains("Nested: (Inner)"), "{text}");
        assert!(text.contains("A: unit"), "{text}");
        assert!(text.contains("B: (u8)"), "{text}");
        assert!(
            text.contains("Fields: {money:Money,tags:seq<str>}"),
            "{text}"
        );
        assert!(!text.contains('?'), "{text}");
    }

    #[test]
    fn a_renamed_field_changes_the_description() {
        #[allow(dead_code)]
        #[derive(Deserialize)]
        #[serde(rename = "Money")]
        struct Renamed {
            currency: String,
            units: i64,
            nanos: i32,
        }
        assert_ne!(describe::<Money>(), describe::<Renamed>());
    }

    #[test]
    fn untagged_enums_are_reported() {
        #[allow(dead_code)]
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Loose {
            A(u8),
            B(String),
        }
        let mut tracer = SchemaTracer::new();
        assert!(tracer.trace::<Loose>().is_err());
    }
}
