//! Authentication of service account tokens, as kube-apiserver's service account token
//! authenticators (`pkg/serviceaccount/jwt.go`, `claims.go`, `legacy.go`).
//!
//! A token whose (unverified) issuer is the tenant's issuer is a bound token: its signature,
//! exp/nbf/iat (a minute of leeway) and audiences (one of the API's) are checked, then the
//! ServiceAccount must still exist with the uid in the token, and so must the Pod, Secret or
//! Node it is bound to (an object marked for deletion more than a minute ago counts as gone).
//! A token issued by `kubernetes/serviceaccount` is a legacy token: its Secret must still
//! exist, not be marked for deletion, and hold exactly this token.
//!
//! The user is `system:serviceaccount:<ns>:<name>` with the ServiceAccount's uid, in groups
//! `system:serviceaccounts`, `system:serviceaccounts:<ns>` and `system:authenticated`, with
//! upstream's extras (`authentication.kubernetes.io/pod-name`, `pod-uid`, `node-name`,
//! `node-uid`, `credential-id`).
//!
//! Simplified: legacy tokens' use is not tracked (no `kubernetes.io/legacy-token-last-used`
//! label), and stale auto-mounted tokens (past `warnafter`) are not reported.

use std::collections::BTreeMap;
use std::future::Future;

use serde_json::Value;

use super::jwt::{self, BoundClaims, LegacyClaims, Ref};
use super::Issuer;
use crate::auth::User;
use crate::registry::store::Store;

pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
pub const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
pub const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
pub const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

/// Where the authenticator looks objects up (the store; a map in unit tests).
pub trait Objects: Sync {
    /// The core/v1 object `plural` `ns/name`; `Ok(None)` if there is none.
    fn get(
        &self,
        plural: &'static str,
        ns: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Value>, String>> + Send;
}

impl Objects for Store {
    /// From the watch cache, else a consistent read (an object created a moment ago).
    async fn get(
        &self,
        plural: &'static str,
        ns: &str,
        name: &str,
    ) -> Result<Option<Value>, String> {
        let Some(s) = self.registry.lookup("", "v1", plural) else {
            return Ok(None);
        };
        if let Some(o) = self.get_cached(s.as_ref(), ns, name) {
            return Ok(Some((*o.value()).clone()));
        }
        match Store::get(self, s.as_ref(), ns, name).await {
            Ok(o) => Ok(Some((*o.value()).clone())),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e.message),
        }
    }
}

/// The groups of every service account of namespace `ns` (plus `system:authenticated`).
pub fn groups(ns: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".into(),
    ]
}

/// Whether an object was marked for deletion before `cutoff` (seconds since the epoch).
fn deleted_before(obj: &Value, cutoff: i64) -> bool {
    obj["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(crate::meta::parse_time)
        .map(|t| t.timestamp() < cutoff)
        .unwrap_or(false)
}

/// Fetches the bound object `r` and checks it still is the one the token names.
async fn check_ref(
    objs: &impl Objects,
    plural: &'static str,
    ns: &str,
    r: &Ref,
    cutoff: i64,
) -> Result<Value, String> {
    let obj = objs
        .get(plural, ns, &r.name)
        .await?
        .ok_or_else(|| format!("{plural} \"{}\" not found", r.name))?;
    if deleted_before(&obj, cutoff) {
        return Err(format!("{plural} {ns}/{} has been deleted", r.name));
    }
    if crate::meta::uid(&obj) != r.uid {
        return Err(format!(
            "{plural} UID ({}) does not match claim ({})",
            crate::meta::uid(&obj),
            r.uid
        ));
    }
    Ok(obj)
}

/// Authenticates a bearer token that may be a service account token. `Ok(None)`: not a
/// service account token (another authenticator may know it); `Err`: a service account token
/// that is not (or no longer) valid, with the reason.
pub async fn authenticate(
    objs: &impl Objects,
    issuer: &Issuer,
    token: &str,
    now: i64,
) -> Result<Option<User>, String> {
    let Some(iss) = jwt::unverified_issuer(token) else {
        return Ok(None);
    };
    if iss == jwt::LEGACY_ISSUER {
        let claims = issuer.key.verify(token)?;
        return authenticate_legacy(objs, &claims, token).await.map(Some);
    }
    if iss != issuer.issuer {
        return Ok(None);
    }
    let claims = issuer.key.verify(token)?;
    let c = BoundClaims::check(&claims, now, &issuer.api_audiences)?;
    let cutoff = now - jwt::LEEWAY_SECONDS;
    let ns = c.namespace.as_str();
    check_ref(objs, "serviceaccounts", ns, &c.service_account, cutoff).await?;
    if let Some(s) = &c.secret {
        check_ref(objs, "secrets", ns, s, cutoff).await?;
    }
    let mut extra = BTreeMap::new();
    if let Some(p) = &c.pod {
        check_ref(objs, "pods", ns, p, cutoff).await?;
        extra.insert(EXTRA_POD_NAME.to_string(), vec![p.name.clone()]);
        extra.insert(EXTRA_POD_UID.to_string(), vec![p.uid.clone()]);
    }
    if let Some(n) = &c.node {
        // For pod-bound tokens the node is only informational; a node-bound token needs it.
        if c.pod.is_none() {
            check_ref(objs, "nodes", "", n, cutoff).await?;
        }
        extra.insert(EXTRA_NODE_NAME.to_string(), vec![n.name.clone()]);
        if !n.uid.is_empty() {
            extra.insert(EXTRA_NODE_UID.to_string(), vec![n.uid.clone()]);
        }
    }
    if !c.jti.is_empty() {
        extra.insert(
            EXTRA_CREDENTIAL_ID.to_string(),
            vec![format!("JTI={}", c.jti)],
        );
    }
    Ok(Some(User {
        name: jwt::username(ns, &c.service_account.name),
        uid: c.service_account.uid.clone(),
        groups: groups(ns),
        extra,
    }))
}

async fn authenticate_legacy(
    objs: &impl Objects,
    claims: &Value,
    token: &str,
) -> Result<User, String> {
    let c = LegacyClaims::check(claims)?;
    let ns = c.namespace.as_str();
    let sa_name = &c.service_account.name;
    let sa = objs
        .get("serviceaccounts", ns, sa_name)
        .await?
        .ok_or_else(|| format!("serviceaccounts \"{sa_name}\" not found"))?;
    if crate::meta::is_deleting(&sa) {
        return Err(format!("service account {ns}/{sa_name} has been deleted"));
    }
    if crate::meta::uid(&sa) != c.service_account.uid {
        return Err(format!(
            "service account UID ({}) does not match claim ({})",
            crate::meta::uid(&sa),
            c.service_account.uid
        ));
    }
    let secret = objs
        .get("secrets", ns, &c.secret_name)
        .await?
        .ok_or_else(|| format!("secrets \"{}\" not found", c.secret_name))?;
    if crate::meta::is_deleting(&secret) {
        return Err(format!("token {ns}/{} has been invalidated", c.secret_name));
    }
    let stored = secret["data"]["token"].as_str().and_then(|b| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(b).ok()
    });
    if stored.as_deref() != Some(token.as_bytes()) {
        return Err(format!(
            "token does not match the token in secret {ns}/{}",
            c.secret_name
        ));
    }
    if secret["metadata"]["labels"]
        .get("kubernetes.io/legacy-token-invalid-since")
        .is_some()
    {
        return Err(format!(
            "the token in secret {ns}/{} has been marked invalid",
            c.secret_name
        ));
    }
    Ok(User {
        name: jwt::username(ns, sa_name),
        uid: c.service_account.uid.clone(),
        groups: groups(ns),
        extra: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use base64::Engine;
    use serde_json::json;

    use super::*;
    use crate::serviceaccount::SigningKey;

    #[derive(Default)]
    struct Map(HashMap<(String, String, String), Value>);

    impl Map {
        fn put(&mut self, plural: &str, ns: &str, name: &str, uid: &str) -> Value {
            let v = json!({"metadata": {"name": name, "namespace": ns, "uid": uid}});
            self.0
                .insert((plural.into(), ns.into(), name.into()), v.clone());
            v
        }
        fn remove(&mut self, plural: &str, ns: &str, name: &str) {
            self.0.remove(&(plural.into(), ns.into(), name.into()));
        }
    }

    impl Objects for Map {
        async fn get(
            &self,
            plural: &'static str,
            ns: &str,
            name: &str,
        ) -> Result<Option<Value>, String> {
            Ok(self
                .0
                .get(&(plural.to_string(), ns.to_string(), name.to_string()))
                .cloned())
        }
    }

    fn issuer() -> Issuer {
        Issuer::new(
            SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap(),
            "",
            "",
            &[],
        )
    }

    fn claims(iss: &Issuer, now: i64) -> BoundClaims {
        BoundClaims {
            issuer: iss.issuer.clone(),
            audiences: iss.api_audiences.clone(),
            namespace: "ns".into(),
            service_account: Ref {
                name: "sa".into(),
                uid: "sa-uid".into(),
            },
            issued_at: now,
            expires: now + 3600,
            jti: "abc".into(),
            ..Default::default()
        }
    }

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_valid_token_names_the_service_account() {
        let iss = issuer();
        let mut objs = Map::default();
        objs.put("serviceaccounts", "ns", "sa", "sa-uid");
        let tok = iss.key.sign(&claims(&iss, 1000).to_json()).unwrap();
        let u = run(authenticate(&objs, &iss, &tok, 1010)).unwrap().unwrap();
        assert_eq!(u.name, "system:serviceaccount:ns:sa");
        assert_eq!(u.uid, "sa-uid");
        assert_eq!(
            u.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                "system:authenticated"
            ]
        );
        assert_eq!(
            u.extra.get(EXTRA_CREDENTIAL_ID),
            Some(&vec!["JTI=abc".to_string()])
        );
        // Expired, or for another audience: refused.
        assert_eq!(
            run(authenticate(&objs, &iss, &tok, 1000 + 3600 + 61)).unwrap_err(),
            "service account token has expired"
        );
        let mut c = claims(&iss, 1000);
        c.audiences = vec!["other".into()];
        let tok2 = iss.key.sign(&c.to_json()).unwrap();
        assert!(run(authenticate(&objs, &iss, &tok2, 1010)).is_err());
        // Signed by another key: refused.
        let other = issuer();
        let tok3 = other.key.sign(&claims(&iss, 1000).to_json()).unwrap();
        assert!(run(authenticate(&objs, &iss, &tok3, 1010)).is_err());
        // Not a service account token at all: not ours to judge.
        assert_eq!(
            run(authenticate(&objs, &iss, "abcdef", 1010)).unwrap(),
            None
        );
    }

    #[test]
    fn a_recreated_service_account_invalidates_its_tokens() {
        let iss = issuer();
        let mut objs = Map::default();
        objs.put("serviceaccounts", "ns", "sa", "other-uid");
        let tok = iss.key.sign(&claims(&iss, 1000).to_json()).unwrap();
        let err = run(authenticate(&objs, &iss, &tok, 1010)).unwrap_err();
        assert!(err.contains("does not match claim"), "{err}");
        objs.remove("serviceaccounts", "ns", "sa");
        assert!(run(authenticate(&objs, &iss, &tok, 1010)).is_err());
    }

    #[test]
    fn pod_bound_tokens_need_their_pod() {
        let iss = issuer();
        let mut objs = Map::default();
        objs.put("serviceaccounts", "ns", "sa", "sa-uid");
        objs.put("pods", "ns", "p", "pod-uid");
        let mut c = claims(&iss, 1000);
        c.pod = Some(Ref {
            name: "p".into(),
            uid: "pod-uid".into(),
        });
        c.node = Some(Ref {
            name: "n1".into(),
            uid: "node-uid".into(),
        });
        let tok = iss.key.sign(&c.to_json()).unwrap();
        let u = run(authenticate(&objs, &iss, &tok, 1010)).unwrap().unwrap();
        assert_eq!(u.extra[EXTRA_POD_NAME], ["p"]);
        assert_eq!(u.extra[EXTRA_POD_UID], ["pod-uid"]);
        assert_eq!(u.extra[EXTRA_NODE_NAME], ["n1"]);
        assert_eq!(u.extra[EXTRA_NODE_UID], ["node-uid"]);
        // Being deleted for less than a minute: still valid; longer: not.
        let mut p = objs.put("pods", "ns", "p", "pod-uid");
        p["metadata"]["deletionTimestamp"] = json!("1970-01-01T00:16:00Z");
        objs.0.insert(("pods".into(), "ns".into(), "p".into()), p);
        assert!(run(authenticate(&objs, &iss, &tok, 1010)).is_ok());
        assert!(run(authenticate(&objs, &iss, &tok, 1030)).is_err());
        objs.remove("pods", "ns", "p");
        assert_eq!(
            run(authenticate(&objs, &iss, &tok, 1010)).unwrap_err(),
            "pods \"p\" not found"
        );
        // A pod of the same name but another uid is another pod.
        objs.put("pods", "ns", "p", "new-uid");
        assert!(run(authenticate(&objs, &iss, &tok, 1010)).is_err());
    }

    #[test]
    fn node_and_secret_bound_tokens_need_their_object() {
        let iss = issuer();
        let mut objs = Map::default();
        objs.put("serviceaccounts", "ns", "sa", "sa-uid");
        let mut c = claims(&iss, 1000);
        c.node = Some(Ref {
            name: "n1".into(),
            uid: "node-uid".into(),
        });
        let tok = iss.key.sign(&c.to_json()).unwrap();
        assert!(run(authenticate(&objs, &iss, &tok, 1010)).is_err());
        objs.put("nodes", "", "n1", "node-uid");
        assert!(run(authenticate(&objs, &iss, &tok, 1010)).is_ok());
        let mut c = claims(&iss, 1000);
        c.secret = Some(Ref {
            name: "s".into(),
            uid: "s-uid".into(),
        });
        let tok = iss.key.sign(&c.to_json()).unwrap();
        assert!(run(authenticate(&objs, &iss, &tok, 1010)).is_err());
        objs.put("secrets", "ns", "s", "s-uid");
        assert!(run(authenticate(&objs, &iss, &tok, 1010)).is_ok());
    }

    #[test]
    fn legacy_tokens_live_as_long_as_their_secret() {
        let iss = issuer();
        let mut objs = Map::default();
        objs.put("serviceaccounts", "ns", "sa", "sa-uid");
        let c = LegacyClaims {
            namespace: "ns".into(),
            service_account: Ref {
                name: "sa".into(),
                uid: "sa-uid".into(),
            },
            secret_name: "tok".into(),
        };
        let tok = iss.key.sign(&c.to_json()).unwrap();
        assert!(run(authenticate(&objs, &iss, &tok, 1010)).is_err());
        let mut s = objs.put("secrets", "ns", "tok", "s-uid");
        s["data"] = json!({"token": base64::engine::general_purpose::STANDARD.encode(&tok)});
        objs.0
            .insert(("secrets".into(), "ns".into(), "tok".into()), s);
        let u = run(authenticate(&objs, &iss, &tok, 1010)).unwrap().unwrap();
        assert_eq!(u.name, "system:serviceaccount:ns:sa");
        assert!(u.extra.is_empty());
        // A secret holding another token does not vouch for this one.
        let mut s = objs.put("secrets", "ns", "tok", "s-uid");
        s["data"] = json!({"token": base64::engine::general_purpose::STANDARD.encode("other")});
        objs.0
            .insert(("secrets".into(), "ns".into(), "tok".into()), s);
        assert!(run(authenticate(&objs, &iss, &tok, 1010)).is_err());
    }
}
