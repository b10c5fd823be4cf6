//! Prometheus metrics at `/metrics` (and `/healthz`), from the `metrics` facade.

use std::net::SocketAddr;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls reuse it).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let b = PrometheusBuilder::new()
            .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
            .expect("static buckets");
        let recorder = b.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder is already installed; the node simulator's metrics go to it");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("kplex_nodesim_nodes", "Simulated nodes by health (ready, notready, unknown).");
    describe_gauge!("kplex_nodesim_pods", "Simulated pods tracked, by state (pending, running, terminating, finished).");
    describe_gauge!("kplex_nodesim_write_queue", "API writes waiting for a free slot.");
    describe_gauge!("kplex_nodesim_writes_in_flight", "API writes being sent.");
    describe_counter!("kplex_nodesim_api_requests_total", "API requests by kind and result.");
    describe_histogram!("kplex_nodesim_api_request_duration_seconds", "API request latency by kind.");
    describe_counter!(
        "kplex_nodesim_pod_transitions_total",
        "Pod lifecycle transitions (running, succeeded, failed, rejected, container_exited, container_restarted, deleted)."
    );
    describe_counter!("kplex_nodesim_pods_adopted_total", "Running pods picked up from a previous run.");
    describe_counter!("kplex_nodesim_pod_deletions_confirmed_total", "Pod deletions confirmed (grace period 0, UID precondition).");
    describe_histogram!("kplex_nodesim_pod_startup_seconds", "From a pod first seen on a node to its Running status written.");
}

/// Drains histogram samples into their summaries (bounded memory between scrapes).
pub fn upkeep() {
    if let Some(h) = HANDLE.get() {
        h.run_upkeep();
    }
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
