//! VirtualCluster status: what the tenant manager reports and how it avoids needless writes.

use serde_json::{json, Value};

/// The condition type telling whether the tenant's API serves.
pub const READY: &str = "Ready";

/// The status the tenant manager wants to report.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// Pending, Running, Paused, Deleting or Failed.
    pub phase: &'static str,
    pub endpoint: Option<String>,
    /// (namespace, name) of the kubeconfig Secret.
    pub secret: Option<(String, String)>,
    /// The Ready condition: status, reason, message.
    pub ready: (bool, &'static str, String),
}

/// The status object for `desired`, keeping the Ready condition's lastTransitionTime when its
/// status did not change; `None` when `current` already says the same (no write needed).
pub fn render(current: &Value, generation: Option<i64>, d: &Desired) -> Option<Value> {
    let status = if d.ready.0 { "True" } else { "False" };
    let old = current["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == READY)).cloned();
    let ltt = match &old {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    };
    let mut cond = json!({"type": READY, "status": status, "reason": d.ready.1, "message": d.ready.2, "lastTransitionTime": ltt});
    if let Some(g) = generation {
        cond["observedGeneration"] = json!(g);
    }
    let mut s = json!({"phase": d.phase, "conditions": [cond]});
    if let Some(g) = generation {
        s["observedGeneration"] = json!(g);
    }
    s["endpoint"] = d.endpoint.clone().map(Value::String).unwrap_or(Value::Null);
    s["kubeconfigSecret"] = match &d.secret {
        Some((ns, name)) => json!({"namespace": ns, "name": name}),
        None => Value::Null,
    };
    let same = ["phase", "endpoint", "kubeconfigSecret", "observedGeneration"].iter().all(|k| current[*k] == s[*k])
        && old.as_ref().is_some_and(|c| ["status", "reason", "message", "observedGeneration"].iter().all(|k| c[*k] == s["conditions"][0][*k]));
    if same {
        None
    } else {
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_status_is_not_written_and_transition_time_is_kept() {
        let d = Desired {
            phase: "Running",
            endpoint: Some("https://x".into()),
            secret: Some(("kplex-system".into(), "a-kubeconfig".into())),
            ready: (true, "Serving", "ok".into()),
        };
        let s = render(&Value::Null, Some(1), &d).unwrap();
        assert_eq!(s["phase"], "Running");
        assert!(render(&s, Some(1), &d).is_none());
        let paused = Desired { phase: "Paused", ready: (false, "Paused", "paused".into()), ..d.clone() };
        let p = render(&s, Some(2), &paused).unwrap();
        assert_eq!(p["conditions"][0]["status"], "False");
        // Same status, new message: the transition time stays.
        let again = render(&s, Some(1), &Desired { ready: (true, "Serving", "still ok".into()), ..d }).unwrap();
        assert_eq!(again["conditions"][0]["lastTransitionTime"], s["conditions"][0]["lastTransitionTime"]);
    }
}
