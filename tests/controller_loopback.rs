//! The whole control loop — triggers, scheduler, reconcile, mesh, status —
//! against an in-memory swarm ([`FakeSwarm`]) whose tasks point at REAL
//! Aerospike nodes: `aerospike-sim` nodes running in this process on
//! 127.0.0.2, 127.0.0.3, ... all with the same ports, as nodes on an
//! overlay network would be; once with 7.1 nodes and once with 7.2 nodes
//! (on 127.0.2.x), whose error replies are worded differently.
//!
//! What it shows: three nodes that do not know each other become one
//! cluster with status Ready 3/3; once settled, the loop makes no write
//! and sends no tip; when a node goes away its survivors are tip-cleared
//! and reset and the status says 2/3; a replacement task at a new address
//! is meshed in and the cluster is Ready 3/3 again. A fourth "node" that
//! is a hostile TCP server — answering garbage, one byte a second, or
//! relaying another node's replies as its own (so claiming that node's
//! id) — is named in a
//! Degraded status and sent no order; a real node in its place makes the
//! cluster Ready 4/4.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aerospike_sim::config::Config;
use aerospike_sim::node::EmbeddedNode;
use aerospike_sim::state::Settings;
use aerospike_swarm_operator::aerospike::frame::{Header, HEADER_LEN};
use aerospike_swarm_operator::aerospike::{ClusterView, InfoClient};
use aerospike_swarm_operator::controller::{Controller, Counters, CountingInfo, RunOptions};
use aerospike_swarm_operator::spec::status::{CLUSTER_KEY, MESSAGE, PHASE, READY};
use aerospike_swarm_operator::swarm::{
    ready_worker, FakeSwarm, NetworkInfo, ServiceInfo, TaskInfo,
};
use tokio::sync::oneshot;

/// Starts a sim node of `build` (its reply dialect: 7.1 and 7.2 word
/// errors differently) on `ip` with a fast heartbeat (50 ms) and fast
/// migrations; dropping it stops the node.
fn start_sim(build: &str, ip: IpAddr, service_port: u16, heartbeat_port: u16) -> EmbeddedNode {
    let text = format!(
        "service {{\n  cluster-name loopback\n}}\n\
         network {{\n\
           service {{\n    address {ip}\n    port {service_port}\n  }}\n\
           heartbeat {{\n    mode mesh\n    address {ip}\n    port {heartbeat_port}\n    \
             interval 50\n    timeout 10\n  }}\n\
           fabric {{\n    address {ip}\n    port 3001\n  }}\n\
         }}\n\
         namespace test {{\n  replication-factor 2\n  storage-engine memory\n}}\n"
    );
    let config = Config::parse(&text).expect("sim config parses");
    let settings = Settings {
        build: build.to_string(),
        migrate_rate: 50_000.0,
        ..Settings::default()
    };
    EmbeddedNode::start(config, settings)
}

/// `127.0.<net>.<last>`: each test has a `net` of its own, so that tests
/// running at once never share an address (every node binds fabric 3001).
fn loopback(net: u8, last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, net, last))
}

/// Two ports free on every address used here, from 20000-29999 (below the
/// ephemeral range, so no outgoing connection takes them meanwhile).
fn free_ports(ips: &[IpAddr]) -> (u16, u16) {
    let base = 20_000 + (std::process::id() % 4_000) as u16 * 2;
    let free = |port: u16| ips.iter().all(|ip| TcpListener::bind((*ip, port)).is_ok());
    (0..4_000)
        .map(|i| 20_000 + (base - 20_000 + i * 2) % 9_998)
        .find(|p| free(*p) && free(*p + 1))
        .map(|p| (p, p + 1))
        .expect("two free ports")
}

fn task(ip: IpAddr) -> TaskInfo {
    TaskInfo {
        id: format!("task-{ip}"),
        service_id: "s1".into(),
        node_id: format!("node-{ip}"),
        desired_state: "running".into(),
        state: "running".into(),
        addresses: vec![("net1".into(), ip)],
        ..TaskInfo::default()
    }
}

async fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `(cluster_size, cluster_key)` of each node.
async fn cluster_of(addrs: &[SocketAddr]) -> Vec<(u32, String)> {
    InfoClient::new()
        .observe_all(addrs)
        .await
        .into_iter()
        .map(|o| {
            let o = o.expect("node answers");
            (o.stats.cluster_size, o.stats.cluster_key)
        })
        .collect()
}

fn status(fake: &FakeSwarm) -> (String, String) {
    let labels = fake.service("s1").expect("service").labels;
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    (get(PHASE), get(READY))
}

/// A control loop running in this process; [`Loop::stop`] stops it.
struct Loop {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Loop {
    /// SIGTERM-like stop: the loop must finish and return within 10 s.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the loop stops")
            .unwrap();
    }
}

/// Runs the control loop over `fake` and in-process nodes with `options`
/// (a 200 ms fast poll, 4 reconciles at once and the counters line a
/// minute apart whatever `options` say).
fn start_loop(fake: &FakeSwarm, counters: &Arc<Counters>, options: RunOptions) -> Loop {
    let controller = Controller::new(
        fake.clone(),
        CountingInfo::new(InfoClient::new(), counters.clone()),
        counters.clone(),
        RunOptions {
            poll_fast: Duration::from_millis(200),
            counters_interval: Duration::from_secs(60),
            max_parallel: 4,
            ..options
        },
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let loop_task = tokio::spawn(async move {
        controller
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    Loop {
        stop,
        task: loop_task,
    }
}

/// The in-memory swarm of these tests: 4 ready workers, the overlay
/// `net1`, and the 3-node service `s1` on it (no tasks yet).
fn cluster_scene(service_port: u16, heartbeat_port: u16) -> FakeSwarm {
    let fake = FakeSwarm::new();
    fake.set_nodes((1..=4).map(|i| ready_worker(&format!("n{i}"))).collect());
    fake.add_network(NetworkInfo::overlay("net1", "aerospike"));
    let labels: BTreeMap<String, String> = [
        ("aerospike.cluster.replicas", "3".to_string()),
        ("aerospike.cluster.version", "7.1.0.0".to_string()),
        ("aerospike.cluster.service-port", service_port.to_string()),
        (
            "aerospike.cluster.heartbeat-port",
            heartbeat_port.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    fake.put_service(ServiceInfo {
        id: "s1".into(),
        name: "ctrltest-loopback".into(),
        labels,
        image: Some("aerospike/aerospike-server:7.1.0.0".into()),
        replicas: Some(3),
        max_replicas_per_node: Some(1),
        network_ids: vec!["net1".into()],
        ..ServiceInfo::default()
    });
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmeshed_7_1_nodes_become_one_cluster_and_survivors_are_cleaned_up() {
    unmeshed_nodes_become_one_cluster_and_survivors_are_cleaned_up("7.1.0.0", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmeshed_7_2_nodes_become_one_cluster_and_survivors_are_cleaned_up() {
    unmeshed_nodes_become_one_cluster_and_survivors_are_cleaned_up("7.2.0.0", 2).await;
}

async fn unmeshed_nodes_become_one_cluster_and_survivors_are_cleaned_up(build: &str, net: u8) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "aerospike_swarm_operator=info".into()),
        )
        .try_init();
    let ips: Vec<IpAddr> = (2..=5).map(|last| loopback(net, last)).collect();
    let (service_port, heartbeat_port) = free_ports(&ips);
    let service = |ip: IpAddr| SocketAddr::new(ip, service_port);
    let mut sims: Vec<EmbeddedNode> = ips[..3]
        .iter()
        .map(|ip| start_sim(build, *ip, service_port, heartbeat_port))
        .collect();

    let fake = cluster_scene(service_port, heartbeat_port);
    fake.set_tasks(ips[..3].iter().map(|ip| task(*ip)).collect());

    // The three nodes start apart: each is a cluster of one.
    let first_three: Vec<SocketAddr> = ips[..3].iter().map(|ip| service(*ip)).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster_of_ok(&first_three).await != Some(vec![1, 1, 1]) {
        assert!(Instant::now() < deadline, "sims did not start alone");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let running = start_loop(
        &fake,
        &counters,
        RunOptions {
            resync_interval: Duration::from_secs(5),
            poll_slow: Duration::from_secs(1),
            ..RunOptions::default()
        },
    );

    // 1. One cluster, Ready 3/3, and the status key is the nodes' key.
    wait_for(Duration::from_secs(20), "Ready 3/3", || {
        status(&fake) == ("Ready".into(), "3/3".into())
    })
    .await;
    let meshed_in = started.elapsed();
    let seen = cluster_of(&first_three).await;
    assert!(seen.iter().all(|(size, _)| *size == 3), "{seen:?}");
    assert!(seen.iter().all(|(_, key)| *key == seen[0].1), "{seen:?}");
    assert_eq!(fake.service("s1").unwrap().labels[CLUSTER_KEY], seen[0].1);
    assert!(counters.snapshot().tips >= 1);
    eprintln!("{build}: three unmeshed nodes became Ready 3/3 in {meshed_in:?}");

    // 2. Settled: several poll and resync rounds later, no write, no tip.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = counters.snapshot();
    let writes_before = fake.writes().len();
    let reads_before = fake.reads();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = counters.snapshot();
    assert_eq!(
        fake.writes().len(),
        writes_before,
        "a settled cluster gets no writes"
    );
    assert_eq!(after.tips, before.tips, "no tips when settled");
    assert_eq!(after.tip_clears, before.tip_clears);
    assert_eq!(
        after.info_writes, before.info_writes,
        "no info write of any kind when settled"
    );
    assert!(
        after.reconciles > before.reconciles,
        "the resync still looked"
    );
    eprintln!(
        "settled for 6 s: {} reconciles, {} Docker reads, {} info requests, 0 writes, 0 tips",
        after.reconciles - before.reconciles,
        fake.reads() - reads_before,
        after.info_requests - before.info_requests
    );

    // 3. A node goes away with its task: survivors are tip-cleared and
    //    reset, and the status says 2/3.
    let clears_before = counters.snapshot().tip_clears;
    drop(sims.remove(2));
    fake.set_tasks(ips[..2].iter().map(|ip| task(*ip)).collect());
    wait_for(Duration::from_secs(20), "ready 2/3", || {
        status(&fake).1 == "2/3"
    })
    .await;
    let survivors: Vec<SocketAddr> = ips[..2].iter().map(|ip| service(*ip)).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster_of_ok(&survivors).await != Some(vec![2, 2]) {
        assert!(Instant::now() < deadline, "survivors did not settle at 2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for(Duration::from_secs(10), "a tip-clear", || {
        counters.snapshot().tip_clears > clears_before
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    for survivor in &survivors {
        while InfoClient::new()
            .services_alumni(*survivor)
            .await
            .unwrap()
            .contains(&service(ips[2]))
        {
            assert!(
                Instant::now() < deadline,
                "{survivor} still lists the departed node"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // 4. Swarm replaces the task at a new address: it is meshed in.
    sims.push(start_sim(build, ips[3], service_port, heartbeat_port));
    fake.set_tasks(
        [ips[0], ips[1], ips[3]]
            .iter()
            .map(|ip| task(*ip))
            .collect(),
    );
    wait_for(Duration::from_secs(20), "Ready 3/3 again", || {
        status(&fake) == ("Ready".into(), "3/3".into())
    })
    .await;
    let now_three: Vec<SocketAddr> = [ips[0], ips[1], ips[3]]
        .iter()
        .map(|ip| service(*ip))
        .collect();
    let seen = cluster_of(&now_three).await;
    assert!(
        seen.iter()
            .all(|(size, key)| *size == 3 && *key == seen[0].1),
        "{seen:?}"
    );

    // 5. SIGTERM-like stop: the loop finishes and returns.
    running.stop().await;
    drop(sims);
}

/// Cluster sizes of the nodes when all answer and share one key.
async fn cluster_of_ok(addrs: &[SocketAddr]) -> Option<Vec<u32>> {
    let observations: Vec<_> = InfoClient::new()
        .observe_all(addrs)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .ok()?;
    let sizes: Vec<u32> = observations.iter().map(|o| o.stats.cluster_size).collect();
    let view = ClusterView::from(observations);
    if view.groups().len() == 1 || sizes_all_one(&sizes) {
        Some(sizes)
    } else {
        None
    }
}

fn sizes_all_one(sizes: &[u32]) -> bool {
    sizes.iter().all(|s| *s == 1)
}

/// The membership watch: a node of a settled cluster dies while swarm's
/// task list still says it runs (as when the manager's own engine loses a
/// container: no event, and the slow task poll is a minute away here).
/// The status leaves Ready within seconds, not at the next poll; with
/// the node back, Ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_unannounced_is_seen_within_two_seconds() {
    dies_unannounced(true, 4).await;
}

/// The control: the same scene with `--no-membership-watch`. The status
/// still reads Ready 3/3 five seconds after the node died (the task poll
/// and the resync are a minute away): the test above can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_watch_a_node_that_dies_unannounced_is_not_seen() {
    dies_unannounced(false, 6).await;
}

async fn dies_unannounced(watch: bool, net: u8) {
    let ips: Vec<IpAddr> = (2..=4).map(|last| loopback(net, last)).collect();
    let (service_port, heartbeat_port) = free_ports(&ips);
    let mut sims: Vec<EmbeddedNode> = ips
        .iter()
        .map(|ip| start_sim("7.1.0.0", *ip, service_port, heartbeat_port))
        .collect();
    let fake = cluster_scene(service_port, heartbeat_port);
    fake.set_tasks(ips.iter().map(|ip| task(*ip)).collect());
    let counters = Arc::new(Counters::default());
    let running = start_loop(
        &fake,
        &counters,
        RunOptions {
            resync_interval: Duration::from_secs(60),
            poll_slow: Duration::from_secs(60),
            membership_watch: watch,
            ..RunOptions::default()
        },
    );
    wait_for(Duration::from_secs(20), "Ready 3/3", || {
        status(&fake) == ("Ready".into(), "3/3".into())
    })
    .await;
    // Settled: the loop awaits a change; only the watch's probes go out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = counters.snapshot();
    let reads_before = fake.reads();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = counters.snapshot();
    eprintln!(
        "settled 3 s: {} reconciles, {} Docker reads, {} info requests (the watch's probes)",
        after.reconciles - before.reconciles,
        fake.reads() - reads_before,
        after.info_requests - before.info_requests
    );
    let probes = after.info_requests - before.info_requests;
    assert!(
        probes <= 8,
        "the watch costs about 2 probes a second per cluster, not {probes}"
    );
    assert!(!watch || probes >= 4, "the watch probes: {probes} in 3 s");

    // The node dies; its task still reads running.
    let died = Instant::now();
    drop(sims.remove(2));
    if !watch {
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            status(&fake),
            ("Ready".into(), "3/3".into()),
            "without the watch nothing should have looked"
        );
        running.stop().await;
        return;
    }
    wait_for(Duration::from_secs(10), "the status to leave Ready", || {
        status(&fake).0 != "Ready"
    })
    .await;
    let seen_in = died.elapsed();
    eprintln!(
        "a node died unannounced: the status left Ready after {seen_in:?} ({:?})",
        status(&fake)
    );
    assert!(
        seen_in < Duration::from_secs(3),
        "seen after {seen_in:?}: the watch should have woken the reconcile"
    );

    // It comes back at the same address: meshed in, Ready again.
    sims.push(start_sim("7.1.0.0", ips[2], service_port, heartbeat_port));
    wait_for(Duration::from_secs(20), "Ready 3/3 again", || {
        status(&fake) == ("Ready".into(), "3/3".into())
    })
    .await;
    running.stop().await;
    drop(sims);
}

/// What a hostile node on the service port does with each request.
#[derive(Debug, Clone, Copy)]
enum Hostile {
    /// Answers like an HTTP server.
    Garbage,
    /// Answers the start of a frame, one byte a second.
    Slow,
    /// Relays the request to this real node and its reply back, so it
    /// reports that node's id and statistics as its own.
    Mirror(SocketAddr),
}

/// A hostile node: the commands of every request it received, and its
/// accept loop (aborted, closing the listener, by [`HostileNode::stop`]).
struct HostileNode {
    commands: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileNode {
    async fn start(addr: SocketAddr, mode: Hostile) -> HostileNode {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let commands = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = commands.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = [0u8; HEADER_LEN];
                if stream.read_exact(&mut head).await.is_err() {
                    continue;
                }
                let Ok(header) = Header::decode(head, 1 << 16) else {
                    continue;
                };
                let mut body = vec![0u8; header.body_len as usize];
                if stream.read_exact(&mut body).await.is_err() {
                    continue;
                }
                record
                    .lock()
                    .unwrap()
                    .extend(String::from_utf8_lossy(&body).lines().map(str::to_string));
                let reply = match mode {
                    Hostile::Garbage => b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
                    Hostile::Slow => {
                        for byte in (Header { body_len: 16 }).encode() {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            if stream.write_all(&[byte]).await.is_err() {
                                break;
                            }
                        }
                        Vec::new()
                    }
                    Hostile::Mirror(real) => {
                        let relayed = async {
                            let mut upstream = tokio::net::TcpStream::connect(real).await?;
                            upstream.write_all(&head).await?;
                            upstream.write_all(&body).await?;
                            // One frame: the node keeps the connection open.
                            let mut reply = vec![0u8; HEADER_LEN];
                            upstream.read_exact(&mut reply).await?;
                            let head: [u8; HEADER_LEN] = reply[..].try_into().unwrap();
                            let len = Header::decode(head, 1 << 20)
                                .map_err(std::io::Error::other)?
                                .body_len as usize;
                            reply.resize(HEADER_LEN + len, 0);
                            upstream.read_exact(&mut reply[HEADER_LEN..]).await?;
                            Ok::<_, std::io::Error>(reply)
                        };
                        match relayed.await {
                            Ok(reply) => reply,
                            Err(e) => {
                                eprintln!("mirror: {real}: {e}");
                                Vec::new()
                            }
                        }
                    }
                };
                let _ = stream.write_all(&reply).await;
                // The client hangs up first (no TIME_WAIT left on this
                // port for the real node that takes it over).
                let mut rest = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut rest))
                    .await;
            }
        });
        HostileNode { commands, task }
    }

    fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn message(fake: &FakeSwarm) -> String {
    fake.service("s1")
        .expect("service")
        .labels
        .get(MESSAGE)
        .cloned()
        .unwrap_or_default()
}

/// Three real nodes settle Ready 3/3; the cluster is asked for 4 and the
/// fourth task's address answers garbage, then one byte a second, then
/// relays node .2's replies as its own: each time the status is Degraded 3/4 naming it, and it is
/// sent nothing but the observation's questions (no tip, no tip-clear).
/// The control: a real node at that address, and the cluster is Ready
/// 4/4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_node_is_named_degraded_and_sent_no_order() {
    let net = 8;
    let ips: Vec<IpAddr> = (2..=5).map(|last| loopback(net, last)).collect();
    let (service_port, heartbeat_port) = free_ports(&ips);
    let service = |ip: IpAddr| SocketAddr::new(ip, service_port);
    let mut sims: Vec<EmbeddedNode> = ips[..3]
        .iter()
        .map(|ip| start_sim("7.1.0.0", *ip, service_port, heartbeat_port))
        .collect();
    let fake = cluster_scene(service_port, heartbeat_port);
    fake.set_tasks(ips[..3].iter().map(|ip| task(*ip)).collect());
    let counters = Arc::new(Counters::default());
    let running = start_loop(
        &fake,
        &counters,
        RunOptions {
            resync_interval: Duration::from_secs(5),
            poll_slow: Duration::from_secs(1),
            ..RunOptions::default()
        },
    );
    wait_for(Duration::from_secs(20), "Ready 3/3", || {
        status(&fake) == ("Ready".into(), "3/3".into())
    })
    .await;

    // A fourth node is asked for; its address answers garbage.
    let fourth = service(ips[3]);
    let hostile = HostileNode::start(fourth, Hostile::Garbage).await;
    fake.edit_service("s1", |s| {
        s.labels
            .insert("aerospike.cluster.replicas".into(), "4".into());
    });
    fake.set_tasks(ips.iter().map(|ip| task(*ip)).collect());
    let named = format!("node {fourth} (task task-{}) answers unusably", ips[3]);
    wait_for(Duration::from_secs(20), "Degraded 3/4 naming it", || {
        status(&fake) == ("Degraded".into(), "3/4".into()) && message(&fake).contains(&named)
    })
    .await;
    eprintln!("garbage: {}", message(&fake));
    assert!(
        message(&fake).contains("bad reply frame: reply has protocol version 72"),
        "{}",
        message(&fake)
    );
    // Settled on that for a few passes: the three keep their cluster.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status(&fake), ("Degraded".into(), "3/4".into()));
    let three: Vec<SocketAddr> = ips[..3].iter().map(|ip| service(*ip)).collect();
    assert!(cluster_of(&three).await.iter().all(|(size, _)| *size == 3));
    let asked = hostile.commands();
    assert!(!asked.is_empty(), "it was asked");
    assert!(
        asked
            .iter()
            .all(|c| !c.starts_with("tip") && !c.starts_with("services-alumni-reset")),
        "an order was sent to it: {asked:?}"
    );
    hostile.stop().await;

    // It answers one byte a second.
    let hostile = HostileNode::start(fourth, Hostile::Slow).await;
    let slow = format!(
        "node {fourth} (task task-{}) answers unusably: no reply within 2s",
        ips[3]
    );
    wait_for(
        Duration::from_secs(20),
        "Degraded 3/4 naming the slow node",
        || status(&fake) == ("Degraded".into(), "3/4".into()) && message(&fake).contains(&slow),
    )
    .await;
    eprintln!("slow: {}", message(&fake));
    assert!(!hostile.commands().is_empty(), "it was asked");
    assert!(
        hostile
            .commands()
            .iter()
            .all(|c| !c.starts_with("tip") && !c.starts_with("services-alumni-reset")),
        "an order was sent to it: {:?}",
        hostile.commands()
    );
    hostile.stop().await;

    // It relays node .2's replies: it claims .2's id, which .2 holds.
    let hostile = HostileNode::start(fourth, Hostile::Mirror(service(ips[0]))).await;
    let named = format!("node {fourth} (task task-{}) reports node id ", ips[3]);
    let holder = format!("which node {} holds", service(ips[0]));
    wait_for(
        Duration::from_secs(20),
        "Degraded 3/4 naming the impostor",
        || {
            let m = message(&fake);
            status(&fake) == ("Degraded".into(), "3/4".into())
                && m.contains(&named)
                && m.contains(&holder)
        },
    )
    .await;
    eprintln!("impostor: {}", message(&fake));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status(&fake), ("Degraded".into(), "3/4".into()));
    assert!(message(&fake).contains(&named), "{}", message(&fake));
    let asked = hostile.commands();
    assert!(!asked.is_empty(), "it was asked");
    assert!(
        asked
            .iter()
            .all(|c| !c.starts_with("tip") && !c.starts_with("services-alumni-reset")),
        "an order was sent to it: {asked:?}"
    );
    hostile.stop().await;

    // The control: a real node at that address is meshed in.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sims.push(start_sim("7.1.0.0", ips[3], service_port, heartbeat_port));
    wait_for(Duration::from_secs(30), "Ready 4/4", || {
        status(&fake) == ("Ready".into(), "4/4".into())
    })
    .await;
    running.stop().await;
    drop(sims);
}
