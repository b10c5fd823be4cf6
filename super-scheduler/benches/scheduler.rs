//! Super-scheduler throughput: 10,000 pending pods of 20 tenants over 1,000 nodes (4 zones, two
//! instance types, a tainted GPU pool), a realistic mix: most pods plain Deployment replicas with
//! requests, some with a zone or instance-type node selector, some with required anti-affinity on
//! the hostname or preferred anti-affinity, some with a zone spread constraint, some GPU pods.
//! Every pod must be placed. Reported: wall time, decisions per second, p50/p99/max per decision,
//! for the core alone and end to end through the gRPC API (batches of 500 on loopback).
//!
//! Run: `./hack/bench.sh scheduler` (or `cargo bench -p kplex-super-scheduler --bench scheduler`).
//! Knobs: BENCH_NODES (1000), BENCH_PODS (10000), BENCH_BATCH (500).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kplex_super_scheduler::node::VirtualNodePolicy;
use kplex_super_scheduler::pod::PodInfo;
use kplex_super_scheduler::proto::super_scheduler_client::SuperSchedulerClient;
use kplex_super_scheduler::proto::{self, decision};
use kplex_super_scheduler::service::{Service, Shared};
use kplex_super_scheduler::state::ClusterState;
use kplex_super_scheduler::{Outcome, PodRequest, Scheduler, SchedulerConfig};
use serde_json::{json, Value};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn nodes(n: usize) -> Vec<k8s_openapi::api::core::v1::Node> {
    (0..n)
        .map(|i| {
            let gpu = i % 20 == 0;
            let itype = if gpu {
                "p3.2xlarge"
            } else if i % 2 == 0 {
                "m5.2xlarge"
            } else {
                "m5.4xlarge"
            };
            let mut alloc = json!({"cpu": if i % 2 == 0 { "8" } else { "16" }, "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"});
            let mut taints = json!([]);
            if gpu {
                alloc["nvidia.com/gpu"] = json!("8");
                taints = json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]);
            }
            let name = format!("node-{i:04}");
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {
                    "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/region": "r1", "topology.kubernetes.io/zone": format!("zone-{}", (b'a' + (i % 4) as u8) as char),
                    "node.kubernetes.io/instance-type": itype}},
                "spec": {"taints": taints},
                "status": {"capacity": alloc, "allocatable": alloc, "conditions": [{"type": "Ready", "status": "True"}]}}))
            .unwrap()
        })
        .collect()
}

/// The i-th pending pod: tenant, JSON.
fn pod(i: usize) -> (String, Value) {
    let tenant = format!("tenant-{:02}", i % 20);
    let app = format!("app-{}", (i / 20) % 25);
    let mut spec = json!({"containers": [{"name": "app", "image": "nginx",
        "resources": {"requests": {"cpu": (["100m", "250m", "500m", "1"][i % 4]), "memory": (["128Mi", "256Mi", "512Mi", "1Gi"][i % 4])}}}],
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]});
    match i % 20 {
        0 | 1 => spec["nodeSelector"] = json!({"topology.kubernetes.io/zone": format!("zone-{}", (b'a' + (i % 4) as u8) as char)}),
        2 => spec["nodeSelector"] = json!({"node.kubernetes.io/instance-type": "m5.4xlarge"}),
        3 => {
            spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "kubernetes.io/hostname"}]}})
        }
        4 | 5 => {
            spec["affinity"] = json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
                "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "kubernetes.io/hostname"}}]}})
        }
        6 => {
            spec["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": app}}}])
        }
        7 if i % 40 == 7 => {
            spec["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = json!("1");
            spec["tolerations"].as_array_mut().unwrap().push(json!({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}));
        }
        _ => {}
    }
    (tenant, json!({"metadata": {"name": format!("{app}-{i}"), "namespace": "default", "uid": format!("uid-{i}"), "labels": {"app": app}}, "spec": spec}))
}

/// CPU time this thread has used (user and system), from /proc (noise-free where the wall clock
/// is not: the machine is shared).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = &stat[stat.rfind(')').map(|i| i + 2).unwrap_or(0)..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn report(what: &str, wall: Duration, mut lat: Vec<Duration>) {
    lat.sort();
    let n = lat.len();
    println!(
        "{what}: {n} pods placed in {:.3} s: {:.0} decisions/s; per decision p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1e6,
        percentile(&lat, 0.99).as_secs_f64() * 1e6,
        lat[n - 1].as_secs_f64() * 1e6
    );
}

fn fresh(n_nodes: usize) -> Scheduler {
    let mut st = ClusterState::new(VirtualNodePolicy::default());
    for n in nodes(n_nodes) {
        st.upsert_node(&n);
    }
    Scheduler::new(st, SchedulerConfig::default())
}

fn core(n_nodes: usize, pods: &[(String, Value)]) {
    let mut sched = fresh(n_nodes);
    // Parsing is part of a decision's cost (the service parses each pod once).
    let bytes: Vec<Vec<u8>> = pods.iter().map(|(_, p)| serde_json::to_vec(p).unwrap()).collect();
    let start = Instant::now();
    let cpu0 = thread_cpu();
    let mut lat = Vec::with_capacity(pods.len());
    let mut parse = Duration::ZERO;
    for ((tenant, _), b) in pods.iter().zip(&bytes) {
        let t = Instant::now();
        let info = PodInfo::from_pod(&serde_json::from_slice(b).unwrap(), None).unwrap();
        parse += t.elapsed();
        let req = PodRequest { tenant: tenant.clone(), pod: info, namespaces: Vec::new(), default_spread_selector: None };
        let outcome = sched.schedule(&req, t);
        lat.push(t.elapsed());
        assert!(matches!(outcome, Outcome::Placed { .. }), "{outcome:?}");
    }
    let wall = start.elapsed();
    let cpu = thread_cpu() - cpu0;
    report("core (in process)", wall, lat);
    println!(
        "  CPU time of the scheduling thread: {:.3} s ({:.1} µs per decision; of the wall time, {:.3} s went to parsing pod JSON)",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / pods.len() as f64,
        parse.as_secs_f64()
    );
}

async fn grpc(n_nodes: usize, pods: &[(String, Value)], batch: usize) {
    let shared = Arc::new(Shared::new(fresh(n_nodes), Default::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = proto::super_scheduler_server::SuperSchedulerServer::new(Service(shared)).max_decoding_message_size(256 << 20);
    tokio::spawn(tonic::transport::Server::builder().add_service(svc).serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));
    let mut client = SuperSchedulerClient::connect(format!("http://{addr}")).await.unwrap().max_decoding_message_size(256 << 20);
    let start = Instant::now();
    let mut lat = Vec::with_capacity(pods.len());
    for chunk in pods.chunks(batch) {
        let req = proto::ScheduleRequest {
            pods: chunk.iter().map(|(t, p)| proto::PodToSchedule { tenant: t.clone(), pod: serde_json::to_vec(p).unwrap(), ..Default::default() }).collect(),
        };
        let t = Instant::now();
        let resp = client.schedule(req).await.unwrap().into_inner();
        let per = t.elapsed() / chunk.len() as u32;
        for d in resp.decisions {
            assert!(matches!(d.result, Some(decision::Result::Placed(_))), "{d:?}");
            lat.push(per);
        }
    }
    report(&format!("gRPC (batches of {batch}; latency = batch time / batch size)"), start.elapsed(), lat);
}

fn main() {
    let n_nodes = env("BENCH_NODES", 1000);
    let n_pods = env("BENCH_PODS", 10000);
    let batch = env("BENCH_BATCH", 500);
    let pods: Vec<(String, Value)> = (0..n_pods).map(pod).collect();
    println!("## super-scheduler: {n_pods} pending pods over {n_nodes} nodes");
    core(n_nodes, &pods);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(grpc(n_nodes, &pods, batch));
}
