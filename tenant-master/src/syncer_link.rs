//! The tenant master's side of the syncer contract (proto/syncer.proto, issue 7): it dials the
//! syncer over mutual TLS, streams the changes of the resources the syncer mirrors from the
//! watch cache (resuming each resource where the syncer says it stands, or sending a snapshot),
//! and applies the writes the syncer sends back through the store (defaulting, validation and
//! admission as for any API client). Reconnects with backoff forever; no state is kept across
//! streams beyond what the syncer's `Resume` tells.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::api::status::ApiError;
use crate::registry::store::{DeleteOpts, Part, Store, WriteOpts};
use crate::storage::cache::{EventType, Since};

/// The generated client and messages.
pub mod proto {
    tonic::include_proto!("kplex.syncer.v1");
}

use proto::{syncer_message, tenant_message, write::Op, TenantMessage};

/// The resources streamed to the syncer (all in the core group, v1).
pub const RESOURCES: &[&str] = &["namespaces", "pods", "configmaps", "secrets", "services", "endpoints", "persistentvolumeclaims", "nodes"];

/// Changes per message at most (a snapshot is always one message: it replaces the syncer's set).
const BATCH: usize = 500;

/// Where and how to reach the syncer (`--syncer-endpoint`, `--syncer-ca`, `--syncer-cert`,
/// `--syncer-key`).
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub endpoint: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Starts the link in the background. `api_endpoint` is the host:port pods in the super cluster
/// use to reach this API server.
pub fn start(store: Arc<Store>, api_endpoint: String, cfg: LinkConfig) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            let t0 = std::time::Instant::now();
            match session(&store, &api_endpoint, &cfg).await {
                Ok(()) => tracing::info!("syncer stream closed; reconnecting"),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "syncer link failed; reconnecting"),
            }
            if t0.elapsed() > Duration::from_secs(30) {
                backoff = Duration::from_millis(200);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
}

async fn session(store: &Arc<Store>, api_endpoint: &str, cfg: &LinkConfig) -> anyhow::Result<()> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let read = |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let uri: http::Uri = cfg.endpoint.parse().context("--syncer-endpoint")?;
    let host = uri.host().unwrap_or("localhost").trim_start_matches('[').trim_end_matches(']').to_string();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&cfg.ca)?))
        .identity(Identity::from_pem(read(&cfg.cert)?, read(&cfg.key)?))
        .domain_name(host);
    let channel = Endpoint::from_shared(cfg.endpoint.clone())?.tls_config(tls)?.connect().await.context("connecting to the syncer")?;
    let mut client = proto::syncer_client::SyncerClient::new(channel).max_decoding_message_size(512 << 20).max_encoding_message_size(512 << 20);
    let (tx, rx) = mpsc::channel::<TenantMessage>(256);
    let hello = proto::Hello { api_endpoint: api_endpoint.to_string(), resources: RESOURCES.iter().map(|s| s.to_string()).collect() };
    tx.send(TenantMessage { msg: Some(tenant_message::Msg::Hello(hello)) }).await?;
    let mut inbound = client.sync(ReceiverStream::new(rx)).await?.into_inner();
    let resume = match inbound.message().await? {
        Some(proto::SyncerMessage { msg: Some(syncer_message::Msg::Resume(r)) }) => r,
        other => anyhow::bail!("expected Resume from the syncer, got {other:?}"),
    };
    tracing::info!(?resume, "connected to the syncer");
    let mut tasks = tokio::task::JoinSet::new();
    for r in RESOURCES {
        let from = resume.resource_versions.get(*r).copied().unwrap_or(0);
        tasks.spawn(stream_resource(store.clone(), r, from, tx.clone()));
    }
    loop {
        tokio::select! {
            m = inbound.message() => match m? {
                Some(proto::SyncerMessage { msg: Some(syncer_message::Msg::Write(w)) }) => {
                    let (store, tx) = (store.clone(), tx.clone());
                    tokio::spawn(async move {
                        let r = apply_write(&store, w).await;
                        let _ = tx.send(TenantMessage { msg: Some(tenant_message::Msg::WriteResult(r)) }).await;
                    });
                }
                Some(_) => {}
                None => return Ok(()),
            },
            Some(done) = tasks.join_next() => {
                done??;
                anyhow::bail!("a resource stream ended");
            }
        }
    }
}

fn without_managed_fields(v: &Value) -> Vec<u8> {
    let mut v = v.clone();
    if let Some(md) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        md.remove("managedFields");
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Streams one resource: a snapshot first when the syncer holds nothing (or its position is
/// older than the history), then every change in order.
async fn stream_resource(store: Arc<Store>, plural: &'static str, mut rv: i64, tx: mpsc::Sender<TenantMessage>) -> anyhow::Result<()> {
    let s = store.registry.lookup("", "v1", plural).with_context(|| format!("{plural} not registered"))?;
    let cache = store.caches.resource(&s.info().id());
    let mut sub = cache.subscribe();
    let mut snapshot = rv == 0;
    loop {
        sub.borrow_and_update();
        if !snapshot {
            match cache.since(rv) {
                Since::Events(evs) => {
                    for chunk in evs.chunks(BATCH) {
                        let changes = chunk
                            .iter()
                            .map(|e| proto::Change {
                                r#type: match e.typ {
                                    EventType::Added => proto::change::Type::Added,
                                    EventType::Modified => proto::change::Type::Modified,
                                    EventType::Deleted => proto::change::Type::Deleted,
                                } as i32,
                                object: without_managed_fields(&e.object.value()),
                                resource_version: e.rv,
                            })
                            .collect();
                        let last = chunk.last().map(|e| e.rv).unwrap_or(rv);
                        let c = proto::Changes { resource: plural.into(), snapshot: false, changes, resource_version: last };
                        tx.send(TenantMessage { msg: Some(tenant_message::Msg::Changes(c)) }).await?;
                        rv = last;
                    }
                }
                Since::TooOld { .. } => snapshot = true,
            }
        }
        if snapshot {
            let (objs, at) = cache.snapshot();
            let changes = objs
                .iter()
                .map(|o| proto::Change { r#type: proto::change::Type::Added as i32, object: without_managed_fields(&o.value()), resource_version: o.rv })
                .collect();
            let c = proto::Changes { resource: plural.into(), snapshot: true, changes, resource_version: at };
            tx.send(TenantMessage { msg: Some(tenant_message::Msg::Changes(c)) }).await?;
            rv = at;
            snapshot = false;
            continue;
        }
        if sub.changed().await.is_err() {
            anyhow::bail!("the {plural} cache closed");
        }
    }
}

fn result_of(id: u64, r: Result<Value, ApiError>) -> proto::WriteResult {
    match r {
        Ok(v) => proto::WriteResult { id, code: 200, reason: String::new(), message: String::new(), object: serde_json::to_vec(&v).unwrap_or_default() },
        Err(e) => proto::WriteResult { id, code: e.code as i32, reason: e.reason.to_string(), message: e.message, object: Vec::new() },
    }
}

fn check_uid(cur: &Value, uid: &str, plural: &str, name: &str) -> Result<(), ApiError> {
    if !uid.is_empty() && cur["metadata"]["uid"].as_str() != Some(uid) {
        return Err(ApiError::conflict(
            "",
            plural,
            name,
            &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", cur["metadata"]["uid"].as_str().unwrap_or("")),
        ));
    }
    Ok(())
}

/// Applies one write of the syncer through the store, as field manager `kplex-syncer`.
async fn apply_write(store: &Arc<Store>, w: proto::Write) -> proto::WriteResult {
    let id = w.id;
    let r = async {
        let s = store.registry.lookup("", "v1", &w.resource).ok_or_else(|| ApiError::not_found("", &w.resource, &w.name))?;
        let obj: Value = if w.object.is_empty() { Value::Null } else { serde_json::from_slice(&w.object).map_err(|e| ApiError::bad_request(e.to_string()))? };
        let wo = WriteOpts { field_manager: Some("kplex-syncer".into()), ..Default::default() };
        let (ns, name, uid) = (w.namespace.as_str(), w.name.as_str(), w.precondition_uid.as_str());
        match Op::try_from(w.op).unwrap_or(Op::Create) {
            Op::Create => store.create(s.as_ref(), ns, obj, &wo).await,
            Op::Update => {
                store
                    .guaranteed_update(s.as_ref(), ns, name, Part::Main, &wo, false, |cur| {
                        let cur = cur.ok_or_else(|| ApiError::not_found("", &w.resource, name))?;
                        check_uid(cur, uid, &w.resource, name)?;
                        let mut p = cur.clone();
                        p["metadata"]["labels"] = obj["metadata"]["labels"].clone();
                        p["spec"] = obj["spec"].clone();
                        Ok(p)
                    })
                    .await
            }
            Op::UpdateStatus => {
                store
                    .guaranteed_update(s.as_ref(), ns, name, Part::Status, &wo, false, |cur| {
                        let cur = cur.ok_or_else(|| ApiError::not_found("", &w.resource, name))?;
                        check_uid(cur, uid, &w.resource, name)?;
                        let mut p = cur.clone();
                        p["status"] = obj["status"].clone();
                        Ok(p)
                    })
                    .await
            }
            Op::Delete => {
                let o = DeleteOpts {
                    grace_period: (w.grace_period_seconds >= 0).then_some(w.grace_period_seconds),
                    precondition_uid: (!uid.is_empty()).then(|| uid.to_string()),
                    ..Default::default()
                };
                store.delete(s.as_ref(), ns, name, &o).await.map(|_| Value::Null)
            }
            Op::Bind => {
                let st = crate::api::ApiState { store: store.clone(), server_addr: Arc::new(String::new()) };
                crate::api::subresources::bind(&st, s.as_ref(), ns, name, &obj, &wo).await.map(|_| Value::Null)
            }
            Op::Token => crate::serviceaccount::token::create(store, ns, name, obj).await,
        }
    }
    .await;
    let mut res = result_of(id, r);
    if res.code == 200 && matches!(Op::try_from(w.op), Ok(Op::Create) | Ok(Op::Bind)) {
        res.code = 201;
    }
    res
}
