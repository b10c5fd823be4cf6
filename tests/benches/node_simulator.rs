//! The node simulator at scale (issue 5: 1,000 nodes and 10,000+ pods on a 2-core machine).
//! Run as `./hack/bench.sh node_simulator` (release build); knobs: BENCH_NODES (default 1000),
//! BENCH_PODS (10000), BENCH_IDLE_SECS (30).
//!
//! Starts etcd, a tenant master as the super cluster and `kplex node-simulator --nodes N`;
//! creates the pods with `spec.nodeName` spread over the nodes (32 creates in flight), waits
//! until all are Running, measures the simulator's CPU and memory while they run (leases
//! renewing), then deletes them all and waits until they are gone.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kplex_e2e::bench::{cpu_secs, pss_private_kib, rss_kib};
use kplex_e2e::{node_simulator, Etcd, TenantMaster};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

fn arg(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn count(pods: &Api<Pod>, fields: &str) -> usize {
    let lp = ListParams::default().fields(fields);
    pods.list_metadata(&lp).await.map(|l| l.items.len()).unwrap_or(usize::MAX)
}

fn main() {
    let n_nodes = arg("BENCH_NODES", 1000) as usize;
    let n_pods = arg("BENCH_PODS", 10000) as usize;
    let idle = Duration::from_secs(arg("BENCH_IDLE_SECS", 30));
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "super", dir.path(), &["--etcd-compaction-interval", "0"]);
    let t0 = Instant::now();
    let sim = node_simulator(&tm, &["--nodes", &n_nodes.to_string(), "--max-concurrent-writes", "32"]);
    let pid = sim.pid().unwrap();
    let tm_pid = tm.pid().unwrap();
    println!("{n_nodes} nodes registered in {:.1} s ({})", t0.elapsed().as_secs_f64(), sim.ready_line);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let client = tm.client().await;
        let nodes: Vec<String> = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
            .list_metadata(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        assert_eq!(nodes.len(), n_nodes);
        tm.kubectl(&["create", "namespace", "bench"]).must();
        while !tm.kubectl(&["-n", "bench", "get", "sa", "default"]).ok {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), "bench");
        let all: Api<Pod> = Api::all(client.clone());
        let (cpu0, tm0) = (cpu_secs(pid), cpu_secs(tm_pid));
        let t1 = Instant::now();
        futures::stream::iter(0..n_pods)
            .map(|i| {
                let pods = pods.clone();
                let node = nodes[i % nodes.len()].clone();
                async move {
                    let p: Pod = serde_json::from_value(serde_json::json!({
                        "metadata": {"name": format!("p-{i}")},
                        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx",
                                  "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
                    }))
                    .unwrap();
                    pods.create(&PostParams::default(), &p).await.map(|_| ())
                }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<()>>()
            .await
            .unwrap();
        let created = t1.elapsed();
        loop {
            let running = count(&all, "status.phase=Running").await;
            if running == n_pods {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let all_running = t1.elapsed();
        let (cpu1, tm1) = (cpu_secs(pid), cpu_secs(tm_pid));
        println!(
            "{n_pods} pods: created in {:.1} s ({:.0}/s), all Running after {:.1} s; CPU for the ramp: simulator {:.1} s, tenant master {:.1} s",
            created.as_secs_f64(),
            n_pods as f64 / created.as_secs_f64(),
            all_running.as_secs_f64(),
            cpu1 - cpu0,
            tm1 - tm0
        );
        let rss = rss_kib(pid);
        let c0 = cpu_secs(pid);
        tokio::time::sleep(idle).await;
        let c1 = cpu_secs(pid);
        println!(
            "steady state over {:.0} s ({n_nodes} leases renewing every 10 s): simulator {:.1}% of one core, RSS {:.1} MiB ({:.1} KiB per pod and node)",
            idle.as_secs_f64(),
            100.0 * (c1 - c0) / idle.as_secs_f64(),
            rss as f64 / 1024.0,
            rss as f64 / (n_pods + n_nodes) as f64
        );
        let (tm_pss, tm_private) = pss_private_kib(tm_pid);
        println!(
            "tenant master (the super cluster's API) holding {n_nodes} nodes, {n_pods} pods and their events: RSS {:.1} MiB, private {:.1} MiB ({:.1} KiB per pod)",
            rss_kib(tm_pid) as f64 / 1024.0,
            tm_private as f64 / 1024.0,
            tm_private as f64 / n_pods as f64
        );
        let _ = tm_pss;
        // One DELETE per pod, 32 in flight (as the syncer deletes), then wait until the
        // simulator has confirmed every deletion.
        let (c2, tm2) = (cpu_secs(pid), cpu_secs(tm_pid));
        let t2 = Instant::now();
        futures::stream::iter(0..n_pods)
            .map(|i| {
                let pods = pods.clone();
                async move { pods.delete(&format!("p-{i}"), &DeleteParams::default()).await.map(|_| ()) }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<()>>()
            .await
            .unwrap();
        let requested = t2.elapsed();
        loop {
            if count(&all, "").await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!(
            "{n_pods} pods deleted (requested in {:.1} s, all confirmed by the simulator after {:.1} s); CPU: simulator {:.1} s, tenant master {:.1} s",
            requested.as_secs_f64(),
            t2.elapsed().as_secs_f64(),
            cpu_secs(pid) - c2,
            cpu_secs(tm_pid) - tm2
        );
        let _ = all.list_metadata(&ListParams::default()).await;
    });
    drop(sim);
}
