//! The `serviceaccount` controller (upstream's ServiceAccountsController): every active
//! namespace has a `default` ServiceAccount, created when the namespace appears and again
//! whenever it is deleted.

use serde_json::json;

use super::runtime::ctx::{NAMESPACES, SERVICEACCOUNTS};
use super::runtime::{Action, Change, Controller, Ctx, ObjKey};
use crate::api::status::ApiError;
use crate::serviceaccount::DEFAULT_SERVICE_ACCOUNT;

/// The ServiceAccounts every namespace gets.
const ENSURED: &[&str] = &[DEFAULT_SERVICE_ACCOUNT];

/// Runs until the process ends.
pub async fn run(ctx: Ctx) {
    Controller::new("serviceaccount", ctx)
        .watches(NAMESPACES, |ch| {
            if ch.object.is_some() {
                vec![ch.key()]
            } else {
                vec![]
            }
        })
        .watches(SERVICEACCOUNTS, deleted_account)
        .run(|ctx, key| async move { reconcile(&ctx, &key.name).await })
        .await
}

/// A deleted ensured ServiceAccount queues its namespace.
fn deleted_account(ch: &Change) -> Vec<ObjKey> {
    let o = ch.latest();
    if ch.object.is_none() && ENSURED.contains(&o.name.as_str()) {
        vec![ObjKey::new("", o.namespace.clone())]
    } else {
        vec![]
    }
}

/// Whether a create failed only because the namespace is gone or going.
pub(crate) fn namespace_gone(e: &ApiError) -> bool {
    e.code == 404 || (e.code == 403 && e.message.contains("because it is being terminated"))
}

async fn reconcile(ctx: &Ctx, ns: &str) -> Result<Action, ApiError> {
    let Some(n) = ctx.get(NAMESPACES, "", ns) else {
        return Ok(Action::Done);
    };
    if n["status"]["phase"] != "Active" || crate::meta::is_deleting(&n) {
        return Ok(Action::Done);
    }
    for name in ENSURED {
        if ctx.get(SERVICEACCOUNTS, ns, name).is_some() {
            continue;
        }
        match ctx
            .create(SERVICEACCOUNTS, ns, json!({"metadata": {"name": name}}))
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 409 || namespace_gone(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Action::Done)
}
