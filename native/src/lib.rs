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
//! No unsafe code.
#![forbid(unsafe_code)]

mod json;
mod ops;
mod plan;

use json::{parse, py_strip, write_float, write_raw_str, write_str, write_value, Str, V};
use plan::{Cont, Needs, Node, PyNodes};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString, PyTuple};
use serde_json::Value as J;
use std::collections::HashMap;

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
}

struct Core {
    secret: Vec<u8>,
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

/// A routing key as Python made it, and the outcome of a drop under it (made on first use).
type Routed = (Py<PyAny>, Option<Py<PyAny>>);
/// The same, with the cache key it was found under (None: not cached).
type RoutedAt = (Py<PyAny>, Option<Py<PyAny>>, Option<RoutingKey>);

struct Caches {
    memo: Vec<HashMap<MKey, Hit>>,
    verdicts: HashMap<String, Verdict>,
    routes: HashMap<(String, String), usize>,
    infos: Vec<RouteInfo>,
    keys: HashMap<(usize, Option<String>, String), Routed>,
}

/// What one event's rules found, and its operator state (made on first use).
struct Ev<'a, 'py> {
    py: Python<'py>,
    users: [Option<&'a V<'a>>; 2],
    state: Option<Bound<'py, PyAny>>,
    drops: Vec<(String, &'static str)>,
}

impl<'a, 'py> Ev<'a, 'py> {
    fn state(&mut self, h: &Helpers) -> PyResult<Bound<'py, PyAny>> {
        if let Some(s) = &self.state {
            return Ok(s.clone());
        }
        let py = self.py;
        let u0 = match self.users[0] {
            Some(v) => to_py(py, v)?,
            None => py.None().into_bound(py),
        };
        let u1 = match self.users[1] {
            Some(v) => to_py(py, v)?,
            None => py.None().into_bound(py),
        };
        let s = h.new_state.bind(py).call1((u0, u1))?;
        self.state = Some(s.clone());
        Ok(s)
    }
}

struct Collector<'py> {
    py: Python<'py>,
    node_fn: Bound<'py, PyAny>,
    fns: Vec<Py<PyAny>>,
    memo: Vec<bool>,
    native: Option<J>,
    error: Option<PyErr>,
}

impl PyNodes for Collector<'_> {
    fn native(&mut self) -> Option<J> {
        self.native.take()
    }

    fn function(&mut self, node: &J) -> Result<usize, String> {
        match self.node_fn.call1((node.to_string(),)) {
            Ok(f) => {
                // (function, whether the Python engine memoizes it per string or integer)
                let (f, memo, native): (Py<PyAny>, bool, Option<String>) = match f.extract() {
                    Ok(pair) => pair,
                    Err(e) => {
                        self.error = Some(e);
                        return Err("the Python engine gave no function for a node".into());
                    }
                };
                self.fns.push(f);
                self.memo.push(memo);
                self.native = native.and_then(|n| serde_json::from_str(&n).ok());
                Ok(self.fns.len() - 1)
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
    /// routing) the outcome of a dropped event.
    #[new]
    #[allow(clippy::too_many_arguments)]
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
                },
            },
            caches: Caches {
                memo: (0..n).map(|_| HashMap::new()).collect(),
                verdicts: HashMap::new(),
                routes: HashMap::new(),
                infos: Vec::new(),
                keys: HashMap::new(),
            },
        })
    }

    /// Anonymize the whole lines in DATA. Returns (results, fallback line indexes, written,
    /// {drop reason: count}, [(label, written, dropped)], {(label, path, reason): count}); a
    /// result is (output, routing key) for a written line, the Dropped outcome, or None for a
    /// line left to the Python engine.
    fn anonymize_batch<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
    ) -> PyResult<Bound<'py, PyTuple>> {
        let core = &self.core;
        let caches = &mut self.caches;
        if caches.routes.len() > CACHE_LIMIT {
            // Bounded: cleared between batches, never while a batch holds route ids.
            caches.routes.clear();
            caches.infos.clear();
            caches.keys.clear(); // keyed by route ids, which are given again from 0
        }
        let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        if lines.last() == Some(&&b""[..]) {
            lines.pop();
        }
        let results = PyList::empty(py);
        let mut fallback: Vec<usize> = Vec::new();
        let mut written = 0u64;
        let mut dropped: HashMap<String, u64> = HashMap::new();
        let mut fields: HashMap<(String, String, String), u64> = HashMap::new();
        let mut out = Vec::with_capacity(4096);
        for (index, line) in lines.iter().enumerate() {
            match one_line(py, core, caches, line, &mut out) {
                Ok(Done::Written(route, routing, drops, extra)) => {
                    results.append(PyTuple::new(
                        py,
                        [PyBytes::new(py, &out).into_any(), routing.into_bound(py)],
                    )?)?;
                    written += 1;
                    let info = &mut caches.infos[route];
                    info.tally[0] += 1;
                    for (path, reason) in drops {
                        *fields
                            .entry((info.label.clone(), path, reason.to_string()))
                            .or_insert(0) += 1;
                    }
                    for (path, reason) in extra {
                        *fields
                            .entry((info.label.clone(), path, reason))
                            .or_insert(0) += 1;
                    }
                }
                Ok(Done::Dropped(route, outcome)) => {
                    results.append(outcome)?;
                    let info = &mut caches.infos[route];
                    info.tally[1] += 1;
                    *dropped.entry(info.reason.clone()).or_insert(0) += 1;
                }
                Err(Fallback) => {
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
        for (k, n) in dropped {
            dropped_py.set_item(k, n)?;
        }
        let fields_py = PyDict::new(py);
        for ((l, p, r), n) in fields {
            fields_py.set_item((l, p, r), n)?;
        }
        PyTuple::new(
            py,
            [
                results.into_any(),
                PyList::new(py, fallback)?.into_any(),
                written.into_pyobject(py)?.into_any(),
                dropped_py.into_any(),
                tallies.into_any(),
                fields_py.into_any(),
            ],
        )
    }
}

enum Done {
    Written(
        usize,
        Py<PyAny>,
        Vec<(String, &'static str)>,
        Vec<(String, String)>,
    ),
    Dropped(usize, Py<PyAny>),
}

fn one_line(
    py: Python<'_>,
    core: &Core,
    caches: &mut Caches,
    line: &[u8],
    out: &mut Vec<u8>,
) -> Res<Done> {
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
    let route = route_of(py, core, caches, &event_type, &source)?;
    let context = event.get("context");
    let routing = routing_of(
        py,
        core,
        caches,
        route,
        &event_type,
        context,
        event.get("time"),
    )?;
    let info = &caches.infos[route];
    let tree = match info.tree {
        None => {
            let entry = &routing;
            let outcome = match &entry.1 {
                Some(d) => d.clone_ref(py),
                None => {
                    let d = core
                        .h
                        .dropped
                        .bind(py)
                        .call1((info.reason.as_str(), entry.0.bind(py)))?
                        .unbind();
                    if let Some(key) = &entry.2 {
                        if let Some(slot) = caches.keys.get_mut(key) {
                            slot.1 = Some(d.clone_ref(py));
                        }
                    }
                    d
                }
            };
            return Ok(Done::Dropped(route, outcome));
        }
        Some(t) => core.trees[t].as_ref().ok_or(Fallback)?,
    };
    let users = [
        event.get("username"),
        context.and_then(|c| c.get("username")),
    ];
    let mut ev = Ev {
        py,
        users,
        state: None,
        drops: Vec::new(),
    };
    let r = apply(core, caches, &mut ev, tree, &event)?;
    out.clear();
    write_r(out, &r, &event);
    out.push(b'\n');
    let mut extra = Vec::new();
    if let Some(state) = &ev.state {
        let list = state.getattr("dropped")?;
        for item in list.try_iter()? {
            let (path, reason): (String, String) = item?.extract()?;
            extra.push((path, reason));
        }
    }
    Ok(Done::Written(route, routing.0, ev.drops, extra))
}

fn route_of(
    py: Python<'_>,
    core: &Core,
    caches: &mut Caches,
    event_type: &str,
    source: &str,
) -> Res<usize> {
    if let Some(&id) = caches
        .routes
        .get(&(event_type.to_string(), source.to_string()))
    {
        return Ok(id);
    }
    let found = core.h.resolve.bind(py).call1((event_type, source))?;
    let (route, label, tree, reason, implicit): (Py<PyAny>, String, i64, String, bool) =
        found.extract()?;
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
        .insert((event_type.to_string(), source.to_string()), id);
    Ok(id)
}

type RoutingKey = (usize, Option<String>, String);

fn routing_of(
    py: Python<'_>,
    core: &Core,
    caches: &mut Caches,
    route: usize,
    event_type: &str,
    context: Option<&V>,
    time: Option<&V>,
) -> Res<RoutedAt> {
    let course: Option<String> = match context {
        Some(c @ V::Obj(_)) => c
            .get("course_id")
            .and_then(V::as_text)
            .map(|t| t.into_owned()),
        _ => None,
    };
    let info = &caches.infos[route];
    // The day as the Python engine's fast path cuts it; anything else is asked every time.
    let day = match time.and_then(V::as_text) {
        Some(t)
            if t.len() >= 11
                && t.as_bytes()[..11].is_ascii()
                && t.as_bytes()[10] == b'T'
                && t.ends_with("+00:00") =>
        {
            Some(t[..10].to_string())
        }
        _ => None,
    };
    let key = match (&day, info.implicit) {
        (Some(d), false) => Some((route, course.clone(), d.clone())),
        _ => None,
    };
    if let Some(k) = &key {
        if let Some((r, d)) = caches.keys.get(k) {
            return Ok((r.clone_ref(py), d.as_ref().map(|d| d.clone_ref(py)), key));
        }
    }
    let time_py = match time {
        Some(v) => to_py(py, v)?,
        None => py.None().into_bound(py),
    };
    let r = core
        .h
        .routing
        .bind(py)
        .call1((info.route.bind(py), event_type, course, time_py))?
        .unbind();
    if let Some(k) = &key {
        if caches.keys.len() > CACHE_LIMIT {
            caches.keys.clear();
        }
        caches
            .keys
            .insert((k.0, k.1.clone(), k.2.clone()), (r.clone_ref(py), None));
    }
    Ok((r, None, key))
}

// ---------------------------------------------------------------- nodes

fn apply<'a>(
    core: &Core,
    caches: &mut Caches,
    ev: &mut Ev<'_, '_>,
    node: &Node,
    v: &'a V<'a>,
) -> Res<R<'a>> {
    match node {
        Node::Skip => Ok(R::Skip),
        Node::Copy => Ok(R::Keep),
        Node::Drop => Ok(R::Drop),
        Node::Py { id, memo } => call_py(core, caches, ev, *id, *memo, v),
        Node::Native { op, py } => match ops::run(op, &core.secret, v) {
            Some(ops::Made::Same) => Ok(R::Keep),
            Some(ops::Made::Drop) => Ok(R::Drop),
            Some(ops::Made::Json(b)) => Ok(R::Out(O::Raw(b))),
            None => call_py(core, caches, ev, *py, false, v),
        },
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

fn call_py<'a>(
    core: &Core,
    caches: &mut Caches,
    ev: &mut Ev<'_, '_>,
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
    let py = ev.py;
    let state = ev.state(&core.h)?;
    let before = if key.is_some() {
        state.getattr("dropped")?.len()?
    } else {
        0
    };
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
    if let Some(k) = key {
        // Cached only when the call counted nothing (a pure operator never does).
        if state.getattr("dropped")?.len()? == before {
            let m = &mut caches.memo[id];
            if m.len() >= MEMO_LIMIT {
                m.clear();
            }
            m.insert(k, hit.clone());
        }
    }
    Ok(hit_result(hit))
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
fn judge_keys(
    core: &Core,
    caches: &mut Caches,
    ev: &mut Ev<'_, '_>,
    keys: &[&str],
) -> Res<Vec<bool>> {
    let py = ev.py;
    let mut bad = Vec::with_capacity(keys.len());
    let mut actors: Option<Option<Vec<String>>> = None;
    for key in keys {
        if !caches.verdicts.contains_key(*key) {
            let v = core.h.verdict.bind(py).call1((*key,))?;
            let verdict = if let Ok(text) = v.extract::<String>() {
                Verdict::Lowered(text)
            } else {
                match v.extract::<i64>()? {
                    0 => Verdict::Safe,
                    2 => Verdict::Unsafe,
                    _ => Verdict::Check,
                }
            };
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
            let state = ev.state(&core.h)?;
            let ok: bool = core.h.check.bind(py).call1((*key, state))?.extract()?;
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
    ev: &mut Ev<'_, '_>,
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
    ev: &mut Ev<'_, '_>,
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
    ev: &mut Ev<'_, '_>,
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
    ev: &mut Ev<'_, '_>,
    root: Option<&Node>,
    py_fn: usize,
    v: &'a V<'a>,
) -> Res<R<'a>> {
    let root = root.filter(|r| !matches!(r, Node::Skip));
    let run = |core: &Core, caches: &mut Caches, ev: &mut Ev<'_, '_>, v: &'a V<'a>| -> Res<R<'a>> {
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
    m.add_function(wrap_pyfunction!(format_float, m)?)?;
    m.add_function(wrap_pyfunction!(roundtrip, m)?)?;
    Ok(())
}
