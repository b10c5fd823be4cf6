//! Prometheus metrics at `/metrics` (metrics + metrics-exporter-prometheus):
//!
//! - `kplex_syncer_queue_depth{tenant}`: keys queued or in progress (computed when scraped)
//! - `kplex_syncer_queue_dropped_total{tenant}`: keys dropped at the per-tenant bound
//! - `kplex_syncer_sync_duration_seconds{tenant}`: from a key's queueing to its reconcile's end
//! - `kplex_syncer_super_create_duration_seconds{tenant}`: super pod creation calls
//! - `kplex_syncer_tenant_writes_total{tenant,op}`: writes into tenants
//! - `kplex_syncer_patrol_repairs_total{resource}`: drift the patrol found (missing super
//!   objects, orphans)
//! - `kplex_syncer_errors_total{tenant}`: failed reconciles (retried with backoff)
//! - `kplex_syncer_connected_tenants`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::proto::write::Op;

/// Installs the global recorder and returns its handle.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
    let recorder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), &buckets)?.build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        tracing::warn!("a metrics recorder was already installed in this process");
    }
    Ok(handle)
}

/// Serves `GET /metrics`; gauges of the queue are computed at each scrape (nothing polls).
pub async fn serve(addr: SocketAddr, handle: PrometheusHandle, syncer: Arc<crate::Syncer>) -> anyhow::Result<SocketAddr> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let h = handle.clone();
            let s = syncer.clone();
            async move {
                for (tenant, d) in s.queue.depths() {
                    metrics::gauge!("kplex_syncer_queue_depth", "tenant" => tenant.to_string()).set((d.queued + d.processing) as f64);
                    metrics::counter!("kplex_syncer_queue_dropped_total", "tenant" => tenant.to_string()).absolute(d.dropped);
                }
                let connected = s.tenants.all().iter().filter(|t| t.state.read().conn.is_some()).count();
                metrics::gauge!("kplex_syncer_connected_tenants").set(connected as f64);
                ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], h.render())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("metrics server: {e}");
        }
    });
    Ok(bound)
}

pub fn synced(tenant: &str, latency: Duration, ok: bool) {
    metrics::histogram!("kplex_syncer_sync_duration_seconds", "tenant" => tenant.to_string()).record(latency.as_secs_f64());
    if !ok {
        metrics::counter!("kplex_syncer_errors_total", "tenant" => tenant.to_string()).increment(1);
    }
}

pub fn super_create(tenant: &str, took: Duration) {
    metrics::histogram!("kplex_syncer_super_create_duration_seconds", "tenant" => tenant.to_string()).record(took.as_secs_f64());
}

pub fn tenant_write(tenant: &str, op: Op) {
    metrics::counter!("kplex_syncer_tenant_writes_total", "tenant" => tenant.to_string(), "op" => op.as_str_name()).increment(1);
}

pub fn patrol_repair(resource: &'static str) {
    metrics::counter!("kplex_syncer_patrol_repairs_total", "resource" => resource).increment(1);
}
