//! JSON values as CEL sees them, typed by their schema as upstream's `UnstructuredToVal`:
//! declared properties under their escaped names, `date`/`date-time` strings as timestamps,
//! `duration` strings as durations, `byte` strings as bytes, `number` as double, and a
//! resource root's `metadata` showing only `name` and `generateName`.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use cel::objects::{Key, Map};
use cel::Value as CelValue;
use serde_json::Value;

use super::super::formats::{is_date, parse_go_duration};
use super::super::node::Node;

const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// apiserver's `cel.Escape`: the CEL name of a property, None if it has none.
pub fn escape(name: &str) -> Option<String> {
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::new();
    let mut chars = name.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphabetic() || c == '_' || (!first && c.is_ascii_digit()) => out.push(c),
            _ => return None,
        }
        first = false;
    }
    (!out.is_empty()).then_some(out)
}

fn key(s: &str) -> Key {
    Key::String(Arc::new(s.to_string()))
}

/// Any JSON value, without a schema.
pub fn dynamic(v: &Value) -> CelValue {
    match v {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => CelValue::Int(i),
            None => CelValue::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(a) => CelValue::List(Arc::new(a.iter().map(dynamic).collect())),
        Value::Object(m) => CelValue::Map(Map { map: Arc::new(m.iter().map(|(k, v)| (key(k), dynamic(v))).collect()) }),
    }
}

/// Converts `v` by its schema; Err for a value the schema's format cannot parse.
pub fn to_cel(v: &Value, s: &Node, resource_root: bool) -> Result<CelValue, String> {
    if v.is_null() {
        return Ok(CelValue::Null);
    }
    if s.int_or_string {
        return Ok(dynamic(v));
    }
    match (s.ty.as_str(), v) {
        ("object", Value::Object(m)) => {
            if !s.properties.is_empty() || resource_root || s.embedded_resource {
                let mut out: HashMap<Key, CelValue> = HashMap::new();
                let meta = resource_root || s.embedded_resource;
                for (k, fv) in m {
                    if meta && (k == "apiVersion" || k == "kind") {
                        out.insert(key(k), dynamic(fv));
                    } else if meta && k == "metadata" {
                        let mut md: HashMap<Key, CelValue> = HashMap::new();
                        if let Some(mo) = fv.as_object() {
                            for f in ["name", "generateName"] {
                                if let Some(x) = mo.get(f) {
                                    md.insert(key(f), dynamic(x));
                                }
                            }
                        }
                        out.insert(key("metadata"), CelValue::Map(Map { map: Arc::new(md) }));
                    } else if let Some(p) = s.properties.get(k) {
                        if let Some(e) = escape(k) {
                            out.insert(key(&e), to_cel(fv, p, p.embedded_resource)?);
                        }
                    } else if s.preserve_unknown_fields {
                        out.insert(key(k), dynamic(fv));
                    }
                }
                Ok(CelValue::Map(Map { map: Arc::new(out) }))
            } else if let Some(ap) = s.additional_schema() {
                let mut out: HashMap<Key, CelValue> = HashMap::new();
                for (k, fv) in m {
                    out.insert(key(k), to_cel(fv, ap, ap.embedded_resource)?);
                }
                Ok(CelValue::Map(Map { map: Arc::new(out) }))
            } else {
                Ok(dynamic(v))
            }
        }
        ("array", Value::Array(a)) => match &s.items {
            Some(is) => Ok(CelValue::List(Arc::new(a.iter().map(|x| to_cel(x, is, is.embedded_resource)).collect::<Result<Vec<_>, _>>()?))),
            None => Ok(dynamic(v)),
        },
        ("string", Value::String(st)) => match s.format.as_str() {
            "duration" => match parse_go_duration(st) {
                Some(ns) => Ok(CelValue::Duration(chrono::Duration::nanoseconds(ns as i64))),
                None => Err(format!("time: invalid duration {}", crate::api::gofmt::quote(st))),
            },
            "date" => {
                if !is_date(st) {
                    return Err(format!("parsing time {} as \"2006-01-02\": cannot parse", crate::api::gofmt::quote(st)));
                }
                let d = chrono::NaiveDate::parse_from_str(st, "%Y-%m-%d").map_err(|e| e.to_string())?;
                let dt = d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().fixed_offset();
                Ok(CelValue::Timestamp(dt))
            }
            "date-time" | "datetime" => match chrono::DateTime::parse_from_rfc3339(st) {
                Ok(t) => Ok(CelValue::Timestamp(t)),
                Err(_) => Err(format!("parsing time {} as \"2006-01-02T15:04:05Z07:00\": cannot parse", crate::api::gofmt::quote(st))),
            },
            "byte" => match base64::engine::general_purpose::STANDARD.decode(st) {
                Ok(b) => Ok(CelValue::Bytes(Arc::new(b))),
                Err(e) => Err(format!("illegal base64 data: {e}")),
            },
            _ => Ok(dynamic(v)),
        },
        ("number", Value::Number(n)) => Ok(CelValue::Float(n.as_f64().unwrap_or(0.0))),
        _ => Ok(dynamic(v)),
    }
}
