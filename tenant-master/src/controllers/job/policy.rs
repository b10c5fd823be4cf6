//! `spec.podFailurePolicy` and `spec.successPolicy` of a Job, as upstream's
//! `pod_failure_policy.go` and `success_policy.go` match them.

use serde_json::Value;

use super::indexes::Intervals;

/// What a pod failure policy rule decided about a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    FailJob(String),
    FailIndex,
    Ignore,
    Count,
}

impl Action {
    /// Whether the failure counts towards backoffLimit (and backoffLimitPerIndex).
    pub fn counts(a: &Option<Action>) -> bool {
        !matches!(a, Some(Action::Ignore))
    }
}

/// The first rule matching a failed pod (None: no policy or no rule matched, the failure
/// counts as usual).
pub fn match_pod_failure_policy(policy: &Value, pod: &Value) -> Option<Action> {
    let rules = policy["rules"].as_array()?;
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    for (i, rule) in rules.iter().enumerate() {
        let action = rule["action"].as_str().unwrap_or("");
        let matched: Option<String> = if rule["onExitCodes"].is_object() {
            exit_code_match(&pod["status"], &rule["onExitCodes"])
                .map(|(c, code)| format!("Container {c} for pod {ns}/{name} failed with exit code {code} matching {action} rule at index {i}"))
        } else if let Some(patterns) = rule["onPodConditions"].as_array() {
            condition_match(&pod["status"], patterns).map(|t| format!("Pod {ns}/{name} has condition {t} matching {action} rule at index {i}"))
        } else {
            None
        };
        let Some(msg) = matched else { continue };
        match action {
            "Ignore" => return Some(Action::Ignore),
            "FailIndex" => return Some(Action::FailIndex),
            "Count" => return Some(Action::Count),
            "FailJob" => return Some(Action::FailJob(msg)),
            _ => {}
        }
    }
    None
}

fn exit_code_match(status: &Value, req: &Value) -> Option<(String, i64)> {
    let container = req["containerName"].as_str();
    let op = req["operator"].as_str().unwrap_or("");
    let values: Vec<i64> = req["values"].as_array().into_iter().flatten().filter_map(|v| v.as_i64()).collect();
    let lists = [&status["containerStatuses"], &status["initContainerStatuses"]];
    for cs in lists.iter().filter_map(|l| l.as_array()).flatten() {
        let t = &cs["state"]["terminated"];
        if !t.is_object() {
            continue;
        }
        let name = cs["name"].as_str().unwrap_or("");
        if container.map(|c| c != name).unwrap_or(false) {
            continue;
        }
        let code = t["exitCode"].as_i64().unwrap_or(0);
        if code == 0 {
            continue;
        }
        let hit = match op {
            "In" => values.contains(&code),
            "NotIn" => !values.contains(&code),
            _ => false,
        };
        if hit {
            return Some((name.to_string(), code));
        }
    }
    None
}

fn condition_match(status: &Value, patterns: &[Value]) -> Option<String> {
    for c in status["conditions"].as_array().into_iter().flatten() {
        for p in patterns {
            if c["type"] == p["type"] && c["status"] == p["status"] {
                return c["type"].as_str().map(String::from);
            }
        }
    }
    None
}

/// The message of the first success policy rule the succeeded indexes meet.
pub fn match_success_policy(policy: &Value, completions: usize, succeeded: &Intervals) -> Option<String> {
    let rules = policy["rules"].as_array()?;
    if succeeded.0.is_empty() {
        return None;
    }
    for (i, rule) in rules.iter().enumerate() {
        let count = rule["succeededCount"].as_u64().map(|c| c as usize);
        let met = match rule["succeededIndexes"].as_str() {
            Some(ix) => {
                let required = Intervals::parse(ix, completions);
                if required.0.is_empty() {
                    continue;
                }
                let contained = required.0.iter().flat_map(|(a, b)| *a..=*b).filter(|i| succeeded.has(*i)).count();
                contained == required.total() || count.map(|c| contained >= c).unwrap_or(false)
            }
            None => count.map(|c| succeeded.total() >= c).unwrap_or(false),
        };
        if met {
            return Some(format!("Matched rules at index {i}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_failure_rules_in_order() {
        let policy = json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
        ]});
        let pod = |code: i64, conds: Value| {
            json!({"metadata": {"namespace": "ns", "name": "p"}, "status": {"phase": "Failed",
            "conditions": conds, "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": code}}}]}})
        };
        assert_eq!(match_pod_failure_policy(&policy, &pod(1, json!([{"type": "DisruptionTarget", "status": "True"}]))), Some(Action::Ignore));
        assert_eq!(
            match_pod_failure_policy(&policy, &pod(42, json!([]))),
            Some(Action::FailJob("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1".into()))
        );
        assert_eq!(match_pod_failure_policy(&policy, &pod(3, json!([]))), Some(Action::Count));
        assert_eq!(match_pod_failure_policy(&policy, &pod(1, json!([]))), None);
    }

    #[test]
    fn success_policy_rules() {
        let done = Intervals::default().with_indexes([0, 1, 3]);
        let p = json!({"rules": [{"succeededIndexes": "0-2"}, {"succeededIndexes": "0-3", "succeededCount": 3}]});
        assert_eq!(match_success_policy(&p, 5, &done).as_deref(), Some("Matched rules at index 1"));
        assert_eq!(match_success_policy(&json!({"rules": [{"succeededCount": 4}]}), 5, &done), None);
        assert!(match_success_policy(&json!({"rules": [{"succeededIndexes": "0,1"}]}), 5, &done).is_some());
    }
}
