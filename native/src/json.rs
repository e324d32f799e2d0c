//! A validating JSON scanner and an orjson-compatible serializer.
//!
//! The scanner accepts a subset of what `orjson.loads` followed by the strict checks
//! (`anonymizer.core.strictjson`) accepts: anything it is not sure of (invalid UTF-8, a lone
//! surrogate, a repeated key, nesting deeper than 64, an integer outside 64 bits, a float that
//! overflows) fails, and the caller hands the line to the Python engine, which names the reason.
//! Strings are not decoded while scanning: a string is its raw bytes, decoded only when a rule
//! reads it or when its raw form differs from orjson's.

use std::borrow::Cow;

pub const MAX_DEPTH: usize = 64;

#[derive(Debug)]
pub struct Str<'a> {
    pub raw: &'a [u8],
    pub escaped: bool,
}

impl<'a> Str<'a> {
    /// The decoded text (the scanner has checked every escape).
    pub fn text(&self) -> Cow<'a, str> {
        if !self.escaped {
            // The whole input was checked as UTF-8 and a string ends on an ASCII quote.
            return Cow::Borrowed(std::str::from_utf8(self.raw).expect("checked UTF-8"));
        }
        Cow::Owned(unescape(self.raw))
    }
}

#[derive(Debug)]
pub enum V<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(Str<'a>),
    Arr(Vec<V<'a>>),
    Obj(Vec<(Str<'a>, V<'a>)>),
}

impl<'a> V<'a> {
    pub fn get(&self, key: &str) -> Option<&V<'a>> {
        if let V::Obj(entries) = self {
            entries.iter().find(|(k, _)| key_eq(k, key)).map(|(_, v)| v)
        } else {
            None
        }
    }
    pub fn as_text(&self) -> Option<Cow<'a, str>> {
        if let V::Str(s) = self {
            Some(s.text())
        } else {
            None
        }
    }
}

pub fn key_eq(k: &Str, key: &str) -> bool {
    if !k.escaped {
        k.raw == key.as_bytes()
    } else {
        k.text() == key
    }
}

pub struct Fail;

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

/// Parse TEXT (already checked as UTF-8) as one JSON value with optional JSON whitespace around it.
pub fn parse(text: &[u8]) -> Result<V<'_>, Fail> {
    let mut sc = Scanner { s: text, i: 0 };
    sc.ws();
    let v = sc.value(0)?;
    sc.ws();
    if sc.i != sc.s.len() {
        return Err(Fail);
    }
    Ok(v)
}

impl<'a> Scanner<'a> {
    #[inline]
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<V<'a>, Fail> {
        let c = *self.s.get(self.i).ok_or(Fail)?;
        match c {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => Ok(V::Str(self.string()?)),
            b't' => self.lit(b"true", V::Bool(true)),
            b'f' => self.lit(b"false", V::Bool(false)),
            b'n' => self.lit(b"null", V::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Fail),
        }
    }

    fn lit(&mut self, word: &[u8], v: V<'a>) -> Result<V<'a>, Fail> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(Fail)
        }
    }

    fn object(&mut self, depth: usize) -> Result<V<'a>, Fail> {
        if depth > MAX_DEPTH {
            return Err(Fail);
        }
        self.i += 1;
        let mut entries: Vec<(Str<'a>, V<'a>)> = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(V::Obj(entries));
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(Fail);
            }
            let key = self.string()?;
            self.ws();
            if self.s.get(self.i) != Some(&b':') {
                return Err(Fail);
            }
            self.i += 1;
            self.ws();
            let v = self.value(depth)?;
            entries.push((key, v));
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(Fail),
            }
        }
        if has_duplicates(&entries) {
            return Err(Fail);
        }
        Ok(V::Obj(entries))
    }

    fn array(&mut self, depth: usize) -> Result<V<'a>, Fail> {
        if depth > MAX_DEPTH {
            return Err(Fail);
        }
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(V::Arr(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth)?);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(Fail),
            }
        }
        Ok(V::Arr(items))
    }

    fn string(&mut self) -> Result<Str<'a>, Fail> {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            match memchr::memchr2(b'"', b'\\', &self.s[self.i..]) {
                None => return Err(Fail),
                Some(off) => {
                    if self.s[self.i..self.i + off].iter().any(|&b| b < 0x20) {
                        return Err(Fail);
                    }
                    self.i += off;
                    if self.s[self.i] == b'"' {
                        let raw = &self.s[start..self.i];
                        self.i += 1;
                        return Ok(Str { raw, escaped });
                    }
                    escaped = true;
                    self.escape()?;
                }
            }
        }
    }

    /// Check one escape at self.i (a backslash); lone surrogates fail, as orjson refuses them.
    fn escape(&mut self) -> Result<(), Fail> {
        let c = *self.s.get(self.i + 1).ok_or(Fail)?;
        match c {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.i += 2;
                Ok(())
            }
            b'u' => {
                let u = hex4(self.s, self.i + 2).ok_or(Fail)?;
                self.i += 6;
                if (0xD800..0xDC00).contains(&u) {
                    if self.s.get(self.i) == Some(&b'\\') && self.s.get(self.i + 1) == Some(&b'u') {
                        let low = hex4(self.s, self.i + 2).ok_or(Fail)?;
                        if (0xDC00..0xE000).contains(&low) {
                            self.i += 6;
                            return Ok(());
                        }
                    }
                    return Err(Fail);
                }
                if (0xDC00..0xE000).contains(&u) {
                    return Err(Fail);
                }
                Ok(())
            }
            _ => Err(Fail),
        }
    }

    fn number(&mut self) -> Result<V<'a>, Fail> {
        let start = self.i;
        let s = self.s;
        if s[self.i] == b'-' {
            self.i += 1;
        }
        let int_start = self.i;
        match s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while matches!(s.get(self.i), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            }
            _ => return Err(Fail),
        }
        let int_digits = self.i - int_start;
        let mut float = false;
        if s.get(self.i) == Some(&b'.') {
            self.i += 1;
            let d = self.i;
            while matches!(s.get(self.i), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            if self.i == d {
                return Err(Fail);
            }
            float = true;
        }
        if matches!(s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            let d = self.i;
            while matches!(s.get(self.i), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            if self.i == d {
                return Err(Fail);
            }
            float = true;
        }
        let text = std::str::from_utf8(&s[start..self.i]).map_err(|_| Fail)?;
        if !float {
            // orjson reads integers beyond 64 bits as floats: left to the Python engine.
            if int_digits > 20 {
                return Err(Fail);
            }
            let n: i128 = text.parse().map_err(|_| Fail)?;
            if n < i64::MIN as i128 || n > u64::MAX as i128 {
                return Err(Fail);
            }
            return Ok(V::Int(n));
        }
        let f: f64 = text.parse().map_err(|_| Fail)?;
        if !f.is_finite() {
            return Err(Fail);
        }
        Ok(V::Float(f))
    }
}

fn hex4(s: &[u8], at: usize) -> Option<u32> {
    let h = s.get(at..at + 4)?;
    let mut n = 0u32;
    for &b in h {
        n = n * 16 + (b as char).to_digit(16)?;
    }
    Some(n)
}

fn has_duplicates(entries: &[(Str, V)]) -> bool {
    let n = entries.len();
    if n < 2 {
        return false;
    }
    if n <= 16 {
        for i in 1..n {
            for j in 0..i {
                if same_key(&entries[i].0, &entries[j].0) {
                    return true;
                }
            }
        }
        return false;
    }
    let mut seen =
        std::collections::HashSet::with_capacity_and_hasher(n, ahash::RandomState::new());
    entries.iter().any(|(k, _)| !seen.insert(k.text()))
}

fn same_key(a: &Str, b: &Str) -> bool {
    if !a.escaped && !b.escaped {
        a.raw == b.raw
    } else {
        a.text() == b.text()
    }
}

/// The text of a checked string body with its escapes resolved.
pub fn unescape(raw: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            _ => {
                let u = hex4(raw, i).unwrap_or(0xFFFD);
                i += 4;
                let code = if (0xD800..0xDC00).contains(&u) {
                    let low = hex4(raw, i + 2).unwrap_or(0xDC00);
                    i += 6;
                    0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    u
                };
                char::from_u32(code).unwrap_or('\u{FFFD}')
            }
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
    String::from_utf8(out).expect("valid UTF-8 from checked input")
}

// ---------------------------------------------------------------- serialization, as orjson does

const HEX: &[u8; 16] = b"0123456789abcdef";

/// TEXT as a JSON string, escaped as orjson escapes it: `"`, `\` and control characters only.
pub fn write_str(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
    out.push(b'"');
}

pub fn write_raw_str(out: &mut Vec<u8>, s: &Str) {
    if !s.escaped {
        // No escape, so no quote, backslash or control character: orjson writes the same bytes.
        out.push(b'"');
        out.extend_from_slice(s.raw);
        out.push(b'"');
    } else {
        write_str(out, s.text().as_bytes());
    }
}

/// A float as orjson writes it: the shortest digits that read back exactly, in positional
/// notation for decimal exponents from -5 to 15, else as `d.ddde+X` / `d.ddde-X`.
pub fn write_float(out: &mut Vec<u8>, f: f64) {
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(f);
    // ryu writes "1.5", "1e16", "1.5e-7", "-0.0": take its digits and exponent apart.
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mant, exp) = match body.find('e') {
        Some(p) => (&body[..p], body[p + 1..].parse::<i32>().unwrap_or(0)),
        None => (body, 0),
    };
    let (ip, fp) = match mant.find('.') {
        Some(p) => (&mant[..p], &mant[p + 1..]),
        None => (mant, ""),
    };
    let mut digits: String = format!("{ip}{fp}");
    // the position of the decimal point after the digits' start
    let mut point = ip.len() as i32 + exp;
    // strip leading zeros (e.g. "0.0001") and trailing zeros
    let lead = digits.len() - digits.trim_start_matches('0').len();
    if lead == digits.len() {
        // zero
        out.extend_from_slice(if neg { b"-0.0" } else { b"0.0" });
        return;
    }
    digits.drain(..lead);
    point -= lead as i32;
    let trimmed = digits.trim_end_matches('0').len();
    digits.truncate(trimmed);
    let e10 = point - 1; // scientific exponent
    if neg {
        out.push(b'-');
    }
    let d = digits.as_bytes();
    if (-5..16).contains(&e10) {
        if point <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-point) as usize));
            out.extend_from_slice(d);
        } else if point as usize >= d.len() {
            out.extend_from_slice(d);
            out.extend(std::iter::repeat_n(b'0', point as usize - d.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&d[..point as usize]);
            out.push(b'.');
            out.extend_from_slice(&d[point as usize..]);
        }
    } else {
        out.push(d[0]);
        if d.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&d[1..]);
        }
        out.push(b'e');
        if e10 > 0 {
            out.push(b'+');
        }
        let mut ib = itoa::Buffer::new();
        out.extend_from_slice(ib.format(e10).as_bytes());
    }
}

pub fn write_value(out: &mut Vec<u8>, v: &V) {
    match v {
        V::Null => out.extend_from_slice(b"null"),
        V::Bool(true) => out.extend_from_slice(b"true"),
        V::Bool(false) => out.extend_from_slice(b"false"),
        V::Int(n) => {
            let mut ib = itoa::Buffer::new();
            out.extend_from_slice(ib.format(*n).as_bytes());
        }
        V::Float(f) => write_float(out, *f),
        V::Str(s) => write_raw_str(out, s),
        V::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        V::Obj(entries) => {
            out.push(b'{');
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_raw_str(out, k);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Python's `str.strip()`: the characters `str.isspace` calls whitespace, at both ends.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}
