//! Field paths as upstream's `field.Path` prints them: `spec.replicas`, `properties[spec]`,
//! `spec.items[0]`. The empty string stands for a nil path, printed `<nil>`.

/// `p.Child(name)`.
pub fn child(p: &str, name: &str) -> String {
    if p.is_empty() {
        name.to_string()
    } else {
        format!("{p}.{name}")
    }
}

/// `p.Key(k)`.
pub fn key(p: &str, k: &str) -> String {
    format!("{p}[{k}]")
}

/// `p.Index(i)`.
pub fn index(p: &str, i: usize) -> String {
    format!("{p}[{i}]")
}

/// How a field error's path is printed: a nil path is `<nil>`.
pub fn shown(p: &str) -> String {
    if p.is_empty() {
        "<nil>".to_string()
    } else {
        p.to_string()
    }
}
