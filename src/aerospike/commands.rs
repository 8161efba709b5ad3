//! Typed info commands: the questions and orders the operator sends, as
//! methods of [`InfoClient`].
//!
//! Each method builds the command text, sends it with
//! [`InfoClient::one`] and hands the value to a parser from
//! [`super::reply`]; errors come back as [`InfoError`]s naming the node
//! and the command. The command syntax is the server's (field notes §3).
//!
//! Every command is built from typed values only: addresses and ports
//! ([`IpAddr`], [`SocketAddr`], `u16`, which the controller takes from the
//! task addresses the Docker API reports), counts (`u32`, `bool`) and
//! [`Namespace`] names a node listed, checked by their form. No method
//! takes text a user wrote, so nothing a user or a node says can add a
//! `;`, `:`, newline or tab to a command (the functions `*_command` below
//! are what the methods send; their property tests check it).

use std::net::{IpAddr, SocketAddr};

use futures::future::join_all;

use super::client::InfoClient;
use crate::serverconf::LiveParam;

/// What a node answered a `set-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetConfigOutcome {
    /// `ok`: the node runs the new value.
    Applied,
    /// Anything else, as the node said it (at most 200 characters): the
    /// server does not take this parameter or value live.
    Refused(String),
}
use super::error::InfoError;
use super::reply::{
    self, ClusterStable, Namespace, NamespaceStats, NodeId, PeerEntry, ReclusterOutcome,
    ReplyError, Statistics, TipClearOutcome, TipOutcome,
};

/// `tip:host=<host>;port=<heartbeat_port>` (IPv6 unbracketed, as the server
/// reads it: `host` ends at the `;`).
pub fn tip_command(host: IpAddr, heartbeat_port: u16) -> String {
    format!("tip:host={host};port={heartbeat_port}")
}

/// `tip-clear:host-port-list=<ip>:<port>,...` (IPv6 as `[ip]:port`); `None`
/// for an empty list, which asks nothing.
pub fn tip_clear_command(heartbeats: &[SocketAddr]) -> Option<String> {
    if heartbeats.is_empty() {
        return None;
    }
    let list: Vec<String> = heartbeats.iter().map(SocketAddr::to_string).collect();
    Some(format!("tip-clear:host-port-list={}", list.join(",")))
}

/// `cluster-stable:size=<size>;ignore-migrations=<bool>`.
pub fn cluster_stable_command(size: u32, ignore_migrations: bool) -> String {
    format!("cluster-stable:size={size};ignore-migrations={ignore_migrations}")
}

/// `namespace/<ns>`.
pub fn namespace_command(namespace: &Namespace) -> String {
    format!("namespace/{namespace}")
}

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

impl NodeObservation {
    /// The observation of the node at `addr` from its `node` and
    /// `statistics` values; an error names the command whose value did not
    /// parse.
    fn parse(addr: SocketAddr, node: &str, stats: &str) -> Result<NodeObservation, InfoError> {
        Ok(NodeObservation {
            addr,
            node_id: node
                .parse()
                .map_err(|error| InfoError::from_reply(addr, "node", error))?,
            stats: Statistics::parse(stats)
                .map_err(|error| InfoError::from_reply(addr, "statistics", error))?,
        })
    }
}

/// Everything one reconcile pass reads from a node
/// ([`InfoClient::observe_node`]). Optional parts are `None` when the
/// node's reply did not parse: unknown, not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// Its id and statistics.
    pub observation: NodeObservation,
    /// The addresses it publishes as its own (`service-clear-std`): with
    /// `address any`, every interface address it has.
    pub advertised: Option<Vec<IpAddr>>,
    /// Its current peers (`peers-clear-std`).
    pub peers: Option<Vec<PeerEntry>>,
    /// Every node it has known since its last `services-alumni-reset`,
    /// current peers included (`alumni-clear-std`).
    pub alumni: Option<Vec<PeerEntry>>,
    /// Its `cluster-stable` verdict for the size asked.
    pub stable: Option<ClusterStable>,
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

    /// `namespaces`: the names of the node's namespaces (a name that is not
    /// one fails the call, see [`Namespace`]).
    pub async fn namespaces(&self, addr: SocketAddr) -> Result<Vec<Namespace>, InfoError> {
        self.call(addr, "namespaces", reply::parse_namespaces).await
    }

    /// `namespace/<ns>`: one namespace's partition and migration figures.
    pub async fn namespace_stats(
        &self,
        addr: SocketAddr,
        namespace: &Namespace,
    ) -> Result<NamespaceStats, InfoError> {
        let command = namespace_command(namespace);
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
        let command = tip_command(host, heartbeat_port);
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
        let Some(command) = tip_clear_command(heartbeats) else {
            return Ok(TipClearOutcome {
                cleared: 0,
                not_found: 0,
            });
        };
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
    /// (and, unless ignored, done migrating); the node's words when not.
    pub async fn cluster_stable(
        &self,
        addr: SocketAddr,
        size: u32,
        ignore_migrations: bool,
    ) -> Result<ClusterStable, InfoError> {
        let command = cluster_stable_command(size, ignore_migrations);
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

    /// `set-config:context=…;NAME=VALUE` for one parameter of a config
    /// object ([`LiveParam::set_command`], built from values checked by
    /// their form). `ok` is [`SetConfigOutcome::Applied`]; anything else
    /// (the server answers `error`, or `ERROR:…`, for a parameter it does
    /// not take live or a value it refuses) is
    /// [`SetConfigOutcome::Refused`] with the node's words.
    pub async fn set_config(
        &self,
        addr: SocketAddr,
        param: &LiveParam,
    ) -> Result<SetConfigOutcome, InfoError> {
        let reply = self.one(addr, &param.set_command()).await?;
        Ok(if reply.trim() == "ok" {
            SetConfigOutcome::Applied
        } else {
            SetConfigOutcome::Refused(reply.trim().chars().take(200).collect())
        })
    }

    /// `get-config:context=…` of `param`'s context: the node's `key=value;…`
    /// list, as it answered.
    pub async fn get_config(
        &self,
        addr: SocketAddr,
        param: &LiveParam,
    ) -> Result<String, InfoError> {
        self.one(addr, &param.get_command()).await
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
        NodeObservation::parse(addr, &node, &stats)
    }

    /// Reads everything one reconcile pass needs from a node in one
    /// request, so that it all describes the same moment: `node`,
    /// `statistics`, `service-clear-std` (what the node publishes as its
    /// own addresses), `peers-clear-std` and `alumni-clear-std` (its
    /// current peers, and every node it has known since the last
    /// `services-alumni-reset`), and
    /// `cluster-stable:size=<expected>;ignore-migrations=false` (whether
    /// the node, by its own checks, is in a settled cluster of `expected`
    /// nodes with its migrations done).
    ///
    /// The id and statistics are required. The rest only serves the mesh
    /// clean-up, the address check and the readiness gate, so it never
    /// costs the observation: a value that does not parse reads as unknown
    /// (`None`), and the caller decides nothing from it.
    pub async fn observe_node(
        &self,
        addr: SocketAddr,
        expected: u32,
    ) -> Result<NodeReport, InfoError> {
        let stable_command = cluster_stable_command(expected, false);
        let lines = self
            .request(
                addr,
                &[
                    "node",
                    "statistics",
                    "service-clear-std",
                    "peers-clear-std",
                    "alumni-clear-std",
                    &stable_command,
                ],
            )
            .await?;
        let [(_, node), (_, stats), (_, service), (_, peers), (_, alumni), (_, stable)] =
            <[(String, String); 6]>::try_from(lines).map_err(|lines| InfoError::Protocol {
                addr,
                detail: format!("expected 6 reply lines, got {}", lines.len()),
            })?;
        Ok(NodeReport {
            observation: NodeObservation::parse(addr, &node, &stats)?,
            advertised: reply::parse_service_addrs(&service).ok(),
            peers: reply::parse_peers(&peers).ok(),
            alumni: reply::parse_peers(&alumni).ok(),
            stable: reply::parse_cluster_stable(&stable).ok(),
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
                "error: 1 cleared, 1 not found"
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
            "cluster-stable:size=3;ignore-migrations=false" => "ERROR::unstable-cluster",
            "cluster-stable:size=2;ignore-migrations=true" => "5A1C0E2B9D74",
            _ => "ERROR:4:bad size",
        })
        .await;
        let client = InfoClient::new();
        assert_eq!(
            client.cluster_stable(addr, 3, false).await.unwrap(),
            ClusterStable::Unstable {
                reply: "unstable-cluster".into()
            }
        );
        assert_eq!(
            client.cluster_stable(addr, 2, true).await.unwrap(),
            ClusterStable::Stable {
                cluster_key: "5A1C0E2B9D74".into()
            }
        );
        assert!(matches!(
            client.namespace_stats(addr, &"test".parse().unwrap()).await,
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

    const ONE_NODE_STATS: &str = "cluster_size=1;cluster_key=A1;cluster_generation=1;\
        cluster_principal=BB9;cluster_integrity=true;cluster_is_member=true;\
        migrate_allowed=true;migrate_partitions_remaining=0";

    #[tokio::test]
    async fn observe_node_asks_everything_in_one_request() {
        let (addr, log) = fake(|command| match command {
            "node" => "BB9",
            "statistics" => ONE_NODE_STATS,
            "service-clear-std" => "10.0.1.5:3000,10.215.0.3:3000",
            "peers-clear-std" => "4,3000,[[BB8,,[10.0.1.6,10.215.0.3]]]",
            "alumni-clear-std" => "4,3000,[[BB8,,[10.0.1.6,10.215.0.3]],[BB7,,[10.0.1.4]]]",
            _ => "ERROR::unstable-cluster",
        })
        .await;
        let report = InfoClient::new().observe_node(addr, 3).await.unwrap();
        assert_eq!(report.observation.node_id, NodeId(0xBB9));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            report.advertised,
            Some(vec![ip("10.0.1.5"), ip("10.215.0.3")])
        );
        assert_eq!(report.peers.as_ref().map(Vec::len), Some(1));
        assert_eq!(
            report.alumni.as_ref().unwrap()[1],
            PeerEntry {
                node_id: NodeId(0xBB7),
                addrs: vec![ip("10.0.1.4")]
            }
        );
        assert_eq!(
            report.stable,
            Some(ClusterStable::Unstable {
                reply: "unstable-cluster".into()
            })
        );
        assert_eq!(
            sent(&log),
            vec![vec![
                "node",
                "statistics",
                "service-clear-std",
                "peers-clear-std",
                "alumni-clear-std",
                "cluster-stable:size=3;ignore-migrations=false"
            ]]
        );
    }

    #[tokio::test]
    async fn observe_node_keeps_the_observation_when_the_extras_are_refused() {
        let (addr, _log) = fake(|command| match command {
            "node" => "BB9",
            "statistics" => ONE_NODE_STATS,
            _ => "ERROR:4:unrecognized command",
        })
        .await;
        let report = InfoClient::new().observe_node(addr, 1).await.unwrap();
        assert_eq!(report.observation.stats.cluster_key, "A1");
        assert_eq!(report.advertised, None);
        assert_eq!(report.peers, None);
        assert_eq!(report.alumni, None);
        // Every error form of cluster-stable reads as "not stable".
        assert!(matches!(
            report.stable,
            Some(ClusterStable::Unstable { .. })
        ));
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

    use crate::aerospike::frame::encode_request;
    use proptest::prelude::*;

    /// The separators of the info protocol: none may come from a value.
    fn has_separator(text: &str) -> bool {
        text.contains(['\n', '\t', ';', ',', '='])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// `tip` from any address and port: exactly the two fields, which
        /// read back as what went in, and a frame the encoder accepts.
        #[test]
        fn tip_commands_carry_exactly_the_address_and_port(host in any::<IpAddr>(), port in any::<u16>()) {
            let command = tip_command(host, port);
            encode_request(&[&command]).unwrap();
            let fields = command.strip_prefix("tip:").unwrap();
            let parts: Vec<&str> = fields.split(';').collect();
            prop_assert_eq!(parts.len(), 2, "{}", command);
            prop_assert_eq!(parts[0].strip_prefix("host=").unwrap().parse::<IpAddr>().unwrap(), host);
            prop_assert_eq!(parts[1].strip_prefix("port=").unwrap().parse::<u16>().unwrap(), port);
            prop_assert!(!command.contains(['\n', '\t', ',']));
        }

        /// `tip-clear` from any list of endpoints: one entry per endpoint,
        /// each reading back as itself.
        #[test]
        fn tip_clear_commands_carry_exactly_the_endpoints(
            // As the mesh plan makes them: SocketAddr::new(task address, port).
            heartbeats in prop::collection::vec(
                (any::<IpAddr>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port)),
                1..8,
            ),
        ) {
            let command = tip_clear_command(&heartbeats).unwrap();
            encode_request(&[&command]).unwrap();
            let list = command.strip_prefix("tip-clear:host-port-list=").unwrap();
            prop_assert!(!list.contains([';', '=', '\n', '\t']), "{}", command);
            let back: Vec<SocketAddr> = list.split(',').map(|e| e.parse().unwrap()).collect();
            prop_assert_eq!(back, heartbeats);
        }

        #[test]
        fn cluster_stable_commands_carry_exactly_the_size(size in any::<u32>(), ignore in any::<bool>()) {
            let command = cluster_stable_command(size, ignore);
            encode_request(&[&command]).unwrap();
            prop_assert_eq!(
                command,
                format!("cluster-stable:size={size};ignore-migrations={ignore}")
            );
        }

        /// Whatever a node lists as its namespaces (any text, separators,
        /// control characters, unicode), a command is built only from a
        /// name without a separator, and it is `namespace/` and the name.
        #[test]
        fn namespace_commands_are_built_only_from_plain_names(
            value in prop::collection::vec(
                prop_oneof![
                    4 => prop::sample::select(vec!['a', 'b', 'z', '0', '_', '-', '.']),
                    1 => prop::sample::select(vec![';', ':', '=', ',', '/', '\n', '\t', ' ', '\r', '\u{0}']),
                    1 => any::<char>(),
                ],
                0..48,
            ).prop_map(String::from_iter),
        ) {
            let names = match reply::parse_namespaces(&value) {
                Ok(names) => names,
                Err(_) => return Ok(()),
            };
            for name in names {
                let command = namespace_command(&name);
                encode_request(&[&command]).unwrap();
                let text = command.strip_prefix("namespace/").unwrap();
                prop_assert_eq!(text, name.as_str());
                prop_assert!(!has_separator(text) && !text.contains([':', '/', ' ']), "{:?}", command);
                prop_assert!(text.len() <= Namespace::MAX_LEN);
                prop_assert!(value.split(';').any(|item| item == text));
            }
        }

        /// The frame encoder refuses any command with a newline or a tab
        /// (a newline would make it two commands).
        #[test]
        fn the_encoder_refuses_a_command_with_a_line_break(
            before in ".{0,20}",
            after in ".{0,20}",
            sep in prop::sample::select(vec!['\n', '\t']),
        ) {
            let command = format!("{before}{sep}{after}");
            prop_assert!(encode_request(&["node", &command]).is_err());
        }
    }

    #[test]
    fn namespace_names_with_separators_are_refused() {
        // The control for the property above: these are what it guards.
        for bad in [
            "",
            "a;b",
            "a:b",
            "a=b",
            "a,b",
            "a/b",
            "a b",
            "a\tb",
            "é",
            &"n".repeat(32),
        ] {
            assert!(bad.parse::<Namespace>().is_err(), "{bad:?}");
        }
        for good in ["test", "bar", "ns_1", "a-b.c", &"n".repeat(31)] {
            assert_eq!(
                namespace_command(&good.parse().unwrap()),
                format!("namespace/{good}")
            );
        }
        assert!(reply::parse_namespaces("test;ev;il").is_ok());
        assert!(reply::parse_namespaces("test;ev il").is_err());
        assert_eq!(tip_clear_command(&[]), None);
        assert_eq!(
            tip_command("fe80::1".parse().unwrap(), 3002),
            "tip:host=fe80::1;port=3002"
        );
    }
}
