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

    /// Reads the node's id, statistics and `services-alumni` in one
    /// request: everything the mesh step of a reconcile needs from a node,
    /// for one round trip. Alumni entries that are not `ip:port` are left
    /// out, and an error reply to `services-alumni` reads as no alumni.
    pub async fn observe_with_alumni(
        &self,
        addr: SocketAddr,
    ) -> Result<(NodeObservation, Vec<SocketAddr>), InfoError> {
        let lines = self
            .request(addr, &["node", "statistics", "services-alumni"])
            .await?;
        let [(_, node), (_, stats), (_, alumni)] = <[(String, String); 3]>::try_from(lines)
            .map_err(|lines| InfoError::Protocol {
                addr,
                detail: format!("expected 3 reply lines, got {}", lines.len()),
            })?;
        let observation = NodeObservation {
            addr,
            node_id: node
                .parse()
                .map_err(|error| InfoError::from_reply(addr, "node", error))?,
            stats: Statistics::parse(&stats)
                .map_err(|error| InfoError::from_reply(addr, "statistics", error))?,
        };
        // The alumni only serve the clean-up of departed nodes, so they
        // never cost the observation: an entry that is not `ip:port` (a
        // server configured with a host name as access address) is
        // skipped, and a server that refuses the command gives none.
        let alumni = reply::parse_list(&alumni)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|entry| entry.parse().ok())
            .collect();
        Ok((observation, alumni))
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

#[cfg(test)]
mod tests {
    //! The exact command text each method sends, and how one request
    //! carries several commands, checked against a recording fake node.
    //! What a real node answers is tested in `tests/aerospike_client.rs`.

    use super::*;
    use crate::aerospike::frame::{Header, HEADER_LEN};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Every request the fake received: one entry per connection, holding
    /// the commands of its request.
    type Log = Arc<Mutex<Vec<Vec<String>>>>;

    /// A fake node answering each command with `answer(command)`.
    async fn fake(answer: fn(&str) -> &'static str) -> (SocketAddr, Log) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Log = Arc::default();
        let record = log.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = [0u8; HEADER_LEN];
                stream.read_exact(&mut head).await.unwrap();
                let len = Header::decode(head, 1 << 20).unwrap().body_len as usize;
                let mut body = vec![0u8; len];
                stream.read_exact(&mut body).await.unwrap();
                let text = String::from_utf8(body).unwrap();
                let commands: Vec<String> = text.lines().map(str::to_string).collect();
                let mut reply = String::new();
                for command in &commands {
                    reply.push_str(&format!("{command}\t{}\n", answer(command)));
                }
                record.lock().unwrap().push(commands);
                let mut frame = Header {
                    body_len: reply.len() as u64,
                }
                .encode()
                .to_vec();
                frame.extend_from_slice(reply.as_bytes());
                stream.write_all(&frame).await.unwrap();
            }
        });
        (addr, log)
    }

    fn sent(log: &Log) -> Vec<Vec<String>> {
        log.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn mesh_commands_use_the_server_syntax() {
        let (addr, log) = fake(|command| {
            if command.starts_with("tip-clear") {
                "ERROR::1 cleared, 1 not found"
            } else {
                "ok"
            }
        })
        .await;
        let client = InfoClient::new();
        let host: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            client.tip(addr, host, 3002).await.unwrap(),
            TipOutcome::Added
        );
        let seeds: [SocketAddr; 2] = [
            "10.0.0.2:3002".parse().unwrap(),
            "[fd00::2]:3002".parse().unwrap(),
        ];
        assert_eq!(
            client.tip_clear(addr, &seeds).await.unwrap(),
            TipClearOutcome {
                cleared: 1,
                not_found: 1
            }
        );
        client.services_alumni_reset(addr).await.unwrap();
        assert_eq!(
            client.recluster(addr).await.unwrap(),
            ReclusterOutcome::Started
        );
        client.quiesce(addr).await.unwrap();
        client.quiesce_undo(addr).await.unwrap();
        // Nothing to clear: nothing sent.
        client.tip_clear(addr, &[]).await.unwrap();
        assert_eq!(
            sent(&log),
            vec![
                vec!["tip:host=10.0.0.2;port=3002"],
                vec!["tip-clear:host-port-list=10.0.0.2:3002,[fd00::2]:3002"],
                vec!["services-alumni-reset"],
                vec!["recluster:"],
                vec!["quiesce:"],
                vec!["quiesce-undo:"],
            ]
        );
    }

    #[tokio::test]
    async fn cluster_stable_and_namespace_commands() {
        let (addr, log) = fake(|command| match command {
            "cluster-stable:size=3;ignore-migrations=false" => "ERROR:7:unstable cluster",
            "cluster-stable:size=2;ignore-migrations=true" => "5A1C0E2B9D74",
            _ => "ERROR:4:bad size",
        })
        .await;
        let client = InfoClient::new();
        assert_eq!(client.cluster_stable(addr, 3, false).await.unwrap(), None);
        assert_eq!(
            client.cluster_stable(addr, 2, true).await.unwrap(),
            Some("5A1C0E2B9D74".to_string())
        );
        assert!(matches!(
            client.namespace_stats(addr, "test").await,
            Err(InfoError::Server { code: Some(4), ref command, .. }) if command == "namespace/test"
        ));
        assert_eq!(sent(&log).len(), 3);
    }

    #[tokio::test]
    async fn observe_sends_node_and_statistics_in_one_request() {
        let (addr, log) = fake(|command| match command {
            "node" => "BB9",
            _ => {
                "cluster_size=1;cluster_key=A1;cluster_generation=1;cluster_principal=BB9;\
                 cluster_integrity=true;cluster_is_member=true;migrate_allowed=true;\
                 migrate_partitions_remaining=0"
            }
        })
        .await;
        let seen = InfoClient::new().observe(addr).await.unwrap();
        assert_eq!(seen.node_id, NodeId(0xBB9));
        assert_eq!(seen.stats.cluster_key, "A1");
        assert_eq!(sent(&log), vec![vec!["node", "statistics"]]);
    }

    #[tokio::test]
    async fn observe_with_alumni_adds_services_alumni_to_the_same_request() {
        let (addr, log) = fake(|command| match command {
            "node" => "BB9",
            "services-alumni" => "10.0.1.5:3000;db-2.example:3000;10.0.1.6:3000",
            _ => {
                "cluster_size=1;cluster_key=A1;cluster_generation=1;cluster_principal=BB9;\
                 cluster_integrity=true;cluster_is_member=true;migrate_allowed=true;\
                 migrate_partitions_remaining=0"
            }
        })
        .await;
        let (seen, alumni) = InfoClient::new().observe_with_alumni(addr).await.unwrap();
        assert_eq!(seen.node_id, NodeId(0xBB9));
        assert_eq!(
            alumni,
            vec![
                "10.0.1.5:3000".parse::<SocketAddr>().unwrap(),
                "10.0.1.6:3000".parse().unwrap()
            ]
        );
        assert_eq!(
            sent(&log),
            vec![vec!["node", "statistics", "services-alumni"]]
        );
    }

    #[tokio::test]
    async fn a_malformed_value_names_node_command_and_field() {
        let (addr, _log) = fake(|command| match command {
            "node" => "BB9",
            _ => "cluster_size=many",
        })
        .await;
        let error = InfoClient::new().observe(addr).await.unwrap_err();
        assert!(
            matches!(
                &error,
                InfoError::Malformed {
                    command,
                    source: ReplyError::BadField {
                        field: "cluster_size",
                        ..
                    },
                    ..
                } if command == "statistics"
            ),
            "{error}"
        );
        assert!(error.to_string().starts_with(&addr.to_string()));
    }
}
