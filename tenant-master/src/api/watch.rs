//! WATCH served from the watch cache: initial events, resourceVersion semantics, bookmarks,
//! `sendInitialEvents`, selector transitions, 410 Gone for revisions the history no longer holds.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::request::{Output, Query};
use super::selectors::{FieldSelector, LabelSelector};
use super::status::{ApiError, ApiResult};
use super::table::{self, Include};
use super::ApiState;
use crate::registry::store::{ListOpts, Store};
use crate::registry::Strategy;
use crate::storage::cache::{CacheEvent, CachedObject, EventType, Since};

/// How often a watcher that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(15);

struct Encoder {
    s: Arc<dyn Strategy>,
    out: Output,
    include: Include,
    first: bool,
}

impl Encoder {
    fn event(&mut self, typ: &str, obj: &CachedObject) -> Bytes {
        let mut buf = Vec::with_capacity(obj.raw.len() + 32);
        buf.extend_from_slice(b"{\"type\":\"");
        buf.extend_from_slice(typ.as_bytes());
        buf.extend_from_slice(b"\",\"object\":");
        match self.out {
            Output::Json => match self.s.served_bytes(obj) {
                Some(b) => buf.extend_from_slice(&b),
                None => buf.extend_from_slice(&obj.raw),
            },
            Output::Table(av) => {
                let v = obj.value();
                let mut t = table::table(self.s.as_ref(), &[v.clone()], self.include, json!({"resourceVersion": v["metadata"]["resourceVersion"]}), self.first);
                t["apiVersion"] = json!(av);
                self.first = false;
                buf.extend_from_slice(&serde_json::to_vec(&t).unwrap_or_default());
            }
            Output::PartialMetadata(av) => {
                let mut p = table::partial_metadata(&obj.value());
                p["apiVersion"] = json!(av);
                buf.extend_from_slice(&serde_json::to_vec(&p).unwrap_or_default());
            }
        }
        buf.extend_from_slice(b"}\n");
        Bytes::from(buf)
    }

    fn bookmark(&self, rv: i64, initial_end: bool) -> Bytes {
        let inf = self.s.info();
        let mut md = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": inf.kind, "apiVersion": inf.api_version(), "metadata": md});
        line("BOOKMARK", &obj)
    }
}

fn line(typ: &str, obj: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": typ, "object": obj})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

struct Filter {
    ns: String,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, o: &CachedObject) -> bool {
        (self.ns.is_empty() || o.namespace == self.ns) && Store::matches(o, &self.labels, &self.fields)
    }

    /// The event a watcher sees for a cache event (None: filtered out).
    fn translate<'a>(&self, ev: &'a CacheEvent) -> Option<(&'static str, &'a CachedObject)> {
        let cur = self.matches(&ev.object);
        match ev.typ {
            EventType::Added => cur.then_some(("ADDED", &*ev.object)),
            EventType::Deleted => cur.then_some(("DELETED", &*ev.object)),
            EventType::Modified => {
                let prev = ev.prev.as_ref().map(|p| self.matches(p)).unwrap_or(false);
                match (prev, cur) {
                    (true, true) => Some(("MODIFIED", &*ev.object)),
                    (false, true) => Some(("ADDED", &*ev.object)),
                    (true, false) => Some(("DELETED", &*ev.object)),
                    (false, false) => None,
                }
            }
        }
    }
}

/// Starts a watch and returns the streaming response.
pub async fn serve(st: ApiState, s: Arc<dyn Strategy>, ns: String, q: Query, out: Output) -> ApiResult<Response> {
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))?;
    st.store.check_fields(s.as_ref(), &fields)?;
    let rv_param = q.get("resourceVersion").unwrap_or("").to_string();
    let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
    let bookmarks = q.flag("allowWatchBookmarks");
    if send_initial.is_some() {
        if q.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(ApiError::invalid("meta.k8s.io", "ListOptions", "", &[super::status::FieldError::forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )]));
        }
        if !bookmarks {
            return Err(ApiError::invalid("meta.k8s.io", "ListOptions", "", &[super::status::FieldError::forbidden(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            )]));
        }
    }
    let timeout = match q.int("timeoutSeconds")? {
        Some(t) if t > 0 => Duration::from_secs(t as u64),
        _ => Duration::from_secs(1800 + rand::random::<u64>() % 1800),
    };
    let filter = Filter { ns: ns.clone(), labels, fields };
    let include = Include::parse(q.get("includeObject"));

    // Initial state, decided before the response starts so errors are plain HTTP errors.
    let initial = send_initial.unwrap_or(rv_param.is_empty() || rv_param == "0");
    let (initial_items, start_rv) = if initial {
        let lo = ListOpts {
            labels: filter.labels.clone(),
            fields: filter.fields.clone(),
            resource_version: Some(if rv_param.is_empty() { String::new() } else { rv_param.clone() }),
            ..Default::default()
        };
        let page = st.store.list(s.as_ref(), &ns, &lo).await?;
        (page.items, page.resource_version)
    } else {
        let rv: i64 = rv_param.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv_param:?}")))?;
        st.store.at_least(rv).await?;
        (Vec::new(), rv)
    };

    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let cache = st.store.caches.resource(&s.info().id());
    let caches = st.store.caches.clone();
    let mut enc = Encoder { s: s.clone(), out, include, first: true };
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut notify = cache.subscribe();
        for o in &initial_items {
            if tx.send(Ok(enc.event("ADDED", o))).await.is_err() {
                return;
            }
        }
        if send_initial == Some(true) && tx.send(Ok(enc.bookmark(start_rv, true))).await.is_err() {
            return;
        }
        drop(initial_items);
        let mut pos = start_rv;
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        loop {
            match cache.since(pos) {
                Since::TooOld { oldest } => {
                    let e = ApiError::gone(format!("too old resource version: {pos} ({oldest})"));
                    let _ = tx.send(Ok(line("ERROR", &e.to_status()))).await;
                    return;
                }
                Since::Events(evs) => {
                    for ev in evs {
                        pos = ev.rv;
                        if let Some((typ, obj)) = filter.translate(&ev) {
                            if tx.send(Ok(enc.event(typ, obj))).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            if cache.is_closed() {
                // The resource is no longer served (its CustomResourceDefinition went away).
                return;
            }
            tokio::select! {
                r = notify.changed() => { if r.is_err() { return; } }
                _ = tick.tick(), if bookmarks => {
                    // Everything up to the global revision is in the history by now: drain it,
                    // then tell the client how far it has got.
                    let global = caches.revision();
                    if let Since::Events(evs) = cache.since(pos) {
                        for ev in evs {
                            pos = ev.rv;
                            if let Some((typ, obj)) = filter.translate(&ev) {
                                if tx.send(Ok(enc.event(typ, obj))).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    pos = pos.max(global);
                    // Let the next bookmark carry etcd's newer revision if other tenants wrote.
                    caches.request_progress();
                    if tx.send(Ok(enc.bookmark(pos, false))).await.is_err() {
                        return;
                    }
                }
                _ = &mut deadline => return,
                _ = tx.closed() => return,
            }
        }
    });
    let body = Body::from_stream(ReceiverStream::new(rx));
    Ok((
        [(http::header::CONTENT_TYPE, "application/json"), (http::header::CACHE_CONTROL, "no-cache, private")],
        body,
    )
        .into_response())
}
