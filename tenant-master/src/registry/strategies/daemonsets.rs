//! apps/v1 daemonsets: RollingUpdate maxUnavailable 1 maxSurge 0, revisionHistoryLimit 10, the
//! `deprecated.daemonset.template.generation` annotation, immutable selector.

use serde_json::{json, Value};

use super::{common, info, podspec, workload};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct DaemonSets;

static INFO: ResourceInfo = info("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true).with_short_names(&["ds"]).with_categories(&["all"]).with_subresources(&["status"]);

/// Where apps/v1 keeps the internal `spec.templateGeneration`.
pub const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

fn template_generation(o: &Value) -> i64 {
    o["metadata"]["annotations"][TEMPLATE_GENERATION].as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn set_template_generation(o: &mut Value, g: i64) {
    o["metadata"]["annotations"][TEMPLATE_GENERATION] = json!(g.to_string());
}

impl Strategy for DaemonSets {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        let spec = &mut o["spec"];
        if !spec.is_object() {
            return;
        }
        common::default_field(spec, "updateStrategy", json!({}));
        let us = &mut spec["updateStrategy"];
        if us["type"].as_str().unwrap_or("").is_empty() {
            us["type"] = json!("RollingUpdate");
        }
        if us["type"] == "RollingUpdate" {
            common::default_field(us, "rollingUpdate", json!({}));
            common::default_field(&mut us["rollingUpdate"], "maxUnavailable", json!(1));
            common::default_field(&mut us["rollingUpdate"], "maxSurge", json!(0));
        }
        common::default_field(spec, "revisionHistoryLimit", json!(10));
        podspec::default_pod_template(&mut spec["template"]);
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0});
        let g = template_generation(o).max(1);
        set_template_generation(o, g);
    }
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let mut g = template_generation(old);
        if new["spec"]["template"] != old["spec"]["template"] {
            g += 1;
        }
        set_template_generation(new, g);
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        // ValidateDaemonSetSpec, in its order.
        let spec = &o["spec"];
        workload::validate_label_selector(&spec["selector"], "spec.selector", errs);
        let t = &spec["template"];
        if let Some(sel) = workload::Selector::of(&spec["selector"]) {
            if !sel.matches(&t["metadata"]["labels"]) {
                errs.push(workload::labels_mismatch(t, "spec.template"));
            }
        }
        let sel = &spec["selector"];
        if sel.is_object() && sel["matchLabels"].as_object().map(|m| m.len()).unwrap_or(0) + sel["matchExpressions"].as_array().map(|a| a.len()).unwrap_or(0) == 0 {
            errs.push(FieldError::invalid_rendered("spec.selector", crate::api::gofmt::label_selector(sel), "empty selector is invalid for daemonset"));
        }
        podspec::validate_template(t, "spec.template", errs);
        let rp = &t["spec"]["restartPolicy"];
        if rp.as_str() != Some("Always") {
            errs.push(FieldError::not_supported("spec.template.spec.restartPolicy", rp.clone(), &["Always"]));
        }
        if !t["spec"]["activeDeadlineSeconds"].is_null() {
            errs.push(FieldError::forbidden("spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in DaemonSet is not Supported"));
        }
        common::non_negative(&spec["minReadySeconds"], "spec.minReadySeconds", errs);
        let us = &spec["updateStrategy"];
        match us["type"].as_str().unwrap_or("") {
            "OnDelete" => {}
            "RollingUpdate" => {
                let ru = &us["rollingUpdate"];
                if ru.is_null() {
                    errs.push(FieldError::required("spec.updateStrategy.rollingUpdate", ""));
                } else {
                    // ValidateRollingUpdateDaemonSet: exactly one of the two is non-zero.
                    let (mu, ms) = (&ru["maxUnavailable"], &ru["maxSurge"]);
                    let (pu, ps) = ("spec.updateStrategy.rollingUpdate.maxUnavailable", "spec.updateStrategy.rollingUpdate.maxSurge");
                    workload::validate_int_or_percent(mu, pu, false, errs);
                    workload::validate_int_or_percent(ms, ps, false, errs);
                    workload::not_more_than_100_percent(mu, pu, errs);
                    workload::not_more_than_100_percent(ms, ps, errs);
                    match (workload::int_or_percent_value(mu) != 0, workload::int_or_percent_value(ms) != 0) {
                        (true, true) => errs.push(FieldError::invalid_rendered(ps, workload::go_int_or_string(ms), "may not be set when maxUnavailable is non-zero")),
                        (false, false) => errs.push(FieldError::required(pu, "cannot be 0 when maxSurge is 0")),
                        _ => {}
                    }
                }
            }
            _ => errs.push(FieldError::not_supported("spec.updateStrategy", us.clone(), &["RollingUpdate", "OnDelete"])),
        }
        common::non_negative(&spec["revisionHistoryLimit"], "spec.revisionHistoryLimit", errs);
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        workload::immutable_selector(&new["spec"]["selector"], &old["spec"]["selector"], "spec.selector", errs);
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Desired", "integer", 0, "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod)."),
            Column::new("Current", "integer", 0, "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
            Column::new("Ready", "integer", 0, "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
            Column::new("Up-to-date", "integer", 0, "The total number of nodes that are running updated daemon pod"),
            Column::new("Available", "integer", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
            Column::new("Node Selector", "string", 0, "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node."),
            Column::age(),
            Column::new("Containers", "string", 1, "Names of each container in the template."),
            Column::new("Images", "string", 1, "Images referenced by each container in the template."),
            Column::new("Selector", "string", 1, "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels."),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let st = &o["status"];
        let (c, i) = common::containers_and_images(&o["spec"]["template"]);
        vec![
            json!(crate::meta::name(o)),
            json!(common::int(&st["desiredNumberScheduled"])),
            json!(common::int(&st["currentNumberScheduled"])),
            json!(common::int(&st["numberReady"])),
            json!(common::int(&st["updatedNumberScheduled"])),
            json!(common::int(&st["numberAvailable"])),
            json!(crate::api::table::labels_cell(&o["spec"]["template"]["spec"]["nodeSelector"])),
            json!(crate::api::table::age(o)),
            json!(c),
            json!(i),
            json!(crate::api::table::selector_cell(&o["spec"]["selector"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds() -> Value {
        json!({"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"nodeSelector": {"os": "linux"}, "containers": [{"name": "a", "image": "agent:1"}]}}}})
    }

    #[test]
    fn defaults_and_template_generation() {
        let mut o = ds();
        DaemonSets.default(&mut o);
        DaemonSets.prepare_for_create(&mut o);
        assert_eq!(o["spec"]["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}));
        assert_eq!(o["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(o["metadata"]["annotations"][TEMPLATE_GENERATION], "1");
        let mut errs = Vec::new();
        DaemonSets.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let mut new = o.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2");
        DaemonSets.prepare_for_update(&mut new, &o);
        assert_eq!(new["metadata"]["annotations"][TEMPLATE_GENERATION], "2");
    }

    #[test]
    fn row_and_zero_surge_check() {
        let mut o = ds();
        DaemonSets.default(&mut o);
        o["status"] = json!({"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2});
        let r = DaemonSets.row(&o);
        assert_eq!(r[1..7].to_vec(), vec![json!(3), json!(3), json!(2), json!(3), json!(2), json!("os=linux")]);
        assert_eq!(r[10], json!("app=agent"));
        o["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = json!("0%");
        let mut errs = Vec::new();
        DaemonSets.validate(&o, &mut errs);
        assert_eq!(errs[0].field, "spec.updateStrategy.rollingUpdate.maxUnavailable");
    }
}
