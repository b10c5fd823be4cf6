//! A CronJob's finished Jobs: which finished how, and which to delete to keep
//! `successfulJobsHistoryLimit` and `failedJobsHistoryLimit` (the oldest by start time first).

use std::cmp::Ordering;

use serde_json::Value;

use crate::meta;

/// The first Complete or Failed condition that is True.
pub fn finished_status(job: &Value) -> Option<&str> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
        .and_then(|c| c["type"].as_str())
}

/// Jobs with a start time first, earlier first, then by name (`byJobStartTime`).
fn by_start_time(a: &Value, b: &Value) -> Ordering {
    let st = |j: &Value| j["status"]["startTime"].as_str().and_then(meta::parse_time);
    match (st(a), st(b)) {
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (x, y) if x == y => meta::name(a).cmp(meta::name(b)),
        (x, y) => x.cmp(&y),
    }
}

/// The finished Jobs beyond the limits, to delete (the oldest of each kind).
pub fn to_prune<'a>(jobs: &[&'a Value], successful_limit: Option<i64>, failed_limit: Option<i64>) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for (kind, limit) in [("Complete", successful_limit), ("Failed", failed_limit)] {
        let Some(limit) = limit else { continue };
        let mut of_kind: Vec<&Value> = jobs.iter().copied().filter(|j| finished_status(j) == Some(kind)).collect();
        let n = of_kind.len() as i64 - limit.max(0);
        if n <= 0 {
            continue;
        }
        of_kind.sort_by(|a, b| by_start_time(a, b));
        out.extend(of_kind.into_iter().take(n as usize));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(name: &str, start: Option<&str>, cond: &str) -> Value {
        json!({"metadata": {"name": name}, "status": {"startTime": start, "conditions": [{"type": cond, "status": "True"}]}})
    }

    #[test]
    fn prunes_the_oldest_beyond_each_limit() {
        let a = job("a", Some("2024-01-01T00:03:00Z"), "Complete");
        let b = job("b", Some("2024-01-01T00:01:00Z"), "Complete");
        let c = job("c", Some("2024-01-01T00:02:00Z"), "Complete");
        let f1 = job("f1", Some("2024-01-01T00:00:00Z"), "Failed");
        let f2 = job("f2", None, "Failed");
        let running = json!({"metadata": {"name": "r"}, "status": {"startTime": "2023-01-01T00:00:00Z"}});
        let all = [&a, &b, &c, &f1, &f2, &running];
        let names = |v: Vec<&Value>| v.iter().map(|j| meta::name(j).to_string()).collect::<Vec<_>>();
        assert_eq!(names(to_prune(&all, Some(1), Some(1))), vec!["b", "c", "f1"]);
        assert_eq!(names(to_prune(&all, Some(3), Some(0))), vec!["f1", "f2"]);
        assert!(to_prune(&all, None, None).is_empty());
        // Equal start times: by name.
        let x = job("x", Some("2024-01-01T00:00:00Z"), "Complete");
        let w = job("w", Some("2024-01-01T00:00:00Z"), "Complete");
        assert_eq!(names(to_prune(&[&x, &w], Some(1), None)), vec!["w"]);
    }
}
