//! A compile-time check of CEL rules against the schema, standing in for cel-go's type checker
//! (the `cel` crate only parses): references to undeclared variables and functions, fields the
//! schema does not declare, a result that cannot be a bool; and a worst-case cost estimate in
//! the spirit of upstream's (sizes from maxItems/maxProperties/maxLength, else what fits in a
//! 3 MiB request). Types it cannot follow are dynamic and pass.

use cel::common::ast::{Expr, IdedExpr, LiteralValue};

use super::super::node::Node;
use super::lib::FUNCTIONS;
use super::value::escape;

/// The largest request the API server accepts, which bounds unbounded lists and strings.
pub const MAX_REQUEST_BYTES: f64 = 3_145_728.0;

/// A static type.
#[derive(Clone)]
pub enum Ty<'a> {
    Dyn,
    Bool,
    Int,
    Uint,
    Double,
    Str(f64),
    Bytes,
    Null,
    Timestamp,
    Duration,
    List(Box<Ty<'a>>, f64),
    Map(Box<Ty<'a>>, f64),
    Obj(&'a Node, bool),
    Meta,
    TypeT,
}

impl Ty<'_> {
    fn name(&self) -> &'static str {
        match self {
            Ty::Dyn => "dyn",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Uint => "uint",
            Ty::Double => "double",
            Ty::Str(_) => "string",
            Ty::Bytes => "bytes",
            Ty::Null => "null_type",
            Ty::Timestamp => "google.protobuf.Timestamp",
            Ty::Duration => "google.protobuf.Duration",
            Ty::List(..) => "list",
            Ty::Map(..) => "map",
            Ty::Obj(..) | Ty::Meta => "object",
            Ty::TypeT => "type",
        }
    }
    fn size(&self) -> f64 {
        match self {
            Ty::Str(n) | Ty::List(_, n) | Ty::Map(_, n) => *n,
            _ => 1.0,
        }
    }
}

/// The smallest JSON a value of this schema takes, for estimating unbounded sizes.
fn min_size(n: &Node) -> f64 {
    match n.ty.as_str() {
        "boolean" => 4.0,
        "integer" | "number" => 1.0,
        _ => 2.0,
    }
}

/// Upstream's estimate of the most elements an unbounded list or map can have.
pub fn max_elements(max: Option<i64>, elem: Option<&Node>) -> f64 {
    match max {
        Some(m) => m.max(0) as f64,
        None => ((MAX_REQUEST_BYTES - 2.0) / (elem.map(min_size).unwrap_or(2.0) + 1.0)).floor(),
    }
}

/// The static type of a schema node.
pub fn schema_ty(n: &Node, resource_root: bool) -> Ty<'_> {
    if n.int_or_string {
        return Ty::Dyn;
    }
    match n.ty.as_str() {
        "object" => {
            if !n.properties.is_empty() || resource_root || n.embedded_resource {
                Ty::Obj(n, resource_root || n.embedded_resource)
            } else if let Some(ap) = n.additional_schema() {
                Ty::Map(Box::new(schema_ty(ap, ap.embedded_resource)), max_elements(n.max_properties, Some(ap)))
            } else if n.preserve_unknown_fields {
                Ty::Dyn
            } else {
                Ty::Obj(n, false)
            }
        }
        "array" => match &n.items {
            Some(is) => Ty::List(Box::new(schema_ty(is, is.embedded_resource)), max_elements(n.max_items, Some(is))),
            None => Ty::Dyn,
        },
        "string" => match n.format.as_str() {
            "date" | "date-time" | "datetime" => Ty::Timestamp,
            "duration" => Ty::Duration,
            "byte" => Ty::Bytes,
            _ => Ty::Str(n.max_length.map(|m| m as f64).unwrap_or(MAX_REQUEST_BYTES - 2.0)),
        },
        "integer" => Ty::Int,
        "number" => Ty::Double,
        "boolean" => Ty::Bool,
        _ => Ty::Dyn,
    }
}

const STD_FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "dyn",
    "type",
    "timestamp",
    "duration",
    "exists",
    "all",
    "exists_one",
    "map",
    "filter",
    "has",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getFullYear",
    "getHours",
    "getMilliseconds",
    "getMinutes",
    "getMonth",
    "getSeconds",
    "charAt",
    "indexOf",
    "lastIndexOf",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "join",
    "format",
    "strings.quote",
    "reverse",
    "flatten",
    "slice",
    "distinct",
    "sort",
    "lists.range",
    "optional.of",
    "optional.ofNonZeroValue",
    "optional.none",
    "hasValue",
    "value",
    "or",
    "orValue",
];

const NAMESPACES: &[&str] = &["sets", "optional", "strings", "lists", "ip"];
const TYPE_NAMES: &[&str] = &["int", "uint", "double", "string", "bool", "bytes", "list", "map", "null_type", "type", "dyn"];

/// The outcome of checking one expression.
pub struct Checked<'a> {
    pub ty: Ty<'a>,
    pub cost: f64,
}

/// Walks an expression with the variables in scope.
pub struct Checker<'a> {
    scope: Vec<(String, Ty<'a>)>,
    pub errors: Vec<(u64, String)>,
}

impl<'a> Checker<'a> {
    /// A checker with `self` (and `oldSelf`) of the given type.
    pub fn new(self_ty: Ty<'a>) -> Self {
        Checker { scope: vec![("self".into(), self_ty.clone()), ("oldSelf".into(), self_ty)], errors: Vec::new() }
    }

    fn lookup(&self, name: &str) -> Option<Ty<'a>> {
        self.scope.iter().rev().find(|(n, _)| n == name).map(|(_, t)| t.clone())
    }

    /// The type and estimated cost of `e`.
    pub fn check(&mut self, e: &IdedExpr) -> Checked<'a> {
        match &e.expr {
            Expr::Literal(l) => Checked {
                ty: match l {
                    LiteralValue::Boolean(_) => Ty::Bool,
                    LiteralValue::Bytes(_) => Ty::Bytes,
                    LiteralValue::Double(_) => Ty::Double,
                    LiteralValue::Int(_) => Ty::Int,
                    LiteralValue::Null => Ty::Null,
                    LiteralValue::String(s) => Ty::Str(s.inner().len() as f64),
                    LiteralValue::UInt(_) => Ty::Uint,
                },
                cost: 0.0,
            },
            Expr::Ident(name) => {
                let ty = match self.lookup(name) {
                    Some(t) => t,
                    None if TYPE_NAMES.contains(&name.as_str()) => Ty::TypeT,
                    None => {
                        self.errors.push((e.id, format!("undeclared reference to '{name}' (in container '')")));
                        Ty::Dyn
                    }
                };
                Checked { ty, cost: 1.0 }
            }
            Expr::Select(sel) => {
                let op = self.check(&sel.operand);
                let ty = self.field(e.id, &op.ty, &sel.field);
                Checked { ty: if sel.test { Ty::Bool } else { ty }, cost: op.cost + 1.0 }
            }
            Expr::Call(call) => self.call(e.id, &call.func_name, call.target.as_deref(), &call.args),
            Expr::List(l) => {
                let mut cost = 10.0;
                let mut elem = Ty::Dyn;
                for (i, x) in l.elements.iter().enumerate() {
                    let c = self.check(x);
                    cost += c.cost;
                    if i == 0 {
                        elem = c.ty;
                    }
                }
                Checked { ty: Ty::List(Box::new(elem), l.elements.len() as f64), cost }
            }
            Expr::Map(m) => {
                let mut cost = 30.0;
                for entry in &m.entries {
                    if let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                        cost += self.check(&me.key).cost + self.check(&me.value).cost;
                    }
                }
                Checked { ty: Ty::Map(Box::new(Ty::Dyn), m.entries.len() as f64), cost }
            }
            Expr::Comprehension(c) => {
                let range = self.check(&c.iter_range);
                let (iter_ty, n) = match &range.ty {
                    Ty::List(t, n) => ((**t).clone(), *n),
                    Ty::Map(_, n) => (Ty::Str(MAX_REQUEST_BYTES), *n),
                    Ty::Dyn => (Ty::Dyn, 1000.0),
                    other => {
                        self.errors
                            .push((e.id, format!("expression of type '{}' cannot be range of a comprehension (must be list, map, or dynamic)", other.name())));
                        (Ty::Dyn, 1.0)
                    }
                };
                let init = self.check(&c.accu_init);
                self.scope.push((c.accu_var.clone(), init.ty.clone()));
                self.scope.push((c.iter_var.clone(), if c.iter_var2.is_some() { Ty::Int } else { iter_ty.clone() }));
                if let Some(v2) = &c.iter_var2 {
                    self.scope.push((v2.clone(), iter_ty));
                }
                let cond = self.check(&c.loop_cond);
                let step = self.check(&c.loop_step);
                let result = self.check(&c.result);
                self.scope.truncate(self.scope.len() - if c.iter_var2.is_some() { 3 } else { 2 });
                let ty = match (&result.ty, &init.ty) {
                    (Ty::List(..), Ty::List(..)) => Ty::List(Box::new(Ty::Dyn), n),
                    (t, _) => t.clone(),
                };
                Checked { ty, cost: range.cost + init.cost + n * (cond.cost + step.cost) + result.cost }
            }
            Expr::Struct(_) => {
                self.errors.push((e.id, "object construction is not supported in CRD validation rules".into()));
                Checked { ty: Ty::Dyn, cost: 40.0 }
            }
            Expr::Unspecified => Checked { ty: Ty::Dyn, cost: 0.0 },
        }
    }

    fn field(&mut self, id: u64, t: &Ty<'a>, f: &str) -> Ty<'a> {
        match t {
            Ty::Obj(n, root) => {
                if *root {
                    match f {
                        "apiVersion" | "kind" => return Ty::Str(MAX_REQUEST_BYTES),
                        "metadata" => return Ty::Meta,
                        _ => {}
                    }
                }
                for (k, p) in &n.properties {
                    if escape(k).as_deref() == Some(f) {
                        return schema_ty(p, p.embedded_resource);
                    }
                }
                if n.preserve_unknown_fields {
                    return Ty::Dyn;
                }
                self.errors.push((id, format!("undefined field '{f}'")));
                Ty::Dyn
            }
            Ty::Meta => {
                if f == "name" || f == "generateName" {
                    Ty::Str(253.0)
                } else {
                    self.errors.push((id, format!("undefined field '{f}'")));
                    Ty::Dyn
                }
            }
            Ty::Map(v, _) => (**v).clone(),
            Ty::Dyn | Ty::TypeT => Ty::Dyn,
            other => {
                self.errors.push((id, format!("type '{}' does not support field selection", other.name())));
                Ty::Dyn
            }
        }
    }

    fn call(&mut self, id: u64, name: &str, target: Option<&IdedExpr>, args: &[IdedExpr]) -> Checked<'a> {
        // `sets.contains(a, b)` parses as a member call on the identifier `sets`.
        if let Some(IdedExpr { expr: Expr::Ident(ns), .. }) = target {
            if NAMESPACES.contains(&ns.as_str()) && self.lookup(ns).is_none() {
                let full = format!("{ns}.{name}");
                return self.call(id, &full, None, args);
            }
        }
        let t = target.map(|t| self.check(t));
        let a: Vec<Checked<'a>> = args.iter().map(|x| self.check(x)).collect();
        let mut cost = 1.0 + t.as_ref().map(|c| c.cost).unwrap_or(0.0) + a.iter().map(|c| c.cost).sum::<f64>();
        let first = t.as_ref().map(|c| c.ty.clone()).or_else(|| a.first().map(|c| c.ty.clone())).unwrap_or(Ty::Dyn);
        let arg_size = |i: usize| a.get(i).map(|c| c.ty.size()).unwrap_or(1.0);
        let ty = match name {
            "_&&_" | "_||_" | "!_" | "@not_strictly_false" | "@in" => Ty::Bool,
            "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" => {
                cost += 0.1 * first.size().min(arg_size(1));
                Ty::Bool
            }
            "_+_" => match (&first, a.get(1).map(|c| &c.ty)) {
                (Ty::Str(x), Some(Ty::Str(y))) => {
                    cost += 0.1 * (x + y);
                    Ty::Str(x + y)
                }
                (Ty::List(e, x), Some(Ty::List(_, y))) => Ty::List(e.clone(), x + y),
                (Ty::Timestamp, _) | (_, Some(Ty::Timestamp)) => Ty::Timestamp,
                _ => first.clone(),
            },
            "_-_" => match (&first, a.get(1).map(|c| &c.ty)) {
                (Ty::Timestamp, Some(Ty::Timestamp)) => Ty::Duration,
                _ => first.clone(),
            },
            "_*_" | "_/_" | "_%_" | "-_" => first.clone(),
            "_?_:_" => a.get(1).map(|c| c.ty.clone()).unwrap_or(Ty::Dyn),
            "_[_]" | "_[?_]" => match &first {
                Ty::List(e, _) | Ty::Map(e, _) => (**e).clone(),
                _ => Ty::Dyn,
            },
            "size" => Ty::Int,
            "contains" | "startsWith" | "endsWith" => {
                cost += 0.1 * first.size().min(arg_size(0).max(1.0));
                Ty::Bool
            }
            "matches" => {
                let target_size = if t.is_some() { first.size() } else { arg_size(0) };
                cost += 0.1 * target_size * 2.0;
                Ty::Bool
            }
            "find" | "findAll" => {
                cost += 0.2 * first.size();
                if name == "find" {
                    Ty::Str(first.size())
                } else {
                    Ty::List(Box::new(Ty::Str(first.size())), first.size())
                }
            }
            "lowerAscii" | "upperAscii" | "trim" | "replace" | "substring" | "charAt" | "reverse" | "format" | "strings.quote" => {
                cost += 0.1 * first.size();
                Ty::Str(first.size())
            }
            "split" => {
                cost += 0.1 * first.size();
                Ty::List(Box::new(Ty::Str(first.size())), first.size())
            }
            "join" => {
                cost += 0.1 * first.size();
                Ty::Str(MAX_REQUEST_BYTES)
            }
            "indexOf" | "lastIndexOf" => {
                cost += 0.1 * first.size();
                Ty::Int
            }
            "int" | "getDate" | "getDayOfMonth" | "getDayOfWeek" | "getDayOfYear" | "getFullYear" | "getHours" | "getMilliseconds" | "getMinutes"
            | "getMonth" | "getSeconds" | "sign" | "asInteger" | "compareTo" | "family" | "prefixLength" => Ty::Int,
            "uint" => Ty::Uint,
            "double" | "asApproximateFloat" => Ty::Double,
            "string" | "getScheme" | "getHost" | "getHostname" | "getPort" | "getEscapedPath" => Ty::Str(MAX_REQUEST_BYTES),
            "bytes" => Ty::Bytes,
            "bool"
            | "isSorted"
            | "isQuantity"
            | "isInteger"
            | "isGreaterThan"
            | "isLessThan"
            | "isIP"
            | "isCIDR"
            | "isURL"
            | "isUnspecified"
            | "isLoopback"
            | "isLinkLocalMulticast"
            | "isLinkLocalUnicast"
            | "isGlobalUnicast"
            | "containsIP"
            | "containsCIDR"
            | "ip.isCanonical"
            | "sets.contains"
            | "sets.equivalent"
            | "sets.intersects"
            | "hasValue" => {
                if name.starts_with("sets.") || name == "isSorted" {
                    cost += first.size() * arg_size(1).max(1.0);
                }
                Ty::Bool
            }
            "timestamp" => Ty::Timestamp,
            "duration" => Ty::Duration,
            "type" => Ty::TypeT,
            "sum" | "min" | "max" => {
                cost += first.size();
                match &first {
                    Ty::List(e, _) => (**e).clone(),
                    _ => Ty::Dyn,
                }
            }
            "sort" | "distinct" | "flatten" | "slice" => {
                cost += first.size() * first.size().log2().max(1.0);
                first.clone()
            }
            "getQuery" => Ty::Map(Box::new(Ty::List(Box::new(Ty::Str(MAX_REQUEST_BYTES)), 1000.0)), 1000.0),
            _ if name.starts_with('_') || name.starts_with('@') || name.starts_with("optional.") || name.starts_with("lists.") => Ty::Dyn,
            _ if STD_FUNCTIONS.contains(&name) || FUNCTIONS.contains(&name) => Ty::Dyn,
            _ => {
                self.errors.push((id, format!("undeclared reference to '{name}' (in container '')")));
                Ty::Dyn
            }
        };
        Checked { ty, cost }
    }
}
