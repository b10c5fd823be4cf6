//! Scaling a Deployment from 0 to 1,000 replicas (issue 4: all 1,000 pods created in under
//! 5 s). Run as `./hack/bench.sh deployment_scale` (builds the release binary, sets KPLEX_BIN).
//!
//! One etcd and one tenant master. Each round scales the Deployment `web` from 0 to
//! BENCH_REPLICAS (default 1000) through the scale subresource and times, from that request:
//! - until the last pod was created (counted on a pod watch, so nothing is polled), and
//! - with the stand-in kubelet running, until the Deployment reports all replicas available;
//!
//! then scales back to 0 and times until every pod is gone. BENCH_ROUNDS (default 3) rounds
//! without a kubelet (pods are only created), then as many with the kubelet binding pods and
//! making them Ready (which adds two API writes per pod to the load).

use std::time::{Duration, Instant};

use futures::StreamExt;
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kplex_e2e::bench::cpu_secs;
use kplex_e2e::kubelet::FakeKubelet;
use kplex_e2e::{Etcd, TenantMaster};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn arg(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Counts ADDED pod events of a namespace from `rv` on, on a raw watch (no decoding of pods),
/// until `want` pods were added; returns when the last one arrived.
async fn count_added(client: kube::Client, ns: String, rv: String, want: usize) -> Instant {
    let path = format!(
        "/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv}&allowWatchBookmarks=false"
    );
    let req = http::Request::get(path).body(Vec::<u8>::new()).unwrap();
    let resp = client.send(req.map(Into::into)).await.unwrap();
    assert!(resp.status().is_success());
    let mut body = resp.into_body().into_data_stream();
    let (mut seen, mut carry) = (0, Vec::new());
    while let Some(chunk) = body.next().await {
        carry.extend_from_slice(&chunk.unwrap());
        while let Some(nl) = carry.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = carry.drain(..=nl).collect();
            if line.starts_with(br#"{"type":"ADDED""#) {
                seen += 1;
                if seen >= want {
                    return Instant::now();
                }
            }
        }
    }
    panic!("pod watch ended after {seen} pods");
}

/// The namespace's current resourceVersion (a LIST of its pods).
async fn list_rv(client: &kube::Client, ns: &str) -> String {
    let req = http::Request::get(format!("/api/v1/namespaces/{ns}/pods?limit=1"))
        .body(Vec::<u8>::new())
        .unwrap();
    let resp = client.send(req.map(Into::into)).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn pod_count(client: &kube::Client, ns: &str) -> usize {
    let req = http::Request::get(format!("/api/v1/namespaces/{ns}/pods"))
        .body(Vec::<u8>::new())
        .unwrap();
    let resp = client.send(req.map(Into::into)).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["items"].as_array().map(|a| a.len()).unwrap_or(0)
}

async fn scale(deploys: &Api<Deployment>, n: usize) {
    deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": n}})),
        )
        .await
        .unwrap();
}

struct Round {
    created: Duration,
    available: Option<Duration>,
    emptied: Duration,
    tm_cpu: f64,
    etcd_cpu: f64,
}

async fn round(
    client: &kube::Client,
    ns: &str,
    n: usize,
    kubelet: bool,
    pids: (u32, u32),
) -> Round {
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let rv = list_rv(client, ns).await;
    let watch = tokio::spawn(count_added(client.clone(), ns.to_string(), rv, n));
    let cpu0 = (cpu_secs(pids.0), cpu_secs(pids.1));
    let t0 = Instant::now();
    scale(&deploys, n).await;
    let created = watch.await.unwrap() - t0;
    let available = if kubelet {
        loop {
            let d = deploys.get_status("web").await.unwrap();
            if d.status.and_then(|s| s.available_replicas).unwrap_or(0) as usize == n {
                break Some(t0.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    } else {
        None
    };
    let cpu1 = (cpu_secs(pids.0), cpu_secs(pids.1));
    let t1 = Instant::now();
    scale(&deploys, 0).await;
    while pod_count(client, ns).await > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let emptied = t1.elapsed();
    Round {
        created,
        available,
        emptied,
        tm_cpu: cpu1.0 - cpu0.0,
        etcd_cpu: cpu1.1 - cpu0.1,
    }
}

async fn setup(client: &kube::Client, ns: &str) {
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
    )
    .await
    .unwrap();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d = json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}},
    });
    let d: Deployment = serde_json::from_value(d).unwrap();
    // A create right after its namespace's may not see the namespace yet: retry briefly.
    for attempt in 0.. {
        match deploys.create(&PostParams::default(), &d).await {
            Ok(_) => break,
            Err(kube::Error::Api(e)) if e.code == 404 && attempt < 50 => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("creating the deployment: {e}"),
        }
    }
    // The ReplicaSet exists (with 0 replicas) before the clock starts.
    let rss: Api<k8s_openapi::api::apps::v1::ReplicaSet> = Api::namespaced(client.clone(), ns);
    while rss
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .is_empty()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn report(label: &str, rounds: &[Round], n: usize) {
    println!("### {label}");
    for (i, r) in rounds.iter().enumerate() {
        let avail = r
            .available
            .map(|a| format!(", all available after {}", secs(a)))
            .unwrap_or_default();
        println!(
            "round {i}: {n} pods created in {} ({:.0} pods/s){avail}; scaled back to 0 (all pods gone) in {}; CPU during scale-up: tenant master {:.2} s, etcd {:.2} s",
            secs(r.created),
            n as f64 / r.created.as_secs_f64(),
            secs(r.emptied),
            r.tm_cpu,
            r.etcd_cpu
        );
    }
    let mut c: Vec<Duration> = rounds.iter().map(|r| r.created).collect();
    c.sort();
    println!(
        "created: median {}, max {}",
        secs(c[c.len() / 2]),
        secs(*c.last().unwrap())
    );
}

#[tokio::main]
async fn main() {
    let n = arg("BENCH_REPLICAS", 1000);
    let rounds = arg("BENCH_ROUNDS", 3);
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "scale", dir.path(), &[]);
    let client = tm.client().await;
    let pids = (tm.pid().expect("running"), etcd.pid());
    println!("## deployment scaled 0 -> {n} ({rounds} rounds per mode)");

    setup(&client, "bare").await;
    let mut bare = Vec::new();
    for _ in 0..rounds {
        bare.push(round(&client, "bare", n, false, pids).await);
    }
    report("no kubelet: pods are only created", &bare, n);

    setup(&client, "kubelet").await;
    let kubelet = FakeKubelet::start(&tm);
    let mut with = Vec::new();
    for _ in 0..rounds {
        with.push(round(&client, "kubelet", n, true, pids).await);
    }
    drop(kubelet);
    report(
        "with the stand-in kubelet binding pods and making them Ready",
        &with,
        n,
    );

    let nss: Api<Namespace> = Api::all(client.clone());
    for ns in ["bare", "kubelet"] {
        let _ = nss.delete(ns, &DeleteParams::default()).await;
    }
}
