//! Node pools: which simulated nodes exist, with which labels, taints and capacity.
//!
//! Without a config file the layout is derived from `--nodes N` (see [`default_pools`]): a
//! general-purpose pool, a high-memory pool, an arm64 pool and a GPU pool tainted
//! `nvidia.com/gpu=present:NoSchedule`, spread over three zones. A YAML or JSON file
//! (`--config`) describes pools explicitly:
//!
//! ```yaml
//! region: region-1
//! zones: [zone-a, zone-b, zone-c]
//! pools:
//! - name: general
//!   count: 4                  # or `weight: 3` to share --nodes between pools
//!   instanceType: n2-standard-8
//!   cpu: "8"
//!   memory: 32Gi
//! - name: gpu
//!   count: 1
//!   instanceType: a2-highgpu-1g
//!   cpu: "12"
//!   memory: 85Gi
//!   gpus: 1
//!   taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::quantity;

/// One pool of identical nodes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pool {
    /// Short name, part of the node names (`<prefix>-<pool>-<i>`) and of the `kplex.io/node-pool` label.
    pub name: String,
    /// A fixed number of nodes.
    #[serde(default)]
    pub count: Option<usize>,
    /// A share of the nodes left after the fixed counts (default 1 when `count` is not given).
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    /// `amd64` or `arm64`.
    #[serde(default = "default_arch")]
    pub arch: String,
    #[serde(default = "default_cpu")]
    pub cpu: String,
    #[serde(default = "default_memory")]
    pub memory: String,
    #[serde(default = "default_pods")]
    pub pods: u32,
    #[serde(default = "default_storage")]
    pub ephemeral_storage: String,
    /// `nvidia.com/gpu` capacity.
    #[serde(default)]
    pub gpus: u32,
    /// Extra node labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Node taints (`{key, value, effect}`).
    #[serde(default)]
    pub taints: Vec<Taint>,
}

/// A node taint as in `node.spec.taints`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: String,
    pub effect: String,
}

fn default_instance_type() -> String {
    "n2-standard-8".into()
}
fn default_arch() -> String {
    "amd64".into()
}
fn default_cpu() -> String {
    "8".into()
}
fn default_memory() -> String {
    "32Gi".into()
}
fn default_pods() -> u32 {
    110
}
fn default_storage() -> String {
    "100Gi".into()
}

/// The layout file: region, zones and pools.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Layout {
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default = "default_zones")]
    pub zones: Vec<String>,
    pub pools: Vec<Pool>,
}

fn default_region() -> String {
    "region-1".into()
}
fn default_zones() -> Vec<String> {
    vec!["zone-a".into(), "zone-b".into(), "zone-c".into()]
}

/// A pool of `count` nodes; `size` is (cpu, memory, ephemeral storage).
fn pool(name: &str, count: usize, instance_type: &str, arch: &str, size: (&str, &str, &str)) -> Pool {
    let (cpu, memory, storage) = size;
    Pool {
        name: name.into(),
        count: Some(count),
        weight: None,
        instance_type: instance_type.into(),
        arch: arch.into(),
        cpu: cpu.into(),
        memory: memory.into(),
        pods: 110,
        ephemeral_storage: storage.into(),
        gpus: 0,
        labels: BTreeMap::new(),
        taints: Vec::new(),
    }
}

/// The layout used when only `--nodes N` is given: about 10% GPU nodes (at least one from two
/// nodes on), 20% high-memory nodes (from three on), a sixth arm64 nodes (from six on), the
/// rest general purpose, each pool spread round-robin over three zones.
pub fn default_pools(n: usize) -> Layout {
    let gpu = if n >= 2 { (n / 10).max(1) } else { 0 };
    let highmem = if n >= 3 { (n / 5).max(1) } else { 0 };
    let arm = n / 6;
    let general = n - gpu - highmem - arm;
    let mut gpu_pool = pool("gpu", gpu, "a2-highgpu-1g", "amd64", ("12", "85Gi", "200Gi"));
    gpu_pool.gpus = 1;
    gpu_pool.taints.push(Taint { key: "nvidia.com/gpu".into(), value: "present".into(), effect: "NoSchedule".into() });
    gpu_pool.labels.insert("nvidia.com/gpu.present".into(), "true".into());
    let pools = vec![
        pool("general", general, "n2-standard-8", "amd64", ("8", "32Gi", "100Gi")),
        pool("highmem", highmem, "n2-highmem-16", "amd64", ("16", "128Gi", "200Gi")),
        gpu_pool,
        pool("arm", arm, "t2a-standard-8", "arm64", ("8", "32Gi", "100Gi")),
    ];
    // Empty pools stay in the list so that every pool keeps its position (and its zones).
    Layout { region: default_region(), zones: default_zones(), pools }
}

/// Errors in a layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("parsing {0}: {1}")]
    Parse(String, String),
    #[error("invalid layout: {0}")]
    Invalid(String),
}

impl Layout {
    /// Reads a YAML or JSON layout file (JSON is YAML).
    pub fn from_file(path: &std::path::Path) -> Result<Layout, LayoutError> {
        let text = std::fs::read_to_string(path).map_err(|e| LayoutError::Read(path.display().to_string(), e))?;
        Layout::parse(&text).map_err(|e| match e {
            LayoutError::Parse(_, m) => LayoutError::Parse(path.display().to_string(), m),
            e => e,
        })
    }

    /// Parses a YAML or JSON layout.
    pub fn parse(text: &str) -> Result<Layout, LayoutError> {
        let l: Layout = serde_yaml_ng::from_str(text).map_err(|e| LayoutError::Parse(String::new(), e.to_string()))?;
        l.validate()?;
        Ok(l)
    }

    fn validate(&self) -> Result<(), LayoutError> {
        let bad = |m: String| Err(LayoutError::Invalid(m));
        if self.zones.is_empty() {
            return bad("at least one zone is needed".into());
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.pools {
            if !is_dns_label(&p.name) {
                return bad(format!("pool name {:?} must be a DNS label", p.name));
            }
            if !names.insert(&p.name) {
                return bad(format!("pool {:?} is given twice", p.name));
            }
            if p.count.is_some() && p.weight.is_some() {
                return bad(format!("pool {:?}: give count or weight, not both", p.name));
            }
            if p.arch != "amd64" && p.arch != "arm64" {
                return bad(format!("pool {:?}: arch must be amd64 or arm64", p.name));
            }
            if quantity::parse_millis(&p.cpu).is_none() || quantity::parse_millis(&p.memory).is_none() || quantity::parse_millis(&p.ephemeral_storage).is_none()
            {
                return bad(format!("pool {:?}: cpu, memory and ephemeralStorage must be quantities", p.name));
            }
            for t in &p.taints {
                if !matches!(t.effect.as_str(), "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
                    return bad(format!("pool {:?}: taint effect {:?} is not NoSchedule, PreferNoSchedule or NoExecute", p.name, t.effect));
                }
            }
        }
        Ok(())
    }

    /// Node counts per pool: fixed counts as given, `total` minus those shared by weight
    /// (largest remainder). `total` None: the sum of the fixed counts plus one per weighted pool.
    pub fn counts(&self, total: Option<usize>) -> Result<Vec<usize>, LayoutError> {
        let fixed: usize = self.pools.iter().filter_map(|p| p.count).sum();
        let weights: Vec<u64> = self.pools.iter().map(|p| if p.count.is_some() { 0 } else { p.weight.unwrap_or(1) as u64 }).collect();
        let wsum: u64 = weights.iter().sum();
        let total = total.unwrap_or(fixed + if wsum > 0 { weights.iter().filter(|w| **w > 0).count() } else { 0 });
        if total < fixed {
            return Err(LayoutError::Invalid(format!("--nodes {total} is less than the pools' fixed counts ({fixed})")));
        }
        let rest = (total - fixed) as u64;
        let mut counts: Vec<usize> = self.pools.iter().map(|p| p.count.unwrap_or(0)).collect();
        if wsum == 0 {
            if rest > 0 {
                return Err(LayoutError::Invalid(format!("--nodes {total} but the pools' counts add up to {fixed} and no pool has a weight")));
            }
            return Ok(counts);
        }
        let mut remainders = Vec::new();
        let mut given = 0u64;
        for (i, w) in weights.iter().enumerate() {
            if *w == 0 {
                continue;
            }
            let exact = rest * w;
            counts[i] += (exact / wsum) as usize;
            given += exact / wsum;
            remainders.push((exact % wsum, std::cmp::Reverse(i)));
        }
        remainders.sort();
        for (_, std::cmp::Reverse(i)) in remainders.into_iter().rev().take((rest - given) as usize) {
            counts[i] += 1;
        }
        Ok(counts)
    }

    /// Every node of the layout, in a stable order (pool by pool).
    pub fn plan(&self, prefix: &str, total: Option<usize>) -> Result<Vec<NodePlan>, LayoutError> {
        let counts = self.counts(total)?;
        let mut out = Vec::new();
        for (pi, (p, &n)) in self.pools.iter().zip(&counts).enumerate() {
            for j in 0..n {
                let name = format!("{prefix}-{}-{j}", p.name);
                if name.len() > 253 {
                    return Err(LayoutError::Invalid(format!("node name {name:?} is too long")));
                }
                // Round-robin within the pool, each pool starting one zone further: a node keeps
                // its zone when --nodes changes.
                let zone = self.zones[(j + pi) % self.zones.len()].clone();
                out.push(NodePlan { name, pool: p.clone(), zone, region: self.region.clone() });
            }
        }
        Ok(out)
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') && !s.starts_with('-') && !s.ends_with('-')
}

/// One node to simulate.
#[derive(Debug, Clone)]
pub struct NodePlan {
    pub name: String,
    pub pool: Pool,
    pub zone: String,
    pub region: String,
}

impl NodePlan {
    /// Labels as the kubelet (hostname, os, arch, their beta forms) and a cloud provider's
    /// node controller (instance type, zone, region, their deprecated forms) set them.
    pub fn labels(&self) -> Value {
        let p = &self.pool;
        let mut l = serde_json::Map::new();
        let mut put = |k: &str, v: &str| {
            l.insert(k.to_string(), json!(v));
        };
        put("beta.kubernetes.io/arch", &p.arch);
        put("beta.kubernetes.io/instance-type", &p.instance_type);
        put("beta.kubernetes.io/os", "linux");
        put("failure-domain.beta.kubernetes.io/region", &self.region);
        put("failure-domain.beta.kubernetes.io/zone", &self.zone);
        put("kubernetes.io/arch", &p.arch);
        put("kubernetes.io/hostname", &self.name);
        put("kubernetes.io/os", "linux");
        put("node.kubernetes.io/instance-type", &p.instance_type);
        put("topology.kubernetes.io/region", &self.region);
        put("topology.kubernetes.io/zone", &self.zone);
        put("kplex.io/node-pool", &p.name);
        for (k, v) in &p.labels {
            put(k, v);
        }
        Value::Object(l)
    }

    /// `spec.taints` of the pool.
    pub fn taints(&self) -> Vec<Value> {
        self.pool.taints.iter().map(|t| json!({"key": t.key, "value": t.value, "effect": t.effect})).collect()
    }

    /// Capacity and allocatable as a kubelet computes them: the machine's memory less what the
    /// kernel keeps (about 2%), allocatable memory less the 100Mi hard eviction threshold,
    /// allocatable ephemeral storage less the 10% nodefs threshold, hugepages 0.
    pub fn resources(&self) -> (Value, Value) {
        let p = &self.pool;
        let mem_ki = quantity::parse_millis(&p.memory).unwrap_or(0) / 1000 / 1024;
        let mem_cap_ki = mem_ki - mem_ki / 50;
        let disk_ki = quantity::parse_millis(&p.ephemeral_storage).unwrap_or(0) / 1000 / 1024;
        let disk_cap_ki = disk_ki - disk_ki / 30;
        let cpu = quantity::canonical_cpu(&p.cpu);
        let mut cap = json!({
            "cpu": cpu,
            "ephemeral-storage": format!("{disk_cap_ki}Ki"),
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
            "memory": format!("{mem_cap_ki}Ki"),
            "pods": p.pods.to_string(),
        });
        let mut alloc = json!({
            "cpu": cpu,
            "ephemeral-storage": (disk_cap_ki * 1024 * 9 / 10).to_string(),
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
            "memory": format!("{}Ki", mem_cap_ki.saturating_sub(100 * 1024)),
            "pods": p.pods.to_string(),
        });
        if p.gpus > 0 {
            cap["nvidia.com/gpu"] = json!(p.gpus.to_string());
            alloc["nvidia.com/gpu"] = json!(p.gpus.to_string());
        }
        (cap, alloc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layouts_have_zones_types_and_a_gpu_pool() {
        for n in [2usize, 3, 6, 10, 500, 1000] {
            let plan = default_pools(n).plan("sim", Some(n)).unwrap();
            assert_eq!(plan.len(), n);
            let types: std::collections::HashSet<_> = plan.iter().map(|p| p.pool.instance_type.clone()).collect();
            assert!(types.len() >= 2, "{n}: {types:?}");
            assert!(plan.iter().any(|p| p.pool.gpus > 0 && !p.pool.taints.is_empty()), "{n}");
            if n >= 3 {
                let zones: std::collections::HashSet<_> = plan.iter().map(|p| p.zone.clone()).collect();
                assert_eq!(zones.len(), 3);
            }
        }
        let one = default_pools(1).plan("sim", Some(1)).unwrap();
        assert_eq!(one[0].name, "sim-general-0");
        let six = default_pools(6).plan("n", Some(6)).unwrap();
        let names: Vec<_> = six.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["n-general-0", "n-general-1", "n-general-2", "n-highmem-0", "n-gpu-0", "n-arm-0"]);
        assert_eq!(six[5].labels()["kubernetes.io/arch"], "arm64");
        let zones: Vec<_> = six.iter().map(|p| p.zone.as_str()).collect();
        assert_eq!(zones, ["zone-a", "zone-b", "zone-c", "zone-b", "zone-c", "zone-a"]);
    }

    #[test]
    fn weights_share_the_rest_and_counts_are_fixed() {
        let l = Layout::parse("pools:\n- {name: a, weight: 2}\n- {name: b, weight: 1}\n- {name: c, count: 2}\n").unwrap();
        assert_eq!(l.counts(Some(11)).unwrap(), vec![6, 3, 2]);
        assert_eq!(l.counts(Some(12)).unwrap(), vec![7, 3, 2]);
        assert_eq!(l.counts(None).unwrap(), vec![1, 1, 2]);
        assert!(l.counts(Some(1)).is_err());
        let fixed = Layout::parse(r#"{"pools": [{"name": "x", "count": 3}]}"#).unwrap();
        assert_eq!(fixed.counts(None).unwrap(), vec![3]);
        assert!(fixed.counts(Some(4)).is_err());
    }

    #[test]
    fn bad_layouts_are_rejected() {
        assert!(Layout::parse("pools: [{name: A}]").is_err());
        assert!(Layout::parse("pools: [{name: a, arch: mips}]").is_err());
        assert!(Layout::parse("pools: [{name: a, cpu: lots}]").is_err());
        assert!(Layout::parse("pools: [{name: a}, {name: a}]").is_err());
        assert!(Layout::parse("pools: [{name: a, count: 1, weight: 1}]").is_err());
        assert!(Layout::parse("pools: [{name: a, taints: [{key: k, effect: Sometimes}]}]").is_err());
        assert!(Layout::parse("pools: [{name: a, colour: red}]").is_err());
        assert!(Layout::parse("zones: []\npools: []").is_err());
    }

    #[test]
    fn resources_look_like_a_kubelet_report() {
        let plan = default_pools(10).plan("s", Some(10)).unwrap();
        let gpu = plan.iter().find(|p| p.pool.name == "gpu").unwrap();
        let (cap, alloc) = gpu.resources();
        assert_eq!(cap["cpu"], "12");
        assert_eq!(cap["nvidia.com/gpu"], "1");
        assert_eq!(alloc["nvidia.com/gpu"], "1");
        assert_eq!(cap["pods"], "110");
        assert_eq!(cap["hugepages-2Mi"], "0");
        let cap_mem = quantity::parse_millis(cap["memory"].as_str().unwrap()).unwrap();
        let alloc_mem = quantity::parse_millis(alloc["memory"].as_str().unwrap()).unwrap();
        assert_eq!(cap_mem - alloc_mem, 100 * 1024 * 1024 * 1000);
        assert!(alloc["ephemeral-storage"].as_str().unwrap().chars().all(|c| c.is_ascii_digit()));
        assert_eq!(gpu.taints(), vec![json!({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"})]);
    }
}
