//! `verify`'s line filter: which lines of a chunk the scan (`anonymizer/verify/scan.py`) must read.
//!
//! The scan judges each line on its own. This filter reads every byte of a chunk once and flags
//! each line on which any of the scan's passes could report something: an identifier's pattern,
//! a key of an identifier field whose value is a harvested one, a user id after a `/`, a line
//! worth a normalized reading, a masked field whose value is not yet known to be its own mask,
//! and the places where the detectors begin (an `@` or `%40` before a domain, an IPv4 or IPv6
//! anchor outside a masked field, a phone's start). It answers "maybe" wherever the scan would
//! look further, and never "no" where the scan could find something: the Python scan then reads
//! the flagged lines only, and reports exactly what it reports on the whole chunk
//! (`tests/test_verify_filter.py` proves it). No unsafe code.

use aho_corasick::{AhoCorasick, MatchKind};
use memchr::memmem;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::collections::HashSet;

type Set = HashSet<Vec<u8>, ahash::RandomState>;

#[pyclass(module = "anonymizer_native")]
pub struct LineFilter {
    /// The scan's folded patterns (forms with a 0 at each alphanumeric edge), by first word.
    folded: Words,
    /// The keys of the identifier fields (lower-cased) and of the fields the policy masks as IP
    /// addresses: (an identifier field, a masked field); the longest key.
    keys: std::collections::HashMap<Vec<u8>, (bool, bool), ahash::RandomState>,
    longest_key: usize,
    /// The values the identifier fields hold in the inputs (as `field_value_key` writes them).
    values: Set,
    /// Forms searched as written (names of other scripts), lower-cased.
    verbatim: Option<AhoCorasick>,
    /// User ids of any length (the path segment check).
    short_ids: Set,
    /// The prefixes of the masked fields' plain values, and the values known to be their own mask.
    masked_prefixes: Vec<Vec<u8>>,
    good: Set,
    /// The bits an IPv4 address keeps when masked (its own mask has no other bit set).
    v4_mask: u32,
    v6_mask: u128,
    /// Whether lines are read with "at" for "@" (there are emails), and for phones (lines are
    /// read normalized when there are identifiers: `normal`).
    at_markers: bool,
    phones: bool,
    /// Every identifier normalized as `normalize_text` reads text; the names of HTML5's
    /// entities; whether the separators of phones are read as spaces too.
    normal: Option<AhoCorasick>,
    entities: Set,
    phone_reading: bool,
    /// `\u`, `\\`, `~~`, `__`, ` _`, `"_`, then the markers of an address written with "at".
    finders: Vec<memmem::Finder<'static>>,
}

fn automaton(patterns: &[Vec<u8>]) -> PyResult<Option<AhoCorasick>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .build(patterns)
        .map(Some)
        .map_err(|_| PyValueError::new_err("the line filter's automaton could not be built"))
}

#[pymethods]
impl LineFilter {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (folded, marker_keys, values, verbatim, short_ids, masked_keys, ipv4_prefix, ipv6_prefix, normal, entities, phone_reading, at_markers, phones))]
    fn new(
        folded: Vec<Vec<u8>>,
        marker_keys: Vec<Vec<u8>>,
        values: Vec<Vec<u8>>,
        verbatim: Vec<Vec<u8>>,
        short_ids: Vec<Vec<u8>>,
        masked_keys: Vec<Vec<u8>>,
        ipv4_prefix: u32,
        ipv6_prefix: u32,
        normal: Vec<Vec<u8>>,
        entities: Vec<Vec<u8>>,
        phone_reading: bool,
        at_markers: bool,
        phones: bool,
    ) -> PyResult<Self> {
        let mut keys: std::collections::HashMap<Vec<u8>, (bool, bool), ahash::RandomState> =
            Default::default();
        for key in &marker_keys {
            keys.entry(key.clone()).or_default().0 = true;
        }
        let mut masked_prefixes = Vec::new();
        for key in &masked_keys {
            keys.entry(key.clone()).or_default().1 = true;
            masked_prefixes.push([b"\"", key.as_slice(), b"\":\""].concat());
            masked_prefixes.push([b"\\\"", key.as_slice(), b"\\\":\\\""].concat());
            masked_prefixes.push([b"\"", key.as_slice(), b"\": \""].concat());
        }
        Ok(LineFilter {
            folded: Words::new(folded),
            longest_key: keys.keys().map(Vec::len).max().unwrap_or(0),
            keys,
            values: values.into_iter().collect(),
            verbatim: automaton(&verbatim)?,
            short_ids: short_ids.into_iter().collect(),
            masked_prefixes,
            good: Set::default(),
            v4_mask: if ipv4_prefix == 0 {
                0
            } else {
                u32::MAX << (32 - ipv4_prefix.min(32))
            },
            v6_mask: if ipv6_prefix == 0 {
                0
            } else {
                u128::MAX << (128 - ipv6_prefix.min(128))
            },
            normal: automaton(&normal)?,
            entities: entities.into_iter().collect(),
            phone_reading,
            at_markers,
            phones,
            finders: [
                &b"\\u"[..],
                b"\\\\",
                b"~~",
                b"__",
                b" _",
                b"\"_",
                b" at ",
                b"at)",
                b"at]",
                b" @",
                b"@ ",
            ]
            .iter()
            .map(|m| memmem::Finder::new(m).into_owned())
            .collect(),
        })
    }

    /// The lines of CHUNK (split at `\n`) that the scan must read, in order: (index, start, end).
    fn lines(&self, py: Python<'_>, chunk: &[u8]) -> Vec<(usize, usize, usize)> {
        py.allow_threads(|| self.flag(chunk))
    }

    /// VALUES (lower-cased) of masked fields that the scan found to be their own mask.
    fn add_masked(&mut self, values: Vec<Vec<u8>>) {
        if self.good.len() > 1 << 20 {
            self.good.clear();
        }
        self.good.extend(values);
    }
}

const SEPARATOR: [bool; 256] = table(b" .-()+/_");
const PHONE_NOT_AFTER: [bool; 256] = alphanumeric_and(b"_+-.,/:");
const WORD_OR_DASH: [bool; 256] = alphanumeric_and(b"_-");

/// A table of the ASCII letters and digits and BYTES.
const fn alphanumeric_and(bytes: &[u8]) -> [bool; 256] {
    let mut t = table(bytes);
    let mut b = 0;
    while b < 256 {
        if (b as u8).is_ascii_alphanumeric() {
            t[b] = true;
        }
        b += 1;
    }
    t
}

const fn table(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

/// The folded patterns, found by a word or two of them: a folded pattern is some 0 bytes, a
/// word (a run of ASCII letters and digits), then 0 bytes and words, and ends with a 0. Where it
/// occurs, each of its words is a whole word of the folded text, and two words next to each
/// other in it are two words next to each other in the text. So every occurrence the scan's
/// automaton finds is found here by looking each word of the text up (alone, and with the word
/// before it), then comparing the pattern with the folded text at that place: the same matches,
/// without walking an automaton through every byte. A pattern of one word is looked up by it;
/// one of several words by the two neighbours that fewest patterns share (not by a domain that
/// every address of a roster has, nor by an address's "10.0").
struct Words {
    patterns: Vec<Vec<u8>>,
    /// Key (a word, or two words with the 0 bytes between them) -> (pattern, the key's offset in it).
    keys: std::collections::HashMap<Vec<u8>, Vec<(usize, usize)>, ahash::RandomState>,
    /// A bit per hash of a key: most words of the text begin none.
    bits: Vec<u64>,
}

const KEY_BITS: u32 = 20;

fn key_hash(key: &[u8]) -> usize {
    let mut head = [0u8; 8];
    let n = key.len().min(8);
    head[..n].copy_from_slice(&key[..n]);
    let tail = if key.len() > 8 {
        key[key.len() - 1] as u64
    } else {
        0
    };
    let mixed = (u64::from_le_bytes(head) ^ ((key.len() as u64) << 56) ^ (tail << 48))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> (64 - KEY_BITS)) as usize
}

/// The words of a folded PATTERN: (offset, length).
fn words_of(pattern: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut j = 0;
    while j < pattern.len() {
        let n = pattern[j..].iter().take_while(|&&b| b != 0).count();
        if n > 0 {
            out.push((j, n));
        }
        j += n.max(1);
    }
    out
}

/// The keys a PATTERN can be looked up by: (offset, length) of each word if it has one, else of
/// each two neighbouring words.
fn keys_of(pattern: &[u8]) -> Vec<(usize, usize)> {
    let words = words_of(pattern);
    if words.len() == 1 {
        return words;
    }
    words
        .windows(2)
        .map(|w| (w[0].0, w[1].0 + w[1].1 - w[0].0))
        .collect()
}

impl Words {
    fn new(patterns: Vec<Vec<u8>>) -> Self {
        let patterns: Vec<Vec<u8>> = patterns
            .into_iter()
            .filter(|p| p.first() == Some(&0) && p.last() == Some(&0) && p.iter().any(|&b| b != 0))
            .collect(); // the scan makes no other
        let mut shared: std::collections::HashMap<&[u8], usize, ahash::RandomState> =
            Default::default();
        for pattern in &patterns {
            let mut keys: Vec<&[u8]> = keys_of(pattern)
                .into_iter()
                .map(|(j, n)| &pattern[j..j + n])
                .collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                *shared.entry(key).or_default() += 1;
            }
        }
        let chosen: Vec<(usize, usize)> = patterns
            .iter()
            .map(|p| {
                keys_of(p)
                    .into_iter()
                    .min_by_key(|&(j, n)| (shared[&p[j..j + n]], std::cmp::Reverse(n)))
                    .unwrap_or((0, 0))
            })
            .collect();
        drop(shared);
        let mut keys: std::collections::HashMap<Vec<u8>, Vec<(usize, usize)>, ahash::RandomState> =
            Default::default();
        let mut bits = vec![0u64; 1 << (KEY_BITS - 6)];
        for (index, (pattern, (at, n))) in patterns.iter().zip(chosen).enumerate() {
            let key = &pattern[at..at + n];
            let h = key_hash(key);
            bits[h >> 6] |= 1 << (h & 63);
            keys.entry(key.to_vec()).or_default().push((index, at));
        }
        Words {
            patterns,
            keys,
            bits,
        }
    }

    /// Where in FOLDED (a 0, the chunk folded, a 0) each pattern occurs.
    fn find(&self, folded: &[u8]) -> Vec<usize> {
        let mut found = Vec::new();
        let mut previous: Option<usize> = None; // where the word before begins
        let mut i = 0;
        while i < folded.len() {
            if folded[i] == 0 {
                i += 1;
                continue;
            }
            let start = i;
            while i < folded.len() && folded[i] != 0 {
                i += 1;
            }
            for key_start in [Some(start), previous].into_iter().flatten() {
                let key = &folded[key_start..i];
                let h = key_hash(key);
                if self.bits[h >> 6] & (1 << (h & 63)) == 0 {
                    continue;
                }
                let Some(candidates) = self.keys.get(key) else {
                    continue;
                };
                for &(index, offset) in candidates {
                    let pattern = &self.patterns[index];
                    if key_start >= offset && folded[key_start - offset..].starts_with(pattern) {
                        found.push(key_start - offset);
                    }
                }
            }
            previous = Some(start);
        }
        found
    }
}

fn fold(b: u8) -> u8 {
    if b.is_ascii_alphanumeric() {
        b.to_ascii_lowercase()
    } else {
        0
    }
}

impl LineFilter {
    fn flag(&self, chunk: &[u8]) -> Vec<(usize, usize, usize)> {
        let mut starts = vec![0usize];
        starts.extend(memchr::memchr_iter(b'\n', chunk).map(|i| i + 1));
        let count = starts.len();
        let bounds = |i: usize| -> (usize, usize) {
            let end = if i + 1 < count {
                starts[i + 1] - 1
            } else {
                chunk.len()
            };
            (starts[i], end)
        };
        let line_of = |pos: usize| starts.partition_point(|&s| s <= pos) - 1;
        let lowered = chunk.to_ascii_lowercase();
        let mut flags = vec![false; count];
        if !self.folded.patterns.is_empty() {
            let last = chunk.len().saturating_sub(1);
            let mut folded = Vec::with_capacity(chunk.len() + 2);
            folded.push(0);
            folded.extend(chunk.iter().map(|&b| fold(b)));
            folded.push(0);
            for at in self.folded.find(&folded) {
                // AT is in the folded copy, one more than in the chunk (its leading 0): the form
                // begins at the match's start or one after, on this line or the next.
                flags[line_of(at.saturating_sub(1).min(last))] = true;
                flags[line_of(at.min(last))] = true;
            }
        }
        if let Some(ac) = &self.verbatim {
            for m in ac.find_overlapping_iter(&lowered) {
                flags[line_of(m.start())] = true;
            }
        }
        for (i, flag) in flags.iter_mut().enumerate() {
            if *flag {
                continue;
            }
            let (start, end) = bounds(i);
            *flag = self.line(&chunk[start..end], &lowered[start..end]);
        }
        let mut out = Vec::new();
        for (i, flag) in flags.iter().enumerate() {
            let (start, end) = bounds(i);
            if *flag && start < end {
                out.push((i, start, end));
            }
        }
        out
    }

    /// Whether the scan could report something on this LINE (LOW: lower-cased).
    fn line(&self, line: &[u8], low: &[u8]) -> bool {
        if (self.normal.is_some() || self.phones) && !line.is_ascii() {
            return true; // read normalized, and whole for phones
        }
        if self.normal.is_some() && self.suspect(line) && self.reading_may_match(line) {
            return true;
        }
        if self.keys_hit(low) || self.person_segment(low) {
            return true;
        }
        if self.email_anchor(low) || self.ip_anchor(low) {
            return true;
        }
        self.phones && self.phone_start(line, low)
    }

    /// The normalized reading's markers (`SUSPECT_MARKERS`, `AT_MARKERS`).
    fn suspect(&self, line: &[u8]) -> bool {
        if memchr::memchr3(b'&', b'%', b'<', line).is_some() || memchr::memchr(b'*', line).is_some()
        {
            return true;
        }
        let pairs = &self.finders[..6];
        let markers = if self.at_markers {
            &self.finders[..]
        } else {
            pairs
        };
        markers.iter().any(|finder| finder.find(line).is_some())
    }

    /// Whether the scan's normalized readings of an ASCII LINE (`normalize_text`, and with the
    /// phones of the inputs its separators read as spaces) could hold an identifier: true when
    /// any of them does, and whenever the line needs more than this reads (an entity, a
    /// character outside ASCII once decoded, markup, emphasis, a Markdown escape, `\u`, `\\`, an
    /// address written with "at"): the scan reads those.
    fn reading_may_match(&self, line: &[u8]) -> bool {
        let obfuscated =
            self.at_markers && self.finders[6..].iter().any(|f| f.find(line).is_some());
        let Some(normal) = &self.normal else {
            return false;
        };
        let Some(mut text) = self.read(line) else {
            return true;
        };
        for b in text.iter_mut() {
            *b = if *b == b'+' {
                b' '
            } else {
                b.to_ascii_lowercase()
            };
        }
        if normal.is_match(&text) {
            return true;
        }
        if obfuscated && normal.is_match(&deobfuscated(&text)) {
            return true;
        }
        self.phone_reading && normal.is_match(&space_separators(&text))
    }

    /// LINE as `normalize_text` reads it before its case is folded, or None when that needs more
    /// than JSON's `\"` and `\/`, percent-decoding to ASCII and `&` that starts no entity.
    fn read(&self, line: &[u8]) -> Option<Vec<u8>> {
        let mut text = line.to_vec();
        for _ in 0..8 {
            let before = text.clone();
            if text.contains(&b'\\') {
                text = json_unescaped(&text)?;
            }
            if text.contains(&b'&') && self.entity(&text) {
                return None;
            }
            if text.contains(&b'%') {
                text = percent_decoded(&text)?;
            }
            // A Markdown escape; emphasis: `~~`, and `_` where it can open one (not after a word
            // character or a backslash: `_mark_`, `__mark__`).
            let markup = text.first() == Some(&b'_')
                || text.windows(2).any(|w| {
                    (w[0] == b'\\' && w[1].is_ascii_punctuation())
                        || w == b"~~"
                        || (w[1] == b'_'
                            && !(w[0].is_ascii_alphanumeric() || w[0] == b'_' || w[0] == b'\\'))
                });
            if markup || text.contains(&b'<') || text.contains(&b'*') {
                return None;
            }
            if text == before {
                break;
            }
        }
        Some(text)
    }

    /// Whether an `&` of TEXT begins what `html.unescape` replaces: `&#`, or a name of HTML5's
    /// table (with or without its `;`) as the whole or a beginning of the run after it.
    fn entity(&self, text: &[u8]) -> bool {
        for at in memchr::memchr_iter(b'&', text) {
            let rest = &text[at + 1..];
            if rest.first() == Some(&b'#') {
                return true;
            }
            let run = rest
                .iter()
                .take(32)
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            if (2..=run).any(|k| self.entities.contains(&rest[..k])) {
                return true;
            }
            if rest.get(run) == Some(&b';') && self.entities.contains(&rest[..=run]) {
                return true;
            }
        }
        false
    }

    /// A key of an identifier field whose value (as the scan reads it) is a harvested one, or of a
    /// masked field whose value is not known to be its own mask. Keys are found by the `":` that
    /// ends them (`"key":`, and `\"key\":` inside a JSON string), read back to their quote.
    fn keys_hit(&self, low: &[u8]) -> bool {
        if self.keys.is_empty() {
            return false;
        }
        for close in memmem::find_iter(low, b"\":") {
            let escaped = close > 0 && low[close - 1] == b'\\';
            let key_end = if escaped { close - 1 } else { close };
            let floor = key_end.saturating_sub(self.longest_key + 1);
            let Some(open) = memchr::memrchr(b'"', &low[floor..key_end]).map(|n| floor + n) else {
                continue;
            };
            let Some(&(field, masked)) = self.keys.get(&low[open + 1..key_end]) else {
                continue;
            };
            if field && self.value_hit(low, close + 2) {
                return true;
            }
            // `"key":` is the plain form, `\"key\":` the escaped one (`"key\":` is neither).
            let backslash = open > 0 && low[open - 1] == b'\\';
            if masked && escaped == backslash && self.masked_unknown(low, close + 2, escaped) {
                return true;
            }
        }
        false
    }

    /// Whether the value after a key of an identifier field (at AT) is a harvested one, read as
    /// the scan's `_value_after` reads it.
    fn value_hit(&self, low: &[u8], mut at: usize) -> bool {
        while low.get(at) == Some(&b' ') {
            at += 1;
        }
        let value = match low.get(at) {
            Some(b'"') => until(low, at + 1, b'"'),
            Some(b'\\') => until(low, at + 2, b'\\'),
            _ => {
                let n = low[at.min(low.len())..]
                    .iter()
                    .take_while(|b| matches!(b, b'-' | b'+' | b'0'..=b'9' | b'.' | b'e'))
                    .count();
                &low[at..at + n]
            }
        };
        if self.values.contains(value) {
            return true;
        }
        memchr::memchr(b'\\', value).is_some_and(|cut| self.values.contains(&value[..cut]))
    }

    /// Whether the value after a masked field's key (at AT) is not known to be its own mask, read
    /// as the scan's regular expressions read it (`"key":\s*"value"`, escaped alike).
    fn masked_unknown(&self, low: &[u8], mut at: usize, escaped: bool) -> bool {
        while low
            .get(at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | 0x0b | 0x0c))
        {
            at += 1;
        }
        let open: &[u8] = if escaped { b"\\\"" } else { b"\"" };
        if !low[at.min(low.len())..].starts_with(open) {
            return false;
        }
        let begin = at + open.len();
        let Some(stop) = low[begin..]
            .iter()
            .position(|&b| b == b'"' || (escaped && b == b'\\'))
            .map(|n| begin + n)
        else {
            return false;
        };
        if escaped && !low[stop..].starts_with(b"\\\"") {
            return false;
        }
        let value = &low[begin..stop];
        !self.own_v4_mask(value) && !self.own_v6_mask(value) && !self.good.contains(value)
    }

    /// Whether VALUE is a dotted-quad IPv4 address written as masking writes it (octets without
    /// leading zeros) with no bit set beyond the mask: what the scan's masker leaves as it is.
    fn own_v4_mask(&self, value: &[u8]) -> bool {
        let mut number: u32 = 0;
        let mut parts = 0;
        for part in value.split(|&b| b == b'.') {
            parts += 1;
            if parts > 4
                || part.is_empty()
                || part.len() > 3
                || !part.iter().all(u8::is_ascii_digit)
                || (part.len() > 1 && part[0] == b'0')
            {
                return false;
            }
            let octet = part.iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
            if octet > 255 {
                return false;
            }
            number = (number << 8) | octet;
        }
        parts == 4 && number & !self.v4_mask == 0
    }

    /// Whether VALUE is an IPv6 address written as masking writes it (RFC 5952, which Python's
    /// `ipaddress` writes too) with no bit set beyond the mask, and none of the forms that carry
    /// an IPv4 address (those are masked by their IPv4 part: the scan judges them).
    fn own_v6_mask(&self, value: &[u8]) -> bool {
        if !value.contains(&b':') || value.iter().any(|b| !(b.is_ascii_hexdigit() || *b == b':')) {
            return false;
        }
        let Ok(text) = std::str::from_utf8(value) else {
            return false;
        };
        let Ok(address) = text.parse::<std::net::Ipv6Addr>() else {
            return false;
        };
        let h = address.segments();
        let embeds_v4 = h[0] == 0 // IPv4-compatible and -mapped
            || h[0] == 0x2002 // 6to4
            || (h[0] == 0x2001 && h[1] == 0) // Teredo
            || h[0] == 0x64 // NAT64
            || ((h[4] == 0 || h[4] == 0x0200) && h[5] == 0x5efe); // ISATAP
        !embeds_v4
            && u128::from(address) & !self.v6_mask == 0
            && address.to_string().as_bytes() == value
    }

    /// A user id as a path segment: digits (at most 9) right after a `/`, then the end of the
    /// line or one of `/?#",;\` (the scan's `_PERSON_SEGMENT` without its route words).
    fn person_segment(&self, low: &[u8]) -> bool {
        if self.short_ids.is_empty() {
            return false;
        }
        for slash in memchr::memchr_iter(b'/', low) {
            let digits = low[slash + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let next = low.get(slash + 1 + digits);
            if (1..=9).contains(&digits)
                && next.is_none_or(|b| b"/?#\",;\\".contains(b))
                && self.short_ids.contains(&low[slash + 1..slash + 1 + digits])
            {
                return true;
            }
        }
        false
    }

    /// `@` or `%40`, then word characters or dashes, then a dot (`EMAIL_ANCHORS`).
    fn email_anchor(&self, low: &[u8]) -> bool {
        let after = |at: usize| {
            let n = low[at..]
                .iter()
                .take_while(|&&b| WORD_OR_DASH[b as usize])
                .count();
            n > 0 && low.get(at + n) == Some(&b'.')
        };
        memchr::memchr_iter(b'@', low).any(|at| after(at + 1))
            || memmem::find_iter(low, b"%40").any(|at| after(at + 3))
    }

    /// An IPv4 (`.d.d.`) or IPv6 (`::`, `:h:h:h:`) anchor that is not in a masked field's plain value.
    fn ip_anchor(&self, low: &[u8]) -> bool {
        for at in memchr::memchr2_iter(b'.', b':', low) {
            let anchor = if low[at] == b'.' {
                let mut i = at + 1;
                run(low, &mut i, |b| b.is_ascii_digit(), 3) && low.get(i) == Some(&b'.') && {
                    i += 1;
                    run(low, &mut i, |b| b.is_ascii_digit(), 3) && low.get(i) == Some(&b'.')
                }
            } else if low.get(at + 1) == Some(&b':') {
                true
            } else {
                let mut i = at + 1;
                (0..3).all(|_| {
                    let ok =
                        run(low, &mut i, |b| b.is_ascii_hexdigit(), 4) && low.get(i) == Some(&b':');
                    i += 1;
                    ok
                })
            };
            if anchor && !self.looks_masked(low, at) {
                return true;
            }
        }
        false
    }

    /// The scan's `_looks_masked`: the anchor is in a masked field's plain value.
    fn looks_masked(&self, low: &[u8], at: usize) -> bool {
        if self.masked_prefixes.is_empty() {
            return false;
        }
        let floor = at.saturating_sub(48);
        let Some(quote) = memchr::memrchr(b'"', &low[floor..at]).map(|n| floor + n) else {
            return false;
        };
        if !self
            .masked_prefixes
            .iter()
            .any(|p| low[..=quote].ends_with(p))
        {
            return false;
        }
        low[quote + 1..at]
            .iter()
            .all(|&b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b':' || b == b'.')
    }

    /// Where the phone detector could begin (`_PHONE_START`, `_PHONE_START_AT`, `_PHONE_AFTER_LABEL`),
    /// but timestamps and whole IPv4 addresses in strings (`_NO_PHONE`).
    fn phone_start(&self, line: &[u8], low: &[u8]) -> bool {
        if memmem::find(low, b"tel:").is_some() || memmem::find(low, b"phone:").is_some() {
            return true;
        }
        for (p, &b) in line.iter().enumerate() {
            if !(b.is_ascii_digit() || b == b'+' || b == b'(') {
                continue;
            }
            if p > 0 && PHONE_NOT_AFTER[line[p - 1] as usize] {
                continue;
            }
            let mut i = p + 1;
            if !b.is_ascii_digit() {
                if !line.get(p + 1).is_some_and(u8::is_ascii_digit) {
                    continue;
                }
                i = p + 2;
            }
            if hint(line, i) && !no_phone(line, p) {
                return true;
            }
        }
        false
    }
}

/// TEXT with JSON's `\"` and `\/` undone (`_JSON_ESCAPE`), or None when it holds `\\`, `\u` or a
/// backslash before other punctuation (a Markdown escape), which the scan reads itself.
fn json_unescaped(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        match text.get(i + 1) {
            Some(b'"') | Some(b'/') => {
                out.push(text[i + 1]);
                i += 2;
            }
            Some(b'u') | Some(b'\\') => return None,
            Some(c) if c.is_ascii_punctuation() => return None,
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// TEXT percent-decoded as `unquote` does, or None when a decoded byte is outside ASCII.
fn percent_decoded(text: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' {
            if let (Some(h), Some(l)) = (
                text.get(i + 1).and_then(|&b| hex(b)),
                text.get(i + 2).and_then(|&b| hex(b)),
            ) {
                let byte = (h * 16 + l) as u8;
                if byte >= 0x80 {
                    return None;
                }
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    Some(out)
}

/// Python's white space, in ASCII (`str.isspace`, and `\s` of a `str` pattern).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f)
}

/// TEXT (normalized, ASCII) read as an address written with "at" and "dot" (`forms.deobfuscate`).
fn deobfuscated(text: &[u8]) -> Vec<u8> {
    read_around(&read_around(text, b"at", true, b'@'), b"dot", false, b'.')
}

/// `forms._read_around` for the signs of WORD: `(word)` and the like (brackets `([{<`, white
/// space inside), the bare WORD between white spaces, and `@` when AT: each with the white space
/// on each side read as READING; the bare word only with white space of its own before it.
fn read_around(text: &[u8], word: &[u8], at: bool, reading: u8) -> Vec<u8> {
    let n = text.len();
    let skip = |mut j: usize| {
        while j < n && is_space(text[j]) {
            j += 1;
        }
        j
    };
    let mut out = Vec::with_capacity(n);
    let (mut done, mut i) = (0, 0);
    while i < n {
        let b = text[i];
        let end = if matches!(b, b'(' | b'[' | b'{' | b'<') {
            let j = skip(i + 1);
            if text[j..].starts_with(word) {
                let k = skip(j + word.len());
                (k < n && matches!(text[k], b')' | b']' | b'}' | b'>')).then_some(k + 1)
            } else {
                None
            }
        } else if at && b == b'@' {
            Some(i + 1)
        } else if i > 0
            && is_space(text[i - 1])
            && text[i..].starts_with(word)
            && text.get(i + word.len()).is_some_and(|&c| is_space(c))
        {
            Some(i + word.len())
        } else {
            None
        };
        let Some(end) = end else {
            i += 1;
            continue;
        };
        let mut left = i;
        while left > done && is_space(text[left - 1]) {
            left -= 1;
        }
        if !(left == i && b.is_ascii_alphabetic()) {
            let right = skip(end);
            out.extend_from_slice(&text[done..left]);
            out.push(reading);
            done = right;
        }
        i = end;
    }
    out.extend_from_slice(&text[done..]);
    out
}

/// TEXT (ASCII) with each run of white space, dashes, dots, slashes, parentheses and underscores
/// between two digits read as one space (`PHONE_SEPARATORS`; Python's white space in ASCII
/// includes the separators 0x1c to 0x1f).
fn space_separators(text: &[u8]) -> Vec<u8> {
    let separator = |b: u8| {
        matches!(
            b,
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c
                ..=0x1f | b'-' | b'.' | b'/' | b'(' | b')' | b'_'
        )
    };
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        out.push(b);
        i += 1;
        if b.is_ascii_digit() {
            let run = text[i..].iter().take_while(|&&c| separator(c)).count();
            if run > 0 && text.get(i + run).is_some_and(u8::is_ascii_digit) {
                out.push(b' ');
                i += run;
            }
        }
    }
    out
}

/// The bytes of LINE from BEGIN up to STOP (not included); empty when no STOP follows, as the
/// scan's `_value_after` reads it.
fn until(line: &[u8], begin: usize, stop: u8) -> &[u8] {
    let begin = begin.min(line.len());
    match memchr::memchr(stop, &line[begin..]) {
        Some(n) => &line[begin..begin + n],
        None => &line[..0],
    }
}

/// A possessive run of 1 to MAX bytes that satisfy IS at *I (moved past it).
fn run(line: &[u8], i: &mut usize, is: impl Fn(&u8) -> bool, max: usize) -> bool {
    let n = line[(*i).min(line.len())..]
        .iter()
        .take(max)
        .take_while(|b| is(b))
        .count();
    *i += n;
    n > 0
}

/// `_PHONE_HINT` at I: six times up to three separators (possessive), then a digit.
fn hint(line: &[u8], mut i: usize) -> bool {
    for _ in 0..6 {
        let mut n = 0;
        while n < 3 && line.get(i).is_some_and(|&b| SEPARATOR[b as usize]) {
            i += 1;
            n += 1;
        }
        if !line.get(i).is_some_and(u8::is_ascii_digit) {
            return false;
        }
        i += 1;
    }
    true
}

/// `_NO_PHONE` at P: an ISO timestamp's date and time, or a whole IPv4 address before a quote.
fn no_phone(line: &[u8], p: usize) -> bool {
    let s = &line[p..];
    let d = |i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    let is = |i: usize, c: u8| s.get(i) == Some(&c);
    if (0..4).all(d)
        && is(4, b'-')
        && d(5)
        && d(6)
        && is(7, b'-')
        && d(8)
        && d(9)
        && is(10, b'T')
        && d(11)
        && d(12)
        && is(13, b':')
        && d(14)
        && d(15)
    {
        return true;
    }
    let mut i = 0;
    for part in 0..4 {
        let n = s[i..]
            .iter()
            .take(3)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n == 0 || s.get(i + n).is_some_and(u8::is_ascii_digit) {
            return false;
        }
        let octet: u32 = s[i..i + n]
            .iter()
            .fold(0, |a, &b| a * 10 + u32::from(b - b'0'));
        if octet > 255 {
            return false;
        }
        i += n;
        if part < 3 {
            if !is(i, b'.') {
                return false;
            }
            i += 1;
        }
    }
    is(i, b'"') || (is(i, b'\\') && is(i + 1, b'"'))
}
