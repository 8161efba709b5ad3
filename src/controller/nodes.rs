//! [`NodeApi`]: the info calls a reconcile makes, as a trait so reconcile
//! can run against real nodes ([`CountingInfo`]) or a scripted fake in
//! unit tests.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::aerospike::{InfoClient, InfoError, NodeReport, TipClearOutcome, TipOutcome};

use super::telemetry::Counters;

/// The questions and orders the mesh step sends to Aerospike nodes.
pub trait NodeApi: Send + Sync + 'static {
    /// Everything a pass reads from the node, in one request
    /// ([`InfoClient::observe_node`]); `expected` is the cluster size asked
    /// of `cluster-stable`.
    fn observe(
        &self,
        addr: SocketAddr,
        expected: u32,
    ) -> impl Future<Output = Result<NodeReport, InfoError>> + Send;

    /// `tip`: asks the node at `addr` to heartbeat to `host:heartbeat_port`.
    fn tip(
        &self,
        addr: SocketAddr,
        host: IpAddr,
        heartbeat_port: u16,
    ) -> impl Future<Output = Result<TipOutcome, InfoError>> + Send;

    /// `tip-clear`: makes the node forget these heartbeat endpoints.
    fn tip_clear(
        &self,
        addr: SocketAddr,
        heartbeats: &[SocketAddr],
    ) -> impl Future<Output = Result<TipClearOutcome, InfoError>> + Send;

    /// `services-alumni-reset`.
    fn alumni_reset(&self, addr: SocketAddr) -> impl Future<Output = Result<(), InfoError>> + Send;

    /// Whether every namespace of the node has a pending quiesce, and
    /// whether it took effect (`namespaces`, then `namespace/<ns>` each).
    fn quiesce_state(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = Result<QuiesceState, InfoError>> + Send;

    /// `quiesce:` (Enterprise), then `recluster:` on every node in `members`
    /// (only the principal acts on it), so that it takes effect.
    fn quiesce(
        &self,
        addr: SocketAddr,
        members: &[SocketAddr],
    ) -> impl Future<Output = Result<(), InfoError>> + Send;

    /// `recluster:` on every node in `members` (only the principal acts).
    fn recluster(
        &self,
        members: &[SocketAddr],
    ) -> impl Future<Output = Result<(), InfoError>> + Send;
}

/// A node's quiesce, over all its namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuiesceState {
    /// Every namespace has `pending_quiesce=true`.
    pub pending: bool,
    /// Every namespace has `effective_is_quiesced=true`.
    pub effective: bool,
}

/// [`NodeApi`] over the real info protocol, counting every request.
#[derive(Debug, Clone)]
pub struct CountingInfo {
    client: InfoClient,
    counters: Arc<Counters>,
}

impl CountingInfo {
    /// Wraps `client` (whose timeouts bound every call), counting into
    /// `counters`.
    pub fn new(client: InfoClient, counters: Arc<Counters>) -> CountingInfo {
        CountingInfo { client, counters }
    }

    fn request(&self) {
        Counters::bump(&self.counters.info_requests);
    }

    /// Counts a command that changes the node, under `counter` and
    /// `info_writes`.
    fn write(&self, counter: &std::sync::atomic::AtomicU64) {
        self.request();
        Counters::bump(counter);
        Counters::bump(&self.counters.info_writes);
    }
}

impl NodeApi for CountingInfo {
    async fn observe(&self, addr: SocketAddr, expected: u32) -> Result<NodeReport, InfoError> {
        self.request();
        self.client.observe_node(addr, expected).await
    }

    async fn tip(
        &self,
        addr: SocketAddr,
        host: IpAddr,
        heartbeat_port: u16,
    ) -> Result<TipOutcome, InfoError> {
        self.write(&self.counters.tips);
        self.client.tip(addr, host, heartbeat_port).await
    }

    async fn tip_clear(
        &self,
        addr: SocketAddr,
        heartbeats: &[SocketAddr],
    ) -> Result<TipClearOutcome, InfoError> {
        self.write(&self.counters.tip_clears);
        self.client.tip_clear(addr, heartbeats).await
    }

    async fn alumni_reset(&self, addr: SocketAddr) -> Result<(), InfoError> {
        self.write(&self.counters.alumni_resets);
        self.client.services_alumni_reset(addr).await
    }

    async fn quiesce_state(&self, addr: SocketAddr) -> Result<QuiesceState, InfoError> {
        self.request();
        let namespaces = self.client.namespaces(addr).await?;
        let mut state = QuiesceState {
            pending: !namespaces.is_empty(),
            effective: !namespaces.is_empty(),
        };
        for namespace in namespaces {
            self.request();
            let stats = self.client.namespace_stats(addr, &namespace).await?;
            state.pending &= stats.pending_quiesce;
            state.effective &= stats.effective_is_quiesced;
        }
        Ok(state)
    }

    async fn quiesce(&self, addr: SocketAddr, members: &[SocketAddr]) -> Result<(), InfoError> {
        self.write(&self.counters.quiesces);
        self.client.quiesce(addr).await?;
        self.recluster(members).await
    }

    async fn recluster(&self, members: &[SocketAddr]) -> Result<(), InfoError> {
        for member in members {
            self.request();
            Counters::bump(&self.counters.info_writes);
            self.client.recluster(*member).await?;
        }
        Ok(())
    }
}
