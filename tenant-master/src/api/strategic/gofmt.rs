//! Go's `fmt` rendering of decoded JSON values (`%v`, `%s`, `reflect.Type` names), so error
//! messages read exactly as kube-apiserver's do: upstream builds them from Go maps and slices,
//! e.g. `map: map[image:nginx] does not contain declared merge key: name`.

use serde_json::Value;

/// The Go type a decoded JSON value has (`map[string]interface {}`, `int64`, ...); `None`
/// stands for JSON null, which has no type in Go (`reflect.TypeOf(nil)` is nil).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GoType {
    Map,
    Slice,
    String,
    Bool,
    Int64,
    Float64,
}

impl GoType {
    /// `reflect.Type.String()`.
    pub(super) fn name(self) -> &'static str {
        match self {
            GoType::Map => "map[string]interface {}",
            GoType::Slice => "[]interface {}",
            GoType::String => "string",
            GoType::Bool => "bool",
            GoType::Int64 => "int64",
            GoType::Float64 => "float64",
        }
    }
}

/// The Go type of `v` as apimachinery's JSON decoding produces it: integral numbers become
/// `int64`, all others `float64`.
pub(super) fn go_type(v: &Value) -> Option<GoType> {
    match v {
        Value::Null => None,
        Value::Bool(_) => Some(GoType::Bool),
        Value::Number(n) if n.is_i64() => Some(GoType::Int64),
        Value::Number(_) => Some(GoType::Float64),
        Value::String(_) => Some(GoType::String),
        Value::Array(_) => Some(GoType::Slice),
        Value::Object(_) => Some(GoType::Map),
    }
}

/// `%s` of a `reflect.Type` that may be nil, as in `mergepatch.ErrBadArgType`.
pub(super) fn type_name(v: &Value) -> String {
    go_type(v).map(|t| t.name().to_string()).unwrap_or_else(|| "%!s(<nil>)".into())
}

/// `%v` of a float64: the shortest representation, in exponent form when the exponent is
/// below -4 or at least 6 (what `strconv.FormatFloat(f, 'g', -1, 64)` does).
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Rust's `{:e}` is also the shortest round-trip form: `d.ddde<exp>`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

fn number(v: &serde_json::Number) -> String {
    if let Some(i) = v.as_i64() {
        i.to_string()
    } else {
        go_float(v.as_f64().unwrap_or(0.0))
    }
}

/// `%v` of a decoded JSON value: `map[k:v ...]` with sorted keys, `[a b]`, `<nil>`.
pub(super) fn v(val: &Value) -> String {
    match val {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(v).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys.iter().map(|k| format!("{k}:{}", v(&o[k.as_str()]))).collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// `%v` of several slices at once, as `fmt.Sprint([][]interface{}{...})` prints them.
pub(super) fn v_slices(slices: &[&[Value]]) -> String {
    let parts: Vec<String> = slices.iter().map(|s| v(&Value::Array(s.to_vec()))).collect();
    format!("[{}]", parts.join(" "))
}

/// `%s` of a decoded JSON value: strings as they are, anything else as Go's bad-verb form,
/// e.g. `%!s(bool=true)`.
pub(super) fn s(val: &Value) -> String {
    match val {
        Value::Null => "%!s(<nil>)".into(),
        Value::String(x) => x.clone(),
        Value::Bool(b) => format!("%!s(bool={b})"),
        Value::Number(n) => format!("%!s({}={})", go_type(val).map(|t| t.name()).unwrap_or(""), number(n)),
        Value::Array(a) => format!("[{}]", a.iter().map(s).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys.iter().map(|k| format!("{k}:{}", s(&o[k.as_str()]))).collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_gofmt_renders_like_go() {
        assert_eq!(v(&json!({"image": "nginx", "b": [1, null, true]})), "map[b:[1 <nil> true] image:nginx]");
        assert_eq!(v(&json!(1.5)), "1.5");
        assert_eq!(v(&json!(1234567.5)), "1.2345675e+06");
        assert_eq!(v(&json!(0.00001)), "1e-05");
        assert_eq!(s(&json!(true)), "%!s(bool=true)");
        assert_eq!(s(&json!(3)), "%!s(int64=3)");
        assert_eq!(s(&json!("delete")), "delete");
        assert_eq!(type_name(&json!([1])), "[]interface {}");
        assert_eq!(type_name(&Value::Null), "%!s(<nil>)");
        assert_eq!(v_slices(&[&[json!(1)], &[json!("a"), json!("b")]]), "[[1] [a b]]");
    }
}
