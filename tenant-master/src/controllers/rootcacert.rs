//! The `root-ca-cert-publisher` controller (upstream's rootcacertpublisher): every active
//! namespace has a ConfigMap `kube-root-ca.crt` whose `ca.crt` is the tenant CA's PEM (what
//! `DIR/pki/ca.crt` holds), with upstream's description annotation. It is recreated when
//! deleted and restored when its data or annotation change.

use serde_json::{json, Value};

use super::runtime::ctx::{CONFIGMAPS, NAMESPACES};
use super::runtime::{Action, Controller, Ctx, ObjKey};
use super::serviceaccount::namespace_gone;
use crate::api::status::ApiError;
use crate::serviceaccount::ROOT_CA_CONFIGMAP;

/// The annotation upstream puts on the ConfigMap, and its text.
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Runs until the process ends.
pub async fn run(ctx: Ctx) {
    Controller::new("root-ca-cert-publisher", ctx)
        .watches(NAMESPACES, |ch| {
            if ch.object.is_some() {
                vec![ch.key()]
            } else {
                vec![]
            }
        })
        .watches(CONFIGMAPS, |ch| {
            let o = ch.latest();
            if o.name == ROOT_CA_CONFIGMAP {
                vec![ObjKey::new("", o.namespace.clone())]
            } else {
                vec![]
            }
        })
        .run(|ctx, key| async move { reconcile(&ctx, &key.name).await })
        .await
}

fn wanted_data(ca: &str) -> Value {
    json!({"ca.crt": ca})
}

async fn reconcile(ctx: &Ctx, ns: &str) -> Result<Action, ApiError> {
    let Some(iss) = ctx.store.service_accounts.get().cloned() else {
        return Ok(Action::Done);
    };
    let Some(n) = ctx.get(NAMESPACES, "", ns) else {
        return Ok(Action::Done);
    };
    if n["status"]["phase"] != "Active" || crate::meta::is_deleting(&n) {
        return Ok(Action::Done);
    }
    let data = wanted_data(&iss.ca_pem);
    let Some(cm) = ctx.get(CONFIGMAPS, ns, ROOT_CA_CONFIGMAP) else {
        let cm = json!({
            "metadata": {"name": ROOT_CA_CONFIGMAP, "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
            "data": data,
        });
        return match ctx.create(CONFIGMAPS, ns, cm).await {
            Ok(_) => Ok(Action::Done),
            Err(e) if e.code == 409 || namespace_gone(&e) => Ok(Action::Done),
            Err(e) => Err(e),
        };
    };
    let described = cm["metadata"]["annotations"][DESCRIPTION_ANNOTATION]
        .as_str()
        .map(|d| !d.is_empty())
        .unwrap_or(false);
    if cm["data"] == data && described {
        return Ok(Action::Done);
    }
    let mut cm = (*cm).clone();
    cm["data"] = data;
    let md = crate::meta::metadata_mut(&mut cm);
    if !md
        .get("annotations")
        .map(|a| a.is_object())
        .unwrap_or(false)
    {
        md.insert("annotations".into(), json!({}));
    }
    md["annotations"][DESCRIPTION_ANNOTATION] = json!(DESCRIPTION);
    match ctx.update(CONFIGMAPS, cm).await {
        Ok(_) => Ok(Action::Done),
        Err(e) if e.code == 404 => Ok(Action::Done),
        Err(e) => Err(e),
    }
}
