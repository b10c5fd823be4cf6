//! The garbage collector's ownership index, after upstream's `GraphBuilder` and `uidToNode`:
//! object UID -> node (where the object lives, its ownerReferences, the UIDs of its
//! dependents), updated incrementally from watch-cache events.
//!
//! Unlike upstream, which keeps a node for every object of every resource, only objects that
//! take part in ownership are indexed: objects with ownerReferences, objects referenced as an
//! owner, and objects being deleted with the `orphan` or `foregroundDeletion` finalizer. A node
//! that no longer takes part (no owners, no dependents, not being deleted) is dropped again, so
//! memory follows the objects that have or are owners.
//!
//! An owner referenced before it has been seen is a *virtual* node (upstream's term) carrying
//! the coordinates of the reference; the controller looks it up in the watch cache at once
//! ([`Effects::unresolved`]) and either [`Graph::observe`]s it or [`Graph::confirm_absent`]s it.
//!
//! The graph decides nothing and writes nothing: each update returns the work it makes due
//! ([`Effects::keys`]) for the controller's queue.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde_json::Value;

use crate::controllers::runtime::OwnerRef;

/// The finalizer of an owner deleted with `propagationPolicy=Foreground`.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer of an owner deleted with `propagationPolicy=Orphan`.
pub const ORPHAN: &str = "orphan";

/// Where an object lives: apiVersion, kind, namespace ("" when cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ident {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl Ident {
    /// The coordinates an ownerReference gives, placed in `namespace` (the dependent's).
    pub fn of_ref(r: &OwnerRef, namespace: &str) -> Ident {
        Ident { api_version: r.api_version.clone(), kind: r.kind.clone(), namespace: namespace.into(), name: r.name.clone() }
    }

    /// Whether a reference names this object by apiVersion, kind and name (upstream's
    /// `ownerReferenceMatchesCoordinates`; the UID matches by construction).
    pub fn matches(&self, r: &OwnerRef) -> bool {
        self.api_version == r.api_version && self.kind == r.kind && self.name == r.name
    }
}

/// Upstream's `objectReference.String()`, as event messages print it.
pub fn describe(api_version: &str, kind: &str, namespace: &str, name: &str, uid: &str) -> String {
    format!("[{api_version}/{kind}, namespace: {namespace}, name: {name}, uid: {uid}]")
}

/// What the garbage collector reads of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjMeta {
    pub uid: String,
    pub ident: Ident,
    pub resource_version: String,
    /// Well-formed references with a UID, in order.
    pub owners: Vec<OwnerRef>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl ObjMeta {
    /// Reads an object's `metadata` (served as `api_version`/`kind`); None without a UID.
    pub fn from_metadata(api_version: &str, kind: &str, md: &Value) -> Option<ObjMeta> {
        let uid = md["uid"].as_str().filter(|u| !u.is_empty())?.to_string();
        let owners =
            md["ownerReferences"].as_array().into_iter().flatten().filter_map(OwnerRef::parse).filter(|r| !r.uid.is_empty()).collect();
        let finalizers = md["finalizers"].as_array().into_iter().flatten().filter_map(|f| f.as_str().map(String::from)).collect();
        Some(ObjMeta {
            uid,
            ident: Ident {
                api_version: api_version.into(),
                kind: kind.into(),
                namespace: md["namespace"].as_str().unwrap_or("").into(),
                name: md["name"].as_str().unwrap_or("").into(),
            },
            resource_version: md["resourceVersion"].as_str().unwrap_or("").into(),
            owners,
            deleting: !md["deletionTimestamp"].is_null(),
            finalizers,
        })
    }

    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted in the foreground: waiting for its blocking dependents to go.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }

    /// The deletion of this object has just started with finalizer `f` (upstream's
    /// `deletionStartsWithFinalizer`); `prev` is the state before the change, if any.
    fn starts_with(&self, prev: Option<&ObjMeta>, f: &str) -> bool {
        self.deleting && self.has_finalizer(f) && prev.is_none_or(|p| !p.deleting || !p.has_finalizer(f))
    }
}

/// A unit of the garbage collector's work, by object UID (upstream's two queues).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GcKey {
    /// `attemptToDelete`: decide whether the object is garbage, or finish its foreground
    /// deletion.
    Delete(String),
    /// `attemptToOrphan`: strip the owner from its dependents, then drop its `orphan` finalizer.
    Orphan(String),
}

impl fmt::Display for GcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GcKey::Delete(u) => write!(f, "attemptToDelete {u}"),
            GcKey::Orphan(u) => write!(f, "attemptToOrphan {u}"),
        }
    }
}

/// One indexed object.
#[derive(Debug, Clone)]
pub struct Node {
    pub ident: Ident,
    pub owners: Vec<OwnerRef>,
    pub dependents: BTreeSet<String>,
    /// Seen in a cache (false: only known from a dependent's reference).
    pub observed: bool,
    pub being_deleted: bool,
    pub deleting_dependents: bool,
}

/// A reference naming an owner in another namespace than its dependent's (or a namespaced
/// kind from a cluster-scoped dependent): an `OwnerRefInvalidNamespace` event.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidRef {
    pub dependent_uid: String,
    pub dependent: Ident,
    pub owner: OwnerRef,
}

/// What an update of the graph makes due.
#[derive(Debug, Default)]
pub struct Effects {
    pub keys: Vec<GcKey>,
    /// UIDs of virtual owners just created: to be looked up in the caches.
    pub unresolved: Vec<String>,
    pub invalid: Vec<InvalidRef>,
}

/// The index itself. Owned by the garbage collector behind a mutex; every method is quick and
/// does no I/O.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

/// References added, removed, and changed (old, new) between two lists, by UID.
fn diff(old: &[OwnerRef], new: &[OwnerRef]) -> (Vec<OwnerRef>, Vec<OwnerRef>, Vec<(OwnerRef, OwnerRef)>) {
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for n in new {
        match old.iter().find(|o| o.uid == n.uid) {
            None => added.push(n.clone()),
            Some(o) if o != n => changed.push((o.clone(), n.clone())),
            Some(_) => {}
        }
    }
    let removed = old.iter().filter(|o| !new.iter().any(|n| n.uid == o.uid)).cloned().collect();
    (added, removed, changed)
}

impl Graph {
    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// An object was added or changed (`prev`: its state before, if the change says).
    pub fn observe(&mut self, prev: Option<&ObjMeta>, obj: &ObjMeta, fx: &mut Effects) {
        let uid = obj.uid.as_str();
        let Some(node) = self.nodes.get_mut(uid) else {
            let finalizing = obj.deleting && (obj.has_finalizer(ORPHAN) || obj.has_finalizer(FOREGROUND));
            if obj.owners.is_empty() && !finalizing {
                return;
            }
            self.nodes.insert(
                uid.to_string(),
                Node {
                    ident: obj.ident.clone(),
                    owners: obj.owners.clone(),
                    dependents: BTreeSet::new(),
                    observed: true,
                    being_deleted: obj.deleting,
                    deleting_dependents: obj.deleting_dependents(),
                },
            );
            self.add_dependent_to_owners(uid, &obj.ident, &obj.owners, fx);
            self.transitions(prev, obj, fx);
            return;
        };
        if !node.observed {
            // A virtual node turns real: dependents naming it otherwise may be wrong.
            node.observed = true;
            if node.ident != obj.ident {
                node.ident = obj.ident.clone();
                let deps: Vec<String> = node.dependents.iter().cloned().collect();
                self.recheck_dependents(uid, &obj.ident, &deps, fx);
            }
        } else if node.ident != obj.ident {
            node.ident = obj.ident.clone();
        }
        let node = self.nodes.get_mut(uid).expect("node present");
        node.being_deleted = obj.deleting;
        node.deleting_dependents = obj.deleting_dependents();
        let (added, removed, changed) = diff(&node.owners, &obj.owners);
        if !added.is_empty() || !removed.is_empty() || !changed.is_empty() {
            node.owners = obj.owners.clone();
            // Owners waiting for their blocking dependents may be free now.
            let unblocked = removed
                .iter()
                .filter(|r| r.block_owner_deletion)
                .chain(changed.iter().filter(|(o, n)| o.block_owner_deletion && !n.block_owner_deletion).map(|(_, n)| n));
            for r in unblocked {
                if self.nodes.contains_key(&r.uid) {
                    fx.keys.push(GcKey::Delete(r.uid.clone()));
                }
            }
            self.add_dependent_to_owners(uid, &obj.ident, &added, fx);
            self.remove_dependent_from_owners(uid, &removed);
        }
        self.transitions(prev, obj, fx);
        self.prune(uid);
    }

    /// An object was deleted: its dependents may be garbage now, and owners waiting for it may
    /// be done.
    pub fn observe_deleted(&mut self, obj: &ObjMeta, fx: &mut Effects) {
        let Some(node) = self.nodes.remove(&obj.uid) else { return };
        for d in &node.dependents {
            if *d != obj.uid {
                fx.keys.push(GcKey::Delete(d.clone()));
            }
        }
        for r in &node.owners {
            if let Some(o) = self.nodes.get_mut(&r.uid) {
                o.dependents.remove(&obj.uid);
                if o.deleting_dependents {
                    fx.keys.push(GcKey::Delete(r.uid.clone()));
                }
            }
            self.prune(&r.uid);
        }
    }

    /// The object `uid` was looked up and does not exist (upstream's virtual delete event):
    /// a virtual node is dropped. Returns its dependents' keys, to be looked at again.
    pub fn confirm_absent(&mut self, uid: &str) -> Vec<GcKey> {
        let Some(node) = self.nodes.get(uid) else { return Vec::new() };
        let keys = node.dependents.iter().filter(|d| *d != uid).map(|d| GcKey::Delete(d.clone())).collect();
        if !node.observed {
            // An observed node goes with its own delete event, which is on its way.
            self.nodes.remove(uid);
        }
        keys
    }

    /// Dependents whose reference to `uid` has blockOwnerDeletion, each with whether it is
    /// itself deleting its dependents.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<(String, bool)> {
        let Some(node) = self.nodes.get(uid) else { return Vec::new() };
        node.dependents
            .iter()
            .filter_map(|d| self.nodes.get(d).map(|n| (d, n)))
            .filter(|(_, n)| n.owners.iter().any(|r| r.uid == uid && r.block_owner_deletion))
            .map(|(d, n)| (d.clone(), n.deleting_dependents))
            .collect()
    }

    /// The dependents of `uid` with where they live.
    pub fn dependents(&self, uid: &str) -> Vec<(String, Ident)> {
        let Some(node) = self.nodes.get(uid) else { return Vec::new() };
        node.dependents.iter().filter_map(|d| self.nodes.get(d).map(|n| (d.clone(), n.ident.clone()))).collect()
    }

    /// Whether `uid` has dependents, and whether one of them is deleting its own dependents.
    pub fn dependents_state(&self, uid: &str) -> (bool, bool) {
        let Some(node) = self.nodes.get(uid) else { return (false, false) };
        let deleting = node.dependents.iter().any(|d| self.nodes.get(d).is_some_and(|n| n.deleting_dependents));
        (!node.dependents.is_empty(), deleting)
    }

    /// Upstream's `processTransitions`: the start of an orphaning or foreground deletion.
    fn transitions(&mut self, prev: Option<&ObjMeta>, obj: &ObjMeta, fx: &mut Effects) {
        let Some(node) = self.nodes.get_mut(&obj.uid) else { return };
        if obj.starts_with(prev, ORPHAN) {
            fx.keys.push(GcKey::Orphan(obj.uid.clone()));
            return;
        }
        if obj.starts_with(prev, FOREGROUND) {
            node.deleting_dependents = true;
            fx.keys.extend(node.dependents.iter().filter(|d| **d != obj.uid).map(|d| GcKey::Delete(d.clone())));
            fx.keys.push(GcKey::Delete(obj.uid.clone()));
        }
    }

    /// Adds `dep` to the dependents of each referenced owner, creating virtual owners; queues
    /// `dep` when a reference disagrees with where its owner was seen (upstream's
    /// `addDependentToOwners`).
    fn add_dependent_to_owners(&mut self, dep: &str, dep_ident: &Ident, refs: &[OwnerRef], fx: &mut Effects) {
        let mut recheck = false;
        for r in refs {
            match self.nodes.get_mut(&r.uid) {
                None => {
                    let mut dependents = BTreeSet::new();
                    dependents.insert(dep.to_string());
                    self.nodes.insert(
                        r.uid.clone(),
                        Node {
                            ident: Ident::of_ref(r, &dep_ident.namespace),
                            owners: Vec::new(),
                            dependents,
                            observed: false,
                            being_deleted: false,
                            deleting_dependents: false,
                        },
                    );
                    fx.unresolved.push(r.uid.clone());
                }
                Some(owner) => {
                    owner.dependents.insert(dep.to_string());
                    let owner_ns = &owner.ident.namespace;
                    if !owner_ns.is_empty() && *owner_ns != dep_ident.namespace {
                        if owner.observed {
                            fx.invalid.push(InvalidRef { dependent_uid: dep.to_string(), dependent: dep_ident.clone(), owner: r.clone() });
                        }
                        recheck = true;
                    } else if !owner.ident.matches(r) {
                        recheck = true;
                    }
                }
            }
        }
        if recheck {
            fx.keys.push(GcKey::Delete(dep.to_string()));
        }
    }

    /// After an owner was first seen as `owner`: queues the dependents that name it by other
    /// coordinates or live in another namespace.
    fn recheck_dependents(&mut self, uid: &str, owner: &Ident, deps: &[String], fx: &mut Effects) {
        for d in deps {
            let Some(dn) = self.nodes.get(d) else { continue };
            if !owner.namespace.is_empty() && dn.ident.namespace != owner.namespace {
                if let Some(r) = dn.owners.iter().find(|r| r.uid == uid) {
                    fx.invalid.push(InvalidRef { dependent_uid: d.clone(), dependent: dn.ident.clone(), owner: r.clone() });
                }
                fx.keys.push(GcKey::Delete(d.clone()));
            } else if dn.owners.iter().any(|r| r.uid == uid && !owner.matches(r)) {
                fx.keys.push(GcKey::Delete(d.clone()));
            }
        }
    }

    fn remove_dependent_from_owners(&mut self, dep: &str, refs: &[OwnerRef]) {
        for r in refs {
            if let Some(o) = self.nodes.get_mut(&r.uid) {
                o.dependents.remove(dep);
            }
            self.prune(&r.uid);
        }
    }

    /// Drops a node that no longer takes part in ownership.
    fn prune(&mut self, uid: &str) {
        let Some(n) = self.nodes.get(uid) else { return };
        if n.dependents.is_empty() && (!n.observed || (n.owners.is_empty() && !n.being_deleted)) {
            self.nodes.remove(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oref(kind: &str, name: &str, uid: &str, block: bool) -> OwnerRef {
        OwnerRef {
            api_version: "v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: false,
            block_owner_deletion: block,
        }
    }

    fn obj(kind: &str, ns: &str, name: &str, uid: &str, owners: Vec<OwnerRef>) -> ObjMeta {
        ObjMeta {
            uid: uid.into(),
            ident: Ident { api_version: "v1".into(), kind: kind.into(), namespace: ns.into(), name: name.into() },
            resource_version: "1".into(),
            owners,
            deleting: false,
            finalizers: vec![],
        }
    }

    fn deleting(mut o: ObjMeta, fin: &str) -> ObjMeta {
        o.deleting = true;
        o.finalizers = vec![fin.to_string()];
        o
    }

    #[test]
    fn parses_metadata() {
        let md = json!({
            "name": "d", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
            "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["orphan", 3],
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u0", "blockOwnerDeletion": true},
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "bad"},
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "empty", "uid": ""}
            ]
        });
        let m = ObjMeta::from_metadata("v1", "Secret", &md).unwrap();
        assert_eq!(m.ident.namespace, "ns");
        assert_eq!(m.owners.len(), 1, "malformed and UID-less references are ignored");
        assert!(m.owners[0].block_owner_deletion);
        assert!(m.deleting && m.has_finalizer(ORPHAN) && !m.deleting_dependents());
        assert!(ObjMeta::from_metadata("v1", "Secret", &json!({"name": "x"})).is_none());
    }

    #[test]
    fn indexes_only_what_takes_part_in_ownership() {
        let mut g = Graph::default();
        let mut fx = Effects::default();
        g.observe(None, &obj("ConfigMap", "ns", "lonely", "u9", vec![]), &mut fx);
        assert!(g.is_empty());
        let owner = obj("ConfigMap", "ns", "o", "u0", vec![]);
        g.observe(None, &owner, &mut fx);
        assert!(g.is_empty(), "an owner is indexed once referenced");
        let dep = obj("ConfigMap", "ns", "d", "u1", vec![oref("ConfigMap", "o", "u0", false)]);
        g.observe(None, &dep, &mut fx);
        assert_eq!(g.len(), 2);
        assert_eq!(fx.unresolved, vec!["u0".to_string()]);
        assert!(!g.node("u0").unwrap().observed);
        // The controller found the owner in its cache.
        g.observe(None, &owner, &mut fx);
        assert!(g.node("u0").unwrap().observed);
        assert!(fx.keys.is_empty());
        // The dependent drops its reference: both nodes go.
        let freed = obj("ConfigMap", "ns", "d", "u1", vec![]);
        g.observe(Some(&dep), &freed, &mut fx);
        assert!(g.is_empty(), "{g:?}");
    }

    #[test]
    fn deleting_an_owner_queues_its_dependents() {
        let mut g = Graph::default();
        let mut fx = Effects::default();
        let owner = obj("ConfigMap", "ns", "o", "u0", vec![]);
        let d1 = obj("ConfigMap", "ns", "d1", "u1", vec![oref("ConfigMap", "o", "u0", false)]);
        let d2 = obj("Secret", "ns", "d2", "u2", vec![oref("ConfigMap", "o", "u0", false)]);
        g.observe(None, &d1, &mut fx);
        g.observe(None, &owner, &mut fx);
        g.observe(None, &d2, &mut fx);
        let mut fx = Effects::default();
        g.observe_deleted(&owner, &mut fx);
        assert_eq!(fx.keys, vec![GcKey::Delete("u1".into()), GcKey::Delete("u2".into())]);
        assert!(g.node("u0").is_none());
        // The dependents go too; nothing is left.
        g.observe_deleted(&d1, &mut fx);
        g.observe_deleted(&d2, &mut fx);
        assert!(g.is_empty());
    }

    #[test]
    fn confirming_a_virtual_owner_absent_drops_it() {
        let mut g = Graph::default();
        let mut fx = Effects::default();
        let d = obj("ConfigMap", "ns", "d", "u1", vec![oref("ConfigMap", "ghost", "u0", false)]);
        g.observe(None, &d, &mut fx);
        assert_eq!(g.confirm_absent("u0"), vec![GcKey::Delete("u1".into())]);
        assert!(g.node("u0").is_none());
        assert!(g.node("u1").is_some());
        assert!(g.confirm_absent("nope").is_empty());
    }

    #[test]
    fn orphan_and_foreground_transitions() {
        let mut g = Graph::default();
        let mut fx = Effects::default();
        let owner = obj("ConfigMap", "ns", "o", "u0", vec![]);
        let d = obj("ConfigMap", "ns", "d", "u1", vec![oref("ConfigMap", "o", "u0", true)]);
        g.observe(None, &d, &mut fx);
        g.observe(None, &owner, &mut fx);
        let mut fx = Effects::default();
        let fg = deleting(owner.clone(), FOREGROUND);
        g.observe(Some(&owner), &fg, &mut fx);
        assert_eq!(fx.keys, vec![GcKey::Delete("u1".into()), GcKey::Delete("u0".into())]);
        assert!(g.node("u0").unwrap().deleting_dependents);
        assert_eq!(g.blocking_dependents("u0"), vec![("u1".to_string(), false)]);
        // The same state again (a resync of a changed object) starts nothing new.
        let mut fx = Effects::default();
        g.observe(Some(&fg), &fg, &mut fx);
        assert!(fx.keys.is_empty());
        // The blocking dependent goes: the owner is looked at again.
        g.observe_deleted(&d, &mut fx);
        assert_eq!(fx.keys, vec![GcKey::Delete("u0".into())]);
        assert!(g.blocking_dependents("u0").is_empty());

        // An object with no owners nor dependents is indexed once it is being orphaned.
        let mut fx = Effects::default();
        let lone = obj("ConfigMap", "ns", "l", "u5", vec![]);
        g.observe(Some(&lone), &deleting(lone.clone(), ORPHAN), &mut fx);
        assert_eq!(fx.keys, vec![GcKey::Orphan("u5".into())]);
        // At start (no previous state) a pending orphaning is picked up again.
        let mut g2 = Graph::default();
        let mut fx = Effects::default();
        g2.observe(None, &deleting(lone, ORPHAN), &mut fx);
        assert_eq!(fx.keys, vec![GcKey::Orphan("u5".into())]);
    }

    #[test]
    fn unblocking_a_reference_wakes_the_owner() {
        let mut g = Graph::default();
        let mut fx = Effects::default();
        let owner = obj("ConfigMap", "ns", "o", "u0", vec![]);
        let d = obj("ConfigMap", "ns", "d", "u1", vec![oref("ConfigMap", "o", "u0", true)]);
        g.observe(None, &d, &mut fx);
        g.observe(None, &owner, &mut fx);
        let mut fx = Effects::default();
        let unblocked = obj("ConfigMap", "ns", "d", "u1", vec![oref("ConfigMap", "o", "u0", false)]);
        g.observe(Some(&d), &unblocked, &mut fx);
        assert_eq!(fx.keys, vec![GcKey::Delete("u0".into())]);
        assert!(g.blocking_dependents("u0").is_empty());
        assert_eq!(g.dependents("u0").len(), 1);
    }

    #[test]
    fn references_across_namespaces_are_reported_and_rechecked() {
        let mut g = Graph::default();
        let mut fx = Effects::default();
        let owner = obj("ConfigMap", "a", "o", "u0", vec![]);
        let d1 = obj("ConfigMap", "a", "d1", "u1", vec![oref("ConfigMap", "o", "u0", false)]);
        g.observe(None, &d1, &mut fx);
        g.observe(None, &owner, &mut fx);
        let mut fx = Effects::default();
        let d2 = obj("ConfigMap", "b", "d2", "u2", vec![oref("ConfigMap", "o", "u0", false)]);
        g.observe(None, &d2, &mut fx);
        assert_eq!(fx.keys, vec![GcKey::Delete("u2".into())]);
        assert_eq!(fx.invalid.len(), 1);
        assert_eq!(fx.invalid[0].dependent.namespace, "b");
        // A reference by the wrong name is rechecked without an event.
        let mut fx = Effects::default();
        let d3 = obj("ConfigMap", "a", "d3", "u3", vec![oref("ConfigMap", "other", "u0", false)]);
        g.observe(None, &d3, &mut fx);
        assert_eq!(fx.keys, vec![GcKey::Delete("u3".into())]);
        assert!(fx.invalid.is_empty());
    }

    #[test]
    fn a_virtual_owner_seen_elsewhere_rechecks_its_dependents() {
        let mut g = Graph::default();
        let mut fx = Effects::default();
        let d = obj("ConfigMap", "b", "d", "u1", vec![oref("ConfigMap", "o", "u0", false)]);
        g.observe(None, &d, &mut fx);
        let mut fx = Effects::default();
        g.observe(None, &obj("ConfigMap", "a", "o", "u0", vec![]), &mut fx);
        assert_eq!(fx.keys, vec![GcKey::Delete("u1".into())]);
        assert_eq!(fx.invalid.len(), 1);
    }

    #[test]
    fn references_diff() {
        let a = oref("ConfigMap", "a", "ua", true);
        let b = oref("ConfigMap", "b", "ub", false);
        let c = oref("ConfigMap", "c", "uc", false);
        let mut a2 = a.clone();
        a2.block_owner_deletion = false;
        let (added, removed, changed) = diff(&[a.clone(), b.clone()], &[a2.clone(), c.clone()]);
        assert_eq!(added, vec![c]);
        assert_eq!(removed, vec![b]);
        assert_eq!(changed, vec![(a, a2)]);
    }

    #[test]
    fn self_references_do_not_loop() {
        let mut g = Graph::default();
        let mut fx = Effects::default();
        let me = obj("ConfigMap", "ns", "me", "u1", vec![oref("ConfigMap", "me", "u1", false)]);
        g.observe(None, &me, &mut fx);
        assert!(fx.unresolved.is_empty() && fx.keys.is_empty());
        g.observe_deleted(&me, &mut fx);
        assert!(fx.keys.is_empty());
        assert!(g.is_empty());
    }
}
