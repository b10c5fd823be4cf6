//! Which `openAPIV3Schema`s a CRD may have: upstream's `validateCustomResourceDefinitionValidation`
//! and `ValidateCustomResourceDefinitionOpenAPISchema` (apiextensions `validation.go`) for a
//! v1 CRD being created (all the "require..." options on), plus `defaulting.ValidateDefaults`.
//! Simplified: the relaxations upstream grants to updates of CRDs that already violated a newer
//! rule (ratcheting of the CRD itself) are not applied.

use serde_json::Value;

use super::cel::{self, CelCtx, CostTotal};
use super::node::{AdditionalProperties, Node};
use super::path::{child, index, key};
use super::render::invalid;
use super::structural::{unsupported, validate_structural};
use super::validate::{to_field_errors, Validator};
use super::{objectmeta, prune};
use crate::api::status::FieldError;

const META_FIELDS: &[&str] = &["metadata", "kind", "apiVersion"];
const OPENAPI_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];
const SUPPORTED_REASONS: &[&str] = &["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"];

/// Validates a parsed schema for a CRD version; compiles its CEL rules into the nodes.
pub fn check(root: &mut Node, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if root.nullable {
        errs.push(FieldError::forbidden(child(field, "nullable"), "nullable cannot be true at the root"));
    }
    let mut init_errs = Vec::new();
    let mut cel_ok = false;
    match unsupported(root) {
        Some(msg) => init_errs.push(FieldError::invalid(field, "", msg)),
        None => {
            let st = validate_structural(field, root);
            if !st.is_empty() {
                errs.extend(st);
            } else {
                let de = validate_defaults(field, root);
                if !de.is_empty() {
                    errs.extend(de);
                } else {
                    cel_ok = true;
                }
            }
        }
    }
    let mut total = CostTotal::default();
    let ctx = cel_ok.then(CelCtx::root);
    let (schema_errs, cel_errs) = walk(root, field, Ssv::default(), true, ctx, &mut total);
    errs.extend(schema_errs);
    errs.extend(cel_errs);
    if errs.is_empty() {
        errs.extend(init_errs);
    }
    errs.extend(total.errors(field));
    errs
}

/// The per-branch state of upstream's `specStandardValidatorV3`.
#[derive(Clone, Default)]
struct Ssv {
    disallow_defaults: Option<String>,
    inside_resource_meta: bool,
    uncorrelatable: Option<String>,
}

impl Ssv {
    fn forbid_defaults(&self, reason: &str) -> Ssv {
        Ssv { disallow_defaults: Some(reason.to_string()), ..self.clone() }
    }
    fn forbid_old_self(&self, p: &str) -> Ssv {
        if self.uncorrelatable.is_some() {
            return self.clone();
        }
        Ssv { uncorrelatable: Some(p.to_string()), ..self.clone() }
    }

    fn validate(&self, n: &Node, p: &str, errs: &mut Vec<FieldError>) {
        if !n.ty.is_empty() && !OPENAPI_TYPES.contains(&n.ty.as_str()) {
            errs.push(FieldError::not_supported(child(p, "type"), n.ty.as_str(), OPENAPI_TYPES));
        }
        if n.default.is_some() {
            if let Some(reason) = &self.disallow_defaults {
                let detail = if reason.is_empty() { "must not be set".to_string() } else { format!("must not be set {reason}") };
                errs.push(FieldError::forbidden(child(p, "default"), detail));
            }
        }
        let u = &n.unsupported;
        if u.id {
            errs.push(FieldError::forbidden(child(p, "id"), "id is not supported"));
        }
        if u.additional_items.is_some() {
            errs.push(FieldError::forbidden(child(p, "additionalItems"), "additionalItems is not supported"));
        }
        if u.pattern_properties.is_some() {
            errs.push(FieldError::forbidden(child(p, "patternProperties"), "patternProperties is not supported"));
        }
        if u.definitions.is_some() {
            errs.push(FieldError::forbidden(child(p, "definitions"), "definitions is not supported"));
        }
        if u.dependencies.is_some() {
            errs.push(FieldError::forbidden(child(p, "dependencies"), "dependencies is not supported"));
        }
        if u.ref_ {
            errs.push(FieldError::forbidden(child(p, "$ref"), "$ref is not supported"));
        }
        if n.ty == "null" {
            errs.push(FieldError::forbidden(child(p, "type"), "type cannot be set to null, use nullable as an alternative"));
        }
        if u.items_array.as_ref().is_some_and(|a| !a.is_empty()) {
            errs.push(FieldError::forbidden(child(p, "items"), "items must be a schema object and not an array"));
        }
        if self.inside_resource_meta && n.embedded_resource {
            errs.push(FieldError::forbidden(child(p, "x-kubernetes-embedded-resource"), "must not be used inside of resource meta"));
        }
    }
}

type Errs = (Vec<FieldError>, Vec<FieldError>);

fn walk(n: &mut Node, p: &str, ssv: Ssv, is_root: bool, cel: Option<CelCtx>, total: &mut CostTotal) -> Errs {
    let mut se = Vec::new();
    let mut ce = Vec::new();
    let merge = |(a, b): Errs, se: &mut Vec<FieldError>, ce: &mut Vec<FieldError>| {
        se.extend(a);
        ce.extend(b);
    };
    ssv.validate(n, p, &mut se);
    if n.unique_items {
        se.push(FieldError::forbidden(child(p, "uniqueItems"), "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"));
    }
    let has_props = !n.properties.is_empty();
    let correlatable_map = n.map_type.as_deref().is_none_or(|t| t == "granular");
    let embedded = n.embedded_resource;
    let list_is_map = n.list_type.as_deref() == Some("map");
    let max_props = n.max_properties;
    if let Some(ap) = &mut n.additional_properties {
        if has_props && !matches!(ap, AdditionalProperties::Bool(true)) {
            se.push(FieldError::forbidden(child(p, "additionalProperties"), "additionalProperties and properties are mutual exclusive"));
        }
        if let AdditionalProperties::Schema(a) = ap {
            let sub = if ssv.inside_resource_meta { ssv.forbid_defaults("inside additionalProperties applying to object metadata") } else { ssv.clone() };
            let cctx = cel.as_ref().map(|c| c.additional_properties(a, max_props));
            merge(walk(a, &child(p, "additionalProperties"), sub, false, cctx, total), &mut se, &mut ce);
        }
    }
    for (k, sub_node) in n.properties.iter_mut() {
        let mut sub = ssv.clone();
        if !correlatable_map {
            sub = sub.forbid_old_self(p);
        }
        if (is_root || embedded) && META_FIELDS.contains(&k.as_str()) {
            sub.inside_resource_meta = true;
            if is_root {
                sub = sub.forbid_defaults(&format!("in top-level {k}"));
            }
        }
        let cctx = cel.as_ref().map(|c| c.property(sub_node));
        merge(walk(sub_node, &key(&child(p, "properties"), k), sub, false, cctx, total), &mut se, &mut ce);
    }
    if let Some(not) = &mut n.not {
        merge(walk(not, &child(p, "not"), ssv.clone(), false, None, total), &mut se, &mut ce);
    }
    for (name, list) in [("allOf", &mut n.all_of), ("oneOf", &mut n.one_of), ("anyOf", &mut n.any_of)] {
        for (i, x) in list.iter_mut().enumerate() {
            merge(walk(x, &index(&child(p, name), i), ssv.clone(), false, None, total), &mut se, &mut ce);
        }
    }
    if let Some(defs) = &mut n.unsupported.definitions {
        for (k, d) in defs.iter_mut() {
            merge(walk(d, &key(&child(p, "definitions"), k), ssv.clone(), false, None, total), &mut se, &mut ce);
        }
    }
    let items_ssv = if list_is_map { ssv.clone() } else { ssv.forbid_old_self(p) };
    if let Some(items) = &mut n.items {
        let cctx = cel.as_ref().map(|c| c.items(items, n.max_items));
        merge(walk(items, &child(p, "items"), items_ssv.clone(), false, cctx, total), &mut se, &mut ce);
    }
    if let Some(arr) = &mut n.unsupported.items_array {
        for (i, x) in arr.iter_mut().enumerate() {
            merge(walk(x, &index(&child(p, "items"), i), items_ssv.clone(), false, None, total), &mut se, &mut ce);
        }
    }
    if n.unsupported.preserve_false {
        se.push(FieldError::invalid(child(p, "x-kubernetes-preserve-unknown-fields"), false, "must be true or undefined"));
    }
    list_and_map_types(n, p, &mut se);
    if !n.rules.is_empty() {
        rule_fields(n, p, &mut se);
        if se.is_empty() {
            if let Some(c) = &cel {
                ce.extend(cel::compile_node(n, p, c, &ssv.uncorrelatable, total));
            }
        }
    }
    (se, ce)
}

fn list_and_map_types(n: &Node, p: &str, se: &mut Vec<FieldError>) {
    if let Some(mt) = &n.map_type {
        if n.ty != "object" {
            if n.ty.is_empty() {
                se.push(FieldError::required(child(p, "type"), "must be object if x-kubernetes-map-type is specified"));
            } else {
                se.push(FieldError::invalid(child(p, "type"), n.ty.as_str(), "must be object if x-kubernetes-map-type is specified"));
            }
        }
        if mt != "atomic" && mt != "granular" {
            se.push(FieldError::not_supported(child(p, "x-kubernetes-map-type"), mt.as_str(), &["atomic", "granular"]));
        }
    }
    if let Some(lt) = &n.list_type {
        if n.ty != "array" {
            if n.ty.is_empty() {
                se.push(FieldError::required(child(p, "type"), "must be array if x-kubernetes-list-type is specified"));
            } else {
                se.push(FieldError::invalid(child(p, "type"), n.ty.as_str(), "must be array if x-kubernetes-list-type is specified"));
            }
        } else if lt == "set" {
            if let Some(is) = &n.items {
                match is.ty.as_str() {
                    "array" if is.list_type.as_deref().is_some_and(|t| t != "atomic") => se.push(FieldError::invalid(
                        child(&child(p, "items"), "x-kubernetes-list-type"),
                        is.list_type.clone().unwrap_or_default(),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    )),
                    "object" if is.map_type.as_deref() != Some("atomic") => se.push(FieldError::invalid_rendered(
                        child(&child(p, "items"), "x-kubernetes-map-type"),
                        // upstream reports the item's list type here (a *string)
                        match &is.list_type {
                            None => "null".to_string(),
                            Some(t) => crate::api::gofmt::quote(t),
                        },
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    )),
                    _ => {}
                }
            }
        }
        if lt != "atomic" && lt != "set" && lt != "map" {
            se.push(FieldError::not_supported(child(p, "x-kubernetes-list-type"), lt.as_str(), &["atomic", "set", "map"]));
        }
    }
    if !n.list_map_keys.is_empty() {
        match n.list_type.as_deref() {
            None => se.push(FieldError::required(child(p, "x-kubernetes-list-type"), "must be map if x-kubernetes-list-map-keys is non-empty")),
            Some("map") => {}
            Some(other) => se.push(FieldError::invalid(child(p, "x-kubernetes-list-type"), other, "must be map if x-kubernetes-list-map-keys is non-empty")),
        }
    }
    let keys_value = || Value::from(n.list_map_keys.clone());
    if n.list_type.as_deref() == Some("map") {
        if n.list_map_keys.is_empty() {
            se.push(FieldError::required(child(p, "x-kubernetes-list-map-keys"), "must not be empty if x-kubernetes-list-type is map"));
        }
        if n.items.is_none() && n.unsupported.items_array.is_none() {
            se.push(FieldError::required(child(p, "items"), "must have a schema if x-kubernetes-list-type is map"));
        }
        if n.unsupported.items_array.is_some() {
            se.push(FieldError::invalid(child(p, "items"), "", "must only have a single schema if x-kubernetes-list-type is map"));
        }
        if let Some(is) = &n.items {
            if is.ty != "object" {
                se.push(FieldError::invalid(
                    child(&child(p, "items"), "type"),
                    is.ty.as_str(),
                    "must be object if parent array's x-kubernetes-list-type is map",
                ));
            } else {
                let mut seen = Vec::new();
                for k in &n.list_map_keys {
                    match is.properties.get(k) {
                        Some(s) if s.ty == "array" || s.ty == "object" => se.push(FieldError::invalid(
                            child(&key(&child(&child(p, "items"), "properties"), k), "type"),
                            is.ty.as_str(),
                            "must be a scalar type if parent array's x-kubernetes-list-type is map",
                        )),
                        Some(_) => {}
                        None => se.push(invalid(child(p, "x-kubernetes-list-map-keys"), &keys_value(), "entries must all be names of item properties")),
                    }
                    if seen.contains(&k) {
                        se.push(invalid(child(p, "x-kubernetes-list-map-keys"), &keys_value(), "must not contain duplicate entries"));
                    }
                    seen.push(k);
                }
            }
        }
    }
    // requireMapListKeysMapSetValidation
    if let (Some(lt @ ("set" | "map")), Some(is)) = (n.list_type.as_deref(), &n.items) {
        if is.nullable {
            se.push(FieldError::forbidden(child(&child(p, "items"), "nullable"), format!("cannot be nullable when x-kubernetes-list-type is {lt}")));
        }
        if lt == "map" {
            for k in &n.list_map_keys {
                let Some(prop) = is.properties.get(k) else { continue };
                let kp = key(&child(&child(p, "items"), "properties"), k);
                if !is.required.contains(k) && prop.default.is_none() {
                    se.push(FieldError::required(
                        child(&kp, "default"),
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    ));
                }
                if prop.nullable {
                    se.push(FieldError::forbidden(child(&kp, "nullable"), "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"));
                }
            }
        }
    }
}

fn has_newlines(s: &str) -> bool {
    s.contains('\n') || s.contains('\r')
}

fn rule_fields(n: &Node, p: &str, se: &mut Vec<FieldError>) {
    for (i, r) in n.rules.iter().enumerate() {
        let rp = index(&child(p, "x-kubernetes-validations"), i);
        let rule = r.rule.trim();
        let msg = r.message.trim();
        if rule.is_empty() {
            se.push(FieldError::required(child(&rp, "rule"), "rule is not specified"));
        } else if !r.message.is_empty() && msg.is_empty() {
            se.push(FieldError::invalid(child(&rp, "message"), r.message.as_str(), "message must be non-empty if specified"));
        } else if has_newlines(msg) {
            se.push(FieldError::invalid(child(&rp, "message"), r.message.as_str(), "message must not contain line breaks"));
        } else if has_newlines(rule) && msg.is_empty() {
            se.push(FieldError::required(child(&rp, "message"), "message must be specified if rule contains line breaks"));
        }
        if !r.message_expression.is_empty() && r.message_expression.trim().is_empty() {
            se.push(FieldError::required(child(&rp, "messageExpression"), "messageExpression must be non-empty if specified"));
        }
        if let Some(reason) = &r.reason {
            if !SUPPORTED_REASONS.contains(&reason.as_str()) {
                se.push(FieldError::not_supported(child(&rp, "reason"), reason.as_str(), SUPPORTED_REASONS));
            }
        }
        if !r.field_path.is_empty() && r.field_path.trim().is_empty() {
            se.push(FieldError::invalid(child(&rp, "fieldPath"), r.field_path.as_str(), "fieldPath must be non-empty if specified"));
        }
        if has_newlines(&r.field_path) {
            se.push(FieldError::invalid(child(&rp, "fieldPath"), r.field_path.as_str(), "fieldPath must not contain line breaks"));
        }
        if !r.field_path.is_empty() && cel::valid_field_path(&r.field_path, n).is_err() {
            se.push(FieldError::invalid(child(&rp, "fieldPath"), r.field_path.as_str(), "fieldPath must be a valid path"));
        }
    }
}

/// `defaulting.ValidateDefaults`: every default validates against its schema (and its CEL
/// rules), carries no unknown fields, and gives valid metadata for embedded resources.
/// Simplified: defaults inside an embedded resource's metadata are validated against their own
/// schema only, not by building the surrounding object as upstream does.
fn validate_defaults(field: &str, root: &Node) -> Vec<FieldError> {
    let mut errs = Vec::new();
    defaults_walk(field, root, true, false, &mut errs);
    errs
}

fn defaults_walk(p: &str, s: &Node, resource_root: bool, inside_meta: bool, errs: &mut Vec<FieldError>) {
    let resource_root = resource_root || s.embedded_resource;
    let inside_meta = inside_meta && !s.embedded_resource;
    if let Some(d) = &s.default {
        let dp = child(p, "default");
        let mut local = Vec::new();
        if !inside_meta {
            let mut pruned = d.clone();
            let mut removed = Vec::new();
            prune::prune(&mut pruned, Some(s), s.embedded_resource, "", &mut removed);
            if &pruned != d {
                local.push(invalid(dp.clone(), d, "must not have unknown fields"));
            }
            if s.embedded_resource {
                if let Some(md) = d.get("metadata") {
                    if let Some(e) = objectmeta::decode_error(md) {
                        local.push(invalid(child(&dp, "metadata"), md, e));
                    }
                }
            }
            if local.is_empty() {
                let mut om = Vec::new();
                objectmeta::validate(&dp, d, Some(s), &mut om);
                local.extend(om);
            }
        }
        let mut rest = Vec::new();
        if local.is_empty() {
            let (res, _) = Validator.node(s, "", d, None);
            to_field_errors(&dp, res.errs, &mut rest);
            if rest.is_empty() {
                let mut budget = cel::RUNTIME_BUDGET;
                cel::validate_tree(s, &dp, d, Some(d), resource_root, &mut rest, &mut budget, None, false);
                if rest.is_empty() {
                    cel::validate_tree(s, &dp, d, None, resource_root, &mut rest, &mut budget, None, false);
                }
            }
        }
        errs.extend(local);
        errs.extend(rest);
    }
    // do not follow additionalProperties: defaults are forbidden there
    if let Some(items) = &s.items {
        defaults_walk(&child(p, "items"), items, false, inside_meta, errs);
    }
    for (k, sub) in &s.properties {
        let sub_meta = inside_meta || (resource_root && META_FIELDS.contains(&k.as_str()));
        defaults_walk(&key(&child(p, "properties"), k), sub, false, sub_meta, errs);
    }
}
