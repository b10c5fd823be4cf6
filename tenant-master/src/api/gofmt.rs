//! Values written as Go's `fmt` prints them, for the "Invalid value: ..." part of validation
//! messages. Upstream puts the typed Go value into `field.Invalid`, and `ErrorBody` prints strings
//! with `%q` and everything else that is not a number or a `fmt.Stringer` with `%#v`; clients and
//! people read those texts (`map[string]string{"app":"web"}`), so kplex writes the same.

use serde_json::Value;

/// Go's `strconv.Quote` (`%q`): double quotes, backslash escapes, printable Unicode kept.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `%#v` of a `map[string]string`: sorted keys, `map[string]string(nil)` when absent.
pub fn string_map(v: &Value) -> String {
    match v.as_object() {
        None => "map[string]string(nil)".into(),
        Some(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys.iter().map(|k| format!("{}:{}", quote(k), quote(&str_of(&m[k.as_str()])))).collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// `%#v` of a `[]string` (or a slice of a string-kinded type such as `[]core.IPFamily`).
pub fn string_slice_of(type_name: &str, v: &Value) -> String {
    match v.as_array() {
        None => format!("[]{type_name}(nil)"),
        Some(a) => {
            let items: Vec<String> = a.iter().map(|x| quote(&str_of(x))).collect();
            format!("[]{type_name}{{{}}}", items.join(", "))
        }
    }
}

/// `%#v` of a `[]string`.
pub fn string_slice(v: &Value) -> String {
    string_slice_of("string", v)
}

/// What `ErrorBody` prints for a `*metav1.LabelSelector`: `null` for nil, else the struct
/// dereferenced and printed with `%#v` (its `String` method is on the pointer, so unused).
pub fn label_selector(v: &Value) -> String {
    if !v.is_object() {
        return "null".into();
    }
    let exprs = match v["matchExpressions"].as_array() {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|r| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        quote(&str_of(&r["key"])),
                        quote(&str_of(&r["operator"])),
                        string_slice(&r["values"])
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}", string_map(&v["matchLabels"]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quoting_like_strconv() {
        assert_eq!(quote("Bad_Name"), "\"Bad_Name\"");
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(quote("é\u{1}"), "\"é\\x01\"");
    }

    #[test]
    fn maps_slices_and_selectors() {
        assert_eq!(string_map(&json!({"b": "2", "a": "1"})), "map[string]string{\"a\":\"1\", \"b\":\"2\"}");
        assert_eq!(string_map(&Value::Null), "map[string]string(nil)");
        assert_eq!(string_map(&json!({})), "map[string]string{}");
        assert_eq!(string_slice(&json!(["10.96.0.10"])), "[]string{\"10.96.0.10\"}");
        assert_eq!(
            label_selector(&json!({"matchLabels": {"app": "web"}})),
            "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
        assert_eq!(
            label_selector(&json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]})),
            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"tier\", Operator:\"In\", Values:[]string{\"a\"}}}}"
        );
        assert_eq!(label_selector(&Value::Null), "null");
    }
}
