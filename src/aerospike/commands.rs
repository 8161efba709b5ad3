//! Typed info commands: the questions and orders the operator sends, as
//! methods of [`InfoClient`].
//!
//! Each method builds the command text, sends it with
//! [`InfoClient::one`] and hands the value to a parser from
//! [`super::reply`]; errors come back as [`InfoError`]s naming the node
//! and the command. The command syntax is the server's (field notes §3).

use std::net::{IpAddr, SocketAddr};

use futures::future::join_all;

use super::client::InfoClient;
use super::error::InfoError;
use super::reply::{
    self, NamespaceStats, NodeId, ReclusterOutcome, ReplyError, Statistics, TipClearOutcome,
    TipOutcome,
};

/// What one node says about itself and its cluster, read in a single
/// request so that the id and the statistics describe the same moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeObservation {
    /// The address asked (the node's service port).
    pub addr: SocketAddr,
    /// The node's id.
    pub node_id: NodeId,
    /// Its `statistics`.
    pub stats: Statistics,
}

impl InfoClient {
    /// Sends `command` and parses its value with `parse`.
    async fn call<T>(
        &self,
        addr: SocketAddr,
        command: &str,
        parse: impl FnOnce(&str) -> Result<T, ReplyError>,
    ) -> Result<T, InfoError> {
        let value = self.one(addr, command).await?;
        parse(&value).map_err(|error| InfoError::from_reply(addr, command, error))
    }

    /// `node`: the node's id.
    pub async fn node_id(&self, addr: SocketAddr) -> Result<NodeId, InfoError> {
        self.call(addr, "node", str::parse).await
    }

    /// `build`: the server version, e.g. `7.1.0.0`.
    pub async fn build(&self, addr: SocketAddr) -> Result<String, InfoError> {
        self.call(addr, "build", |v| reply::parse_word(v, "a version"))
            .await
    }

    /// `statistics`: the node-wide figures about its cluster.
    pub async fn statistics(&self, addr: SocketAddr) -> Result<Statistics, InfoError> {
        self.call(addr, "statistics", Statistics::parse).await
    }

    /// `namespaces`: the names of the node's namespaces.
    pub async fn namespaces(&self, addr: SocketAddr) -> Result<Vec<String>, InfoError> {
        self.call(addr, "namespaces", reply::parse_list).await
    }

    /// `namespace/<ns>`: one namespace's partition and migration figures.
    pub async fn namespace_stats(
        &self,
        addr: SocketAddr,
        namespace: &str,
    ) -> Result<NamespaceStats, InfoError> {
        let command = format!("namespace/{namespace}");
        self.call(addr, &command, NamespaceStats::parse).await
    }

    /// `tip:host=<host>;port=<heartbeat_port>`: asks the node at `addr` to
    /// heartbeat to `host`. One tip to any member of a cluster joins the
    /// whole cluster, since heartbeats carry adjacency lists.
    pub async fn tip(
        &self,
        addr: SocketAddr,
        host: IpAddr,
        heartbeat_port: u16,
    ) -> Result<TipOutcome, InfoError> {
        let command = format!("tip:host={host};port={heartbeat_port}");
        self.call(addr, &command, reply::parse_tip).await
    }

    /// `tip-clear:host-port-list=<ip>:<port>,...`: makes the node forget
    /// heartbeat seeds, so it stops dialing nodes that are gone for good.
    ///
    /// The list uses `ip:port` (IPv6 as `[ip]:port`), the form the server
    /// parses; the published meshworker script's `ip;port` is wrong (field
    /// notes §1). An empty list asks nothing and clears nothing, so no
    /// request is sent: the server would refuse it.
    pub async fn tip_clear(
        &self,
        addr: SocketAddr,
        heartbeats: &[SocketAddr],
    ) -> Result<TipClearOutcome, InfoError> {
        if heartbeats.is_empty() {
            return Ok(TipClearOutcome {
                cleared: 0,
                not_found: 0,
            });
        }
        let list: Vec<String> = heartbeats.iter().map(SocketAddr::to_string).collect();
        let command = format!("tip-clear:host-port-list={}", list.join(","));
        let sent = u32::try_from(heartbeats.len()).unwrap_or(u32::MAX);
        self.call(addr, &command, |v| reply::parse_tip_clear(v, sent))
            .await
    }

    /// `services-alumni`: service addresses of every node seen since the
    /// last reset, alive or not.
    pub async fn services_alumni(&self, addr: SocketAddr) -> Result<Vec<SocketAddr>, InfoError> {
        self.call(addr, "services-alumni", reply::parse_endpoints)
            .await
    }

    /// `services-alumni-reset`: forgets departed nodes, so clients that
    /// read the alumni list stop trying them.
    pub async fn services_alumni_reset(&self, addr: SocketAddr) -> Result<(), InfoError> {
        self.call(addr, "services-alumni-reset", reply::parse_ok)
            .await
    }

    /// `cluster-stable:size=<size>;ignore-migrations=<bool>`: the cluster
    /// key when the node considers its cluster settled at `size` members
    /// (and, unless ignored, done migrating); `None` when not.
    pub async fn cluster_stable(
        &self,
        addr: SocketAddr,
        size: u32,
        ignore_migrations: bool,
    ) -> Result<Option<String>, InfoError> {
        let command = format!("cluster-stable:size={size};ignore-migrations={ignore_migrations}");
        self.call(addr, &command, reply::parse_cluster_stable).await
    }

    /// `recluster:`: asks for a new cluster round, which is what makes a
    /// pending `quiesce` take effect. Only the principal acts on it.
    pub async fn recluster(&self, addr: SocketAddr) -> Result<ReclusterOutcome, InfoError> {
        self.call(addr, "recluster:", reply::parse_recluster).await
    }

    /// `quiesce:`: asks the node to hand its partitions off at the next
    /// recluster, before it is stopped. Enterprise Edition only: Community
    /// answers `ERROR:25:enterprise only`, returned as
    /// [`InfoError::Server`] with code 25.
    pub async fn quiesce(&self, addr: SocketAddr) -> Result<(), InfoError> {
        self.call(addr, "quiesce:", reply::parse_ok).await
    }

    /// `quiesce-undo:`: cancels a `quiesce`. Enterprise Edition only.
    pub async fn quiesce_undo(&self, addr: SocketAddr) -> Result<(), InfoError> {
        self.call(addr, "quiesce-undo:", reply::parse_ok).await
    }

    /// Reads the node's id and statistics in one request (`node` and
    /// `statistics`).
    pub async fn observe(&self, addr: SocketAddr) -> Result<NodeObservation, InfoError> {
        let lines = self.request(addr, &["node", "statistics"]).await?;
        // request() checked that there is one line per command, in order.
        let [(_, node), (_, stats)] =
            <[(String, String); 2]>::try_from(lines).map_err(|lines| InfoError::Protocol {
                addr,
                detail: format!("expected 2 reply lines, got {}", lines.len()),
            })?;
        Ok(NodeObservation {
            addr,
            node_id: node
                .parse()
                .map_err(|error| InfoError::from_reply(addr, "node", error))?,
            stats: Statistics::parse(&stats)
                .map_err(|error| InfoError::from_reply(addr, "statistics", error))?,
        })
    }

    /// Observes every address at once. Results come back in the order of
    /// `addrs`; one slow or dead node costs at most the call's timeout and
    /// does not hold up the others.
    pub async fn observe_all(
        &self,
        addrs: &[SocketAddr],
    ) -> Vec<Result<NodeObservation, InfoError>> {
        join_all(addrs.iter().map(|addr| self.observe(*addr))).await
    }
}
