//! Performs a [`Plan`]'s steps (upstream's `StatefulPodControl`): creates claims before their
//! pod, keeps claim ownership in line with the retention policy, repairs identities, deletes
//! pods, and records the events upstream records ("create Pod web-0 in StatefulSet web
//! successful", "create Claim www-web-0 Pod web-0 in StatefulSet web success").

use serde_json::Value;

use super::claims;
use super::identity::{claims as claims_of, identity_matches, ordinal, storage_matches, update_identity, update_storage};
use super::plan::{Plan, Step};
use crate::api::status::{ApiError, ApiResult};
use crate::controllers::runtime::ctx::{PERSISTENTVOLUMECLAIMS, PODS};
use crate::controllers::runtime::{Ctx, Res};
use crate::meta;
use crate::registry::store::{DeleteOpts, Part};

/// Runs the plan's stages in order. A monotonic plan stops at the first failure; a burst plan
/// tries the rest of the stage, then stops.
pub async fn execute(ctx: &Ctx, set: &Value, update_set: &Value, plan: &Plan) -> ApiResult<()> {
    for stage in &plan.stages {
        let mut first_err = None;
        for step in stage {
            if let Err(e) = run(ctx, set, update_set, step).await {
                if plan.monotonic {
                    return Err(e);
                }
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
    }
    Ok(())
}

async fn run(ctx: &Ctx, set: &Value, update_set: &Value, step: &Step) -> ApiResult<()> {
    match step {
        Step::Create(pod) => create_pod(ctx, set, pod).await,
        Step::CreateClaims(pod) => {
            create_claims(ctx, set, pod).await?;
            fix_claims(ctx, set, pod).await.inspect_err(|e| pod_event(ctx, "update", set, pod, Some(e)))
        }
        Step::Update(pod) => update_pod(ctx, update_set, pod).await,
        Step::FixClaims(pod) => fix_claims(ctx, update_set, pod).await,
        Step::Recreate(pod) | Step::Delete(pod) => delete_pod(ctx, set, pod).await,
    }
}

/// A fresh read through the store (waits for the cache to hold every write made so far).
async fn fresh(ctx: &Ctx, r: Res, ns: &str, name: &str) -> ApiResult<Option<Value>> {
    match ctx.store.get(ctx.strategy(r).as_ref(), ns, name).await {
        Ok(o) => Ok(Some((*o.value()).clone())),
        Err(e) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Upstream's `recordPodEvent`.
fn pod_event(ctx: &Ctx, verb: &str, set: &Value, pod: &Value, err: Option<&ApiError>) {
    let title = format!("{}{}", &verb[..1].to_uppercase(), &verb[1..]);
    let (pod, set_name) = (meta::name(pod), meta::name(set));
    match err {
        None => ctx.event(set, "Normal", &format!("Successful{title}"), format!("{verb} Pod {pod} in StatefulSet {set_name} successful")),
        Some(e) => ctx.event(set, "Warning", &format!("Failed{title}"), format!("{verb} Pod {pod} in StatefulSet {set_name} failed error: {}", e.message)),
    }
}

/// Upstream's `recordClaimEvent`.
fn claim_event(ctx: &Ctx, set: &Value, pod: &Value, claim: &str, err: Option<&ApiError>) {
    let (pod, set_name) = (meta::name(pod), meta::name(set));
    match err {
        None => ctx.event(set, "Normal", "SuccessfulCreate", format!("create Claim {claim} Pod {pod} in StatefulSet {set_name} success")),
        Some(e) => {
            ctx.event(set, "Warning", "FailedCreate", format!("create Claim {claim} for Pod {pod} in StatefulSet {set_name} failed error: {}", e.message))
        }
    }
}

/// Creates the claims of `pod` that do not exist yet (`createPersistentVolumeClaims`).
async fn create_claims(ctx: &Ctx, set: &Value, pod: &Value) -> ApiResult<()> {
    let ns = meta::namespace(set);
    let mut errs = Vec::new();
    for (_, claim) in claims_of(set, ordinal(pod)) {
        let name = meta::name(&claim).to_string();
        match fresh(ctx, PERSISTENTVOLUMECLAIMS, ns, &name).await {
            Ok(None) => match ctx.create(PERSISTENTVOLUMECLAIMS, ns, claim).await {
                Ok(_) => claim_event(ctx, set, pod, &name, None),
                Err(e) => {
                    if e.code != 409 {
                        claim_event(ctx, set, pod, &name, Some(&e));
                    }
                    errs.push(format!("failed to create PVC {name}: {}", e.message));
                }
            },
            Ok(Some(c)) => {
                if meta::is_deleting(&c) {
                    errs.push(format!("pvc {name} is being deleted"));
                }
            }
            Err(e) => {
                claim_event(ctx, set, pod, &name, Some(&e));
                errs.push(format!("failed to retrieve PVC {name}: {}", e.message));
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::internal(errs.join(", ")))
    }
}

/// Sets the owner references of the pod's existing claims as the retention policy says
/// (`UpdatePodClaimForRetentionPolicy`); `pod` must carry its UID for pod ownership.
async fn fix_claims(ctx: &Ctx, set: &Value, pod: &Value) -> ApiResult<()> {
    let ns = meta::namespace(set);
    for (_, claim) in claims_of(set, ordinal(pod)) {
        let name = meta::name(&claim).to_string();
        let Some(cur) = fresh(ctx, PERSISTENTVOLUMECLAIMS, ns, &name).await? else {
            continue;
        };
        if claims::owner_up_to_date(&cur, set, pod) {
            continue;
        }
        let res = ctx
            .modify(PERSISTENTVOLUMECLAIMS, ns, &name, Part::Main, |c| {
                if !claims::owner_up_to_date(c, set, pod) {
                    claims::update_owner_refs(c, set, pod);
                }
                Ok(())
            })
            .await;
        match res {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(ApiError::internal(format!("Could not update claim {name} for delete policy ownerRefs: {}", e.message))),
        }
    }
    Ok(())
}

/// Creates the claims, then the pod, then sets claim ownership (`CreateStatefulPod`).
async fn create_pod(ctx: &Ctx, set: &Value, pod: &Value) -> ApiResult<()> {
    if let Err(e) = create_claims(ctx, set, pod).await {
        pod_event(ctx, "create", set, pod, Some(&e));
        return Err(e);
    }
    let created = match ctx.create(PODS, meta::namespace(set), pod.clone()).await {
        Ok(p) => p,
        Err(e) if e.code == 409 && e.reason == "AlreadyExists" => return Err(e),
        Err(e) => {
            pod_event(ctx, "create", set, pod, Some(&e));
            return Err(e);
        }
    };
    if let Err(e) = fix_claims(ctx, set, &created).await {
        pod_event(ctx, "update", set, pod, Some(&e));
        return Err(e);
    }
    pod_event(ctx, "create", set, pod, None);
    Ok(())
}

/// Repairs identity labels and volumes and claim ownership (`UpdateStatefulPod`).
async fn update_pod(ctx: &Ctx, set: &Value, pod: &Value) -> ApiResult<()> {
    if !storage_matches(set, pod) {
        if let Err(e) = create_claims(ctx, set, pod).await {
            pod_event(ctx, "update", set, pod, Some(&e));
            return Err(e);
        }
    }
    if let Err(e) = fix_claims(ctx, set, pod).await {
        pod_event(ctx, "update", set, pod, Some(&e));
        return Err(e);
    }
    if identity_matches(set, pod) && storage_matches(set, pod) {
        return Ok(());
    }
    let uid = meta::uid(pod).to_string();
    let res = ctx
        .modify(PODS, meta::namespace(pod), meta::name(pod), Part::Main, |cur| {
            if meta::uid(cur) != uid {
                return Err(ApiError::conflict("", "pods", meta::name(pod), "the pod was replaced"));
            }
            if !identity_matches(set, cur) {
                update_identity(set, cur);
            }
            if !storage_matches(set, cur) {
                update_storage(set, cur);
            }
            Ok(())
        })
        .await;
    pod_event(ctx, "update", set, pod, res.as_ref().err());
    res.map(|_| ())
}

/// Deletes a pod (`DeleteStatefulPod`); one already gone is fine.
async fn delete_pod(ctx: &Ctx, set: &Value, pod: &Value) -> ApiResult<()> {
    let o = DeleteOpts { precondition_uid: Some(meta::uid(pod).to_string()).filter(|u| !u.is_empty()), ..Default::default() };
    match ctx.delete(PODS, meta::namespace(pod), meta::name(pod), &o).await {
        Ok(Some(_)) => {
            pod_event(ctx, "delete", set, pod, None);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => {
            pod_event(ctx, "delete", set, pod, Some(&e));
            Err(e)
        }
    }
}
