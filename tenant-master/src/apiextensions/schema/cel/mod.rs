//! `x-kubernetes-validations`: CEL rules compiled once per CRD version with the `cel` crate and
//! evaluated over custom resources as upstream's `schema/cel` validator does (`self`, `oldSelf`
//! transition rules, `optionalOldSelf`, `message`, `messageExpression`, `reason`, `fieldPath`,
//! ratcheting of unchanged values).
//!
//! Differences from upstream, because the `cel` crate has no type checker and no cost tracking:
//! compile-time checking is [`check`]'s approximation (undeclared names and fields, non-bool
//! results, cost estimate), and the runtime budget is charged an estimate per evaluation (the
//! expression's size plus the size of `self`) instead of measured cost. Set and map lists
//! compare as plain lists in CEL equality.

pub mod check;
pub mod lib;
pub mod value;

use std::sync::Arc;

use cel::common::types::CelOptional;
use cel::common::value::Val;
use cel::{Context, ExecutionError, Program, Value as CelValue};
use serde_json::Value;

use super::node::{Node, Rule};
use super::path::{child, index, key, shown};
use crate::api::gofmt::quote;
use crate::api::status::FieldError;
use check::{max_elements, schema_ty, Checker, Ty};

/// Upstream's `StaticEstimatedCostLimit` (per expression).
pub const PER_EXPRESSION_COST_LIMIT: f64 = 10_000_000.0;
/// Upstream's `StaticEstimatedCRDCostLimit` (all rules of a schema).
pub const CRD_COST_LIMIT: f64 = 100_000_000.0;
/// Upstream's `RuntimeCELCostBudget` per custom resource.
pub const RUNTIME_BUDGET: i64 = 10_000_000;
/// Upstream's `MaxEvaluatedMessageExpressionSizeBytes`.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// One compiled rule.
#[derive(Debug)]
pub struct CompiledRule {
    pub rule: Rule,
    program: Option<Program>,
    message: Option<Program>,
    pub uses_old_self: bool,
    field_path: String,
    ast_cost: i64,
}

/// Where in the schema a rule sits, for the cost estimate.
#[derive(Clone)]
pub struct CelCtx {
    cardinality: f64,
    resource_root: bool,
}

impl CelCtx {
    /// The schema root (a resource root).
    pub fn root() -> Self {
        CelCtx { cardinality: 1.0, resource_root: true }
    }
    /// A property of this node.
    pub fn property(&self, n: &Node) -> Self {
        CelCtx { cardinality: self.cardinality, resource_root: n.embedded_resource }
    }
    /// The items of this list node.
    pub fn items(&self, items: &Node, max_items: Option<i64>) -> Self {
        CelCtx { cardinality: self.cardinality * max_elements(max_items, Some(items)).max(1.0), resource_root: items.embedded_resource }
    }
    /// The values of this map node.
    pub fn additional_properties(&self, ap: &Node, max_properties: Option<i64>) -> Self {
        CelCtx { cardinality: self.cardinality * max_elements(max_properties, Some(ap)).max(1.0), resource_root: ap.embedded_resource }
    }
}

/// The estimated cost of all rules of a schema.
#[derive(Default)]
pub struct CostTotal {
    total: f64,
    most_expensive: Vec<(String, f64)>,
}

impl CostTotal {
    fn observe(&mut self, path: String, cost: f64) {
        self.total += cost;
        self.most_expensive.push((path, cost));
        self.most_expensive.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
        self.most_expensive.truncate(4);
    }
    /// The errors when the total exceeds upstream's limit for a whole schema.
    pub fn errors(&self, field: &str) -> Vec<FieldError> {
        if self.total <= CRD_COST_LIMIT {
            return Vec::new();
        }
        let mut errs: Vec<FieldError> = self
            .most_expensive
            .iter()
            .map(|(p, _)| FieldError::forbidden(p.as_str(), "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"))
            .collect();
        errs.push(FieldError::forbidden(
            field,
            cost_message("x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema", self.total, CRD_COST_LIMIT),
        ));
        errs
    }
}

fn cost_message(what: &str, cost: f64, limit: f64) -> String {
    let f = cost / limit;
    let factor = if f > 100.0 {
        "more than 100x".to_string()
    } else if f < 1.5 {
        format!("{f:.6}x")
    } else {
        format!("{f:.1}x")
    };
    format!("{what} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)")
}

/// The rule as Go prints the internal `apiextensions.ValidationRule` with `%#v`.
fn rule_struct(r: &Rule) -> String {
    let reason = if r.reason.is_some() { "(*apiextensions.FieldValueErrorReason)(0xc000000000)" } else { "(*apiextensions.FieldValueErrorReason)(nil)" };
    let old = if r.optional_old_self.is_some() { "(*bool)(0xc000000000)" } else { "(*bool)(nil)" };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, OptionalOldSelf:{old}}}",
        quote(&r.rule),
        quote(&r.message),
        quote(&r.message_expression),
        quote(&r.field_path)
    )
}

fn issue(src: &str, program: &Program, id: u64, msg: &str) -> String {
    let mut start = program.source_info().offset_for(id).map(|(s, _)| s as usize).unwrap_or(0).min(src.len());
    while !src.is_char_boundary(start) {
        start -= 1;
    }
    let line_start = src[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = 1 + src[..start].matches('\n').count();
    let col = src[line_start..start].chars().count() + 1;
    let text = src[line_start..].lines().next().unwrap_or("");
    format!("ERROR: <input>:{line}:{col}: {msg}\n | {text}\n | {}^", ".".repeat(col - 1))
}

/// A program and the static facts about it.
struct Compiled {
    program: Program,
    ty_ok: bool,
    cost: f64,
    ast_cost: i64,
}

/// Compiles an expression against a schema; `want` is "bool" or "string".
fn compile_expr(src: &str, n: &Node, resource_root: bool, want: &str) -> Result<Compiled, String> {
    let program = lib::ENV.compile(src).map_err(|e| e.to_string())?;
    let mut checker = Checker::new(schema_ty(n, resource_root));
    let checked = checker.check(program.expression());
    if let Some((id, msg)) = checker.errors.first() {
        return Err(issue(src, &program, *id, msg));
    }
    let ty_ok = matches!((&checked.ty, want), (Ty::Dyn, _) | (Ty::Bool, "bool") | (Ty::Str(_), "string"));
    let ast_cost = count_nodes(program.expression()) as i64;
    Ok(Compiled { program, ty_ok, cost: checked.cost, ast_cost })
}

fn count_nodes(e: &cel::IdedExpr) -> usize {
    use cel::common::ast::Expr;
    1 + match &e.expr {
        Expr::Call(c) => c.target.as_deref().map(count_nodes).unwrap_or(0) + c.args.iter().map(count_nodes).sum::<usize>(),
        Expr::Select(s) => count_nodes(&s.operand),
        Expr::List(l) => l.elements.iter().map(count_nodes).sum(),
        Expr::Comprehension(c) => count_nodes(&c.iter_range) + count_nodes(&c.loop_step) + count_nodes(&c.loop_cond) + count_nodes(&c.result),
        _ => 0,
    }
}

fn uses_old_self(p: &Program) -> bool {
    p.references().has_variable("oldSelf")
}

/// Compiles the rules of `n` (at `p`) for the CRD; returns the CEL errors upstream reports.
pub fn compile_node(n: &mut Node, p: &str, ctx: &CelCtx, uncorrelatable: &Option<String>, total: &mut CostTotal) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut compiled = Vec::new();
    for (i, r) in n.rules.iter().enumerate() {
        let rp = index(&child(p, "x-kubernetes-validations"), i);
        let field_path = if r.field_path.is_empty() { String::new() } else { valid_field_path(&r.field_path, n).unwrap_or_default() };
        let mut cr = CompiledRule { rule: r.clone(), program: None, message: None, uses_old_self: false, field_path, ast_cost: 1 };
        if r.rule.trim().is_empty() {
            compiled.push(Arc::new(cr));
            continue;
        }
        match compile_expr(&r.rule, n, ctx.resource_root, "bool") {
            Err(e) => errs.push(FieldError::invalid_rendered(child(&rp, "rule"), rule_struct(r), format!("compilation failed: {e}"))),
            Ok(c) if !c.ty_ok => errs.push(FieldError::invalid_rendered(child(&rp, "rule"), rule_struct(r), "cel expression must evaluate to a bool")),
            Ok(c) => {
                let cost = c.cost * ctx.cardinality;
                if cost > PER_EXPRESSION_COST_LIMIT {
                    errs.push(FieldError::forbidden(child(&rp, "rule"), cost_message("estimated rule cost", cost, PER_EXPRESSION_COST_LIMIT)));
                }
                total.observe(child(&rp, "rule"), cost);
                cr.uses_old_self = uses_old_self(&c.program);
                cr.ast_cost = c.ast_cost;
                cr.program = Some(c.program);
            }
        }
        if !r.message_expression.trim().is_empty() {
            match compile_expr(&r.message_expression, n, ctx.resource_root, "string") {
                Err(e) => errs.push(FieldError::invalid_rendered(
                    child(&rp, "messageExpression"),
                    rule_struct(r),
                    format!("messageExpression compilation failed: {e}"),
                )),
                Ok(c) if !c.ty_ok => {
                    errs.push(FieldError::invalid_rendered(child(&rp, "messageExpression"), rule_struct(r), "messageExpression must evaluate to a string"))
                }
                Ok(c) => {
                    let cost = c.cost * ctx.cardinality;
                    if cost > PER_EXPRESSION_COST_LIMIT {
                        errs.push(FieldError::forbidden(
                            child(&rp, "messageExpression"),
                            cost_message("estimated messageExpression cost", cost, PER_EXPRESSION_COST_LIMIT),
                        ));
                    }
                    total.observe(child(&rp, "messageExpression"), cost);
                    cr.message = Some(c.program);
                }
            }
        }
        if cr.program.is_some() {
            if cr.uses_old_self {
                if let Some(up) = uncorrelatable {
                    errs.push(FieldError::invalid(
                        child(&rp, "rule"),
                        r.rule.as_str(),
                        format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {up}"),
                    ));
                }
            } else if let Some(b) = r.optional_old_self {
                errs.push(FieldError::invalid(child(&rp, "optionalOldSelf"), b, "may not be set if oldSelf is not used in rule"));
            }
        }
        compiled.push(Arc::new(cr));
    }
    if errs.is_empty() {
        n.compiled = compiled;
    }
    errs
}

/// Rules of `n`, compiled when parsing; compiled on the spot for schemas not yet accepted
/// (defaults are validated before the rules are compiled into the schema).
fn rules_of(n: &Node, resource_root: bool) -> Vec<Arc<CompiledRule>> {
    if n.compiled.len() == n.rules.len() {
        return n.compiled.clone();
    }
    let mut scratch = n.clone();
    let ctx = CelCtx { cardinality: 1.0, resource_root };
    let _ = compile_node(&mut scratch, "", &ctx, &None, &mut CostTotal::default());
    scratch.compiled
}

/// The nearest correlated (new, old) pair above a node: errors of rules that do not use
/// `oldSelf` are ratcheted when it is unchanged.
pub type Correlated<'a> = Option<(&'a Value, &'a Value)>;

/// Evaluates the rules of `n` and of its descendants over `obj`; `old` is the correlated old
/// value (transition rules, ratcheting), `parent` the nearest correlated ancestor; `ratchet`
/// is false where upstream does not ratchet (defaults).
#[allow(clippy::too_many_arguments)]
pub fn validate_tree<'a>(
    n: &Node,
    p: &str,
    obj: &'a Value,
    old: Option<&'a Value>,
    resource_root: bool,
    errs: &mut Vec<FieldError>,
    budget: &mut i64,
    parent: Correlated<'a>,
    ratchet: bool,
) {
    let below = n.rules_below || (n.compiled.len() != n.rules.len() && n.has_rules());
    if obj.is_null() || *budget < 0 || !below {
        return;
    }
    let here: Correlated<'a> = match old {
        Some(o) if ratchet => Some((obj, o)),
        _ => parent,
    };
    if !n.rules.is_empty() {
        expressions(n, p, obj, old, resource_root, errs, budget, here);
        if *budget < 0 {
            return;
        }
    }
    match obj {
        Value::Array(items) => {
            let Some(is) = &n.items else { return };
            let olds = old.and_then(Value::as_array);
            for (i, v) in items.iter().enumerate() {
                let o = if n.list_type.as_deref() == Some("map") { olds.and_then(|os| map_list_get(n, os, v)) } else { None };
                validate_tree(is, &index(p, i), v, o, is.embedded_resource, errs, budget, here, ratchet);
                if *budget < 0 {
                    return;
                }
            }
        }
        Value::Object(m) => {
            let correlatable = n.map_type.as_deref() != Some("atomic");
            let olds = old.and_then(Value::as_object).filter(|_| correlatable);
            if let Some(ap) = n.additional_schema() {
                for (k, v) in m {
                    validate_tree(ap, &key(p, k), v, olds.and_then(|o| o.get(k)), ap.embedded_resource, errs, budget, here, ratchet);
                }
            }
            for (k, v) in m {
                if let Some(sub) = n.properties.get(k) {
                    validate_tree(sub, &child(p, k), v, olds.and_then(|o| o.get(k)), sub.embedded_resource, errs, budget, here, ratchet);
                }
                if *budget < 0 {
                    return;
                }
            }
        }
        _ => {}
    }
}

fn map_list_get<'a>(n: &Node, olds: &'a [Value], item: &Value) -> Option<&'a Value> {
    let item = item.as_object()?;
    let want: Vec<Option<&Value>> = n.list_map_keys.iter().map(|k| item.get(k)).collect();
    olds.iter().find(|o| o.as_object().is_some_and(|o| n.list_map_keys.iter().map(|k| o.get(k)).eq(want.iter().copied())))
}

fn json_size(v: &Value) -> i64 {
    match v {
        Value::Array(a) => 1 + a.iter().map(json_size).sum::<i64>(),
        Value::Object(m) => 1 + m.values().map(json_size).sum::<i64>(),
        Value::String(s) => 1 + (s.len() as i64) / 10,
        _ => 1,
    }
}

fn rule_error_string(r: &Rule) -> String {
    if r.message.is_empty() {
        r.rule.trim().to_string()
    } else {
        r.message.trim().to_string()
    }
}

fn exec_error(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::IndexOutOfBounds(i) => format!("index out of bounds: {i:?}"),
        other => other.to_string(),
    }
}

fn ctx_with<'c>(self_v: &CelValue, old: Option<&CelValue>, optional: bool) -> Context<'c, 'c> {
    let mut ctx = Context::with_env(lib::ENV.clone());
    ctx.add_variable_from_value("self", self_v.clone());
    if optional {
        let opt = match old.map(|v| Box::<dyn Val>::try_from(v.clone())) {
            Some(Ok(b)) => CelOptional::of(b),
            _ => CelOptional::none(),
        };
        ctx.add_variable_as_val("oldSelf", Box::new(opt));
    } else if let Some(v) = old {
        ctx.add_variable_from_value("oldSelf", v.clone());
    }
    ctx
}

#[allow(clippy::too_many_arguments)]
fn expressions(n: &Node, p: &str, obj: &Value, old: Option<&Value>, resource_root: bool, errs: &mut Vec<FieldError>, budget: &mut i64, here: Correlated) {
    let ty = n.ty.as_str();
    let rules = rules_of(n, resource_root);
    if *budget <= 0 {
        errs.push(FieldError::invalid(shown(p), ty, "validation failed due to running out of cost budget, no further validation rules will be run"));
        *budget = -1;
        return;
    }
    let self_val = match value::to_cel(obj, n, resource_root) {
        Ok(v) => v,
        Err(e) => {
            for cr in rules.iter().filter(|r| r.program.is_some()) {
                errs.push(FieldError::invalid(shown(p), ty, format!("{e} evaluating rule: {}", rule_error_string(&cr.rule))));
            }
            return;
        }
    };
    let any_old = rules.iter().any(|r| r.uses_old_self);
    let old_val = if any_old { old.and_then(|o| value::to_cel(o, n, resource_root).ok()) } else { None };
    let size = json_size(obj);
    let mut plain: Option<Context> = None;
    let mut unchanged: Option<bool> = None;
    for cr in rules {
        let Some(program) = &cr.program else { continue };
        let optional = cr.rule.optional_old_self.unwrap_or(false);
        if cr.uses_old_self && old.is_none() && !optional {
            continue;
        }
        let cost = cr.ast_cost + size;
        if cost > *budget {
            errs.push(FieldError::invalid(shown(p), ty, "validation failed due to running out of cost budget, no further validation rules will be run"));
            *budget = -1;
            return;
        }
        *budget -= cost;
        let own;
        let ctx: &Context = if optional && cr.uses_old_self {
            own = ctx_with(&self_val, old_val.as_ref(), true);
            &own
        } else {
            plain.get_or_insert_with(|| ctx_with(&self_val, old_val.as_ref(), false))
        };
        // The interpreter runs over user input: a panic in it must not take the server down.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program.execute(ctx)))
            .unwrap_or_else(|_| Err(ExecutionError::function_error("evaluation", "internal error")));
        match result {
            Err(e) => {
                let msg = match &e {
                    ExecutionError::NoSuchOverload(_) => {
                        format!(
                            "'{}': call arguments did not match a supported operator, function or macro signature for rule: {}",
                            exec_error(&e),
                            rule_error_string(&cr.rule)
                        )
                    }
                    _ => format!("{} evaluating rule: {}", exec_error(&e), rule_error_string(&cr.rule)),
                };
                errs.push(FieldError::invalid(shown(p), ty, msg));
            }
            Ok(CelValue::Bool(true)) => {}
            Ok(_) => {
                if !cr.uses_old_self && *unchanged.get_or_insert_with(|| here.is_some_and(|(a, b)| a == b)) {
                    continue; // ratcheted: the value did not change
                }
                let path = if cr.field_path.is_empty() { p.to_string() } else { child(p, &cr.field_path) };
                let detail = message(&cr, ctx).unwrap_or_else(|| {
                    if cr.rule.message.is_empty() {
                        format!("failed rule: {}", rule_error_string(&cr.rule))
                    } else {
                        cr.rule.message.trim().to_string()
                    }
                });
                let fe = match cr.rule.reason.as_deref() {
                    Some("FieldValueForbidden") => FieldError::forbidden(shown(&path), detail),
                    Some("FieldValueRequired") => FieldError::required(shown(&path), detail),
                    Some("FieldValueDuplicate") => FieldError::duplicate(shown(&path), ty),
                    _ => FieldError::invalid(shown(&path), ty, detail),
                };
                errs.push(fe);
            }
        }
    }
}

/// The evaluated `messageExpression`, when it gives a usable message.
fn message(cr: &CompiledRule, ctx: &Context) -> Option<String> {
    let program = cr.message.as_ref()?;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program.execute(ctx))).ok()?;
    let CelValue::String(s) = result.ok()? else { return None };
    let t = s.trim();
    (!t.is_empty() && t.len() <= MAX_MESSAGE_BYTES && !t.contains('\n')).then(|| t.to_string())
}

/// Upstream's `ValidFieldPath`: a JSON path of field names (`.a.b`) and quoted keys
/// (`['a.b']`) the schema declares; returns it as a field path (`a.b`, `a[k]`).
pub fn valid_field_path(path: &str, schema: &Node) -> Result<String, String> {
    let mut toks = Vec::new();
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' | b'[' | b']' => {
                toks.push(path[i..i + 1].to_string());
                i += 1;
            }
            b'\'' => {
                let mut j = i + 1;
                while j < b.len() && !(b[j] == b'\'' && b[j - 1] != b'\\') {
                    j += 1;
                }
                toks.push(path[i..(j + 1).min(b.len())].to_string());
                i = j + 1;
            }
            _ => {
                let start = i;
                while i < b.len() && !matches!(b[i], b'.' | b'[' | b']') {
                    i += 1;
                }
                toks.push(path[start..i].to_string());
            }
        }
    }
    let mut out = String::new();
    let mut s = schema;
    let mut it = toks.into_iter();
    while let Some(tok) = it.next() {
        let name = match tok.as_str() {
            "[" => {
                let t = it.next().ok_or("unexpected end of JSON path")?;
                if t.len() < 2 || !t.starts_with('\'') || !t.ends_with('\'') {
                    return Err(format!("expected single quoted string but got {t}"));
                }
                let inner = t[1..t.len() - 1].replace("\\'", "'").replace("\\\\", "\\");
                if it.next().as_deref() != Some("]") {
                    return Err("expected ] but got something else".into());
                }
                inner
            }
            "." => it.next().ok_or("unexpected end of JSON path")?,
            other => return Err(format!("expected [ or . but got: {other}")),
        };
        if !s.properties.is_empty() {
            s = s.properties.get(&name).ok_or("does not refer to a valid field")?;
            out = child(&out, &name);
        } else if let Some(ap) = s.additional_schema() {
            s = ap;
            out = key(&out, &name);
        } else {
            return Err("does not refer to a valid field".into());
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) fn eval_for_test(src: &str, self_json: &Value) -> Result<CelValue, String> {
    let program = lib::ENV.compile(src).map_err(|e| e.to_string())?;
    let mut ctx = Context::with_env(lib::ENV.clone());
    ctx.add_variable_from_value("self", value::dynamic(self_json));
    program.execute(&ctx).map_err(|e| exec_error(&e))
}
