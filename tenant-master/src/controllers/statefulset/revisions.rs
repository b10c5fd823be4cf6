//! A StatefulSet's ControllerRevisions (`getStatefulSetRevisions`, `truncateHistory`): the
//! update revision is the set's current template; an equal older revision is renumbered
//! (a rollback), otherwise a new one is created. Revisions no pod, status or limit needs are
//! deleted oldest first.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::identity::pod_revision;
use crate::api::status::ApiResult;
use crate::controllers::history;
use crate::controllers::runtime::Ctx;
use crate::meta;

/// A revision for the set's current template (`newRevision`): the template patch, the
/// template's labels, the set's annotations.
pub fn new_revision(set: &Value, revision: i64, collision_count: i32) -> Value {
    let data = history::template_patch(set);
    let mut r = history::new_revision(set, &set["spec"]["template"]["metadata"]["labels"], data, revision, collision_count);
    if let Some(a) = set["metadata"]["annotations"].as_object().filter(|a| !a.is_empty()) {
        r["metadata"]["annotations"] = json!(a);
    }
    r
}

/// The current and update revisions and the collision count; may create or renumber a revision.
/// `revisions` must be sorted.
pub async fn current_and_update(ctx: &Ctx, set: &Value, revisions: &[Value]) -> ApiResult<(Value, Value, i32)> {
    let mut collision = set["status"]["collisionCount"].as_i64().unwrap_or(0) as i32;
    let candidate = new_revision(set, history::next_revision(revisions), collision);
    let equal = history::find_equal(revisions, &candidate);
    let update = match (equal.last(), revisions.last()) {
        (Some(eq), Some(last)) if history::equal(last, eq) => last.clone(),
        (Some(eq), _) => history::renumber(ctx, eq, history::number(&candidate)).await?,
        (None, _) => history::create(ctx, set, &candidate, &mut collision).await?,
    };
    let want = set["status"]["currentRevision"].as_str().unwrap_or("");
    let current = revisions.iter().find(|r| !want.is_empty() && meta::name(r) == want).cloned().unwrap_or_else(|| update.clone());
    Ok((current, update, collision))
}

/// The revisions beyond `revisionHistoryLimit` that nothing uses, oldest first.
pub fn to_delete<'a>(set: &Value, pods: &[Value], revisions: &'a [Value], current: &Value, update: &Value) -> Vec<&'a Value> {
    let mut live: HashSet<&str> = HashSet::new();
    live.insert(meta::name(current));
    live.insert(meta::name(update));
    for p in pods {
        live.insert(pod_revision(p));
    }
    let old: Vec<&Value> = revisions.iter().filter(|r| !live.contains(meta::name(r))).collect();
    let limit = set["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
    if limit < 0 || old.len() as i64 <= limit {
        return Vec::new();
    }
    old[..old.len() - limit as usize].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_live_revisions_and_the_limit() {
        let set = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "uid": "u", "annotations": {"kubernetes.io/change-cause": "x"}},
                         "spec": {"revisionHistoryLimit": 1, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {}}}});
        let r = new_revision(&set, 1, 0);
        assert_eq!(r["metadata"]["annotations"]["kubernetes.io/change-cause"], "x");
        assert_eq!(r["metadata"]["labels"]["app"], "web");
        let revs: Vec<Value> = (1..=5).map(|i| json!({"metadata": {"name": format!("web-{i}")}, "revision": i})).collect();
        let pods = vec![json!({"metadata": {"labels": {"controller-revision-hash": "web-2"}}})];
        let del: Vec<&str> = to_delete(&set, &pods, &revs, &revs[3], &revs[4]).into_iter().map(meta::name).collect();
        // Live: 2 (a pod), 4 (current), 5 (update); of 1 and 3 one stays.
        assert_eq!(del, vec!["web-1"]);
    }
}
