//! Multi-process tests: real sim processes meshing over loopback.

mod support;

use std::time::{Duration, Instant};

use support::{formed, migrations_done, start_cluster, wait_until, Addressing, Options, SimNode};

#[test]
fn one_tip_each_forms_one_cluster_and_a_killed_node_drops_out_after_the_timeout() {
    let mut nodes = start_cluster(3, &Options::default());
    // One key, one principal (the highest node id), everywhere.
    let ids: Vec<u64> = nodes
        .iter()
        .map(|n| u64::from_str_radix(&n.info("node"), 16).unwrap())
        .collect();
    let highest = format!("{:X}", ids.iter().max().unwrap());
    for node in &nodes {
        assert_eq!(node.stat("cluster_size"), "3");
        assert_eq!(node.stat("cluster_principal"), highest);
        assert_eq!(node.stat("cluster_is_member"), "true");
        assert_eq!(node.stat("migrate_allowed"), "true");
        assert_eq!(node.info("services").split(';').count(), 2);
    }
    let key = nodes[0].stat("cluster_key");
    assert_eq!(
        nodes[1].info("cluster-stable:size=3;ignore-migrations=false"),
        key
    );

    nodes[2].kill();
    let killed_at = Instant::now();
    let survivors = [&nodes[0], &nodes[1]];
    assert!(wait_until(Duration::from_secs(10), || formed(
        &survivors, 2
    )));
    // Not before interval x timeout (0.5 s) has passed.
    assert!(killed_at.elapsed() >= Duration::from_millis(450));
    assert_ne!(nodes[0].stat("cluster_key"), key);
    let leaves = nodes[0].events("leave");
    assert_eq!(leaves.len(), 1, "{leaves:?}");
    assert_eq!(leaves[0]["reason"], "timeout");
    assert_eq!(nodes[0].info("services").split(';').count(), 1);
    // The departed node stays an alumnus until services-alumni-reset.
    assert_eq!(nodes[0].info("services-alumni").split(';').count(), 2);
    assert_eq!(nodes[0].info("services-alumni-reset"), "ok");
    assert_eq!(nodes[0].info("services-alumni").split(';').count(), 1);
    // Only seeds can be tip-cleared: node 1 tipped node 0, but learned of
    // node 2 from node 2's own heartbeats.
    let clear = |node: &SimNode, target: &SimNode| {
        node.info(&format!(
            "tip-clear:host-port-list=127.0.0.1:{}",
            target.heartbeat_port
        ))
    };
    assert_eq!(clear(&nodes[1], &nodes[2]), "error: 0 cleared, 1 not found");
    assert_eq!(clear(&nodes[1], &nodes[0]), "ok");
    // Clearing the seed does not break a live cluster.
    std::thread::sleep(Duration::from_millis(300));
    assert!(formed(&survivors, 2));
}

#[test]
fn migrations_count_down_to_zero_and_cluster_stable_waits_for_them() {
    let options = Options {
        migrate_rate: 600,
        ..Options::default()
    };
    let a = SimNode::start(&options);
    let b = SimNode::start(&options);
    assert_eq!(b.tip(&a), "ok");
    assert_eq!(b.tip(&a), "error", "a known seed is refused");
    let both = [&a, &b];
    assert!(wait_until(Duration::from_secs(10), || formed(&both, 2)));
    // One node's lineage is discarded: it must receive every partition, at
    // 600 per second, so there is plenty of time to watch the count fall.
    let mut seen = Vec::new();
    let done = wait_until(Duration::from_secs(20), || {
        let per_node: Vec<usize> = both
            .iter()
            .map(|n| {
                n.stat("migrate_partitions_remaining")
                    .parse::<usize>()
                    .unwrap()
            })
            .collect();
        // 100 partitions take 1/6 s at 600/s: far too long to finish between
        // this check and the next request.
        for (node, remaining) in both.iter().zip(&per_node) {
            if *remaining > 100 {
                assert_eq!(
                    node.info("cluster-stable:size=2;ignore-migrations=false"),
                    "ERROR::unstable-cluster"
                );
            }
        }
        let remaining: usize = per_node.iter().sum();
        seen.push(remaining);
        remaining == 0
    });
    assert!(done, "migrations never finished: {seen:?}");
    assert!(seen[0] > 1000, "expected a large initial count: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[1] <= w[0]),
        "never goes up: {seen:?}"
    );
    assert!(seen.len() > 5, "counted down over time: {seen:?}");
    let key = a.stat("cluster_key");
    assert_eq!(a.info("cluster-stable:size=2;ignore-migrations=false"), key);
    assert_eq!(b.info("cluster-stable:size=2"), key);
    let started = a.events("migration_started").len() + b.events("migration_started").len();
    let finished = a.events("migration_finished").len() + b.events("migration_finished").len();
    assert!(started >= 1 && finished >= 1);
    // RF 2 on 2 nodes: each holds everything; nothing was lost.
    for node in both {
        assert_eq!(node.ns_stat("dead_partitions"), "0");
        assert_eq!(node.ns_stat("effective_replication_factor"), "2");
    }
}

#[test]
fn killing_a_second_node_before_migrations_finish_loses_partitions() {
    let options = Options {
        migrate_rate: 400,
        ..Options::default()
    };
    let mut nodes = start_cluster(3, &options);
    nodes[0].kill();
    let survivors = [&nodes[1], &nodes[2]];
    assert!(wait_until(Duration::from_secs(10), || formed(
        &survivors, 2
    )));
    // Re-replication of ~1365 partitions per survivor takes seconds at 400/s.
    assert_ne!(nodes[1].stat("migrate_partitions_remaining"), "0");
    nodes[1].kill();
    let last = &nodes[2];
    assert!(wait_until(Duration::from_secs(10), || formed(&[last], 1)));
    let dead: usize = last.ns_stat("dead_partitions").parse().unwrap();
    assert!(dead > 0, "log:\n{}", last.log());
    let lost = last.events("partitions_lost");
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0]["namespace"], "test");
    assert_eq!(lost[0]["count"], dead);
    // The loss is for good: the partitions stay dead.
    assert!(wait_until(Duration::from_secs(5), || migrations_done(&[
        last
    ])));
    assert_eq!(last.ns_stat("dead_partitions"), dead.to_string());
}

#[test]
fn killing_nodes_one_at_a_time_after_migrations_finish_loses_nothing() {
    let mut nodes = start_cluster(3, &Options::default());
    nodes[0].kill();
    let survivors = [&nodes[1], &nodes[2]];
    assert!(wait_until(Duration::from_secs(10), || formed(
        &survivors, 2
    ) && migrations_done(
        &survivors
    )));
    nodes[1].kill();
    let last = &nodes[2];
    assert!(wait_until(Duration::from_secs(10), || formed(&[last], 1)
        && migrations_done(&[last])));
    assert_eq!(last.ns_stat("dead_partitions"), "0");
    assert!(last.events("partitions_lost").is_empty());
    let key = last.stat("cluster_key");
    assert_eq!(
        last.info("cluster-stable:size=1;ignore-migrations=false"),
        key
    );
}

#[test]
fn enterprise_quiesce_then_recluster_then_stop_loses_nothing() {
    let options = Options {
        edition: "enterprise",
        ..Options::default()
    };
    let mut nodes = start_cluster(3, &options);
    assert_eq!(nodes[0].info("edition"), "Aerospike Enterprise Edition");
    assert_eq!(nodes[0].info("quiesce:"), "ok");
    // Quiesce takes effect only at the next recluster.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(nodes[0].ns_stat("pending_quiesce"), "true");
    assert_eq!(nodes[0].ns_stat("effective_is_quiesced"), "false");
    let replies: Vec<String> = nodes.iter().map(|n| n.info("recluster:")).collect();
    assert_eq!(
        replies.iter().filter(|r| *r == "ok").count(),
        1,
        "{replies:?}"
    );
    assert_eq!(
        replies
            .iter()
            .filter(|r| *r == "ignored-by-non-principal")
            .count(),
        2
    );
    let all: Vec<&SimNode> = nodes.iter().collect();
    assert!(wait_until(Duration::from_secs(10), || {
        nodes[0].ns_stat("effective_is_quiesced") == "true"
            && all.iter().all(|n| n.ns_stat("nodes_quiesced") == "1")
            && migrations_done(&all)
    }));
    // The quiesced node handed everything off.
    assert_eq!(nodes[0].ns_stat("migrate_tx_partitions_remaining"), "0");
    nodes[0].kill();
    let survivors = [&nodes[1], &nodes[2]];
    assert!(wait_until(Duration::from_secs(10), || formed(
        &survivors, 2
    )));
    for node in survivors {
        assert_eq!(node.ns_stat("dead_partitions"), "0");
    }
}

#[test]
fn sigterm_leaves_at_once_and_exits_zero() {
    let mut nodes = start_cluster(2, &Options::default());
    let status = nodes[1].terminate();
    assert!(status.success(), "{status:?}");
    assert_eq!(nodes[1].events("shutdown")[0]["signal"], "SIGTERM");
    assert!(wait_until(Duration::from_secs(5), || formed(
        &[&nodes[0]],
        1
    )));
}

#[test]
fn a_node_uses_a_few_megabytes() {
    let nodes = start_cluster(3, &Options::default());
    for node in &nodes {
        let rss = node.rss_kb().expect("read VmRSS");
        // A dozen nodes must fit beside the sandbox's daemons.
        assert!(rss < 16 * 1024, "RSS {rss} kB");
        println!("aerospike-sim RSS: {rss} kB");
    }
}

#[test]
fn a_community_cluster_refuses_a_ninth_node() {
    let nodes = start_cluster(8, &Options::default());
    let ninth = SimNode::start(&Options::default());
    assert_eq!(ninth.tip(&nodes[0]), "ok");
    let eight: Vec<&SimNode> = nodes.iter().collect();
    assert!(wait_until(Duration::from_secs(10), || !ninth
        .events("orphaned")
        .is_empty()));
    // Give the mesh time to (wrongly) grow, then check it did not.
    std::thread::sleep(Duration::from_millis(500));
    assert!(formed(&eight, 8));
    assert_eq!(ninth.stat("cluster_is_member"), "false");
    assert_eq!(ninth.stat("cluster_size"), "0");
    assert_eq!(
        ninth.info("cluster-stable:size=9"),
        "ERROR::unstable-cluster"
    );
}

/// Two nodes like two swarm tasks on different hosts: each has its own
/// "eth0" (127.0.1.1, 127.0.1.2) and both have the same "eth1" (127.0.9.9,
/// docker_gwbridge's subnet is the same on every host), on the same fabric
/// port. Only A can listen on 127.0.9.9; B's fabric publishes `fabric_b`.
fn shared_address_pair(fabric_b: &'static str) -> (SimNode, SimNode) {
    let fabric_port = support::free_port();
    let any = |fabric: &str| Addressing {
        service: "any".into(),
        heartbeat: "any".into(),
        fabric: fabric.into(),
    };
    let a = SimNode::start(&Options {
        migrate_rate: 2000,
        interfaces: Some("eth0=127.0.1.1,eth1=127.0.9.9"),
        addressing: Some((any("any"), "127.0.1.1")),
        fabric_port: Some(fabric_port),
        ..Options::default()
    });
    let b = SimNode::start(&Options {
        migrate_rate: 2000,
        interfaces: Some("eth0=127.0.1.2,eth1=127.0.9.9"),
        addressing: Some((any(fabric_b), "127.0.1.2")),
        fabric_port: Some(fabric_port),
        ..Options::default()
    });
    assert_eq!(b.tip(&a), "ok");
    (a, b)
}

fn remaining(node: &SimNode) -> usize {
    node.stat("migrate_partitions_remaining").parse().unwrap()
}

#[test]
fn a_fabric_that_reaches_the_wrong_node_clusters_but_never_migrates() {
    // B's fabric publishes only the shared address: A's fabric connection
    // to B reaches A itself.
    let (a, b) = shared_address_pair("eth1");
    let both = [&a, &b];
    assert!(
        wait_until(Duration::from_secs(10), || formed(&both, 2)),
        "heartbeats still cluster; log:\n{}",
        a.log()
    );
    // Plenty of time at 2000 partitions/s (4096 take about 2 s).
    std::thread::sleep(Duration::from_secs(4));
    assert!(formed(&both, 2));
    let before = (remaining(&a), remaining(&b));
    assert!(before.0 > 0 && before.1 > 0, "{before:?}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!((remaining(&a), remaining(&b)), before, "stalled for good");
    for node in both {
        assert_eq!(
            node.info("cluster-stable:size=2;ignore-migrations=false"),
            "ERROR::unstable-cluster"
        );
    }
    let wrong = a.events("fabric_wrong_node");
    assert!(!wrong.is_empty(), "log:\n{}", a.log());
    assert_eq!(wrong[0]["reached"], a.info("node"));
    assert_eq!(
        wrong[0]["endpoint"].as_str().unwrap().split(':').next(),
        Some("127.0.9.9")
    );
    // Both nodes publish their shared address to clients too.
    assert!(
        a.info("services").contains("127.0.9.9:"),
        "{}",
        a.info("services")
    );
    assert!(a.info("services-alumni").contains("127.0.9.9:"));
    assert!(b.info("service").contains("127.0.1.2:") && b.info("service").contains("127.0.9.9:"));
}

#[test]
fn the_same_pair_with_one_fabric_address_each_settles() {
    let (a, b) = shared_address_pair("eth0");
    let both = [&a, &b];
    assert!(
        wait_until(Duration::from_secs(15), || formed(&both, 2)
            && migrations_done(&both)),
        "log:\n{}",
        b.log()
    );
    let key = a.stat("cluster_key");
    assert_eq!(b.info("cluster-stable:size=2;ignore-migrations=false"), key);
    assert!(a.events("fabric_wrong_node").is_empty());
    assert!(!a.events("fabric_connected").is_empty());
    assert_eq!(b.ns_stat("dead_partitions"), "0");
}
