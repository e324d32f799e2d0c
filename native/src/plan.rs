//! The plan's field trees (`docs/plan.md`) compiled into the nodes the native engine walks.
//!
//! A node the native engine does not execute itself becomes `Node::Py`: the Python engine's own
//! function for that node, called on that value only.

use serde_json::Value as J;
// aHash: several times faster than SipHash on short keys, and keyed per process like it (the
// keys are log text, which a hostile input chooses).
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

pub type Needs = Vec<(String, Vec<J>)>;

pub enum Node {
    Skip,
    Copy,
    Drop,
    /// The Python engine's function for the node (index into the engine's functions); `memo`:
    /// its result depends on the value alone, so it is cached per string or integer; `leaves`:
    /// applied to every scalar under the value (`_map_leaves`), so that null, an empty string,
    /// an empty object or list pass as they are, without a call.
    Py {
        id: usize,
        memo: bool,
        leaves: bool,
    },
    /// An operator run natively where it can decide; else `py`, its Python function.
    Native {
        op: crate::ops::Native,
        py: usize,
    },
    /// `scrub_text`: its text-only part (`part`, the Python function's memoized detectors and
    /// roster) cached here per text, and the event's actors searched here; `py`, the whole Python
    /// function, where the actors' step has something to replace or is not a plain search.
    /// `actors`: the operator replaces the event's usernames; `chars`: the longest text cached.
    Text {
        py: usize,
        part: usize,
        actors: bool,
        chars: usize,
        leaves: bool,
    },
    Container(Box<Cont>),
    DecodeJson(Box<Node>),
    Payload {
        root: Option<Box<Node>>,
        py: usize,
    },
    EmptyPayload,
}

pub struct Cont {
    pub path: String,
    /// Named keys and their rules (a key ruled by cases is `Copy` here: its cases ran first).
    pub named: HashMap<String, Node>,
    pub conds: Vec<(String, Needs)>,
    pub cases: Vec<(String, Vec<(Needs, Node)>)>,
    pub items: HashMap<usize, Node>,
    /// The wildcard: None when there is none; Some(Skip) drops uncounted.
    pub any: Option<Node>,
    pub own: Option<Node>,
}

/// Asks the Python side for the function of a node (as plan JSON).
pub trait PyNodes {
    fn function(&mut self, node: &J) -> Result<usize, String>;
    /// The native form of the operator of the node last given to `function`, if it has one.
    fn native(&mut self) -> Option<J>;
    /// The helper function the Python side gave with the node last given to `function`, if any.
    fn helper(&mut self) -> Option<usize>;
}

fn scalar_only(needs: &Needs) -> bool {
    needs
        .iter()
        .all(|(_, vals)| vals.iter().all(|v| !(v.is_array() || v.is_object())))
}

fn needs_of(when: &J) -> Option<Needs> {
    let obj = when.as_object()?;
    Some(
        obj.iter()
            .map(|(k, v)| (k.clone(), v.as_array().cloned().unwrap_or_default()))
            .collect(),
    )
}

pub fn compile(node: &J, py: &mut dyn PyNodes) -> Result<Node, String> {
    let kind = node
        .get("node")
        .and_then(J::as_str)
        .ok_or("a node without a type")?;
    match kind {
        "skip" => Ok(Node::Skip),
        "op" => {
            let op = node.get("op").and_then(J::as_str).unwrap_or("");
            let apply = node.get("apply").and_then(J::as_str).unwrap_or("");
            if apply == "copy" {
                return Ok(Node::Copy);
            }
            if op == "drop" && apply == "value" {
                return Ok(Node::Drop);
            }
            let memo = node.get("memo").and_then(J::as_bool).unwrap_or(false) && apply == "leaves";
            let id = py.function(node)?;
            let spec = py.native();
            let helper = py.helper();
            if let (Some(spec), Some(part)) = (&spec, helper) {
                if spec.get("op").and_then(J::as_str) == Some("scrub_text") {
                    return Ok(Node::Text {
                        py: id,
                        part,
                        actors: spec.get("actors").and_then(J::as_bool).unwrap_or(true),
                        chars: spec.get("chars").and_then(J::as_u64).unwrap_or(0) as usize,
                        leaves: apply == "leaves",
                    });
                }
            }
            if let Some(native) = spec.as_ref().and_then(crate::ops::from_spec) {
                return Ok(Node::Native { op: native, py: id });
            }
            Ok(Node::Py {
                id,
                memo,
                leaves: apply == "leaves",
            })
        }
        "decode" => {
            if node.get("encoding").and_then(J::as_str) == Some("json") {
                let inner = compile(node.get("value").ok_or("decode without value")?, py)?;
                Ok(Node::DecodeJson(Box::new(inner)))
            } else {
                Ok(Node::Py {
                    id: py.function(node)?,
                    memo: false,
                    leaves: false,
                })
            }
        }
        "payload" => {
            let root = match node.get("value") {
                Some(v) if !v.is_null() => Some(Box::new(compile(v, py)?)),
                _ => None,
            };
            Ok(Node::Payload {
                root,
                py: py.function(node)?,
            })
        }
        "empty_payload" => Ok(Node::EmptyPayload),
        "container" => compile_container(node, py),
        other => Err(format!("unknown node type {other:?}")),
    }
}

fn compile_container(node: &J, py: &mut dyn PyNodes) -> Result<Node, String> {
    let path = node
        .get("path")
        .and_then(J::as_str)
        .unwrap_or("")
        .to_string();
    let mut named = HashMap::default();
    let mut conds = Vec::new();
    let mut cases = Vec::new();
    let empty = vec![];
    for k in node.get("keys").and_then(J::as_array).unwrap_or(&empty) {
        let key = k
            .get("key")
            .and_then(J::as_str)
            .ok_or("a key without a name")?
            .to_string();
        let rule = k.get("rule").ok_or("a key without a rule")?;
        let when = k.get("when").filter(|w| !w.is_null());
        if rule.get("node").and_then(J::as_str) == Some("cases") {
            if when.is_some() {
                return python_node(node, py); // both: left to the Python engine
            }
            let mut options = Vec::new();
            for case in rule.get("cases").and_then(J::as_array).unwrap_or(&empty) {
                let needs = case
                    .get("when")
                    .filter(|w| !w.is_null())
                    .and_then(needs_of)
                    .unwrap_or_default();
                if !scalar_only(&needs) {
                    return python_node(node, py);
                }
                options.push((
                    needs,
                    compile(case.get("rule").ok_or("a case without a rule")?, py)?,
                ));
            }
            cases.push((key.clone(), options));
            named.insert(key, Node::Copy);
            continue;
        }
        if let Some(w) = when {
            let needs = needs_of(w).ok_or("a condition that is not an object")?;
            if !scalar_only(&needs) {
                return python_node(node, py);
            }
            conds.push((key.clone(), needs));
        }
        named.insert(key, compile(rule, py)?);
    }
    let mut items = HashMap::default();
    for it in node.get("items").and_then(J::as_array).unwrap_or(&empty) {
        let index = it
            .get("index")
            .and_then(J::as_u64)
            .ok_or("an item without an index")? as usize;
        items.insert(
            index,
            compile(it.get("rule").ok_or("an item without a rule")?, py)?,
        );
    }
    let any = match node.get("any") {
        Some(v) if !v.is_null() => Some(compile(v, py)?),
        _ => None,
    };
    // An own rule that skips is no own rule (the Python engine builds it as None).
    let own = match node.get("own") {
        Some(v) if !v.is_null() => Some(compile(v, py)?).filter(|n| !matches!(n, Node::Skip)),
        _ => None,
    };
    Ok(Node::Container(Box::new(Cont {
        path,
        named,
        conds,
        cases,
        items,
        any,
        own,
    })))
}

fn python_node(node: &J, py: &mut dyn PyNodes) -> Result<Node, String> {
    Ok(Node::Py {
        id: py.function(node)?,
        memo: false,
        leaves: false,
    })
}
