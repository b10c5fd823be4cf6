//! Values printed as Go prints them in upstream's messages: `%v` of a float64 (`1e+06`), `%#v`
//! of a decoded JSON value (`map[string]interface {}{"a":1}`), and field errors whose value is
//! rendered that way.

use serde_json::Value;

use crate::api::gofmt::quote;
use crate::api::status::FieldError;

/// Go's `%v` of a float64: strconv's 'g' with the shortest precision, which switches to the
/// exponent form when the exponent is < -4 or >= 6 (`1e+06`, `1.5e-05`).
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `d.ddde<exp>`.
    let e = format!("{:e}", f.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let dp = exp + 1; // digits before the decimal point
    if dp <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-dp) as usize))
    } else if dp as usize >= digits.len() {
        format!("{sign}{digits}{}", "0".repeat(dp as usize - digits.len()))
    } else {
        let (a, b) = digits.split_at(dp as usize);
        format!("{sign}{a}.{b}")
    }
}

/// Go's `%v` of a number as the JSON decoder produces it (int64 or float64).
pub fn go_number(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_i64() => n.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        other => other.to_string(),
    }
}

/// Go's `%#v` of a decoded JSON value (`interface{}`).
pub fn go_sharp(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(_) => go_number(v),
        Value::String(s) => quote(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(go_sharp).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys.iter().map(|k| format!("{}:{}", quote(k), go_sharp(&m[k.as_str()]))).collect();
            format!("map[string]interface {{}}{{{}}}", items.join(", "))
        }
    }
}

/// The text of a value in a field error body, as `field.Error.ErrorBody` prints it.
pub fn shown_value(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(_) => go_number(v),
        other => go_sharp(other),
    }
}

/// `field.Invalid(path, value, detail)` with the value printed as upstream does.
pub fn invalid(path: impl Into<String>, v: &Value, detail: impl Into<String>) -> FieldError {
    match v {
        Value::String(_) | Value::Null | Value::Bool(_) => FieldError::invalid(path, v.clone(), detail),
        Value::Number(n) if n.is_i64() => FieldError::invalid(path, v.clone(), detail),
        other => FieldError::invalid_rendered(path, shown_value(other), detail),
    }
}

/// `field.Duplicate(path, value)`. Compound values print as JSON here (upstream: `%#v`), as
/// [`FieldErrorKind`](crate::api::status::FieldErrorKind) has no pre-rendered duplicate.
pub fn duplicate(path: impl Into<String>, v: &Value) -> FieldError {
    FieldError::duplicate(path, v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_as_go_v() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.25), "-2.25");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
    }

    #[test]
    fn values_print_as_go_sharp_v() {
        assert_eq!(go_sharp(&json!({"b": 1, "a": "x"})), r#"map[string]interface {}{"a":"x", "b":1}"#);
        assert_eq!(go_sharp(&json!([1, "a", null, 2.5])), r#"[]interface {}{1, "a", interface {}(nil), 2.5}"#);
    }
}
