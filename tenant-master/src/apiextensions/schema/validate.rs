//! The OpenAPI value validator, as kube-openapi's `validate.SchemaValidator` runs over a custom
//! resource (type, allOf/anyOf/oneOf/not, string, format, number, slice, enum, object, in that
//! order per node), with upstream's messages (`spec.replicas in body must be of type integer:
//! "string"`) and its conversion to field errors (`kubeOpenAPIResultToFieldErrors`).
//!
//! Ratcheting (CRDValidationRatcheting, on in 1.33): when an old object is given, each node with
//! a correlated old value (same property; same index for plain lists; same key for map lists;
//! never for set and atomic lists) whose errors would be reported drops them if the node is
//! unchanged, with upstream's notion of "unchanged" (children the validator did not visit make
//! a node count as changed).

use std::collections::HashMap;

use serde_json::Value;

use super::formats;
use super::node::{AdditionalProperties, Node};
use super::path::{child, shown};
use super::render::{go_float, invalid, shown_value};
use crate::api::gofmt::quote;
use crate::api::status::FieldError;

/// What an OpenAPI validation error becomes as a field error.
#[derive(Debug, Clone)]
pub enum Kind {
    Required,
    /// `field.TypeInvalid`: an "Invalid value" that blocks CEL evaluation.
    TypeInvalid(Value),
    NotSupported(Value, Vec<String>),
    TooLong(i64),
    TooMany(i64, i64),
    Invalid(Value),
    /// A composite error (anyOf, oneOf, allOf, not): reported at the validator's root path.
    Composite,
}

/// One error of the OpenAPI validator: the dotted name it was raised at, and its message.
#[derive(Debug, Clone)]
pub struct VErr {
    pub name: String,
    pub kind: Kind,
    pub msg: String,
}

/// A validation result: errors (kept unique by message, as upstream) and the match count the
/// anyOf/oneOf branches are ranked by.
#[derive(Debug, Default)]
pub struct Res {
    pub errs: Vec<VErr>,
    pub mc: i64,
}

impl Res {
    fn err(e: VErr) -> Res {
        Res { errs: vec![e], mc: 0 }
    }
    fn add(&mut self, e: VErr) {
        if !self.errs.iter().any(|x| x.msg == e.msg) {
            self.errs.push(e);
        }
    }
    fn merge(&mut self, o: Res) {
        for e in o.errs {
            self.add(e);
        }
        self.mc += o.mc;
    }
    fn valid(&self) -> bool {
        self.errs.is_empty()
    }
}

const IN: &str = "body";

fn verr(name: &str, kind: Kind, msg: String) -> VErr {
    VErr { name: name.to_string(), kind, msg }
}

/// `%s in %s` or just `%s` when the name is empty... upstream always has `in`, so: `name in body`.
fn at(name: &str) -> String {
    format!("{name} in {IN}")
}

/// The JSON type upstream's type validator infers, with the format it reports for numbers.
fn type_of(v: &Value) -> (&'static str, &'static str) {
    match v {
        Value::Null => ("null", ""),
        Value::Bool(_) => ("boolean", ""),
        Value::Number(n) if n.is_i64() => ("integer", "int64"),
        Value::Number(_) => ("number", "float64"),
        Value::String(_) => ("string", ""),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
    }
}

/// swag's `IsFloat64AJSONInteger`.
pub fn is_json_integer(f: f64) -> bool {
    if !f.is_finite() || f.abs() > 9007199254740992.0 {
        return false;
    }
    let frac = f.abs() - f.abs().floor();
    !(1e-9..=1.0 - 1e-9).contains(&frac)
}

fn as_f64(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The children the validator visited for one node, with whether each equals its old value.
#[derive(Default)]
pub struct Visit {
    children: HashMap<String, bool>,
}

/// The value validator over one schema.
pub struct Validator;

impl Validator {
    /// Validates `data` against `n`, ratcheting against `old` when given; `name` is the dotted
    /// path upstream's validator carries ("" at the root).
    pub fn node(&self, n: &Node, name: &str, data: &Value, old: Option<&Value>) -> (Res, bool) {
        let mut visit = Visit::default();
        let mut res = self.schema(n, name, data, old, &mut visit);
        let eq = match old {
            None => false,
            Some(o) => cached_equal(data, o, &visit),
        };
        if old.is_some() && !res.valid() && eq {
            res.errs.clear();
        }
        (res, eq)
    }

    fn types(n: &Node) -> &'static [&'static str] {
        if n.int_or_string {
            return &["integer", "string"];
        }
        match n.ty.as_str() {
            "" => &[],
            "object" => &["object"],
            "array" => &["array"],
            "string" => &["string"],
            "integer" => &["integer"],
            "number" => &["number"],
            "boolean" => &["boolean"],
            "null" => &["null"],
            _ => &["unknown"],
        }
    }

    fn schema(&self, n: &Node, name: &str, data: &Value, old: Option<&Value>, visit: &mut Visit) -> Res {
        let mut res = Res::default();
        if data.is_null() {
            res.merge(self.type_check(n, name, data));
            res.merge(self.enum_check(n, name, data));
            return res;
        }
        let types = Self::types(n);
        if !types.is_empty() || !n.vformat.is_empty() {
            res.merge(self.type_check(n, name, data));
            res.mc += 1;
        }
        res.merge(self.props_check(n, name, data, old, visit));
        res.mc += 1;
        if let Value::String(s) = data {
            if let Some(e) = self.string_check(n, name, s) {
                res.merge(Res::err(e));
            }
            res.mc += 1;
            if !n.vformat.is_empty() {
                if !formats::validates(&n.vformat, s) {
                    res.merge(Res::err(verr(name, Kind::TypeInvalid(data.clone()), format!("{} must be of type {}: {}", at(name), n.vformat, quote(s)))));
                }
                res.mc += 1;
            }
        }
        if data.is_number() {
            res.merge(self.number_check(n, name, data));
            res.mc += 1;
        }
        if let Value::Array(items) = data {
            res.merge(self.slice_check(n, name, items, old, visit));
            res.mc += 1;
        }
        res.merge(self.enum_check(n, name, data));
        res.mc += 1;
        if let Value::Object(_) = data {
            res.merge(self.object_check(n, name, data, old, visit));
            res.mc += 1;
        }
        res.mc += 1;
        res
    }

    fn type_check(&self, n: &Node, name: &str, data: &Value) -> Res {
        let types = Self::types(n);
        let joined = types.join(",");
        let fail = |ty: &str, got: &str| {
            Res::err(verr(name, Kind::TypeInvalid(Value::String(got.to_string())), format!("{} must be of type {}: {}", at(name), ty, quote(got))))
        };
        if data.is_null() {
            if !types.is_empty() && !types.contains(&"null") && !n.nullable {
                return fail(&joined, "null");
            }
            return Res { errs: vec![], mc: 1 };
        }
        let (sch, format) = type_of(data);
        let contains = |t: &str| types.contains(&t);
        let is_float_int = sch == "number" && is_json_integer(as_f64(data)) && contains("integer");
        let is_int_float = sch == "integer" && contains("number");
        let fmt = n.vformat.as_str();
        let string_or_slice = data.is_string() || data.is_array();
        let type_or_format_ok = contains(sch) || format == fmt || is_float_int || is_int_float;
        if !string_or_slice && !fmt.is_empty() && !type_or_format_ok {
            return fail(fmt, format);
        }
        let numeric = contains("number") || contains("integer");
        if !numeric && !fmt.is_empty() && string_or_slice {
            return Res { errs: vec![], mc: 1 };
        }
        if !(contains(sch) || is_float_int || is_int_float) {
            return fail(&joined, sch);
        }
        Res { errs: vec![], mc: 1 }
    }

    fn props_check(&self, n: &Node, name: &str, data: &Value, old: Option<&Value>, visit: &mut Visit) -> Res {
        let mut main = Res { errs: Vec::new(), mc: 1 };
        if n.any_of.is_empty() && n.one_of.is_empty() && n.all_of.is_empty() && n.not.is_none() {
            return main;
        }
        main.mc = 0;
        let q = quote(name);
        if !n.any_of.is_empty() {
            let mut best: Option<Res> = None;
            let mut first_ok: Option<Res> = None;
            let mut ok = false;
            for s in &n.any_of {
                let r = self.schema(s, name, data, old, visit);
                if r.valid() {
                    best = None;
                    ok = true;
                    first_ok = Some(r);
                    break;
                }
                if best.as_ref().is_none_or(|b| r.mc > b.mc) {
                    best = Some(r);
                }
            }
            if !ok {
                main.add(verr(name, Kind::Composite, format!("{q} must validate at least one schema (anyOf)")));
            }
            if let Some(b) = best {
                main.merge(b);
            } else if let Some(f) = first_ok {
                main.merge(f);
            }
        }
        if !n.one_of.is_empty() {
            let mut best: Option<Res> = None;
            let mut first_ok: Option<Res> = None;
            let mut validated = 0;
            for s in &n.one_of {
                let r = self.schema(s, name, data, old, visit);
                if r.valid() {
                    validated += 1;
                    best = None;
                    if first_ok.is_none() {
                        first_ok = Some(r);
                    }
                    continue;
                }
                if validated == 0 && best.as_ref().is_none_or(|b| r.mc > b.mc) {
                    best = Some(r);
                }
            }
            if validated != 1 {
                let extra = if validated == 0 { "Found none valid".to_string() } else { format!("Found {validated} valid alternatives") };
                main.add(verr(name, Kind::Composite, format!("{q} must validate one and only one schema (oneOf). {extra}")));
                if let Some(b) = best {
                    main.merge(b);
                }
            } else if let Some(f) = first_ok {
                main.merge(f);
            }
        }
        if !n.all_of.is_empty() {
            let mut validated = 0;
            for s in &n.all_of {
                let r = self.schema(s, name, data, old, visit);
                if r.valid() {
                    validated += 1;
                }
                main.merge(r);
            }
            if validated != n.all_of.len() {
                let extra = if validated == 0 { ". None validated" } else { "" };
                main.add(verr(name, Kind::Composite, format!("{q} must validate all the schemas (allOf){extra}")));
            }
        }
        if let Some(not) = &n.not {
            let r = self.schema(not, name, data, old, visit);
            if r.valid() {
                main.add(verr(name, Kind::Composite, format!("{q} must not validate the schema (not)")));
            }
        }
        main.mc += 1;
        main
    }

    fn string_check(&self, n: &Node, name: &str, s: &str) -> Option<VErr> {
        let len = s.chars().count() as i64;
        if let Some(max) = n.max_length {
            if len > max {
                return Some(verr(name, Kind::TooLong(max), format!("{} should be at most {max} chars long", at(name))));
            }
        }
        if let Some(min) = n.min_length {
            if len < min {
                return Some(verr(name, Kind::Invalid(Value::String(s.into())), format!("{} should be at least {min} chars long", at(name))));
            }
        }
        if let Some(re) = &n.pattern_re {
            if !re.is_match(s) {
                return Some(verr(name, Kind::Invalid(Value::String(s.into())), format!("{} should match '{}'", at(name), n.pattern)));
            }
        }
        None
    }

    fn number_check(&self, n: &Node, name: &str, data: &Value) -> Res {
        let mut multiple = Res::default();
        let mut minimum = Res::default();
        let mut maximum = Res::default();
        let int = data.as_i64().filter(|_| data.is_i64());
        let f = as_f64(data);
        let val = || Kind::Invalid(data.clone());
        if let Some(m) = n.multiple_of {
            match int {
                Some(i) if m.trunc() as i64 != 0 => {
                    let factor = m.trunc() as i64;
                    if factor < 0 {
                        multiple.add(verr(
                            name,
                            Kind::Invalid(Value::from(factor)),
                            format!("factor MultipleOf declared for {name} must be positive: {factor}"),
                        ));
                    } else if (i / factor) * factor != i {
                        multiple.add(verr(name, val(), format!("{} should be a multiple of {factor}", at(name))));
                    }
                }
                _ => {
                    if m < 0.0 {
                        multiple.add(verr(
                            name,
                            Kind::Invalid(Value::from(m)),
                            format!("factor MultipleOf declared for {name} must be positive: {}", go_float(m)),
                        ));
                    } else {
                        let mult = if m < 1.0 { 1.0 / m * f } else { f / m };
                        if !is_json_integer(mult) {
                            multiple.add(verr(name, val(), format!("{} should be a multiple of {}", at(name), go_float(m))));
                        }
                    }
                }
            }
        }
        if let Some(max) = n.maximum {
            let excl = n.exclusive_maximum;
            let (fails, shown) = match int {
                Some(i) => {
                    let m = max.trunc() as i64;
                    ((!excl && i > m) || (excl && i >= m), m.to_string())
                }
                None => ((!excl && f > max) || (excl && f >= max), go_float(max)),
            };
            if fails {
                let op = if excl { "less than" } else { "less than or equal to" };
                maximum.add(verr(name, val(), format!("{} should be {op} {shown}", at(name))));
            }
        }
        if let Some(min) = n.minimum {
            let excl = n.exclusive_minimum;
            let (fails, shown) = match int {
                Some(i) => {
                    let m = min.trunc() as i64;
                    ((!excl && i < m) || (excl && i <= m), m.to_string())
                }
                None => ((!excl && f < min) || (excl && f <= min), go_float(min)),
            };
            if fails {
                let op = if excl { "greater than" } else { "greater than or equal to" };
                minimum.add(verr(name, val(), format!("{} should be {op} {shown}", at(name))));
            }
        }
        let mut res = Res::default();
        res.merge(multiple);
        res.merge(minimum);
        res.merge(maximum);
        res.mc += 1;
        res
    }

    fn slice_check(&self, n: &Node, name: &str, items: &[Value], old: Option<&Value>, visit: &mut Visit) -> Res {
        let mut res = Res::default();
        if let Some(item_schema) = &n.items {
            let old_items = old.and_then(|o| o.as_array());
            for (i, v) in items.iter().enumerate() {
                let o = old_items.and_then(|olds| correlate_item(n, olds, items, i));
                let (r, eq) = self.node(item_schema, &format!("{name}[{i}]"), v, o);
                if o.is_some() {
                    visit.children.insert(format!("[{i}]"), eq);
                }
                res.merge(r);
            }
        }
        let size = items.len() as i64;
        if let Some(min) = n.min_items {
            if size < min {
                res.add(verr(name, Kind::Invalid(Value::from(size)), format!("{} should have at least {min} items", at(name))));
            }
        }
        if let Some(max) = n.max_items {
            if size > max {
                res.add(verr(name, Kind::TooMany(size, max), format!("{} should have at most {max} items", at(name))));
            }
        }
        if n.unique_items {
            let dup = items.iter().enumerate().any(|(i, a)| items[..i].contains(a));
            if dup {
                res.add(verr(name, Kind::Invalid(Value::String(String::new())), format!("{} shouldn't contain duplicates", at(name))));
            }
        }
        res.mc += 1;
        res
    }

    fn enum_check(&self, n: &Node, name: &str, data: &Value) -> Res {
        let Some(values) = &n.enum_values else { return Res::default() };
        if values.is_empty() || values.iter().any(|e| enum_matches(data, e)) {
            return Res::default();
        }
        let allowed: Vec<String> = values.iter().map(|v| if let Value::String(s) = v { s.clone() } else { v.to_string() }).collect();
        let listed: Vec<String> = values.iter().map(go_v).collect();
        Res::err(verr(name, Kind::NotSupported(data.clone(), allowed), format!("{} should be one of [{}]", at(name), listed.join(" "))))
    }

    fn object_check(&self, n: &Node, name: &str, data: &Value, old: Option<&Value>, visit: &mut Visit) -> Res {
        let obj = data.as_object().expect("object");
        let keys = obj.len() as i64;
        if let Some(min) = n.min_properties {
            if keys < min {
                return Res::err(verr(name, Kind::Invalid(Value::from(keys)), format!("{} should have at least {min} properties", at(name))));
            }
        }
        if let Some(max) = n.max_properties {
            if keys > max {
                return Res::err(verr(name, Kind::TooMany(keys, max), format!("{} should have at most {max} properties", at(name))));
            }
        }
        let mut res = Res::default();
        let old_obj = old.and_then(|o| o.as_object());
        let mut sub = |s: &Node, k: &str, sub_name: String, v: &Value, res: &mut Res| {
            let o = old_obj.and_then(|m| m.get(k));
            let (r, eq) = self.node(s, &sub_name, v, o);
            if o.is_some() {
                visit.children.insert(k.to_string(), eq);
            }
            res.merge(r);
        };
        match &n.additional_properties {
            Some(AdditionalProperties::Bool(false)) => {
                for k in obj.keys() {
                    if !n.properties.contains_key(k) {
                        res.add(verr(name, Kind::Invalid(Value::String(k.clone())), format!("{name}.{k} in {IN} is a forbidden property")));
                    }
                }
            }
            Some(AdditionalProperties::Schema(s)) => {
                for (k, v) in obj {
                    if !n.properties.contains_key(k) {
                        sub(s, k, format!("{name}.{k}"), v, &mut res);
                    }
                }
            }
            _ => {}
        }
        for (p, s) in &n.properties {
            if let Some(v) = obj.get(p) {
                let sub_name = if name.is_empty() { p.clone() } else { format!("{name}.{p}") };
                sub(s, p, sub_name, v, &mut res);
            }
        }
        for r in &n.required {
            if !obj.contains_key(r) {
                res.add(verr(&format!("{name}.{r}"), Kind::Required, format!("{name}.{r} in {IN} is required")));
            }
        }
        res
    }
}

/// The old item a new list item is compared with: same index for lists without a list type,
/// same key for map lists, none for sets and atomic lists.
fn correlate_item<'a>(n: &Node, olds: &'a [Value], news: &[Value], i: usize) -> Option<&'a Value> {
    match n.list_type.as_deref() {
        Some("map") => {
            let item = news.get(i)?.as_object()?;
            let want: Vec<Option<&Value>> = n.list_map_keys.iter().map(|k| item.get(k)).collect();
            olds.iter().find(|o| o.as_object().is_some_and(|o| n.list_map_keys.iter().map(|k| o.get(k)).eq(want.iter().copied())))
        }
        Some("set") | Some("atomic") => None,
        _ => olds.get(i),
    }
}

/// Upstream's `CachedDeepEqual` over the children the validator visited.
fn cached_equal(new: &Value, old: &Value, visit: &Visit) -> bool {
    match (new, old) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Array(n), Value::Array(o)) => n.len() == o.len() && visit.children.len() == o.len() && visit.children.values().all(|e| *e),
        (Value::Array(_), _) | (_, Value::Array(_)) => false,
        (Value::Object(n), Value::Object(o)) => {
            if n.len() != o.len() {
                return false;
            }
            if o.is_empty() {
                return true;
            }
            o.keys().all(|k| visit.children.get(k).copied().unwrap_or(false))
        }
        (Value::Object(_), _) | (_, Value::Object(_)) => false,
        (a, b) => a == b,
    }
}

/// kube-openapi's enum match: deep equality after converting the value to the enum value's Go
/// type where Go allows it (int64 <-> float64, and int64 to string as a rune).
fn enum_matches(data: &Value, e: &Value) -> bool {
    if data.is_null() {
        return false;
    }
    if data == e {
        return true;
    }
    match (data, e) {
        (Value::Number(d), Value::Number(ev)) => {
            if ev.is_i64() {
                // float64 -> int64 truncates
                d.as_f64().map(|f| f.trunc() as i64) == ev.as_i64()
            } else {
                d.as_f64() == ev.as_f64()
            }
        }
        (Value::Number(d), Value::String(s)) if d.is_i64() => {
            let c = u32::try_from(d.as_i64().unwrap_or(-1)).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
            s.chars().eq(std::iter::once(c))
        }
        _ => false,
    }
}

/// Go's `%v` of an enum value (for the message only).
fn go_v(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => shown_value(other),
    }
}

/// Converts the validator's errors into field errors under `base` (upstream's
/// `kubeOpenAPIResultToFieldErrors`); returns whether any blocks CEL evaluation.
pub fn to_field_errors(base: &str, errs: Vec<VErr>, out: &mut Vec<FieldError>) -> bool {
    let mut blocking = false;
    for e in errs {
        let trimmed = e.name.strip_prefix('.').unwrap_or(&e.name);
        let path = if !e.name.is_empty() && e.name != "." { child(base, trimmed) } else { base.to_string() };
        let fe = match e.kind {
            Kind::Required => {
                blocking = true;
                FieldError::required(shown(&path), "")
            }
            Kind::NotSupported(v, allowed) => {
                blocking = true;
                let refs: Vec<&str> = allowed.iter().map(String::as_str).collect();
                FieldError::not_supported(shown(&path), v, &refs)
            }
            Kind::TooLong(max) => {
                blocking = true;
                FieldError::too_long(shown(&path), max.max(0) as usize)
            }
            Kind::TooMany(actual, max) => {
                blocking = true;
                let mut fe = FieldError::forbidden(shown(&path), "");
                fe.kind = crate::api::status::FieldErrorKind::TooMany;
                fe.detail = format!("{actual}: must have at most {max} items");
                fe
            }
            Kind::TypeInvalid(v) => {
                blocking = true;
                invalid(shown(&path), &v, e.msg)
            }
            Kind::Invalid(v) => invalid(shown(&path), &v, e.msg),
            Kind::Composite => FieldError::invalid(shown(base), "", e.msg),
        };
        out.push(fe);
    }
    blocking
}
