//! A memory budget for decoding, charged as values are built.
//!
//! bincode's limit counts the bytes a length prefix claims, which bounds
//! how much a frame can make the decoder reserve at once. It does not
//! bound what the decoded value takes: an element costs at least one byte
//! on the wire but more in memory (an empty `String` is one byte there and
//! 24 here), so a 4 MiB frame of empty strings decoded into some 100 MB.
//!
//! [`Budgeted`] wraps a serde `Deserializer` and passes every value through
//! unchanged, but charges a [`Budget`] as it goes: each element of a
//! sequence and each key and value of a map its type's size (at least one
//! byte, so a million unit values count too), and each string or byte
//! buffer its length. Past the budget the decode fails, at most one
//! element later. Struct and tuple fields are not charged one by one
//! (bincode hands them over as a sequence too): a struct's size is
//! charged where it is an element, and a message's top level is a fixed
//! size.
//!
//! This is `serde_ignored`'s and `serde_stacker`'s way of wrapping a
//! deserializer: a wrapper for the deserializer, and for each thing it hands
//! a visitor (the visitor, sequences, maps, enums, seeds) one that wraps
//! again.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// How many bytes of memory a decode may still build.
pub(crate) struct Budget {
    left: Cell<usize>,
    limit: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            left: Cell::new(limit),
            limit,
        }
    }

    /// Takes `bytes` from the budget, or says it is spent.
    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        match self.left.get().checked_sub(bytes) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(format_args!(
                "the value would take more than {} bytes of memory decoded",
                self.limit
            ))),
        }
    }

    /// What an element of type `T` is charged.
    fn element<T>() -> usize {
        std::mem::size_of::<T>().max(1)
    }
}

/// A deserializer whose values are charged to a [`Budget`].
pub(crate) struct Budgeted<'b, D> {
    inner: D,
    budget: &'b Budget,
}

impl<'b, D> Budgeted<'b, D> {
    /// `inner`, charging `budget`.
    pub(crate) fn new(inner: D, budget: &'b Budget) -> Self {
        Budgeted { inner, budget }
    }
}

/// A visitor, seed or access wrapped to charge the same budget.
struct Charged<'b, X> {
    inner: X,
    budget: &'b Budget,
    /// Whether a sequence it is handed is a collection, whose elements
    /// are charged, or a struct's or tuple's fields, which are inside a
    /// value charged already.
    elements: bool,
}

impl<'b, X> Charged<'b, X> {
    fn new(inner: X, budget: &'b Budget) -> Self {
        Charged {
            inner,
            budget,
            elements: true,
        }
    }

    /// For a struct's or tuple's visitor: its fields are not elements.
    fn fields(inner: X, budget: &'b Budget) -> Self {
        Charged {
            inner,
            budget,
            elements: false,
        }
    }
}

/// Forwards `deserialize_*` methods, wrapping the visitor.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                self.inner.$method($($arg,)* Charged::new(visitor, self.budget))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Budgeted<'_, D> {
    type Error = D::Error;

    forward! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_map();
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_tuple(len, Charged::fields(visitor, self.budget))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_tuple_struct(name, len, Charged::fields(visitor, self.budget))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_struct(name, fields, Charged::fields(visitor, self.budget))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Forwards `visit_*` methods that carry a plain value.
macro_rules! visit {
    ($($method:ident($ty:ty);)*) => {
        $(
            fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
                self.inner.$method(value)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Charged<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<V::Value, E> {
        self.budget.charge(value.len())?;
        self.inner.visit_str(value)
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<V::Value, E> {
        self.budget.charge(value.len())?;
        self.inner.visit_borrowed_str(value)
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<V::Value, E> {
        self.budget.charge(value.len())?;
        self.inner.visit_string(value)
    }

    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<V::Value, E> {
        self.budget.charge(value.len())?;
        self.inner.visit_bytes(value)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, value: &'de [u8]) -> Result<V::Value, E> {
        self.budget.charge(value.len())?;
        self.inner.visit_borrowed_bytes(value)
    }

    fn visit_byte_buf<E: de::Error>(self, value: Vec<u8>) -> Result<V::Value, E> {
        self.budget.charge(value.len())?;
        self.inner.visit_byte_buf(value)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.inner
            .visit_some(Budgeted::new(deserializer, self.budget))
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.inner
            .visit_newtype_struct(Budgeted::new(deserializer, self.budget))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Charged {
            inner: seq,
            budget: self.budget,
            elements: self.elements,
        })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Charged::new(map, self.budget))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Charged::new(data, self.budget))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Charged<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.inner
            .deserialize(Budgeted::new(deserializer, self.budget))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Charged<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        // Charged once it is there (the last ask finds none): at most
        // one element past the budget is built, and what it holds was
        // charged as it was built.
        let element = self
            .inner
            .next_element_seed(Charged::new(seed, self.budget))?;
        if self.elements && element.is_some() {
            self.budget.charge(Budget::element::<T::Value>())?;
        }
        Ok(element)
    }

    fn size_hint(&self) -> Option<usize> {
        // What a collection reserves ahead is capped by serde, and by
        // what is left: no more elements than bytes can come (a
        // collection's elements cost a byte at least; a struct's fields
        // do not look at the hint).
        self.inner
            .size_hint()
            .map(|hint| hint.min(self.budget.left.get()))
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Charged<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let key = self.inner.next_key_seed(Charged::new(seed, self.budget))?;
        if key.is_some() {
            self.budget.charge(Budget::element::<K::Value>())?;
        }
        Ok(key)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.budget.charge(Budget::element::<V::Value>())?;
        self.inner.next_value_seed(Charged::new(seed, self.budget))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner
            .size_hint()
            .map(|hint| hint.min(self.budget.left.get()))
    }
}

impl<'de, 'b, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Charged<'b, A> {
    type Error = A::Error;
    type Variant = Charged<'b, A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), A::Error> {
        let (value, variant) = self.inner.variant_seed(Charged::new(seed, self.budget))?;
        Ok((value, Charged::new(variant, self.budget)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Charged<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner
            .newtype_variant_seed(Charged::new(seed, self.budget))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner
            .tuple_variant(len, Charged::fields(visitor, self.budget))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner
            .struct_variant(fields, Charged::fields(visitor, self.budget))
    }
}
