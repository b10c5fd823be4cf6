//! `metadata.managedFields`: decoding and encoding the entries, and the bookkeeping of who owns
//! what on Update and Apply operations, as structured-merge-diff's `merge.Updater` and the
//! managers kube-apiserver stacks around it (managedFieldsUpdater, stripMeta, buildManagerInfo,
//! capManagers) do it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::fieldset::{path_string, Path, PathElement, Set};
use super::merge::{compare, ensure_named_fields_are_members, merge, remove_items, strip_nulls, to_field_set};
use super::typed::TypeRef;

/// `Apply` or `Update`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write (create, update, patch).
    Update,
}

impl Operation {
    /// The wire form, `Apply` or `Update`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// The identity of a managedFields entry (upstream `BuildManagerIdentifier`): the manager,
/// operation and subresource, plus the apiVersion for updaters only, so an applier keeps one
/// entry whatever version it applies with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagerId {
    /// The field manager's name.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The apiVersion written through (empty for appliers).
    pub api_version: String,
    /// The subresource written through (`status`, `scale`, ...), empty for the main resource.
    pub subresource: String,
}

impl ManagerId {
    /// An identity for `manager` ("unknown" when empty, as upstream names it).
    pub fn new(manager: &str, operation: Operation, api_version: &str, subresource: &str) -> ManagerId {
        ManagerId {
            manager: if manager.is_empty() { "unknown".into() } else { manager.into() },
            operation,
            api_version: if operation == Operation::Apply { String::new() } else { api_version.into() },
            subresource: subresource.into(),
        }
    }

    /// How conflict messages name a manager: `"m"`, `"m" with subresource "s"`, plus
    /// ` using <apiVersion>` for updaters.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == Operation::Update {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// The fields one manager owns, at an apiVersion.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionedSet {
    /// The owned fields.
    pub set: Set,
    /// The apiVersion the paths are in.
    pub api_version: String,
    /// Whether the owner applied them (an Apply entry).
    pub applied: bool,
}

/// All managers of an object with the time of their last change.
#[derive(Clone, Debug, Default)]
pub struct Managed {
    /// What each manager owns.
    pub fields: BTreeMap<ManagerId, VersionedSet>,
    /// When each manager last changed the object (RFC 3339), if known.
    pub times: BTreeMap<ManagerId, Option<String>>,
}

/// The managedFields entries of an object as given (None when absent or null).
pub fn entries(obj: &Value) -> Option<&Vec<Value>> {
    obj["metadata"]["managedFields"].as_array()
}

/// Whether entries ask to reset managedFields: an empty list or one empty entry.
pub fn is_reset(e: &[Value]) -> bool {
    e.is_empty() || (e.len() == 1 && e[0].as_object().is_some_and(|m| m.is_empty()))
}

impl Managed {
    /// Decodes managedFields entries (upstream `DecodeManagedFields`); any invalid entry fails
    /// the whole list.
    pub fn decode(entries: &[Value]) -> Result<Managed, String> {
        let mut m = Managed::default();
        for (i, e) in entries.iter().enumerate() {
            let op = match e["operation"].as_str() {
                Some("Apply") => Operation::Apply,
                Some("Update") => Operation::Update,
                _ => return Err("operation must be `Apply` or `Update`".into()),
            };
            let av = e["apiVersion"].as_str().unwrap_or("");
            if av.is_empty() {
                return Err("apiVersion must not be empty".into());
            }
            match e["fieldsType"].as_str().unwrap_or("") {
                "FieldsV1" => {}
                "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
                t => return Err(format!("invalid fieldsType {t:?} in managed fields entry {i}")),
            }
            let set = match e.get("fieldsV1") {
                None | Some(Value::Null) => Set::new(),
                Some(v) => Set::from_fields_v1(v).map_err(|err| format!("error decoding set: {err}"))?,
            };
            let id = ManagerId {
                manager: e["manager"].as_str().unwrap_or("").into(),
                operation: op,
                api_version: if op == Operation::Apply { String::new() } else { av.into() },
                subresource: e["subresource"].as_str().unwrap_or("").into(),
            };
            m.times.insert(id.clone(), e["time"].as_str().map(String::from));
            m.fields.insert(id, VersionedSet { set, api_version: av.into(), applied: op == Operation::Apply });
        }
        Ok(m)
    }

    /// Encodes to managedFields entries in upstream's order: Apply before Update, then by time,
    /// manager, apiVersion and subresource. None when no manager is left.
    pub fn encode(&self) -> Option<Value> {
        if self.fields.is_empty() {
            return None;
        }
        let mut out: Vec<(Operation, i64, &ManagerId, &VersionedSet, Option<&String>)> = self
            .fields
            .iter()
            .map(|(id, vs)| {
                let t = self.times.get(id).and_then(|t| t.as_ref());
                let secs = t.and_then(|t| crate::meta::parse_time(t)).map(|t| t.timestamp()).unwrap_or(0);
                let op = if vs.applied { Operation::Apply } else { id.operation };
                (op, secs, id, vs, t)
            })
            .collect();
        out.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.cmp(&b.1))
                .then(a.2.manager.cmp(&b.2.manager))
                .then(a.3.api_version.cmp(&b.3.api_version))
                .then(a.2.subresource.cmp(&b.2.subresource))
        });
        let entries: Vec<Value> = out
            .into_iter()
            .map(|(op, _, id, vs, t)| {
                let mut e = Map::new();
                e.insert("manager".into(), json!(id.manager));
                e.insert("operation".into(), json!(op.as_str()));
                e.insert("apiVersion".into(), json!(vs.api_version));
                if let Some(t) = t {
                    e.insert("time".into(), json!(t));
                }
                e.insert("fieldsType".into(), json!("FieldsV1"));
                e.insert("fieldsV1".into(), vs.set.to_fields_v1());
                if !id.subresource.is_empty() {
                    e.insert("subresource".into(), json!(id.subresource));
                }
                Value::Object(e)
            })
            .collect();
        Some(Value::Array(entries))
    }

    fn drop_empty(&mut self) {
        let empty: Vec<ManagerId> = self.fields.iter().filter(|(_, v)| v.set.is_empty()).map(|(k, _)| k.clone()).collect();
        for k in empty {
            self.fields.remove(&k);
        }
    }
}

/// Fields never recorded as owned (upstream stripMeta): type meta and server-set metadata.
fn strip_set() -> Set {
    let f = |s: &str| PathElement::Field(s.into());
    let mut s = Set::new();
    for p in ["apiVersion", "kind", "metadata"] {
        s.insert(&[f(p)]);
    }
    for p in ["name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation", "managedFields", "resourceVersion"] {
        s.insert(&[f("metadata"), f(p)]);
    }
    s
}

/// What one write is, for the bookkeeping.
pub struct Ctx<'a> {
    /// The type of the object.
    pub tr: TypeRef<'a>,
    /// The apiVersion of the resource written through.
    pub api_version: &'a str,
    /// Fields this endpoint resets (status for the main resource, the rest for /status).
    pub ignored: &'a Set,
    /// Now, as RFC 3339.
    pub now: &'a str,
}

/// Records an Update operation by `id` that turned `live` into `new`: every manager loses the
/// fields that changed or went away, and `id` gains the changed ones (merged with what it had).
/// Returns whether anything was recorded for `id`.
pub fn update(managed: &mut Managed, live: &Value, new: &Value, id: &ManagerId, ctx: &Ctx) -> bool {
    let mut c = compare(live, new, ctx.tr);
    c.exclude(ctx.ignored);
    let changed = c.modified.union(&c.added);
    for vs in managed.fields.values_mut() {
        vs.set = vs.set.difference(&changed).difference(&c.removed);
    }
    managed.drop_empty();
    let mine = changed.difference(&c.removed).recursive_difference(ctx.ignored).difference(&strip_set());
    if mine.is_empty() {
        return false;
    }
    let set = match managed.fields.get(id) {
        Some(prev) => mine.union(&prev.set),
        None => mine,
    };
    managed.fields.insert(id.clone(), VersionedSet { set, api_version: ctx.api_version.into(), applied: false });
    managed.times.insert(id.clone(), Some(ctx.now.into()));
    true
}

/// Merges the oldest update entries into `ancient-changes` buckets (one per apiVersion) until at
/// most `max` update entries are left.
pub fn cap_updaters(managed: &mut Managed, max: usize) {
    let secs = |m: &Managed, id: &ManagerId| {
        m.times.get(id).and_then(|t| t.as_ref()).and_then(|t| crate::meta::parse_time(t)).map(|t| t.timestamp()).unwrap_or(0)
    };
    let mut updaters: Vec<ManagerId> = managed.fields.iter().filter(|(_, v)| !v.applied).map(|(k, _)| k.clone()).collect();
    if updaters.len() <= max {
        return;
    }
    updaters.sort_by(|a, b| secs(managed, a).cmp(&secs(managed, b)).then_with(|| a.cmp(b)));
    let mut first_of_version: BTreeMap<String, ManagerId> = BTreeMap::new();
    let mut length = updaters.len();
    for id in updaters {
        if length <= max {
            break;
        }
        let vs = managed.fields[&id].clone();
        let time = managed.times.get(&id).cloned().flatten();
        let bucket = ManagerId::new("ancient-changes", Operation::Update, &vs.api_version, "");
        match first_of_version.get(&vs.api_version) {
            None => {
                first_of_version.insert(vs.api_version.clone(), id);
            }
            Some(first) => {
                if !managed.fields.contains_key(&bucket) {
                    let s = managed.fields.remove(first).expect("first updater present");
                    managed.fields.insert(bucket.clone(), s);
                }
                let merged = vs.set.union(&managed.fields[&bucket].set);
                managed.fields.insert(bucket.clone(), VersionedSet { set: merged, api_version: vs.api_version.clone(), applied: false });
                managed.fields.remove(&id);
                managed.times.insert(bucket, time);
                length -= 1;
            }
        }
    }
}

/// Fields another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// Who owns the field.
    pub manager: ManagerId,
    /// The field.
    pub path: Path,
}

/// The result of merging an applied configuration.
pub enum Applied {
    /// The object changed; the new object (managedFields not yet encoded).
    Changed(Value),
    /// Nothing but possibly ownership changed.
    Unchanged,
}

/// Server-side apply of `config` by `id` onto `live` (upstream `Updater.Apply` under the
/// managers kube-apiserver stacks on it): merges, prunes what `id` applied before and no longer
/// does (unless another manager owns it), then takes ownership of the configured fields; fields
/// that change and that other managers own conflict unless `force`.
pub fn apply(managed: &mut Managed, live: &Value, config: &Value, id: &ManagerId, force: bool, ctx: &Ctx) -> Result<Applied, ApplyError> {
    // Nulls mean "not set" in a typed object: compare and merge without them.
    let mut live_n = live.clone();
    strip_nulls(&mut live_n);
    let live = &live_n;
    let merged = merge(Some(live), Some(config), ctx.tr).map_err(|e| ApplyError::Other(format!("failed to merge config: {e}")))?;
    let mut merged = merged.unwrap_or_else(|| json!({}));
    let last = managed.fields.get(id).cloned();
    let set = to_field_set(config, ctx.tr).recursive_difference(ctx.ignored);
    managed.fields.insert(id.clone(), VersionedSet { set, api_version: ctx.api_version.into(), applied: true });
    if let Some(last) = last.filter(|l| !l.set.is_empty()) {
        merged = prune(&merged, managed, &last, ctx.tr);
    }
    strip_nulls(&mut merged);
    // Other managers: conflicts on what changes, and losing what goes away.
    let mut c = compare(live, &merged, ctx.tr);
    c.exclude(ctx.ignored);
    let changed = c.modified.union(&c.added);
    let mut conflicts = Vec::new();
    for (m, vs) in &managed.fields {
        if m == id {
            continue;
        }
        for p in vs.set.intersection(&changed).paths() {
            conflicts.push(Conflict { manager: m.clone(), path: p });
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(conflicts));
    }
    for (m, vs) in managed.fields.iter_mut() {
        if m != id {
            vs.set = vs.set.difference(&changed).difference(&c.removed);
        }
    }
    if let Some(vs) = managed.fields.get_mut(id) {
        vs.set = vs.set.difference(&strip_set());
    }
    managed.drop_empty();
    if super::fieldset::values_equal(live, &merged) {
        return Ok(Applied::Unchanged);
    }
    managed.times.insert(id.clone(), Some(ctx.now.into()));
    Ok(Applied::Changed(merged))
}

/// Removes what the applier applied last time and not now, unless a manager owns it.
fn prune(merged: &Value, managed: &Managed, last: &VersionedSet, tr: TypeRef) -> Value {
    let last_set = ensure_named_fields_are_members(&last.set, tr);
    let mut pruned = remove_items(merged, &last_set, tr);
    // Add back what any manager (the applier's new configuration included) owns.
    let owned = managed.fields.values().fold(Set::new(), |acc, vs| acc.union(&vs.set));
    let merged_set = ensure_named_fields_are_members(&to_field_set(merged, tr), tr);
    let pruned_set = ensure_named_fields_are_members(&to_field_set(&pruned, tr), tr);
    let owned = ensure_named_fields_are_members(&owned, tr);
    pruned = remove_items(merged, &merged_set.difference(&pruned_set.union(&owned)), tr);
    // Only remove what the applier owned before: add back everything else.
    let pruned_set = ensure_named_fields_are_members(&to_field_set(&pruned, tr), tr);
    remove_items(merged, &merged_set.difference(&pruned_set).intersection(&last_set), tr)
}

/// Why an apply failed.
#[derive(Debug)]
pub enum ApplyError {
    /// Fields other managers own would change (and the apply was not forced).
    Conflicts(Vec<Conflict>),
    /// Anything else (a list item without a valid key, ...).
    Other(String),
}

/// upstream's conflict message: `Apply failed with 1 conflict: conflict with "m" using v1: .a`,
/// or one section per manager (sorted) for several.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if conflicts.len() == 1 {
        return format!("Apply failed with 1 conflict: conflict with {}: {}", conflicts[0].manager.describe(), path_string(&conflicts[0].path));
    }
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in conflicts {
        by.entry(c.manager.describe()).or_default().push(path_string(&c.path));
    }
    let mut lines = Vec::new();
    for (m, paths) in by {
        lines.push(format!("conflicts with {m}:"));
        for p in paths {
            lines.push(format!("- {p}"));
        }
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::apply::typed::for_kind;

    fn ctx<'a>(ignored: &'a Set) -> Ctx<'a> {
        Ctx { tr: for_kind("apps/v1", "Deployment"), api_version: "apps/v1", ignored, now: "2026-01-01T00:00:00Z" }
    }

    fn f(s: &str) -> PathElement {
        PathElement::Field(s.into())
    }

    fn dep(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    #[test]
    fn entries_round_trip_and_order() {
        let e = json!([
            {"manager": "b", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:paused": {}}}},
            {"manager": "z", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "a", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:x": {}}}, "subresource": "status"},
        ]);
        let m = Managed::decode(e.as_array().unwrap()).unwrap();
        let out = m.encode().unwrap();
        let names: Vec<&str> = out.as_array().unwrap().iter().map(|x| x["manager"].as_str().unwrap()).collect();
        assert_eq!(names, ["z", "a", "b"]);
        assert_eq!(out[1]["subresource"], "status");
        assert_eq!(Managed::decode(out.as_array().unwrap()).unwrap().fields, m.fields);
        assert!(Managed::decode(&[json!({"manager": "x", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"})]).is_err());
        assert!(Managed::decode(&[json!({"manager": "x", "operation": "Update", "apiVersion": "v1"})]).is_err());
    }

    #[test]
    fn update_takes_changed_fields_from_others() {
        let none = Set::new();
        let mut m = Managed::default();
        let applier = ManagerId::new("kubectl", Operation::Apply, "", "");
        let live = json!({});
        apply(&mut m, &live, &dep(1, "i1"), &applier, false, &ctx(&none)).unwrap();
        assert!(m.fields[&applier].set.has(&[f("spec"), f("replicas")]));
        assert!(!m.fields[&applier].set.has(&[f("metadata"), f("name")]), "stripped");
        let scaler = ManagerId::new("kubectl", Operation::Update, "apps/v1", "scale");
        assert!(update(&mut m, &dep(1, "i1"), &dep(5, "i1"), &scaler, &ctx(&none)));
        assert!(!m.fields[&applier].set.has(&[f("spec"), f("replicas")]));
        assert_eq!(m.fields[&scaler].set, Set::from_paths([&[f("spec"), f("replicas")][..]]));
        // A no-op update records nothing.
        assert!(!update(&mut m, &dep(5, "i1"), &dep(5, "i1"), &scaler, &ctx(&none)));
    }

    #[test]
    fn apply_conflicts_force_and_prune() {
        let none = Set::new();
        let mut m = Managed::default();
        let a = ManagerId::new("a", Operation::Apply, "", "");
        let b = ManagerId::new("b", Operation::Apply, "", "");
        let Applied::Changed(obj) = apply(&mut m, &json!({}), &dep(1, "i1"), &a, false, &ctx(&none)).unwrap() else { panic!() };
        // Same value by another applier: shared ownership, no conflict.
        let r = apply(&mut m, &obj, &dep(1, "i1"), &b, false, &ctx(&none)).unwrap();
        assert!(matches!(r, Applied::Unchanged));
        assert!(m.fields[&a].set.has(&[f("spec"), f("replicas")]) && m.fields[&b].set.has(&[f("spec"), f("replicas")]));
        // A different value conflicts with the other owner.
        let err = apply(&mut m.clone(), &obj, &dep(2, "i1"), &b, false, &ctx(&none)).err().unwrap();
        let ApplyError::Conflicts(c) = err else { panic!() };
        assert_eq!(conflict_message(&c), "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas");
        // Forced: b takes it over.
        let Applied::Changed(obj2) = apply(&mut m, &obj, &dep(2, "i1"), &b, true, &ctx(&none)).unwrap() else { panic!() };
        assert_eq!(obj2["spec"]["replicas"], 2);
        assert!(!m.fields[&a].set.has(&[f("spec"), f("replicas")]));
        // a stops applying replicas: b still owns it, so it stays.
        let mut cfg = dep(0, "i1");
        cfg["spec"].as_object_mut().unwrap().remove("replicas");
        let r = apply(&mut m, &obj2, &cfg, &a, false, &ctx(&none)).unwrap();
        assert!(matches!(r, Applied::Unchanged));
        // b stops applying replicas: nobody owns it any more, so it goes away.
        let Applied::Changed(obj3) = apply(&mut m, &obj2, &cfg, &b, false, &ctx(&none)).unwrap() else { panic!() };
        assert!(obj3["spec"].get("replicas").is_none(), "{obj3}");
        assert_eq!(obj3["spec"]["template"]["spec"]["containers"][0]["image"], "i1");
    }

    #[test]
    fn nulls_in_the_live_object_are_no_change() {
        let none = Set::new();
        let mut m = Managed::default();
        let a = ManagerId::new("a", Operation::Apply, "", "");
        let mut live = dep(1, "i");
        live["spec"]["template"]["metadata"] = json!({"creationTimestamp": null});
        apply(&mut m, &json!({}), &dep(1, "i"), &a, false, &ctx(&none)).unwrap();
        assert!(matches!(apply(&mut m, &live, &dep(1, "i"), &a, false, &ctx(&none)).unwrap(), Applied::Unchanged));
    }

    #[test]
    fn conflicts_with_updaters_name_the_version() {
        let u = ManagerId::new("mgr1", Operation::Update, "apps/v1", "");
        let c = vec![Conflict { manager: u.clone(), path: vec![f("spec"), f("replicas")] }];
        assert_eq!(conflict_message(&c), "Apply failed with 1 conflict: conflict with \"mgr1\" using apps/v1: .spec.replicas");
        let s = ManagerId::new("kubectl", Operation::Update, "apps/v1", "scale");
        let two = vec![c[0].clone(), Conflict { manager: s, path: vec![f("spec"), f("paused")] }];
        assert_eq!(
            conflict_message(&two),
            "Apply failed with 2 conflicts: conflicts with \"kubectl\" with subresource \"scale\" using apps/v1:\n- .spec.paused\nconflicts with \"mgr1\" using apps/v1:\n- .spec.replicas"
        );
    }

    #[test]
    fn updaters_are_capped_into_ancient_changes() {
        let none = Set::new();
        let mut m = Managed::default();
        let mut obj = json!({"metadata": {"labels": {}}});
        for i in 0..12 {
            let mut next = obj.clone();
            next["metadata"]["labels"][format!("l{i}")] = json!("v");
            let id = ManagerId::new(&format!("m{i:02}"), Operation::Update, "apps/v1", "");
            let c = Ctx { now: &format!("2026-01-01T00:00:{i:02}Z"), ..ctx(&none) };
            update(&mut m, &obj, &next, &id, &c);
            cap_updaters(&mut m, 10);
            obj = next;
        }
        assert_eq!(m.fields.len(), 10);
        let bucket = ManagerId::new("ancient-changes", Operation::Update, "apps/v1", "");
        let s = &m.fields[&bucket].set;
        for l in ["l0", "l1", "l2"] {
            assert!(s.has(&[f("metadata"), f("labels"), f(l)]), "{l}");
        }
        assert!(!m.fields.keys().any(|k| k.manager == "m00" || k.manager == "m02"));
    }
}
