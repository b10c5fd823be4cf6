//! Names and ownership marks of tenant objects in the super cluster (ARCHITECTURE.md "Naming",
//! CONTRACT.md): super namespaces `<tenant>-<6 hex of sha256(uid)>-<ns>`, and the
//! `tenancy.kplex.io/` label and annotations every synced object carries. The syncer changes or
//! deletes a super object only when [`owned_by`] says its marks are exactly its own.

use serde_json::{json, Value};

/// Label: the tenant (VirtualCluster name).
pub const TENANT_LABEL: &str = "tenancy.kplex.io/tenant";
/// Annotation: the tenant's uid (VirtualCluster metadata.uid).
pub const TENANT_UID: &str = "tenancy.kplex.io/tenant-uid";
/// Annotation: the object's namespace in the tenant.
pub const NAMESPACE: &str = "tenancy.kplex.io/namespace";
/// Annotation: the object's name in the tenant.
pub const NAME: &str = "tenancy.kplex.io/name";
/// Annotation: the tenant object's UID.
pub const UID: &str = "tenancy.kplex.io/uid";
/// Annotation on a service-account token Secret made by the syncer: the service account.
pub const SA_TOKEN: &str = "tenancy.kplex.io/service-account";
/// Annotation on a token Secret: when its token expires (RFC 3339).
pub const TOKEN_EXPIRES: &str = "tenancy.kplex.io/token-expires";

fn sha256_hex(s: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The super namespace of tenant namespace `ns` of tenant `tenant` (uid `uid`). Names longer
/// than 63 characters are cut to a prefix plus 10 hex of the full name's hash, so distinct long
/// names stay distinct (a collision is caught by the ownership check, never shared silently).
pub fn super_namespace(tenant: &str, uid: &str, ns: &str) -> String {
    let full = format!("{tenant}-{}-{ns}", &sha256_hex(uid)[..6]);
    if full.len() <= 63 {
        return full;
    }
    let h = &sha256_hex(&full)[..10];
    let prefix: String = full.chars().take(63 - 11).collect();
    format!("{}-{h}", prefix.trim_end_matches(['-', '.']))
}

/// Who a synced object belongs to: tenant, tenant uid, tenant namespace, name and object uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner<'a> {
    pub tenant: &'a str,
    pub tenant_uid: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// Adds the ownership label and annotations to `obj`'s metadata.
pub fn mark(obj: &mut Value, o: &Owner<'_>, object_uid: &str) {
    let md = &mut obj["metadata"];
    if !md["labels"].is_object() {
        md["labels"] = json!({});
    }
    md["labels"][TENANT_LABEL] = json!(o.tenant);
    if !md["annotations"].is_object() {
        md["annotations"] = json!({});
    }
    let a = &mut md["annotations"];
    a[TENANT_UID] = json!(o.tenant_uid);
    a[NAMESPACE] = json!(o.namespace);
    a[NAME] = json!(o.name);
    a[UID] = json!(object_uid);
}

/// True when `obj` carries exactly this owner's marks (the object uid is compared separately:
/// a super object of an older tenant object with the same name is still ours to replace).
pub fn owned_by(obj: &Value, o: &Owner<'_>) -> bool {
    let md = &obj["metadata"];
    md["labels"][TENANT_LABEL].as_str() == Some(o.tenant)
        && md["annotations"][TENANT_UID].as_str() == Some(o.tenant_uid)
        && md["annotations"][NAMESPACE].as_str() == Some(o.namespace)
        && md["annotations"][NAME].as_str() == Some(o.name)
}

/// The tenant object uid recorded on a super object.
pub fn recorded_uid(obj: &Value) -> &str {
    obj["metadata"]["annotations"][UID].as_str().unwrap_or("")
}

/// Removes every `tenancy.kplex.io/` key from a map (labels or annotations copied upward or
/// downward): those are the provider's.
pub fn strip_provider_keys(map: &mut Value) {
    if let Some(m) = map.as_object_mut() {
        m.retain(|k, _| !k.starts_with("tenancy.kplex.io/"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn super_namespaces() {
        let n = super_namespace("acme", "uid-1", "default");
        assert!(n.starts_with("acme-") && n.ends_with("-default") && n.len() == "acme-".len() + 6 + "-default".len());
        assert_eq!(n, super_namespace("acme", "uid-1", "default"));
        assert_ne!(n, super_namespace("acme", "uid-2", "default"));
        let long = "x".repeat(60);
        let (a, b) = (super_namespace("acme", "u", &format!("{long}a")), super_namespace("acme", "u", &format!("{long}b")));
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
    }

    #[test]
    fn ownership_is_exact() {
        let o = Owner { tenant: "t", tenant_uid: "u", namespace: "ns", name: "p" };
        let mut obj = json!({"metadata": {"name": "p"}});
        assert!(!owned_by(&obj, &o));
        mark(&mut obj, &o, "pod-uid");
        assert!(owned_by(&obj, &o));
        assert_eq!(recorded_uid(&obj), "pod-uid");
        obj["metadata"]["annotations"][TENANT_UID] = json!("other");
        assert!(!owned_by(&obj, &o));
    }
}
