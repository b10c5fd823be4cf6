//! Test hooks: annotations that steer the simulation (documented in docs/node-simulator.md).
//!
//! On a pod:
//! - `sim.kplex.io/exit-code: "N"`: containers exit with code N (default 0 when only
//!   `exit-after` is given),
//! - `sim.kplex.io/exit-after: "5s"`: how long each run lasts before that exit (default 0s),
//! - `sim.kplex.io/exit-containers: "a,b"`: only these containers exit (default: all regular
//!   containers),
//! - `sim.kplex.io/start-delay: "3s"`: how long this pod stays in ContainerCreating,
//! - `sim.kplex.io/stop-delay: "10s"`: how long its containers take to stop once it is deleted
//!   (capped at the grace period; reaching it means SIGKILL, exit code 137).
//!
//! On a node, `sim.kplex.io/ready`: `false` (the kubelet reports NotReady, its lease still
//! renews) or `unknown` (the kubelet is gone: no lease renewals, no status, conditions Unknown).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use crate::util::parse_duration;

/// Annotation prefix of every hook.
pub const PREFIX: &str = "sim.kplex.io/";
pub const EXIT_CODE: &str = "sim.kplex.io/exit-code";
pub const EXIT_AFTER: &str = "sim.kplex.io/exit-after";
pub const EXIT_CONTAINERS: &str = "sim.kplex.io/exit-containers";
pub const START_DELAY: &str = "sim.kplex.io/start-delay";
pub const STOP_DELAY: &str = "sim.kplex.io/stop-delay";
pub const NODE_READY: &str = "sim.kplex.io/ready";

/// A pod's hooks, parsed from its annotations (malformed values are ignored with a warning).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hooks {
    pub exit_code: Option<i32>,
    pub exit_after: Option<Duration>,
    pub exit_containers: Option<Vec<Box<str>>>,
    pub start_delay: Option<Duration>,
    pub stop_delay: Option<Duration>,
}

impl Hooks {
    pub fn of(pod: &Pod) -> Hooks {
        match &pod.metadata.annotations {
            Some(a) => Hooks::parse(a, pod.metadata.name.as_deref().unwrap_or("")),
            None => Hooks::default(),
        }
    }

    pub fn parse(a: &BTreeMap<String, String>, what: &str) -> Hooks {
        let dur = |k: &str| {
            a.get(k).and_then(|v| match parse_duration(v) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(pod = what, annotation = k, "ignoring hook: {e}");
                    None
                }
            })
        };
        let exit_code = a.get(EXIT_CODE).and_then(|v| match v.trim().parse::<i32>() {
            Ok(c) => Some(c),
            Err(_) => {
                tracing::warn!(pod = what, annotation = EXIT_CODE, value = %v, "ignoring hook: not an integer");
                None
            }
        });
        Hooks {
            exit_code,
            exit_after: dur(EXIT_AFTER),
            exit_containers: a.get(EXIT_CONTAINERS).map(|v| v.split(',').map(|s| s.trim()).filter(|s| !s.is_empty()).map(Into::into).collect()),
            start_delay: dur(START_DELAY),
            stop_delay: dur(STOP_DELAY),
        }
    }

    /// Whether container `name` is to exit, and after how long.
    pub fn exit_after_for(&self, name: &str) -> Option<Duration> {
        if self.exit_code.is_none() && self.exit_after.is_none() {
            return None;
        }
        if let Some(list) = &self.exit_containers {
            if !list.iter().any(|c| &**c == name) {
                return None;
            }
        }
        Some(self.exit_after.unwrap_or(Duration::ZERO))
    }

    /// The exit code of a hooked exit.
    pub fn code(&self) -> i32 {
        self.exit_code.unwrap_or(0)
    }
}

/// What a node's `sim.kplex.io/ready` annotation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeMode {
    Ready,
    /// The kubelet runs but reports NotReady (container runtime network not ready).
    NotReady,
    /// The kubelet is gone: no lease, no status; the node lifecycle shows Unknown.
    Lost,
}

impl NodeMode {
    pub fn of(annotations: Option<&BTreeMap<String, String>>) -> NodeMode {
        match annotations.and_then(|a| a.get(NODE_READY)).map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if v == "false" => NodeMode::NotReady,
            Some(v) if v == "unknown" => NodeMode::Lost,
            _ => NodeMode::Ready,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            NodeMode::Ready => "ready",
            NodeMode::NotReady => "notready",
            NodeMode::Lost => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn hooks_parse_and_select_containers() {
        let h = Hooks::parse(&ann(&[(EXIT_CODE, "3"), (EXIT_AFTER, "2s"), (EXIT_CONTAINERS, "a, b")]), "p");
        assert_eq!(h.code(), 3);
        assert_eq!(h.exit_after_for("a"), Some(Duration::from_secs(2)));
        assert_eq!(h.exit_after_for("c"), None);
        let only_code = Hooks::parse(&ann(&[(EXIT_CODE, "1")]), "p");
        assert_eq!(only_code.exit_after_for("x"), Some(Duration::ZERO));
        let only_after = Hooks::parse(&ann(&[(EXIT_AFTER, "1s")]), "p");
        assert_eq!(only_after.code(), 0);
        let bad = Hooks::parse(&ann(&[(EXIT_CODE, "one"), (STOP_DELAY, "forever")]), "p");
        assert_eq!(bad, Hooks::default());
        assert_eq!(Hooks::parse(&ann(&[(STOP_DELAY, "5s")]), "p").stop_delay, Some(Duration::from_secs(5)));
        assert_eq!(NodeMode::of(Some(&ann(&[(NODE_READY, "False")]))), NodeMode::NotReady);
        assert_eq!(NodeMode::of(Some(&ann(&[(NODE_READY, "unknown")]))), NodeMode::Lost);
        assert_eq!(NodeMode::of(Some(&ann(&[(NODE_READY, "true")]))), NodeMode::Ready);
        assert_eq!(NodeMode::of(None), NodeMode::Ready);
    }
}
