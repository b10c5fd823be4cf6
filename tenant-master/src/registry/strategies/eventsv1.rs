//! events.k8s.io/v1 events: the required new-style fields and the unset deprecated ones,
//! immutability on update, the columns of core events and the field selectors upstream maps to
//! them (`regarding.*`, `reportingController`, ...).

use serde_json::{json, Value};

use super::{common, events, info};
use crate::api::status::FieldError;
use crate::api::table;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct EventsV1;

static INFO: ResourceInfo = info("events.k8s.io", "v1", "Event", "events", "event", true).with_short_names(&["ev"]);

const FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
];

/// Fields an update may not change, with the (internal) paths upstream reports them under.
const IMMUTABLE: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("reason", "reason"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("type", "type"),
    ("eventTime", "eventTime"),
    ("action", "action"),
    ("related", "related"),
    ("reportingController", "reportingController"),
    ("reportingInstance", "reportingInstance"),
];

fn str_len(o: &Value, f: &str) -> usize {
    o[f].as_str().map(|s| s.len()).unwrap_or(0)
}

impl Strategy for EventsV1 {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn allow_create_on_update(&self) -> bool {
        true
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        if !o["eventTime"].is_string() {
            errs.push(FieldError::required("eventTime", ""));
        }
        if !o["series"].is_null() {
            if o["series"]["count"].as_i64().unwrap_or(0) < 2 {
                errs.push(FieldError::invalid("series.count", "", "should be at least 2"));
            }
            if !o["series"]["lastObservedTime"].is_string() {
                errs.push(FieldError::required("series.lastObservedTime", ""));
            }
        }
        let t = o["type"].as_str().unwrap_or("");
        if t != "Normal" && t != "Warning" {
            errs.push(FieldError::invalid("type", "", format!("has invalid value: {t}")));
        }
        for f in ["deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount"] {
            if !o[f].is_null() && o[f] != json!(0) {
                errs.push(FieldError::invalid(f, "", "needs to be unset"));
            }
        }
        if str_len(&o["deprecatedSource"], "component") + str_len(&o["deprecatedSource"], "host") > 0 {
            errs.push(FieldError::invalid("deprecatedSource", "", "needs to be unset"));
        }
        let rc = o["reportingController"].as_str().unwrap_or("");
        if rc.is_empty() {
            errs.push(FieldError::required("reportingController", ""));
        }
        for e in crate::validation::qualified_name_errors(rc).into_iter().filter(|_| !rc.is_empty()) {
            errs.push(FieldError::invalid("reportingController", rc, e));
        }
        for (f, max) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
            if str_len(o, f) == 0 {
                errs.push(FieldError::required(f, ""));
            } else if str_len(o, f) > max {
                errs.push(FieldError::invalid(f, "", format!("can have at most {max} characters")));
            }
        }
        if str_len(o, "note") > 1024 {
            errs.push(FieldError::invalid("note", "", "can have at most 1024 characters"));
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        for (f, path) in IMMUTABLE {
            if new[*f] != old[*f] {
                errs.push(FieldError::invalid(*path, new[*f].clone(), "field is immutable"));
            }
        }
    }
    fn columns(&self) -> Vec<Column> {
        events::Events.columns()
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let first = if o["deprecatedFirstTimestamp"].is_string() { table::since(&o["deprecatedFirstTimestamp"]) } else { table::since(&o["eventTime"]) };
        let mut last = if o["deprecatedLastTimestamp"].is_string() { table::since(&o["deprecatedLastTimestamp"]) } else { first.clone() };
        let mut count = o["deprecatedCount"].as_i64().unwrap_or(0);
        if o["series"].is_object() {
            last = table::since(&o["series"]["lastObservedTime"]);
            count = o["series"]["count"].as_i64().unwrap_or(0);
        } else if count == 0 {
            count = 1;
        }
        let reg = &o["regarding"];
        let kind = reg["kind"].as_str().unwrap_or("").to_lowercase();
        let target = match reg["name"].as_str().filter(|n| !n.is_empty()) {
            Some(n) => format!("{kind}/{n}"),
            None => kind,
        };
        let non_empty = |a: &Value, b: &Value| a.as_str().filter(|s| !s.is_empty()).or(b.as_str()).unwrap_or("").to_string();
        let component = non_empty(&o["deprecatedSource"]["component"], &o["reportingController"]);
        let host = non_empty(&o["deprecatedSource"]["host"], &o["reportingInstance"]);
        let source = if host.is_empty() { component } else { format!("{component}, {host}") };
        vec![
            json!(last),
            json!(o["type"].as_str().unwrap_or("")),
            json!(o["reason"].as_str().unwrap_or("")),
            json!(target),
            json!(reg["fieldPath"].as_str().unwrap_or("")),
            json!(source),
            json!(o["note"].as_str().unwrap_or("").trim()),
            json!(first),
            json!(count),
            json!(crate::meta::name(o)),
        ]
    }
    fn field_names(&self) -> &'static [&'static str] {
        FIELDS
    }
    fn fields(&self, o: &Value) -> Vec<(&'static str, String)> {
        FIELDS.iter().map(|f| (*f, common::field_string(o, f))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> Value {
        json!({"metadata": {"name": "web.17a"}, "eventTime": "2024-01-01T00:00:00.000000Z", "type": "Normal", "reason": "Scheduled",
            "action": "Binding", "reportingController": "default-scheduler", "reportingInstance": "sched-1",
            "regarding": {"kind": "Pod", "name": "web", "namespace": "default"}, "note": "Successfully assigned default/web to node-1 "})
    }

    #[test]
    fn validation_and_row() {
        let o = ev();
        let mut errs = Vec::new();
        EventsV1.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let r = EventsV1.row(&o);
        assert_eq!(r[1..7].to_vec(), vec![json!("Normal"), json!("Scheduled"), json!("pod/web"), json!(""), json!("default-scheduler, sched-1"), json!("Successfully assigned default/web to node-1")]);
        assert_eq!((r[8].clone(), r[9].clone()), (json!(1), json!("web.17a")));
        assert_eq!(r.len(), EventsV1.columns().len());
        let mut bad = ev();
        bad["deprecatedCount"] = json!(3);
        bad["type"] = json!("Info");
        EventsV1.validate(&bad, &mut errs);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["type", "deprecatedCount"]);
    }

    #[test]
    fn regarding_is_immutable_and_selectable() {
        let old = ev();
        let mut new = ev();
        new["regarding"]["name"] = json!("other");
        let mut errs = Vec::new();
        EventsV1.validate_update(&new, &old, &mut errs);
        assert_eq!(errs[0].field, "involvedObject");
        assert!(EventsV1.fields(&old).contains(&("regarding.name", "web".to_string())));
    }
}
