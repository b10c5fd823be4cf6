//! apps/v1 statefulsets: upstream defaults (OrderedReady, RollingUpdate partition 0, Retain
//! claim retention, replicas 1, revisionHistoryLimit 10), the spec fields that may change on
//! update, status and scale subresources, the READY column.

use serde_json::{json, Value};

use super::{common, info, persistentvolumeclaims, podspec, workload};
use crate::api::status::FieldError;
use crate::registry::scale::ScalePaths;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct StatefulSets;

// ValidateStatefulSetName: a DNS label, as pod names and hostnames derive from it.
static INFO: ResourceInfo = info("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true)
    .with_short_names(&["sts"])
    .with_categories(&["all"])
    .with_subresources(&["status", "scale"])
    .with_name_rule(crate::validation::NameRule::Label);

/// Spec fields an update may change (ValidateStatefulSetUpdate).
const MUTABLE: &[&str] = &["replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds"];

impl Strategy for StatefulSets {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        let spec = &mut o["spec"];
        if !spec.is_object() {
            return;
        }
        if spec["podManagementPolicy"].as_str().unwrap_or("").is_empty() {
            spec["podManagementPolicy"] = json!("OrderedReady");
        }
        common::default_field(spec, "updateStrategy", json!({}));
        let us = &mut spec["updateStrategy"];
        if us["type"].as_str().unwrap_or("").is_empty() {
            us["type"] = json!("RollingUpdate");
            common::default_field(us, "rollingUpdate", json!({}));
        }
        if us["type"] == "RollingUpdate" && us["rollingUpdate"].is_object() {
            common::default_field(&mut us["rollingUpdate"], "partition", json!(0));
        }
        common::default_field(spec, "persistentVolumeClaimRetentionPolicy", json!({}));
        for f in ["whenDeleted", "whenScaled"] {
            if spec["persistentVolumeClaimRetentionPolicy"][f].as_str().unwrap_or("").is_empty() {
                spec["persistentVolumeClaimRetentionPolicy"][f] = json!("Retain");
            }
        }
        common::default_field(spec, "replicas", json!(1));
        common::default_field(spec, "revisionHistoryLimit", json!(10));
        podspec::default_pod_template(&mut spec["template"]);
        let templates = spec.get_mut("volumeClaimTemplates").and_then(|t| t.as_array_mut());
        for pvc in templates.into_iter().flatten().filter(|p| p.is_object()) {
            common::default_field(pvc, "apiVersion", json!("v1"));
            common::default_field(pvc, "kind", json!("PersistentVolumeClaim"));
            podspec::defaults::default_embedded_metadata(pvc);
            persistentvolumeclaims::default_claim(pvc);
        }
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({"replicas": 0, "availableReplicas": 0});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        // ValidateStatefulSetSpec, in its order.
        let spec = &o["spec"];
        match spec["podManagementPolicy"].as_str().unwrap_or("") {
            "OrderedReady" | "Parallel" => {}
            "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
            p => errs.push(FieldError::invalid("spec.podManagementPolicy", p, "must be 'OrderedReady' or 'Parallel'")),
        }
        let us = &spec["updateStrategy"];
        match us["type"].as_str().unwrap_or("") {
            "RollingUpdate" => {
                let ru = &us["rollingUpdate"];
                common::non_negative(&ru["partition"], "spec.updateStrategy.rollingUpdate.partition", errs);
                if !ru["maxUnavailable"].is_null() {
                    let (mu, p) = (&ru["maxUnavailable"], "spec.updateStrategy.rollingUpdate.maxUnavailable");
                    workload::validate_int_or_percent(mu, p, false, errs);
                    if workload::int_or_percent_value(mu) == 0 {
                        errs.push(FieldError::invalid_rendered(p, workload::go_int_or_string(mu), "cannot be 0"));
                    }
                    workload::not_more_than_100_percent(mu, p, errs);
                }
            }
            "OnDelete" => {
                if !us["rollingUpdate"].is_null() {
                    errs.push(FieldError::invalid("spec.updateStrategy.rollingUpdate", us["rollingUpdate"].clone(), "only allowed for updateStrategy 'RollingUpdate'"));
                }
            }
            "" => errs.push(FieldError::required("spec.updateStrategy", "")),
            _ => errs.push(FieldError::invalid("spec.updateStrategy", us.clone(), "must be 'RollingUpdate' or 'OnDelete'")),
        }
        for f in ["whenDeleted", "whenScaled"] {
            let p = format!("spec.persistentVolumeClaimRetentionPolicy.{f}");
            common::one_of(&spec["persistentVolumeClaimRetentionPolicy"][f], &p, &["Retain", "Delete"], errs);
        }
        common::non_negative(&spec["replicas"], "spec.replicas", errs);
        common::non_negative(&spec["minReadySeconds"], "spec.minReadySeconds", errs);
        common::non_negative(&spec["ordinals"]["start"], "spec.ordinals.start", errs);
        workload::required_selector(&spec["selector"], "spec.selector", "statefulset", errs);
        match workload::Selector::of(&spec["selector"]) {
            None => errs.push(FieldError::invalid_rendered("spec.selector", crate::api::gofmt::label_selector(&spec["selector"]), "")),
            Some(sel) => {
                // ValidatePodTemplateSpecForStatefulSet checks labels and annotations only: the
                // pod spec's mounts refer to volumeClaimTemplates, which the pod validation
                // would not know (upstream leaves it as a TODO).
                let t = &spec["template"];
                if !sel.is_empty() && !sel.matches(&t["metadata"]["labels"]) {
                    errs.push(workload::labels_mismatch(t, "spec.template"));
                }
                podspec::validation::validate_labels(&t["metadata"]["labels"], "spec.template.labels", errs);
            }
        }
        let rp = &spec["template"]["spec"]["restartPolicy"];
        if rp.as_str() != Some("Always") {
            errs.push(FieldError::not_supported("spec.template.spec.restartPolicy", rp.clone(), &["Always"]));
        }
        if !spec["template"]["spec"]["activeDeadlineSeconds"].is_null() {
            errs.push(FieldError::forbidden("spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in StatefulSet is not Supported"));
        }
        for (i, pvc) in spec["volumeClaimTemplates"].as_array().into_iter().flatten().enumerate() {
            let name = pvc["metadata"]["name"].as_str().unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(format!("spec.volumeClaimTemplates[{i}].metadata.name"), "name or generateName is required"));
            }
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        let strip = |v: &Value| {
            let mut s = v["spec"].clone();
            if let Some(m) = s.as_object_mut() {
                for f in MUTABLE {
                    m.remove(*f);
                }
            }
            s
        };
        if strip(new) != strip(old) {
            errs.push(FieldError::forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn scale(&self) -> Option<ScalePaths> {
        Some(ScalePaths { map_selector: false })
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Ready", "string", 0, "Number of the pod with ready state"),
            Column::age(),
            Column::new("Containers", "string", 1, "Names of each container in the template."),
            Column::new("Images", "string", 1, "Images referenced by each container in the template."),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let (c, i) = common::containers_and_images(&o["spec"]["template"]);
        vec![
            json!(crate::meta::name(o)),
            json!(format!("{}/{}", common::int(&o["status"]["readyReplicas"]), common::int(&o["spec"]["replicas"]))),
            json!(crate::api::table::age(o)),
            json!(c),
            json!(i),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
    }

    #[test]
    fn defaults() {
        let mut o = sts();
        StatefulSets.default(&mut o);
        let s = &o["spec"];
        assert_eq!(s["podManagementPolicy"], "OrderedReady");
        assert_eq!(s["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
        assert_eq!(s["persistentVolumeClaimRetentionPolicy"], json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
        assert_eq!((s["replicas"].clone(), s["revisionHistoryLimit"].clone()), (json!(1), json!(10)));
        let pvc = &s["volumeClaimTemplates"][0];
        assert_eq!((pvc["kind"].clone(), pvc["spec"]["volumeMode"].clone(), pvc["status"]["phase"].clone()), (json!("PersistentVolumeClaim"), json!("Filesystem"), json!("Pending")));
        let mut errs = Vec::new();
        StatefulSets.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn only_some_spec_fields_change() {
        let mut old = sts();
        StatefulSets.default(&mut old);
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
        let mut errs = Vec::new();
        StatefulSets.validate_update(&new, &old, &mut errs);
        assert!(errs.is_empty());
        new["spec"]["serviceName"] = json!("other");
        StatefulSets.validate_update(&new, &old, &mut errs);
        assert_eq!(errs[0].field, "spec");
    }

    #[test]
    fn ready_cell() {
        let mut o = sts();
        StatefulSets.default(&mut o);
        o["status"] = json!({"readyReplicas": 1});
        let r = StatefulSets.row(&o);
        assert_eq!((r[1].clone(), r[3].clone(), r[4].clone()), (json!("1/1"), json!("nginx"), json!("nginx:1.25")));
    }
}
