//! [`NodeApi`]: the info calls a reconcile makes, as a trait so reconcile
//! can run against real nodes ([`CountingInfo`]) or a scripted fake in
//! unit tests.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::aerospike::commands::SetConfigOutcome;
use crate::aerospike::{InfoClient, InfoError, NodeReport, TipClearOutcome, TipOutcome};
use crate::serverconf::LiveParam;

use super::metrics::Metrics;
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

    /// `set-config` of one live parameter ([`InfoClient::set_config`]).
    fn set_config(
        &self,
        addr: SocketAddr,
        param: &LiveParam,
    ) -> impl Future<Output = Result<SetConfigOutcome, InfoError>> + Send;

    /// `get-config` of `param`'s context ([`InfoClient::get_config`]).
    fn get_config(
        &self,
        addr: SocketAddr,
        param: &LiveParam,
    ) -> impl Future<Output = Result<String, InfoError>> + Send;

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

/// [`NodeApi`] over the real info protocol, counting every request into
/// the [`Counters`] and, when given, the [`Metrics`] (requests and errors
/// by command, tips, tip-clears, ...). Every request goes through
/// [`CountingInfo::send`].
#[derive(Debug, Clone)]
pub struct CountingInfo {
    client: InfoClient,
    counters: Arc<Counters>,
    metrics: Option<Arc<Metrics>>,
}

impl CountingInfo {
    /// Wraps `client` (whose timeouts bound every call), counting into
    /// `counters`.
    pub fn new(client: InfoClient, counters: Arc<Counters>) -> CountingInfo {
        CountingInfo {
            client,
            counters,
            metrics: None,
        }
    }

    /// Also counts into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> CountingInfo {
        self.metrics = Some(metrics);
        self
    }

    /// Counts one request carrying `command`, sends it, and counts its
    /// error if any. A command that changes the node also counts under
    /// `counter` (when it has one) and `info_writes`.
    async fn send<T>(
        &self,
        command: &'static str,
        write: Option<Option<&AtomicU64>>,
        request: impl Future<Output = Result<T, InfoError>>,
    ) -> Result<T, InfoError> {
        Counters::bump(&self.counters.info_requests);
        if let Some(counter) = write {
            if let Some(counter) = counter {
                Counters::bump(counter);
            }
            Counters::bump(&self.counters.info_writes);
        }
        if let Some(metrics) = &self.metrics {
            metrics.info_request(command);
        }
        let result = request.await;
        if let (Some(metrics), Err(_)) = (&self.metrics, &result) {
            metrics.info_error(command);
        }
        result
    }
}

impl NodeApi for CountingInfo {
    async fn observe(&self, addr: SocketAddr, expected: u32) -> Result<NodeReport, InfoError> {
        self.send("observe", None, self.client.observe_node(addr, expected))
            .await
    }

    async fn tip(
        &self,
        addr: SocketAddr,
        host: IpAddr,
        heartbeat_port: u16,
    ) -> Result<TipOutcome, InfoError> {
        let counter = Some(&self.counters.tips);
        self.send(
            "tip",
            Some(counter),
            self.client.tip(addr, host, heartbeat_port),
        )
        .await
    }

    async fn tip_clear(
        &self,
        addr: SocketAddr,
        heartbeats: &[SocketAddr],
    ) -> Result<TipClearOutcome, InfoError> {
        let counter = Some(&self.counters.tip_clears);
        self.send(
            "tip-clear",
            Some(counter),
            self.client.tip_clear(addr, heartbeats),
        )
        .await
    }

    async fn alumni_reset(&self, addr: SocketAddr) -> Result<(), InfoError> {
        let counter = Some(&self.counters.alumni_resets);
        self.send(
            "services-alumni-reset",
            Some(counter),
            self.client.services_alumni_reset(addr),
        )
        .await
    }

    async fn quiesce_state(&self, addr: SocketAddr) -> Result<QuiesceState, InfoError> {
        let namespaces = self
            .send("namespaces", None, self.client.namespaces(addr))
            .await?;
        let mut state = QuiesceState {
            pending: !namespaces.is_empty(),
            effective: !namespaces.is_empty(),
        };
        for namespace in namespaces {
            let stats = self
                .send(
                    "namespace",
                    None,
                    self.client.namespace_stats(addr, &namespace),
                )
                .await?;
            state.pending &= stats.pending_quiesce;
            state.effective &= stats.effective_is_quiesced;
        }
        Ok(state)
    }

    async fn set_config(
        &self,
        addr: SocketAddr,
        param: &LiveParam,
    ) -> Result<SetConfigOutcome, InfoError> {
        self.send(
            "set-config",
            Some(None),
            self.client.set_config(addr, param),
        )
        .await
    }

    async fn get_config(&self, addr: SocketAddr, param: &LiveParam) -> Result<String, InfoError> {
        self.send("get-config", None, self.client.get_config(addr, param))
            .await
    }

    async fn quiesce(&self, addr: SocketAddr, members: &[SocketAddr]) -> Result<(), InfoError> {
        let counter = Some(&self.counters.quiesces);
        self.send("quiesce", Some(counter), self.client.quiesce(addr))
            .await?;
        self.recluster(members).await
    }

    async fn recluster(&self, members: &[SocketAddr]) -> Result<(), InfoError> {
        for member in members {
            self.send("recluster", Some(None), self.client.recluster(*member))
                .await?;
        }
        Ok(())
    }
}
