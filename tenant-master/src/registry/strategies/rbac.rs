//! rbac.authorization.k8s.io/v1 roles, clusterroles, rolebindings and clusterrolebindings:
//! rule and subject checks, roleRef/subject apiGroup defaults, immutable roleRef, the
//! ROLE/USERS/GROUPS/SERVICEACCOUNTS columns of bindings (roles have no printer upstream).

use serde_json::{json, Value};

use super::{common, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};
use crate::validation::NameRule;

pub struct Roles;
pub struct ClusterRoles;
pub struct RoleBindings;
pub struct ClusterRoleBindings;

const GROUP: &str = "rbac.authorization.k8s.io";

static ROLE: ResourceInfo = info(GROUP, "v1", "Role", "roles", "role", true).with_name_rule(NameRule::PathSegment);
static ROLE_BINDING: ResourceInfo = info(GROUP, "v1", "RoleBinding", "rolebindings", "rolebinding", true).with_name_rule(NameRule::PathSegment);
static CLUSTER_ROLE: ResourceInfo = info(GROUP, "v1", "ClusterRole", "clusterroles", "clusterrole", false).with_name_rule(NameRule::PathSegment);
static CLUSTER_ROLE_BINDING: ResourceInfo =
    info(GROUP, "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", false).with_name_rule(NameRule::PathSegment);

fn non_empty(v: &Value) -> bool {
    v.as_array().map(|a| !a.is_empty()).unwrap_or(false)
}

/// ValidatePolicyRule for each of `rules`.
fn validate_rules(o: &Value, namespaced: bool, errs: &mut Vec<FieldError>) {
    for (i, r) in o["rules"].as_array().into_iter().flatten().enumerate() {
        let p = format!("rules[{i}]");
        if !non_empty(&r["verbs"]) {
            errs.push(FieldError::required(format!("{p}.verbs"), "verbs must contain at least one value"));
        }
        if non_empty(&r["nonResourceURLs"]) {
            if namespaced {
                errs.push(FieldError::invalid(format!("{p}.nonResourceURLs"), r["nonResourceURLs"].clone(), "namespaced rules cannot apply to non-resource URLs"));
            }
            if non_empty(&r["apiGroups"]) || non_empty(&r["resources"]) || non_empty(&r["resourceNames"]) {
                errs.push(FieldError::invalid(format!("{p}.nonResourceURLs"), r["nonResourceURLs"].clone(), "rules cannot apply to both regular resources and non-resource URLs"));
            }
            continue;
        }
        if !non_empty(&r["apiGroups"]) {
            errs.push(FieldError::required(format!("{p}.apiGroups"), "resource rules must supply at least one api group"));
        }
        if !non_empty(&r["resources"]) {
            errs.push(FieldError::required(format!("{p}.resources"), "resource rules must supply at least one resource"));
        }
    }
}

fn default_binding(o: &mut Value) {
    if o["roleRef"].is_object() && o["roleRef"]["apiGroup"].as_str().unwrap_or("").is_empty() {
        o["roleRef"]["apiGroup"] = json!(GROUP);
    }
    for s in o.get_mut("subjects").and_then(|s| s.as_array_mut()).into_iter().flatten().filter(|s| s.is_object()) {
        if s["apiGroup"].as_str().unwrap_or("").is_empty() {
            match s["kind"].as_str() {
                // "" is written as nothing (omitempty).
                Some("ServiceAccount") => {
                    if let Some(m) = s.as_object_mut() {
                        m.remove("apiGroup");
                    }
                }
                Some("User") | Some("Group") => s["apiGroup"] = json!(GROUP),
                _ => {}
            }
        }
    }
}

fn validate_binding(o: &Value, namespaced: bool, errs: &mut Vec<FieldError>) {
    let rr = &o["roleRef"];
    if rr["apiGroup"] != GROUP {
        errs.push(FieldError::not_supported("roleRef.apiGroup", rr["apiGroup"].clone(), &[GROUP]));
    }
    let kinds: &[&str] = if namespaced { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
    common::one_of(&rr["kind"], "roleRef.kind", kinds, errs);
    if rr["kind"].is_null() {
        errs.push(FieldError::not_supported("roleRef.kind", "", kinds));
    }
    match rr["name"].as_str().unwrap_or("") {
        "" => errs.push(FieldError::required("roleRef.name", "")),
        n => {
            for e in crate::validation::name_errors(NameRule::PathSegment, n) {
                errs.push(FieldError::invalid("roleRef.name", n, e));
            }
        }
    }
    for (i, s) in o["subjects"].as_array().into_iter().flatten().enumerate() {
        let p = format!("subjects[{i}]");
        let name = s["name"].as_str().unwrap_or("");
        if name.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        }
        let group = s["apiGroup"].as_str().unwrap_or("");
        match s["kind"].as_str().unwrap_or("") {
            "ServiceAccount" => {
                for e in crate::validation::dns1123_subdomain_errors(name).into_iter().filter(|_| !name.is_empty()) {
                    errs.push(FieldError::invalid(format!("{p}.name"), name, e));
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(format!("{p}.apiGroup"), group, &[""]));
                }
                if !namespaced && s["namespace"].as_str().unwrap_or("").is_empty() {
                    errs.push(FieldError::required(format!("{p}.namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != GROUP {
                    errs.push(FieldError::not_supported(format!("{p}.apiGroup"), group, &[GROUP]));
                }
            }
            k => errs.push(FieldError::not_supported(format!("{p}.kind"), k, &["ServiceAccount", "User", "Group"])),
        }
    }
}

/// The binding columns; `about` holds the descriptions of USERS, GROUPS and SERVICEACCOUNTS.
fn binding_columns(about: [&'static str; 3]) -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Role", "string", 0, "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace."),
        Column::age(),
        Column::new("Users", "string", 1, about[0]),
        Column::new("Groups", "string", 1, about[1]),
        Column::new("ServiceAccounts", "string", 1, about[2]),
    ]
}

/// printRoleBinding: `Kind/name` and the subjects by kind (`rbac.SubjectsStrings`).
fn binding_row(o: &Value) -> Vec<Value> {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in o["subjects"].as_array().into_iter().flatten() {
        let name = s["name"].as_str().unwrap_or("").to_string();
        match s["kind"].as_str().unwrap_or("") {
            "ServiceAccount" => sas.push(format!("{}/{name}", s["namespace"].as_str().unwrap_or(""))),
            "User" => users.push(name),
            "Group" => groups.push(name),
            _ => {}
        }
    }
    let rr = &o["roleRef"];
    vec![
        json!(crate::meta::name(o)),
        json!(format!("{}/{}", rr["kind"].as_str().unwrap_or(""), rr["name"].as_str().unwrap_or(""))),
        json!(crate::api::table::age(o)),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
}

fn validate_role_ref_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    if new["roleRef"] != old["roleRef"] {
        errs.push(FieldError::invalid("roleRef", new["roleRef"].clone(), "cannot change roleRef"));
    }
}

impl Strategy for Roles {
    fn info(&self) -> &ResourceInfo {
        &ROLE
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        validate_rules(o, true, errs);
    }
    fn columns(&self) -> Vec<Column> {
        crate::api::table::default_columns()
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        crate::api::table::default_row(o)
    }
}

impl Strategy for ClusterRoles {
    fn info(&self) -> &ResourceInfo {
        &CLUSTER_ROLE
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        validate_rules(o, false, errs);
        if o["aggregationRule"].is_object() && !non_empty(&o["aggregationRule"]["clusterRoleSelectors"]) {
            errs.push(FieldError::required("aggregationRule.clusterRoleSelectors", "at least one clusterRoleSelector required if aggregationRule is non-nil"));
        }
    }
    fn columns(&self) -> Vec<Column> {
        crate::api::table::default_columns()
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        crate::api::table::default_row(o)
    }
}

impl Strategy for RoleBindings {
    fn info(&self) -> &ResourceInfo {
        &ROLE_BINDING
    }
    fn default(&self, o: &mut Value) {
        default_binding(o);
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        validate_binding(o, true, errs);
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        validate_role_ref_update(new, old, errs);
    }
    fn columns(&self) -> Vec<Column> {
        binding_columns(["Users in the roleBinding", "Groups in the roleBinding", "ServiceAccounts in the roleBinding"])
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        binding_row(o)
    }
}

impl Strategy for ClusterRoleBindings {
    fn info(&self) -> &ResourceInfo {
        &CLUSTER_ROLE_BINDING
    }
    fn default(&self, o: &mut Value) {
        default_binding(o);
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        validate_binding(o, false, errs);
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        validate_role_ref_update(new, old, errs);
    }
    fn columns(&self) -> Vec<Column> {
        binding_columns(["Users in the clusterRoleBinding", "Groups in the clusterRoleBinding", "ServiceAccounts in the clusterRoleBinding"])
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        binding_row(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rb() -> Value {
        json!({"metadata": {"name": "read"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [
            {"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "default", "namespace": "dev"},
            {"kind": "Group", "name": "devs"}, {"kind": "User", "name": "joe"}]})
    }

    #[test]
    fn binding_defaults_validation_and_row() {
        let mut o = rb();
        RoleBindings.default(&mut o);
        assert_eq!(o["roleRef"]["apiGroup"], GROUP);
        assert_eq!(o["subjects"][0]["apiGroup"], json!(GROUP));
        // A ServiceAccount's "" group is not written at all (omitempty).
        assert!(o["subjects"][1].get("apiGroup").is_none());
        let mut errs = Vec::new();
        RoleBindings.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let r = RoleBindings.row(&o);
        assert_eq!(r[1], json!("ClusterRole/view"));
        assert_eq!(r[3..6].to_vec(), vec![json!("jane, joe"), json!("devs"), json!("dev/default")]);
        o["roleRef"]["kind"] = json!("Role");
        ClusterRoleBindings.validate(&o, &mut errs);
        assert_eq!(errs[0].field, "roleRef.kind");
        let mut new = rb();
        new["roleRef"]["name"] = json!("edit");
        errs.clear();
        RoleBindings.validate_update(&new, &rb(), &mut errs);
        assert_eq!(errs[0].detail, "cannot change roleRef");
    }

    #[test]
    fn rules() {
        let o = json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, {"verbs": [], "apiGroups": [""], "resources": ["pods"]}]});
        let mut errs = Vec::new();
        Roles.validate(&o, &mut errs);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["rules[0].nonResourceURLs", "rules[1].verbs"]);
        errs.clear();
        ClusterRoles.validate(&o, &mut errs);
        assert_eq!(errs.len(), 1);
        assert_eq!(Roles.columns()[1].name, "Created At");
    }
}
