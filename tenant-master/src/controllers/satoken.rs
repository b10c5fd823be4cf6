//! The `serviceaccount-token` controller (upstream's TokensController, as it works since
//! v1.24: it no longer creates token Secrets, it fills in the ones users create). A Secret of
//! type `kubernetes.io/service-account-token` annotated `kubernetes.io/service-account.name`
//! gets `token` (a legacy, non-expiring JWT), `ca.crt` (the tenant CA) and `namespace`, and
//! the ServiceAccount's uid as annotation `kubernetes.io/service-account.uid`. Such a Secret
//! whose ServiceAccount does not exist (or has another uid) is deleted, as are the token
//! Secrets of a ServiceAccount when it is deleted.
//!
//! Simplified: a deleted Secret is not removed from its ServiceAccount's `secrets` list.

use base64::Engine;
use serde_json::{json, Value};

use super::runtime::ctx::{SECRETS, SERVICEACCOUNTS};
use super::runtime::{Action, Change, Controller, Ctx, ObjKey};
use crate::api::status::ApiError;
use crate::registry::store::{DeleteOpts, Part};
use crate::serviceaccount::jwt::{LegacyClaims, Ref};
use crate::serviceaccount::{Issuer, ANNOTATION_SA_NAME, ANNOTATION_SA_UID, SECRET_TYPE_TOKEN};
use crate::storage::cache::CachedObject;

/// Runs until the process ends.
pub async fn run(ctx: Ctx) {
    let c2 = ctx.clone();
    Controller::new("serviceaccount-token", ctx)
        .watches(SECRETS, |ch| {
            if ch.object.map(is_token_secret).unwrap_or(false) {
                vec![ch.key()]
            } else {
                vec![]
            }
        })
        .watches(SERVICEACCOUNTS, move |ch| tokens_of_deleted(&c2, ch))
        .run(|ctx, key| async move { reconcile(&ctx, &key).await })
        .await
}

fn is_token_secret(o: &CachedObject) -> bool {
    o.value()["type"] == SECRET_TYPE_TOKEN
}

/// A deleted ServiceAccount queues the token Secrets that name it.
fn tokens_of_deleted(ctx: &Ctx, ch: &Change) -> Vec<ObjKey> {
    if ch.object.is_some() {
        return vec![];
    }
    let sa = ch.latest();
    ctx.list(SECRETS, &sa.namespace)
        .into_iter()
        .filter(|s| {
            let v = s.value();
            v["type"] == SECRET_TYPE_TOKEN
                && v["metadata"]["annotations"][ANNOTATION_SA_NAME] == sa.name.as_str()
        })
        .map(|s| ObjKey::new(s.namespace.clone(), s.name.clone()))
        .collect()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// Which of `ca.crt`, `token`, `namespace` a token Secret lacks (`secretUpdateNeeded`).
fn needs(secret: &Value, ca: &str) -> (bool, bool, bool) {
    let data = &secret["data"];
    let has = |k: &str| data[k].as_str().map(|s| !s.is_empty()).unwrap_or(false);
    let needs_ca = !ca.is_empty() && data["ca.crt"].as_str() != Some(b64(ca).as_str());
    (needs_ca, !has("token"), !has("namespace"))
}

/// Fills in what a token Secret lacks, for ServiceAccount `sa`.
fn populate(secret: &mut Value, sa: &Value, iss: &Issuer) -> Result<(), ApiError> {
    let (needs_ca, needs_token, needs_ns) = needs(secret, &iss.ca_pem);
    if !(needs_ca || needs_token || needs_ns) {
        return Ok(());
    }
    if !secret["data"].is_object() {
        secret["data"] = json!({});
    }
    let ns = crate::meta::namespace(secret).to_string();
    if needs_ca {
        secret["data"]["ca.crt"] = json!(b64(&iss.ca_pem));
    }
    if needs_ns {
        secret["data"]["namespace"] = json!(b64(&ns));
    }
    if needs_token {
        let claims = LegacyClaims {
            namespace: ns,
            service_account: Ref::of(sa),
            secret_name: crate::meta::name(secret).to_string(),
        };
        let token = iss
            .key
            .sign(&claims.to_json())
            .map_err(ApiError::internal)?;
        secret["data"]["token"] = json!(b64(&token));
    }
    let md = crate::meta::metadata_mut(secret);
    if !md
        .get("annotations")
        .map(|a| a.is_object())
        .unwrap_or(false)
    {
        md.insert("annotations".into(), json!({}));
    }
    md["annotations"][ANNOTATION_SA_NAME] = json!(crate::meta::name(sa));
    md["annotations"][ANNOTATION_SA_UID] = json!(crate::meta::uid(sa));
    Ok(())
}

async fn reconcile(ctx: &Ctx, key: &ObjKey) -> Result<Action, ApiError> {
    let Some(iss) = ctx.store.service_accounts.get().cloned() else {
        return Ok(Action::Done);
    };
    let Some(secret) = ctx.get(SECRETS, &key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    if secret["type"] != SECRET_TYPE_TOKEN || crate::meta::is_deleting(&secret) {
        return Ok(Action::Done);
    }
    let ann = &secret["metadata"]["annotations"];
    let sa_name = ann[ANNOTATION_SA_NAME].as_str().unwrap_or("");
    let sa_uid = ann[ANNOTATION_SA_UID].as_str().unwrap_or("");
    let sa = ctx
        .get(SERVICEACCOUNTS, &key.namespace, sa_name)
        .filter(|sa| sa_uid.is_empty() || crate::meta::uid(sa) == sa_uid);
    let Some(sa) = sa else {
        tracing::debug!(secret = %key, "service account does not exist, deleting token");
        let o = DeleteOpts {
            precondition_uid: Some(crate::meta::uid(&secret).to_string()),
            ..Default::default()
        };
        return match ctx.delete(SECRETS, &key.namespace, &key.name, &o).await {
            Ok(_) => Ok(Action::Done),
            Err(e) if e.code == 409 => Ok(Action::Done),
            Err(e) => Err(e),
        };
    };
    let (a, b, c) = needs(&secret, &iss.ca_pem);
    if !(a || b || c) {
        return Ok(Action::Done);
    }
    let uid = crate::meta::uid(&secret).to_string();
    let res = ctx
        .modify(SECRETS, &key.namespace, &key.name, Part::Main, |s| {
            if crate::meta::uid(s) != uid {
                return Ok(());
            }
            populate(s, &sa, &iss)
        })
        .await;
    match res {
        Ok(_) => Ok(Action::Done),
        Err(e) if e.code == 404 => Ok(Action::Done),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serviceaccount::SigningKey;

    #[test]
    fn a_token_secret_is_filled_in_once() {
        let iss = Issuer::new(
            SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap(),
            "CA PEM",
            "",
            &[],
        );
        let sa = json!({"metadata": {"name": "build", "namespace": "ns", "uid": "sa-uid"}});
        let mut s = json!({"metadata": {"name": "build-token", "namespace": "ns", "annotations": {ANNOTATION_SA_NAME: "build"}}, "type": SECRET_TYPE_TOKEN});
        assert_eq!(needs(&s, "CA PEM"), (true, true, true));
        populate(&mut s, &sa, &iss).unwrap();
        assert_eq!(needs(&s, "CA PEM"), (false, false, false));
        assert_eq!(s["data"]["ca.crt"], b64("CA PEM"));
        assert_eq!(s["data"]["namespace"], b64("ns"));
        assert_eq!(s["metadata"]["annotations"][ANNOTATION_SA_UID], "sa-uid");
        let tok = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(s["data"]["token"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        let claims = LegacyClaims::check(&iss.key.verify(&tok).unwrap()).unwrap();
        assert_eq!(claims.secret_name, "build-token");
        assert_eq!(claims.service_account.uid, "sa-uid");
        // A second pass changes nothing (the token is kept).
        let before = s.clone();
        populate(&mut s, &sa, &iss).unwrap();
        assert_eq!(s, before);
    }
}
