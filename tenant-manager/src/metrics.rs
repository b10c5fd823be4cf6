//! The tenant manager's Prometheus metrics, served at `/metrics` (`--metrics-listen`).

use std::net::SocketAddr;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder =
            PrometheusBuilder::new().set_buckets(&[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]).expect("static buckets").build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder is already installed; the tenant manager's metrics go to it");
        }
        metrics::describe_counter!("kplex_tenant_manager_reconciles_total", "VirtualCluster reconciles by result (ok, error).");
        metrics::describe_histogram!("kplex_tenant_manager_reconcile_duration_seconds", "Duration of one VirtualCluster reconcile.");
        metrics::describe_counter!("kplex_tenant_manager_master_restarts_total", "Tenant masters restarted after they died.");
        metrics::describe_gauge!("kplex_tenant_manager_masters", "Tenant masters under supervision.");
        handle
    })
}

/// Serves `/metrics` and `/healthz` on `listen`; returns the bound address.
pub async fn serve(listen: &str) -> anyhow::Result<SocketAddr> {
    let handle = install();
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| anyhow::anyhow!("metrics: listening on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || async move {
                handle.run_upkeep();
                ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(addr)
}
