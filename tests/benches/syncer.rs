//! Syncer benchmarks (issue 7). Run as `./hack/bench.sh syncer` (release binary) or
//! `cargo bench -p kplex-e2e --bench syncer`.
//!
//! Scale: BENCH_TENANTS tenants (default 100) create BENCH_PODS pods each (default 100), at most
//! BENCH_INFLIGHT creates in flight overall (default 32). Reports p50/p99 of tenant create ->
//! super pod created (first seen by a watch on the super cluster) and of tenant create -> tenant
//! pod Running (first seen by a watch on the tenant), pods per second, and the syncer's RSS.
//!
//! Fairness (fresh cluster): tenant B creates one pod per second, first while tenant A is idle
//! (BENCH_TRICKLE_SECS, default 15), then while A creates BENCH_BURST pods at once (default
//! 10,000; 64 creates in flight) until A's burst is in the super cluster. Reports B's p50/p99
//! (create -> super created) in both phases and their ratio.
//!
//! BENCH_SCENARIO=scale|fairness runs one of them (default both). Everything runs on this machine:
//! the numbers include the CPU contention of etcd, the super cluster's API, the node simulator,
//! the super-scheduler and every tenant master.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kplex_e2e::bench::rss_kib;
use kplex_e2e::{free_port, kubectl_with, node_simulator, Etcd, Process, TenantMaster};
use kube::api::{Api, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use parking_lot::Mutex;
use serde_json::json;

fn arg(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/crds/tenancy.kplex.io_virtualclusters.yaml");

struct Env {
    _etcd: Etcd,
    sup: TenantMaster,
    _nodes: Process,
    _sched: Process,
    syncer: Process,
    syncer_addr: String,
    dir: tempfile::TempDir,
    tenants: Vec<(TenantMaster, String)>,
}

impl Env {
    fn start(nodes: u64) -> Env {
        let etcd = Etcd::start();
        let dir = tempfile::tempdir().unwrap();
        let sup = TenantMaster::start(&etcd, "super", &dir.path().join("super"), &[]);
        let skc = sup.kubeconfig.display().to_string();
        sup.kubectl(&["apply", "-f", CRD]).must();
        sup.kubectl(&["wait", "--for=condition=established", "crd/virtualclusters.tenancy.kplex.io", "--timeout=30s"]).must();
        let nodes = node_simulator(&sup, &["--nodes", &nodes.to_string(), "--pod-start-delay", "200ms", "--metrics-listen", "127.0.0.1:0"]);
        let sched_addr = format!("127.0.0.1:{}", free_port());
        let sched = Process::start(&["super-scheduler", "--kubeconfig", &skc, "--listen", &sched_addr, "--metrics-listen", "127.0.0.1:0"]);
        let pki = dir.path().join("syncer-pki");
        kplex_syncer::pki::SyncerPki::load_or_create(&pki, &[]).unwrap();
        let syncer_addr = format!("127.0.0.1:{}", free_port());
        let syncer = Process::start(&[
            "syncer",
            "--super-kubeconfig",
            &skc,
            "--scheduler",
            &format!("http://{sched_addr}"),
            "--listen",
            &syncer_addr,
            "--pki-dir",
            &pki.display().to_string(),
            "--metrics-listen",
            "127.0.0.1:0",
        ]);
        Env { _etcd: etcd, sup, _nodes: nodes, _sched: sched, syncer, syncer_addr, dir, tenants: Vec::new() }
    }

    fn add_tenant(&mut self, name: &str) {
        let yaml = format!("apiVersion: tenancy.kplex.io/v1alpha1\nkind: VirtualCluster\nmetadata:\n  name: {name}\nspec: {{}}\n");
        let out = kubectl_with("kubectl", &self.sup.kubeconfig, &["apply", "-f", "-"], Some(&yaml));
        assert!(out.ok, "{}", out.stderr);
        let out = self.sup.kubectl(&["get", "virtualcluster", name, "-o", "jsonpath={.metadata.uid}"]).must();
        let uid = out.trim().to_string();
        let certs = self.dir.path().join(format!("{name}-syncer"));
        kplex_syncer::pki::issue_tenant_client(&self.dir.path().join("syncer-pki"), name, &uid, &certs).unwrap();
        let p = |f: &str| certs.join(f).display().to_string();
        let endpoint = format!("https://{}", self.syncer_addr);
        let tm = TenantMaster::start(
            &self._etcd,
            name,
            &self.dir.path().join(name),
            &["--syncer-endpoint", &endpoint, "--syncer-ca", &p("ca.crt"), "--syncer-cert", &p("tls.crt"), "--syncer-key", &p("tls.key")],
        );
        self.tenants.push((tm, uid));
    }
}

type Seen = Arc<Mutex<HashMap<(String, String), Instant>>>;

/// Records when each super pod (by super namespace, name) is first seen.
fn watch_super(client: kube::Client) -> Seen {
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    tokio::spawn(async move {
        let api: Api<Pod> = Api::all(client);
        let mut w = watcher::watcher(api, watcher::Config::default().labels("tenancy.kplex.io/tenant")).default_backoff().boxed();
        while let Some(ev) = w.next().await {
            if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev {
                let k = (p.metadata.namespace.clone().unwrap_or_default(), p.metadata.name.clone().unwrap_or_default());
                s2.lock().entry(k).or_insert_with(Instant::now);
            }
        }
    });
    seen
}

/// Records when each tenant pod is first Running.
fn watch_running(client: kube::Client) -> Seen {
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    tokio::spawn(async move {
        let api: Api<Pod> = Api::namespaced(client, "default");
        let mut w = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
        while let Some(ev) = w.next().await {
            if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev {
                if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                    let k = ("default".to_string(), p.metadata.name.clone().unwrap_or_default());
                    s2.lock().entry(k).or_insert_with(Instant::now);
                }
            }
        }
    });
    seen
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})).unwrap()
}

/// Creates a pod, retrying while the tenant's default service account does not exist yet.
async fn create(api: &Api<Pod>, name: &str) -> Instant {
    loop {
        match api.create(&PostParams::default(), &pod(name)).await {
            Ok(_) => return Instant::now(),
            Err(e) => {
                eprintln!("create {name}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn wait_for(seen: &Seen, keys: &[(String, String)], limit: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        let n = {
            let s = seen.lock();
            keys.iter().filter(|k| s.contains_key(*k)).count()
        };
        if n == keys.len() {
            return true;
        }
        if t0.elapsed() > limit {
            eprintln!("only {n} of {} after {:?}", keys.len(), limit);
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn scale() {
    let tenants = arg("BENCH_TENANTS", 100) as usize;
    let pods = arg("BENCH_PODS", 100) as usize;
    let inflight = arg("BENCH_INFLIGHT", 32) as usize;
    let total = tenants * pods;
    // A tenth of the simulator's nodes are tainted GPU nodes, 110 pods per node: room to spare.
    let mut env = Env::start((total as u64).div_ceil(80).max(3));
    let t0 = Instant::now();
    for i in 0..tenants {
        env.add_tenant(&format!("t{i}"));
    }
    println!("scale: {tenants} tenants started in {:.1} s", t0.elapsed().as_secs_f64());
    let supc = env.sup.client().await;
    let super_seen = watch_super(supc);
    let mut running = Vec::new();
    let mut apis = Vec::new();
    for (tm, _) in &env.tenants {
        let c = tm.client().await;
        running.push(watch_running(c.clone()));
        apis.push(Api::<Pod>::namespaced(c, "default"));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss0 = rss_kib(env.syncer.pid().unwrap());
    let sem = Arc::new(tokio::sync::Semaphore::new(inflight));
    let created: Arc<Mutex<Vec<(usize, String, Instant)>>> = Arc::default();
    let start = Instant::now();
    let mut tasks = Vec::new();
    // Interleave tenants so every tenant creates from the start.
    for j in 0..pods {
        for (i, api) in apis.iter().enumerate() {
            let (api, sem, created) = (api.clone(), sem.clone(), created.clone());
            let permit = sem.acquire_owned().await.unwrap();
            tasks.push(tokio::spawn(async move {
                let name = format!("p{j}");
                let at = create(&api, &name).await;
                created.lock().push((i, name, at));
                drop(permit);
            }));
        }
    }
    futures::future::join_all(tasks).await;
    let create_secs = start.elapsed().as_secs_f64();
    let created = created.lock().clone();
    let sns: Vec<String> = env.tenants.iter().map(|(tm, uid)| kplex_syncer::naming::super_namespace(&tm.name, uid, "default")).collect();
    let keys: Vec<(String, String)> = created.iter().map(|(i, n, _)| (sns[*i].clone(), n.clone())).collect();
    let mut peak = rss0;
    let pid = env.syncer.pid().unwrap();
    let sampler = {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d2 = done.clone();
        let h = tokio::spawn(async move {
            let mut peak = 0;
            while !d2.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            peak
        });
        (done, h)
    };
    let ok = wait_for(&super_seen, &keys, Duration::from_secs(600)).await;
    let all_super = Instant::now();
    for (i, r) in running.iter().enumerate() {
        let k: Vec<(String, String)> = created.iter().filter(|c| c.0 == i).map(|c| ("default".to_string(), c.1.clone())).collect();
        wait_for(r, &k, Duration::from_secs(300)).await;
    }
    sampler.0.store(true, std::sync::atomic::Ordering::Relaxed);
    peak = peak.max(sampler.1.await.unwrap());
    let s = super_seen.lock().clone();
    let mut to_super: Vec<f64> =
        created.iter().filter_map(|(i, n, at)| s.get(&(sns[*i].clone(), n.clone())).map(|t| t.saturating_duration_since(*at).as_secs_f64() * 1000.0)).collect();
    let mut to_running: Vec<f64> = Vec::new();
    for (i, n, at) in &created {
        if let Some(t) = running[*i].lock().get(&("default".to_string(), n.clone())) {
            to_running.push(t.saturating_duration_since(*at).as_secs_f64() * 1000.0);
        }
    }
    let span = all_super.duration_since(start).as_secs_f64();
    println!("## syncer: {tenants} tenants x {pods} pods ({} pods, {inflight} creates in flight){}", total, if ok { "" } else { " INCOMPLETE" });
    println!("creates took {create_secs:.1} s ({:.0} creates/s)", total as f64 / create_secs);
    println!("tenant create -> super pod created: p50 {:.0} ms, p99 {:.0} ms ({} pods)", pct(&mut to_super, 0.5), pct(&mut to_super, 0.99), to_super.len());
    println!(
        "tenant create -> tenant pod Running: p50 {:.0} ms, p99 {:.0} ms ({} pods)",
        pct(&mut to_running, 0.5),
        pct(&mut to_running, 0.99),
        to_running.len()
    );
    println!("throughput: {:.0} pods/s (first create to last super pod, {span:.1} s)", total as f64 / span);
    println!("syncer RSS: {:.1} MiB before, {:.1} MiB peak, {:.1} MiB after", rss0 as f64 / 1024.0, peak as f64 / 1024.0, rss_kib(pid) as f64 / 1024.0);
}

async fn fairness() {
    let burst = arg("BENCH_BURST", 10_000) as usize;
    let trickle = arg("BENCH_TRICKLE_SECS", 15) as usize;
    let mut env = Env::start((burst as u64 + 200).div_ceil(80).max(3));
    env.add_tenant("a");
    env.add_tenant("b");
    let seen = watch_super(env.sup.client().await);
    let a = Api::<Pod>::namespaced(env.tenants[0].0.client().await, "default");
    let b = Api::<Pod>::namespaced(env.tenants[1].0.client().await, "default");
    let (sns_a, sns_b) = {
        let n = |i: usize| kplex_syncer::naming::super_namespace(&env.tenants[i].0.name, &env.tenants[i].1, "default");
        (n(0), n(1))
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Phase 1: A idle.
    let mut idle = Vec::new();
    for i in 0..trickle {
        let name = format!("idle{i}");
        let at = create(&b, &name).await;
        idle.push((name, at));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let keys: Vec<_> = idle.iter().map(|(n, _)| (sns_b.clone(), n.clone())).collect();
    wait_for(&seen, &keys, Duration::from_secs(60)).await;
    // Phase 2: A bursts while B trickles.
    let start = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for j in 0..burst {
        let (a, sem) = (a.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await.unwrap();
            create(&a, &format!("a{j}")).await;
        }));
    }
    let a_keys: Vec<_> = (0..burst).map(|j| (sns_a.clone(), format!("a{j}"))).collect();
    let mut busy = Vec::new();
    let mut i = 0;
    loop {
        let name = format!("busy{i}");
        let at = create(&b, &name).await;
        busy.push((name, at));
        i += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let done = {
            let s = seen.lock();
            a_keys.iter().all(|k| s.contains_key(k))
        };
        if done || start.elapsed() > Duration::from_secs(900) {
            break;
        }
    }
    futures::future::join_all(tasks).await;
    let a_secs = {
        let s = seen.lock();
        a_keys.iter().filter_map(|k| s.get(k)).max().map(|t| t.duration_since(start).as_secs_f64()).unwrap_or(f64::NAN)
    };
    let keys: Vec<_> = busy.iter().map(|(n, _)| (sns_b.clone(), n.clone())).collect();
    wait_for(&seen, &keys, Duration::from_secs(60)).await;
    let lat = |v: &[(String, Instant)]| -> Vec<f64> {
        let s = seen.lock();
        v.iter().filter_map(|(n, at)| s.get(&(sns_b.clone(), n.clone())).map(|t| t.saturating_duration_since(*at).as_secs_f64() * 1000.0)).collect()
    };
    let (mut li, mut lb) = (lat(&idle), lat(&busy));
    let (p99i, p99b) = (pct(&mut li, 0.99), pct(&mut lb, 0.99));
    println!("## syncer fairness: A bursts {burst} pods, B creates 1 pod/s");
    println!("B, A idle:     p50 {:.0} ms, p99 {:.0} ms ({} pods)", pct(&mut li, 0.5), p99i, li.len());
    println!("B, A bursting: p50 {:.0} ms, p99 {:.0} ms ({} pods)", pct(&mut lb, 0.5), p99b, lb.len());
    println!("B p99 ratio busy/idle: {:.2}", p99b / p99i);
    println!("A: {burst} pods in the super cluster {a_secs:.1} s after the burst began ({:.0} pods/s)", burst as f64 / a_secs);
    println!("syncer RSS at the end: {:.1} MiB", rss_kib(env.syncer.pid().unwrap()) as f64 / 1024.0);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let which = std::env::var("BENCH_SCENARIO").unwrap_or_default();
    rt.block_on(async {
        if which.is_empty() || which == "scale" {
            scale().await;
        }
        if which.is_empty() || which == "fairness" {
            fairness().await;
        }
    });
    // The watches of the torn-down clusters are retrying: do not wait for them.
    rt.shutdown_timeout(Duration::from_secs(1));
}
