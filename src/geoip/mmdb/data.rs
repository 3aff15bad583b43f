//! The data section of a MaxMind DB: the records the search tree points at, decoded as far
//! as geoline reads them.
//!
//! This module owns the data format of the MaxMind DB specification (a control byte with
//! type and size, pointers into the section, maps, arrays, strings and integers): reading a
//! value at an offset, skipping one, and finding a key in a map or an element in an array.
//! The metadata at the end of a file is in the same format and is read with it too.
//!
//! It holds no bytes of its own and does not know which fields mean what: that is
//! [`crate::geoip::layout`].

use super::MmdbError;

/// A section of bytes in the data format: the data section (pointers are relative to its
/// start) or the metadata.
#[derive(Clone, Copy)]
pub(crate) struct Data<'a> {
    bytes: &'a [u8],
}

/// A decoded value: scalars geoline reads, or where a container's entries start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Str(&'a str),
    /// uint16, uint32, uint64 and uint128.
    Uint(u128),
    Int(i32),
    /// `len` key/value pairs starting at offset `at`.
    Map {
        len: usize,
        at: usize,
    },
    /// `len` elements starting at offset `at`.
    Array {
        len: usize,
        at: usize,
    },
    /// Bytes, a double, a float or a boolean: nothing geoline matches on.
    Other,
}

impl Value<'_> {
    /// The value's kind, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Uint(_) | Value::Int(_) => "a number",
            Value::Map { .. } => "a map",
            Value::Array { .. } => "an array",
            Value::Other => "a scalar",
        }
    }
}

const POINTER: u8 = 1;
const STRING: u8 = 2;
const DOUBLE: u8 = 3;
const BYTES: u8 = 4;
const UINT16: u8 = 5;
const UINT32: u8 = 6;
const MAP: u8 = 7;
const INT32: u8 = 8;
const UINT64: u8 = 9;
const UINT128: u8 = 10;
const ARRAY: u8 = 11;
const BOOLEAN: u8 = 14;
const FLOAT: u8 = 15;

/// How deep maps and arrays may nest before a record is refused: real records nest three
/// or four levels; a crafted one must not exhaust the stack.
const MAX_DEPTH: usize = 32;

/// A control byte read: the type, the payload's size (or a boolean's value, or a
/// container's entry count) and where the payload starts.
struct Head {
    kind: u8,
    size: usize,
    at: usize,
}

impl<'a> Data<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Data<'a> {
        Data { bytes }
    }

    fn error(&self, at: usize, reason: impl Into<String>) -> MmdbError {
        MmdbError::Data {
            offset: at,
            reason: reason.into(),
        }
    }

    fn byte(&self, at: usize) -> Result<u8, MmdbError> {
        self.bytes
            .get(at)
            .copied()
            .ok_or_else(|| self.error(at, "runs past the end of the section"))
    }

    fn slice(&self, at: usize, len: usize) -> Result<&'a [u8], MmdbError> {
        at.checked_add(len)
            .and_then(|end| self.bytes.get(at..end))
            .ok_or_else(|| self.error(at, "runs past the end of the section"))
    }

    /// A big-endian unsigned number of `len` bytes (at most 16) at `at`.
    fn number(&self, at: usize, len: usize) -> Result<u128, MmdbError> {
        Ok(self
            .slice(at, len)?
            .iter()
            .fold(0u128, |n, &b| (n << 8) | u128::from(b)))
    }

    fn head(&self, at: usize) -> Result<Head, MmdbError> {
        let control = self.byte(at)?;
        let mut next = at + 1;
        let mut kind = control >> 5;
        if kind == POINTER {
            // A pointer's size bits hold part of its value: the caller reads it.
            return Ok(Head {
                kind,
                size: usize::from(control & 0x1f),
                at: next,
            });
        }
        if kind == 0 {
            let extended = self.byte(next)?;
            next += 1;
            kind = extended
                .checked_add(7)
                .filter(|k| *k >= INT32)
                .ok_or_else(|| self.error(at, format!("extended type {extended} is invalid")))?;
        }
        let size = match control & 0x1f {
            n @ 0..=28 => usize::from(n),
            29 => 29 + usize::from(self.byte(next)?),
            30 => 285 + self.number(next, 2)? as usize,
            _ => 65_821 + self.number(next, 3)? as usize,
        };
        next += match control & 0x1f {
            29 => 1,
            30 => 2,
            31 => 3,
            _ => 0,
        };
        Ok(Head {
            kind,
            size,
            at: next,
        })
    }

    /// The offset a pointer whose control byte carries `size` bits refers to, and the
    /// offset after the pointer.
    fn pointer(&self, size: usize, at: usize) -> Result<(usize, usize), MmdbError> {
        let high = (size & 0x07) as u128;
        let (target, len) = match (size >> 3) & 0x03 {
            0 => ((high << 8) | self.number(at, 1)?, 1),
            1 => (((high << 16) | self.number(at, 2)?) + 2_048, 2),
            2 => (((high << 24) | self.number(at, 3)?) + 526_336, 3),
            _ => (self.number(at, 4)?, 4),
        };
        let target = usize::try_from(target).map_err(|_| self.error(at, "pointer too large"))?;
        Ok((target, at + len))
    }

    /// The value at `at` (a pointer followed to its target) and the offset after it (after
    /// the pointer, for a pointer).
    pub(crate) fn value(&self, at: usize) -> Result<(Value<'a>, usize), MmdbError> {
        let head = self.head(at)?;
        if head.kind == POINTER {
            let (target, after) = self.pointer(head.size, head.at)?;
            if self.head(target)?.kind == POINTER {
                return Err(self.error(at, "a pointer to a pointer"));
            }
            let (value, _) = self.value(target)?;
            return Ok((value, after));
        }
        self.value_of(head, 0)
    }

    fn value_of(&self, head: Head, depth: usize) -> Result<(Value<'a>, usize), MmdbError> {
        let Head { kind, size, at } = head;
        let payload = |len: usize| at.checked_add(len).ok_or_else(|| self.error(at, "size"));
        let value = match kind {
            STRING => {
                let bytes = self.slice(at, size)?;
                let s = std::str::from_utf8(bytes)
                    .map_err(|_| self.error(at, "a string that is not UTF-8"))?;
                (Value::Str(s), payload(size)?)
            }
            UINT16 | UINT32 | UINT64 | UINT128 => {
                let max = match kind {
                    UINT16 => 2,
                    UINT32 => 4,
                    UINT64 => 8,
                    _ => 16,
                };
                if size > max {
                    return Err(self.error(at, format!("a {size}-byte integer of type {kind}")));
                }
                (Value::Uint(self.number(at, size)?), payload(size)?)
            }
            INT32 => {
                if size > 4 {
                    return Err(self.error(at, format!("a {size}-byte int32")));
                }
                // Fewer than four bytes are zero-extended (the specification's rule).
                let n = self.number(at, size)? as u32;
                (Value::Int(n as i32), payload(size)?)
            }
            MAP => (
                Value::Map { len: size, at },
                self.skip_entries(size * 2, at, depth)?,
            ),
            ARRAY => (
                Value::Array { len: size, at },
                self.skip_entries(size, at, depth)?,
            ),
            DOUBLE if size == 8 => (Value::Other, payload(8)?),
            FLOAT if size == 4 => (Value::Other, payload(4)?),
            BYTES => {
                self.slice(at, size)?;
                (Value::Other, payload(size)?)
            }
            BOOLEAN if size <= 1 => (Value::Other, at),
            _ => {
                return Err(self.error(at, format!("type {kind} with size {size} is invalid")));
            }
        };
        Ok(value)
    }

    /// The offset after `count` values starting at `at`.
    fn skip_entries(&self, count: usize, mut at: usize, depth: usize) -> Result<usize, MmdbError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(at, "maps and arrays nested too deep"));
        }
        for _ in 0..count {
            at = self.skip(at, depth + 1)?;
        }
        Ok(at)
    }

    /// The offset after the value at `at`, without following pointers.
    fn skip(&self, at: usize, depth: usize) -> Result<usize, MmdbError> {
        let head = self.head(at)?;
        if head.kind == POINTER {
            return Ok(self.pointer(head.size, head.at)?.1);
        }
        Ok(self.value_of(head, depth)?.1)
    }

    /// The value under `key` in the map `map`; `None` when the map has no such key.
    pub(crate) fn get(&self, map: Value<'a>, key: &str) -> Result<Option<Value<'a>>, MmdbError> {
        let Value::Map { len, mut at } = map else {
            return Err(MmdbError::Shape {
                found: map.kind(),
                wanted: "a map",
            });
        };
        for _ in 0..len {
            let (k, after_key) = self.value(at)?;
            let Value::Str(k) = k else {
                return Err(self.error(at, format!("a map key that is {}", k.kind())));
            };
            if k == key {
                return Ok(Some(self.value(after_key)?.0));
            }
            at = self.skip(after_key, 0)?;
        }
        Ok(None)
    }

    /// Element `index` of the array `array`; `None` past its end.
    pub(crate) fn element(
        &self,
        array: Value<'a>,
        index: usize,
    ) -> Result<Option<Value<'a>>, MmdbError> {
        let Value::Array { len, mut at } = array else {
            return Err(MmdbError::Shape {
                found: array.kind(),
                wanted: "an array",
            });
        };
        if index >= len {
            return Ok(None);
        }
        for _ in 0..index {
            at = self.skip(at, 0)?;
        }
        Ok(Some(self.value(at)?.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_containers_and_pointers() {
        // {"a": "xy", "b": [1u16, ptr->"xy"], "c": true}
        let bytes = [
            0xe3, // map of 3
            0x41, b'a', 0x42, b'x', b'y', // "a": "xy" (the string at offset 3)
            0x41, b'b', 0x02, 0x04, // "b": array of 2 (extended type 4 + 7 = 11)
            0xa1, 0x01, // uint16 1
            0x20, 0x03, // pointer to offset 3
            0x41, b'c', 0x01, 0x07, // "c": boolean true (extended type 7 + 7 = 14)
        ];
        let d = Data::new(&bytes);
        let (map, end) = d.value(0).expect("map");
        assert_eq!(end, bytes.len());
        assert_eq!(d.get(map, "a").expect("a"), Some(Value::Str("xy")));
        let array = d.get(map, "b").expect("b").expect("has b");
        assert_eq!(d.element(array, 0).expect("0"), Some(Value::Uint(1)));
        assert_eq!(d.element(array, 1).expect("1"), Some(Value::Str("xy")));
        assert_eq!(d.element(array, 2).expect("2"), None);
        assert_eq!(d.get(map, "c").expect("c"), Some(Value::Other));
        assert_eq!(d.get(map, "z").expect("z"), None);
        assert!(d.get(Value::Str("x"), "a").is_err());
    }

    #[test]
    fn bad_data_is_an_error_not_a_panic() {
        for bytes in [
            &[0x45, b'a'][..],          // a string longer than the section
            &[0xe2, 0x41, b'a'][..],    // a map cut short
            &[0x20][..],                // a pointer cut short
            &[0x00, 0x05][..],          // extended type 12 (data cache container)
            &[0x20, 0x00][..],          // a pointer to itself
            &[0xc5, 1, 2, 3, 4, 5][..], // a 5-byte uint32
        ] {
            assert!(Data::new(bytes).value(0).is_err(), "{bytes:?}");
        }
        // Arrays nested deeper than any record: refused, not a stack overflow.
        let deep = [0x02, 0x04].repeat(10_000);
        assert!(
            Data::new(&[&deep[..], &[0x02, 0x04]].concat())
                .value(0)
                .is_err()
        );
    }
}
