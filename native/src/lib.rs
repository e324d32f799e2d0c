//! The native engine of edx-log-anonymizer: executes a policy's plan on a batch of whole lines.
//!
//! The Python engine (`anonymizer.core.engine.Anonymizer`) is the reference: for every batch this
//! engine gives the same output bytes, outcomes and counts. What it executes itself: the scanner
//! and serializer, containers (conditions, cases, named keys, wildcards, list items, own rules),
//! `keep` (shape `any`), `drop`, skips, JSON decoding, the payload encodings but query strings,
//! empty payloads. Every other operator is the Python engine's own function for that node, called
//! on that value only (its result cached per value when the plan says it depends on the value
//! alone). A line the native path cannot decide (a rejection, an unusual number, a payload that
//! is not JSON) is handed back whole, and the Python engine runs it.
//!
//! A batch is worked on with the GIL released; it is taken back (`gil`) only to call a Python
//! function, and the batch's Python objects are made once its lines are done. The Python objects
//! the engine keeps are `Py` handles (`Send` and `Sync` in PyO3), used only under the GIL.
//! No unsafe code.
#![forbid(unsafe_code)]

mod json;
mod ops;
mod plan;
mod verify;

use json::{key_eq, parse, py_strip, write_float, write_raw_str, write_str, write_value, Str, V};
use plan::{Cont, Needs, Node, PyNodes};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString, PyTuple};
use serde_json::Value as J;
use std::borrow::Cow;
// aHash: several times faster than SipHash on short keys, and keyed per process like it (the
// keys are log text, which a hostile input chooses).
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

const PLAN_VERSION: u64 = 1;
const MEMO_LIMIT: usize = 1 << 16;
const CACHE_LIMIT: usize = 100_000;

/// The line goes to the Python engine.
struct Fallback;

impl From<PyErr> for Fallback {
    fn from(_: PyErr) -> Self {
        Fallback
    }
}

type Res<T> = Result<T, Fallback>;

/// What a node made of a value.
enum R<'a> {
    /// Removed and counted as `invalid_value` by its container (the operators' DROP).
    Drop,
    /// Removed, not counted (a `skip`).
    Skip,
    /// Unchanged.
    Keep,
    Out(O<'a>),
}

enum O<'a> {
    Raw(Vec<u8>),
    Same(&'a V<'a>),
    Obj(Vec<(&'a Str<'a>, O<'a>)>),
    Arr(Vec<O<'a>>),
    Text(Vec<u8>),
}

fn write_o(out: &mut Vec<u8>, o: &O) {
    match o {
        O::Raw(b) => out.extend_from_slice(b),
        O::Same(v) => write_value(out, v),
        O::Text(t) => write_str(out, t),
        O::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_o(out, item);
            }
            out.push(b']');
        }
        O::Obj(entries) => {
            out.push(b'{');
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_raw_str(out, k);
                out.push(b':');
                write_o(out, item);
            }
            out.push(b'}');
        }
    }
}

fn write_r(out: &mut Vec<u8>, r: &R, v: &V) {
    match r {
        R::Out(o) => write_o(out, o),
        _ => write_value(out, v),
    }
}

// ---------------------------------------------------------------- paths in counts

fn safe_key(key: &str) -> &str {
    // Python's `^[A-Za-z_][A-Za-z0-9_]{0,47}$` (whose `$` also matches before a final newline),
    // and no run of 16 hex digits.
    let b = key.as_bytes();
    let core = b.strip_suffix(b"\n").unwrap_or(b);
    let shaped = !core.is_empty()
        && core.len() <= 48
        && (core[0].is_ascii_alphabetic() || core[0] == b'_')
        && core.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    let mut run = 0;
    let hex_run = b.iter().any(|c| {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        run >= 16
    });
    if shaped && !hex_run {
        key
    } else {
        "*"
    }
}

fn join_key(path: &str, key: &str) -> String {
    let k = safe_key(key);
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn join_index(path: &str) -> String {
    format!("{path}[*]")
}

// ---------------------------------------------------------------- values for Python

fn to_py<'py>(py: Python<'py>, v: &V) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        V::Null => py.None().into_bound(py),
        V::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        V::Int(n) => {
            if let Ok(i) = i64::try_from(*n) {
                i.into_pyobject(py)?.into_any()
            } else {
                (*n as u64).into_pyobject(py)?.into_any()
            }
        }
        V::Float(f) => PyFloat::new(py, *f).into_any(),
        V::Str(s) => PyString::new(py, &s.text()).into_any(),
        V::Arr(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        V::Obj(entries) => {
            let d = PyDict::new(py);
            for (k, item) in entries {
                d.set_item(PyString::new(py, &k.text()), to_py(py, item)?)?;
            }
            d.into_any()
        }
    })
}

/// A JSON value of the plan (a condition's allowed value) equals V with its JSON type
/// (`true` is not `1`, `1` is not `1.0`), as the Python engine compares them.
fn holds_value(v: &V, allowed: &J) -> bool {
    match (v, allowed) {
        (V::Null, J::Null) => true,
        (V::Bool(a), J::Bool(b)) => a == b,
        (V::Int(a), J::Number(n)) if !n.is_f64() => n
            .as_i64()
            .map(|b| *a == b as i128)
            .or(n.as_u64().map(|b| *a == b as i128))
            .unwrap_or(false),
        (V::Float(a), J::Number(n)) if n.is_f64() => n.as_f64() == Some(*a),
        (V::Str(s), J::String(b)) => s.text() == b.as_str(),
        _ => false,
    }
}

fn holds(obj: &V, needs: &Needs) -> bool {
    needs
        .iter()
        .all(|(sibling, allowed)| match obj.get(sibling) {
            Some(v) => allowed.iter().any(|a| holds_value(v, a)),
            None => false,
        })
}

// ---------------------------------------------------------------- the engine

struct Helpers {
    call: Py<PyAny>,
    verdict: Py<PyAny>,
    check: Py<PyAny>,
    new_state: Py<PyAny>,
    resolve: Py<PyAny>,
    routing: Py<PyAny>,
    dropped: Py<PyAny>,
    place: Py<PyAny>,
    course_in_path: Py<PyAny>,
}

struct Core {
    secret: Vec<u8>,
    /// The roster's ids and usernames, lower-cased, that a value of a closed `keep` shape could
    /// equal (one set for the engine, given by the Python side).
    known: ops::HashSet<String>,
    trees: Vec<Option<Node>>,
    fns: Vec<Py<PyAny>>,
    memo_fns: Vec<bool>,
    h: Helpers,
}

/// What the Python function of a node gave for a value: the value itself, DROP, or a new value.
#[derive(Clone)]
enum Hit {
    Same,
    Drop,
    Bytes(Vec<u8>),
}

/// A data key's verdict without the event (the Python checker's own): safe, unsafe, safe unless
/// one of the event's actors (lower-cased, ASCII) is in this lower-cased key, or ask per event.
enum Verdict {
    Safe,
    Unsafe,
    Lowered(String),
    Check,
}

#[derive(Hash, PartialEq, Eq)]
enum MKey {
    S(String),
    I(i128),
}

struct RouteInfo {
    route: Py<PyAny>,
    label: String,
    tree: Option<usize>,
    reason: String,
    implicit: bool,
    tally: [u64; 2],
}

/// A routing key as Python made it, what a written event must show to be placed under it (its
/// course, and whether it has a day), and the outcome of a drop under it (made on first use).
/// Held by index: a batch's lines name their slots, and the slots are cleared only between batches.
struct Slot {
    routing: Py<PyAny>,
    course: Option<String>,
    dated: bool,
    dropped: Option<Py<PyAny>>,
}

struct Caches {
    memo: Vec<HashMap<MKey, Hit>>,
    verdicts: HashMap<String, Verdict>,
    /// Route ids by event type, then event source.
    routes: HashMap<String, HashMap<String, usize>>,
    infos: Vec<RouteInfo>,
    /// Routing keys by route, raw course id and day: their slots.
    keys: HashMap<RoutingKey, usize>,
    slots: Vec<Slot>,
    /// A slot narrowed to what its written event shows (course shown, day shown): its slot.
    shown: HashMap<(usize, bool, bool), usize>,
    /// The course key in an implicit event's path, as the Python engine finds it.
    paths: HashMap<String, Option<String>>,
    /// `scrub_text`'s text-only part per (node, text): the new text (None: unchanged) and
    /// whether the text was disguised.
    texts: HashMap<(usize, String), (Option<String>, bool)>,
}

/// Run F with the GIL, taken back for a call into Python (the batch runs without it). A Python
/// error hands the line to the Python engine; it is dropped here, while the GIL is held.
fn gil<T>(f: impl for<'py> FnOnce(Python<'py>) -> PyResult<T>) -> Res<T> {
    Python::with_gil(|py| f(py).map_err(Fallback::from))
}

/// What one event's rules found, and its operator state (made on first use, with the GIL).
struct Ev<'a> {
    users: [Option<&'a V<'a>>; 2],
    state: Option<Py<PyAny>>,
    drops: Vec<(String, &'static str)>,
}

impl Ev<'_> {
    fn state<'py>(&mut self, py: Python<'py>, h: &Helpers) -> PyResult<Bound<'py, PyAny>> {
        if let Some(s) = &self.state {
            return Ok(s.bind(py).clone());
        }
        let u0 = match self.users[0] {
            Some(v) => to_py(py, v)?,
            None => py.None().into_bound(py),
        };
        let u1 = match self.users[1] {
            Some(v) => to_py(py, v)?,
            None => py.None().into_bound(py),
        };
        let s = h.new_state.bind(py).call1((u0, u1))?;
        self.state = Some(s.clone().unbind());
        Ok(s)
    }
}

struct Collector<'py> {
    py: Python<'py>,
    node_fn: Bound<'py, PyAny>,
    fns: Vec<Py<PyAny>>,
    memo: Vec<bool>,
    native: Option<J>,
    helper: Option<usize>,
    error: Option<PyErr>,
}

impl PyNodes for Collector<'_> {
    fn native(&mut self) -> Option<J> {
        self.native.take()
    }

    fn helper(&mut self) -> Option<usize> {
        self.helper.take()
    }

    fn function(&mut self, node: &J) -> Result<usize, String> {
        match self.node_fn.call1((node.to_string(),)) {
            Ok(f) => {
                // (function, whether the Python engine memoizes it per string or integer, the
                // native form of its operator, a helper function for that form)
                let (f, memo, native, helper): (
                    Py<PyAny>,
                    bool,
                    Option<String>,
                    Option<Py<PyAny>>,
                ) = match f.extract() {
                    Ok(found) => found,
                    Err(e) => {
                        self.error = Some(e);
                        return Err("the Python engine gave no function for a node".into());
                    }
                };
                self.fns.push(f);
                self.memo.push(memo);
                let id = self.fns.len() - 1;
                self.native = native.and_then(|n| serde_json::from_str(&n).ok());
                self.helper = helper.map(|h| {
                    self.fns.push(h);
                    self.memo.push(false);
                    self.fns.len() - 1
                });
                Ok(id)
            }
            Err(e) => {
                let _ = self.py;
                self.error = Some(e);
                Err("the Python engine could not build a node".into())
            }
        }
    }
}

#[pyclass(module = "anonymizer_native", unsendable)]
struct Engine {
    core: Core,
    caches: Caches,
}

fn tree_of(plan: &J, rule: &J) -> Option<J> {
    if rule.get("action").and_then(J::as_str) == Some("drop") {
        return None;
    }
    let env = rule.get("envelope").and_then(J::as_u64)?;
    let mut tree = plan.get("envelopes")?.get(env as usize)?.clone();
    let keys = tree.get_mut("keys")?.as_array_mut()?;
    keys.push(serde_json::json!({"key": "event", "rule": rule.get("payload").cloned().unwrap_or(J::Null), "when": null}));
    Some(tree)
}

#[pymethods]
impl Engine {
    /// PLAN_JSON: the plan (`Plan.to_json`); SECRET: the key's secret, for pseudonyms. NODE_FN(node_json)
    /// gives the Python engine's function for a node, whether it memoizes, and the native form of
    /// its operator (JSON) or None; CALL(fn, value, state) applies one and gives orjson's
    /// bytes of the result, None for DROP, True for the value itself; VERDICT(key) and CHECK(key,
    /// state) are the data-key checker's; NEW_STATE(username, context_username) makes an event's
    /// state; RESOLVE(type, source) gives (route, label, tree index or -1, drop
    /// reason, implicit); ROUTING(route, type, course, time) the routing key; DROPPED(reason,
    /// routing) the outcome of a dropped event; PLACE(routing, course, timed) the routing key
    /// narrowed to what a written event shows (its course or None, its day when TIMED);
    /// COURSE_IN_PATH(event_type) the course key in an implicit event's path, or None; KNOWN the
    /// roster's ids and usernames a value of a closed `keep` shape could equal, lower-cased.
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (plan_json, secret, node_fn, call, verdict, check, new_state, resolve, routing, dropped, place, course_in_path, known = Vec::new()))]
    fn new(
        py: Python<'_>,
        plan_json: &str,
        secret: Vec<u8>,
        node_fn: Bound<'_, PyAny>,
        call: Py<PyAny>,
        verdict: Py<PyAny>,
        check: Py<PyAny>,
        new_state: Py<PyAny>,
        resolve: Py<PyAny>,
        routing: Py<PyAny>,
        dropped: Py<PyAny>,
        place: Py<PyAny>,
        course_in_path: Py<PyAny>,
        known: Vec<String>,
    ) -> PyResult<Self> {
        let plan: J = serde_json::from_str(plan_json)
            .map_err(|e| PyValueError::new_err(format!("plan: not JSON ({e})")))?;
        let version = plan.get("version").and_then(J::as_u64);
        if version != Some(PLAN_VERSION) {
            return Err(PyValueError::new_err(format!(
                "plan: version {version:?} is not {PLAN_VERSION}, the one this engine executes"
            )));
        }
        let mut col = Collector {
            py,
            node_fn,
            fns: Vec::new(),
            memo: Vec::new(),
            native: None,
            helper: None,
            error: None,
        };
        let mut trees = Vec::new();
        let rules: Vec<J> = plan
            .get("rules")
            .and_then(J::as_array)
            .cloned()
            .unwrap_or_default();
        let fallback = plan.get("fallback").cloned().unwrap_or(J::Null);
        for rule in rules.iter().chain(std::iter::once(&fallback)) {
            let node = match tree_of(&plan, rule) {
                Some(t) => Some(plan::compile(&t, &mut col).map_err(
                    |e| match col.error.take() {
                        Some(err) => err,
                        None => PyValueError::new_err(format!("plan: {e}")),
                    },
                )?),
                None => None,
            };
            trees.push(node);
        }
        let n = col.fns.len();
        Ok(Engine {
            core: Core {
                secret,
                known: known.into_iter().collect(),
                trees,
                fns: col.fns,
                memo_fns: col.memo,
                h: Helpers {
                    call,
                    verdict,
                    check,
                    new_state,
                    resolve,
                    routing,
                    dropped,
                    place,
                    course_in_path,
                },
            },
            caches: Caches {
                memo: (0..n).map(|_| HashMap::default()).collect(),
                verdicts: HashMap::default(),
                routes: HashMap::default(),
                infos: Vec::new(),
                keys: HashMap::default(),
                slots: Vec::new(),
                shown: HashMap::default(),
                paths: HashMap::default(),
                texts: HashMap::default(),
            },
        })
    }

    /// Anonymize the whole lines in DATA. Returns (results, fallback line indexes, written,
    /// {drop reason: count}, [(label, written, dropped)], {(label, path, reason): count}); a
    /// result is (output, routing key) for a written line, the Dropped outcome, or None for a
    /// line left to the Python engine. A written line's routing key names what the line shows:
    /// a course or day an operator refused is not in it (as the Python engine places it).
    ///
    /// The lines are worked on without the GIL, so that other Python threads run meanwhile; it
    /// is taken back only to call a Python function (a value not seen before, a new route).
    fn anonymize_batch<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
    ) -> PyResult<Bound<'py, PyTuple>> {
        let core = &self.core;
        let caches = &mut self.caches;
        // Bounded: cleared between batches, with the GIL (the slots hold Python objects), and
        // never while a batch holds route ids and slots.
        if caches.infos.len() > CACHE_LIMIT {
            caches.routes.clear();
            caches.infos.clear();
            caches.keys.clear(); // keyed by route ids, which are given again from 0
        }
        if caches.infos.is_empty() || caches.slots.len() > CACHE_LIMIT {
            caches.keys.clear();
            caches.slots.clear();
            caches.shown.clear();
        }
        let batch = py.allow_threads(|| run_batch(core, caches, data));
        let results = PyList::empty(py);
        let mut fallback: Vec<usize> = Vec::new();
        let mut start = 0;
        for (index, line) in batch.lines.iter().enumerate() {
            match *line {
                Line::Written(end, slot) => {
                    let output = PyBytes::new(py, &batch.out[start..end]).into_any();
                    let routing = caches.slots[slot].routing.bind(py).clone();
                    results.append(PyTuple::new(py, [output, routing])?)?;
                    start = end;
                }
                Line::Dropped(slot) => match &caches.slots[slot].dropped {
                    Some(outcome) => results.append(outcome.bind(py))?,
                    None => {
                        return Err(PyRuntimeError::new_err(
                            "a dropped line without its outcome",
                        ))
                    }
                },
                Line::Fallback => {
                    results.append(py.None())?;
                    fallback.push(index);
                }
            }
        }
        let tallies = PyList::empty(py);
        for info in caches.infos.iter_mut() {
            if info.tally != [0, 0] {
                tallies.append((info.label.as_str(), info.tally[0], info.tally[1]))?;
                info.tally = [0, 0];
            }
        }
        let dropped_py = PyDict::new(py);
        for (k, n) in batch.dropped {
            dropped_py.set_item(k, n)?;
        }
        let fields_py = PyDict::new(py);
        for ((l, p, r), n) in batch.fields {
            fields_py.set_item((l, p, r), n)?;
        }
        PyTuple::new(
            py,
            [
                results.into_any(),
                PyList::new(py, fallback)?.into_any(),
                batch.written.into_pyobject(py)?.into_any(),
                dropped_py.into_any(),
                tallies.into_any(),
                fields_py.into_any(),
            ],
        )
    }
}

/// A line's outcome in the batch under way, before any Python object is made for it.
enum Line {
    /// Written: its output ends at this offset of the batch's output; its routing key's slot.
    Written(usize, usize),
    /// Dropped under the routing key of this slot.
    Dropped(usize),
    /// Left to the Python engine.
    Fallback,
}

/// What the lines of a batch came to, found without the GIL.
struct Batch {
    out: Vec<u8>,
    lines: Vec<Line>,
    written: u64,
    dropped: HashMap<String, u64>,
    fields: HashMap<(String, String, String), u64>,
}

fn run_batch(core: &Core, caches: &mut Caches, data: &[u8]) -> Batch {
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if lines.last() == Some(&&b""[..]) {
        lines.pop();
    }
    let mut batch = Batch {
        out: Vec::with_capacity(data.len()),
        lines: Vec::with_capacity(lines.len()),
        written: 0,
        dropped: HashMap::default(),
        fields: HashMap::default(),
    };
    for line in lines {
        let start = batch.out.len();
        match one_line(core, caches, line, &mut batch.out) {
            Ok(Done::Written(route, slot, drops, extra)) => {
                batch.lines.push(Line::Written(batch.out.len(), slot));
                batch.written += 1;
                let info = &mut caches.infos[route];
                info.tally[0] += 1;
                for (path, reason) in drops {
                    *batch
                        .fields
                        .entry((info.label.clone(), path, reason.to_string()))
                        .or_insert(0) += 1;
                }
                for (path, reason) in extra {
                    *batch
                        .fields
                        .entry((info.label.clone(), path, reason))
                        .or_insert(0) += 1;
                }
            }
            Ok(Done::Dropped(route, slot)) => {
                batch.lines.push(Line::Dropped(slot));
                let info = &mut caches.infos[route];
                info.tally[1] += 1;
                *batch.dropped.entry(info.reason.clone()).or_insert(0) += 1;
            }
            Err(Fallback) => {
                batch.out.truncate(start);
                batch.lines.push(Line::Fallback);
            }
        }
    }
    batch
}

enum Done {
    /// Written (into the batch's output): route, slot, drops counted here and by Python.
    Written(
        usize,
        usize,
        Vec<(String, &'static str)>,
        Vec<(String, String)>,
    ),
    Dropped(usize, usize),
}

fn one_line(core: &Core, caches: &mut Caches, line: &[u8], out: &mut Vec<u8>) -> Res<Done> {
    let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
    if line.first() != Some(&b'{') || std::str::from_utf8(line).is_err() {
        return Err(Fallback); // a logger prefix, a blank line, a rejection: the Python engine says which
    }
    let event = parse(line).map_err(|_| Fallback)?;
    let mut event_type = event.get("event_type");
    if matches!(event_type, None | Some(V::Null)) {
        event_type = event.get("name");
    }
    let event_type = match event_type.and_then(V::as_text) {
        Some(t) if !t.is_empty() => t,
        _ => return Err(Fallback), // missing_event_type
    };
    let source = event
        .get("event_source")
        .and_then(V::as_text)
        .unwrap_or_default();
    let route = route_of(core, caches, &event_type, &source)?;
    let context = event.get("context");
    let slot = routing_of(core, caches, route, &event_type, context, event.get("time"))?;
    let info = &caches.infos[route];
    let tree = match info.tree {
        None => {
            if caches.slots[slot].dropped.is_none() {
                let routing = &caches.slots[slot].routing;
                let reason = info.reason.as_str();
                let outcome = gil(|py| {
                    Ok(core
                        .h
                        .dropped
                        .bind(py)
                        .call1((reason, routing.bind(py)))?
                        .unbind())
                })?;
                caches.slots[slot].dropped = Some(outcome);
            }
            return Ok(Done::Dropped(route, slot));
        }
        Some(t) => core.trees[t].as_ref().ok_or(Fallback)?,
    };
    let users = [
        event.get("username"),
        context.and_then(|c| c.get("username")),
    ];
    let mut ev = Ev {
        users,
        state: None,
        drops: Vec::new(),
    };
    let walked = apply(core, caches, &mut ev, tree, &event);
    // The operators' state, when one was made: what it counted is read, and it is let go, with the GIL.
    let extra = match ev.state.take() {
        Some(state) => gil(|py| {
            let state = state.into_bound(py);
            let mut extra = Vec::new();
            if walked.is_ok() {
                for item in state.getattr("dropped")?.try_iter()? {
                    let (path, reason): (String, String) = item?.extract()?;
                    extra.push((path, reason));
                }
            }
            Ok(extra)
        })?,
        None => Vec::new(),
    };
    let r = walked?;
    let slot = shown_slot(core, caches, route, slot, &r, &event)?;
    write_r(out, &r, &event);
    out.push(b'\n');
    Ok(Done::Written(route, slot, ev.drops, extra))
}

fn route_of(core: &Core, caches: &mut Caches, event_type: &str, source: &str) -> Res<usize> {
    if let Some(&id) = caches.routes.get(event_type).and_then(|m| m.get(source)) {
        return Ok(id);
    }
    let (route, label, tree, reason, implicit): (Py<PyAny>, String, i64, String, bool) =
        gil(|py| {
            core.h
                .resolve
                .bind(py)
                .call1((event_type, source))?
                .extract()
        })?;
    caches.infos.push(RouteInfo {
        route,
        label,
        tree: usize::try_from(tree).ok(),
        reason,
        implicit,
        tally: [0, 0],
    });
    let id = caches.infos.len() - 1;
    caches
        .routes
        .entry(event_type.to_string())
        .or_default()
        .insert(source.to_string(), id);
    Ok(id)
}

type RoutingKey = (usize, Option<String>, String);

/// A routing key (from Python's ROUTING or PLACE) as a slot.
fn slot_of(routing: Bound<'_, PyAny>) -> PyResult<Slot> {
    Ok(Slot {
        course: routing.getattr("course_id")?.extract()?,
        dated: !routing.getattr("date")?.is_none(),
        routing: routing.unbind(),
        dropped: None,
    })
}

fn add_slot(caches: &mut Caches, slot: Slot) -> usize {
    caches.slots.push(slot);
    caches.slots.len() - 1
}

/// The slot of the routing key of an event of ROUTE with CONTEXT and TIME, as the Python engine
/// finds it before the plan runs. Cached by the raw course id and day: the route fixes the event
/// type (an implicit event's path among them), so the same three give the same key.
fn routing_of(
    core: &Core,
    caches: &mut Caches,
    route: usize,
    event_type: &str,
    context: Option<&V>,
    time: Option<&V>,
) -> Res<usize> {
    let course: Option<String> = match context {
        Some(c @ V::Obj(_)) => c
            .get("course_id")
            .and_then(V::as_text)
            .map(|t| t.into_owned()),
        _ => None,
    };
    // The day as the Python engine's fast path cuts it; anything else is asked every time.
    let (key, loose) = match time.and_then(V::as_text) {
        Some(t)
            if t.len() >= 11
                && t.as_bytes()[..11].is_ascii()
                && t.as_bytes()[10] == b'T'
                && t.ends_with("+00:00") =>
        {
            (Some((route, course, t[..10].to_string())), None)
        }
        _ => (None, course),
    };
    if let Some(k) = &key {
        if let Some(&slot) = caches.keys.get(k) {
            return Ok(slot);
        }
    }
    let info = &caches.infos[route];
    let course = match &key {
        Some(k) => k.1.as_deref(),
        None => loose.as_deref(),
    };
    let slot = gil(|py| {
        let time_py = match time {
            Some(v) => to_py(py, v)?,
            None => py.None().into_bound(py),
        };
        slot_of(core.h.routing.bind(py).call1((
            info.route.bind(py),
            event_type,
            course,
            time_py,
        ))?)
    })?;
    let id = add_slot(caches, slot);
    if let Some(k) = key {
        caches.keys.insert(k, id);
    }
    Ok(id)
}

// ---------------------------------------------------------------- placing a written event

/// A value of the written event as the package shows it, for what placing it reads.
enum Leaf<'s> {
    Missing,
    Null,
    Text(Cow<'s, str>),
    Other,
}

/// Where a value of the written event is: in the input as logged, or made by a node.
enum At<'x, 'a> {
    In(&'x V<'a>),
    Made(&'x O<'a>),
}

/// F of the value at PATH (object keys) of the written event from AT.
fn look<T>(at: At<'_, '_>, path: &[&str], f: impl for<'s> FnOnce(Leaf<'s>) -> T) -> T {
    match at {
        At::Made(O::Same(v)) => look(At::In(v), path, f),
        At::Made(O::Raw(raw)) => {
            // Written by an operator (JSON, checked UTF-8): read again, only for this value.
            match std::str::from_utf8(raw).ok().and_then(|_| parse(raw).ok()) {
                Some(v) => look(At::In(&v), path, f),
                None => f(Leaf::Other),
            }
        }
        At::In(v) => match path.split_first() {
            None => f(match v {
                V::Null => Leaf::Null,
                V::Str(s) => Leaf::Text(s.text()),
                _ => Leaf::Other,
            }),
            Some((key, rest)) => match v.get(key) {
                Some(inner) => look(At::In(inner), rest, f),
                None => f(Leaf::Missing),
            },
        },
        At::Made(o) => match path.split_first() {
            None => f(match o {
                O::Text(t) => match std::str::from_utf8(t) {
                    Ok(t) => Leaf::Text(Cow::Borrowed(t)),
                    Err(_) => Leaf::Other,
                },
                _ => Leaf::Other,
            }),
            Some((key, rest)) => match o {
                O::Obj(entries) => match entries.iter().find(|(k, _)| key_eq(k, key)) {
                    Some((_, inner)) => look(At::Made(inner), rest, f),
                    None => f(Leaf::Missing),
                },
                _ => f(Leaf::Missing),
            },
        },
    }
}

/// The slot of a written event as the package shows it (the Python engine's `_shows` and
/// `_shown_course`, checked after the plan): an operator may refuse a value the rule keeps (a
/// time of another shape, a course id), and then the routing key names neither that day nor
/// that course. R is what the plan made of EVENT.
fn shown_slot(
    core: &Core,
    caches: &mut Caches,
    route: usize,
    slot: usize,
    r: &R,
    event: &V,
) -> Res<usize> {
    let top = || match r {
        R::Out(o) => At::Made(o),
        _ => At::In(event),
    };
    let s = &caches.slots[slot];
    if !s.dated && s.course.is_none() {
        return Ok(slot);
    }
    let dated = s.dated;
    let timed = look(top(), &["time"], |l| {
        !matches!(l, Leaf::Missing | Leaf::Null)
    });
    let course_shown = match &s.course {
        None => true,
        Some(course) => {
            look(
                top(),
                &["context", "course_id"],
                |l| matches!(l, Leaf::Text(t) if t == course.as_str()),
            ) || (caches.infos[route].implicit && {
                let course = course.clone();
                in_path(core, caches, top(), &course)?
            })
        }
    };
    if (!dated || timed) && course_shown {
        return Ok(slot);
    }
    let key = (slot, course_shown, timed);
    if let Some(&found) = caches.shown.get(&key) {
        return Ok(found);
    }
    let s = &caches.slots[slot];
    let course = if course_shown {
        s.course.as_deref()
    } else {
        None
    };
    let narrowed = gil(|py| {
        slot_of(
            core.h
                .place
                .bind(py)
                .call1((s.routing.bind(py), course, timed))?,
        )
    })?;
    let id = add_slot(caches, narrowed);
    caches.shown.insert(key, id);
    Ok(id)
}

/// Whether the course key in the written event's `event_type` (an implicit event's path) is
/// COURSE, as the Python engine's `course_in_path` finds it (asked once per path).
fn in_path(core: &Core, caches: &mut Caches, top: At<'_, '_>, course: &str) -> Res<bool> {
    let found: Result<bool, String> = look(top, &["event_type"], |l| match l {
        Leaf::Text(t) => match caches.paths.get(t.as_ref()) {
            Some(c) => Ok(c.as_deref() == Some(course)),
            None => Err(t.into_owned()),
        },
        _ => Ok(false),
    });
    match found {
        Ok(hit) => Ok(hit),
        Err(path) => {
            let c: Option<String> = gil(|py| {
                core.h
                    .course_in_path
                    .bind(py)
                    .call1((path.as_str(),))?
                    .extract()
            })?;
            let hit = c.as_deref() == Some(course);
            if caches.paths.len() >= MEMO_LIMIT {
                caches.paths.clear();
            }
            caches.paths.insert(path, c);
            Ok(hit)
        }
    }
}

// ---------------------------------------------------------------- nodes

fn apply<'a>(
    core: &Core,
    caches: &mut Caches,
    ev: &mut Ev<'_>,
    node: &Node,
    v: &'a V<'a>,
) -> Res<R<'a>> {
    match node {
        Node::Skip => Ok(R::Skip),
        Node::Copy => Ok(R::Keep),
        Node::Drop => Ok(R::Drop),
        Node::Py { id, memo, leaves } => {
            if *leaves && passes_leaves(v) {
                return Ok(R::Keep);
            }
            call_py(core, caches, ev, *id, *memo, v)
        }
        Node::Native { op, py } => match ops::run(op, &core.secret, &core.known, v) {
            Some(ops::Made::Same) => Ok(R::Keep),
            Some(ops::Made::Drop) => Ok(R::Drop),
            Some(ops::Made::Json(b)) => Ok(R::Out(O::Raw(b))),
            None => call_py(core, caches, ev, *py, false, v),
        },
        Node::Text {
            py,
            part,
            actors,
            chars,
            leaves,
        } => {
            if *leaves && passes_leaves(v) {
                return Ok(R::Keep);
            }
            match v {
                V::Str(s) if !s.raw.is_empty() => {
                    scrub_text(core, caches, ev, (*py, *part, *actors, *chars), s, v)
                }
                _ => call_py(core, caches, ev, *py, false, v),
            }
        }
        Node::Container(c) => container(core, caches, ev, c, v),
        Node::DecodeJson(inner) => decode_json(core, caches, ev, inner, v),
        Node::Payload { root, py } => payload(core, caches, ev, root.as_deref(), *py, v),
        Node::EmptyPayload => Ok(R::Out(O::Raw(match v {
            V::Null => return Ok(R::Keep),
            V::Obj(_) => b"{}".to_vec(),
            V::Arr(_) => b"[]".to_vec(),
            V::Str(s) => {
                let t = s.text();
                let t = py_strip(&t);
                if t.starts_with('{') {
                    b"\"{}\"".to_vec()
                } else if t.starts_with('[') {
                    b"\"[]\"".to_vec()
                } else {
                    b"\"\"".to_vec()
                }
            }
            _ => b"null".to_vec(),
        }))),
    }
}

/// Whether the Python engine's `_map_leaves` gives V back as it is without calling its operator:
/// null and an empty string as they are, an empty object or list as an equal new one.
fn passes_leaves(v: &V) -> bool {
    match v {
        V::Null => true,
        V::Str(s) => s.raw.is_empty(),
        V::Obj(entries) => entries.is_empty(),
        V::Arr(items) => items.is_empty(),
        _ => false,
    }
}

fn call_py<'a>(
    core: &Core,
    caches: &mut Caches,
    ev: &mut Ev<'_>,
    id: usize,
    memo: bool,
    v: &'a V<'a>,
) -> Res<R<'a>> {
    let memo = memo || core.memo_fns[id];
    let key = if memo {
        match v {
            V::Str(s) => Some(MKey::S(s.text().into_owned())),
            V::Int(n) => Some(MKey::I(*n)),
            _ => None,
        }
    } else {
        None
    };
    if let Some(k) = &key {
        if let Some(found) = caches.memo[id].get(k) {
            return Ok(hit_result(found.clone()));
        }
    }
    let (hit, pure) = gil(|py| {
        let state = ev.state(py, &core.h)?;
        let dropped = |state: &Bound<'_, PyAny>| -> PyResult<usize> {
            if key.is_some() {
                state.getattr("dropped")?.len()
            } else {
                Ok(0)
            }
        };
        let before = dropped(&state)?;
        let result = core
            .h
            .call
            .bind(py)
            .call1((core.fns[id].bind(py), to_py(py, v)?, &state))?;
        let hit = if result.is_none() {
            Hit::Drop
        } else if let Ok(b) = result.downcast::<PyBytes>() {
            Hit::Bytes(b.as_bytes().to_vec())
        } else {
            Hit::Same
        };
        Ok((hit, dropped(&state)? == before))
    })?;
    if let Some(k) = key {
        // Cached only when the call counted nothing (a pure operator never does).
        if pure {
            let m = &mut caches.memo[id];
            if m.len() >= MEMO_LIMIT {
                m.clear();
            }
            m.insert(k, hit.clone());
        }
    }
    Ok(hit_result(hit))
}

/// `scrub_text` of a string, as its Python function gives it (`operators/scrub_text.py`): the
/// text-only part from the cache (or once from Python), then the actors' step here when it is a
/// plain search that finds nothing: every actor and the text ASCII, the text not disguised, and
/// no actor's lower-cased username in the lower-cased text, nor (for a username of six letters
/// and digits or more) its letters and digits without separators in the text so read. Anything
/// else: the Python function.
fn scrub_text<'a>(
    core: &Core,
    caches: &mut Caches,
    ev: &mut Ev<'_>,
    (py, part, actors, chars): (usize, usize, bool, usize),
    s: &Str,
    v: &'a V<'a>,
) -> Res<R<'a>> {
    let text = s.text();
    if text.chars().count() > chars {
        return call_py(core, caches, ev, py, false, v); // not cached by the Python function either
    }
    let key = (part, text.into_owned());
    let (result, disguised) = match caches.texts.get(&key) {
        Some(found) => found.clone(),
        None => {
            let (result, disguised): (String, bool) =
                gil(|p| core.fns[part].bind(p).call1((key.1.as_str(),))?.extract())?;
            let found = (if result == key.1 { None } else { Some(result) }, disguised);
            if caches.texts.len() >= MEMO_LIMIT {
                caches.texts.clear();
            }
            caches.texts.insert(key.clone(), found.clone());
            found
        }
    };
    if disguised {
        return call_py(core, caches, ev, py, false, v);
    }
    let written = result.as_deref().unwrap_or(key.1.as_str());
    if actors {
        match needles(ev) {
            None => return call_py(core, caches, ev, py, false, v),
            Some(found) if !found.is_empty() => {
                if !written.is_ascii() {
                    return call_py(core, caches, ev, py, false, v);
                }
                let low = written.to_ascii_lowercase();
                if found.iter().any(|n| low.contains(n.as_str())) {
                    return call_py(core, caches, ev, py, false, v);
                }
                // A username written with other separators or none (`ymir-balder77` for
                // `_ymir_balder77_`): every text where Python's `may_hold` may find a variant
                // holds the username's letters and digits once both are read without separators.
                let cores: Vec<String> = found.iter().map(|n| squeezed(n)).filter(|c| c.len() >= VARIANT_MIN_CORE).collect();
                if !cores.is_empty() {
                    let text = squeezed(&low);
                    if cores.iter().any(|c| text.contains(c.as_str())) {
                        return call_py(core, caches, ev, py, false, v);
                    }
                }
            }
            Some(_) => {}
        }
    }
    Ok(match result {
        None => R::Keep,
        Some(new) => R::Out(O::Text(new.into_bytes())),
    })
}

/// The fewest letters and digits a username's variants need (`variants.MIN_CORE`).
const VARIANT_MIN_CORE: usize = 6;

/// TEXT (lower-cased ASCII) without the separators a username's variants swap (`variants.squeezed`).
fn squeezed(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, '_' | '-' | '.' | ' ')).collect()
}

fn hit_result<'a>(hit: Hit) -> R<'a> {
    match hit {
        Hit::Same => R::Keep,
        Hit::Drop => R::Drop,
        Hit::Bytes(b) => R::Out(O::Raw(b)),
    }
}

/// The usernames of the event as the key checker compares them (``EventState.actors``, then its
/// needles): stripped, distinct, of two characters or more, lower-cased; None when one is not
/// ASCII (the Python checker decides then).
fn needles(ev: &Ev) -> Option<Vec<String>> {
    let mut found: Vec<String> = Vec::new();
    for raw in ev.users.iter().flatten() {
        if let V::Str(s) = raw {
            let text = s.text();
            let t = py_strip(&text);
            if !t.is_empty() && !found.iter().any(|f| f == t) {
                found.push(t.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for actor in found {
        if actor.chars().count() < 2 {
            continue;
        }
        if !actor.is_ascii() {
            return None;
        }
        out.push(actor.to_ascii_lowercase());
    }
    Some(out)
}

/// Whether each of KEYS (data keys of one dict) fails the data-key check.
fn judge_keys(core: &Core, caches: &mut Caches, ev: &mut Ev<'_>, keys: &[&str]) -> Res<Vec<bool>> {
    let mut bad = Vec::with_capacity(keys.len());
    let mut actors: Option<Option<Vec<String>>> = None;
    for key in keys {
        if !caches.verdicts.contains_key(*key) {
            let verdict = gil(|py| {
                let v = core.h.verdict.bind(py).call1((*key,))?;
                Ok(if let Ok(text) = v.extract::<String>() {
                    Verdict::Lowered(text)
                } else {
                    match v.extract::<i64>()? {
                        0 => Verdict::Safe,
                        2 => Verdict::Unsafe,
                        _ => Verdict::Check,
                    }
                })
            })?;
            if caches.verdicts.len() >= MEMO_LIMIT {
                caches.verdicts.clear();
            }
            caches.verdicts.insert(key.to_string(), verdict);
        }
        let ask = match &caches.verdicts[*key] {
            Verdict::Safe => {
                bad.push(false);
                continue;
            }
            Verdict::Unsafe => {
                bad.push(true);
                continue;
            }
            Verdict::Check => true,
            Verdict::Lowered(lowered) => {
                let found = actors.get_or_insert_with(|| needles(ev));
                match found {
                    Some(list) => list.iter().any(|a| lowered.contains(a.as_str())),
                    None => true,
                }
            }
        };
        if ask {
            let ok: bool = gil(|py| {
                let state = ev.state(py, &core.h)?;
                core.h.check.bind(py).call1((*key, state))?.extract()
            })?;
            bad.push(!ok);
        } else {
            bad.push(false);
        }
    }
    Ok(bad)
}

enum Fate<'a> {
    Keep,
    Remove,
    Put(O<'a>),
}

fn settle<'a>(fate: &mut Fate<'a>, r: R<'a>, ev: &mut Ev, path: &str, key: &str, counted: bool) {
    match r {
        R::Keep => {}
        R::Skip => *fate = Fate::Remove,
        R::Drop => {
            *fate = Fate::Remove;
            if counted {
                ev.drops.push((join_key(path, key), "invalid_value"));
            }
        }
        R::Out(o) => *fate = Fate::Put(o),
    }
}

fn container<'a>(
    core: &Core,
    caches: &mut Caches,
    ev: &mut Ev<'_>,
    c: &Cont,
    v: &'a V<'a>,
) -> Res<R<'a>> {
    match v {
        V::Obj(entries) => {
            let mut fates: Vec<Fate<'a>> = entries.iter().map(|_| Fate::Keep).collect();
            let texts: Vec<std::borrow::Cow<'a, str>> =
                entries.iter().map(|(k, _)| k.text()).collect();
            let position = |key: &str| texts.iter().position(|t| t == key);
            // Conditions and cases, decided on the dict as logged.
            let mut chosen: Vec<(usize, Option<&Node>)> = Vec::new();
            for (key, options) in &c.cases {
                if let Some(i) = position(key) {
                    chosen.push((
                        i,
                        options
                            .iter()
                            .find(|(needs, _)| holds(v, needs))
                            .map(|(_, n)| n),
                    ));
                }
            }
            for (key, needs) in &c.conds {
                if let Some(i) = position(key) {
                    if !holds(v, needs) {
                        fates[i] = Fate::Remove;
                        ev.drops.push((join_key(&c.path, key), "condition_not_met"));
                    }
                }
            }
            for (i, rule) in chosen {
                match rule {
                    None => {
                        fates[i] = Fate::Remove;
                        ev.drops
                            .push((join_key(&c.path, &texts[i]), "condition_not_met"));
                    }
                    Some(node) => {
                        let r = apply(core, caches, ev, node, &entries[i].1)?;
                        let counted = !matches!(node, Node::Skip);
                        settle(&mut fates[i], r, ev, &c.path, &texts[i], counted);
                    }
                }
            }
            // Keys no rule names: unnamed without a wildcard or own rule, else data keys.
            let fallback = c.any.as_ref().or(c.own.as_ref());
            let extra: Vec<usize> = (0..entries.len())
                .filter(|&i| {
                    !matches!(fates[i], Fate::Remove) && !c.named.contains_key(texts[i].as_ref())
                })
                .collect();
            let mut later: Vec<usize> = Vec::new();
            if !extra.is_empty() {
                match fallback {
                    None => {
                        for &i in &extra {
                            fates[i] = Fate::Remove;
                            ev.drops.push((join_key(&c.path, &texts[i]), "unnamed"));
                        }
                    }
                    Some(rule) => {
                        let keys: Vec<&str> = extra.iter().map(|&i| texts[i].as_ref()).collect();
                        let bad = judge_keys(core, caches, ev, &keys)?;
                        for (j, &i) in extra.iter().enumerate() {
                            if bad.get(j).copied().unwrap_or(true) {
                                fates[i] = Fate::Remove;
                                ev.drops.push((join_key(&c.path, &texts[i]), "unsafe_key"));
                            } else if !matches!(rule, Node::Copy) {
                                later.push(i);
                            }
                        }
                    }
                }
            }
            for i in 0..entries.len() {
                if matches!(fates[i], Fate::Remove) {
                    continue;
                }
                let rule = match c.named.get(texts[i].as_ref()) {
                    Some(rule) => rule,
                    None if later.contains(&i) => fallback.ok_or(Fallback)?,
                    None => continue,
                };
                if matches!(rule, Node::Copy) {
                    continue;
                }
                let r = apply(core, caches, ev, rule, &entries[i].1)?;
                settle(&mut fates[i], r, ev, &c.path, &texts[i], true);
            }
            if fates.iter().all(|f| matches!(f, Fate::Keep)) {
                return Ok(R::Keep);
            }
            let mut kept = Vec::with_capacity(entries.len());
            for ((k, item), fate) in entries.iter().zip(fates) {
                match fate {
                    Fate::Keep => kept.push((k, O::Same(item))),
                    Fate::Put(o) => kept.push((k, o)),
                    Fate::Remove => {}
                }
            }
            Ok(R::Out(O::Obj(kept)))
        }
        V::Arr(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut changed = false;
            for (i, item) in items.iter().enumerate() {
                let rule = c.items.get(&i).or(c.any.as_ref());
                let rule = match rule {
                    Some(r) => r,
                    None => match &c.own {
                        Some(own) => own,
                        None => {
                            ev.drops.push((join_index(&c.path), "unnamed"));
                            changed = true;
                            continue;
                        }
                    },
                };
                match apply(core, caches, ev, rule, item)? {
                    R::Keep => out.push(O::Same(item)),
                    R::Skip => changed = true,
                    R::Drop => {
                        ev.drops.push((join_index(&c.path), "invalid_value"));
                        changed = true;
                    }
                    R::Out(o) => {
                        out.push(o);
                        changed = true;
                    }
                }
            }
            Ok(if changed {
                R::Out(O::Arr(out))
            } else {
                R::Keep
            })
        }
        V::Null if c.own.is_none() => Ok(R::Keep),
        _ => match &c.own {
            Some(own) => apply(core, caches, ev, own, v),
            None => Ok(R::Drop),
        },
    }
}

fn decode_json<'a>(
    core: &Core,
    caches: &mut Caches,
    ev: &mut Ev<'_>,
    inner: &Node,
    v: &'a V<'a>,
) -> Res<R<'a>> {
    if matches!(inner, Node::Skip) {
        return Err(Fallback);
    }
    match v {
        V::Obj(_) | V::Arr(_) => apply(core, caches, ev, inner, v),
        V::Str(s) => {
            let text = s.text();
            if py_strip(&text).is_empty() {
                return Ok(R::Keep);
            }
            let mut buf = Vec::new();
            if !encode_decoded(core, caches, ev, inner, text.as_bytes(), &mut buf)? {
                return Ok(R::Drop);
            }
            Ok(R::Out(O::Text(buf)))
        }
        _ => Ok(R::Drop),
    }
}

/// Parse TEXT, apply NODE, write the result compactly into BUF; false when NODE dropped it.
fn encode_decoded(
    core: &Core,
    caches: &mut Caches,
    ev: &mut Ev<'_>,
    node: &Node,
    text: &[u8],
    buf: &mut Vec<u8>,
) -> Res<bool> {
    let decoded = parse(text).map_err(|_| Fallback)?;
    let result = apply(core, caches, ev, node, &decoded);
    match result? {
        R::Drop => Ok(false),
        R::Skip => Err(Fallback),
        r => {
            write_r(buf, &r, &decoded);
            Ok(true)
        }
    }
}

fn payload<'a>(
    core: &Core,
    caches: &mut Caches,
    ev: &mut Ev<'_>,
    root: Option<&Node>,
    py_fn: usize,
    v: &'a V<'a>,
) -> Res<R<'a>> {
    let root = root.filter(|r| !matches!(r, Node::Skip));
    let run = |core: &Core, caches: &mut Caches, ev: &mut Ev<'_>, v: &'a V<'a>| -> Res<R<'a>> {
        match root {
            Some(r) => apply(core, caches, ev, r, v),
            None => Ok(R::Drop),
        }
    };
    match v {
        V::Obj(_) | V::Arr(_) => {
            let empty: &[u8] = if matches!(v, V::Obj(_)) { b"{}" } else { b"[]" };
            Ok(match run(core, caches, ev, v)? {
                R::Drop | R::Skip => R::Out(O::Raw(empty.to_vec())),
                r => r,
            })
        }
        V::Null => Ok(R::Keep),
        V::Str(s) => {
            let full = s.text();
            let text = py_strip(&full);
            if text.is_empty() {
                return Ok(R::Keep);
            }
            if text.starts_with('{') || text.starts_with('[') {
                let mut buf = Vec::new();
                let kept = match root {
                    Some(r) => encode_decoded(core, caches, ev, r, text.as_bytes(), &mut buf)?,
                    None => {
                        parse(text.as_bytes()).map_err(|_| Fallback)?;
                        false
                    }
                };
                if !kept {
                    return Ok(R::Out(O::Raw(if text.starts_with('{') {
                        b"\"{}\"".to_vec()
                    } else {
                        b"\"[]\"".to_vec()
                    })));
                }
                return Ok(R::Out(O::Text(buf)));
            }
            if text.contains('=') {
                return call_py(core, caches, ev, py_fn, false, v).and_then(|r| match r {
                    R::Drop => Err(Fallback),
                    r => Ok(r),
                });
            }
            match run(core, caches, ev, v)? {
                R::Drop | R::Skip => {
                    ev.drops.push(("event".to_string(), "unnamed"));
                    Ok(R::Out(O::Raw(b"\"\"".to_vec())))
                }
                r => Ok(r),
            }
        }
        _ => Ok(match run(core, caches, ev, v)? {
            R::Drop | R::Skip => R::Out(O::Raw(b"null".to_vec())),
            r => r,
        }),
    }
}

/// A float as orjson writes it (for the differential tests of the serializer).
#[pyfunction]
fn format_float(f: f64) -> PyResult<Vec<u8>> {
    if !f.is_finite() {
        return Err(PyValueError::new_err("not a finite float"));
    }
    let mut out = Vec::new();
    write_float(&mut out, f);
    Ok(out)
}

/// TEXT scanned and written back as the native engine does (for the differential tests of the
/// scanner and serializer): None when the scanner refuses it.
#[pyfunction]
fn roundtrip(text: &[u8]) -> Option<Vec<u8>> {
    std::str::from_utf8(text).ok()?;
    let v = parse(text).ok()?;
    let mut out = Vec::new();
    write_value(&mut out, &v);
    Some(out)
}

#[pymodule]
fn anonymizer_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<verify::LineFilter>()?;
    m.add_function(wrap_pyfunction!(format_float, m)?)?;
    m.add_function(wrap_pyfunction!(roundtrip, m)?)?;
    Ok(())
}
