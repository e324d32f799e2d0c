//! The operators the native engine runs itself, each exactly as its Python function does for
//! the values it takes here; any other value goes to the Python function (`None` below).

use crate::json::{py_strip, write_str, V};
use hmac::{Hmac, Mac};
use serde_json::Value as J;
use sha2::Sha256;
pub type HashSet<T> = std::collections::HashSet<T, ahash::RandomState>;

const TEXT_HEX_CHARS: usize = 20;
const NUMBER_BITS: u32 = 53;
const LONGEST: usize = 255;

pub enum Native {
    /// `pseudonymize` of an unlinked identity (`anonymizer/core/operators/pseudonymize.py`).
    Pseudonymize {
        namespace: String,
        number: bool,
        prefix: String,
        fold: bool,
        emails: bool,
    },
    /// `keep` with its shapes (`anonymizer/core/operators/keep.py`); `strings`: every string
    /// shape is one matched here. With a roster, a value in the engine's `known` set (the
    /// roster's ids and usernames, lower-cased, that a value of these shapes could equal) goes
    /// to the Python function, which asks the roster.
    Keep {
        scalar: bool,
        numbers: bool,
        booleans: bool,
        shapes: Vec<Shape>,
        strings: bool,
        roster: bool,
    },
}

#[derive(Clone, Copy)]
pub enum Shape {
    Number,
    IsoTime,
    HexId,
    Uuid,
    Boolean,
}

/// What a native operator made of a value: None when the Python function must decide.
pub enum Made {
    Same,
    Drop,
    Json(Vec<u8>),
}

pub fn from_spec(spec: &J) -> Option<Native> {
    match spec.get("op")?.as_str()? {
        "pseudonymize" => Some(Native::Pseudonymize {
            namespace: spec.get("namespace")?.as_str()?.to_string(),
            number: spec.get("format")?.as_str()? == "number",
            prefix: spec.get("prefix")?.as_str()?.to_string(),
            fold: spec.get("fold")?.as_bool()?,
            emails: spec.get("namespace")?.as_str()? == "username",
        }),
        "keep" => {
            let names: Vec<&str> = spec
                .get("shape")?
                .as_array()?
                .iter()
                .filter_map(J::as_str)
                .collect();
            let roster = spec.get("roster")?.as_bool()?;
            let mut shapes = Vec::new();
            let mut strings = true;
            for name in &names {
                match *name {
                    "number" => shapes.push(Shape::Number),
                    "iso_time" => shapes.push(Shape::IsoTime),
                    "hex_id" => shapes.push(Shape::HexId),
                    "uuid" => shapes.push(Shape::Uuid),
                    "boolean" => shapes.push(Shape::Boolean),
                    "scalar" => {}
                    "any" => return None,
                    _ => strings = false,
                }
            }
            Some(Native::Keep {
                scalar: names.contains(&"scalar"),
                numbers: names.contains(&"number"),
                booleans: names.contains(&"boolean"),
                shapes,
                strings,
                roster,
            })
        }
        _ => None,
    }
}

/// KNOWN: what a value of a closed shape could equal among the roster's people (see `Keep`).
pub fn run(op: &Native, secret: &[u8], known: &HashSet<String>, v: &V) -> Option<Made> {
    match op {
        Native::Keep {
            scalar,
            numbers,
            booleans,
            shapes,
            strings,
            roster,
        } => {
            let kept = match v {
                V::Null => true,
                V::Str(s) if s.raw.is_empty() => true,
                _ if *scalar && !matches!(v, V::Obj(_) | V::Arr(_)) => true,
                V::Int(_) | V::Float(_) if *numbers => true,
                V::Bool(_) if *booleans => true,
                V::Str(s) => {
                    if !*strings {
                        return None;
                    }
                    let text = s.text();
                    let fit = text.chars().count() <= LONGEST
                        && shapes.iter().any(|shape| fits(*shape, &text));
                    if fit
                        && *roster
                        && !known.is_empty()
                        && known.contains(&text.to_ascii_lowercase())
                    {
                        return None;
                    }
                    fit
                }
                _ => false,
            };
            Some(if kept { Made::Same } else { Made::Drop })
        }
        Native::Pseudonymize {
            namespace,
            number,
            prefix,
            fold,
            emails,
        } => {
            let mut out = Vec::new();
            match v {
                V::Int(n) => {
                    let text = n.to_string();
                    if *number {
                        out.extend_from_slice(
                            number_of(secret, namespace, &text).to_string().as_bytes(),
                        );
                    } else {
                        write_str(
                            &mut out,
                            format!("{prefix}{}", hex_of(secret, namespace, &text)).as_bytes(),
                        );
                    }
                }
                V::Str(s) => {
                    let full = s.text();
                    if full.is_empty() {
                        return Some(Made::Same); // leaves pass "" as it is
                    }
                    let stripped = py_strip(&full);
                    if stripped.is_empty() {
                        return Some(Made::Same);
                    }
                    if *number && stripped.bytes().all(|b| b.is_ascii_digit()) {
                        let digits = stripped.trim_start_matches('0');
                        let canonical = if digits.is_empty() { "0" } else { digits };
                        write_str(
                            &mut out,
                            number_of(secret, namespace, canonical)
                                .to_string()
                                .as_bytes(),
                        );
                        return Some(Made::Json(out));
                    }
                    if *emails && stripped.contains('@') {
                        return None; // an email typed for a username: the Python function decides
                    }
                    if *fold && !stripped.is_ascii() {
                        return None; // Unicode lower-casing is Python's
                    }
                    let value = if *fold {
                        stripped.to_ascii_lowercase()
                    } else {
                        stripped.to_string()
                    };
                    write_str(
                        &mut out,
                        format!("{prefix}{}", hex_of(secret, namespace, &value)).as_bytes(),
                    );
                }
                _ => return None,
            }
            Some(Made::Json(out))
        }
    }
}

fn digest(secret: &[u8], namespace: &str, value: &str) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(namespace.as_bytes());
    mac.update(b"\x00");
    mac.update(value.as_bytes());
    mac.finalize().into_bytes().into()
}

fn hex_of(secret: &[u8], namespace: &str, value: &str) -> String {
    let d = digest(secret, namespace, value);
    let mut s = String::with_capacity(TEXT_HEX_CHARS);
    for b in d.iter().take(TEXT_HEX_CHARS / 2) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn number_of(secret: &[u8], namespace: &str, value: &str) -> u64 {
    let d = digest(secret, namespace, value);
    let n = u64::from_be_bytes(d[..8].try_into().expect("eight bytes")) >> (64 - NUMBER_BITS);
    if n == 0 {
        1
    } else {
        n
    }
}

// ---------------------------------------------------------------- string shapes, as keep.py's patterns

fn digits(b: &[u8], i: &mut usize, min: usize, max: usize) -> bool {
    let start = *i;
    while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
        *i += 1;
    }
    *i - start >= min
}

fn hexes(b: &[u8], i: &mut usize, n: usize) -> bool {
    if b.len() < *i + n || !b[*i..*i + n].iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    *i += n;
    true
}

fn fits(shape: Shape, text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    match shape {
        Shape::Boolean => matches!(text, "true" | "True" | "false" | "False" | "TRUE" | "FALSE"),
        Shape::HexId => !b.is_empty() && b.len() <= 64 && b.iter().all(u8::is_ascii_hexdigit),
        Shape::Uuid => {
            for (k, n) in [8usize, 4, 4, 4, 12].iter().enumerate() {
                if k > 0 && b.get(i) == Some(&b'-') {
                    i += 1;
                }
                if !hexes(b, &mut i, *n) {
                    return false;
                }
            }
            i == b.len()
        }
        Shape::Number => {
            // -?[0-9]{1,20}(?:\.[0-9]{1,20})?(?:[eE][-+]?[0-9]{1,3})?
            if b.first() == Some(&b'-') {
                i += 1;
            }
            if !digits(b, &mut i, 1, 20) {
                return false;
            }
            if b.get(i) == Some(&b'.') {
                i += 1;
                if !digits(b, &mut i, 1, 20) {
                    return false;
                }
            }
            if matches!(b.get(i), Some(b'e' | b'E')) {
                i += 1;
                if matches!(b.get(i), Some(b'+' | b'-')) {
                    i += 1;
                }
                if !digits(b, &mut i, 1, 3) {
                    return false;
                }
            }
            i == b.len()
        }
        Shape::IsoTime => {
            // [0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?
            let fixed = |i: &mut usize, n: usize| -> bool { digits(b, i, n, n) };
            let lit = |i: &mut usize, c: u8| -> bool {
                if b.get(*i) == Some(&c) {
                    *i += 1;
                    true
                } else {
                    false
                }
            };
            if !(fixed(&mut i, 4)
                && lit(&mut i, b'-')
                && fixed(&mut i, 2)
                && lit(&mut i, b'-')
                && fixed(&mut i, 2))
            {
                return false;
            }
            if i == b.len() {
                return true;
            }
            if !(matches!(b.get(i), Some(b'T' | b' '))) {
                return false;
            }
            i += 1;
            if !(fixed(&mut i, 2) && lit(&mut i, b':') && fixed(&mut i, 2)) {
                return false;
            }
            if lit(&mut i, b':') {
                if !fixed(&mut i, 2) {
                    return false;
                }
                if lit(&mut i, b'.') && !digits(b, &mut i, 1, 9) {
                    return false;
                }
            }
            if lit(&mut i, b'Z') {
            } else if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
                if !fixed(&mut i, 2) {
                    return false;
                }
                lit(&mut i, b':');
                if !fixed(&mut i, 2) {
                    return false;
                }
            }
            i == b.len()
        }
    }
}
