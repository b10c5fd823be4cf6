//! autoscaling/v2 horizontalpodautoscalers: minReplicas 1, a CPU 80% metric when none is
//! given, scaling behaviour defaults, replica/metric/behaviour checks, the TARGETS column.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct HorizontalPodAutoscalers;

static INFO: ResourceInfo = info("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler", true).with_short_names(&["hpa"]).with_categories(&["all"]).with_subresources(&["status"]);

const METRIC_TYPES: &[&str] = &["ContainerResource", "External", "Object", "Pods", "Resource"];

/// The member of a MetricSpec/MetricStatus that its type names.
fn member(t: &str) -> &'static str {
    match t {
        "Resource" => "resource",
        "Pods" => "pods",
        "Object" => "object",
        "External" => "external",
        _ => "containerResource",
    }
}

/// copyHPAScalingRules over the upstream default rules.
fn scaling_rules(given: &Value, up: bool) -> Value {
    let mut rules = if up {
        json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]})
    } else {
        json!({"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]})
    };
    for f in ["selectPolicy", "stabilizationWindowSeconds", "policies", "tolerance"] {
        if !given[f].is_null() {
            rules[f] = given[f].clone();
        }
    }
    rules
}

/// formatHPAMetrics: `cpu: 50%/80%`, `<unknown>` for what status does not report yet.
pub fn targets_cell(o: &Value) -> String {
    let specs = o["spec"]["metrics"].as_array().cloned().unwrap_or_default();
    if specs.is_empty() {
        return "<none>".into();
    }
    let statuses = o["status"]["currentMetrics"].as_array().cloned().unwrap_or_default();
    let q = |v: &Value| if v.is_null() { "<unknown>".to_string() } else { common::intstr(v) };
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let t = spec["type"].as_str().unwrap_or("");
            if !METRIC_TYPES.contains(&t) {
                return "<unknown type>".to_string();
            }
            let m = member(t);
            let (target, current) = (&spec[m]["target"], &statuses.get(i).map(|s| s[m]["current"].clone()).unwrap_or_default());
            match t {
                "Pods" => format!("{}/{}", q(&current["averageValue"]), common::intstr(&target["averageValue"])),
                "Object" | "External" if !target["averageValue"].is_null() => {
                    format!("{}/{} (avg)", q(&current["averageValue"]), common::intstr(&target["averageValue"]))
                }
                "Object" | "External" => format!("{}/{}", q(&current["value"]), common::intstr(&target["value"])),
                _ => {
                    let name = spec[m]["name"].as_str().unwrap_or("");
                    if !target["averageValue"].is_null() {
                        format!("{name}: {}/{}", q(&current["averageValue"]), common::intstr(&target["averageValue"]))
                    } else {
                        let pct = |v: &Value| v.as_i64().map(|n| format!("{n}%"));
                        format!("{name}: {}/{}", pct(&current["averageUtilization"]).unwrap_or("<unknown>".into()), pct(&target["averageUtilization"]).unwrap_or("<auto>".into()))
                    }
                }
            }
        })
        .collect();
    if list.len() > 2 {
        format!("{} + {} more...", list[..2].join(", "), list.len() - 2)
    } else {
        list.join(", ")
    }
}

fn validate_rules(r: &Value, p: &str, errs: &mut Vec<FieldError>) {
    if let Some(w) = r["stabilizationWindowSeconds"].as_i64() {
        if w < 0 {
            errs.push(FieldError::invalid(format!("{p}.stabilizationWindowSeconds"), w, "must be greater than or equal to zero"));
        } else if w > 3600 {
            errs.push(FieldError::invalid(format!("{p}.stabilizationWindowSeconds"), w, "must be less than or equal to 3600"));
        }
    }
    common::one_of(&r["selectPolicy"], &format!("{p}.selectPolicy"), &["Disabled", "Max", "Min"], errs);
    let policies = r["policies"].as_array().cloned().unwrap_or_default();
    if policies.is_empty() {
        errs.push(FieldError::required(format!("{p}.policies"), "must specify at least one Policy"));
    }
    for (i, pol) in policies.iter().enumerate() {
        let pp = format!("{p}.policies[{i}]");
        if !matches!(pol["type"].as_str(), Some("Pods") | Some("Percent")) {
            errs.push(FieldError::not_supported(format!("{pp}.type"), pol["type"].clone(), &["Percent", "Pods"]));
        }
        if pol["value"].as_i64().unwrap_or(0) <= 0 {
            errs.push(FieldError::invalid(format!("{pp}.value"), pol["value"].clone(), "must be greater than zero"));
        }
        match pol["periodSeconds"].as_i64().unwrap_or(0) {
            s if s <= 0 => errs.push(FieldError::invalid(format!("{pp}.periodSeconds"), s, "must be greater than zero")),
            s if s > 1800 => errs.push(FieldError::invalid(format!("{pp}.periodSeconds"), s, "must be less than or equal to 1800")),
            _ => {}
        }
    }
}

impl Strategy for HorizontalPodAutoscalers {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        let spec = &mut o["spec"];
        if !spec.is_object() {
            return;
        }
        common::default_field(spec, "minReplicas", json!(1));
        if spec["metrics"].as_array().map(|m| m.is_empty()).unwrap_or(true) {
            spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]);
        }
        if spec["behavior"].is_object() {
            let b = spec["behavior"].clone();
            spec["behavior"]["scaleUp"] = scaling_rules(&b["scaleUp"], true);
            spec["behavior"]["scaleDown"] = scaling_rules(&b["scaleDown"], false);
        }
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({"currentMetrics": null, "desiredReplicas": 0});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let spec = &o["spec"];
        let min = spec["minReplicas"].as_i64();
        if let Some(m) = min.filter(|m| *m < 1) {
            errs.push(FieldError::invalid("spec.minReplicas", m, "must be greater than or equal to 1"));
        }
        let max = spec["maxReplicas"].as_i64().unwrap_or(0);
        if max < 1 {
            errs.push(FieldError::invalid("spec.maxReplicas", max, "must be greater than 0"));
        }
        if min.map(|m| m > max).unwrap_or(false) {
            errs.push(FieldError::invalid("spec.maxReplicas", max, "must be greater than or equal to `minReplicas`"));
        }
        for f in ["kind", "name"] {
            match spec["scaleTargetRef"][f].as_str().unwrap_or("") {
                "" => errs.push(FieldError::required(format!("spec.scaleTargetRef.{f}"), "")),
                v => {
                    for e in crate::validation::name_errors(crate::validation::NameRule::PathSegment, v) {
                        errs.push(FieldError::invalid(format!("spec.scaleTargetRef.{f}"), v, e));
                    }
                }
            }
        }
        for (i, m) in spec["metrics"].as_array().into_iter().flatten().enumerate() {
            let p = format!("spec.metrics[{i}]");
            match m["type"].as_str().unwrap_or("") {
                "" => errs.push(FieldError::required(format!("{p}.type"), "must specify a metric source type")),
                t if !METRIC_TYPES.contains(&t) => errs.push(FieldError::not_supported(format!("{p}.type"), t, METRIC_TYPES)),
                t => {
                    let mp = format!("{p}.{}", member(t));
                    if !m[member(t)].is_object() {
                        errs.push(FieldError::required(mp, format!("must populate information for the given metric source (only allowed when type is {t})")));
                        continue;
                    }
                    let tt = &m[member(t)]["target"]["type"];
                    if tt.is_null() {
                        errs.push(FieldError::required(format!("{mp}.target.type"), "must specify a metric target type"));
                    }
                    common::one_of(tt, &format!("{mp}.target.type"), &["AverageValue", "Utilization", "Value"], errs);
                }
            }
        }
        for dir in ["scaleUp", "scaleDown"] {
            if spec["behavior"][dir].is_object() {
                validate_rules(&spec["behavior"][dir], &format!("spec.behavior.{dir}"), errs);
            }
        }
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Reference", "string", 0, "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count."),
            Column::new("Targets", "string", 0, "metrics contains the specifications for which to use to calculate the desired replica count."),
            Column::new("MinPods", "string", 0, "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down."),
            Column::new("MaxPods", "string", 0, "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up."),
            Column::new("Replicas", "string", 0, "currentReplicas is current number of replicas of pods managed by this autoscaler."),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let (spec, r) = (&o["spec"], &o["spec"]["scaleTargetRef"]);
        let min = spec["minReplicas"].as_i64().map(|m| m.to_string()).unwrap_or_else(|| "<unset>".into());
        vec![
            json!(crate::meta::name(o)),
            json!(format!("{}/{}", r["kind"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or(""))),
            json!(targets_cell(o)),
            json!(min),
            json!(common::int(&spec["maxReplicas"])),
            json!(common::int(&o["status"]["currentReplicas"])),
            json!(crate::api::table::age(o)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}})
    }

    #[test]
    fn defaults() {
        let mut o = hpa();
        HorizontalPodAutoscalers.default(&mut o);
        let s = &o["spec"];
        assert_eq!(s["minReplicas"], 1);
        assert_eq!(s["metrics"][0]["resource"]["target"], json!({"type": "Utilization", "averageUtilization": 80}));
        assert_eq!(s["behavior"]["scaleUp"]["policies"].as_array().map(|p| p.len()), Some(2));
        assert_eq!(s["behavior"]["scaleDown"], json!({"selectPolicy": "Max", "stabilizationWindowSeconds": 60, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}));
        let mut errs = Vec::new();
        HorizontalPodAutoscalers.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn row_and_targets() {
        let mut o = hpa();
        HorizontalPodAutoscalers.default(&mut o);
        let r = HorizontalPodAutoscalers.row(&o);
        assert_eq!(r[1..6].to_vec(), vec![json!("Deployment/web"), json!("cpu: <unknown>/80%"), json!("1"), json!(5), json!(0)]);
        o["spec"]["metrics"] = json!([
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
            {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "10"}}}]);
        o["status"] = json!({"currentMetrics": [{"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "50Mi"}}}]});
        assert_eq!(targets_cell(&o), "memory: 50Mi/100Mi, <unknown>/1k + 1 more...");
    }
}
