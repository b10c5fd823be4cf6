//! Structural-schema checks, as upstream's `schema.NewStructural` (unsupported fields) and
//! `schema.ValidateStructural` (invariants and completeness), with its messages and paths.

use super::node::{AdditionalProperties, Node};
use super::path::{child, index, key};
use crate::api::status::FieldError;

/// The first field `NewStructural` refuses, as its error text (None if it converts).
pub fn unsupported(n: &Node) -> Option<String> {
    let u = &n.unsupported;
    let found = if u.id {
        Some("OpenAPIV3Schema 'id' is not supported")
    } else if u.schema {
        Some("OpenAPIV3Schema 'schema' is not supported")
    } else if u.ref_ {
        Some("OpenAPIV3Schema '$ref' is not supported")
    } else if u.pattern_properties.is_some() {
        Some("OpenAPIV3Schema 'patternProperties' is not supported")
    } else if u.dependencies.as_ref().is_some_and(|d| !d.is_empty()) {
        Some("OpenAPIV3Schema 'dependencies' is not supported")
    } else if u.additional_items.is_some() {
        Some("OpenAPIV3Schema 'additionalItems' is not supported")
    } else if u.definitions.is_some() {
        Some("OpenAPIV3Schema 'definitions' is not supported")
    } else {
        None
    };
    if let Some(m) = found {
        return Some(m.to_string());
    }
    let nested = n.not.iter().map(|b| &**b).chain(n.all_of.iter()).chain(n.any_of.iter()).chain(n.one_of.iter());
    for x in nested {
        if let Some(m) = unsupported_nested(x) {
            return Some(m);
        }
    }
    if let Some(AdditionalProperties::Schema(s)) = &n.additional_properties {
        if let Some(m) = unsupported(s) {
            return Some(m);
        }
    }
    if u.preserve_false {
        return Some("internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined".into());
    }
    if u.items_array.is_some() {
        return Some("OpenAPIV3Schema 'items' must be a schema, but is an array".into());
    }
    if let Some(items) = &n.items {
        if let Some(m) = unsupported(items) {
            return Some(m);
        }
    }
    n.properties.values().find_map(unsupported)
}

fn unsupported_nested(n: &Node) -> Option<String> {
    // Nested value validations convert with the same checks.
    unsupported(n)
}

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

/// `ValidateStructural`: the invariants of a structural schema, errors sorted as upstream.
pub fn validate_structural(path: &str, s: &Node) -> Vec<FieldError> {
    let mut errs = Vec::new();
    invariants(s, Level::Root, path, &mut errs);
    completeness_vv(s, s, path, path, &mut errs);
    errs.sort_by_key(|e| format!("{}: {}", e.field, e.body()));
    errs
}

fn is_int_or_string_any_of(any_of: &[Node]) -> bool {
    any_of.len() == 2 && any_of[0].bare_type.as_deref() == Some("integer") && any_of[1].bare_type.as_deref() == Some("string")
}

fn invariants(s: &Node, lvl: Level, p: &str, errs: &mut Vec<FieldError>) {
    if s.ty == "array" && s.items.is_none() {
        errs.push(FieldError::required(child(p, "items"), "must be specified"));
    }
    if let Some(items) = &s.items {
        invariants(items, Level::Item, &child(p, "items"), errs);
    }
    for (k, v) in &s.properties {
        invariants(v, Level::Field, &key(&child(p, "properties"), k), errs);
    }
    if let Some(ap) = &s.additional_properties {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(child(p, "additionalProperties"), "must not be used at the root"));
        }
        if let AdditionalProperties::Schema(a) = ap {
            invariants(a, Level::Field, &child(p, "additionalProperties"), errs);
        }
    }
    if s.int_or_string && s.preserve_unknown_fields {
        errs.push(FieldError::invalid(child(p, "x-kubernetes-preserve-unknown-fields"), true, "must be false if x-kubernetes-int-or-string is true"));
    }
    if s.int_or_string && s.embedded_resource {
        errs.push(FieldError::invalid(child(p, "x-kubernetes-embedded-resource"), true, "must be false if x-kubernetes-int-or-string is true"));
    }
    let skip_any_of = is_int_or_string_any_of(&s.any_of);
    let skip_first_all_of_any_of = s.all_of.first().is_some_and(|a| is_int_or_string_any_of(&a.any_of));
    value_validation(s, skip_any_of, skip_first_all_of_any_of, p, errs);

    let check_metadata = lvl == Level::Root || s.embedded_resource;
    if s.embedded_resource && s.ty != "object" {
        if s.ty.is_empty() {
            errs.push(FieldError::required(child(p, "type"), "must be object if x-kubernetes-embedded-resource is true"));
        } else {
            errs.push(FieldError::invalid(child(p, "type"), s.ty.as_str(), "must be object if x-kubernetes-embedded-resource is true"));
        }
    } else if s.ty.is_empty() && !s.int_or_string && !s.preserve_unknown_fields {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(child(p, "type"), detail));
    }
    if s.embedded_resource && s.additional_properties.is_some() {
        errs.push(FieldError::forbidden(child(p, "additionalProperties"), "must not be used if x-kubernetes-embedded-resource is set"));
    }
    if lvl == Level::Root && !s.ty.is_empty() && s.ty != "object" {
        errs.push(FieldError::invalid(child(p, "type"), s.ty.as_str(), "must be object at the root"));
    }
    for field in ["kind", "apiVersion"] {
        if let Some(f) = s.properties.get(field) {
            if check_metadata && f.ty != "string" {
                errs.push(FieldError::invalid(child(&key(&child(p, "properties"), field), "type"), f.ty.as_str(), "must be string"));
            }
        }
    }
    if let Some(md) = s.properties.get("metadata") {
        metadata_invariants(md, check_metadata, lvl, &key(&child(p, "properties"), "metadata"), errs);
    }
    if s.embedded_resource && !s.preserve_unknown_fields && s.properties.is_empty() {
        errs.push(FieldError::required(
            child(p, "properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

fn metadata_invariants(s: &Node, check_metadata: bool, lvl: Level, p: &str, errs: &mut Vec<FieldError>) {
    if check_metadata && s.ty != "object" {
        errs.push(FieldError::invalid(child(p, "type"), s.ty.as_str(), "must be object"));
    }
    if lvl == Level::Root {
        // Only name and generateName may be restricted; type and default are ignored here.
        let props_ok = s.properties.keys().all(|k| k == "name" || k == "generateName");
        let empty = props_ok
            && s.items.is_none()
            && s.additional_properties.is_none()
            && s.title.is_empty()
            && s.description.is_empty()
            && !s.nullable
            && !s.has_extensions()
            && !s.has_value_validation();
        if !empty {
            errs.push(FieldError::forbidden(p, "must not specify anything other than name and generateName, but metadata is implicitly specified"));
        }
    }
}

fn value_validation(v: &Node, skip_any_of: bool, skip_first_all_of_any_of: bool, p: &str, errs: &mut Vec<FieldError>) {
    if !skip_any_of {
        for (i, a) in v.any_of.iter().enumerate() {
            nested(a, false, &index(&child(p, "anyOf"), i), errs);
        }
    }
    for (i, a) in v.all_of.iter().enumerate() {
        nested(a, skip_first_all_of_any_of && i == 0, &index(&child(p, "allOf"), i), errs);
    }
    for (i, a) in v.one_of.iter().enumerate() {
        nested(a, false, &index(&child(p, "oneOf"), i), errs);
    }
    if let Some(not) = &v.not {
        nested(not, false, &child(p, "not"), errs);
    }
    if !v.pattern.is_empty() {
        if let Err(e) = regex::Regex::new(&v.pattern) {
            let msg = e.to_string().lines().last().unwrap_or("").trim().to_string();
            errs.push(FieldError::invalid(
                child(p, "pattern"),
                v.pattern.as_str(),
                format!("must be a valid regular expression, but isn't: error parsing regexp: {msg}: `{}`", v.pattern),
            ));
        }
    }
}

fn nested(v: &Node, skip_any_of: bool, p: &str, errs: &mut Vec<FieldError>) {
    value_validation(v, skip_any_of, false, p, errs);
    if let Some(items) = &v.items {
        nested(items, false, &child(p, "items"), errs);
    }
    for (k, f) in &v.properties {
        nested(f, false, &key(&child(p, "properties"), k), errs);
    }
    let forbid = |errs: &mut Vec<FieldError>, f: &str, d: &str| errs.push(FieldError::forbidden(child(p, f), d));
    if !v.ty.is_empty() {
        forbid(errs, "type", "must be empty to be structural");
    }
    if v.additional_properties.is_some() {
        forbid(errs, "additionalProperties", "must be undefined to be structural");
    }
    if v.default.is_some() {
        forbid(errs, "default", "must be undefined to be structural");
    }
    if !v.title.is_empty() {
        forbid(errs, "title", "must be empty to be structural");
    }
    if !v.description.is_empty() {
        forbid(errs, "description", "must be empty to be structural");
    }
    if v.nullable {
        forbid(errs, "nullable", "must be false to be structural");
    }
    if v.unsupported.external_docs {
        forbid(errs, "externalDocs", "must be undefined to be structural");
    }
    if v.preserve_unknown_fields {
        forbid(errs, "x-kubernetes-preserve-unknown-fields", "must be false to be structural");
    }
    if v.embedded_resource {
        forbid(errs, "x-kubernetes-embedded-resource", "must be false to be structural");
    }
    if v.int_or_string {
        forbid(errs, "x-kubernetes-int-or-string", "must be false to be structural");
    }
    if !v.list_map_keys.is_empty() {
        forbid(errs, "x-kubernetes-list-map-keys", "must be empty to be structural");
    }
    if v.list_type.is_some() {
        forbid(errs, "x-kubernetes-list-type", "must be undefined to be structural");
    }
    if v.map_type.is_some() {
        forbid(errs, "x-kubernetes-map-type", "must be undefined to be structural");
    }
    if !v.rules.is_empty() {
        forbid(errs, "x-kubernetes-validations", "must be empty to be structural");
    }
    if v.properties.contains_key("metadata") {
        errs.push(FieldError::forbidden(key(&child(p, "properties"), "metadata"), "must not be specified in a nested context"));
    }
}

/// Every field or array named in a value validation must also be specified structurally.
fn completeness_vv(v: &Node, s: &Node, sp: &str, vp: &str, errs: &mut Vec<FieldError>) {
    if let Some(not) = &v.not {
        completeness_nested(not, Some(s), sp, &child(vp, "not"), errs);
    }
    for (i, a) in v.all_of.iter().enumerate() {
        completeness_nested(a, Some(s), sp, &index(&child(vp, "allOf"), i), errs);
    }
    for (i, a) in v.any_of.iter().enumerate() {
        completeness_nested(a, Some(s), sp, &index(&child(vp, "anyOf"), i), errs);
    }
    for (i, a) in v.one_of.iter().enumerate() {
        completeness_nested(a, Some(s), sp, &index(&child(vp, "oneOf"), i), errs);
    }
}

fn completeness_nested(v: &Node, s: Option<&Node>, sp: &str, vp: &str, errs: &mut Vec<FieldError>) {
    let Some(s) = s else {
        errs.push(FieldError::required(sp, format!("because it is defined in {vp}")));
        return;
    };
    completeness_vv(v, s, sp, vp, errs);
    if let Some(items) = &v.items {
        completeness_nested(items, s.items.as_deref(), &child(sp, "items"), &child(vp, "items"), errs);
    }
    for (k, f) in &v.properties {
        let sk = key(&child(sp, "properties"), k);
        let vk = key(&child(vp, "properties"), k);
        match s.properties.get(k) {
            Some(sf) => completeness_nested(f, Some(sf), &sk, &vk, errs),
            None => errs.push(FieldError::required(sk, format!("because it is defined in {vk}"))),
        }
    }
}
