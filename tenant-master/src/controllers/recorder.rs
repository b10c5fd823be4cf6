//! An event recorder with client-go's `EventCorrelator` in front of it, so a controller that
//! creates a thousand pods writes a handful of Events, as kube-controller-manager does:
//!
//! - **aggregation**: from the 10th event of one source, object, type and reason with different
//!   messages within 10 minutes on, they are folded into a single Event whose message is
//!   `(combined from similar events): <latest message>` and whose count goes up;
//! - **deduplication**: an event identical to an earlier one (same message too) bumps that
//!   Event's `count` and `lastTimestamp` instead of creating another;
//! - **spam filter**: per source and object a token bucket of 25 events, refilled at one event
//!   per 5 minutes; events beyond it are dropped.
//!
//! Decisions are made at once, in the caller; the (few) accepted writes run in the background
//! one after the other, so a count bump never overtakes the creation of its Event.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::runtime::ctx::EVENTS;
use super::runtime::Ctx;
use crate::meta;
use crate::registry::store::Part;

/// Events per object the spam filter lets through at once (`defaultSpamBurst`).
const SPAM_BURST: f64 = 25.0;
/// Refill of the spam filter's bucket, events per second (`defaultSpamQPS`).
const SPAM_QPS: f64 = 1.0 / 300.0;
/// Distinct messages per reason before aggregation (`defaultAggregateMaxEvents`).
const AGGREGATE_MAX: usize = 10;
/// Window of aggregation (`defaultAggregateIntervalInSeconds`).
const AGGREGATE_WINDOW: Duration = Duration::from_secs(600);
/// Entries kept per map before old ones are dropped (client-go's LRU size).
const MAX_ENTRIES: usize = 4096;

/// Records Events about objects as one controller (`source.component`). Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    ctx: Ctx,
    component: &'static str,
    state: Arc<Mutex<State>>,
    /// Serializes the writes, in the order they were decided.
    writes: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct State {
    buckets: HashMap<String, Bucket>,
    aggregates: HashMap<String, Aggregate>,
    observed: HashMap<String, Observed>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Aggregate {
    messages: HashSet<String>,
    at: Instant,
}

struct Observed {
    name: String,
    count: i64,
    at: Instant,
}

/// What to write for one accepted event.
#[derive(Debug, PartialEq)]
enum Write {
    Create {
        name: String,
        message: String,
    },
    Bump {
        name: String,
        count: i64,
        message: String,
    },
}

impl State {
    /// Takes a token from the object's bucket; false when it is empty.
    fn allow(&mut self, object: &str, now: Instant) -> bool {
        let b = self.buckets.entry(object.to_string()).or_insert(Bucket {
            tokens: SPAM_BURST,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * SPAM_QPS).min(SPAM_BURST);
        b.at = now;
        if b.tokens < 1.0 {
            return false;
        }
        b.tokens -= 1.0;
        true
    }

    /// Runs one event through aggregation, deduplication and the spam filter.
    fn decide(
        &mut self,
        object: &str,
        typ: &str,
        reason: &str,
        message: &str,
        name_of: impl Fn() -> String,
        now: Instant,
    ) -> Option<Write> {
        self.prune(now);
        let agg_key = format!("{object}\u{0}{typ}\u{0}{reason}");
        let agg = self.aggregates.entry(agg_key.clone()).or_insert(Aggregate {
            messages: HashSet::new(),
            at: now,
        });
        if now.duration_since(agg.at) > AGGREGATE_WINDOW {
            agg.messages.clear();
        }
        agg.at = now;
        agg.messages.insert(message.to_string());
        let (key, message) = if agg.messages.len() < AGGREGATE_MAX {
            (format!("{agg_key}\u{0}{message}"), message.to_string())
        } else {
            // Keep the set below the threshold, as client-go does (PopAny).
            let drop = agg.messages.iter().find(|m| m.as_str() != message).cloned();
            if let Some(d) = drop {
                agg.messages.remove(&d);
            }
            (
                agg_key,
                format!("(combined from similar events): {message}"),
            )
        };
        if !self.allow(object, now) {
            return None;
        }
        match self.observed.get_mut(&key) {
            Some(o) => {
                o.count += 1;
                o.at = now;
                Some(Write::Bump {
                    name: o.name.clone(),
                    count: o.count,
                    message,
                })
            }
            None => {
                let name = name_of();
                self.observed.insert(
                    key,
                    Observed {
                        name: name.clone(),
                        count: 1,
                        at: now,
                    },
                );
                Some(Write::Create { name, message })
            }
        }
    }

    fn prune(&mut self, now: Instant) {
        let old = |at: Instant| now.duration_since(at) > AGGREGATE_WINDOW;
        if self.aggregates.len() > MAX_ENTRIES {
            self.aggregates.retain(|_, a| !old(a.at));
        }
        if self.observed.len() > MAX_ENTRIES {
            self.observed.retain(|_, o| !old(o.at));
        }
        if self.buckets.len() > MAX_ENTRIES {
            // A full bucket is the same as no bucket.
            self.buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * SPAM_QPS < SPAM_BURST
            });
        }
        for m in [
            self.aggregates.len(),
            self.observed.len(),
            self.buckets.len(),
        ] {
            if m > 2 * MAX_ENTRIES {
                *self = State::default();
                return;
            }
        }
    }
}

impl Recorder {
    /// A recorder writing as `component` (e.g. `replicaset-controller`).
    pub fn new(ctx: Ctx, component: &'static str) -> Recorder {
        Recorder {
            ctx,
            component,
            state: Arc::new(Mutex::new(State::default())),
            writes: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Records an event about `obj` (type `Normal` or `Warning`), subject to the correlator.
    pub fn event(&self, obj: &Value, typ: &str, reason: &str, message: impl Into<String>) {
        let message = message.into();
        let md = &obj["metadata"];
        let object_key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}",
            obj["kind"].as_str().unwrap_or(""),
            meta::namespace(obj),
            meta::name(obj),
            meta::uid(obj)
        );
        let base = meta::name(obj).to_string();
        let name_of = || {
            let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
            format!("{base}.{nanos:x}")
        };
        let Some(write) =
            self.state
                .lock()
                .decide(&object_key, typ, reason, &message, name_of, Instant::now())
        else {
            tracing::debug!(
                component = self.component,
                reason,
                "event dropped by the spam filter"
            );
            return;
        };
        let ns = match md["namespace"].as_str() {
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => "default".to_string(),
        };
        let involved = json!({
            "kind": obj["kind"], "namespace": md["namespace"], "name": md["name"], "uid": md["uid"],
            "apiVersion": obj["apiVersion"], "resourceVersion": md["resourceVersion"],
        });
        let (ctx, component, writes) = (self.ctx.clone(), self.component, self.writes.clone());
        let (typ, reason) = (typ.to_string(), reason.to_string());
        tokio::spawn(async move {
            let _order = writes.lock().await;
            let ts = meta::now_rfc3339();
            let create = |name: String, message: String, count: i64| {
                json!({
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": ns},
                    "involvedObject": involved,
                    "reason": reason,
                    "message": message,
                    "source": {"component": component},
                    "firstTimestamp": ts,
                    "lastTimestamp": ts,
                    "count": count,
                    "type": typ,
                    "eventTime": null,
                    "reportingComponent": component,
                    "reportingInstance": "",
                })
            };
            let res = match write {
                Write::Create { name, message } => ctx
                    .create(EVENTS, &ns, create(name, message, 1))
                    .await
                    .map(|_| ()),
                Write::Bump {
                    name,
                    count,
                    message,
                } => {
                    let bumped = ctx
                        .modify(EVENTS, &ns, &name, Part::Main, |ev| {
                            ev["count"] = json!(count);
                            ev["lastTimestamp"] = json!(ts);
                            ev["message"] = json!(message);
                            Ok(())
                        })
                        .await;
                    match bumped {
                        // The Event expired or was deleted: record it afresh.
                        Err(e) if e.code == 404 => ctx
                            .create(EVENTS, &ns, create(name, message, count))
                            .await
                            .map(|_| ()),
                        r => r.map(|_| ()),
                    }
                }
            };
            if let Err(e) = res {
                tracing::debug!(error = %e.message, "recording an event");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(st: &mut State, n: usize, now: Instant) -> Vec<Write> {
        let mut out = Vec::new();
        for i in 0..n {
            let msg = format!("Created pod: web-{i}");
            if let Some(w) = st.decide(
                "rs",
                "Normal",
                "SuccessfulCreate",
                &msg,
                || format!("ev{i}"),
                now,
            ) {
                out.push(w);
            }
        }
        out
    }

    #[test]
    fn a_burst_of_creates_becomes_nine_events_and_one_combined() {
        let mut st = State::default();
        let now = Instant::now();
        let w = run(&mut st, 1000, now);
        assert_eq!(w.len(), 25, "the spam filter lets 25 through");
        assert!(w[..9].iter().all(|w| matches!(w, Write::Create { .. })));
        assert_eq!(
            w[9],
            Write::Create {
                name: "ev9".into(),
                message: "(combined from similar events): Created pod: web-9".into()
            }
        );
        assert_eq!(
            w[24],
            Write::Bump {
                name: "ev9".into(),
                count: 16,
                message: "(combined from similar events): Created pod: web-24".into()
            }
        );
        // Five minutes later one more token is there.
        let later = now + Duration::from_secs(301);
        assert_eq!(run(&mut st, 3, later).len(), 1);
    }

    #[test]
    fn identical_events_bump_the_count() {
        let mut st = State::default();
        let now = Instant::now();
        let a = st.decide("d", "Warning", "FailedCreate", "quota", || "e1".into(), now);
        let b = st.decide("d", "Warning", "FailedCreate", "quota", || "e2".into(), now);
        assert_eq!(
            a,
            Some(Write::Create {
                name: "e1".into(),
                message: "quota".into()
            })
        );
        assert_eq!(
            b,
            Some(Write::Bump {
                name: "e1".into(),
                count: 2,
                message: "quota".into()
            })
        );
        // Another object has its own bucket.
        assert!(st
            .decide("other", "Normal", "X", "m", || "e3".into(), now)
            .is_some());
    }
}
