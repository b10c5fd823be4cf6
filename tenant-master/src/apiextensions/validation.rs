//! Validation of CustomResourceDefinitions, after upstream's
//! `apiextensions/validation.ValidateCustomResourceDefinition` (create) and
//! `ValidateCustomResourceDefinitionUpdate`, on the v1 JSON form (field paths as upstream's,
//! which validates the internal form: `additionalPrinterColumns[0].JSONPath`,
//! `conversion.webhookClientConfig`).
//!
//! Schemas themselves (`openAPIV3Schema`: structural, defaults, CEL rules) are judged by the
//! schema engine ([`super::schema::parse`]); this module checks everything around them.
//!
//! Refused on purpose: conversion strategy `Webhook`. kplex does not call webhooks, so versions
//! of a custom resource can only differ in their `apiVersion` (strategy `None`).

use std::collections::HashSet;

use serde_json::Value;

use super::model::split_path;
use crate::api::status::FieldError;
use crate::validation::{dns1035_label_errors, dns1123_subdomain_errors};

const PRINTER_TYPES: &str = "boolean,date,integer,number,string";
const PRINTER_FORMATS: &str = "byte,date,date-time,double,float,int32,int64,password";
/// Upstream's limit on `selectableFields` per version.
const MAX_SELECTABLE_FIELDS: usize = 8;
/// The annotation protected groups (`*.k8s.io`, `*.kubernetes.io`) need.
const API_APPROVED: &str = "api-approved.kubernetes.io";

fn join(errs: Vec<String>) -> String {
    errs.join(",")
}

/// Checks of a new CRD (`ValidateCustomResourceDefinition`).
pub fn validate_create(obj: &Value, errs: &mut Vec<FieldError>) {
    validate_name(obj, errs);
    validate_api_approval(obj, None, errs);
    let spec = &obj["spec"];
    validate_spec(spec, true, errs);
    if spec["preserveUnknownFields"] == true {
        errs.push(FieldError::invalid(
            "spec.preserveUnknownFields",
            true,
            "cannot set to true, set x-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
    validate_names("status.acceptedNames", &obj["status"]["acceptedNames"], errs);
}

/// Checks of an update (`ValidateCustomResourceDefinitionUpdate`): the spec as on create, what
/// may not change, and the stored versions. An unchanged spec (status and metadata writes, as
/// the CRD controllers make) is not judged again, so rules that tightened since it was stored
/// never block those.
pub fn validate_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    validate_name(new, errs);
    validate_api_approval(new, Some(old), errs);
    let (spec, old_spec) = (&new["spec"], &old["spec"]);
    if spec != old_spec {
        // Schemas are required unless the stored CRD already lacked some (not tightened).
        let all_had_schemas = old_spec["versions"].as_array().into_iter().flatten().all(|v| v["schema"]["openAPIV3Schema"].is_object());
        validate_spec(spec, all_had_schemas, errs);
    }
    if spec["preserveUnknownFields"] == true && old_spec["preserveUnknownFields"] != true {
        errs.push(FieldError::invalid(
            "spec.preserveUnknownFields",
            true,
            "cannot set to true, set x-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
    let established = super::model::Crd::parse(old).is_true(super::model::ESTABLISHED);
    let mut immutable = vec![("spec.group", &spec["group"], &old_spec["group"]), ("spec.names.plural", &spec["names"]["plural"], &old_spec["names"]["plural"])];
    if established {
        immutable.push(("spec.scope", &spec["scope"], &old_spec["scope"]));
        immutable.push(("spec.names.kind", &spec["names"]["kind"], &old_spec["names"]["kind"]));
    }
    for (path, n, o) in immutable {
        if n != o {
            errs.push(FieldError::invalid(path, n.clone(), "field is immutable"));
        }
    }
    validate_names("status.acceptedNames", &new["status"]["acceptedNames"], errs);
    validate_stored_versions(new, errs);
}

/// `metadata.name` must be `<plural>.<group>`.
fn validate_name(obj: &Value, errs: &mut Vec<FieldError>) {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let want = format!("{}.{}", obj["spec"]["names"]["plural"].as_str().unwrap_or(""), obj["spec"]["group"].as_str().unwrap_or(""));
    if !name.is_empty() && name != want {
        errs.push(FieldError::invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group"));
    }
}

/// Whether a group is one of the community's (`k8s.io`, `kubernetes.io` and their subdomains).
fn protected_group(g: &str) -> bool {
    g == "k8s.io" || g.ends_with(".k8s.io") || g == "kubernetes.io" || g.ends_with(".kubernetes.io")
}

/// upstream `GetAPIApprovalState`: (approved or bypassed, missing, reason).
fn approval_state(v: Option<&str>) -> (&'static str, String) {
    match v {
        None => ("missing", format!("protected groups must have approval annotation {API_APPROVED:?}, see https://github.com/kubernetes/enhancements/pull/1111")),
        Some(s) if s.starts_with("unapproved") => ("bypassed", String::new()),
        Some(s) if url_ok(s) => ("approved", String::new()),
        Some(_) => ("invalid", format!("protected groups must have approval annotation {API_APPROVED:?} with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111")),
    }
}

fn url_ok(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://")) && s.split_once("://").is_some_and(|(_, rest)| !rest.is_empty())
}

/// The approval annotation of protected groups (`validateAPIApproval`); unchanged values are
/// never refused on update.
fn validate_api_approval(obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    if !protected_group(obj["spec"]["group"].as_str().unwrap_or("")) {
        return;
    }
    let ann = |o: &Value| o["metadata"]["annotations"][API_APPROVED].as_str().map(String::from);
    let new = ann(obj);
    let (state, reason) = approval_state(new.as_deref());
    if let Some(old) = old {
        if approval_state(ann(old).as_deref()).0 == state {
            return;
        }
    }
    let path = format!("metadata.annotations[{API_APPROVED}]");
    match state {
        "missing" => errs.push(FieldError::required(path, reason)),
        "invalid" => errs.push(FieldError::invalid(path, new.unwrap_or_default(), reason)),
        _ => {}
    }
}

fn validate_spec(spec: &Value, require_schemas: bool, errs: &mut Vec<FieldError>) {
    match spec["group"].as_str().unwrap_or("") {
        "" => errs.push(FieldError::required("spec.group", "")),
        g => {
            let e = dns1123_subdomain_errors(g);
            if !e.is_empty() {
                errs.push(FieldError::invalid("spec.group", g, join(e)));
            } else if !g.contains('.') {
                errs.push(FieldError::invalid("spec.group", g, "should be a domain with at least one dot"));
            }
        }
    }
    match spec["scope"].as_str().unwrap_or("") {
        "" => errs.push(FieldError::required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported("spec.scope", other, &["Cluster", "Namespaced"])),
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let mut storage = 0;
    let mut seen = HashSet::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let name = v["name"].as_str().unwrap_or("");
        if v["storage"] == true {
            storage += 1;
        }
        if !seen.insert(name.to_string()) {
            unique = false;
        }
        let e = dns1035_label_errors(name);
        if !e.is_empty() {
            errs.push(FieldError::invalid(format!("spec.versions[{i}].name"), name, join(e)));
        }
        validate_version(v, &format!("spec.versions[{i}]"), require_schemas, errs);
    }
    if !unique {
        errs.push(FieldError::invalid_rendered("spec.versions", "[]apiextensions.CustomResourceDefinitionVersion{...}", "must contain unique version names"));
    }
    if storage != 1 {
        errs.push(FieldError::invalid_rendered(
            "spec.versions",
            "[]apiextensions.CustomResourceDefinitionVersion{...}",
            "must have exactly one version marked as storage version",
        ));
    }
    let names = &spec["names"];
    for (f, json) in [("plural", "plural"), ("singular", "singular"), ("kind", "kind"), ("listKind", "listKind")] {
        if names[json].as_str().unwrap_or("").is_empty() {
            errs.push(FieldError::required(format!("spec.names.{f}"), ""));
        }
    }
    validate_names("spec.names", names, errs);
    validate_conversion(&spec["conversion"], errs);
}

/// `ValidateCustomResourceDefinitionNames`.
fn validate_names(path: &str, names: &Value, errs: &mut Vec<FieldError>) {
    let s = |k: &str| names[k].as_str().unwrap_or("").to_string();
    for k in ["plural", "singular"] {
        let v = s(k);
        let e = dns1035_label_errors(&v);
        if !v.is_empty() && !e.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.{k}"), v, join(e)));
        }
    }
    for k in ["kind", "listKind"] {
        let v = s(k);
        let e = dns1035_label_errors(&v.to_lowercase());
        if !v.is_empty() && !e.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.{k}"), v, format!("may have mixed case, but should otherwise match: {}", join(e))));
        }
    }
    for (i, sn) in names["shortNames"].as_array().into_iter().flatten().enumerate() {
        let v = sn.as_str().unwrap_or("");
        let e = dns1035_label_errors(v);
        if !e.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.shortNames[{i}]"), v, join(e)));
        }
    }
    if !s("kind").is_empty() && s("kind") == s("listKind") {
        errs.push(FieldError::invalid(format!("{path}.listKind"), s("listKind"), "kind and listKind may not be the same"));
    }
    for (i, c) in names["categories"].as_array().into_iter().flatten().enumerate() {
        let v = c.as_str().unwrap_or("");
        let e = dns1035_label_errors(v);
        if !e.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.categories[{i}]"), v, join(e)));
        }
    }
}

/// `spec.conversion`: strategy None only (see the module documentation).
fn validate_conversion(conv: &Value, errs: &mut Vec<FieldError>) {
    if conv.is_null() {
        return;
    }
    match conv["strategy"].as_str().unwrap_or("") {
        "" => errs.push(FieldError::required("spec.conversion.strategy", "")),
        "None" => {
            if !conv["webhook"]["clientConfig"].is_null() {
                errs.push(FieldError::forbidden("spec.conversion.webhookClientConfig", "should not be set when strategy is not set to Webhook"));
            }
            if conv["webhook"]["conversionReviewVersions"].as_array().is_some_and(|a| !a.is_empty()) {
                errs.push(FieldError::forbidden("spec.conversion.conversionReviewVersions", "should not be set when strategy is not set to Webhook"));
            }
        }
        "Webhook" => errs.push(FieldError::invalid(
            "spec.conversion.strategy",
            "Webhook",
            "conversion webhooks are not supported: this server does not call webhooks; use strategy None (versions of a custom resource then differ only in apiVersion)",
        )),
        other => errs.push(FieldError::not_supported("spec.conversion.strategy", other, &["None", "Webhook"])),
    }
}

/// The schema at a dotted path (following `properties`), if the schema declares it.
pub fn schema_at<'a>(schema: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(schema, |s, k| s["properties"].get(k.as_str()))
}

/// upstream `validateSimpleJSONPath`.
fn validate_simple_path(path: &str, field: &str, errs: &mut Vec<FieldError>) -> bool {
    if path.is_empty() {
        errs.push(FieldError::invalid(field, path, "must not be empty"));
        return false;
    }
    if !path.starts_with('.') {
        errs.push(FieldError::invalid(field, path, "must be a simple json path starting with ."));
        return false;
    }
    true
}

fn validate_version(v: &Value, path: &str, require_schema: bool, errs: &mut Vec<FieldError>) {
    let schema = v["schema"]["openAPIV3Schema"].clone();
    let status = v["subresources"].get("status").is_some_and(|s| !s.is_null());
    if schema.is_object() {
        let field = format!("{path}.schema.openAPIV3Schema");
        if status && schema.get("type").is_some_and(|t| t != "object") {
            errs.push(FieldError::invalid(
                format!("{field}.type"),
                schema["type"].clone(),
                "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled",
            ));
        }
        if let Err(e) = super::schema::parse(&schema, &field) {
            errs.extend(e);
        }
    } else if require_schema {
        errs.push(FieldError::required(format!("{path}.schema.openAPIV3Schema"), "schemas are required"));
    }
    if let Some(w) = v.get("deprecationWarning").filter(|w| !w.is_null()) {
        let w = w.as_str().unwrap_or("");
        let field = format!("{path}.deprecationWarning");
        if v["deprecated"] != true {
            errs.push(FieldError::invalid(field.clone(), w, "can only be set for deprecated versions"));
        }
        if w.len() > 256 {
            errs.push(FieldError::invalid(field.clone(), w, "must be <= 256 characters long"));
        }
        if w.is_empty() {
            errs.push(FieldError::invalid(field.clone(), w, "must not be an empty string"));
        }
        if let Some(i) = w.char_indices().find(|(_, c)| c.is_control()).map(|(i, _)| i) {
            errs.push(FieldError::invalid(field, w, format!("must only contain printable UTF-8 characters; control character found at index {i}")));
        }
    }
    if let Some(scale) = v["subresources"]["scale"].as_object() {
        let sp = format!("{path}.subresources.scale");
        let get = |k: &str| scale.get(k).and_then(|x| x.as_str()).unwrap_or("");
        for (k, under, msg) in [
            ("specReplicasPath", vec![".spec."], "should be a json path under .spec"),
            ("statusReplicasPath", vec![".status."], "should be a json path under .status"),
        ] {
            let p = get(k);
            if p.is_empty() {
                errs.push(FieldError::required(format!("{sp}.{k}"), ""));
            } else if validate_simple_path(p, &format!("{sp}.{k}"), errs) && !under.iter().any(|u| p.starts_with(u)) {
                errs.push(FieldError::invalid(format!("{sp}.{k}"), p, msg));
            }
        }
        let ls = get("labelSelectorPath");
        if !ls.is_empty() && validate_simple_path(ls, &format!("{sp}.labelSelectorPath"), errs) && !ls.starts_with(".spec.") && !ls.starts_with(".status.") {
            errs.push(FieldError::invalid(format!("{sp}.labelSelectorPath"), ls, "should be a json path under either .spec or .status"));
        }
    }
    for (i, c) in v["additionalPrinterColumns"].as_array().into_iter().flatten().enumerate() {
        let cp = format!("{path}.additionalPrinterColumns[{i}]");
        if c["name"].as_str().unwrap_or("").is_empty() {
            errs.push(FieldError::required(format!("{cp}.name"), ""));
        }
        match c["type"].as_str().unwrap_or("") {
            "" => errs.push(FieldError::required(format!("{cp}.type"), format!("must be one of {PRINTER_TYPES}"))),
            t if !PRINTER_TYPES.split(',').any(|x| x == t) => {
                errs.push(FieldError::invalid(format!("{cp}.type"), t, format!("must be one of {PRINTER_TYPES}")))
            }
            _ => {}
        }
        let f = c["format"].as_str().unwrap_or("");
        if !f.is_empty() && !PRINTER_FORMATS.split(',').any(|x| x == f) {
            errs.push(FieldError::invalid(format!("{cp}.format"), f, format!("must be one of {PRINTER_FORMATS}")));
        }
        let jp = c["jsonPath"].as_str().unwrap_or("");
        if jp.is_empty() {
            errs.push(FieldError::required(format!("{cp}.JSONPath"), ""));
        } else {
            validate_simple_path(jp, &format!("{cp}.JSONPath"), errs);
        }
    }
    validate_selectable_fields(v, &schema, path, errs);
}

/// `selectableFields`: at most 8, unique, each a path the schema declares with a string,
/// integer or boolean type.
fn validate_selectable_fields(v: &Value, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(fields) = v["selectableFields"].as_array() else { return };
    let base = format!("{path}.selectableFields");
    if fields.len() > MAX_SELECTABLE_FIELDS {
        errs.push(FieldError {
            field: base.clone(),
            kind: crate::api::status::FieldErrorKind::TooMany,
            detail: format!("must have at most {MAX_SELECTABLE_FIELDS} items"),
        });
    }
    let mut seen = HashSet::new();
    for (i, f) in fields.iter().enumerate() {
        let fp = format!("{base}[{i}].jsonPath");
        let jp = f["jsonPath"].as_str().unwrap_or("");
        if jp.is_empty() {
            errs.push(FieldError::required(fp, ""));
            continue;
        }
        if !validate_simple_path(jp, &fp, errs) {
            continue;
        }
        if !seen.insert(jp.to_string()) {
            errs.push(FieldError::duplicate(fp, jp));
            continue;
        }
        if jp == ".metadata.name" || jp == ".metadata.namespace" {
            errs.push(FieldError::invalid(fp, jp, "must not select metadata.name or metadata.namespace, which are always selectable"));
            continue;
        }
        if schema.is_object() {
            match schema_at(schema, &split_path(jp)).and_then(|s| s["type"].as_str()) {
                None => errs.push(FieldError::invalid(fp, jp, "is an invalid path: does not refer to a field declared in the schema")),
                Some("string" | "integer" | "boolean") => {}
                Some(_) => errs.push(FieldError::invalid(fp, jp, "selectable field type must be one of: boolean, integer, string")),
            }
        }
    }
}

/// `status.storedVersions`: not empty, holding the storage version, every one still a version.
fn validate_stored_versions(obj: &Value, errs: &mut Vec<FieldError>) {
    let stored: Vec<String> = obj["status"]["storedVersions"].as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect();
    if stored.is_empty() {
        errs.push(FieldError::invalid("status.storedVersions", Value::Array(vec![]), "must have at least one stored version"));
        return;
    }
    let versions: Vec<&Value> = obj["spec"]["versions"].as_array().into_iter().flatten().collect();
    for v in &versions {
        let name = v["name"].as_str().unwrap_or("");
        if v["storage"] == true && !stored.iter().any(|s| s == name) {
            errs.push(FieldError::invalid("status.storedVersions", Value::from(stored.clone()), format!("must have the storage version {name}")));
        }
    }
    for (i, s) in stored.iter().enumerate() {
        if !versions.iter().any(|v| v["name"] == s.as_str()) {
            errs.push(FieldError::invalid(format!("status.storedVersions[{i}]"), s.as_str(), "must appear in spec.versions"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd() -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "conversion": {"strategy": "None"},
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]},
            "status": {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]}})
    }

    fn errors(v: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        validate_create(v, &mut errs);
        errs.iter().map(|e| format!("{}: {}", e.field, e.body())).collect()
    }

    #[test]
    fn a_good_crd_passes() {
        assert!(errors(&crd()).is_empty(), "{:?}", errors(&crd()));
    }

    #[test]
    fn names_groups_and_versions() {
        let mut v = crd();
        v["metadata"]["name"] = json!("gadgets.example.com");
        v["spec"]["group"] = json!("example");
        v["spec"]["names"]["listKind"] = json!("Widget");
        v["spec"]["names"]["shortNames"] = json!(["W"]);
        v["spec"]["versions"][0]["storage"] = json!(false);
        let e = errors(&v);
        assert!(e.contains(&"metadata.name: Invalid value: \"gadgets.example.com\": must be spec.names.plural+\".\"+spec.group".to_string()), "{e:?}");
        assert!(e.contains(&"spec.group: Invalid value: \"example\": should be a domain with at least one dot".to_string()), "{e:?}");
        assert!(e.contains(&"spec.names.listKind: Invalid value: \"Widget\": kind and listKind may not be the same".to_string()), "{e:?}");
        assert!(e.iter().any(|x| x.starts_with("spec.names.shortNames[0]: Invalid value: \"W\": a DNS-1035 label")), "{e:?}");
        assert!(e.iter().any(|x| x.ends_with("must have exactly one version marked as storage version")), "{e:?}");
    }

    #[test]
    fn webhook_conversion_is_refused_with_the_reason() {
        let mut v = crd();
        v["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://x"}, "conversionReviewVersions": ["v1"]}});
        let e = errors(&v);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("spec.conversion.strategy: Invalid value: \"Webhook\": conversion webhooks are not supported: this server does not call webhooks"),
            "{e:?}"
        );
    }

    #[test]
    fn schemas_columns_scale_and_selectable_fields() {
        let mut v = crd();
        v["spec"]["versions"][0]["schema"] = json!(null);
        assert!(errors(&v).contains(&"spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required".to_string()));
        let mut v = crd();
        v["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"color": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}}}});
        v["spec"]["versions"][0]["additionalPrinterColumns"] = json!([{"name": "", "type": "float", "jsonPath": "spec.x"}]);
        v["spec"]["versions"][0]["subresources"] = json!({"scale": {"specReplicasPath": ".status.r", "statusReplicasPath": ""}});
        v["spec"]["versions"][0]["selectableFields"] =
            json!([{"jsonPath": ".spec.color"}, {"jsonPath": ".spec.tags"}, {"jsonPath": ".spec.nope"}, {"jsonPath": ".spec.color"}]);
        let e = errors(&v);
        for want in [
            "spec.versions[0].additionalPrinterColumns[0].name: Required value",
            "spec.versions[0].additionalPrinterColumns[0].type: Invalid value: \"float\": must be one of boolean,date,integer,number,string",
            "spec.versions[0].additionalPrinterColumns[0].JSONPath: Invalid value: \"spec.x\": must be a simple json path starting with .",
            "spec.versions[0].subresources.scale.specReplicasPath: Invalid value: \".status.r\": should be a json path under .spec",
            "spec.versions[0].subresources.scale.statusReplicasPath: Required value",
            "spec.versions[0].selectableFields[1].jsonPath: Invalid value: \".spec.tags\": selectable field type must be one of: boolean, integer, string",
            "spec.versions[0].selectableFields[3].jsonPath: Duplicate value: \".spec.color\"",
        ] {
            assert!(e.iter().any(|x| x == want), "missing {want} in {e:?}");
        }
        assert!(e.iter().any(|x| x.starts_with("spec.versions[0].selectableFields[2].jsonPath: Invalid value: \".spec.nope\"")), "{e:?}");
    }

    #[test]
    fn updates_keep_identity_and_stored_versions() {
        let mut old = crd();
        old["status"]["conditions"] = json!([{"type": "Established", "status": "True"}]);
        let mut new = old.clone();
        new["spec"]["scope"] = json!("Cluster");
        new["spec"]["versions"][0]["name"] = json!("v2");
        new["status"]["storedVersions"] = json!(["v1", "v2"]);
        let mut errs = Vec::new();
        validate_update(&new, &old, &mut errs);
        let e: Vec<String> = errs.iter().map(|e| format!("{}: {}", e.field, e.body())).collect();
        assert!(e.contains(&"spec.scope: Invalid value: \"Cluster\": field is immutable".to_string()), "{e:?}");
        assert!(e.contains(&"status.storedVersions[0]: Invalid value: \"v1\": must appear in spec.versions".to_string()), "{e:?}");
    }

    #[test]
    fn protected_groups_need_approval() {
        let mut v = crd();
        v["metadata"]["name"] = json!("widgets.x.k8s.io");
        v["spec"]["group"] = json!("x.k8s.io");
        assert!(errors(&v)
            .iter()
            .any(|e| e.starts_with("metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation")));
        v["metadata"]["annotations"] = json!({"api-approved.kubernetes.io": "unapproved, testing"});
        assert!(errors(&v).is_empty());
    }
}
