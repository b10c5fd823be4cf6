//! core/v1 events: the columns `kubectl get events` shows and the involvedObject field selectors
//! `kubectl describe` uses.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::table;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct Events;

static INFO: ResourceInfo = info("", "v1", "Event", "events", "event", true).with_short_names(&["ev"]);

const FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

impl Strategy for Events {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn allow_create_on_update(&self) -> bool {
        true
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Last Seen", "string", 0, "Time when last event was observed"),
            Column::new("Type", "string", 0, "Type of this event (Normal, Warning), new types could be added in the future."),
            Column::new("Reason", "string", 0, "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
            Column::new("Object", "string", 0, "The object that this event is about."),
            Column::new("Subobject", "string", 1, "The subobject that this event is about."),
            Column::new("Source", "string", 1, "The component reporting this event."),
            Column::new("Message", "string", 0, "A human-readable description of the status of this operation."),
            Column::new("First Seen", "string", 1, "The time at which the event was first recorded."),
            Column::new("Count", "string", 1, "The number of times this event has occurred."),
            Column { format: std::borrow::Cow::Borrowed("name"), ..Column::new("Name", "string", 1, "Name must be unique within a namespace.") },
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let first = if o["firstTimestamp"].is_string() { table::since(&o["firstTimestamp"]) } else { table::since(&o["eventTime"]) };
        let last = if o["lastTimestamp"].is_string() {
            table::since(&o["lastTimestamp"])
        } else if o["series"]["lastObservedTime"].is_string() {
            table::since(&o["series"]["lastObservedTime"])
        } else {
            first.clone()
        };
        let io = &o["involvedObject"];
        let source = {
            let c = o["source"]["component"].as_str().or(o["reportingComponent"].as_str()).unwrap_or("");
            match o["source"]["host"].as_str() {
                Some(h) if !h.is_empty() => format!("{c}, {h}"),
                _ => c.to_string(),
            }
        };
        vec![
            json!(last),
            json!(o["type"].as_str().unwrap_or("")),
            json!(o["reason"].as_str().unwrap_or("")),
            json!(format!("{}/{}", io["kind"].as_str().unwrap_or("").to_lowercase(), io["name"].as_str().unwrap_or(""))),
            json!(io["fieldPath"].as_str().unwrap_or("")),
            json!(source),
            json!(o["message"].as_str().unwrap_or("").trim()),
            json!(first),
            json!(o["count"].as_i64().unwrap_or(1).to_string()),
            json!(crate::meta::name(o)),
        ]
    }
    fn field_names(&self) -> &'static [&'static str] {
        FIELDS
    }
    fn fields(&self, o: &Value) -> Vec<(&'static str, String)> {
        FIELDS
            .iter()
            .map(|f| {
                let v = match *f {
                    "source" => o["source"]["component"].as_str().or(o["reportingComponent"].as_str()).unwrap_or("").to_string(),
                    _ => common::field_string(o, f),
                };
                (*f, v)
            })
            .collect()
    }
}
