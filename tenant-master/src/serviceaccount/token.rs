//! TokenRequest: `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`, as upstream's
//! `TokenREST` (`pkg/registry/core/serviceaccount/storage/token.go`).
//!
//! The request's audiences default to the API audiences, its lifetime to an hour (at least ten
//! minutes, at most 2^32 seconds). A token may be bound to a Pod (whose node, if it has one,
//! is named in the claims too), a Secret or a Node in the same namespace; the object must
//! exist and match the given uid. A pod-bound request for exactly 3607 s for the API's
//! audiences (what kubelet asks for auto-mounted tokens) gets a year-long token that warns
//! after 3607 s, as `--service-account-extend-token-expiration` does.

use serde_json::{json, Value};

use super::jwt::{BoundClaims, Ref};
use super::{
    Issuer, DEFAULT_EXPIRATION_SECONDS, EXTENDED_EXPIRATION_SECONDS, MAX_EXPIRATION_SECONDS,
    MIN_EXPIRATION_SECONDS, WARN_ONLY_EXPIRATION_SECONDS,
};
use crate::api::status::{ApiError, ApiResult, FieldError};
use crate::registry::store::Store;

const GROUP: &str = "authentication.k8s.io";
const KIND: &str = "TokenRequest";

/// A live (consistent) GET of a core/v1 object.
async fn get(store: &Store, plural: &str, ns: &str, name: &str) -> ApiResult<Value> {
    let s = store
        .registry
        .lookup("", "v1", plural)
        .ok_or_else(|| ApiError::not_found("", plural, name))?;
    Ok((*store.get(s.as_ref(), ns, name).await?.value()).clone())
}

/// A node from the cache, else live; None if there is none.
async fn find_node(store: &Store, name: &str) -> ApiResult<Option<Value>> {
    let Some(s) = store.registry.lookup("", "v1", "nodes") else {
        return Ok(None);
    };
    if let Some(o) = store.get_cached(s.as_ref(), "", name) {
        return Ok(Some((*o.value()).clone()));
    }
    match store.get(s.as_ref(), "", name).await {
        Ok(o) => Ok(Some((*o.value()).clone())),
        Err(e) if e.code == 404 => Ok(None),
        Err(e) => Err(ApiError::internal(e.message)),
    }
}

/// `group/version, Kind=kind` as Go's `GroupVersionKind.String`.
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (g, v) = api_version.split_once('/').unwrap_or(("", api_version));
    format!("{g}/{v}, Kind={kind}")
}

/// Issues a token for ServiceAccount `ns/name` as the TokenRequest `req` asks; returns the
/// TokenRequest with its status.
pub async fn create(store: &Store, ns: &str, name: &str, mut req: Value) -> ApiResult<Value> {
    let issuer = store
        .service_accounts
        .get()
        .ok_or_else(ApiError::not_found_path)?
        .clone();
    if !req.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a TokenRequest",
        ));
    }
    let md_name = crate::meta::name(&req).to_string();
    if !md_name.is_empty() && md_name != name {
        let e = FieldError::invalid(
            "metadata.name",
            md_name.clone(),
            "must match the service account name if specified",
        );
        return Err(ApiError::invalid(GROUP, KIND, name, &[e]));
    }
    let md_ns = crate::meta::namespace(&req).to_string();
    if !md_ns.is_empty() && md_ns != ns {
        let e = FieldError::invalid(
            "metadata.namespace",
            md_ns,
            "must match the service account namespace if specified",
        );
        return Err(ApiError::invalid(GROUP, KIND, name, &[e]));
    }
    let sa = get(store, "serviceaccounts", ns, name).await?;

    if !req["spec"].is_object() {
        req["spec"] = json!({});
    }
    let spec = &mut req["spec"];
    let mut audiences: Vec<String> = spec["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    if audiences.is_empty() {
        audiences = issuer.api_audiences.clone();
    }
    spec["audiences"] = json!(audiences);
    let requested = match &spec["expirationSeconds"] {
        Value::Null => DEFAULT_EXPIRATION_SECONDS,
        v => v
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("spec.expirationSeconds must be an integer"))?,
    };
    spec["expirationSeconds"] = json!(requested);
    if spec.get("boundObjectRef").is_none() {
        spec["boundObjectRef"] = Value::Null;
    }
    let now = chrono::Utc::now();
    let now_s = now.timestamp();
    {
        let md = crate::meta::metadata_mut(&mut req);
        md.insert("name".into(), json!(name));
        md.insert("namespace".into(), json!(ns));
        md.insert(
            "creationTimestamp".into(),
            json!(crate::meta::now_rfc3339()),
        );
    }
    let mut errs = Vec::new();
    if requested < MIN_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid(
            "spec.expirationSeconds",
            requested,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if requested > MAX_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid(
            "spec.expirationSeconds",
            requested,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid(GROUP, KIND, "", &errs));
    }

    let (mut pod, mut secret, mut node) = (None, None, None);
    let bound = req["spec"]["boundObjectRef"].clone();
    if bound.is_object() {
        let kind = bound["kind"].as_str().unwrap_or("");
        let api_version = bound["apiVersion"].as_str().unwrap_or("");
        let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
        let bname = bound["name"].as_str().unwrap_or("");
        let obj = match (group, kind) {
            ("", "Pod") => {
                let p = get(store, "pods", ns, bname).await?;
                if p["spec"]["serviceAccountName"].as_str().unwrap_or("") != name {
                    return Err(ApiError::bad_request(format!("cannot bind token for serviceaccount \"{name}\" to pod running with different serviceaccount name.")));
                }
                if let Some(n) = p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                    node = find_node(store, n).await?.map(|n| Ref::of(&n));
                }
                pod = Some(Ref::of(&p));
                p
            }
            ("", "Node") => {
                let n = get(store, "nodes", "", bname).await?;
                node = Some(Ref::of(&n));
                n
            }
            ("", "Secret") => {
                let s = get(store, "secrets", ns, bname).await?;
                secret = Some(Ref::of(&s));
                s
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to object of type {}",
                    gvk_string(api_version, kind)
                )))
            }
        };
        let want = bound["uid"].as_str().unwrap_or("");
        if !want.is_empty() && want != crate::meta::uid(&obj) {
            let why = format!("the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated");
            return Err(ApiError::conflict("", kind, bname, &why));
        }
    }

    let mut expiration = requested;
    if issuer.max_expiration_seconds > 0 && expiration > issuer.max_expiration_seconds {
        expiration = issuer.max_expiration_seconds;
        req["spec"]["expirationSeconds"] = json!(expiration);
    }
    let (lifetime, warn_after) = extended_lifetime(&issuer, pod.is_some(), expiration, &audiences);
    let claims = BoundClaims {
        issuer: issuer.issuer.clone(),
        audiences,
        namespace: ns.to_string(),
        service_account: Ref::of(&sa),
        pod,
        secret,
        node,
        issued_at: now_s,
        expires: now_s + lifetime,
        warn_after: warn_after.map(|w| now_s + w),
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let token = issuer
        .key
        .sign(&claims.to_json())
        .map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
    let expires_at = chrono::DateTime::from_timestamp(now_s + expiration, 0).unwrap_or(now);
    req["kind"] = json!(KIND);
    req["apiVersion"] = json!("authentication.k8s.io/v1");
    req["status"] = json!({
        "token": token,
        "expirationTimestamp": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    Ok(req)
}

/// The real lifetime of a token and when it starts warning: auto-mounted pod-bound tokens for
/// the API's audiences live a year and warn after the 3607 s asked for.
fn extended_lifetime(
    issuer: &Issuer,
    pod_bound: bool,
    expiration: i64,
    audiences: &[String],
) -> (i64, Option<i64>) {
    if issuer.extend_expiration
        && pod_bound
        && expiration == WARN_ONLY_EXPIRATION_SECONDS
        && issuer.is_api_audiences(audiences)
    {
        (EXTENDED_EXPIRATION_SECONDS, Some(expiration))
    } else {
        (expiration, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serviceaccount::SigningKey;

    #[test]
    fn auto_mounted_pod_tokens_are_extended() {
        let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        let iss = Issuer::new(key, "", "", &[]);
        let api = vec![iss.issuer.clone()];
        assert_eq!(
            extended_lifetime(&iss, true, 3607, &api),
            (EXTENDED_EXPIRATION_SECONDS, Some(3607))
        );
        assert_eq!(extended_lifetime(&iss, false, 3607, &api), (3607, None));
        assert_eq!(extended_lifetime(&iss, true, 3600, &api), (3600, None));
        assert_eq!(
            extended_lifetime(&iss, true, 3607, &["vault".to_string()]),
            (3607, None)
        );
    }

    #[test]
    fn gvk_strings_as_go_prints_them() {
        assert_eq!(
            gvk_string("apps/v1", "Deployment"),
            "apps/v1, Kind=Deployment"
        );
        assert_eq!(gvk_string("v1", "ConfigMap"), "/v1, Kind=ConfigMap");
    }

    #[test]
    fn openapi_lists_the_token_subresource_as_upstream() {
        let spec = crate::openapi::spec(&crate::registry::Registry::builtin());
        let v2: Value = serde_json::from_slice(&crate::openapi::v2_json(&spec)).unwrap();
        let post = &v2["paths"]["/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"]["post"];
        assert_eq!(post["operationId"], "createCoreV1NamespacedServiceAccountToken");
        assert_eq!(
            post["x-kubernetes-group-version-kind"],
            json!({"group": "authentication.k8s.io", "kind": "TokenRequest", "version": "v1"})
        );
        assert_eq!(post["x-kubernetes-action"], "post");
    }
}
