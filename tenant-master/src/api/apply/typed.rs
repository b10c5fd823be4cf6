//! The structured-merge-diff view of a type: what is a leaf (scalars and atomic lists, maps and
//! structs), a struct with declared fields, a granular map, or an associative list (by key
//! fields, or a set of scalars).
//!
//! Built-in kinds take this from [`crate::schema`], mapping the markers the way kube-openapi's
//! `schemaconv` maps the OpenAPI extensions: `+listType` first, then a `merge` patch strategy
//! with a merge key (associative by that key) or without one (a set), every other list atomic;
//! `+mapType`/`+structType=atomic` make maps and structs leaves. Custom resources bring their
//! own types ([`Custom`], built from a CRD version's schema by `crate::apiextensions`). Values
//! without a schema (raw JSON fields, unknown fields kept by `x-kubernetes-preserve-unknown-fields`)
//! use upstream's deduced type: lists atomic, maps granular.

use std::collections::BTreeMap;

use serde_json::Value;

use super::fieldset::PathElement;
use crate::schema::{Card, Field, Special, Ty, SCHEMA};

/// A structured-merge type given by an OpenAPI schema (a custom resource), as kube-openapi's
/// `schemaconv` makes one of a CRD's structural schema.
#[derive(Clone, Debug)]
pub enum Custom {
    /// A scalar (`"string"`, `"numeric"`, `"boolean"`; None: any scalar, as
    /// `x-kubernetes-int-or-string`), or an atomic list, map or struct: owned as a whole.
    Leaf(Option<&'static str>),
    /// An object with declared properties; `preserve_unknown` keeps other keys (deduced type).
    Struct { fields: BTreeMap<String, Custom>, preserve_unknown: bool },
    /// An object with arbitrary keys whose values have one type (`additionalProperties`).
    Map(Box<Custom>),
    /// An associative list: by key fields (`x-kubernetes-list-type: map`), or a set of scalars
    /// (`set`, keys None).
    List { elem: Box<Custom>, keys: Option<Vec<String>> },
    /// A built-in type (the `metadata` of a resource: ObjectMeta).
    Builtin(TypeRef<'static>),
    /// No schema: upstream's deduced type.
    Deduced,
}

/// What a value is expected to be.
#[derive(Clone, Copy, Debug)]
pub enum TypeRef<'a> {
    /// A message of the built-in schema.
    Message(usize),
    /// The whole value of a field (a list or map for repeated and map fields).
    Field(&'static Field),
    /// One element of a field (the field's type without its cardinality).
    Elem(&'static Field),
    /// A plain scalar.
    Scalar,
    /// No schema: upstream's deduced type.
    Deduced,
    /// A custom type.
    Custom(&'a Custom),
}

/// A struct: a message of the built-in schema or a custom struct.
#[derive(Clone, Copy, Debug)]
pub enum StructRef<'a> {
    Message(usize),
    Custom { fields: &'a BTreeMap<String, Custom>, preserve_unknown: bool },
}

/// How a value is walked.
#[derive(Clone, Copy, Debug)]
pub enum Atom<'a> {
    /// Owned and replaced as a whole: scalars and atomic lists, maps and structs.
    Leaf,
    /// A struct with declared fields.
    Struct(StructRef<'a>),
    /// A map with arbitrary keys whose values have one type.
    Map(TypeRef<'a>),
    /// An associative list: by key fields, or a set of scalars when `keys` is None.
    List { elem: TypeRef<'a>, keys: Option<&'a [String]> },
}

impl Atom<'_> {
    /// Whether keys the struct does not declare are errors in an applied configuration.
    fn closed_struct(&self) -> bool {
        matches!(self, Atom::Struct(StructRef::Message(_)) | Atom::Struct(StructRef::Custom { preserve_unknown: false, .. }))
    }
}

/// The type of a top-level object of a built-in kind, or [`TypeRef::Deduced`].
pub fn for_kind(api_version: &str, kind: &str) -> TypeRef<'static> {
    SCHEMA.kind(api_version, kind).map(TypeRef::Message).unwrap_or(TypeRef::Deduced)
}

fn is_atomic(v: &Option<String>) -> bool {
    v.as_deref() == Some("atomic")
}

/// Resolves a type for the given values (one or two sides; deduced types follow their shape).
pub fn resolve<'a>(tr: TypeRef<'a>, values: &[Option<&Value>]) -> Atom<'a> {
    match tr {
        TypeRef::Custom(c) => match c {
            Custom::Leaf(_) => Atom::Leaf,
            Custom::Struct { fields, preserve_unknown } => Atom::Struct(StructRef::Custom { fields, preserve_unknown: *preserve_unknown }),
            Custom::Map(e) => Atom::Map(TypeRef::Custom(e)),
            Custom::List { elem, keys } => Atom::List { elem: TypeRef::Custom(elem), keys: keys.as_deref() },
            Custom::Builtin(t) => resolve(*t, values),
            Custom::Deduced => resolve(TypeRef::Deduced, values),
        },
        TypeRef::Scalar => Atom::Leaf,
        TypeRef::Deduced => {
            let present: Vec<&Value> = values.iter().flatten().copied().filter(|v| !v.is_null()).collect();
            if !present.is_empty() && present.iter().all(|v| v.is_object()) {
                Atom::Map(TypeRef::Deduced)
            } else {
                Atom::Leaf
            }
        }
        TypeRef::Message(m) => {
            let msg = &SCHEMA.messages[m];
            match msg.special {
                Special::None => {
                    if is_atomic(&msg.markers.struct_type) || is_atomic(&msg.markers.map_type) {
                        Atom::Leaf
                    } else {
                        Atom::Struct(StructRef::Message(m))
                    }
                }
                Special::RawJson | Special::OrArray | Special::OrBool | Special::OrStringArray => resolve(TypeRef::Deduced, values),
                _ => Atom::Leaf,
            }
        }
        TypeRef::Elem(f) => match f.ty {
            Ty::Message(m) => resolve(TypeRef::Message(m), values),
            _ => Atom::Leaf,
        },
        TypeRef::Field(f) => {
            let mk = &f.markers;
            match f.card {
                Card::Repeated => match mk.list_type.as_deref() {
                    Some("set") => Atom::List { elem: TypeRef::Elem(f), keys: None },
                    Some("map") => Atom::List { elem: TypeRef::Elem(f), keys: Some(&mk.list_map_keys) },
                    Some(_) => Atom::Leaf,
                    None if mk.has_strategy("merge") => match &mk.merge_key {
                        Some(k) => Atom::List { elem: TypeRef::Elem(f), keys: Some(std::slice::from_ref(k)) },
                        None => Atom::List { elem: TypeRef::Elem(f), keys: None },
                    },
                    None => Atom::Leaf,
                },
                Card::Map => {
                    if is_atomic(&mk.map_type) {
                        Atom::Leaf
                    } else {
                        Atom::Map(TypeRef::Elem(f))
                    }
                }
                _ => {
                    if is_atomic(&mk.struct_type) || is_atomic(&mk.map_type) {
                        Atom::Leaf
                    } else {
                        resolve(TypeRef::Elem(f), values)
                    }
                }
            }
        }
    }
}

/// The type of a struct field; `None` when the struct does not declare it.
pub fn struct_field(msg: usize, name: &str) -> Option<TypeRef<'static>> {
    SCHEMA.field(msg, name).map(TypeRef::Field)
}

/// The type of the value under `key` of a struct or map atom (deduced for undeclared fields),
/// and whether the key is a declared struct field.
pub fn child_type<'a>(atom: Atom<'a>, key: &str) -> (TypeRef<'a>, bool) {
    match atom {
        Atom::Struct(StructRef::Message(m)) => match struct_field(m, key) {
            Some(t) => (t, true),
            // Type meta is not in the (protobuf-derived) schema: every kind has it.
            None if key == "apiVersion" || key == "kind" => (TypeRef::Scalar, true),
            None => (TypeRef::Deduced, false),
        },
        Atom::Struct(StructRef::Custom { fields, .. }) => match fields.get(key) {
            Some(c) => (TypeRef::Custom(c), true),
            None => (TypeRef::Deduced, false),
        },
        Atom::Map(elem) => (elem, false),
        _ => (TypeRef::Deduced, false),
    }
}

/// Defaults of list-map key fields, as the OpenAPI schema gives them (`protocol` of ports).
fn key_default(name: &str) -> Option<Value> {
    (name == "protocol").then(|| Value::String("TCP".into()))
}

/// The path element of one item of an associative list (upstream `listItemToPathElement`).
pub fn list_item_element(keys: Option<&[String]>, item: &Value) -> Result<PathElement, String> {
    match keys {
        Some(keys) if !keys.is_empty() => {
            let Value::Object(m) = item else {
                return Err("associative list with keys has an element that is not a map type".into());
            };
            let mut fields = Vec::with_capacity(keys.len());
            for k in keys {
                match m.get(k).filter(|v| !v.is_null()).cloned().or_else(|| key_default(k)) {
                    Some(v) => fields.push((k.clone(), v)),
                    None => {
                        return Err(format!(
                            "associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"
                        ))
                    }
                }
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        _ => match item {
            Value::Object(_) => Err("associative list without keys has an element that's a map type".into()),
            Value::Array(_) => Err("associative list without keys has an element that's a list type".into()),
            v => Ok(PathElement::Value(v.clone())),
        },
    }
}

fn scalar_kind(f: &Field) -> Option<&'static str> {
    match f.ty {
        Ty::String | Ty::Bytes => Some("string"),
        Ty::Int32 | Ty::Int64 | Ty::Double => Some("numeric"),
        Ty::Bool => Some("boolean"),
        Ty::Message(_) => None,
    }
}

/// Checks an applied configuration against the type, as upstream's typed conversion of the patch
/// object does: undeclared fields, wrong shapes, bad or duplicate list keys. Messages are
/// `<path>: <problem>` lines.
pub fn validate(v: &Value, tr: TypeRef, path: &mut Vec<PathElement>, errs: &mut Vec<String>) {
    if v.is_null() {
        return;
    }
    let at = |path: &Vec<PathElement>, msg: String| format!("{}: {msg}", super::fieldset::path_string(path));
    if let TypeRef::Custom(Custom::Leaf(Some(kind))) = tr {
        let ok = match *kind {
            "string" => v.is_string(),
            "numeric" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => !v.is_object() && !v.is_array(),
        };
        if !ok {
            let shown = if *kind == "numeric" { "numeric (int or float)" } else { kind };
            errs.push(at(path, format!("expected {shown}, got {}", kind_of(v))));
        }
        return;
    }
    if let TypeRef::Field(f) | TypeRef::Elem(f) = tr {
        if f.card != Card::Repeated && f.card != Card::Map || matches!(tr, TypeRef::Elem(_)) {
            if let Some(kind) = scalar_kind(f) {
                let ok = match kind {
                    "string" => v.is_string(),
                    "numeric" => v.is_number(),
                    _ => v.is_boolean(),
                };
                if !ok {
                    let shown = match kind {
                        "numeric" => "numeric (int or float)",
                        k => k,
                    };
                    errs.push(at(path, format!("expected {shown}, got {}", kind_of(v))));
                }
                return;
            }
        }
    }
    match resolve(tr, &[Some(v)]) {
        Atom::Leaf => {
            if let TypeRef::Field(f) = tr {
                if f.card == Card::Repeated && !v.is_array() {
                    errs.push(at(path, format!("expected list, got {}", kind_of(v))));
                }
            }
        }
        atom @ (Atom::Struct(_) | Atom::Map(_)) => {
            let Value::Object(m) = v else {
                errs.push(at(path, format!("expected map, got {}", kind_of(v))));
                return;
            };
            for (k, child) in m {
                let (ct, declared) = child_type(atom, k);
                path.push(PathElement::Field(k.clone()));
                if atom.closed_struct() && !declared {
                    errs.push(at(path, "field not declared in schema".into()));
                } else {
                    validate(child, ct, path, errs);
                }
                path.pop();
            }
        }
        Atom::List { elem, keys } => {
            let Value::Array(items) = v else {
                errs.push(at(path, format!("expected list, got {}", kind_of(v))));
                return;
            };
            let mut seen: Vec<PathElement> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match list_item_element(keys, item) {
                    Err(e) => errs.push(at(path, format!("element {i}: {e}"))),
                    Ok(pe) => {
                        if seen.contains(&pe) {
                            errs.push(at(path, format!("duplicate entries for key {pe}")));
                        }
                        path.push(pe.clone());
                        validate(item, elem, path, errs);
                        path.pop();
                        seen.push(pe);
                    }
                }
            }
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_markers_map_to_atoms() {
        let TypeRef::Message(dep) = for_kind("apps/v1", "Deployment") else { panic!() };
        assert!(matches!(resolve(TypeRef::Message(dep), &[]), Atom::Struct(_)));
        let spec = struct_field(dep, "spec").unwrap();
        let Atom::Struct(StructRef::Message(spec_m)) = resolve(spec, &[]) else { panic!() };
        // LabelSelector is +structType=atomic.
        assert!(matches!(resolve(struct_field(spec_m, "selector").unwrap(), &[]), Atom::Leaf));
        let pod_spec = SCHEMA.by_name("core.v1.PodSpec").unwrap();
        match resolve(struct_field(pod_spec, "containers").unwrap(), &[]) {
            Atom::List { keys: Some(k), .. } => assert_eq!(k, ["name".to_string()]),
            other => panic!("{other:?}"),
        }
        let meta = SCHEMA.by_name("meta.v1.ObjectMeta").unwrap();
        assert!(matches!(resolve(struct_field(meta, "labels").unwrap(), &[]), Atom::Map(_)));
        assert!(matches!(resolve(struct_field(meta, "finalizers").unwrap(), &[]), Atom::List { keys: None, .. }));
        // Container.args has no list markers: atomic.
        let c = SCHEMA.by_name("core.v1.Container").unwrap();
        assert!(matches!(resolve(struct_field(c, "args").unwrap(), &[]), Atom::Leaf));
        assert!(matches!(resolve(TypeRef::Deduced, &[Some(&json!({"a": 1}))]), Atom::Map(_)));
        assert!(matches!(resolve(TypeRef::Deduced, &[Some(&json!([1]))]), Atom::Leaf));
    }

    #[test]
    fn list_keys_with_defaults_and_errors() {
        let keys: &'static [String] = Box::leak(Box::new(["containerPort".to_string(), "protocol".to_string()]));
        let pe = list_item_element(Some(keys), &json!({"containerPort": 80})).unwrap();
        assert_eq!(pe.to_key(), r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        let name: &'static [String] = Box::leak(Box::new(["name".to_string()]));
        let e = list_item_element(Some(name), &json!({"image": "x"})).unwrap_err();
        assert!(e.contains("omits key field \"name\""), "{e}");
        assert!(matches!(list_item_element(None, &json!("a")), Ok(PathElement::Value(_))));
    }

    #[test]
    fn validation_reports_like_upstream() {
        let tr = for_kind("apps/v1", "Deployment");
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"replicas": "three", "foo": 1, "template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}, {"image": "i"}]}}}});
        let mut errs = Vec::new();
        validate(&cfg, tr, &mut Vec::new(), &mut errs);
        assert!(errs.contains(&".spec.replicas: expected numeric (int or float), got string".to_string()), "{errs:?}");
        assert!(errs.contains(&".spec.foo: field not declared in schema".to_string()), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("duplicate entries for key [name=\"a\"]")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("element 2: associative list with keys")), "{errs:?}");
    }
}
