//! A DaemonSet's ControllerRevisions (`constructHistory`, `snapshot`, `dedupCurHistories`,
//! `cleanupHistory` of upstream's `update.go`): the revision matching the current template is
//! named `<ds>-<hash of template>` and labelled `controller-revision-hash: <hash>`, which new
//! pods carry too; older revisions are kept up to `revisionHistoryLimit` unless a pod uses them.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::api::status::{ApiError, ApiResult};
use crate::controllers::history::{self, POD_REVISION_LABEL};
use crate::controllers::podutil;
use crate::controllers::runtime::ctx::{CONTROLLERREVISIONS, DAEMONSETS, PODS};
use crate::controllers::runtime::{Ctx, OwnerRef};
use crate::meta;
use crate::registry::store::Part;

/// The revision stores the set's current template (`Match`).
pub fn matches(ds: &Value, rev: &Value) -> bool {
    rev["data"] == history::template_patch(ds)
}

/// The revisions the set controls, adopting and releasing through its selector
/// (`controlledHistories`).
pub async fn controlled(ctx: &Ctx, ds: &Value) -> ApiResult<Vec<Value>> {
    let Some(sel) = podutil::selector(ds) else {
        return Ok(Vec::new());
    };
    let all = ctx.list(CONTROLLERREVISIONS, meta::namespace(ds)).into_iter().map(|o| o.value()).collect();
    podutil::claim(ctx, CONTROLLERREVISIONS, ds, &sel, all).await
}

/// The current revision (created or renumbered as needed) and the old ones
/// (`constructHistory`).
pub async fn construct(ctx: &Ctx, ds: &Value, pods: &[Value]) -> ApiResult<(Value, Vec<Value>)> {
    let mut current = Vec::new();
    let mut old = Vec::new();
    for mut h in controlled(ctx, ds).await? {
        if h["metadata"]["labels"][POD_REVISION_LABEL].as_str().is_none() {
            let name = meta::name(&h).to_string();
            h = ctx
                .modify(CONTROLLERREVISIONS, meta::namespace(ds), &name, Part::Main, |c| {
                    if !c["metadata"]["labels"].is_object() {
                        c["metadata"]["labels"] = json!({});
                    }
                    c["metadata"]["labels"][POD_REVISION_LABEL] = json!(name);
                    Ok(())
                })
                .await?;
        }
        if matches(ds, &h) {
            current.push(h);
        } else {
            old.push(h);
        }
    }
    let next = old.iter().map(history::number).max().unwrap_or(0) + 1;
    let cur = if current.is_empty() {
        snapshot(ctx, ds, next).await?
    } else {
        let keep = dedup(ctx, current, pods).await?;
        if history::number(&keep) < next {
            history::renumber(ctx, &keep, next).await?
        } else {
            keep
        }
    };
    Ok((cur, old))
}

/// Keeps the highest of several revisions of the current template, relabelling pods of the
/// others (`dedupCurHistories`).
async fn dedup(ctx: &Ctx, mut current: Vec<Value>, pods: &[Value]) -> ApiResult<Value> {
    if current.len() == 1 {
        return Ok(current.remove(0));
    }
    let keep = current.iter().fold(None::<&Value>, |k, c| match k {
        Some(k) if history::number(c) < history::number(k) => Some(k),
        _ => Some(c),
    });
    let keep = keep.cloned().expect("not empty");
    let hash = keep["metadata"]["labels"][POD_REVISION_LABEL].as_str().unwrap_or("").to_string();
    for p in pods {
        if p["metadata"]["labels"][POD_REVISION_LABEL].as_str() != Some(hash.as_str()) {
            ctx.modify(PODS, meta::namespace(p), meta::name(p), Part::Main, |c| {
                if !c["metadata"]["labels"].is_object() {
                    c["metadata"]["labels"] = json!({});
                }
                c["metadata"]["labels"][POD_REVISION_LABEL] = json!(hash);
                Ok(())
            })
            .await
            .or_else(|e| if e.code == 404 { Ok(Value::Null) } else { Err(e) })?;
        }
    }
    for c in &current {
        if meta::name(c) != meta::name(&keep) {
            history::delete(ctx, c).await?;
        }
    }
    Ok(keep)
}

/// Records the current template as revision `revision` (`snapshot`); a name taken by another
/// template bumps `status.collisionCount` and fails, to be retried.
async fn snapshot(ctx: &Ctx, ds: &Value, revision: i64) -> ApiResult<Value> {
    let collision = ds["status"]["collisionCount"].as_i64();
    let hash = podutil::compute_hash(&ds["spec"]["template"], collision);
    let name = format!("{}-{hash}", meta::name(ds));
    let mut labels = ds["spec"]["template"]["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(POD_REVISION_LABEL.into(), json!(hash));
    let mut rev = json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": name, "namespace": meta::namespace(ds), "labels": labels, "ownerReferences": [OwnerRef::controller_ref(ds)]},
        "data": history::template_patch(ds),
        "revision": revision,
    });
    if let Some(a) = ds["metadata"]["annotations"].as_object().filter(|a| !a.is_empty()) {
        rev["metadata"]["annotations"] = json!(a);
    }
    match ctx.create(CONTROLLERREVISIONS, meta::namespace(ds), rev).await {
        Ok(v) => Ok(v),
        Err(e) if e.code == 409 && e.reason == "AlreadyExists" => {
            let s = ctx.strategy(CONTROLLERREVISIONS);
            let existing = ctx.store.get(s.as_ref(), meta::namespace(ds), &name).await?;
            if matches(ds, &existing.value()) {
                return Ok((*existing.value()).clone());
            }
            let uid = meta::uid(ds).to_string();
            ctx.modify(DAEMONSETS, meta::namespace(ds), meta::name(ds), Part::Status, |cur| {
                if meta::uid(cur) == uid && cur["status"]["collisionCount"].as_i64() == collision {
                    cur["status"]["collisionCount"] = json!(collision.unwrap_or(0) + 1);
                }
                Ok(())
            })
            .await?;
            tracing::info!(daemonset = meta::name(ds), "hash collision of a ControllerRevision; bumped collisionCount");
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Deletes old revisions beyond `revisionHistoryLimit`, oldest first, sparing those a pod
/// still uses (`cleanupHistory`).
pub async fn cleanup(ctx: &Ctx, ds: &Value, old: &mut [Value], pods: &[Value]) -> ApiResult<()> {
    let limit = ds["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
    let mut to_kill = old.len() as i64 - limit;
    if to_kill <= 0 {
        return Ok(());
    }
    let live: HashSet<&str> = pods.iter().filter_map(|p| p["metadata"]["labels"][POD_REVISION_LABEL].as_str()).collect();
    old.sort_by_key(history::number);
    for h in old.iter() {
        if to_kill <= 0 {
            break;
        }
        if h["metadata"]["labels"][POD_REVISION_LABEL].as_str().map(|x| live.contains(x)).unwrap_or(false) {
            continue;
        }
        history::delete(ctx, h).await.map_err(|e| ApiError::internal(format!("failed to clean up revisions of DaemonSet: {}", e.message)))?;
        to_kill -= 1;
    }
    Ok(())
}
