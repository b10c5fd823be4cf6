//! batch/v1 jobs: SetDefaults_Job, the generated selector and `controller-uid`/`job-name`
//! labels on create, spec validation, the immutable template (scheduling directives excepted
//! while suspended and not started), the STATUS/COMPLETIONS/DURATION columns.

use serde_json::{json, Value};

use super::{common, info, podspec, workload};
use crate::api::selectors::LabelSelector;
use crate::api::status::{ApiResult, FieldError};
use crate::registry::store::Store;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct Jobs;

static INFO: ResourceInfo = info("batch", "v1", "Job", "jobs", "job", true).with_categories(&["all"]).with_subresources(&["status"]);

pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_CONTROLLER_UID: &str = "controller-uid";
pub const LEGACY_JOB_NAME: &str = "job-name";

/// Spec checks shared with CronJob's jobTemplate (ValidateJobSpec and the template rules).
pub fn validate_job_spec(spec: &Value, p: &str, errs: &mut Vec<FieldError>) {
    for f in ["parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"] {
        common::non_negative(&spec[f], &format!("{p}.{f}"), errs);
    }
    common::one_of(&spec["completionMode"], &format!("{p}.completionMode"), &["NonIndexed", "Indexed"], errs);
    let indexed = spec["completionMode"] == "Indexed";
    if indexed && spec["completions"].is_null() {
        errs.push(FieldError::required(format!("{p}.completions"), "when completion mode is Indexed"));
    }
    if let Some(n) = spec["parallelism"].as_i64().filter(|n| indexed && *n > 100_000) {
        errs.push(FieldError::invalid(format!("{p}.parallelism"), n, "must be less than or equal to 100000 when completion mode is Indexed"));
    }
    let replacement: &[&str] = if spec["podFailurePolicy"].is_null() { &["Failed", "TerminatingOrFailed"] } else { &["Failed"] };
    common::one_of(&spec["podReplacementPolicy"], &format!("{p}.podReplacementPolicy"), replacement, errs);
    podspec::validate_template(&spec["template"], &format!("{p}.template"), errs);
    let rp = &spec["template"]["spec"]["restartPolicy"];
    match rp.as_str().unwrap_or("") {
        "OnFailure" | "Never" => {}
        "Always" | "" => errs.push(FieldError::required(format!("{p}.template.spec.restartPolicy"), "valid values: \"OnFailure\", \"Never\"")),
        _ => errs.push(FieldError::not_supported(format!("{p}.template.spec.restartPolicy"), rp.clone(), &["OnFailure", "Never"])),
    }
}

/// generateSelector: the job-name and controller-uid labels on the template, the selector on
/// the uid; labels the user set are left for validation to judge.
fn generate_selector(o: &mut Value) {
    let (name, uid) = (crate::meta::name(o).to_string(), crate::meta::uid(o).to_string());
    let labels = &mut o["spec"]["template"]["metadata"]["labels"];
    for (k, v) in [(LEGACY_JOB_NAME, &name), (JOB_NAME, &name), (LEGACY_CONTROLLER_UID, &uid), (CONTROLLER_UID, &uid)] {
        if labels.get(k).is_none() {
            labels[k] = json!(v);
        }
    }
    let ml = &mut o["spec"]["selector"]["matchLabels"];
    ml[CONTROLLER_UID] = ml.get(CONTROLLER_UID).cloned().unwrap_or(json!(uid));
}

/// Job labels default to the template's (SetDefaults_Job).
fn default_labels(o: &mut Value) {
    let tl = &o["spec"]["template"]["metadata"]["labels"];
    if tl.is_object() && o["metadata"]["labels"].as_object().map(|m| m.is_empty()).unwrap_or(true) {
        o["metadata"]["labels"] = tl.clone();
    }
}

/// With generateName the name is only known in admit_create; until then the job-name labels hold
/// "" (or, after a name collision, the previous attempt's name).
fn pending_name(o: &Value, v: &Value) -> bool {
    let g = o["metadata"]["generateName"].as_str().unwrap_or("");
    let s = v.as_str().unwrap_or("-");
    !g.is_empty() && (s.is_empty() || (s.starts_with(g) && s.len() == crate::meta::name(o).len()))
}

/// Puts the now known generated name into the job-name labels (template and job).
fn fill_generated_name(o: &mut Value) {
    let name = json!(crate::meta::name(o));
    for labels in ["/spec/template/metadata/labels", "/metadata/labels"] {
        for k in [LEGACY_JOB_NAME, JOB_NAME] {
            let ptr = format!("{labels}/{}", k.replace('/', "~1"));
            if o.pointer(&ptr).map(|v| pending_name(o, v)).unwrap_or(false) {
                if let Some(v) = o.pointer_mut(&ptr) {
                    *v = name.clone();
                }
            }
        }
    }
}

fn has_label(labels: &Value, key: &str, want: &str, errs: &mut Vec<FieldError>) {
    let p = format!("spec.template.metadata.labels[{key}]");
    match labels[key].as_str() {
        None => errs.push(FieldError::required(p, want)),
        Some(v) if v != want => errs.push(FieldError::invalid_rendered(p, crate::api::gofmt::string_map(labels), format!("must be '{want}'"))),
        _ => {}
    }
}

fn job_status(o: &Value) -> &'static str {
    let cond = |t| common::has_condition(o, t);
    match () {
        _ if cond("Complete") => "Complete",
        _ if cond("Failed") => "Failed",
        _ if crate::meta::is_deleting(o) => "Terminating",
        _ if cond("Suspended") => "Suspended",
        _ if cond("FailureTarget") => "FailureTarget",
        _ => "Running",
    }
}

/// The template without what a suspended, never started job may change.
fn scheduling_masked(t: &Value) -> Value {
    let mut t = t.clone();
    for f in ["metadata.labels", "metadata.annotations", "spec.nodeSelector", "spec.tolerations", "spec.schedulingGates", "spec.affinity.nodeAffinity"] {
        common::remove_path(&mut t, f);
    }
    if t["spec"]["affinity"].as_object().map(|a| a.is_empty()).unwrap_or(false) {
        common::remove_path(&mut t, "spec.affinity");
    }
    t
}

impl Strategy for Jobs {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        let spec = &mut o["spec"];
        if !spec.is_object() {
            return;
        }
        if spec["completions"].is_null() && spec["parallelism"].is_null() {
            spec["completions"] = json!(1);
        }
        common::default_field(spec, "parallelism", json!(1));
        let backoff = if spec["backoffLimitPerIndex"].is_null() { 6 } else { i32::MAX as i64 };
        common::default_field(spec, "backoffLimit", json!(backoff));
        common::default_field(spec, "completionMode", json!("NonIndexed"));
        common::default_field(spec, "suspend", json!(false));
        let rules = spec.pointer_mut("/podFailurePolicy/rules").and_then(|r| r.as_array_mut());
        let patterns = rules.into_iter().flatten().flat_map(|r| r.get_mut("onPodConditions").and_then(|c| c.as_array_mut()).into_iter().flatten());
        for pat in patterns.filter(|p| p["status"].as_str().unwrap_or("").is_empty()) {
            pat["status"] = json!("True");
        }
        let replacement = if spec["podFailurePolicy"].is_null() { "TerminatingOrFailed" } else { "Failed" };
        common::default_field(spec, "podReplacementPolicy", json!(replacement));
        common::default_field(spec, "manualSelector", json!(false));
        podspec::default_pod_template(&mut spec["template"]);
        default_labels(o);
    }
    fn prepare_for_create(&self, o: &mut Value) {
        if o["spec"].is_object() && o["spec"]["manualSelector"] != json!(true) {
            generate_selector(o);
        }
        o["status"] = json!({});
        default_labels(o);
    }
    fn admit_create(&self, _store: &Store, o: &mut Value) -> ApiResult<()> {
        fill_generated_name(o);
        Ok(())
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let spec = &o["spec"];
        validate_job_spec(spec, "spec", errs);
        let labels = &spec["template"]["metadata"]["labels"];
        match &spec["selector"] {
            Value::Null => errs.push(FieldError::required("spec.selector", "")),
            sel => match LabelSelector::from_object(sel) {
                None => errs.push(FieldError::invalid("spec.selector", sel.clone(), "invalid label selector")),
                Some(s) if !s.matches_json(labels) => errs.push(workload::labels_mismatch(&spec["template"], "spec.template")),
                _ => {}
            },
        }
        if spec["manualSelector"] == json!(true) || !labels.is_object() {
            return;
        }
        let (name, uid) = (crate::meta::name(o), crate::meta::uid(o));
        for (k, v, required) in [(LEGACY_CONTROLLER_UID, uid, true), (LEGACY_JOB_NAME, name, true), (CONTROLLER_UID, uid, false), (JOB_NAME, name, false)] {
            let pending = v == name && pending_name(o, &labels[k]);
            if (required || !labels[k].is_null()) && !pending {
                has_label(labels, k, v, errs);
            }
        }
        let expected = json!({LEGACY_CONTROLLER_UID: uid, CONTROLLER_UID: uid});
        if LabelSelector::from_object(&spec["selector"]).map(|s| !s.matches_json(&expected)).unwrap_or(false) {
            errs.push(FieldError::invalid_rendered("spec.selector", crate::api::gofmt::label_selector(&spec["selector"]), "`selector` not auto-generated"));
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        let (n, o) = (&new["spec"], &old["spec"]);
        // Indexed jobs may change completions together with parallelism (elastic Indexed Jobs).
        if n["completions"] != o["completions"] && n["completionMode"] != "Indexed" {
            common::immutable(new, old, "spec.completions", errs);
        } else if n["completions"] != o["completions"] && n["completions"].is_number() && n["completions"] != n["parallelism"] {
            errs.push(FieldError::invalid("spec.completions", n["completions"].clone(), "can only be modified in tandem with spec.parallelism"));
        }
        workload::immutable_selector(&n["selector"], &o["selector"], "spec.selector", errs);
        let suspended_unstarted = o["suspend"] == json!(true) && old["status"]["startTime"].is_null();
        let (nt, ot) = if suspended_unstarted { (scheduling_masked(&n["template"]), scheduling_masked(&o["template"])) } else { (n["template"].clone(), o["template"].clone()) };
        if nt != ot {
            errs.push(FieldError::invalid("spec.template", n["template"].clone(), "field is immutable"));
        }
        for f in ["completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy", "podReplacementPolicy"] {
            common::immutable(new, old, &format!("spec.{f}"), errs);
        }
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Status", "string", 0, "Status of the job."),
            Column::new("Completions", "string", 0, "The number of pods which reached phase Succeeded."),
            Column::new("Duration", "string", 0, "Time required to complete the job."),
            Column::age(),
            Column::new("Containers", "string", 1, "Names of each container in the template."),
            Column::new("Images", "string", 1, "Images referenced by each container in the template."),
            Column::new("Selector", "string", 1, "A label query over pods that should match the pod count. Normally, the system sets this field for you."),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let (spec, st) = (&o["spec"], &o["status"]);
        let succeeded = common::int(&st["succeeded"]);
        let completions = match (spec["completions"].as_i64(), spec["parallelism"].as_i64().unwrap_or(0)) {
            (Some(c), _) => format!("{succeeded}/{c}"),
            (None, p) if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        };
        let duration = match (&st["startTime"], &st["completionTime"]) {
            (Value::Null, _) => String::new(),
            (start, Value::Null) => crate::api::table::since(start),
            (start, end) => crate::api::table::duration_between(start, end).unwrap_or_default(),
        };
        let (c, i) = common::containers_and_images(&spec["template"]);
        vec![
            json!(crate::meta::name(o)),
            json!(job_status(o)),
            json!(completions),
            json!(duration),
            json!(crate::api::table::age(o)),
            json!(c),
            json!(i),
            json!(crate::api::table::selector_cell(&spec["selector"])),
        ]
    }
    fn field_names(&self) -> &'static [&'static str] {
        &["status.successful"]
    }
    fn fields(&self, o: &Value) -> Vec<(&'static str, String)> {
        vec![("status.successful", common::int(&o["status"]["succeeded"]).to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> Value {
        let c = json!([{"name": "pi", "image": "perl:5"}]);
        let mut o = json!({"metadata": {"name": "pi", "uid": "u1"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": c}}}});
        Jobs.default(&mut o);
        Jobs.prepare_for_create(&mut o);
        o
    }

    #[test]
    fn defaults_and_generated_selector() {
        let o = created();
        let s = &o["spec"];
        let got: Vec<&Value> = ["completions", "parallelism", "backoffLimit", "completionMode", "suspend", "manualSelector", "podReplacementPolicy"].map(|f| &s[f]).to_vec();
        assert_eq!(got, [json!(1), json!(1), json!(6), json!("NonIndexed"), json!(false), json!(false), json!("TerminatingOrFailed")].iter().collect::<Vec<_>>());
        assert_eq!(s["selector"], json!({"matchLabels": {CONTROLLER_UID: "u1"}}));
        let want = json!({CONTROLLER_UID: "u1", JOB_NAME: "pi", LEGACY_CONTROLLER_UID: "u1", LEGACY_JOB_NAME: "pi"});
        assert_eq!(s["template"]["metadata"]["labels"], want);
        assert_eq!(o["metadata"]["labels"], want);
        let mut errs = Vec::new();
        Jobs.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn generated_names_reach_the_job_name_labels() {
        let mut o = created();
        o["metadata"] = json!({"generateName": "pi-", "uid": "u1"});
        o["spec"]["template"]["metadata"] = json!({});
        o["spec"]["selector"] = Value::Null;
        Jobs.prepare_for_create(&mut o);
        o["metadata"]["name"] = json!("pi-x7k2q");
        let mut errs = Vec::new();
        Jobs.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        fill_generated_name(&mut o);
        assert_eq!(o["metadata"]["labels"][JOB_NAME], "pi-x7k2q");
        assert_eq!(o["spec"]["template"]["metadata"]["labels"][LEGACY_JOB_NAME], "pi-x7k2q");
    }

    #[test]
    fn restart_policy_and_foreign_selector() {
        let mut o = created();
        o["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        o["spec"]["selector"] = json!({"matchLabels": {"job-name": "pi"}});
        let mut errs = Vec::new();
        Jobs.validate(&o, &mut errs);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.template.spec.restartPolicy", "spec.selector"]);
    }

    #[test]
    fn template_is_immutable_unless_suspended() {
        let old = created();
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        let mut errs = Vec::new();
        Jobs.validate_update(&new, &old, &mut errs);
        assert_eq!(errs[0].field, "spec.template");
        let mut old = old;
        old["spec"]["suspend"] = json!(true);
        errs.clear();
        Jobs.validate_update(&new, &old, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn status_completions_and_duration_cells() {
        let mut o = created();
        o["status"] = json!({"succeeded": 1, "startTime": "2024-01-01T00:00:00Z", "completionTime": "2024-01-01T00:00:42Z",
            "conditions": [{"type": "Complete", "status": "True"}]});
        let r = Jobs.row(&o);
        assert_eq!(r[1..4].to_vec(), vec![json!("Complete"), json!("1/1"), json!("42s")]);
        o["spec"]["completions"] = Value::Null;
        o["spec"]["parallelism"] = json!(3);
        o["status"] = json!({"conditions": [{"type": "Suspended", "status": "True"}]});
        let r = Jobs.row(&o);
        assert_eq!(r[1..4].to_vec(), vec![json!("Suspended"), json!("0/1 of 3"), json!("")]);
        assert_eq!(Jobs.fields(&o), vec![("status.successful", "0".to_string())]);
    }
}
