//! Local references in a schema: following them, finding cycles (recursive schemas), and
//! telling exclusive `oneOf` branches apart.

use serde_json::{Map, Value};

/// How many references are followed in a row before giving up (a chain of aliases).
const MAX_HOPS: usize = 16;

/// The definition a local reference names: `#` (the root), `#/$defs/<name>` or
/// `#/definitions/<name>`. Other references are not followed.
fn target<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    if reference == "#" {
        return Some(root);
    }
    let rest = reference.strip_prefix("#/")?;
    let (group, name) = rest.split_once('/')?;
    if group != "$defs" && group != "definitions" || name.contains('/') {
        return None;
    }
    let name = name.replace("~1", "/").replace("~0", "~");
    root.get(group)?.get(name.as_str())
}

/// `v`, or what its `$ref` (and the references that one makes) lead to.
fn resolve<'a>(mut v: &'a Value, root: &'a Value) -> Option<&'a Value> {
    for _ in 0..MAX_HOPS {
        match v.get("$ref").and_then(Value::as_str) {
            None => return Some(v),
            Some(r) => v = target(root, r)?,
        }
    }
    None
}

/// Every `$ref` string inside `v`, not looking into the definitions `skip_defs` says to skip
/// (the root's own, which are reached through the references).
fn refs<'a>(v: &'a Value, skip_defs: bool, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if skip_defs && (k == "$defs" || k == "definitions") {
                    continue;
                }
                if k == "$ref" {
                    out.extend(child.as_str());
                } else if !matches!(k.as_str(), "enum" | "const" | "default" | "examples") {
                    refs(child, false, out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                refs(item, false, out);
            }
        }
        _ => {}
    }
}

/// Whether the schema refers to itself through its local references (a tree, a linked list).
pub(crate) fn is_recursive(root: &Value) -> bool {
    // Depth-first over the references, with the chain of definitions being visited.
    fn visit<'a>(root: &'a Value, reference: &'a str, chain: &mut Vec<&'a str>) -> bool {
        if chain.contains(&reference) {
            return true;
        }
        let Some(def) = target(root, reference) else {
            return false;
        };
        chain.push(reference);
        let mut inner = Vec::new();
        refs(def, reference == "#", &mut inner);
        let found = inner.into_iter().any(|r| visit(root, r, chain));
        chain.pop();
        found
    }
    let mut start = Vec::new();
    refs(root, true, &mut start);
    let mut chain = vec!["#"];
    start.into_iter().any(|r| visit(root, r, &mut chain))
}

/// Whether no value can match two of `branches`: each has one distinct `type` (`integer`
/// and `number` overlap), or each is an object requiring a common property whose `const` (or
/// one-value `enum`) differs between them. Local references are followed.
pub(crate) fn exclusive(branches: &[Value], root: &Value) -> bool {
    let Some(resolved) = branches
        .iter()
        .map(|b| resolve(b, root).and_then(Value::as_object))
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    by_type(&resolved) || by_tag(&resolved)
}

fn by_type(branches: &[&Map<String, Value>]) -> bool {
    let mut seen: Vec<&str> = Vec::with_capacity(branches.len());
    for b in branches {
        let Some(t) = b.get("type").and_then(Value::as_str) else {
            return false;
        };
        let clash = seen
            .iter()
            .any(|s| *s == t || matches!((*s, t), ("integer", "number") | ("number", "integer")));
        if clash {
            return false;
        }
        seen.push(t);
    }
    true
}

/// The one value property `name` of an object branch may take, when it is required.
fn tag<'a>(b: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let required = b
        .get("required")?
        .as_array()?
        .iter()
        .any(|r| r.as_str() == Some(name));
    if !required {
        return None;
    }
    let prop = b.get("properties")?.get(name)?;
    if let Some(c) = prop.get("const") {
        return Some(c);
    }
    match prop.get("enum")?.as_array()?.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

fn by_tag(branches: &[&Map<String, Value>]) -> bool {
    let Some(first) = branches.first() else {
        return true;
    };
    let Some(names) = first.get("required").and_then(Value::as_array) else {
        return false;
    };
    names.iter().filter_map(Value::as_str).any(|name| {
        let mut values: Vec<&Value> = Vec::with_capacity(branches.len());
        for b in branches {
            match tag(b, name) {
                Some(v) if !values.contains(&v) => values.push(v),
                _ => return false,
            }
        }
        true
    })
}

/// Renames the root's `definitions` to `$defs` (Gemini reads only `$defs`), and the
/// references into it.
pub(crate) fn definitions_to_defs(root: &mut Value) {
    fn rewrite(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    if k == "$ref" {
                        if let Some(name) = child
                            .as_str()
                            .and_then(|r| r.strip_prefix("#/definitions/"))
                        {
                            *child = Value::String(format!("#/$defs/{name}"));
                        }
                    } else {
                        rewrite(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(rewrite),
            _ => {}
        }
    }
    let Some(m) = root.as_object_mut() else {
        return;
    };
    if m.contains_key("$defs") {
        return;
    }
    let Some(defs) = m.remove("definitions") else {
        return;
    };
    m.insert("$defs".into(), defs);
    rewrite(root);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recursion_is_found_through_definitions() {
        let tree = json!({"type": "object", "properties": {"root": {"$ref": "#/$defs/node"}},
            "$defs": {"node": {"type": "object", "properties": {
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}});
        assert!(is_recursive(&tree));
        let self_ref = json!({"type": "object", "properties": {"next": {"$ref": "#"}}});
        assert!(is_recursive(&self_ref));
        let shared = json!({"type": "object", "properties": {
                "a": {"$ref": "#/definitions/x"}, "b": {"$ref": "#/definitions/x"}},
            "definitions": {"x": {"type": "string"}, "unused": {"$ref": "#/definitions/unused"}}});
        assert!(!is_recursive(&shared));
    }

    #[test]
    fn exclusive_branches() {
        let root = json!({"$defs": {
            "cat": {"type": "object", "required": ["kind"], "properties": {"kind": {"const": "cat"}}},
            "dog": {"type": "object", "required": ["kind"], "properties": {"kind": {"enum": ["dog"]}}}}});
        assert!(exclusive(
            &[
                json!({"$ref": "#/$defs/cat"}),
                json!({"$ref": "#/$defs/dog"})
            ],
            &root
        ));
        assert!(exclusive(
            &[json!({"type": "string"}), json!({"type": "null"})],
            &root
        ));
        assert!(!exclusive(
            &[json!({"type": "integer"}), json!({"type": "number"})],
            &root
        ));
        assert!(!exclusive(
            &[json!({"type": "object"}), json!({"type": "object"})],
            &root
        ));
        assert!(!exclusive(&[json!({"$ref": "#/$defs/missing"})], &root));
    }

    #[test]
    fn definitions_become_defs() {
        let mut v = json!({"definitions": {"a": {"type": "string"}},
            "properties": {"x": {"$ref": "#/definitions/a"}}});
        definitions_to_defs(&mut v);
        assert_eq!(
            v,
            json!({"$defs": {"a": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/a"}}})
        );
    }
}
