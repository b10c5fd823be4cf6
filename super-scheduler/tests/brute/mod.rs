//! A brute-force evaluation of kube-scheduler's filters over raw JSON objects, written from the
//! upstream semantics independently of the scheduler's code: for one pod it checks every node the
//! tenant may use against every filter, straight from the node and pod objects and the list of
//! pods already placed, and builds the FailedScheduling message it expects.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// A pod on a node (placed in the super cluster or reserved).
#[derive(Debug, Clone)]
pub struct BPod {
    pub uid: String,
    pub tenant: Option<String>,
    pub ns: String,
    pub labels: BTreeMap<String, String>,
    pub spec: Value,
    pub node: String,
    pub deleting: bool,
    /// `pod_request(spec)` and `ports_of(spec)`, kept with the pod.
    pub request: BTreeMap<String, i128>,
    pub ports: Vec<(String, String, i64)>,
}

impl BPod {
    pub fn new(uid: &str, tenant: Option<&str>, ns: &str, labels: BTreeMap<String, String>, spec: &Value, node: &str) -> BPod {
        BPod {
            uid: uid.into(),
            tenant: tenant.map(str::to_string),
            ns: ns.into(),
            labels,
            spec: spec.clone(),
            node: node.into(),
            deleting: false,
            request: pod_request(spec),
            ports: World::ports_of(spec),
        }
    }
}

/// A node's labels, effective taints, allocatable (thousandths) and whether it is cordoned.
pub type NodeFacts = (BTreeMap<String, String>, Vec<Taint>, BTreeMap<String, i128>, bool);

/// Everything the brute force knows.
#[derive(Debug, Default)]
pub struct World {
    /// Set through `set_node`, which also derives the virtual labels.
    pub nodes: BTreeMap<String, Value>,
    pub vl: BTreeMap<String, BTreeMap<String, String>>,
    /// Per node: all labels, effective taints, allocatable (thousandths), cordoned.
    pub facts: BTreeMap<String, NodeFacts>,
    pub pods: Vec<BPod>,
    /// Tenant name to VirtualCluster spec.
    pub policies: BTreeMap<String, Value>,
    pub visible_keys: Vec<String>,
    pub visible_prefixes: Vec<String>,
    /// Tenant namespaces and their labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

/// The verdict on one node: None (fits), or the reasons and whether preemption could help.
type Verdict = Option<(Vec<String>, bool)>;

fn s(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

fn map(v: &Value) -> BTreeMap<String, String> {
    v.as_object().map(|o| o.iter().map(|(k, v)| (k.clone(), s(v))).collect()).unwrap_or_default()
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(|a| a.as_slice()).unwrap_or(&[])
}

/// Quantity in thousandths (the generator only writes m, k, Ki, Mi, Gi and plain numbers).
pub fn milli(q: &Value) -> i128 {
    let t = s(q);
    let (num, mult): (&str, i128) = if let Some(n) = t.strip_suffix("Ki") {
        (n, 1024 * 1000)
    } else if let Some(n) = t.strip_suffix("Mi") {
        (n, 1024 * 1024 * 1000)
    } else if let Some(n) = t.strip_suffix("Gi") {
        (n, 1024 * 1024 * 1024 * 1000)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('k') {
        (n, 1_000_000)
    } else {
        (t.as_str(), 1000)
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let mut v = int.parse::<i128>().unwrap() * mult;
    if !frac.is_empty() {
        v += frac.parse::<i128>().unwrap() * mult / 10i128.pow(frac.len() as u32);
    }
    v
}

fn tracked(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || (name.contains('/') && !name.starts_with("requests."))
}

fn add(into: &mut BTreeMap<String, i128>, from: &BTreeMap<String, i128>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn maxed(a: &BTreeMap<String, i128>, b: &BTreeMap<String, i128>) -> BTreeMap<String, i128> {
    let mut out = a.clone();
    for (k, v) in b {
        let e = out.entry(k.clone()).or_default();
        *e = (*e).max(*v);
    }
    out
}

fn requests_of(c: &Value) -> BTreeMap<String, i128> {
    c["resources"]["requests"].as_object().map(|o| o.iter().filter(|(k, _)| tracked(k)).map(|(k, v)| (k.clone(), milli(v))).collect()).unwrap_or_default()
}

/// What the pod needs at its peak: walk its lifecycle (init containers one by one beside the
/// sidecars started so far, then the app containers beside all sidecars), plus the overhead.
pub fn pod_request(spec: &Value) -> BTreeMap<String, i128> {
    let mut sidecars = BTreeMap::new();
    let mut peak = BTreeMap::new();
    for c in arr(&spec["initContainers"]) {
        let r = requests_of(c);
        if c["restartPolicy"] == "Always" {
            add(&mut sidecars, &r);
            peak = maxed(&peak, &sidecars);
        } else {
            let mut during = sidecars.clone();
            add(&mut during, &r);
            peak = maxed(&peak, &during);
        }
    }
    let mut steady = sidecars;
    for c in arr(&spec["containers"]) {
        add(&mut steady, &requests_of(c));
    }
    let mut total = maxed(&peak, &steady);
    if let Some(o) = spec["overhead"].as_object() {
        for (k, v) in o {
            if tracked(k) {
                *total.entry(k.clone()).or_default() += milli(v);
            }
        }
    }
    total.retain(|_, v| *v != 0);
    total
}

#[derive(Debug, Clone)]
pub struct Taint {
    key: String,
    value: String,
    effect: String,
}

/// A toleration, read once from the pod.
pub struct Tol {
    key: String,
    op: String,
    value: String,
    effect: String,
}

fn tolerations(spec: &Value) -> Vec<Tol> {
    arr(&spec["tolerations"])
        .iter()
        .map(|x| Tol {
            key: x["key"].as_str().unwrap_or("").into(),
            op: x["operator"].as_str().unwrap_or("Equal").into(),
            value: x["value"].as_str().unwrap_or("").into(),
            effect: x["effect"].as_str().unwrap_or("").into(),
        })
        .collect()
}

fn tolerates(tols: &[Tol], t: &Taint) -> bool {
    tols.iter().any(|x| {
        (x.effect.is_empty() || x.effect == t.effect)
            && (x.key.is_empty() || x.key == t.key)
            && match x.op.as_str() {
                "Exists" => true,
                "Equal" | "" => x.value == t.value,
                _ => false,
            }
    })
}

/// A pod's node selector and required node-affinity terms, read once.
pub struct NodeReq<'a> {
    selector: Vec<(String, String)>,
    terms: Option<&'a [Value]>,
}

impl<'a> NodeReq<'a> {
    fn of(spec: &'a Value) -> NodeReq<'a> {
        let selector = spec["nodeSelector"].as_object().into_iter().flatten().map(|(k, v)| (k.clone(), s(v))).collect();
        let req = &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        NodeReq { selector, terms: (!req.is_null()).then(|| arr(&req["nodeSelectorTerms"])) }
    }

    fn ok(&self, node: &str, labels: &BTreeMap<String, String>) -> bool {
        if !self.selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
        let Some(terms) = self.terms else { return true };
        terms.iter().any(|t| {
            let exprs = arr(&t["matchExpressions"]);
            let fields = arr(&t["matchFields"]);
            if exprs.is_empty() && fields.is_empty() {
                return false;
            }
            exprs.iter().all(|e| expr_ok(e, labels))
                && fields.iter().all(|f| {
                    let v = f["values"][0].as_str().unwrap();
                    if f["operator"] == "In" {
                        node == v
                    } else {
                        node != v
                    }
                })
        })
    }
}

fn expr_ok(e: &Value, labels: &BTreeMap<String, String>) -> bool {
    let key = e["key"].as_str().unwrap();
    let vals: Vec<String> = arr(&e["values"]).iter().map(s).collect();
    let have = labels.get(key);
    match e["operator"].as_str().unwrap() {
        "In" => have.is_some_and(|h| vals.contains(h)),
        "NotIn" => have.is_none_or(|h| !vals.contains(h)),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        "Gt" => have.and_then(|h| h.parse::<i64>().ok()).is_some_and(|h| h > vals[0].parse::<i64>().unwrap()),
        "Lt" => have.and_then(|h| h.parse::<i64>().ok()).is_some_and(|h| h < vals[0].parse::<i64>().unwrap()),
        op => panic!("generator wrote operator {op}"),
    }
}

fn label_selector_ok(sel: &Value, labels: &BTreeMap<String, String>) -> bool {
    if sel.is_null() {
        return false;
    }
    map(&sel["matchLabels"]).iter().all(|(k, v)| labels.get(k) == Some(v)) && arr(&sel["matchExpressions"]).iter().all(|e| expr_ok(e, labels))
}

fn selector_is_empty(sel: &Value) -> bool {
    !sel.is_null() && map(&sel["matchLabels"]).is_empty() && arr(&sel["matchExpressions"]).is_empty()
}

impl World {
    fn policy(&self, tenant: &str) -> Value {
        self.policies.get(tenant).cloned().unwrap_or(Value::Null)
    }

    /// The nodes the tenant may use.
    pub fn visible(&self, tenant: &str) -> Vec<String> {
        let p = self.policy(tenant);
        self.nodes
            .iter()
            .filter(|(name, _)| {
                let labels = &self.facts[*name].0;
                let pool = labels.get("tenancy.kplex.io/tenant");
                if pool.is_some_and(|p| p != tenant) {
                    return false;
                }
                if p["dedicatedNodePool"] == true && pool.is_none() {
                    return false;
                }
                map(&p["nodeSelector"]).iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Adds or replaces a node.
    pub fn set_node(&mut self, node: Value) {
        let name = s(&node["metadata"]["name"]);
        let mut l = map(&node["metadata"]["labels"]);
        l.retain(|k, _| !k.starts_with("tenancy.kplex.io/") && (self.visible_keys.contains(k) || self.visible_prefixes.iter().any(|p| k.starts_with(p))));
        self.vl.insert(name.clone(), l);
        let alloc = node["status"]["allocatable"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), milli(v))).collect();
        let facts = (map(&node["metadata"]["labels"]), World::taints_of(&node), alloc, node["spec"]["unschedulable"] == true);
        self.facts.insert(name.clone(), facts);
        self.nodes.insert(name, node);
    }

    /// The labels a tenant sees on the node.
    pub fn vlabels(&self, node: &str) -> &BTreeMap<String, String> {
        &self.vl[node]
    }

    fn taints(&self, node: &str) -> &[Taint] {
        &self.facts[node].1
    }

    fn taints_of(n: &Value) -> Vec<Taint> {
        let mut t: Vec<Taint> = arr(&n["spec"]["taints"])
            .iter()
            .filter(|t| !t["key"].as_str().unwrap().starts_with("tenancy.kplex.io/"))
            .map(|t| Taint { key: s(&t["key"]), value: t["value"].as_str().unwrap_or("").into(), effect: s(&t["effect"]) })
            .collect();
        let ready = arr(&n["status"]["conditions"]).iter().find(|c| c["type"] == "Ready").map(|c| s(&c["status"]));
        let mut synth = Vec::new();
        match ready.as_deref() {
            Some("True") => {}
            Some("False") => synth.push("node.kubernetes.io/not-ready"),
            _ => synth.push("node.kubernetes.io/unreachable"),
        }
        if n["spec"]["unschedulable"] == true {
            synth.push("node.kubernetes.io/unschedulable");
        }
        for k in synth {
            if !t.iter().any(|x| x.key == k) {
                t.push(Taint { key: k.into(), value: String::new(), effect: "NoSchedule".into() });
            }
        }
        t
    }

    /// Names of the nodes NodeAffinity's PreFilter keeps, when every term pins names.
    fn prefilter_names(pod: &Value) -> Option<BTreeSet<String>> {
        let terms = arr(&pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]);
        if terms.is_empty() {
            return None;
        }
        let mut all = BTreeSet::new();
        for t in terms {
            let pinned: Vec<String> =
                arr(&t["matchFields"]).iter().filter(|f| f["key"] == "metadata.name" && f["operator"] == "In").map(|f| s(&f["values"][0])).collect();
            if pinned.is_empty() {
                return None;
            }
            if pinned.iter().all(|p| *p == pinned[0]) {
                all.insert(pinned[0].clone());
            }
        }
        Some(all)
    }

    pub fn ports_of(spec: &Value) -> Vec<(String, String, i64)> {
        let sidecars = arr(&spec["initContainers"]).iter().filter(|c| c["restartPolicy"] == "Always");
        sidecars
            .chain(arr(&spec["containers"]))
            .flat_map(|c| arr(&c["ports"]))
            .filter(|p| p["hostPort"].as_i64().unwrap_or(0) > 0)
            .map(|p| {
                (p["hostIP"].as_str().unwrap_or("0.0.0.0").to_string(), p["protocol"].as_str().unwrap_or("TCP").to_string(), p["hostPort"].as_i64().unwrap())
            })
            .collect()
    }

    fn tenant_pods<'a>(&'a self, tenant: &'a str) -> impl Iterator<Item = &'a BPod> {
        self.pods.iter().filter(move |p| p.tenant.as_deref() == Some(tenant) && self.nodes.contains_key(&p.node))
    }

    /// Whether `term` (of a pod in namespace `term_ns`) selects a pod in `ns` with `labels`;
    /// `ns_labels` are the labels of `ns` (namespace selectors).
    fn term_selects(&self, term: &Value, term_ns: &str, ns: &str, labels: &BTreeMap<String, String>) -> bool {
        let listed = arr(&term["namespaces"]);
        let nsel = &term["namespaceSelector"];
        let no_labels = BTreeMap::new();
        let ns_ok = if listed.is_empty() && nsel.is_null() {
            ns == term_ns
        } else {
            listed.iter().any(|n| n == ns) || (!nsel.is_null() && label_selector_ok(nsel, self.namespaces.get(ns).unwrap_or(&no_labels)))
        };
        ns_ok && label_selector_ok(&term["labelSelector"], labels)
    }
}

/// What the brute force concludes for a pod.
#[derive(Debug)]
pub struct Expectation {
    pub feasible: BTreeSet<String>,
    /// The FailedScheduling message when nothing fits (quota refusals: its start; the amounts
    /// are not re-derived here).
    pub message: Option<String>,
    /// The preemption part that ends the message.
    pub suffix: String,
    pub quota_refused: bool,
}

fn histogram(counts: &BTreeMap<String, usize>) -> String {
    let mut v: Vec<String> = counts.iter().map(|(r, c)| format!("{c} {r}")).collect();
    v.sort();
    v.join(", ")
}

mod filters;
pub use filters::expect;
