//! Resource amounts as kube-scheduler counts them (`framework.Resource`): cpu in thousandths,
//! memory and ephemeral storage in bytes, and the scalar resources (extended resources such as
//! `nvidia.com/gpu`, hugepages, attachable volumes). A pod's request is what
//! `resource.PodRequests` computes: the sum over containers and restartable init containers
//! (sidecars), at least any single init container's peak while it runs beside the sidecars
//! started before it, plus the pod overhead.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity;

/// kube-scheduler's default cpu request of a container without one, for scoring (100m).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// kube-scheduler's default memory request of a container without one, for scoring (200Mi).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of the resources the scheduler tracks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Scalar resources, sorted by name.
    pub scalars: Vec<(String, i64)>,
}

/// `IsScalarResourceName`: extended resources (a domain other than kubernetes.io, no
/// `requests.` prefix), `hugepages-*`, `attachable-volumes-*` and kubernetes.io-prefixed names.
pub fn is_scalar_resource(name: &str) -> bool {
    if name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") {
        return true;
    }
    if !name.contains('/') {
        return false;
    }
    if name.starts_with("requests.") {
        return false;
    }
    true
}

impl Resources {
    pub fn scalar(&self, name: &str) -> i64 {
        self.scalars.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or(0)
    }

    fn scalar_mut(&mut self, name: &str) -> &mut i64 {
        match self.scalars.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => &mut self.scalars[i].1,
            Err(i) => {
                self.scalars.insert(i, (name.to_string(), 0));
                &mut self.scalars[i].1
            }
        }
    }

    /// The amount of one named resource (0 for names the scheduler does not track).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            n => self.scalar(n),
        }
    }

    fn slot(&mut self, name: &str) -> Option<&mut i64> {
        match name {
            "cpu" => Some(&mut self.milli_cpu),
            "memory" => Some(&mut self.memory),
            "ephemeral-storage" => Some(&mut self.ephemeral_storage),
            n if is_scalar_resource(n) => Some(self.scalar_mut(n)),
            _ => None,
        }
    }

    /// Reads a resource list (requests, allocatable); unknown names are ignored.
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list.into_iter().flatten() {
            let amount = if name == "cpu" { quantity::milli_value(&q.0) } else { quantity::value(&q.0) };
            if let Some(slot) = r.slot(name) {
                *slot = amount.unwrap_or(0);
            }
        }
        r
    }

    /// Adds amounts (saturating: absurd requests must not overflow the totals).
    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(o.milli_cpu);
        self.memory = self.memory.saturating_add(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_add(o.ephemeral_storage);
        for (n, v) in &o.scalars {
            let s = self.scalar_mut(n);
            *s = s.saturating_add(*v);
        }
    }

    /// Subtracts what `add` added; scalars that reach zero are dropped.
    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_sub(o.milli_cpu);
        self.memory = self.memory.saturating_sub(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_sub(o.ephemeral_storage);
        for (n, v) in &o.scalars {
            let s = self.scalar_mut(n);
            *s = s.saturating_sub(*v);
        }
        self.scalars.retain(|(_, v)| *v != 0);
    }

    /// Per resource, the larger of the two.
    pub fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (n, v) in &o.scalars {
            let s = self.scalar_mut(n);
            *s = (*s).max(*v);
        }
    }

    /// Nothing requested at all (the fit filter then only counts pods).
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0 && self.memory == 0 && self.ephemeral_storage == 0 && self.scalars.iter().all(|(_, v)| *v == 0)
    }
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// A container's requests; with `non_missing`, a missing cpu or memory request counts as
/// kube-scheduler's default (for scoring, `NonMissingContainerRequests`).
fn container_requests(c: &Container, non_missing: bool) -> Resources {
    let list = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let mut r = Resources::from_list(list);
    if non_missing {
        if !list.is_some_and(|l| l.contains_key("cpu")) {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !list.is_some_and(|l| l.contains_key("memory")) {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// `resource.PodRequests`: containers and sidecars summed, the max with each init container's
/// peak (itself plus the sidecars started before it), plus the overhead.
pub fn pod_requests(spec: &PodSpec, non_missing: bool) -> Resources {
    let mut reqs = Resources::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, non_missing));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c, non_missing);
        if is_sidecar(c) {
            reqs.add(&r);
            sidecars.add(&r);
            init_peak.max_with(&sidecars);
        } else {
            let mut running = r;
            running.add(&sidecars);
            init_peak.max_with(&running);
        }
    }
    reqs.max_with(&init_peak);
    if let Some(o) = &spec.overhead {
        reqs.add(&Resources::from_list(Some(o)));
    }
    reqs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn init_containers_take_the_max_and_regular_ones_add_up() {
        // Upstream's example: init 2/1G and 2/3G, containers 2/1G and 1/1G: 3 cpu, 3G.
        let s = spec(json!({
            "initContainers": [
                {"name": "i1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                {"name": "i2", "resources": {"requests": {"cpu": "2", "memory": "3G"}}}],
            "containers": [
                {"name": "c1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                {"name": "c2", "resources": {"requests": {"cpu": "1", "memory": "1G"}}}]}));
        let r = pod_requests(&s, false);
        assert_eq!((r.milli_cpu, r.memory), (3000, 3_000_000_000));
    }

    #[test]
    fn sidecars_run_beside_later_init_containers_and_the_app() {
        // sidecar 1 cpu; then init 2 cpu (runs with the sidecar: 3); app 1 cpu (+ sidecar: 2).
        let s = spec(json!({
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                {"name": "init", "resources": {"requests": {"cpu": "2"}}}],
            "containers": [{"name": "app", "resources": {"requests": {"cpu": "1"}}}]}));
        assert_eq!(pod_requests(&s, false).milli_cpu, 3000);
        // An init container before the sidecar does not run beside it.
        let s = spec(json!({
            "initContainers": [
                {"name": "init", "resources": {"requests": {"cpu": "2"}}},
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}}],
            "containers": [{"name": "app", "resources": {"requests": {"cpu": "1"}}}]}));
        assert_eq!(pod_requests(&s, false).milli_cpu, 2000);
    }

    #[test]
    fn overhead_and_extended_resources_count() {
        let s = spec(json!({
            "overhead": {"cpu": "250m", "memory": "120Mi"},
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "500m", "nvidia.com/gpu": "2", "hugepages-2Mi": "4Mi", "foo": "1"}}}]}));
        let r = pod_requests(&s, false);
        assert_eq!(r.milli_cpu, 750);
        assert_eq!(r.memory, 120 << 20);
        assert_eq!(r.scalar("nvidia.com/gpu"), 2);
        assert_eq!(r.scalar("hugepages-2Mi"), 4 << 20);
        assert_eq!(r.scalar("foo"), 0, "a name without a domain is not a scalar resource");
    }

    #[test]
    fn non_missing_defaults_apply_per_container_when_the_key_is_absent() {
        let s = spec(json!({"containers": [
            {"name": "a"},
            {"name": "b", "resources": {"requests": {"cpu": "0", "memory": "1Gi"}}}]}));
        let r = pod_requests(&s, true);
        assert_eq!(r.milli_cpu, 100, "an explicit 0 stays 0; a missing request counts 100m");
        assert_eq!(r.memory, DEFAULT_MEMORY_REQUEST + (1 << 30));
        assert!(pod_requests(&s, false).milli_cpu == 0);
    }

    #[test]
    fn absurd_amounts_saturate() {
        let mut a = Resources { memory: i64::MAX, ..Default::default() };
        a.add(&Resources { memory: i64::MAX, ..Default::default() });
        assert_eq!(a.memory, i64::MAX);
    }

    #[test]
    fn add_and_sub_round_trip() {
        let mut a = Resources { milli_cpu: 1, scalars: vec![("x.io/a".into(), 2)], ..Default::default() };
        let b = Resources { milli_cpu: 5, scalars: vec![("x.io/a".into(), 1), ("x.io/b".into(), 3)], ..Default::default() };
        a.add(&b);
        assert_eq!(a.get("x.io/b"), 3);
        a.sub(&b);
        assert_eq!(a, Resources { milli_cpu: 1, scalars: vec![("x.io/a".into(), 2)], ..Default::default() });
    }
}
