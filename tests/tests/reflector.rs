//! kube-runtime's watcher and reflector keep an exact mirror of 1,000 ConfigMaps under concurrent
//! create/update/delete, across a tenant-master restart and an etcd compaction (relist after
//! 410 Gone), with no missed or phantom object.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kplex_e2e::{Etcd, TenantMaster};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use rand::Rng;

fn cm(name: &str, v: u32) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": {"v": v.to_string()}})).unwrap()
}

/// Creates, updates and deletes ConfigMaps from `workers` tasks, `ops` operations each.
async fn churn(api: Api<ConfigMap>, workers: usize, ops: usize, seed: u64) {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..ops {
                let n: u32 = rand::thread_rng().gen_range(0..1000);
                let name = format!("cm-{n}");
                let r: u8 = rand::thread_rng().gen_range(0..10);
                let _ = match r {
                    0..=3 => api.create(&PostParams::default(), &cm(&name, (seed as u32) * 1000 + (w * ops + i) as u32)).await.map(|_| ()),
                    4..=7 => match api.get(&name).await {
                        Ok(mut o) => {
                            o.data.get_or_insert_with(Default::default).insert("v".into(), format!("{seed}-{w}-{i}"));
                            api.replace(&name, &PostParams::default(), &o).await.map(|_| ())
                        }
                        Err(e) => Err(e),
                    },
                    _ => api.delete(&name, &DeleteParams::default()).await.map(|_| ()),
                };
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn server_state(api: &Api<ConfigMap>) -> BTreeMap<String, String> {
    let list = api.list(&ListParams::default()).await.unwrap();
    list.items.into_iter().map(|c| (c.metadata.name.unwrap(), c.metadata.resource_version.unwrap())).collect()
}

fn mirror_state(reader: &reflector::Store<ConfigMap>) -> BTreeMap<String, String> {
    reader.state().iter().map(|c| (c.metadata.name.clone().unwrap(), c.metadata.resource_version.clone().unwrap())).collect()
}

async fn wait_exact(api: &Api<ConfigMap>, reader: &reflector::Store<ConfigMap>) -> usize {
    let want = server_state(api).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = mirror_state(reader);
        if got == want {
            return got.len();
        }
        assert!(Instant::now() < deadline, "mirror never converged: {} vs {} objects; missing {:?}; phantom {:?}",
            got.len(), want.len(),
            want.keys().filter(|k| !got.contains_key(*k)).take(5).collect::<Vec<_>>(),
            got.keys().filter(|k| !want.contains_key(*k)).take(5).collect::<Vec<_>>());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_mirror_stays_exact() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let mut tm = TenantMaster::start(&etcd, "reflector", dir.path(), &["--etcd-compaction-interval", "0"]);
    let client = tm.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // Seed 1,000 objects.
    let mut seeds = Vec::new();
    for chunk in 0..10 {
        let api = api.clone();
        seeds.push(tokio::spawn(async move {
            for i in 0..100 {
                api.create(&PostParams::default(), &cm(&format!("cm-{}", chunk * 100 + i), 0)).await.unwrap();
            }
        }));
    }
    for s in seeds {
        s.await.unwrap();
    }

    let (reader, writer) = reflector::store::<ConfigMap>();
    let relists = Arc::new(AtomicUsize::new(0));
    let r2 = relists.clone();
    let cfg = watcher::Config::default().timeout(5);
    let stream = watcher(api.clone(), cfg).default_backoff().map(move |ev| {
        if let Ok(watcher::Event::InitDone) = &ev {
            r2.fetch_add(1, Ordering::SeqCst);
        }
        ev
    });
    let mirror = tokio::spawn(reflector(writer, stream).for_each(|_| async {}));
    reader.wait_until_ready().await.unwrap();
    // The seeded ConfigMaps, and kube-root-ca.crt as every namespace of a real cluster has.
    assert_eq!(mirror_state(&reader).keys().filter(|k| *k != "kube-root-ca.crt").count(), 1000);

    churn(api.clone(), 6, 400, 1).await;
    let n = wait_exact(&api, &reader).await;
    assert!(n > 0);

    // Kill the tenant master mid-churn, compact etcd, bring it back: the watcher's resume
    // revision is gone, it gets 410 and relists.
    let churner = tokio::spawn(churn(api.clone(), 4, 300, 2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    tm.kill();
    let mut ec = etcd_client::Client::connect([etcd.endpoint.as_str()], None).await.unwrap();
    // A change the watcher cannot have seen (written while the API was down) moves the store
    // past the watcher's resume revision; compaction then removes the history in between.
    let obj = serde_json::json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "cm-offline", "namespace": "default", "uid": "offline-1", "creationTimestamp": "2026-01-01T00:00:00Z"}, "data": {"v": "offline"}});
    let put = ec.put("/kplex/reflector/registry/core/configmaps/default/cm-offline", obj.to_string(), None).await.unwrap();
    let rev = put.header().unwrap().revision();
    ec.compact(rev, None).await.unwrap();
    tm.restart();
    churner.await.unwrap();
    churn(api.clone(), 4, 300, 3).await;
    wait_exact(&api, &reader).await;
    assert!(mirror_state(&reader).contains_key("cm-offline"));
    assert!(relists.load(Ordering::SeqCst) >= 2, "the watcher never relisted");
    mirror.abort();
}
