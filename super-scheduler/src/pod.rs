//! A pod as the scheduler reads it, parsed once: requests, host ports, tolerations, node
//! selector and affinity, pod (anti-)affinity terms, topology spread constraints. Used both for
//! the tenant pod being scheduled and for the pods already placed in the super cluster.

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, TopologySpreadConstraint};

use crate::labels::{labels_from, Labels, NodeSelector, NodeTerm, Selector, TENANCY_PREFIX};
use crate::node::Taint;
use crate::resources::{pod_requests, Resources};

/// A toleration (`v1.Toleration.ToleratesTaint`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Toleration {
    pub key: String,
    /// `Exists` (true) or `Equal`/empty (false).
    pub exists: bool,
    /// An operator other than Equal/Exists/empty: tolerates nothing.
    pub bad_op: bool,
    pub value: String,
    /// Empty: every effect.
    pub effect: String,
}

impl Toleration {
    pub fn tolerates(&self, t: &Taint) -> bool {
        if !self.effect.is_empty() && self.effect != t.effect {
            return false;
        }
        if !self.key.is_empty() && self.key != t.key {
            return false;
        }
        if self.bad_op {
            return false;
        }
        self.exists || self.value == t.value
    }
}

/// Whether any toleration tolerates the taint.
pub fn tolerated(tols: &[Toleration], t: &Taint) -> bool {
    tols.iter().any(|x| x.tolerates(t))
}

/// The first NoSchedule/NoExecute taint no toleration tolerates (`FindMatchingUntoleratedTaint`
/// with `DoNotScheduleTaintsFilterFunc`).
pub fn first_untolerated<'a>(taints: &'a [Taint], tols: &[Toleration]) -> Option<&'a Taint> {
    taints.iter().find(|t| (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(tols, t))
}

/// A pod (anti-)affinity term (`framework.AffinityTerm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinityTerm {
    pub namespaces: Vec<String>,
    pub ns_selector: Selector,
    pub selector: Selector,
    pub topology_key: String,
}

impl AffinityTerm {
    fn parse(t: &PodAffinityTerm, own_ns: &str) -> Option<AffinityTerm> {
        let selector = Selector::from_label_selector(t.label_selector.as_ref())?;
        let ns_selector = Selector::from_label_selector(t.namespace_selector.as_ref())?;
        let listed = t.namespaces.as_deref().unwrap_or_default();
        let namespaces = if listed.is_empty() && t.namespace_selector.is_none() { vec![own_ns.to_string()] } else { listed.to_vec() };
        Some(AffinityTerm { namespaces, ns_selector, selector, topology_key: t.topology_key.clone() })
    }

    /// `AffinityTerm.Matches`: the pod's namespace is listed or selected, and its labels match.
    pub fn matches(&self, ns: &str, labels: &Labels, ns_labels: &Labels) -> bool {
        (self.namespaces.iter().any(|n| n == ns) || self.ns_selector.matches(ns_labels)) && self.selector.matches(labels)
    }
}

/// A pod's inter-pod affinity terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodAffinity {
    pub required: Vec<AffinityTerm>,
    pub required_anti: Vec<AffinityTerm>,
    pub preferred: Vec<(i32, AffinityTerm)>,
    pub preferred_anti: Vec<(i32, AffinityTerm)>,
}

impl PodAffinity {
    pub fn is_empty(&self) -> bool {
        self.required.is_empty() && self.required_anti.is_empty() && self.preferred.is_empty() && self.preferred_anti.is_empty()
    }
}

/// A topology spread constraint, parsed (`topologySpreadConstraint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpreadConstraint {
    pub max_skew: i32,
    pub topology_key: String,
    /// `whenUnsatisfiable: DoNotSchedule` (a filter) rather than `ScheduleAnyway` (a score).
    pub hard: bool,
    pub selector: Selector,
    pub min_domains: i32,
    /// `nodeAffinityPolicy: Honor` (the default).
    pub honor_affinity: bool,
    /// `nodeTaintsPolicy: Honor` (default Ignore).
    pub honor_taints: bool,
}

impl SpreadConstraint {
    fn parse(c: &TopologySpreadConstraint, labels: &Labels) -> Option<SpreadConstraint> {
        let mut selector = Selector::from_label_selector(c.label_selector.as_ref())?;
        // matchLabelKeys: the pod's own values of those keys join the selector.
        let set: Vec<(String, String)> = c.match_label_keys.iter().flatten().filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone()))).collect();
        if !set.is_empty() {
            selector.merge_set(&set);
        }
        Some(SpreadConstraint {
            max_skew: c.max_skew,
            topology_key: c.topology_key.clone(),
            hard: c.when_unsatisfiable == "DoNotSchedule",
            selector,
            min_domains: c.min_domains.unwrap_or(1),
            honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        })
    }
}

/// A host port a container binds (`ip` "0.0.0.0" and protocol "TCP" when unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// `HostPortInfo.CheckConflict` of this wanted port against ports in use.
    pub fn conflicts(&self, used: &[HostPort]) -> bool {
        used.iter().any(|u| u.port == self.port && u.protocol == self.protocol && (self.ip == "0.0.0.0" || u.ip == "0.0.0.0" || u.ip == self.ip))
    }
}

/// Everything the scheduler reads of one pod.
#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    pub uid: String,
    pub name: String,
    /// The namespace affinity and spreading compare (the tenant namespace for a tenant pod).
    pub namespace: String,
    /// Labels, without the provider's `tenancy.kplex.io/` keys.
    pub labels: Labels,
    pub node_name: Option<String>,
    /// What the fit filter and quotas count.
    pub requests: Resources,
    /// cpu and memory with kube-scheduler's defaults for containers that request none (scoring).
    pub nonzero_cpu: i64,
    pub nonzero_memory: i64,
    pub host_ports: Vec<HostPort>,
    pub tolerations: Vec<Toleration>,
    pub node_selector: Option<Selector>,
    pub required_node_affinity: Option<NodeSelector>,
    pub preferred_node_affinity: Vec<(i32, NodeTerm)>,
    pub affinity: PodAffinity,
    pub spread: Vec<SpreadConstraint>,
    pub preempt_never: bool,
    /// Has a deletionTimestamp (topology spreading skips it).
    pub deleting: bool,
}

impl PodInfo {
    /// Parses a pod. `namespace` overrides the pod's own (a super pod's tenant namespace). An
    /// error means a selector in the pod does not parse (a pod the API server would reject).
    pub fn from_pod(pod: &Pod, namespace: Option<&str>) -> Result<PodInfo, String> {
        let meta = &pod.metadata;
        let namespace = namespace.map(str::to_string).unwrap_or_else(|| meta.namespace.clone().unwrap_or_default());
        let mut labels = labels_from(meta.labels.as_ref());
        labels.retain(|k, _| !k.starts_with(TENANCY_PREFIX));
        let mut info = PodInfo {
            uid: meta.uid.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            namespace,
            labels,
            deleting: meta.deletion_timestamp.is_some(),
            ..Default::default()
        };
        let Some(spec) = pod.spec.as_ref() else { return Ok(info) };
        info.node_name = spec.node_name.clone().filter(|n| !n.is_empty());
        info.requests = pod_requests(spec, false);
        let nz = pod_requests(spec, true);
        (info.nonzero_cpu, info.nonzero_memory) = (nz.milli_cpu, nz.memory);
        let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
        for c in sidecars.chain(spec.containers.iter()) {
            for p in c.ports.iter().flatten().filter(|p| p.host_port.unwrap_or(0) > 0) {
                info.host_ports.push(HostPort {
                    ip: p.host_ip.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "0.0.0.0".into()),
                    protocol: p.protocol.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "TCP".into()),
                    port: p.host_port.unwrap_or(0),
                });
            }
        }
        info.tolerations = spec
            .tolerations
            .iter()
            .flatten()
            .map(|t| {
                let op = t.operator.as_deref().unwrap_or("");
                Toleration {
                    key: t.key.clone().unwrap_or_default(),
                    exists: op == "Exists",
                    bad_op: !matches!(op, "" | "Equal" | "Exists"),
                    value: t.value.clone().unwrap_or_default(),
                    effect: t.effect.clone().unwrap_or_default(),
                }
            })
            .collect();
        info.node_selector = spec.node_selector.as_ref().map(|m| Selector::from_map(m.iter()));
        let aff = spec.affinity.as_ref();
        if let Some(na) = aff.and_then(|a| a.node_affinity.as_ref()) {
            info.required_node_affinity = na.required_during_scheduling_ignored_during_execution.as_ref().map(NodeSelector::parse);
            for p in na.preferred_during_scheduling_ignored_during_execution.iter().flatten() {
                if p.weight == 0 {
                    continue;
                }
                if let Some(t) = NodeTerm::parse(&p.preference).filter(|t| !t.invalid) {
                    info.preferred_node_affinity.push((p.weight, t));
                }
            }
        }
        let ns = info.namespace.clone();
        let term = |t: &PodAffinityTerm| AffinityTerm::parse(t, &ns).ok_or_else(|| "invalid label selector in a pod affinity term".to_string());
        if let Some(pa) = aff.and_then(|a| a.pod_affinity.as_ref()) {
            for t in pa.required_during_scheduling_ignored_during_execution.iter().flatten() {
                info.affinity.required.push(term(t)?);
            }
            for w in pa.preferred_during_scheduling_ignored_during_execution.iter().flatten() {
                info.affinity.preferred.push((w.weight, term(&w.pod_affinity_term)?));
            }
        }
        if let Some(pa) = aff.and_then(|a| a.pod_anti_affinity.as_ref()) {
            for t in pa.required_during_scheduling_ignored_during_execution.iter().flatten() {
                info.affinity.required_anti.push(term(t)?);
            }
            for w in pa.preferred_during_scheduling_ignored_during_execution.iter().flatten() {
                info.affinity.preferred_anti.push((w.weight, term(&w.pod_affinity_term)?));
            }
        }
        for c in spec.topology_spread_constraints.iter().flatten() {
            info.spread.push(SpreadConstraint::parse(c, &info.labels).ok_or("invalid label selector in a topology spread constraint")?);
        }
        info.preempt_never = spec.preemption_policy.as_deref() == Some("Never");
        Ok(info)
    }

    /// Whether the node's name, labels and taints admit the pod on their own (no pods needed).
    pub fn matches_node_affinity(&self, name: &str, labels: &Labels) -> bool {
        self.node_selector.as_ref().is_none_or(|s| s.matches(labels)) && self.required_node_affinity.as_ref().is_none_or(|s| s.matches(name, labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn taint(k: &str, v: &str, e: &str) -> Taint {
        Taint { key: k.into(), value: v.into(), effect: e.into() }
    }

    fn pod(v: serde_json::Value) -> PodInfo {
        PodInfo::from_pod(&serde_json::from_value(v).unwrap(), None).unwrap()
    }

    #[test]
    fn tolerations_match_like_tolerates_taint() {
        let p = pod(json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [], "tolerations": [
            {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "team", "operator": "Equal", "value": "a"},
            {"key": "weird", "operator": "Gt", "value": "1"}]}}));
        assert!(tolerated(&p.tolerations, &taint("gpu", "present", "NoSchedule")));
        assert!(!tolerated(&p.tolerations, &taint("gpu", "present", "NoExecute")));
        assert!(tolerated(&p.tolerations, &taint("team", "a", "NoExecute")), "an empty effect tolerates every effect");
        assert!(!tolerated(&p.tolerations, &taint("team", "b", "NoSchedule")));
        assert!(!tolerated(&p.tolerations, &taint("weird", "1", "NoSchedule")));
        let all = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": [{"operator": "Exists"}]}}));
        assert!(tolerated(&all.tolerations, &taint("anything", "x", "NoExecute")));
        let taints = [taint("a", "", "PreferNoSchedule"), taint("b", "1", "NoSchedule"), taint("c", "", "NoExecute")];
        assert_eq!(first_untolerated(&taints, &[]).unwrap().key, "b");
    }

    #[test]
    fn affinity_terms_default_to_the_pods_namespace() {
        let p = pod(json!({"metadata": {"name": "p", "namespace": "prod", "labels": {"app": "web", "tenancy.kplex.io/tenant": "t"}},
            "spec": {"containers": [], "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"},
                {"labelSelector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {}, "topologyKey": "zone"}]}}}}));
        assert!(!p.labels.contains_key("tenancy.kplex.io/tenant"));
        let [own, all] = &p.affinity.required_anti[..] else { panic!() };
        let web: Labels = [("app".to_string(), "web".to_string())].into_iter().collect();
        assert!(own.matches("prod", &web, &Labels::default()));
        assert!(!own.matches("dev", &web, &Labels::default()));
        assert!(all.matches("dev", &web, &Labels::default()), "an empty namespaceSelector selects every namespace");
    }

    #[test]
    fn host_ports_default_ip_and_protocol() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "ports": [
            {"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"}, {"containerPort": 9}]}]}}));
        assert_eq!(p.host_ports.len(), 2);
        let used = vec![HostPort { ip: "10.0.0.2".into(), protocol: "TCP".into(), port: 8080 }];
        assert!(p.host_ports[0].conflicts(&used), "0.0.0.0 conflicts with any address");
        let used = vec![HostPort { ip: "10.0.0.2".into(), protocol: "UDP".into(), port: 53 }];
        assert!(!p.host_ports[1].conflicts(&used), "different addresses do not conflict");
        let used = vec![HostPort { ip: "0.0.0.0".into(), protocol: "UDP".into(), port: 53 }];
        assert!(p.host_ports[1].conflicts(&used));
    }

    #[test]
    fn spread_constraints_merge_match_label_keys_and_default_policies() {
        let p = pod(json!({"metadata": {"name": "p", "labels": {"app": "web", "pod-template-hash": "abc"}}, "spec": {"containers": [],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "web"}}, "matchLabelKeys": ["pod-template-hash", "missing"]}]}}));
        let c = &p.spread[0];
        assert!(c.hard && c.honor_affinity && !c.honor_taints && c.min_domains == 1);
        let other: Labels = [("app", "web"), ("pod-template-hash", "old")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(!c.selector.matches(&other));
        assert!(c.selector.matches(&p.labels));
    }
}
