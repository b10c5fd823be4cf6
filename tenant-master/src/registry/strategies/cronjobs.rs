//! batch/v1 cronjobs: concurrencyPolicy Allow, suspend false, history limits 3 and 1, the
//! standard cron schedule check, the jobTemplate rules, the SCHEDULE/TIMEZONE/SUSPEND columns.

use serde_json::{json, Value};

use super::{common, info, jobs, podspec};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct CronJobs;

static INFO: ResourceInfo = info("batch", "v1", "CronJob", "cronjobs", "cronjob", true).with_short_names(&["cj"]).with_categories(&["all"]).with_subresources(&["status"]);

const DESCRIPTORS: &[&str] = &["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];
/// Bounds and names of minute, hour, day of month, month, day of week.
const FIELDS: &[(u32, u32, &[&str])] = &[
    (0, 59, &[]),
    (0, 23, &[]),
    (1, 31, &[]),
    (1, 12, &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]),
    (0, 6, &["sun", "mon", "tue", "wed", "thu", "fri", "sat"]),
];

fn value(s: &str, (_, _, names): (u32, u32, &[&str]), min: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| s.eq_ignore_ascii_case(n)) {
        return Ok(i as u32 + min);
    }
    s.parse::<u32>().map_err(|_| format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax"))
}

/// One field of a cron expression, as robfig/cron's getRange.
fn check_field(field: &str, spec: (u32, u32, &[&str])) -> Result<(), String> {
    let (min, max, _) = spec;
    for expr in field.split(',') {
        let (range, step) = match expr.split('/').collect::<Vec<_>>().as_slice() {
            [r] => (*r, None),
            [r, s] => (*r, Some(*s)),
            _ => return Err(format!("too many slashes: {expr}")),
        };
        let (lo, hi) = match range.split('-').collect::<Vec<_>>().as_slice() {
            ["*"] | ["?"] => (min, max),
            [a] => {
                let a = value(a, spec, min)?;
                (a, if step.is_some() { max } else { a })
            }
            [a, b] => (value(a, spec, min)?, value(b, spec, min)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        if let Some(s) = step {
            match s.parse::<u32>() {
                Ok(0) => return Err(format!("step of range should be a positive number: {expr}")),
                Ok(_) => {}
                Err(_) => return Err(format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax")),
            }
        }
        if lo < min {
            return Err(format!("beginning of range ({lo}) below minimum ({min}): {expr}"));
        }
        if hi > max {
            return Err(format!("end of range ({hi}) above maximum ({max}): {expr}"));
        }
        if lo > hi {
            return Err(format!("beginning of range ({lo}) beyond end of range ({hi}): {expr}"));
        }
    }
    Ok(())
}

/// robfig/cron's ParseStandard, reduced to accepting or rejecting with its messages.
pub fn parse_schedule(s: &str) -> Result<(), String> {
    let mut s = s.trim();
    if s.is_empty() {
        return Err("empty spec string".into());
    }
    if s.starts_with("TZ=") || s.starts_with("CRON_TZ=") {
        s = s.split_once(' ').map(|(_, rest)| rest.trim()).unwrap_or("");
    }
    if s.starts_with('@') {
        if DESCRIPTORS.contains(&s) || s.strip_prefix("@every ").map(|d| !d.trim().is_empty()).unwrap_or(false) {
            return Ok(());
        }
        return Err(format!("unrecognized descriptor: {s}"));
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" ")));
    }
    fields.iter().zip(FIELDS).try_for_each(|(f, spec)| check_field(f, *spec))
}

impl Strategy for CronJobs {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        let spec = &mut o["spec"];
        if !spec.is_object() {
            return;
        }
        if spec["concurrencyPolicy"].as_str().unwrap_or("").is_empty() {
            spec["concurrencyPolicy"] = json!("Allow");
        }
        common::default_field(spec, "suspend", json!(false));
        common::default_field(spec, "successfulJobsHistoryLimit", json!(3));
        common::default_field(spec, "failedJobsHistoryLimit", json!(1));
        // jobTemplate and its metadata are structs upstream: always written.
        common::default_field(spec, "jobTemplate", json!({}));
        podspec::defaults::default_embedded_metadata(&mut spec["jobTemplate"]);
        common::default_field(&mut spec["jobTemplate"], "spec", json!({}));
        podspec::default_pod_template(&mut spec["jobTemplate"]["spec"]["template"]);
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        if crate::meta::name(o).len() > 52 {
            errs.push(FieldError::invalid("metadata.name", crate::meta::name(o), "must be no more than 52 characters"));
        }
        let spec = &o["spec"];
        match spec["schedule"].as_str().unwrap_or("") {
            "" => errs.push(FieldError::required("spec.schedule", "")),
            s => {
                if let Err(e) = parse_schedule(s) {
                    errs.push(FieldError::invalid("spec.schedule", s, e));
                }
                if s.contains("TZ") {
                    errs.push(FieldError::invalid("spec.schedule", s, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"));
                }
            }
        }
        if let Some(tz) = spec["timeZone"].as_str() {
            let ok = |p: &str| !p.is_empty() && p.len() <= 14 && p != "." && p != ".." && !p.starts_with('-')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
            if tz.is_empty() {
                errs.push(FieldError::invalid("spec.timeZone", tz, "timeZone must be nil or non-empty string"));
            } else if !tz.split('/').all(ok) {
                errs.push(FieldError::invalid("spec.timeZone", tz, format!("unknown time zone {tz}")));
            } else {
                if tz.eq_ignore_ascii_case("Local") {
                    errs.push(FieldError::invalid("spec.timeZone", tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"));
                }
                if tz.parse::<chrono_tz::Tz>().is_err() {
                    errs.push(FieldError::invalid("spec.timeZone", tz, format!("unknown time zone {tz}")));
                }
            }
        }
        match spec["concurrencyPolicy"].as_str().unwrap_or("") {
            "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
            _ => common::one_of(&spec["concurrencyPolicy"], "spec.concurrencyPolicy", &["Allow", "Forbid", "Replace"], errs),
        }
        for f in ["startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
            common::non_negative(&spec[f], &format!("spec.{f}"), errs);
        }
        let js = &spec["jobTemplate"]["spec"];
        jobs::validate_job_spec(js, "spec.jobTemplate.spec", errs);
        if !js["selector"].is_null() {
            errs.push(FieldError::invalid("spec.jobTemplate.spec.selector", js["selector"].clone(), "`selector` will be auto-generated"));
        }
        if js["manualSelector"] == json!(true) {
            errs.push(FieldError::not_supported("spec.jobTemplate.spec.manualSelector", true, &["nil", "false"]));
        }
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Schedule", "string", 0, "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
            Column::new("Timezone", "string", 0, "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
            Column::new("Suspend", "boolean", 0, "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions."),
            Column::new("Active", "integer", 0, "A list of pointers to currently running jobs."),
            Column::new("Last Schedule", "string", 0, "Information when was the last time the job was successfully scheduled."),
            Column::age(),
            Column::new("Containers", "string", 1, "Names of each container in the template."),
            Column::new("Images", "string", 1, "Images referenced by each container in the template."),
            Column::new("Selector", "string", 1, "A label query over pods that should match the pod count. Normally, the system sets this field for you."),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let (spec, st) = (&o["spec"], &o["status"]);
        let last = if st["lastScheduleTime"].is_null() { "<none>".to_string() } else { crate::api::table::since(&st["lastScheduleTime"]) };
        let (c, i) = common::containers_and_images(&spec["jobTemplate"]["spec"]["template"]);
        vec![
            json!(crate::meta::name(o)),
            json!(spec["schedule"].as_str().unwrap_or("")),
            json!(spec["timeZone"].as_str().unwrap_or("<none>")),
            json!(crate::api::table::bool_ptr_cell(&spec["suspend"])),
            json!(st["active"].as_array().map(|a| a.len()).unwrap_or(0)),
            json!(last),
            json!(crate::api::table::age(o)),
            json!(c),
            json!(i),
            json!(crate::api::table::selector_cell(&spec["jobTemplate"]["spec"]["selector"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cj() -> Value {
        json!({"metadata": {"name": "hello"}, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "hello", "image": "busybox:1.36"}]}}}}}})
    }

    #[test]
    fn schedules() {
        assert!(parse_schedule("*/5 * * * *").is_ok());
        assert!(parse_schedule("0 9-17 * JAN-MAR mon,fri").is_ok());
        assert!(parse_schedule("@hourly").is_ok());
        assert_eq!(parse_schedule("* * *").unwrap_err(), "expected exactly 5 fields, found 3: [* * *]");
        assert_eq!(parse_schedule("61 * * * *").unwrap_err(), "end of range (61) above maximum (59): 61");
        assert_eq!(parse_schedule("@often").unwrap_err(), "unrecognized descriptor: @often");
    }

    #[test]
    fn defaults_validation_and_row() {
        let mut o = cj();
        CronJobs.default(&mut o);
        let s = &o["spec"];
        assert_eq!((s["concurrencyPolicy"].clone(), s["suspend"].clone()), (json!("Allow"), json!(false)));
        assert_eq!((s["successfulJobsHistoryLimit"].clone(), s["failedJobsHistoryLimit"].clone()), (json!(3), json!(1)));
        assert!(s["jobTemplate"]["spec"].get("backoffLimit").is_none());
        let mut errs = Vec::new();
        CronJobs.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let r = CronJobs.row(&o);
        assert_eq!(r[1..6].to_vec(), vec![json!("*/5 * * * *"), json!("<none>"), json!("False"), json!(0), json!("<none>")]);
        o["spec"]["timeZone"] = json!("Mars/Olympus_Mons");
        CronJobs.validate(&o, &mut errs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].detail, "unknown time zone Mars/Olympus_Mons");
        errs.clear();
        o["spec"]["timeZone"] = json!("Europe/Berlin");
        CronJobs.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        o["spec"]["timeZone"] = Value::Null;
        o["spec"]["schedule"] = json!("CRON_TZ=UTC 0 * * * *");
        CronJobs.validate(&o, &mut errs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].detail, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
    }
}
