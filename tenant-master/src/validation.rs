//! Name and metadata validation with the messages `k8s.io/apimachinery/pkg/util/validation` uses.

use serde_json::Value;

use crate::api::status::FieldError;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

/// How a resource's names are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most resources).
    Subdomain,
    /// RFC 1123 label (namespaces).
    Label,
    /// RFC 1035 label (services).
    Label1035,
    /// Any name usable as a path segment (RBAC objects).
    PathSegment,
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn dns1123_label_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| is_lower_alnum(c) || c == '-')
        && s.chars().next().map(is_lower_alnum).unwrap_or(false)
        && s.chars().last().map(is_lower_alnum).unwrap_or(false)
}

/// Errors for an RFC 1123 label (max 63).
pub fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !dns1123_label_ok(s) {
        errs.push(format!("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{DNS1123_LABEL_FMT}')"));
    }
    errs
}

/// Errors for an RFC 1123 subdomain (max 253).
pub fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if s.is_empty() || !s.split('.').all(dns1123_label_ok) {
        errs.push(format!("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*')"));
    }
    errs
}

/// Errors for an RFC 1035 label (max 63, starts with a letter).
pub fn dns1035_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let ok = !s.is_empty()
        && s.chars().all(|c| is_lower_alnum(c) || c == '-')
        && s.chars().next().map(|c| c.is_ascii_lowercase()).unwrap_or(false)
        && s.chars().last().map(is_lower_alnum).unwrap_or(false);
    if !ok {
        errs.push(format!("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '{DNS1035_LABEL_FMT}')"));
    }
    errs
}

fn qualified_part_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && s.chars().next().map(|c| c.is_ascii_alphanumeric()).unwrap_or(false)
        && s.chars().last().map(|c| c.is_ascii_alphanumeric()).unwrap_or(false)
}

/// Errors for a qualified name (`prefix/name`), as used for label and annotation keys.
pub fn qualified_name_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else {
            for e in dns1123_subdomain_errors(p) {
                errs.push(format!("prefix part {e}"));
            }
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !name.is_empty() && !qualified_part_ok(&name[..name.len().min(63)]) || name.contains('/') {
        errs.push(format!("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{QUALIFIED_NAME_FMT}')"));
    }
    errs
}

/// Errors for a label value.
pub fn label_value_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !s.is_empty() && !qualified_part_ok(&s[..s.len().min(63)]) {
        errs.push(format!("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '{LABEL_VALUE_FMT}')"));
    }
    errs
}

/// Errors for a name under `rule`.
pub fn name_errors(rule: NameRule, name: &str) -> Vec<String> {
    match rule {
        NameRule::Subdomain => dns1123_subdomain_errors(name),
        NameRule::Label => dns1123_label_errors(name),
        NameRule::Label1035 => dns1035_label_errors(name),
        NameRule::PathSegment => {
            if name == "." || name == ".." {
                vec![format!("may not be '{name}'")]
            } else if name.contains('/') {
                vec!["may not contain '/'".to_string()]
            } else if name.contains('%') {
                vec!["may not contain '%'".to_string()]
            } else {
                vec![]
            }
        }
    }
}

/// Total size limit of all annotations (256 KiB), as upstream.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Validates `metadata` of an object about to be stored.
pub fn validate_object_meta(v: &Value, namespaced: bool, rule: NameRule, errs: &mut Vec<FieldError>) {
    let md = &v["metadata"];
    let name = md["name"].as_str().unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required("metadata.name", "name or generateName is required"));
    } else {
        for e in name_errors(rule, name) {
            errs.push(FieldError::invalid("metadata.name", name, e));
        }
    }
    let ns = md["namespace"].as_str().unwrap_or("");
    if namespaced {
        if ns.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for e in dns1123_label_errors(ns) {
                errs.push(FieldError::invalid("metadata.namespace", ns, e));
            }
        }
    } else if !ns.is_empty() {
        errs.push(FieldError::forbidden("metadata.namespace", "not allowed on this type"));
    }
    if !md["labels"].is_null() {
        match md["labels"].as_object() {
            None => errs.push(FieldError::invalid("metadata.labels", md["labels"].clone(), "must be a map of strings")),
            Some(labels) => {
                for (k, val) in labels {
                    for e in qualified_name_errors(k) {
                        errs.push(FieldError::invalid("metadata.labels", k.as_str(), e));
                    }
                    match val.as_str() {
                        Some(s) => {
                            for e in label_value_errors(s) {
                                errs.push(FieldError::invalid(format!("metadata.labels"), s, e));
                            }
                        }
                        None => errs.push(FieldError::invalid("metadata.labels", val.clone(), "must be a string")),
                    }
                }
            }
        }
    }
    if !md["annotations"].is_null() {
        match md["annotations"].as_object() {
            None => errs.push(FieldError::invalid("metadata.annotations", md["annotations"].clone(), "must be a map of strings")),
            Some(anns) => {
                let mut total = 0;
                for (k, val) in anns {
                    for e in qualified_name_errors(&k.to_lowercase()) {
                        errs.push(FieldError::invalid("metadata.annotations", k.as_str(), e));
                    }
                    total += k.len() + val.as_str().map(|s| s.len()).unwrap_or(0);
                }
                if total > TOTAL_ANNOTATION_SIZE_LIMIT {
                    errs.push(FieldError::too_long("metadata.annotations", TOTAL_ANNOTATION_SIZE_LIMIT));
                }
            }
        }
    }
    if let Some(gn) = md["generateName"].as_str() {
        if !gn.is_empty() && name.is_empty() {
            // generateName is validated as a prefix: mask a trailing dash as upstream does.
            let probe = gn.trim_end_matches('-');
            for e in name_errors(rule, if probe.is_empty() { "a" } else { probe }) {
                errs.push(FieldError::invalid("metadata.generateName", gn, e));
            }
        }
    }
    if let Some(fins) = md["finalizers"].as_array() {
        for (i, f) in fins.iter().enumerate() {
            let s = f.as_str().unwrap_or("");
            for e in qualified_name_errors(s) {
                errs.push(FieldError::invalid(format!("metadata.finalizers[{i}]"), s, e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns1123_subdomain_errors("my-app.example").is_empty());
        assert!(!dns1123_subdomain_errors("Bad_Name").is_empty());
        assert!(!dns1123_label_errors("a.b").is_empty());
        assert!(!dns1035_label_errors("1abc").is_empty());
        assert!(qualified_name_errors("app.kubernetes.io/name").is_empty());
        assert!(!qualified_name_errors("bad key").is_empty());
        assert!(label_value_errors("").is_empty());
        assert!(!label_value_errors("-x").is_empty());
    }
}
