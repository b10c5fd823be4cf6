//! Server-side field validation (`?fieldValidation=Ignore|Warn|Strict`): unknown and
//! duplicate fields in request bodies.
//!
//! As kube-apiserver's strict decoder does for built-in kinds: a JSON body is scanned once in
//! document order against the kind's schema ([`crate::schema`]), reporting
//! `unknown field "spec.foo"` for fields the type does not have (their subtrees are not
//! looked into, and an unknown field that is also duplicated is reported only as unknown)
//! and `duplicate field "spec.paused"` for a key given twice (the last value wins). Unknown
//! fields are always dropped from what is stored, whatever the directive; `Warn` (the
//! default) sends each finding as a `Warning` header, `Strict` fails the request.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use http::HeaderMap;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::status::ApiError;
use crate::schema::{Card, Special, Ty, SCHEMA};

/// What to do with unknown and duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Directive {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl Directive {
    /// Parses the `fieldValidation` query parameter (absent = Warn, as upstream since 1.27).
    pub fn parse(v: Option<&str>) -> Result<Directive, ApiError> {
        match v.unwrap_or("") {
            "" | "Warn" => Ok(Directive::Warn),
            "Ignore" => Ok(Directive::Ignore),
            "Strict" => Ok(Directive::Strict),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation: Invalid value: {other:?}: fieldValidation must be one of \"Ignore\", \"Warn\" or \"Strict\""
            ))),
        }
    }
}

/// The schema message of a built-in kind, if the schema knows it.
pub fn kind_message(api_version: &str, kind: &str) -> Option<usize> {
    SCHEMA.kind(api_version, kind)
}

/// What a field position is in the schema.
#[derive(Clone, Copy)]
enum Ctx {
    /// An object of this message (the top level when `top` is set: apiVersion/kind allowed).
    Msg(usize, bool),
    /// A list of messages.
    ListOf(usize),
    /// A map of messages.
    MapOf(usize),
    /// No schema here (maps of scalars, opaque JSON): only duplicates are looked for.
    Untyped,
    /// A scalar or an opaque value: not looked into.
    Opaque,
}

fn field_ctx(f: &crate::schema::Field) -> Ctx {
    match f.ty {
        Ty::Message(m) => {
            let special = SCHEMA.messages[m].special;
            if special != Special::None {
                return if special == Special::RawJson { Ctx::Untyped } else { Ctx::Opaque };
            }
            match f.card {
                Card::Repeated => Ctx::ListOf(m),
                Card::Map => Ctx::MapOf(m),
                _ => Ctx::Msg(m, false),
            }
        }
        _ if f.card == Card::Map => Ctx::Untyped,
        _ => Ctx::Opaque,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

struct Scan<'a> {
    path: String,
    ctx: Ctx,
    out: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let elem = match self.ctx {
            Ctx::ListOf(m) => Ctx::Msg(m, false),
            Ctx::Untyped => Ctx::Untyped,
            _ => Ctx::Opaque,
        };
        let mut i = 0;
        loop {
            let seed = Scan { path: format!("{}[{i}]", self.path), ctx: elem, out: self.out };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            let child = match self.ctx {
                Ctx::Msg(_, true) if key == "apiVersion" || key == "kind" => Some(Ctx::Opaque),
                Ctx::Msg(m, _) => SCHEMA.field(m, &key).map(field_ctx),
                Ctx::MapOf(m) => Some(Ctx::Msg(m, false)),
                Ctx::Untyped => Some(Ctx::Untyped),
                Ctx::ListOf(_) | Ctx::Opaque => Some(Ctx::Opaque),
            };
            let first = seen.insert(key);
            match child {
                None => {
                    if first {
                        self.out.borrow_mut().push(format!("unknown field \"{path}\""));
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Some(ctx) => {
                    if !first {
                        self.out.borrow_mut().push(format!("duplicate field \"{path}\""));
                    }
                    map.next_value_seed(Scan { path, ctx, out: self.out })?;
                }
            }
        }
        Ok(())
    }
}

/// Unknown and duplicate fields of a JSON body, in document order. `msg` is the body's
/// schema message (None: a patch or a kind without schema, where only duplicates count).
pub fn scan_json(body: &[u8], msg: Option<usize>) -> Vec<String> {
    let out = RefCell::new(Vec::new());
    let ctx = msg.map(|m| Ctx::Msg(m, true)).unwrap_or(Ctx::Untyped);
    let mut de = serde_json::Deserializer::from_slice(body);
    // A body that does not parse is reported by the real decoder; nothing to add here.
    let _ = Scan { path: String::new(), ctx, out: &out }.deserialize(&mut de);
    out.into_inner()
}

/// Removes the fields of `v` its schema message does not have; returns their paths
/// (sorted, as upstream reports unknown fields of a patched or YAML object).
pub fn prune_unknown(v: &mut Value, msg: usize) -> Vec<String> {
    let mut out = Vec::new();
    prune(v, Ctx::Msg(msg, true), "", &mut out);
    out.sort();
    out
}

fn prune(v: &mut Value, ctx: Ctx, path: &str, out: &mut Vec<String>) {
    match (ctx, v) {
        (Ctx::Msg(m, top), Value::Object(map)) => {
            let mut drop = Vec::new();
            for (k, child) in map.iter_mut() {
                if top && (k == "apiVersion" || k == "kind") {
                    continue;
                }
                match SCHEMA.field(m, k) {
                    None => drop.push(k.clone()),
                    Some(f) => prune(child, field_ctx(f), &join(path, k), out),
                }
            }
            for k in drop {
                out.push(join(path, &k));
                map.remove(&k);
            }
        }
        (Ctx::ListOf(m), Value::Array(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                prune(item, Ctx::Msg(m, false), &format!("{path}[{i}]"), out);
            }
        }
        (Ctx::MapOf(m), Value::Object(map)) => {
            for (k, child) in map.iter_mut() {
                prune(child, Ctx::Msg(m, false), &join(path, k), out);
            }
        }
        _ => {}
    }
}

/// The outcome of validating one write: the warnings to send, or the error to fail with.
pub fn outcome(directive: Directive, findings: Vec<String>, strict_error: impl FnOnce(String) -> ApiError) -> Result<Vec<String>, ApiError> {
    match directive {
        Directive::Ignore => Ok(Vec::new()),
        _ if findings.is_empty() => Ok(Vec::new()),
        Directive::Warn => Ok(findings),
        Directive::Strict => Err(strict_error(format!("strict decoding error: {}", findings.join(", ")))),
    }
}

/// Validates the fields of a create/update body and drops its unknown fields from `obj`
/// (the decoded body). Returns the warnings to send; fails under `Strict` with upstream's
/// 400 `<Kind> in version "<v>" cannot be handled as a <Kind>: strict decoding error: ...`.
pub fn check_body(headers: &HeaderMap, body: &[u8], obj: &mut Value, api_version: &str, kind: &str, directive: Directive) -> Result<Vec<String>, ApiError> {
    let av = obj["apiVersion"].as_str().filter(|s| !s.is_empty()).unwrap_or(api_version).to_string();
    let k = obj["kind"].as_str().filter(|s| !s.is_empty()).unwrap_or(kind).to_string();
    let Some(msg) = kind_message(&av, &k) else { return Ok(Vec::new()) };
    let ct = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let findings = match ct.split(';').next().unwrap_or("").trim() {
        "application/json" | "" | "*/*" => {
            let f = if directive == Directive::Ignore { Vec::new() } else { scan_json(body, Some(msg)) };
            prune_unknown(obj, msg);
            f
        }
        // YAML: unknown fields sorted, as upstream reports them for YAML bodies. Protobuf
        // bodies cannot carry unknown fields.
        _ => prune_unknown(obj, msg).into_iter().map(|p| format!("unknown field \"{p}\"")).collect(),
    };
    let version = av.rsplit('/').next().unwrap_or("").to_string();
    outcome(directive, findings, |m| ApiError::bad_request(format!("{k} in version \"{version}\" cannot be handled as a {k}: {m}")))
}

/// As [`check_body`] for a resource's strategy: custom resources drop and report what their
/// own schema does not know (pruning), built-in kinds go by the built-in schema.
pub fn check_body_for(s: &dyn crate::registry::Strategy, headers: &HeaderMap, body: &[u8], obj: &mut Value, directive: Directive) -> Result<Vec<String>, ApiError> {
    let inf = s.info();
    let Some(pruned) = s.prune_unknown(obj) else {
        return check_body(headers, body, obj, &inf.api_version(), &inf.kind, directive);
    };
    let ct = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let json = matches!(ct.split(';').next().unwrap_or("").trim(), "application/json" | "" | "*/*");
    let mut findings = if json && directive != Directive::Ignore { scan_json(body, None) } else { Vec::new() };
    findings.extend(pruned.into_iter().map(|p| format!("unknown field \"{p}\"")));
    let kind = &inf.kind;
    let version = &inf.version;
    outcome(directive, findings, |m| ApiError::bad_request(format!("{kind} in version \"{version}\" cannot be handled as a {kind}: {m}")))
}

/// As [`check_patched`] for a resource's strategy (see [`check_body_for`]).
pub fn check_patched_for(s: &dyn crate::registry::Strategy, patch_body: Option<&[u8]>, patched: &mut Value, directive: Directive) -> Result<Vec<String>, ApiError> {
    let Some(pruned) = s.prune_unknown(patched) else {
        return check_patched(patch_body, patched, directive);
    };
    let mut findings = match (directive, patch_body) {
        (Directive::Ignore, _) | (_, None) => Vec::new(),
        (_, Some(b)) => scan_json(b, None),
    };
    findings.extend(pruned.into_iter().map(|p| format!("unknown field \"{p}\"")));
    outcome(directive, findings, |m| {
        let js = serde_json::to_string(&*patched).unwrap_or_default();
        ApiError::invalid("", "", "", &[super::status::FieldError::invalid("patch", js, m)])
    })
}

/// Validates the fields of a patched object: duplicates in a merge or strategic patch body,
/// then unknown fields of the result (dropped from `patched`). Fails under `Strict` with
/// upstream's 422 on the field `patch`.
pub fn check_patched(patch_body: Option<&[u8]>, patched: &mut Value, directive: Directive) -> Result<Vec<String>, ApiError> {
    let av = patched["apiVersion"].as_str().unwrap_or("").to_string();
    let k = patched["kind"].as_str().unwrap_or("").to_string();
    let Some(msg) = kind_message(&av, &k) else { return Ok(Vec::new()) };
    let mut findings = match (directive, patch_body) {
        (Directive::Ignore, _) | (_, None) => Vec::new(),
        (_, Some(b)) => scan_json(b, None),
    };
    findings.extend(prune_unknown(patched, msg).into_iter().map(|p| format!("unknown field \"{p}\"")));
    outcome(directive, findings, |m| {
        let js = serde_json::to_string(&*patched).unwrap_or_default();
        ApiError::invalid("", "", "", &[super::status::FieldError::invalid("patch", js, m)])
    })
}

/// Adds one `Warning: 299 - "<text>"` header per warning, as kube-apiserver sends them.
pub fn with_warnings(mut resp: axum::response::Response, warnings: &[String]) -> axum::response::Response {
    for w in warnings {
        let text = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = http::HeaderValue::from_str(&format!("299 - \"{text}\"")) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "x", "name": "y", "unknownMeta": 1, "labels": {"a": "1", "a": "2"}},
        "spec": {
            "unknown1": "val1", "unknownDupe": "a", "unknownDupe": "b",
            "paused": true, "paused": false,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{
                "name": "nginx", "image": "nginx", "unknownNested": "v",
                "imagePullPolicy": "Always", "imagePullPolicy": "Never",
                "resources": {"limits": {"cpu": "1"}}
            }]}}
        }
    }"#;

    #[test]
    fn scan_reports_in_document_order() {
        let m = kind_message("apps/v1", "Deployment").unwrap();
        assert_eq!(
            scan_json(BODY.as_bytes(), Some(m)),
            vec![
                r#"duplicate field "metadata.name""#,
                r#"unknown field "metadata.unknownMeta""#,
                r#"duplicate field "metadata.labels.a""#,
                r#"unknown field "spec.unknown1""#,
                r#"unknown field "spec.unknownDupe""#,
                r#"duplicate field "spec.paused""#,
                r#"unknown field "spec.template.spec.containers[0].unknownNested""#,
                r#"duplicate field "spec.template.spec.containers[0].imagePullPolicy""#,
            ]
        );
        // Without a schema (a patch body) only duplicates count.
        let dups = scan_json(BODY.as_bytes(), None);
        assert_eq!(dups.len(), 5, "{dups:?}");
        assert!(dups.iter().all(|d| d.starts_with("duplicate")));
    }

    #[test]
    fn prune_drops_unknown_fields_only() {
        let m = kind_message("apps/v1", "Deployment").unwrap();
        let mut v: Value = serde_json::from_str(BODY).unwrap();
        let dropped = prune_unknown(&mut v, m);
        assert_eq!(
            dropped,
            vec!["metadata.unknownMeta", "spec.template.spec.containers[0].unknownNested", "spec.unknown1", "spec.unknownDupe"]
        );
        assert_eq!(v["spec"]["paused"], false);
        assert_eq!(v["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "Never");
        assert_eq!(v["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"], "1");
        assert!(v["spec"].get("unknown1").is_none());
        // A clean object loses nothing.
        let before = v.clone();
        assert!(prune_unknown(&mut v, m).is_empty());
        assert_eq!(v, before);
    }

    #[test]
    fn opaque_and_inline_fields_are_known() {
        // Volume embeds VolumeSource; ControllerRevision.data is opaque JSON.
        let m = kind_message("v1", "Pod").unwrap();
        let mut pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}], "volumes": [{"name": "v", "configMap": {"name": "cm"}}]}});
        assert!(prune_unknown(&mut pod, m).is_empty());
        let m = kind_message("apps/v1", "ControllerRevision").unwrap();
        let mut cr = serde_json::json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
            "revision": 1, "data": {"anything": {"goes": true}}});
        assert!(prune_unknown(&mut cr, m).is_empty());
    }

    #[test]
    fn directives() {
        assert_eq!(Directive::parse(None).unwrap(), Directive::Warn);
        assert_eq!(Directive::parse(Some("Strict")).unwrap(), Directive::Strict);
        assert!(Directive::parse(Some("strict")).is_err());
        let f = vec!["unknown field \"spec.x\"".to_string()];
        assert!(outcome(Directive::Ignore, f.clone(), ApiError::bad_request).unwrap().is_empty());
        assert_eq!(outcome(Directive::Warn, f.clone(), ApiError::bad_request).unwrap(), f);
        assert!(outcome(Directive::Strict, f, ApiError::bad_request).is_err());
    }
}
