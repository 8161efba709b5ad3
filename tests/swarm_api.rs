//! `SwarmApi` against a real swarm: the sandbox manager (or whatever
//! `DOCKER_HOST` names). Each test is `#[ignore]`d, so a plain `cargo test`
//! on a machine without a swarm reports them ignored; `scripts/test` runs
//! them (`--run-ignored all`) once its sandbox is up, and there a missing
//! manager fails them.
//!
//! Services created here are named `swarmtest-*` and removed afterwards,
//! also when a test fails (see [`ServiceGuard`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use aerospike_swarm_operator::swarm::{
    self, update_service_retrying, DockerSwarm, EventKind, NewService, NodeState, ServiceChange,
    SwarmApi, SwarmError, TaskFilter, TaskInfo,
};
use futures::StreamExt;

const IMAGE: &str = "aerospike/aerospike-server:7.1.0.0";
const NETWORK: &str = "aerospike";

/// The swarm to test against; a test without one fails, saying why.
async fn swarm_under_test(test: &str) -> DockerSwarm {
    let api = swarm::connect_from_env()
        .await
        .unwrap_or_else(|e| panic!("{test}: no swarm manager to test against: {e}"));
    if let Err(e) = swarm::preflight(&api).await {
        panic!("{test}: no swarm manager to test against: {e}");
    }
    api
}

/// Removes the service when dropped, so a failing test leaves nothing
/// behind. Drop cannot await, so the removal runs on a thread of its own.
struct ServiceGuard {
    api: DockerSwarm,
    name: String,
}

impl Drop for ServiceGuard {
    fn drop(&mut self) {
        let (api, name) = (self.api.clone(), self.name.clone());
        let removal = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for cleanup");
            match runtime.block_on(api.remove_service(&name)) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => eprintln!("cleanup: could not remove service {name}: {e}"),
            }
        });
        let _ = removal.join();
    }
}

fn unique_name(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("swarmtest-{what}-{}-{nanos:x}", std::process::id())
}

/// Polls until `done` accepts the service's running tasks, or panics with
/// the last ones seen.
async fn wait_for_tasks(
    api: &DockerSwarm,
    service_id: &str,
    timeout: Duration,
    done: impl Fn(&[TaskInfo]) -> bool,
) -> Vec<TaskInfo> {
    let deadline = Instant::now() + timeout;
    loop {
        let tasks = api
            .list_tasks(&TaskFilter::services([service_id]).desired_running())
            .await
            .expect("list tasks");
        if done(&tasks) {
            return tasks;
        }
        if Instant::now() > deadline {
            panic!("tasks of {service_id} did not converge within {timeout:?}: {tasks:#?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
#[ignore = "needs a swarm manager: scripts/sandbox up, then scripts/test swarm"]
async fn nodes_are_listed_and_ready() {
    let api = swarm_under_test("nodes_are_listed_and_ready").await;
    let nodes = api.list_nodes().await.expect("list nodes");
    let ready = nodes.iter().filter(|n| n.state == NodeState::Ready).count();
    assert!(ready >= 3, "expected at least 3 Ready nodes: {nodes:#?}");
    for node in &nodes {
        assert!(!node.id.is_empty() && !node.hostname.is_empty(), "{node:?}");
        assert_eq!(node.platform.os, "linux");
    }
    let eligible = swarm::eligible_nodes(&nodes, &["node.platform.os==linux"]).unwrap();
    assert!(eligible.len() >= 3);
}

#[tokio::test]
#[ignore = "needs a swarm manager: scripts/sandbox up, then scripts/test swarm"]
async fn lookups_of_absent_objects() {
    let api = swarm_under_test("lookups_of_absent_objects").await;
    let err = api
        .inspect_service("swarmtest-absent-service")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(api.network("swarmtest-absent-network").await.unwrap(), None);
    assert!(!api.secret_exists("swarmtest-absent-secret").await.unwrap());
    let network = api
        .network(NETWORK)
        .await
        .unwrap()
        .expect("sandbox network");
    assert_eq!(
        (network.driver.as_str(), network.scope.as_str()),
        ("overlay", "swarm")
    );
}

#[tokio::test]
#[ignore = "needs a swarm manager: scripts/sandbox up, then scripts/test swarm"]
async fn service_lifecycle_placement_addresses_and_label_updates() {
    let test = "service_lifecycle_placement_addresses_and_label_updates";
    let api = swarm_under_test(test).await;
    let network = api
        .network(NETWORK)
        .await
        .unwrap()
        .expect("sandbox network");
    let name = unique_name("api");
    let new = NewService {
        name: name.clone(),
        image: IMAGE.into(),
        replicas: 3,
        labels: BTreeMap::from([("swarmtest".into(), "1".into())]),
        networks: vec![NETWORK.into()],
        endpoint_mode_dnsrr: true,
        max_replicas_per_node: Some(1),
        ..NewService::default()
    };
    let id = api.create_service(&new).await.expect("create service");
    let _guard = ServiceGuard {
        api: api.clone(),
        name: name.clone(),
    };

    let service = api.inspect_service(&name).await.unwrap();
    assert_eq!(service.id, id);
    assert_eq!(service.replicas, Some(3));
    assert_eq!(service.max_replicas_per_node, Some(1));
    assert_eq!(service.network_ids, vec![network.id.clone()]);
    assert_eq!(service.image.as_deref(), Some(IMAGE));

    // Three running tasks on three distinct nodes, each with an address on
    // the cluster network.
    let tasks = wait_for_tasks(&api, &id, Duration::from_secs(120), |tasks| {
        tasks.iter().filter(|t| t.is_running()).count() == 3
    })
    .await;
    let nodes: BTreeSet<_> = tasks.iter().map(|t| t.node_id.clone()).collect();
    assert_eq!(
        nodes.len(),
        3,
        "tasks must be on distinct nodes: {tasks:#?}"
    );
    for task in &tasks {
        let ip = task.address_on(&network.id);
        assert!(
            ip.is_some(),
            "task without an address on {NETWORK}: {task:#?}"
        );
        assert!(task.container_id.is_some(), "{task:#?}");
        assert_eq!(task.service_id, id);
    }
    let task_ids: BTreeSet<_> = tasks.iter().map(|t| t.id.clone()).collect();

    // A service-level label change bumps the version, is announced as a
    // service event, and restarts no task.
    let mut events = api.events(Some(SystemTime::now() - Duration::from_secs(1)));
    let change = ServiceChange {
        labels_set: BTreeMap::from([("aerospike.status.phase".into(), "Ready".into())]),
        labels_remove: vec!["swarmtest".into()],
        ..ServiceChange::default()
    };
    let new_version = api
        .update_service(&id, service.version, &change)
        .await
        .expect("label update");
    assert!(new_version > service.version);
    let updated = api.inspect_service(&id).await.unwrap();
    assert_eq!(updated.version, new_version);
    assert_eq!(
        updated
            .labels
            .get("aerospike.status.phase")
            .map(String::as_str),
        Some("Ready")
    );
    assert!(!updated.labels.contains_key("swarmtest"));
    assert_eq!(
        updated.max_replicas_per_node,
        Some(1),
        "placement untouched"
    );

    let event = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.next().await {
            let event = event.expect("event stream");
            if event.kind == EventKind::Service && event.actor_id == id && event.action == "update"
            {
                return event;
            }
        }
        panic!("event stream ended");
    })
    .await
    .expect("a service update event within 10 s");
    assert_eq!(event.attributes.get("name"), Some(&name));

    // Give the orchestrator time to act if it (wrongly) would.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let all_tasks = api
        .list_tasks(&TaskFilter::services([id.as_str()]))
        .await
        .unwrap();
    let after: BTreeSet<_> = all_tasks.iter().map(|t| t.id.clone()).collect();
    assert_eq!(
        after, task_ids,
        "a label update must not replace tasks: {all_tasks:#?}"
    );
    assert!(all_tasks.iter().all(TaskInfo::is_running));

    // Writing what is already there writes nothing.
    let unchanged = api.update_service(&id, new_version, &change).await.unwrap();
    assert_eq!(unchanged, new_version);
    assert_eq!(api.inspect_service(&id).await.unwrap().version, new_version);

    // A stale version is refused as OutOfSequence, and the retrying helper
    // gets through.
    let err = api
        .update_service(&id, service.version, &change)
        .await
        .unwrap_err();
    assert!(matches!(err, SwarmError::OutOfSequence { .. }), "{err:?}");
    let retry = ServiceChange {
        labels_set: BTreeMap::from([("aerospike.status.phase".into(), "Degraded".into())]),
        ..ServiceChange::default()
    };
    let retried = update_service_retrying(&api, &name, &retry).await.unwrap();
    assert!(retried > new_version);

    // The engine's own refusal (not just our pre-check) maps the same way:
    // race a write in between read and update.
    let current = api.inspect_service(&id).await.unwrap();
    let bump = ServiceChange {
        labels_set: BTreeMap::from([("swarmtest.bump".into(), "1".into())]),
        ..ServiceChange::default()
    };
    api.update_service(&id, current.version, &bump)
        .await
        .unwrap();
    let err = api
        .update_service(&id, current.version, &bump)
        .await
        .unwrap_err();
    assert!(err.is_out_of_sequence(), "{err:?}");

    api.remove_service(&id).await.expect("remove service");
    let err = api.inspect_service(&id).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
#[ignore = "needs a swarm manager: scripts/sandbox up, then scripts/test swarm"]
async fn scale_changes_replicas_and_too_many_stay_pending() {
    let test = "scale_changes_replicas_and_too_many_stay_pending";
    let api = swarm_under_test(test).await;
    let name = unique_name("scale");
    let new = NewService {
        name: name.clone(),
        image: IMAGE.into(),
        replicas: 1,
        networks: vec![NETWORK.into()],
        endpoint_mode_dnsrr: true,
        max_replicas_per_node: Some(1),
        ..NewService::default()
    };
    let id = api.create_service(&new).await.expect("create service");
    let _guard = ServiceGuard {
        api: api.clone(),
        name: name.clone(),
    };
    let eligible = swarm::eligible_nodes(&api.list_nodes().await.unwrap(), &[] as &[&str])
        .unwrap()
        .len() as u64;

    // One more replica than nodes: MaxReplicas 1 leaves one pending.
    // Swarm fills in the reason ("no suitable node (max replicas per node
    // limit exceed)") only once the scheduler has retried the task, which
    // may not happen while nothing else changes, so it is checked only
    // when present.
    let change = ServiceChange {
        replicas: Some(eligible + 1),
        ..ServiceChange::default()
    };
    update_service_retrying(&api, &id, &change).await.unwrap();
    assert_eq!(
        api.inspect_service(&id).await.unwrap().replicas,
        Some(eligible + 1)
    );
    let tasks = wait_for_tasks(&api, &id, Duration::from_secs(120), |tasks| {
        tasks.iter().filter(|t| t.is_running()).count() as u64 == eligible
            && tasks.iter().filter(|t| t.state == "pending").count() == 1
    })
    .await;
    let pending = tasks.iter().find(|t| t.state == "pending").unwrap();
    if let Some(reason) = pending.error.as_deref() {
        assert!(reason.contains("max replicas per node"), "{pending:#?}");
    }
    let nodes: BTreeSet<_> = tasks
        .iter()
        .filter(|t| t.is_running())
        .map(|t| &t.node_id)
        .collect();
    assert_eq!(
        nodes.len() as u64,
        eligible,
        "one running task per node: {tasks:#?}"
    );
}

#[tokio::test]
#[ignore = "needs a swarm manager: scripts/sandbox up, then scripts/test swarm"]
async fn rejected_tasks_carry_swarms_error_text() {
    let test = "rejected_tasks_carry_swarms_error_text";
    let api = swarm_under_test(test).await;
    let name = unique_name("noimage");
    let image = "swarmtest-no-such-image:1";
    let new = NewService {
        name: name.clone(),
        image: image.into(),
        replicas: 1,
        ..NewService::default()
    };
    let id = api.create_service(&new).await.expect("create service");
    let _guard = ServiceGuard {
        api: api.clone(),
        name: name.clone(),
    };
    // Rejected tasks leave the desired-running set, so list the history.
    let deadline = Instant::now() + Duration::from_secs(60);
    let rejected = loop {
        let tasks = api
            .list_tasks(&TaskFilter::services([id.as_str()]))
            .await
            .unwrap();
        if let Some(task) = tasks.into_iter().find(|t| t.state == "rejected") {
            break task;
        }
        assert!(Instant::now() < deadline, "no rejected task within 60 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let error = rejected.error.as_deref().unwrap_or_default();
    assert!(error.contains("No such image"), "{rejected:#?}");
    assert!(error.contains(image), "{rejected:#?}");
}
