//! The naming and establishing controllers (upstream's `pkg/controller/status` naming
//! controller and `pkg/controller/establish`): accept a CRD's names unless another CRD of the
//! same group (or a built-in resource of it) already uses them, record them in
//! `status.acceptedNames` with the `NamesAccepted` condition (`NoConflicts`, or
//! `PluralConflict`, `SingularConflict`, `ShortNamesConflict`, `KindConflict`,
//! `ListKindConflict` with `"<name>" is already in use`), and mark the CRD `Established` once
//! its names are accepted, after which it is served.
//!
//! Simplification: upstream's naming controller first sets Established to False with reason
//! `Installing` and the establishing controller then sets it True; here one status write does
//! both (there is no other API server to wait for).

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Value};

use super::model::{set_condition, Crd, Names, ESTABLISHED, NAMES_ACCEPTED};
use super::serving::Served;
use super::CRDS;
use crate::api::status::ApiError;
use crate::controllers::runtime::{Action, Controller, Ctx, ObjKey};
use crate::registry::store::Part;

/// Runs until the process ends. `served` is registered with a CRD before it is marked
/// Established, so a client that waited for the condition finds the resource served.
pub async fn run(ctx: Ctx, served: Arc<Served>) {
    let cache = ctx.cache(CRDS);
    Controller::new("crd-naming", ctx)
        .watches(CRDS, move |ch| {
            // A change of one CRD may free or take names of every other CRD of its group.
            let group = ch.latest().value()["spec"]["group"].as_str().unwrap_or("").to_string();
            let (items, _) = cache.snapshot();
            let mut keys: Vec<ObjKey> =
                items.iter().filter(|o| o.value()["spec"]["group"] == group.as_str()).map(|o| ObjKey::new("", o.name.clone())).collect();
            keys.push(ch.key());
            keys
        })
        .workers(1)
        .run(move |ctx, key| {
            let served = served.clone();
            async move { reconcile(&ctx, &served, &key.name).await }
        })
        .await
}

/// The names other CRDs of the group have (plurals, singulars, short names) and their kinds.
fn used_names(ctx: &Ctx, crd: &Crd) -> (HashSet<String>, HashSet<String>) {
    let (mut resources, mut kinds) = (HashSet::new(), HashSet::new());
    for o in ctx.list(CRDS, "") {
        let other = Crd::parse(&o.value());
        if other.group != crd.group || other.name == crd.name {
            continue;
        }
        let a = &other.accepted;
        resources.extend([a.plural.clone(), a.singular.clone()].into_iter().filter(|s| !s.is_empty()));
        resources.extend(a.short_names.iter().cloned());
        kinds.extend([a.kind.clone(), a.list_kind.clone()].into_iter().filter(|s| !s.is_empty()));
    }
    // Built-in resources of the group (only protected groups can have any).
    for s in ctx.store.registry.builtins() {
        let inf = s.info();
        if inf.group == crd.group {
            resources.insert(inf.plural.to_string());
            resources.insert(inf.singular.to_string());
            resources.extend(s.short_names());
            kinds.insert(inf.kind.to_string());
            kinds.insert(format!("{}List", inf.kind));
        }
    }
    (resources, kinds)
}

/// upstream `equalToAcceptedOrFresh`.
fn fresh(requested: &str, accepted: &str, used: &HashSet<String>) -> Result<(), String> {
    if requested == accepted || !used.contains(requested) {
        Ok(())
    } else {
        Err(format!("{requested:?} is already in use"))
    }
}

/// The accepted names and the NamesAccepted condition (status, reason, message).
pub fn accept(requested: &Names, accepted: &Names, used: &HashSet<String>, kinds: &HashSet<String>) -> (Names, (&'static str, &'static str, String)) {
    let mut out = accepted.clone();
    let mut cond: Option<(&'static str, String)> = None;
    let mut fail = |reason: &'static str, msg: String| cond = Some((reason, msg));
    match fresh(&requested.plural, &accepted.plural, used) {
        Ok(()) => out.plural = requested.plural.clone(),
        Err(e) => fail("PluralConflict", e),
    }
    match fresh(&requested.singular, &accepted.singular, used) {
        Ok(()) => out.singular = requested.singular.clone(),
        Err(e) => fail("SingularConflict", e),
    }
    if requested.short_names != accepted.short_names {
        let errs: Vec<String> = requested.short_names.iter().filter(|s| !accepted.short_names.contains(s)).filter_map(|s| fresh(s, "", used).err()).collect();
        match errs.len() {
            0 => out.short_names = requested.short_names.clone(),
            1 => fail("ShortNamesConflict", errs[0].clone()),
            _ => fail("ShortNamesConflict", format!("[{}]", errs.join(", "))),
        }
    }
    match fresh(&requested.kind, &accepted.kind, kinds) {
        Ok(()) => out.kind = requested.kind.clone(),
        Err(e) => fail("KindConflict", e),
    }
    match fresh(&requested.list_kind, &accepted.list_kind, kinds) {
        Ok(()) => out.list_kind = requested.list_kind.clone(),
        Err(e) => fail("ListKindConflict", e),
    }
    out.categories = requested.categories.clone();
    let cond = match cond {
        None => ("True", "NoConflicts", "no conflicts found".to_string()),
        Some((r, m)) => ("False", r, m),
    };
    (out, cond)
}

async fn reconcile(ctx: &Ctx, served: &Served, name: &str) -> Result<Action, ApiError> {
    let Some(v) = ctx.get(CRDS, "", name) else { return Ok(Action::Done) };
    if crate::meta::is_deleting(&v) {
        return Ok(Action::Done);
    }
    let (used, kinds) = used_names(ctx, &Crd::parse(&v));
    let want = status_for(&v, &used, &kinds);
    if want == v["status"] {
        return Ok(Action::Done);
    }
    let mut next = (*v).clone();
    next["status"] = want;
    if Crd::parse(&next).is_true(ESTABLISHED) && !Crd::parse(&v).is_true(ESTABLISHED) {
        // Serve first, then say so (the serving controller corrects this if the write fails).
        served.sync(&ctx.store, name, Some(&next));
    }
    let res = ctx
        .modify(CRDS, "", name, Part::Status, |o| {
            o["status"] = status_for(o, &used, &kinds);
            Ok(())
        })
        .await;
    match res {
        Ok(_) => Ok(Action::Done),
        Err(e) if e.code == 404 => Ok(Action::Done),
        Err(e) => Err(e),
    }
}

/// The status a CRD should have: accepted names and the NamesAccepted/Established conditions.
fn status_for(v: &Value, used: &HashSet<String>, kinds: &HashSet<String>) -> Value {
    let crd = Crd::parse(v);
    let (names, (status, reason, message)) = accept(&crd.names, &crd.accepted, used, kinds);
    let mut out = v.clone();
    if !out["status"].is_object() {
        out["status"] = json!({});
    }
    out["status"]["acceptedNames"] = names.to_json();
    set_condition(&mut out, NAMES_ACCEPTED, status, reason, &message);
    if !crd.is_true(ESTABLISHED) {
        if status == "True" {
            set_condition(&mut out, ESTABLISHED, "True", "InitialNamesAccepted", "the initial names have been accepted");
        } else {
            set_condition(&mut out, ESTABLISHED, "False", "NotAccepted", "not all names are accepted");
        }
    }
    out["status"].clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(plural: &str, singular: &str, kind: &str, short: &[&str]) -> Names {
        Names {
            plural: plural.into(),
            singular: singular.into(),
            kind: kind.into(),
            list_kind: format!("{kind}List"),
            short_names: short.iter().map(|s| s.to_string()).collect(),
            categories: vec!["all".into()],
        }
    }

    #[test]
    fn conflicts_with_upstream_reasons() {
        let used: HashSet<String> = ["gadgets", "gadget", "gd"].iter().map(|s| s.to_string()).collect();
        let kinds: HashSet<String> = ["Gadget", "GadgetList"].iter().map(|s| s.to_string()).collect();
        let (n, c) = accept(&names("widgets", "widget", "Widget", &["wd"]), &Names::default(), &used, &kinds);
        assert_eq!(c, ("True", "NoConflicts", "no conflicts found".to_string()));
        assert_eq!(n.plural, "widgets");
        assert_eq!(n.categories, ["all"]);
        let (n, c) = accept(&names("widgets", "gadget", "Widget", &["gd", "w"]), &Names::default(), &used, &kinds);
        assert_eq!(c.0, "False");
        assert_eq!(c.1, "ShortNamesConflict", "the last conflict found is reported");
        assert_eq!(c.2, "\"gd\" is already in use");
        assert_eq!(n.singular, "", "not accepted");
        assert_eq!(n.plural, "widgets");
        let (_, c) = accept(&names("widgets", "widget", "Gadget", &[]), &Names::default(), &used, &kinds);
        assert_eq!((c.1, c.2.as_str()), ("ListKindConflict", "\"GadgetList\" is already in use"));
        // Names already accepted stay accepted even if someone else has them now.
        let mine = names("widgets", "gadget", "Widget", &[]);
        let (_, c) = accept(&mine, &mine, &used, &kinds);
        assert_eq!(c.1, "NoConflicts");
    }

    #[test]
    fn established_once_names_are_accepted() {
        let v = json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"}},
            "status": {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]}});
        let st = status_for(&v, &HashSet::new(), &HashSet::new());
        assert_eq!(st["acceptedNames"]["kind"], "Widget");
        assert_eq!(st["storedVersions"], json!(["v1"]));
        let conds = st["conditions"].as_array().unwrap();
        assert_eq!(conds[0]["type"], "NamesAccepted");
        assert_eq!(
            (conds[1]["type"].as_str(), conds[1]["status"].as_str(), conds[1]["reason"].as_str()),
            (Some("Established"), Some("True"), Some("InitialNamesAccepted"))
        );
    }
}
