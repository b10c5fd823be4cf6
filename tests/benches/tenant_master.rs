//! Tenant master benchmarks (issue 2's performance targets), run as
//! `cargo bench -p kplex-e2e --bench tenant_master` (hack/bench.sh builds the release
//! binary first and sets KPLEX_BIN). Everything is measured in one run against one
//! throwaway etcd, so ratios (ours vs raw etcd) are fair on a noisy machine.
//!
//! Measures:
//! - start to `ready` on an empty prefix (first start, which also creates the tenant's
//!   PKI, and a restart), over several tenants;
//! - idle RSS of a fresh tenant master;
//! - ConfigMap create throughput through the API vs raw etcd puts of the same bytes, with
//!   the same concurrency, interleaved rounds;
//! - LIST of 10,000 pods (served from the watch cache) and single-object GET latency,
//!   reading raw response bytes so client-side decoding is not counted.

use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kplex_e2e::bench::{cpu_secs, rss_kib, spawn_tm};
use kplex_e2e::{free_port, kplex_bin, Etcd};
use kube::api::{Api, PostParams};

/// Requests in flight for the pod creates.
const CONCURRENCY: usize = 32;

fn arg_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// CPU seconds used by (this process, etcd, the tenant master) while `f` runs.
async fn with_cpu<T>(etcd: u32, tm: u32, f: impl std::future::Future<Output = T>) -> (T, [f64; 3]) {
    let me = std::process::id();
    let before = [cpu_secs(me), cpu_secs(etcd), cpu_secs(tm)];
    let out = f.await;
    let after = [cpu_secs(me), cpu_secs(etcd), cpu_secs(tm)];
    (out, [after[0] - before[0], after[1] - before[1], after[2] - before[2]])
}

async fn client(kubeconfig: &std::path::Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// GETs `path` and returns the body's length, without decoding it.
async fn raw_get(c: &kube::Client, path: &str) -> usize {
    let req = http::Request::get(path).body(Vec::<u8>::new()).unwrap();
    let resp = c.send(req.map(Into::into)).await.unwrap();
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    resp.into_body().collect().await.unwrap().to_bytes().len()
}

fn config_map(name: &str, payload: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"bench": "true"}},
        "data": {"payload": payload}
    }))
    .unwrap()
}

fn pod(name: &str, i: usize) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "bench", "labels": {"app": format!("app-{}", i % 50), "tier": "web"}},
        "spec": {
            "nodeName": format!("node-{}", i % 100),
            "containers": [{
                "name": "web", "image": "nginx:1.27",
                "ports": [{"containerPort": 80, "name": "http"}],
                "env": [{"name": "MODE", "value": "production"}, {"name": "INDEX", "value": i.to_string()}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
            }]
        }
    }))
    .unwrap()
}

/// Creates `n` ConfigMaps through the API, `CONCURRENCY` in flight; returns objects/s.
async fn api_creates(c: &kube::Client, round: usize, n: usize, payload: &str, conc: usize) -> f64 {
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let t0 = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let cm = config_map(&format!("cm-{round}-{i}"), payload);
            async move { api.create(&PostParams::default(), &cm).await.unwrap() }
        })
        .buffer_unordered(conc)
        .for_each(|_| async {})
        .await;
    n as f64 / t0.elapsed().as_secs_f64()
}

/// Puts `n` values of `value`'s bytes straight into etcd, `CONCURRENCY` in flight; returns puts/s.
async fn etcd_puts(etcd: &etcd_client::Client, round: usize, n: usize, value: &[u8], conc: usize) -> f64 {
    etcd_puts_at(etcd, &format!("/raw-bench/{round}"), n, value, conc).await
}

async fn etcd_puts_at(etcd: &etcd_client::Client, prefix: &str, n: usize, value: &[u8], conc: usize) -> f64 {
    let t0 = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let mut kv = etcd.kv_client();
            let v = value.to_vec();
            let key = format!("{prefix}/{i}");
            async move { kv.put(key, v, None).await.unwrap() }
        })
        .buffer_unordered(conc)
        .for_each(|_| async {})
        .await;
    n as f64 / t0.elapsed().as_secs_f64()
}

/// Creates `n` keys with the create-if-absent transaction the tenant master uses.
async fn etcd_txn_creates(etcd: &etcd_client::Client, round: usize, n: usize, value: &[u8], conc: usize) -> f64 {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
    let t0 = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let mut kv = etcd.kv_client();
            let key = format!("/raw-txn/{round}/{i}");
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key, value.to_vec(), None)]);
            async move { assert!(kv.txn(txn).await.unwrap().succeeded()) }
        })
        .buffer_unordered(conc)
        .for_each(|_| async {})
        .await;
    n as f64 / t0.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let starts = arg_usize("BENCH_STARTS", 10);
    let creates = arg_usize("BENCH_CREATES", 3000);
    let rounds = arg_usize("BENCH_ROUNDS", 3);
    let pods = arg_usize("BENCH_PODS", 10_000);
    let lists = arg_usize("BENCH_LISTS", 100);
    let gets = arg_usize("BENCH_GETS", 5000);

    let etcd = Etcd::start();
    let work = tempfile::tempdir().unwrap();
    println!("kplex tenant master benchmark: binary {}", kplex_bin().display());

    // Start to ready, each on a fresh (empty) prefix; then a restart of each.
    let mut first = Vec::new();
    let mut again = Vec::new();
    let mut rss = Vec::new();
    for i in 0..starts {
        let dir = work.path().join(format!("start-{i}"));
        let name = format!("start{i}");
        let (mut c, t) = spawn_tm(&etcd.endpoint, &name, &dir, free_port(), &[]);
        first.push(t);
        // Idle: let bootstrap writes and the first watch events settle.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        rss.push(rss_kib(c.id()));
        c.kill().unwrap();
        c.wait().unwrap();
        let (mut c, t) = spawn_tm(&etcd.endpoint, &name, &dir, free_port(), &[]);
        again.push(t);
        c.kill().unwrap();
        c.wait().unwrap();
    }
    first.sort();
    again.sort();
    rss.sort();
    println!("\n## start to ready ({starts} tenants, empty prefix)");
    println!("first start (creates CA, serving and admin certs): median {} max {}", ms(pct(&first, 0.5)), ms(*first.last().unwrap()));
    println!("restart (reuses PKI):                              median {} max {}", ms(pct(&again, 0.5)), ms(*again.last().unwrap()));
    println!("\n## idle RSS of a fresh tenant master ({starts} samples, 1.5 s after ready)");
    println!("median {:.1} MiB, max {:.1} MiB", rss[rss.len() / 2] as f64 / 1024.0, *rss.last().unwrap() as f64 / 1024.0);

    // The tenant master under load.
    let dir = work.path().join("bench");
    let (mut tm, _) = spawn_tm(&etcd.endpoint, "bench", &dir, free_port(), &[]);
    let c = client(&dir.join("kubeconfig")).await;
    let etcd_client = etcd_client::Client::connect([etcd.endpoint.as_str()], None).await.unwrap();

    // ConfigMap creates vs raw etcd puts of the stored bytes.
    let payload = "x".repeat(512);
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    api.create(&PostParams::default(), &config_map("probe", &payload)).await.unwrap();
    let mut ec = etcd_client.clone();
    let stored = ec.get("/kplex/bench/registry/core/configmaps/default/probe", None).await.unwrap();
    let stored = stored.kvs().first().map(|kv| kv.value().to_vec()).expect("probe ConfigMap stored under /kplex/bench/registry/core/configmaps");
    let levels: Vec<usize> = std::env::var("BENCH_CONCURRENCY").unwrap_or_else(|_| "1,32".into()).split(',').filter_map(|x| x.trim().parse().ok()).collect();
    println!("\n## ConfigMap create throughput vs raw etcd put ({creates} per round, {} bytes stored per object)", stored.len());
    let mut total = 0;
    for &conc in &levels {
        let n = if conc == 1 { creates / 4 } else { creates };
        let (mut ours, mut raw) = (0.0, 0.0);
        println!("### {conc} in flight");
        for r in 0..rounds {
            let round = total + r;
            let (e, ce) = with_cpu(etcd.pid(), tm.id(), etcd_puts(&etcd_client, round, n, &stored, conc)).await;
            let (a, ca) = with_cpu(etcd.pid(), tm.id(), api_creates(&c, round, n, &payload, conc)).await;
            println!("round {r}: raw etcd {e:.0} puts/s, API {a:.0} creates/s, ratio {:.2}", a / e);
            let per = |c: [f64; 3]| format!("client {:.0} µs, etcd {:.0} µs, tenant master {:.0} µs", c[0] * 1e6 / n as f64, c[1] * 1e6 / n as f64, c[2] * 1e6 / n as f64);
            println!("  CPU per op: raw puts: {}; API creates: {}", per(ce), per(ca));
            raw += e;
            ours += a;
        }
        total += rounds;
        println!("{conc} in flight: ratio API/raw etcd over {rounds} rounds: {:.2}", ours / raw);
        if conc == *levels.iter().max().unwrap() {
            // What the storage alone costs etcd: the tenant master's create-if-absent
            // transaction, and raw puts while one prefix watch (a watch cache's) gets every event.
            let (t, ct) = with_cpu(etcd.pid(), tm.id(), etcd_txn_creates(&etcd_client, 0, n, &stored, conc)).await;
            println!("raw etcd create-if-absent txn: {t:.0} txns/s; etcd CPU per op {:.0} µs", ct[1] * 1e6 / n as f64);
            let mut watcher = etcd_client.watch_client();
            let mut events = watcher.watch("/raw-watched/", Some(etcd_client::WatchOptions::new().with_prefix())).await.unwrap();
            let drain = tokio::spawn(async move { while let Ok(Some(_)) = events.message().await {} });
            let (w, cw) = with_cpu(etcd.pid(), tm.id(), etcd_puts_at(&etcd_client, "/raw-watched", n, &stored, conc)).await;
            println!("raw etcd put with one prefix watch: {w:.0} puts/s; etcd CPU per op {:.0} µs", cw[1] * 1e6 / n as f64);
            drain.abort();
        }
    }
    println!("RSS after the ConfigMaps: {:.1} MiB", rss_kib(tm.id()) as f64 / 1024.0);

    // 10,000 pods, then LIST and GET latencies.
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    ns.create(&PostParams::default(), &serde_json::from_value(serde_json::json!({"metadata": {"name": "bench"}})).unwrap()).await.unwrap();
    let pod_api: Api<Pod> = Api::namespaced(c.clone(), "bench");
    let t0 = Instant::now();
    stream::iter(0..pods)
        .map(|i| {
            let api = pod_api.clone();
            async move { api.create(&PostParams::default(), &pod(&format!("pod-{i:05}"), i)).await.unwrap() }
        })
        .buffer_unordered(CONCURRENCY)
        .for_each(|_| async {})
        .await;
    println!("\n## {pods} pods created in {:.1} s", t0.elapsed().as_secs_f64());
    println!("RSS with {pods} pods cached: {:.1} MiB", rss_kib(tm.id()) as f64 / 1024.0);

    for (label, path) in [
        ("LIST all pods in the namespace", "/api/v1/namespaces/bench/pods".to_string()),
        ("LIST pods cluster-wide", "/api/v1/pods".to_string()),
        ("LIST pods with labelSelector app=app-7 (200 of them)", "/api/v1/namespaces/bench/pods?labelSelector=app%3Dapp-7".to_string()),
    ] {
        let mut lat = Vec::new();
        let mut bytes = 0;
        raw_get(&c, &path).await;
        for _ in 0..lists {
            let t = Instant::now();
            bytes = raw_get(&c, &path).await;
            lat.push(t.elapsed());
        }
        lat.sort();
        println!("{label}: {lists} requests, {:.1} MiB each: p50 {} p99 {} max {}", bytes as f64 / 1048576.0, ms(pct(&lat, 0.5)), ms(pct(&lat, 0.99)), ms(*lat.last().unwrap()));
    }

    let mut lat = Vec::new();
    for i in 0..gets {
        let path = format!("/api/v1/namespaces/bench/pods/pod-{:05}", (i * 7919) % pods);
        let t = Instant::now();
        raw_get(&c, &path).await;
        lat.push(t.elapsed());
    }
    lat.sort();
    println!("GET one pod: {gets} sequential requests: p50 {} p99 {} max {}", ms(pct(&lat, 0.5)), ms(pct(&lat, 0.99)), ms(*lat.last().unwrap()));

    tm.kill().unwrap();
    tm.wait().unwrap();
}
