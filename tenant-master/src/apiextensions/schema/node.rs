//! The parsed form of an `openAPIV3Schema` node, as upstream's `JSONSchemaProps` decoded and
//! converted to `schema.Structural` (`convert.go`): one [`Node`] per schema object, nested value
//! validations (`allOf`, `anyOf`, `oneOf`, `not`) with the same type.
//!
//! Parsing never fails: fields of the wrong JSON type are reported as field errors (upstream
//! would fail decoding the CRD with a 400; kplex reports them among the 422 causes instead) and
//! fields upstream does not support are remembered in [`Unsupported`] for the acceptance checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::cel::CompiledRule;
use super::path::{child, key};
use crate::api::status::FieldError;

/// `additionalProperties`: a boolean or a schema.
#[derive(Debug, Clone)]
pub enum AdditionalProperties {
    /// `additionalProperties: true|false`.
    Bool(bool),
    /// `additionalProperties: {...}`.
    Schema(Box<Node>),
}

/// One `x-kubernetes-validations` entry.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub rule: String,
    pub message: String,
    pub message_expression: String,
    pub reason: Option<String>,
    pub field_path: String,
    pub optional_old_self: Option<bool>,
}

/// Schema fields upstream rejects or ignores, remembered for the acceptance checks.
#[derive(Debug, Clone, Default)]
pub struct Unsupported {
    pub id: bool,
    pub schema: bool,
    pub ref_: bool,
    pub pattern_properties: Option<Vec<(String, Node)>>,
    pub dependencies: Option<Vec<(String, Option<Node>)>>,
    pub additional_items: Option<Option<Box<Node>>>,
    pub definitions: Option<Vec<(String, Node)>>,
    /// `items` given as an array of schemas.
    pub items_array: Option<Vec<Node>>,
    /// `x-kubernetes-preserve-unknown-fields: false`.
    pub preserve_false: bool,
    pub external_docs: bool,
}

/// A schema node: the generic fields, the Kubernetes extensions and the value validations.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub ty: String,
    /// `format` as written.
    pub format: String,
    /// The format the validator checks: upstream strips formats it does not support for the type.
    pub vformat: String,
    pub title: String,
    pub description: String,
    pub nullable: bool,
    pub default: Option<Value>,
    pub items: Option<Box<Node>>,
    pub properties: BTreeMap<String, Node>,
    pub additional_properties: Option<AdditionalProperties>,

    pub preserve_unknown_fields: bool,
    pub embedded_resource: bool,
    pub int_or_string: bool,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub map_type: Option<String>,
    pub rules: Vec<Rule>,

    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub max_length: Option<i64>,
    pub min_length: Option<i64>,
    pub pattern: String,
    /// `pattern` compiled once at parse time (None if empty or invalid).
    pub pattern_re: Option<regex::Regex>,
    pub max_items: Option<i64>,
    pub min_items: Option<i64>,
    pub unique_items: bool,
    pub multiple_of: Option<f64>,
    pub enum_values: Option<Vec<Value>>,
    pub max_properties: Option<i64>,
    pub min_properties: Option<i64>,
    pub required: Vec<String>,
    pub all_of: Vec<Node>,
    pub one_of: Vec<Node>,
    pub any_of: Vec<Node>,
    pub not: Option<Box<Node>>,

    /// `Some(t)` when the node is nothing but `type: t` (the int-or-string `anyOf` pattern).
    pub bare_type: Option<String>,
    pub unsupported: Unsupported,
    /// The CEL programs of `rules`, compiled when the whole schema was accepted.
    pub compiled: Vec<Arc<CompiledRule>>,
    /// Whether this node or one below it has rules ([`Node::mark_rules`], set once parsed).
    pub rules_below: bool,
}

impl Node {
    /// Whether any value validation is set (upstream: `ValueValidation` not all zero).
    pub fn has_value_validation(&self) -> bool {
        !self.vformat.is_empty()
            || !self.format.is_empty()
            || self.maximum.is_some()
            || self.exclusive_maximum
            || self.minimum.is_some()
            || self.exclusive_minimum
            || self.max_length.is_some()
            || self.min_length.is_some()
            || !self.pattern.is_empty()
            || self.max_items.is_some()
            || self.min_items.is_some()
            || self.unique_items
            || self.multiple_of.is_some()
            || self.enum_values.is_some()
            || self.max_properties.is_some()
            || self.min_properties.is_some()
            || !self.required.is_empty()
            || !self.all_of.is_empty()
            || !self.one_of.is_empty()
            || !self.any_of.is_empty()
            || self.not.is_some()
    }

    /// Whether any Kubernetes extension is set.
    pub fn has_extensions(&self) -> bool {
        self.preserve_unknown_fields
            || self.embedded_resource
            || self.int_or_string
            || self.list_type.is_some()
            || !self.list_map_keys.is_empty()
            || self.map_type.is_some()
            || !self.rules.is_empty()
    }

    /// The schema of a field of an object value: its property, else `additionalProperties`.
    pub fn field_schema(&self, k: &str) -> Option<&Node> {
        match self.properties.get(k) {
            Some(p) => Some(p),
            None => match &self.additional_properties {
                Some(AdditionalProperties::Schema(s)) => Some(s),
                _ => None,
            },
        }
    }

    /// The `additionalProperties` schema, if one is given.
    pub fn additional_schema(&self) -> Option<&Node> {
        match &self.additional_properties {
            Some(AdditionalProperties::Schema(s)) => Some(s),
            _ => None,
        }
    }

    /// Sets [`Node::rules_below`] on this node and the nodes below it; returns it.
    pub fn mark_rules(&mut self) -> bool {
        let mut any = !self.rules.is_empty();
        if let Some(i) = &mut self.items {
            any |= i.mark_rules();
        }
        for p in self.properties.values_mut() {
            any |= p.mark_rules();
        }
        if let Some(AdditionalProperties::Schema(a)) = &mut self.additional_properties {
            any |= a.mark_rules();
        }
        self.rules_below = any;
        any
    }

    /// Whether any node of this schema (properties, items, additionalProperties, allOf) has
    /// `x-kubernetes-validations`.
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
            || self.items.as_ref().is_some_and(|i| i.has_rules())
            || self.properties.values().any(|p| p.has_rules())
            || self.additional_schema().is_some_and(|a| a.has_rules())
            || self.all_of.iter().any(|a| a.has_rules())
    }
}

/// Go's JSON decoding of `JSONSchemaProps` field by field.
struct Reader<'a> {
    obj: &'a Map<String, Value>,
    path: &'a str,
    errs: &'a mut Vec<FieldError>,
}

impl Reader<'_> {
    fn type_err(&mut self, k: &str, v: &Value, want: &str) {
        self.errs.push(FieldError::invalid(child(self.path, k), v.clone(), format!("must be {want}")));
    }
    fn string(&mut self, k: &str) -> String {
        match self.obj.get(k) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => {
                self.type_err(k, v, "a string");
                String::new()
            }
        }
    }
    fn opt_string(&mut self, k: &str) -> Option<String> {
        match self.obj.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.type_err(k, v, "a string");
                None
            }
        }
    }
    fn boolean(&mut self, k: &str) -> bool {
        self.opt_bool(k).unwrap_or(false)
    }
    fn opt_bool(&mut self, k: &str) -> Option<bool> {
        match self.obj.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(v) => {
                self.type_err(k, v, "a boolean");
                None
            }
        }
    }
    fn float(&mut self, k: &str) -> Option<f64> {
        match self.obj.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(v) => {
                self.type_err(k, v, "a number");
                None
            }
        }
    }
    fn int(&mut self, k: &str) -> Option<i64> {
        match self.obj.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            Some(v) => {
                self.type_err(k, v, "an integer");
                None
            }
        }
    }
    fn strings(&mut self, k: &str) -> Vec<String> {
        match self.obj.get(k) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) if a.iter().all(|x| x.is_string()) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
            Some(v) => {
                self.type_err(k, v, "a list of strings");
                Vec::new()
            }
        }
    }
    fn schema(&mut self, k: &str) -> Option<Node> {
        match self.obj.get(k) {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_node(v, &child(self.path, k), self.errs)),
        }
    }
    fn schemas(&mut self, k: &str) -> Vec<Node> {
        match self.obj.get(k) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => {
                let p = child(self.path, k);
                a.iter().enumerate().map(|(i, x)| parse_node(x, &format!("{p}[{i}]"), self.errs)).collect()
            }
            Some(v) => {
                self.type_err(k, v, "a list of schemas");
                Vec::new()
            }
        }
    }
    fn schema_map(&mut self, k: &str) -> Option<Vec<(String, Node)>> {
        match self.obj.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                let p = child(self.path, k);
                Some(m.iter().map(|(name, x)| (name.clone(), parse_node(x, &key(&p, name), self.errs))).collect())
            }
            Some(v) => {
                self.type_err(k, v, "an object");
                None
            }
        }
    }
}

const KNOWN_KEYS: &[&str] = &[
    "id",
    "$schema",
    "$ref",
    "description",
    "type",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "definitions",
    "externalDocs",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// Parses one schema object at `path` (a field path as upstream prints it).
pub fn parse_node(v: &Value, path: &str, errs: &mut Vec<FieldError>) -> Node {
    let Some(obj) = v.as_object() else {
        errs.push(FieldError::invalid(path, v.clone(), "must be an object"));
        return Node::default();
    };
    let mut r = Reader { obj, path, errs };
    let mut n = Node {
        ty: r.string("type"),
        format: r.string("format"),
        title: r.string("title"),
        description: r.string("description"),
        nullable: r.boolean("nullable"),
        maximum: r.float("maximum"),
        exclusive_maximum: r.boolean("exclusiveMaximum"),
        minimum: r.float("minimum"),
        exclusive_minimum: r.boolean("exclusiveMinimum"),
        max_length: r.int("maxLength"),
        min_length: r.int("minLength"),
        pattern: r.string("pattern"),
        max_items: r.int("maxItems"),
        min_items: r.int("minItems"),
        unique_items: r.boolean("uniqueItems"),
        multiple_of: r.float("multipleOf"),
        max_properties: r.int("maxProperties"),
        min_properties: r.int("minProperties"),
        required: r.strings("required"),
        embedded_resource: r.boolean("x-kubernetes-embedded-resource"),
        int_or_string: r.boolean("x-kubernetes-int-or-string"),
        list_map_keys: r.strings("x-kubernetes-list-map-keys"),
        list_type: r.opt_string("x-kubernetes-list-type"),
        map_type: r.opt_string("x-kubernetes-map-type"),
        ..Node::default()
    };
    // `default: null` decodes to no default, as a nil *JSON.
    n.default = obj.get("default").filter(|d| !d.is_null()).cloned();
    match obj.get("enum") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => n.enum_values = Some(a.clone()),
        Some(other) => r.type_err("enum", other, "a list"),
    }
    match r.opt_bool("x-kubernetes-preserve-unknown-fields") {
        Some(true) => n.preserve_unknown_fields = true,
        Some(false) => n.unsupported.preserve_false = true,
        None => {}
    }
    n.unsupported.id = !r.string("id").is_empty();
    n.unsupported.schema = !r.string("$schema").is_empty();
    n.unsupported.ref_ = r.opt_string("$ref").is_some();
    n.unsupported.external_docs = obj.get("externalDocs").is_some_and(|d| !d.is_null());
    match obj.get("items") {
        None | Some(Value::Null) => {}
        Some(Value::Array(_)) => n.unsupported.items_array = Some(r.schemas("items")),
        Some(_) => n.items = r.schema("items").map(Box::new),
    }
    n.all_of = r.schemas("allOf");
    n.one_of = r.schemas("oneOf");
    n.any_of = r.schemas("anyOf");
    n.not = r.schema("not").map(Box::new);
    if let Some(props) = r.schema_map("properties") {
        n.properties = props.into_iter().collect();
    }
    match obj.get("additionalProperties") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => n.additional_properties = Some(AdditionalProperties::Bool(*b)),
        Some(_) => n.additional_properties = r.schema("additionalProperties").map(|s| AdditionalProperties::Schema(Box::new(s))),
    }
    n.unsupported.pattern_properties = r.schema_map("patternProperties").filter(|m| !m.is_empty());
    n.unsupported.definitions = r.schema_map("definitions").filter(|m| !m.is_empty());
    match obj.get("dependencies") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            let p = child(path, "dependencies");
            let deps = m.iter().map(|(k, d)| (k.clone(), if d.is_object() { Some(parse_node(d, &key(&p, k), r.errs)) } else { None })).collect();
            n.unsupported.dependencies = Some(deps);
        }
        Some(other) => r.type_err("dependencies", other, "an object"),
    }
    match obj.get("additionalItems") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(_)) => n.unsupported.additional_items = Some(None),
        Some(_) => n.unsupported.additional_items = Some(r.schema("additionalItems").map(Box::new)),
    }
    match obj.get("x-kubernetes-validations") {
        None | Some(Value::Null) => {}
        Some(Value::Array(rules)) => {
            let p = child(path, "x-kubernetes-validations");
            for (i, rv) in rules.iter().enumerate() {
                let rp = format!("{p}[{i}]");
                let Some(ro) = rv.as_object() else {
                    r.errs.push(FieldError::invalid(rp, rv.clone(), "must be an object"));
                    continue;
                };
                let mut rr = Reader { obj: ro, path: &rp, errs: r.errs };
                n.rules.push(Rule {
                    rule: rr.string("rule"),
                    message: rr.string("message"),
                    message_expression: rr.string("messageExpression"),
                    reason: rr.opt_string("reason"),
                    field_path: rr.string("fieldPath"),
                    optional_old_self: rr.opt_bool("optionalOldSelf"),
                });
            }
        }
        Some(other) => r.type_err("x-kubernetes-validations", other, "a list"),
    }
    if !n.pattern.is_empty() {
        n.pattern_re = regex::Regex::new(&n.pattern).ok();
    }
    n.vformat = supported_format(&n.ty, &n.format, n.int_or_string);
    // The int-or-string `anyOf` pattern compares nested schemas that set nothing but `type`.
    if obj.keys().all(|k| k == "type" || k == "example" || !KNOWN_KEYS.contains(&k.as_str())) {
        if let Some(Value::String(t)) = obj.get("type") {
            n.bare_type = Some(t.clone());
        }
    }
    n
}

/// The format the validator enforces: upstream's `StripUnsupportedFormatsPostProcess` clears
/// formats that are not supported for the schema's type (so unknown formats are ignored).
fn supported_format(ty: &str, format: &str, int_or_string: bool) -> String {
    if format.is_empty() {
        return String::new();
    }
    // int-or-string converts to the type list [integer, string]: not one type, so the
    // post-processor treats it as untyped.
    let ty = if int_or_string { "" } else { ty };
    let keep = match ty {
        "" | "string" => super::formats::is_supported(format),
        "integer" => format == "int32" || format == "int64",
        "number" => format == "float" || format == "double",
        _ => false,
    };
    if keep {
        format.to_string()
    } else {
        String::new()
    }
}
