//! Prometheus metrics at `/metrics` (metrics + metrics-exporter-prometheus):
//!
//! - `kplex_scheduler_decisions_total{result="scheduled|unschedulable"}`
//! - `kplex_scheduler_unschedulable_total{tenant, cause="filters|quota|error"}`
//! - `kplex_scheduler_decision_duration_seconds` (histogram, per pod)
//! - `kplex_scheduler_batch_size` (histogram, pods per Schedule call)
//! - `kplex_scheduler_nodes`, `kplex_scheduler_placed_pods`, `kplex_scheduler_reservations`

use std::net::SocketAddr;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the global recorder (once per process; later calls get a handle that renders
/// nothing new) and returns its handle.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("kplex_scheduler_decision_duration_seconds".into()),
            &[0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
        )?
        .set_buckets_for_metric(Matcher::Full("kplex_scheduler_batch_size".into()), &[1.0, 10.0, 100.0, 1000.0, 10000.0])?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        tracing::warn!("a metrics recorder was already installed in this process");
    }
    Ok(handle)
}

/// Serves `GET /metrics` until the process ends; returns the bound address.
pub async fn serve(addr: SocketAddr, handle: PrometheusHandle) -> anyhow::Result<SocketAddr> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let h = handle.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], h.render()) }
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
