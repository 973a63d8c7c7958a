//! The canonical bytes a cache key hashes, written straight from the key's parts: the same
//! bytes as `serde_json::to_value` followed by `write_canonical` (compact JSON, object keys
//! sorted at every level, a repeated key's last value kept), without building the value tree
//! first. A run computes some 15,000 keys; the tree was most of their cost (a string, a map
//! and a map key allocated per field).
//!
//! Fields are written where they come; an object whose keys did not come in order (or came
//! twice) is rewritten in order when it ends. Whatever this writer does not handle as the
//! value tree would (a map key that is not a string, 128-bit integers) is an error, and
//! the caller then takes the slow path, so that the bytes are always the slow path's.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::ser::{self, Serialize};

/// Writes `value`'s canonical JSON to `out`; `Err` where the slow path has to decide.
pub(super) fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Unhandled> {
    value.serialize(Writer { out })
}

/// A value this writer leaves to the slow path (or that failed to serialize: the slow path
/// then says why).
#[derive(Debug)]
pub(super) struct Unhandled;

impl fmt::Display for Unhandled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to the value tree")
    }
}

impl std::error::Error for Unhandled {}

impl ser::Error for Unhandled {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Unhandled
    }
}

fn string(out: &mut Vec<u8>, s: &str) -> Result<(), Unhandled> {
    serde_json::to_writer(out, s).map_err(|_| Unhandled)
}

/// An integer: its decimal digits, as the value tree writes it.
fn integer<T: Serialize>(out: &mut Vec<u8>, v: T) -> Result<(), Unhandled> {
    serde_json::to_writer(out, &v).map_err(|_| Unhandled)
}

/// A float as the value tree writes it (as an f64, a non-finite one as null).
fn float<T: Serialize>(out: &mut Vec<u8>, v: T) -> Result<(), Unhandled> {
    let value = serde_json::to_value(v).map_err(|_| Unhandled)?;
    serde_json::to_writer(out, &value).map_err(|_| Unhandled)
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> ser::Serializer for Writer<'a> {
    type Ok = ();
    type Error = Unhandled;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Unhandled> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unhandled> {
        integer(self.out, v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unhandled> {
        integer(self.out, v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unhandled> {
        integer(self.out, v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unhandled> {
        integer(self.out, v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unhandled> {
        integer(self.out, v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unhandled> {
        integer(self.out, v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unhandled> {
        integer(self.out, v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unhandled> {
        integer(self.out, v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Unhandled> {
        float(self.out, v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Unhandled> {
        float(self.out, v)
    }
    fn serialize_char(self, v: char) -> Result<(), Unhandled> {
        string(self.out, v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Unhandled> {
        string(self.out, v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Unhandled> {
        let mut seq = ser::Serializer::serialize_seq(self, Some(v.len()))?;
        for b in v {
            ser::SerializeSeq::serialize_element(&mut seq, b)?;
        }
        ser::SerializeSeq::end(seq)
    }
    fn serialize_none(self) -> Result<(), Unhandled> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unhandled> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unhandled> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unhandled> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unhandled> {
        string(self.out, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unhandled> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unhandled> {
        self.out.push(b'{');
        string(self.out, variant)?;
        self.out.push(b':');
        value.serialize(Writer {
            out: &mut *self.out,
        })?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, Unhandled> {
        self.out.push(b'[');
        Ok(Seq {
            out: self.out,
            first: true,
            close: b"]",
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, Unhandled> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a>, Unhandled> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, Unhandled> {
        self.out.push(b'{');
        string(self.out, variant)?;
        self.out.extend_from_slice(b":[");
        Ok(Seq {
            out: self.out,
            first: true,
            close: b"]}",
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a>, Unhandled> {
        Ok(Object::new(self.out, false))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'a>, Unhandled> {
        Ok(Object::new(self.out, false))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Object<'a>, Unhandled> {
        self.out.push(b'{');
        string(self.out, variant)?;
        self.out.push(b':');
        Ok(Object::new(self.out, true))
    }
    fn serialize_i128(self, _: i128) -> Result<(), Unhandled> {
        Err(Unhandled)
    }
    fn serialize_u128(self, _: u128) -> Result<(), Unhandled> {
        Err(Unhandled)
    }
}

/// An array (or a tuple variant's array, closed by `close`).
struct Seq<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    close: &'static [u8],
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unhandled> {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        value.serialize(Writer {
            out: &mut *self.out,
        })
    }

    fn finish(self) -> Result<(), Unhandled> {
        self.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = Unhandled;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unhandled> {
        self.element(value)
    }
    fn end(self) -> Result<(), Unhandled> {
        self.finish()
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = ();
    type Error = Unhandled;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unhandled> {
        self.element(value)
    }
    fn end(self) -> Result<(), Unhandled> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = ();
    type Error = Unhandled;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unhandled> {
        self.element(value)
    }
    fn end(self) -> Result<(), Unhandled> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Seq<'_> {
    type Ok = ();
    type Error = Unhandled;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unhandled> {
        self.element(value)
    }
    fn end(self) -> Result<(), Unhandled> {
        self.finish()
    }
}

/// An object: each field written where it comes (its key and value ranges kept), the whole
/// rewritten in key order when it ends, if they did not come so.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    /// Where the object's `{` is.
    start: usize,
    /// Per field: its key (unescaped) and the ranges of its escaped key and its value.
    fields: Vec<(Cow<'static, str>, Range<usize>, Range<usize>)>,
    /// A map's key, between `serialize_key` and `serialize_value`.
    key: Option<String>,
    /// A struct variant's object, closed with one more `}`.
    variant: bool,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>, variant: bool) -> Object<'a> {
        let start = out.len();
        out.push(b'{');
        Object {
            out,
            start,
            fields: Vec::new(),
            key: None,
            variant,
        }
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), Unhandled> {
        if !self.fields.is_empty() {
            self.out.push(b',');
        }
        let key_start = self.out.len();
        string(self.out, &key)?;
        let key_range = key_start..self.out.len();
        self.out.push(b':');
        let value_start = self.out.len();
        value.serialize(Writer {
            out: &mut *self.out,
        })?;
        let value_range = value_start..self.out.len();
        self.fields.push((key, key_range, value_range));
        Ok(())
    }

    fn finish(self) -> Result<(), Unhandled> {
        let in_order = self.fields.windows(2).all(|w| w[0].0 < w[1].0);
        if !in_order {
            let written = self.out.split_off(self.start);
            // A stable sort, then the last of each key: as a map the value tree builds.
            let mut order: Vec<usize> = (0..self.fields.len()).collect();
            order.sort_by(|&a, &b| self.fields[a].0.cmp(&self.fields[b].0));
            let mut kept: Vec<usize> = Vec::with_capacity(order.len());
            for i in order {
                match kept.last_mut() {
                    Some(last) if self.fields[*last].0 == self.fields[i].0 => *last = i,
                    _ => kept.push(i),
                }
            }
            let at = |r: &Range<usize>| &written[r.start - self.start..r.end - self.start];
            self.out.push(b'{');
            for (n, &i) in kept.iter().enumerate() {
                if n > 0 {
                    self.out.push(b',');
                }
                let (_, key, value) = &self.fields[i];
                self.out.extend_from_slice(at(key));
                self.out.push(b':');
                self.out.extend_from_slice(at(value));
            }
        }
        self.out.push(b'}');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = ();
    type Error = Unhandled;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unhandled> {
        self.field(Cow::Borrowed(key), value)
    }
    fn end(self) -> Result<(), Unhandled> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Object<'_> {
    type Ok = ();
    type Error = Unhandled;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unhandled> {
        self.field(Cow::Borrowed(key), value)
    }
    fn end(self) -> Result<(), Unhandled> {
        self.finish()
    }
}

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = Unhandled;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unhandled> {
        // Only string keys: the value tree turns others into strings its own way.
        match serde_json::to_value(key) {
            Ok(serde_json::Value::String(key)) => {
                self.key = Some(key);
                Ok(())
            }
            _ => Err(Unhandled),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unhandled> {
        let key = self.key.take().ok_or(Unhandled)?;
        self.field(Cow::Owned(key), value)
    }
    fn end(self) -> Result<(), Unhandled> {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Serialize;
    use serde_json::{json, Value};

    /// What the value tree writes for `value`.
    fn by_value_tree<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        super::super::write_canonical(&serde_json::to_value(value).unwrap(), &mut out).unwrap();
        out
    }

    fn written<T: Serialize + ?Sized>(value: &T) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        super::write(value, &mut out).ok().map(|()| out)
    }

    fn same<T: Serialize + ?Sized>(value: &T) {
        assert_eq!(
            written(value).map(String::from_utf8),
            Some(String::from_utf8(by_value_tree(value))),
        );
    }

    #[derive(Serialize)]
    enum Kind {
        Unit,
        Newtype(u32),
        Tuple(u8, &'static str),
        Struct { z: f32, a: Option<bool> },
    }

    #[derive(Serialize)]
    struct Unsorted<'a> {
        version: u32,
        sources: Vec<Inner<'a>>,
        method: &'a str,
        kinds: Vec<Kind>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        map: BTreeMap<&'a str, i64>,
        hash: HashMap<String, (f64, char)>,
        bytes: &'a serde_bytes_like::Bytes,
        unit: (),
        newtype: Newtype,
    }

    #[derive(Serialize)]
    struct Inner<'a> {
        number: usize,
        english: String,
        title: Option<&'a str>,
        translated: bool,
    }

    #[derive(Serialize)]
    struct Newtype(&'static str);

    mod serde_bytes_like {
        /// Serialized as bytes.
        pub(in super::super) struct Bytes(pub(in super::super) Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    /// A map with a key given twice, as a hand-written `Serialize` may.
    struct Repeated;
    impl Serialize for Repeated {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(None)?;
            map.serialize_entry("b", &1)?;
            map.serialize_entry("a", &2)?;
            map.serialize_entry("b", &3)?;
            map.end()
        }
    }

    #[test]
    fn the_bytes_are_the_value_trees() {
        let bytes = serde_bytes_like::Bytes(vec![0, 7, 255]);
        let value = Unsorted {
            version: 3,
            sources: vec![
                Inner {
                    number: 2,
                    english: "Floods \"hit\" the coast.\n\tTwo died — 12 % of \u{1}them; \\ / é 漢"
                        .into(),
                    title: None,
                    translated: false,
                },
                Inner {
                    number: 1,
                    english: String::new(),
                    title: Some("A title"),
                    translated: true,
                },
            ],
            method: "extractive",
            kinds: vec![
                Kind::Unit,
                Kind::Newtype(7),
                Kind::Tuple(1, "x"),
                Kind::Struct {
                    z: 0.1,
                    a: Some(true),
                },
                Kind::Struct {
                    z: f32::NAN,
                    a: None,
                },
            ],
            skipped: None,
            map: [("zeta", -1), ("alpha", i64::MIN), ("mid", i64::MAX)].into(),
            hash: (0..20)
                .map(|i| (format!("k{i}"), (i as f64 / 3.0, 'ü')))
                .collect(),
            bytes: &bytes,
            unit: (),
            newtype: Newtype("n"),
        };
        same(&value);
        same(&(
            1u32,
            Some("lang"),
            None::<&str>,
            [u64::MAX, 0],
            -5i8,
            1e300f64,
            1.5f32,
        ));
        same(&Repeated);
        same("just a string");
        same(&json!({"b": [1, {"d": null, "c": 2.5}], "a": {"y": true, "x": "s"}}));
    }

    #[test]
    fn what_it_does_not_handle_is_left_to_the_value_tree() {
        let numbered: BTreeMap<u32, &str> = [(2, "b"), (10, "a")].into();
        assert!(written(&numbered).is_none(), "keys that are not strings");
        assert!(written(&(1u128 << 100)).is_none(), "128-bit integers");
        // ... and the key is still the value tree's.
        let key = super::super::CacheKey::new("summary", "x", &numbered).unwrap();
        let mut material = serde_json::Map::new();
        material.insert("format".into(), super::super::CACHE_FORMAT_VERSION.into());
        material.insert("stage".into(), "summary".into());
        material.insert("input".into(), "x".into());
        material.insert("parts".into(), serde_json::to_value(&numbered).unwrap());
        let mut canonical = Vec::new();
        super::super::write_canonical(&Value::Object(material), &mut canonical).unwrap();
        use sha2::Digest;
        assert_eq!(key.as_hex(), hex::encode(sha2::Sha256::digest(&canonical)));
    }

    fn arbitrary_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-c\"\\\\\u{1}\u{7f}é漢 ]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("[a-d]{0,3}", inner), 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_json_value_gives_the_value_trees_bytes(value in arbitrary_value()) {
            proptest::prop_assert_eq!(written(&value), Some(by_value_tree(&value)));
        }
    }
}
