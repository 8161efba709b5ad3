//! The info client and health checks against real `aerospike-sim` nodes on
//! 127.0.0.1.
//!
//! Each node runs in this test process, on its own thread and its own
//! single-threaded tokio runtime, through the sim's library
//! (`aerospike_sim::node::EmbeddedNode`), so nothing has to be built or
//! spawned beforehand. Dropping a [`SimNode`] stops its node, which closes
//! its sockets at once: to its peers that looks like a stopped container.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aerospike_sim::config::Config;
use aerospike_sim::node::EmbeddedNode;
use aerospike_sim::state::{Edition, Settings};
use aerospike_swarm_operator::aerospike::{
    check_stable, ClusterStable, ClusterView, InfoClient, InfoError, Instability, Phase,
    ReclusterOutcome, ReplyError, StableVerdict, TipClearOutcome, TipOutcome,
};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A port nothing listens on right now.
///
/// Taken from 20000-29999, below Linux's ephemeral range (32768 and up),
/// so that no outgoing connection's source port can take it between this
/// check and the node's bind. Each test process starts at its own offset.
fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = (std::process::id() as usize % 500) * 20;
    loop {
        let offset = (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 10_000;
        let port = 20_000 + offset as u16;
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// A sim node running in this process.
struct SimNode {
    service: SocketAddr,
    heartbeat_port: u16,
    /// Stops the node when the test drops it.
    _node: EmbeddedNode,
}

impl SimNode {
    /// Starts a node with a fast heartbeat (50 ms, dropped after 10 missed)
    /// and `migrate_rate` partitions per second, and waits until it has
    /// formed its cluster of one, as a real node does when alone.
    async fn start(edition: Edition, migrate_rate: f64) -> SimNode {
        let service_port = free_port();
        let heartbeat_port = free_port();
        let fabric_port = free_port();
        let text = format!(
            "service {{\n  cluster-name client-test\n}}\n\
             network {{\n\
               service {{\n    address 127.0.0.1\n    port {service_port}\n  }}\n\
               heartbeat {{\n    mode mesh\n    address 127.0.0.1\n    port {heartbeat_port}\n    \
                 interval 50\n    timeout 10\n  }}\n\
               fabric {{\n    address 127.0.0.1\n    port {fabric_port}\n  }}\n\
             }}\n\
             namespace test {{\n  replication-factor 2\n  storage-engine memory\n}}\n"
        );
        let config = Config::parse(&text).expect("sim config parses");
        let settings = Settings {
            edition,
            migrate_rate,
            ..Settings::default()
        };
        let node = SimNode {
            service: SocketAddr::new(LOCALHOST, service_port),
            heartbeat_port,
            _node: EmbeddedNode::start(config, settings),
        };
        let client = &InfoClient::new();
        let service = node.service;
        let formed = wait_until(Duration::from_secs(10), || async move {
            client
                .observe(service)
                .await
                .is_ok_and(|o| o.stats.cluster_is_member && o.stats.cluster_size == 1)
        })
        .await;
        assert!(formed, "node on {} never formed its cluster", node.service);
        node
    }

    fn heartbeat(&self) -> SocketAddr {
        SocketAddr::new(LOCALHOST, self.heartbeat_port)
    }
}

/// Polls `condition` every 20 ms until it holds or `limit` passes.
async fn wait_until<F, Fut>(limit: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `addrs` all answer and form one cluster of exactly those nodes.
async fn one_cluster(client: &InfoClient, addrs: &[SocketAddr]) -> bool {
    let Ok(observations) = client
        .observe_all(addrs)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
    else {
        return false;
    };
    let view = ClusterView::from(observations);
    view.outsiders().is_empty()
        && view.main_cluster().is_some_and(|main| {
            main.members
                .iter()
                .all(|n| n.stats.cluster_size as usize == addrs.len())
        })
}

#[tokio::test]
async fn a_lone_node_answers_every_typed_command() {
    let node = SimNode::start(Edition::Community, 5000.0).await;
    let client = InfoClient::new();
    let addr = node.service;

    let seen = client.observe(addr).await.unwrap();
    assert_eq!(seen.addr, addr);
    assert_eq!(seen.stats.cluster_size, 1);
    assert!(seen.stats.cluster_is_member);
    assert!(seen.stats.cluster_integrity);
    assert_eq!(seen.node_id, client.node_id(addr).await.unwrap());
    // Alone, the node is its own principal.
    assert_eq!(seen.stats.cluster_principal, seen.node_id.to_string());

    assert_eq!(client.build(addr).await.unwrap(), "7.1.0.0");
    assert_eq!(client.namespaces(addr).await.unwrap(), vec!["test"]);
    let ns = client
        .namespace_stats(addr, &"test".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(ns.replication_factor, 2);
    assert_eq!(ns.dead_partitions, 0);
    // 7.1 answers `type=unknown` for a namespace it does not have.
    match client.namespace_stats(addr, &"nope".parse().unwrap()).await {
        Err(InfoError::Malformed {
            command,
            source: ReplyError::UnknownNamespace,
            ..
        }) => assert_eq!(command, "namespace/nope"),
        other => panic!("{other:?}"),
    }

    assert_eq!(
        client.cluster_stable(addr, 1, false).await.unwrap(),
        ClusterStable::Stable {
            cluster_key: seen.stats.cluster_key.clone()
        }
    );
    assert!(matches!(
        client.cluster_stable(addr, 3, false).await.unwrap(),
        ClusterStable::Unstable { .. }
    ));
    assert_eq!(client.services_alumni(addr).await.unwrap(), vec![]);
    assert_eq!(
        client.recluster(addr).await.unwrap(),
        ReclusterOutcome::Started
    );
    // Community Edition has no quiesce.
    assert!(matches!(
        client.quiesce(addr).await,
        Err(InfoError::Server { code: Some(25), .. })
    ));
}

#[tokio::test]
async fn quiesce_works_on_enterprise() {
    let node = SimNode::start(Edition::Enterprise, 5000.0).await;
    let client = InfoClient::new();
    client.quiesce(node.service).await.unwrap();
    client.quiesce_undo(node.service).await.unwrap();
}

#[tokio::test]
async fn one_tip_joins_two_nodes_and_tips_again_are_already_known() {
    let a = SimNode::start(Edition::Community, 5000.0).await;
    let b = SimNode::start(Edition::Community, 5000.0).await;
    let client = InfoClient::new();
    let both = [a.service, b.service];

    let before = ClusterView::from(
        client
            .observe_all(&both)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
    );
    assert_eq!(before.groups().len(), 2, "two clusters of one");
    assert_eq!(before.outsiders().len(), 1);

    assert_eq!(
        client
            .tip(b.service, LOCALHOST, a.heartbeat_port)
            .await
            .unwrap(),
        TipOutcome::Added
    );
    assert!(
        wait_until(Duration::from_secs(10), || one_cluster(&client, &both)).await,
        "the tip did not join the nodes"
    );
    // b has a as a seed already: the same tip again is refused (7.1
    // answers a bare `error`), which the operator reads as harmless.
    assert!(matches!(
        client
            .tip(b.service, LOCALHOST, a.heartbeat_port)
            .await
            .unwrap(),
        TipOutcome::Refused { .. }
    ));
    let keys: Vec<String> = client
        .observe_all(&both)
        .await
        .into_iter()
        .map(|o| o.unwrap().stats.cluster_key)
        .collect();
    assert_eq!(keys[0], keys[1]);
    assert_eq!(
        client.services_alumni(b.service).await.unwrap(),
        vec![a.service]
    );
}

#[tokio::test]
async fn after_a_node_leaves_tip_clear_and_alumni_reset_forget_it() {
    let a = SimNode::start(Edition::Community, 5000.0).await;
    let b = SimNode::start(Edition::Community, 5000.0).await;
    let client = InfoClient::new();
    let (pair, survivor) = ([a.service, b.service], [b.service]);
    client
        .tip(b.service, LOCALHOST, a.heartbeat_port)
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || one_cluster(&client, &pair)).await);

    let (a_service, a_heartbeat) = (a.service, a.heartbeat());
    drop(a);
    // Interval 50 ms x timeout 10: b drops a after about half a second.
    assert!(wait_until(Duration::from_secs(10), || one_cluster(&client, &survivor)).await);

    // a is still a seed of b (b keeps dialing it) and still an alumnus.
    let nowhere = SocketAddr::new(LOCALHOST, free_port());
    assert_eq!(
        client
            .tip_clear(b.service, &[a_heartbeat, nowhere])
            .await
            .unwrap(),
        TipClearOutcome {
            cleared: 1,
            not_found: 1
        }
    );
    assert_eq!(
        client.tip_clear(b.service, &[a_heartbeat]).await.unwrap(),
        TipClearOutcome {
            cleared: 0,
            not_found: 1
        }
    );
    assert_eq!(
        client
            .tip(b.service, LOCALHOST, a_heartbeat.port())
            .await
            .unwrap(),
        TipOutcome::Added,
        "a cleared seed can be tipped again"
    );
    assert_eq!(
        client.tip_clear(b.service, &[a_heartbeat]).await.unwrap(),
        TipClearOutcome {
            cleared: 1,
            not_found: 0
        }
    );
    assert_eq!(
        client.tip_clear(b.service, &[]).await.unwrap(),
        TipClearOutcome {
            cleared: 0,
            not_found: 0
        }
    );

    assert_eq!(
        client.services_alumni(b.service).await.unwrap(),
        vec![a_service]
    );
    client.services_alumni_reset(b.service).await.unwrap();
    assert_eq!(client.services_alumni(b.service).await.unwrap(), vec![]);
}

#[tokio::test]
async fn check_stable_waits_until_migrations_finish() {
    // 4096 partitions at 1500 per second: joining takes a few seconds of
    // migrations, plenty of time to see the gate closed.
    let a = SimNode::start(Edition::Community, 1500.0).await;
    let b = SimNode::start(Edition::Community, 1500.0).await;
    let client = InfoClient::new();
    let both = [a.service, b.service];

    // Two clusters of one are not a stable cluster of two.
    match check_stable(&client, &both, 2).await.unwrap() {
        StableVerdict::Unstable(Instability::Split { clusters }) => assert_eq!(clusters.len(), 2),
        other => panic!("{other:?}"),
    }
    // Each alone is stable as a cluster of one.
    assert!(check_stable(&client, &[a.service], 1)
        .await
        .unwrap()
        .is_stable());

    client
        .tip(b.service, LOCALHOST, a.heartbeat_port)
        .await
        .unwrap();
    let mut reasons = Vec::new();
    let started = Instant::now();
    let key = loop {
        match check_stable(&client, &both, 2).await.unwrap() {
            StableVerdict::Stable { cluster_key } => break cluster_key,
            StableVerdict::Unstable(reason) => reasons.push(reason),
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never stable; last reasons: {:?}",
            &reasons[reasons.len().saturating_sub(3)..]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, Instability::Migrating { remaining, .. } if *remaining > 0)),
        "migrations were never seen: {reasons:?}"
    );
    let migrating = reasons
        .iter()
        .find(|r| matches!(r, Instability::Migrating { .. }))
        .unwrap()
        .to_string();
    assert!(
        migrating.contains("partitions left to migrate"),
        "{migrating}"
    );
    for addr in both {
        assert_eq!(client.statistics(addr).await.unwrap().cluster_key, key);
    }
    // The same cluster against the wrong expectation.
    assert!(matches!(
        check_stable(&client, &both, 3).await.unwrap(),
        StableVerdict::Unstable(Instability::WrongSize {
            size: 2,
            expected: 3,
            ..
        })
    ));
}

#[tokio::test]
async fn dead_addresses_are_typed_errors_within_the_timeout() {
    let client = InfoClient::new();
    // A port that was free a moment ago: the kernel refuses at once.
    let dead = SocketAddr::new(LOCALHOST, free_port());
    let started = Instant::now();
    match client.observe(dead).await {
        Err(InfoError::Connect { addr, source }) => {
            assert_eq!(addr, dead);
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < client.connect_timeout());

    // A stopped node is just as dead, and check_stable names it.
    let node = SimNode::start(Edition::Community, 5000.0).await;
    let alive = SimNode::start(Edition::Community, 5000.0).await;
    let gone = node.service;
    drop(node);
    let error = check_stable(&client, &[alive.service, gone], 2)
        .await
        .unwrap_err();
    assert_eq!(error.addr(), Some(gone));
    assert!(error.is_unreachable());
    assert!(error.to_string().starts_with(&gone.to_string()), "{error}");

    // A listener that never answers: a timeout naming the address.
    let silent = TcpListener::bind((LOCALHOST, 0)).unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let short = InfoClient::new().with_total_timeout(Duration::from_millis(400));
    let started = Instant::now();
    match short.statistics(silent_addr).await {
        Err(InfoError::Timeout {
            addr,
            phase: Phase::Exchange,
            limit,
        }) => {
            assert_eq!(addr, silent_addr);
            assert_eq!(limit, Duration::from_millis(400));
        }
        other => panic!("{other:?}"),
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}
