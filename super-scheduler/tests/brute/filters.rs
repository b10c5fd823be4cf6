//! The filters, node by node, in kube-scheduler's order, and the expected message.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{
    arr, histogram, label_selector_ok, map, milli, pod_request, s, selector_is_empty, tolerates, tolerations, Expectation, NodeReq, Taint, Tol, Verdict, World,
};

fn fail(reason: &str, resolvable: bool) -> Verdict {
    Some((vec![reason.to_string()], resolvable))
}

/// The pod's own request and host ports.
struct PodFacts<'a> {
    tols: Vec<Tol>,
    node_req: NodeReq<'a>,
    node_name: Option<&'a str>,
    want: BTreeMap<String, i128>,
    /// Resource names in the order the fit filter reports them.
    order: Vec<String>,
    tolerates_cordon: bool,
    ports: Vec<(String, String, i64)>,
}

/// Per node: the requests of its pods, how many, and the host ports they use.
#[derive(Default)]
struct Agg<'a>(BTreeMap<&'a str, Usage>);

/// What a node's pods use: requests, count, host ports.
type Usage = (BTreeMap<String, i128>, usize, Vec<(String, String, i64)>);

impl Agg<'_> {
    fn get(&self, node: &str) -> Option<&Usage> {
        self.0.get(node)
    }
}

/// InterPodAffinity facts about the tenant's pods, for one incoming pod.
#[derive(Default)]
struct InterPod {
    required: Vec<Value>,
    /// Per affinity term: its key, and the values of that key on nodes of pods matching all terms.
    affinity_values: Vec<(String, BTreeSet<String>)>,
    any_counted: bool,
    self_match: bool,
    /// Per anti-affinity term: its key and the values its matching pods occupy.
    anti: Vec<(String, BTreeSet<String>)>,
    /// Topology pairs (key to values) existing pods' anti-affinity forbids to this pod.
    forbidden: BTreeMap<String, BTreeSet<String>>,
}

impl InterPod {
    fn verdict(&self, labels: &BTreeMap<String, String>) -> Verdict {
        if !self.required.is_empty() {
            if self.affinity_values.iter().any(|(k, _)| !labels.contains_key(k)) {
                return fail("node(s) didn't match pod affinity rules", false);
            }
            let every_term_met = self.affinity_values.iter().all(|(k, vals)| vals.contains(&labels[k]));
            // The first pod of a group with affinity to itself may go anywhere with the keys.
            let first_of_its_kind = !self.any_counted && self.self_match;
            if !(every_term_met || first_of_its_kind) {
                return fail("node(s) didn't match pod affinity rules", false);
            }
        }
        for (k, vals) in &self.anti {
            if labels.get(k).is_some_and(|v| vals.contains(v)) {
                return fail("node(s) didn't match pod anti-affinity rules", true);
            }
        }
        if labels.iter().any(|(k, v)| self.forbidden.get(k).is_some_and(|vals| vals.contains(v))) {
            return fail("node(s) didn't satisfy existing pods anti-affinity rules", true);
        }
        None
    }
}

/// Topology spread state of one hard constraint.
struct Spread {
    key: String,
    max_skew: i64,
    selector: Value,
    counts: BTreeMap<String, i64>,
    min: i64,
}

impl World {
    fn included(&self, c: &Value, pf: &PodFacts, node: &str) -> bool {
        let labels = self.vlabels(node);
        if c["nodeAffinityPolicy"] != "Ignore" && !pf.node_req.ok(node, labels) {
            return false;
        }
        if c["nodeTaintsPolicy"] == "Honor"
            && self.taints(node).iter().any(|t| (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerates(&pf.tols, t))
        {
            return false;
        }
        true
    }

    fn spread_state(&self, tenant: &str, pod: &Value, pf: &PodFacts, visible: &[String]) -> Vec<Spread> {
        let pod_ns = s(&pod["metadata"]["namespace"]);
        let pod_labels = map(&pod["metadata"]["labels"]);
        let hard: Vec<&Value> = arr(&pod["spec"]["topologySpreadConstraints"]).iter().filter(|c| c["whenUnsatisfiable"] == "DoNotSchedule").collect();
        let all_keys = |n: &str| {
            let l = self.vlabels(n);
            hard.iter().all(|c| l.contains_key(c["topologyKey"].as_str().unwrap()))
        };
        let mut out = Vec::new();
        for c in &hard {
            let key = s(&c["topologyKey"]);
            let mut selector = c["labelSelector"].clone();
            for k in arr(&c["matchLabelKeys"]) {
                if let Some(v) = pod_labels.get(&s(k)) {
                    selector["matchLabels"][s(k)] = Value::String(v.clone());
                }
            }
            // Matching pods of the tenant per node.
            let mut per_node: BTreeMap<&str, i64> = BTreeMap::new();
            if !selector_is_empty(&selector) {
                for p in self.tenant_pods(tenant).filter(|p| !p.deleting && p.ns == pod_ns && label_selector_ok(&selector, &p.labels)) {
                    *per_node.entry(p.node.as_str()).or_default() += 1;
                }
            }
            let mut counts: BTreeMap<String, i64> = BTreeMap::new();
            for n in visible.iter().filter(|n| all_keys(n) && self.included(c, pf, n)) {
                let v = self.vlabels(n)[&key].clone();
                *counts.entry(v).or_default() += per_node.get(n.as_str()).copied().unwrap_or(0);
            }
            let min_domains = c["minDomains"].as_i64().unwrap_or(1);
            let min = if (counts.len() as i64) < min_domains { 0 } else { counts.values().copied().min().unwrap_or(0) };
            out.push(Spread { key, max_skew: c["maxSkew"].as_i64().unwrap(), selector, counts, min });
        }
        out
    }

    /// What InterPodAffinity needs, gathered from the tenant's pods once per pod.
    fn interpod_facts(&self, tenant: &str, pod: &Value) -> InterPod {
        let pod_ns = s(&pod["metadata"]["namespace"]);
        let pod_labels = map(&pod["metadata"]["labels"]);
        let aff = &pod["spec"]["affinity"];
        let required = arr(&aff["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]);
        let anti = arr(&aff["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]);
        let mut f = InterPod { required: required.to_vec(), ..Default::default() };
        let mine: Vec<&super::BPod> = self.tenant_pods(tenant).collect();
        // Pods matching every affinity term: the labels of their nodes.
        let matching: Vec<&BTreeMap<String, String>> = mine
            .iter()
            .filter(|p| !required.is_empty() && required.iter().all(|t| self.term_selects(t, &pod_ns, &p.ns, &p.labels)))
            .map(|p| self.vlabels(&p.node))
            .collect();
        f.affinity_values = required
            .iter()
            .map(|t| {
                let k = s(&t["topologyKey"]);
                (k.clone(), matching.iter().filter_map(|l| l.get(&k).cloned()).collect())
            })
            .collect();
        f.any_counted = matching.iter().any(|l| required.iter().any(|t| l.contains_key(t["topologyKey"].as_str().unwrap())));
        f.self_match = required.iter().all(|t| self.term_selects(t, &pod_ns, &pod_ns, &pod_labels));
        // Per anti-affinity term: the topology values its matching pods occupy.
        f.anti = anti
            .iter()
            .map(|t| {
                let k = s(&t["topologyKey"]);
                let vals =
                    mine.iter().filter(|p| self.term_selects(t, &pod_ns, &p.ns, &p.labels)).filter_map(|p| self.vlabels(&p.node).get(&k).cloned()).collect();
                (k, vals)
            })
            .collect();
        // Existing pods' anti-affinity terms that select this pod: the pairs they forbid.
        for p in &mine {
            for t in arr(&p.spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]) {
                let k = s(&t["topologyKey"]);
                if let Some(v) = self.vlabels(&p.node).get(&k) {
                    if self.term_selects(t, &p.ns, &pod_ns, &pod_labels) {
                        f.forbidden.entry(k).or_default().insert(v.clone());
                    }
                }
            }
        }
        f
    }

    /// Every filter on one node, in order; the first failing one decides.
    fn verdict(&self, pod: &Value, pf: &PodFacts, node: &str, spread: &[Spread], agg: &Agg, ip: &InterPod) -> Verdict {
        if self.facts[node].3 && !pf.tolerates_cordon {
            return fail("node(s) were unschedulable", false);
        }
        if pf.node_name.is_some_and(|w| !w.is_empty() && w != node) {
            return fail("node(s) didn't match the requested node name", false);
        }
        if let Some(t) = self.taints(node).iter().find(|t| (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerates(&pf.tols, t)) {
            return fail(&format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value), false);
        }
        let labels = self.vlabels(node);
        if !pf.node_req.ok(node, labels) {
            return fail("node(s) didn't match Pod's node affinity/selector", false);
        }
        let empty = Default::default();
        let here = agg.get(node).unwrap_or(&empty);
        let used_ports = &here.2;
        for (ip, proto, port) in &pf.ports {
            if used_ports.iter().any(|(uip, up, uport)| uport == port && up == proto && (ip == "0.0.0.0" || uip == "0.0.0.0" || uip == ip)) {
                return fail("node(s) didn't have free ports for the requested pod ports", true);
            }
        }
        let mut reasons = Vec::new();
        let mut resolvable = true;
        let alloc = &self.facts[node].2;
        if here.1 as i128 + 1 > alloc.get("pods").copied().unwrap_or(0) / 1000 {
            reasons.push("Too many pods".to_string());
        }
        let used = &here.0;
        let want = &pf.want;
        for name in &pf.order {
            let w = want[name];
            let a = alloc.get(name).copied().unwrap_or(0);
            if w > 0 && w > a - used.get(name).copied().unwrap_or(0) {
                reasons.push(format!("Insufficient {name}"));
                resolvable &= w <= a;
            }
        }
        if !reasons.is_empty() {
            return Some((reasons, resolvable));
        }
        let pod_labels = map(&pod["metadata"]["labels"]);
        for c in spread {
            let Some(v) = labels.get(&c.key) else { return fail("node(s) didn't match pod topology spread constraints (missing required label)", false) };
            let self_match = label_selector_ok(&c.selector, &pod_labels) as i64;
            if c.counts.get(v).copied().unwrap_or(0) + self_match - c.min > c.max_skew {
                return fail("node(s) didn't match pod topology spread constraints", true);
            }
        }
        ip.verdict(labels)
    }

    /// The quota refusal, if the tenant's quota does not have room for the pod.
    fn quota_exceeded(&self, tenant: &str, pod: &Value) -> bool {
        let quota = self.policy(tenant)["quota"].clone();
        let Some(q) = quota.as_object() else { return false };
        let mine: Vec<&super::BPod> = self.pods.iter().filter(|p| p.tenant.as_deref() == Some(tenant)).collect();
        let want = pod_request(&pod["spec"]);
        q.iter().any(|(name, limit)| {
            let limit = milli(limit);
            if name == "pods" {
                return (mine.len() as i128 + 1) * 1000 > limit;
            }
            let w = want.get(name).copied().unwrap_or(0);
            let used: i128 = mine.iter().map(|p| p.request.get(name).copied().unwrap_or(0)).sum();
            w > 0 && used + w > limit
        })
    }
}

/// Where the pod may go, and what kube-scheduler would say if nowhere.
pub fn expect(w: &World, tenant: &str, pod: &Value) -> Expectation {
    let visible = w.visible(tenant);
    let n = visible.len();
    let never = pod["spec"]["preemptionPolicy"] == "Never";
    let preemption = |codes: BTreeMap<String, usize>| {
        if never {
            " preemption: not eligible due to preemptionPolicy=Never.".to_string()
        } else {
            format!(" preemption: 0/{n} nodes are available: {}.", histogram(&codes))
        }
    };
    if n == 0 {
        return Expectation {
            feasible: BTreeSet::new(),
            message: Some("no nodes available to schedule pods".into()),
            suffix: String::new(),
            quota_refused: false,
        };
    }
    if w.quota_exceeded(tenant, pod) {
        let mut codes = BTreeMap::new();
        codes.insert("Preemption is not helpful for scheduling".to_string(), n);
        let msg = format!("0/{n} nodes are available: exceeded quota of virtual cluster {tenant}, requested: ");
        return Expectation { feasible: BTreeSet::new(), message: Some(msg), suffix: preemption(codes), quota_refused: true };
    }
    let pinned = World::prefilter_names(pod);
    let want = pod_request(&pod["spec"]);
    let first = ["cpu", "memory", "ephemeral-storage"];
    let mut order: Vec<String> = want.keys().cloned().collect();
    order.sort_by_key(|k| (first.iter().position(|o| o == k).unwrap_or(3), k.clone()));
    let cordon = Taint { key: "node.kubernetes.io/unschedulable".into(), value: String::new(), effect: "NoSchedule".into() };
    let tols = tolerations(&pod["spec"]);
    let pf = PodFacts {
        order,
        want,
        ports: World::ports_of(&pod["spec"]),
        tolerates_cordon: tolerates(&tols, &cordon),
        tols,
        node_req: NodeReq::of(&pod["spec"]),
        node_name: pod["spec"]["nodeName"].as_str(),
    };
    let spread = w.spread_state(tenant, pod, &pf, &visible);
    let ip = w.interpod_facts(tenant, pod);
    let mut agg = Agg::default();
    for p in &w.pods {
        let e = agg.0.entry(p.node.as_str()).or_default();
        super::add(&mut e.0, &p.request);
        e.1 += 1;
        e.2.extend(p.ports.iter().cloned());
    }
    let mut feasible = BTreeSet::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for node in &visible {
        let verdict = if pinned.as_ref().is_some_and(|p| !p.contains(node)) {
            fail("node(s) didn't satisfy plugin(s) [NodeAffinity]", false)
        } else {
            w.verdict(pod, &pf, node, &spread, &agg, &ip)
        };
        match verdict {
            None => {
                feasible.insert(node.clone());
            }
            Some((rs, resolvable)) => {
                for r in rs {
                    *reasons.entry(r).or_default() += 1;
                }
                let code = if resolvable { "No preemption victims found for incoming pod" } else { "Preemption is not helpful for scheduling" };
                *codes.entry(code.to_string()).or_default() += 1;
            }
        }
    }
    let suffix = preemption(codes);
    let message = feasible.is_empty().then(|| format!("0/{n} nodes are available: {}.{suffix}", histogram(&reasons)));
    Expectation { feasible, message, suffix, quota_refused: false }
}
