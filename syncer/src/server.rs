//! The gRPC `Sync` service tenant masters connect to (mutual TLS; the tenant is whoever the
//! client certificate names).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::proto::{self, syncer_message, tenant_message, SyncerMessage, TenantMessage};
use crate::tenants::Conn;
use crate::Syncer;

/// The tonic service.
pub struct SyncService(pub Arc<Syncer>);

#[tonic::async_trait]
impl proto::syncer_server::Syncer for SyncService {
    type SyncStream = ReceiverStream<Result<SyncerMessage, Status>>;

    async fn sync(&self, req: Request<Streaming<TenantMessage>>) -> Result<Response<Self::SyncStream>, Status> {
        let certs = req.peer_certs().ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let id = certs
            .first()
            .and_then(|c| crate::pki::identity_of(c.as_ref()))
            .ok_or_else(|| Status::unauthenticated("the client certificate names no tenant (CN) and uid (OU)"))?;
        let s = self.0.clone();
        let vc = s.supers.virtual_cluster(&id.tenant).ok_or_else(|| Status::unavailable(format!("no VirtualCluster {} (yet)", id.tenant)))?;
        if vc["metadata"]["uid"].as_str() != Some(id.uid.as_str()) {
            return Err(Status::permission_denied(format!("the certificate is for an earlier VirtualCluster {}", id.tenant)));
        }
        let mut inbound = req.into_inner();
        let hello = match inbound.message().await? {
            Some(TenantMessage { msg: Some(tenant_message::Msg::Hello(h)) }) => h,
            _ => return Err(Status::invalid_argument("the first message must be Hello")),
        };
        let tenant = s.tenants.get_or_insert(&id.tenant, &id.uid);
        s.queue.set_weight(&tenant.name, vc["spec"]["syncWeight"].as_u64().unwrap_or(1));
        let (tx, rx) = mpsc::channel(1024);
        let conn = Arc::new(Conn::new(s.conn_ids.fetch_add(1, Ordering::Relaxed), tx));
        {
            let mut st = tenant.state.write();
            st.conn = Some(conn.clone());
            st.api_endpoint = hello.api_endpoint.clone();
        }
        let resume = proto::Resume { resource_versions: tenant.resume_points().into_iter().collect() };
        tracing::info!(tenant = %tenant.name, endpoint = hello.api_endpoint, ?resume, "tenant master connected");
        conn.send(SyncerMessage { msg: Some(syncer_message::Msg::Resume(resume)) }).await;
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(TenantMessage { msg: Some(tenant_message::Msg::Changes(c)) })) => {
                        let (res, rv) = (c.resource.clone(), c.resource_version);
                        s.apply_changes(&tenant, c);
                        let ack = proto::Ack { resource: res, resource_version: rv };
                        conn.send(SyncerMessage { msg: Some(syncer_message::Msg::Ack(ack)) }).await;
                    }
                    Ok(Some(TenantMessage { msg: Some(tenant_message::Msg::WriteResult(r)) })) => conn.complete(r),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        tracing::info!(tenant = %tenant.name, error = %e, "tenant stream ended");
                        break;
                    }
                }
            }
            let mut st = tenant.state.write();
            if st.conn.as_ref().is_some_and(|c| c.id == conn.id) {
                st.conn = None;
            }
            tracing::info!(tenant = %tenant.name, "tenant master disconnected");
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
