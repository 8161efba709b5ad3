//! Rollout decisions from facts: one scene per situation a rollout meets,
//! built with [`Scene`].

use super::*;
use crate::aerospike::NodeReport;
use crate::controller::mesh::tests::report;
use crate::controller::plan::tests::node;
use crate::spec::ReadyCount;
use crate::swarm::{fake_fingerprint, SecretMount, VolumeMount};

const OLD: &str = "aerospike/aerospike-server:7.1.0.0";
const NEW: &str = "aerospike/aerospike-server:7.2.0.0";

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

/// A three-node cluster on nodes .2 .3 .4, built up fact by fact.
#[derive(Clone)]
struct Scene {
    labels: BTreeMap<String, String>,
    service: ServiceInfo,
    tasks: Vec<TaskInfo>,
    reports: Vec<NodeReport>,
    previous: ClusterStatus,
    now: SystemTime,
    pause_config: bool,
    cold_starts: BTreeMap<String, SystemTime>,
    watched_since: SystemTime,
}

impl Scene {
    /// Every node on `OLD`, meshed, migrations done, the spec asking for
    /// `version`, the valve set, the status remembering `OLD`.
    fn new(version: &str) -> Scene {
        let labels = BTreeMap::from([
            ("aerospike.cluster.replicas".to_string(), "3".to_string()),
            ("aerospike.cluster.version".to_string(), version.to_string()),
        ]);
        let mut service = ServiceInfo {
            id: "s1".into(),
            name: "db".into(),
            image: Some(OLD.into()),
            replicas: Some(3),
            max_replicas_per_node: Some(1),
            update_policy: Some(valve_policy()),
            rollback_policy: Some(valve_policy()),
            ..ServiceInfo::default()
        };
        service.template_fingerprint = fake_fingerprint(&service);
        let mut scene = Scene {
            labels,
            service,
            tasks: Vec::new(),
            reports: Vec::new(),
            previous: ClusterStatus {
                image: Some(OLD.into()),
                ..ClusterStatus::default()
            },
            now: parse_time("2026-12-01T12:00:20Z").unwrap(),
            pause_config: false,
            cold_starts: BTreeMap::new(),
            watched_since: std::time::UNIX_EPOCH,
        };
        for last in [2, 3, 4] {
            scene = scene.task(last, "running", true);
        }
        scene.meshed(&[2, 3, 4], "AA")
    }

    /// A task on `.last` running the current template (`fresh`) or the
    /// one before it, created at 12:00.
    fn task(mut self, last: u8, state: &str, fresh: bool) -> Scene {
        let fingerprint = if fresh {
            self.service.template_fingerprint.clone()
        } else {
            "older".into()
        };
        self.tasks.retain(|t| t.slot != Some(u64::from(last)));
        self.tasks.push(TaskInfo {
            id: format!("t{last}{}", if fresh { "new" } else { "old" }),
            service_id: "s1".into(),
            slot: Some(u64::from(last)),
            desired_state: "running".into(),
            state: state.into(),
            addresses: vec![("net1".into(), ip(last))],
            template_fingerprint: fingerprint,
            created_at: Some("2026-12-01T12:00:00.5Z".into()),
            ..TaskInfo::default()
        });
        self
    }

    /// The template changes to `image` (the tasks keep what they run).
    fn template(mut self, image: &str) -> Scene {
        let old = self.service.template_fingerprint.clone();
        self.service.image = Some(image.into());
        self.service.template_fingerprint = fake_fingerprint(&self.service);
        for task in &mut self.tasks {
            if task.template_fingerprint == old {
                task.template_fingerprint = "older".into();
            }
        }
        self
    }

    /// `lasts` form one cluster with key `key`; everyone else answers as a
    /// node alone.
    fn meshed(mut self, lasts: &[u8], key: &str) -> Scene {
        self.reports = self
            .tasks
            .iter()
            .filter(|t| t.state == "running")
            .map(|t| {
                let last = match t.addresses[0].1 {
                    IpAddr::V4(v4) => v4.octets()[3],
                    IpAddr::V6(_) => unreachable!(),
                };
                if lasts.contains(&last) {
                    let peers: Vec<u8> = lasts.iter().copied().filter(|l| *l != last).collect();
                    report(node(last, key, lasts.len() as u32), &peers)
                } else {
                    report(node(last, &format!("{last:02X}"), 1), &[])
                }
            })
            .collect();
        self
    }

    fn migrating(mut self, last: u8, remaining: u64) -> Scene {
        for r in &mut self.reports {
            if r.observation.addr.ip() == ip(last) {
                r.observation.stats.migrate_partitions_remaining = remaining;
                r.stable = Some(crate::aerospike::ClusterStable::Unstable {
                    reply: "ERROR::unstable-cluster".into(),
                });
            }
        }
        self
    }

    fn label(mut self, key: &str, value: &str) -> Scene {
        self.labels.insert(key.into(), value.into());
        self
    }

    fn previous(mut self, edit: impl FnOnce(&mut ClusterStatus)) -> Scene {
        edit(&mut self.previous);
        self
    }

    fn service(mut self, edit: impl FnOnce(&mut ServiceInfo)) -> Scene {
        edit(&mut self.service);
        self
    }

    fn at(mut self, time: &str) -> Scene {
        self.now = parse_time(time).unwrap();
        self
    }

    fn decide(&self) -> Step {
        let spec = ClusterSpec::from_labels(&self.labels, self.service.image.as_deref())
            .unwrap()
            .unwrap();
        let members: BTreeSet<IpAddr> = crate::aerospike::ClusterView::from(
            self.reports
                .iter()
                .map(|r| r.observation.clone())
                .collect::<Vec<_>>(),
        )
        .main_cluster()
        .map(|m| m.members.iter().map(|n| n.addr.ip()).collect())
        .unwrap_or_default();
        decide(&RolloutFacts {
            spec: &spec,
            service: &self.service,
            tasks: &self.tasks,
            network_id: "net1",
            reports: &self.reports,
            members: &members,
            target_replicas: 3,
            previous: &self.previous,
            now: self.now,
            join_timeout: Duration::from_secs(60),
            cold_starts: &self.cold_starts,
            watched_since: self.watched_since,
            paused: spec.paused() || self.pause_config,
        })
    }
}

fn target(image: &str) -> Target {
    Target {
        image: image.into(),
        config_secret: None,
        config_object: None,
        storage: None,
    }
}

#[test]
fn a_cluster_on_its_spec_is_in_sync() {
    assert_eq!(
        Scene::new("7.1.0.0").decide(),
        Step::InSync {
            converged: target(OLD)
        }
    );
}

#[test]
fn a_new_version_starts_only_on_a_safe_cluster() {
    let step = Scene::new("7.2.0.0").decide();
    assert_eq!(
        step,
        Step::Start {
            from: target(OLD),
            to: target(NEW),
            progress: Progress { done: 0, total: 3 }
        }
    );
    let waiting = Scene::new("7.2.0.0").migrating(3, 1383).decide();
    assert!(
        matches!(&waiting, Step::WaitToStart { why, .. } if why.contains("1383")),
        "{waiting:?}"
    );
    assert!(
        waiting.may_write(),
        "nothing is pending: the status may say so"
    );
}

#[test]
fn while_the_replaced_node_joins_or_migrates_nothing_is_written() {
    // The template is NEW, .2 was replaced and is alone.
    let scene = Scene::new("7.2.0.0")
        .template(NEW)
        .task(2, "running", true)
        .meshed(&[3, 4], "AA")
        .previous(|p| {
            p.rollout = Some(ReadyCount {
                ready: 0,
                desired: 3,
            })
        });
    let step = scene.decide();
    assert!(matches!(step, Step::Hold { .. }), "{step:?}");
    assert!(!step.may_write());

    // Joined, but migrations go on: still hold.
    let step = scene
        .clone()
        .meshed(&[2, 3, 4], "BB")
        .migrating(4, 10)
        .decide();
    assert!(
        matches!(&step, Step::Hold { why, .. } if why.contains("10")),
        "{step:?}"
    );
}

#[test]
fn a_safe_cluster_releases_the_next_node_once_per_done_node() {
    let scene = Scene::new("7.2.0.0")
        .template(NEW)
        .task(2, "running", true)
        .meshed(&[2, 3, 4], "BB")
        .previous(|p| {
            p.rollout = Some(ReadyCount {
                ready: 0,
                desired: 3,
            })
        });
    assert_eq!(
        scene.decide(),
        Step::Release {
            to: target(NEW),
            progress: Progress { done: 1, total: 3 },
            adopt: BTreeMap::new(),
        }
    );
    // Once released at 1/3, a pass before swarm replaced the next node
    // must not release another.
    let again = scene.clone().previous(|p| {
        p.rollout = Some(ReadyCount {
            ready: 1,
            desired: 3,
        })
    });
    let step = again.decide();
    assert!(
        matches!(&step, Step::Hold { why, .. } if why.contains("swarm")),
        "{step:?}"
    );
}

#[test]
fn paused_holds_between_nodes_and_writes_nothing() {
    let step = Scene::new("7.2.0.0")
        .template(NEW)
        .task(2, "running", true)
        .meshed(&[2, 3, 4], "BB")
        .label("aerospike.cluster.paused", "true")
        .decide();
    assert_eq!(
        step,
        Step::PausedBetween {
            progress: Progress { done: 1, total: 3 }
        }
    );
    assert!(!step.may_write());
    // The same through the pause config, which needs no service write.
    let mut scene = Scene::new("7.2.0.0")
        .template(NEW)
        .task(2, "running", true)
        .meshed(&[2, 3, 4], "BB");
    scene.pause_config = true;
    assert!(matches!(scene.decide(), Step::PausedBetween { .. }));
}

#[test]
fn a_node_that_never_joins_is_rolled_back_once_the_rest_is_safe() {
    let failing = Scene::new("7.2.0.0")
        .template(NEW)
        .task(2, "running", true)
        .meshed(&[3, 4], "AA");
    // Within the timeout: hold.
    let step = failing.clone().at("2026-12-01T12:00:30Z").decide();
    assert!(matches!(step, Step::Hold { .. }), "{step:?}");
    // Past it, the other two safe: back to what every node ran.
    let failing = failing.at("2026-12-01T12:01:01Z");
    let step = failing.decide();
    assert!(
        matches!(&step, Step::RollBack { from, to, why }
            if *from == target(NEW) && *to == target(OLD) && why.contains("has not joined")),
        "{step:?}"
    );
    // Not while the other two still migrate.
    let step = failing.migrating(3, 5).decide();
    assert!(
        matches!(&step, Step::Hold { why, .. } if why.contains("rolling back")),
        "{step:?}"
    );
}

#[test]
fn a_new_leader_gives_a_node_it_finds_unjoined_a_whole_join_timeout() {
    // Slot 2's new task was created at 12:00:00 and has not joined at
    // 12:01:01, past the 60 s timeout; but this operator began to watch
    // the cluster only at 12:00:40 (the leader before it was killed while
    // the node cold-started, and nobody tipped it since).
    let scene = Scene::new("7.2.0.0")
        .template(NEW)
        .task(2, "running", true)
        .meshed(&[3, 4], "AA")
        .at("2026-12-01T12:01:01Z");
    let mut watched = scene.clone();
    watched.watched_since = parse_time("2026-12-01T12:00:40Z").unwrap();
    let step = watched.clone().decide();
    assert!(matches!(step, Step::Hold { .. }), "{step:?}");
    // A whole timeout after it began to watch: rolled back, saying so.
    let step = watched.at("2026-12-01T12:01:41Z").decide();
    assert!(
        matches!(&step, Step::RollBack { why, .. } if why.contains("since this operator began")),
        "{step:?}"
    );
    // The control: the operator that watched all along rolls it back.
    let step = scene.decide();
    assert!(matches!(step, Step::RollBack { .. }), "{step:?}");
}

#[test]
fn a_cold_start_that_makes_progress_is_not_a_failed_join() {
    // Slot 2's new task was created at 12:00:00; at 12:01:01 it is past the
    // 60 s join timeout, still reading its storage back.
    let cold = |progressed: &str| {
        let mut scene = Scene::new("7.2.0.0")
            .template(NEW)
            .task(2, "running", true)
            .meshed(&[3, 4], "AA")
            .at("2026-12-01T12:01:01Z");
        let at = parse_time(progressed).unwrap();
        scene.cold_starts.insert("t2new".into(), at);
        scene
    };
    // Progress 5 s ago: held, not rolled back.
    let step = cold("2026-12-01T12:00:56Z").decide();
    assert!(
        matches!(&step, Step::Hold { why, .. } if !why.contains("failed")),
        "{step:?}"
    );
    // No progress for longer than the join timeout: rolled back, saying so.
    let step = cold("2026-12-01T11:59:59Z").decide();
    assert!(
        matches!(&step, Step::RollBack { why, .. } if why.contains("no cold-start progress")),
        "{step:?}"
    );
}

#[test]
fn a_task_no_node_can_take_is_not_a_failed_join() {
    // The slot's node went down during the rollout and its new task waits
    // for a node: past the join timeout it is held, not rolled back.
    let scene = |state| {
        Scene::new("7.2.0.0")
            .template(NEW)
            .task(2, state, true)
            .meshed(&[3, 4], "AA")
            .at("2026-12-01T12:01:01Z")
    };
    let step = scene("pending").decide();
    assert!(
        matches!(&step, Step::Hold { why, .. } if !why.contains("has not")),
        "{step:?}"
    );
    // The control: the same task placed and running but not joined.
    let step = scene("running").decide();
    assert!(matches!(step, Step::RollBack { .. }), "{step:?}");
}

#[test]
fn an_older_era_of_the_same_template_does_not_start_the_join_clock() {
    // The slot ran this template long ago (before an upgrade away from
    // it); its new task of it was created 10 s ago: not timed out.
    let mut scene = Scene::new("7.2.0.0")
        .template(NEW)
        .task(2, "running", true)
        .meshed(&[3, 4], "AA")
        .at("2026-12-01T12:00:10.5Z");
    let current = scene.service.template_fingerprint.clone();
    let old_era = |id: &str, fingerprint: &str, created: &str| TaskInfo {
        id: id.into(),
        service_id: "s1".into(),
        slot: Some(2),
        desired_state: "shutdown".into(),
        state: "shutdown".into(),
        template_fingerprint: fingerprint.into(),
        created_at: Some(created.into()),
        ..TaskInfo::default()
    };
    scene
        .tasks
        .push(old_era("t2a", &current, "2026-12-01T09:00:00Z"));
    scene
        .tasks
        .push(old_era("t2b", "older", "2026-12-01T10:00:00Z"));
    let step = scene.decide();
    assert!(
        matches!(&step, Step::Hold { why, .. } if !why.contains("failed")),
        "{step:?}"
    );
    // The control: without the later task of another template, the old
    // era would count, and the node would be called failed.
    scene.tasks.retain(|t| t.id != "t2b");
    let step = scene.decide();
    assert!(matches!(step, Step::RollBack { .. }), "{step:?}");
}

#[test]
fn swarm_pausing_the_update_counts_as_a_failure() {
    let step = Scene::new("7.2.0.0")
        .template(NEW)
        .task(2, "starting", true)
        .meshed(&[3, 4], "AA")
        .service(|s| {
            s.update_status = Some("paused".into());
            s.update_message = Some("update paused due to failure of task t2".into());
        })
        .decide();
    assert!(
        matches!(&step, Step::RollBack { why, .. } if why.contains("t2")),
        "{step:?}"
    );
}

#[test]
fn a_rolled_back_target_is_not_tried_again() {
    let step = Scene::new("7.2.0.0")
        .previous(|p| p.failed_rollout = Some(NEW.into()))
        .decide();
    assert_eq!(
        step,
        Step::Failed {
            to: target(NEW),
            from: target(OLD)
        }
    );
}

#[test]
fn a_hand_made_update_gets_the_valve_back_and_the_spec_follows_it() {
    // `docker service update --image NEW` on a service whose policy a
    // stack file reset: the policy first.
    let scene = Scene::new("7.1.0.0")
        .template(NEW)
        .task(2, "running", true)
        .meshed(&[2, 3, 4], "BB");
    let step = scene.clone().service(|s| s.update_policy = None).decide();
    assert!(matches!(step, Step::FixPolicy { .. }), "{step:?}");
    // With the valve: released when safe, adopting the new tag.
    let step = scene.decide();
    assert_eq!(
        step,
        Step::Release {
            to: target(NEW),
            progress: Progress { done: 1, total: 3 },
            adopt: BTreeMap::from([(VERSION.to_string(), "7.2.0.0".to_string())]),
        }
    );
}

#[test]
fn a_new_config_secret_rolls_like_a_new_version() {
    let mount = |name: &str| SecretMount {
        name: name.into(),
        target: "aerospike.conf".into(),
    };
    let scene = Scene::new("7.1.0.0")
        .label("aerospike.cluster.config-secret", "conf-v2")
        .service(|s| s.secret_mounts = vec![mount("conf-v1")])
        .previous(|p| p.config_secret = Some("conf-v1".into()));
    let with = |secret: &str| Target {
        image: OLD.into(),
        config_secret: Some(secret.into()),
        config_object: None,
        storage: None,
    };
    assert_eq!(
        scene.decide(),
        Step::Start {
            from: with("conf-v1"),
            to: with("conf-v2"),
            progress: Progress { done: 0, total: 3 }
        }
    );
}

#[test]
fn a_new_config_object_rolls_and_rolls_back_like_a_secret() {
    let mount = |name: &str| SecretMount {
        name: name.into(),
        target: "/run/secrets/aerospike.conf".into(),
    };
    let with = |config: &str| Target {
        config_object: Some(config.into()),
        ..target(OLD)
    };
    let scene = Scene::new("7.1.0.0")
        .label("aerospike.cluster.config-object", "conf-v2")
        .service(|s| s.config_mounts = vec![mount("conf-v1")])
        .previous(|p| p.config_object = Some("conf-v1".into()));
    assert_eq!(
        scene.decide(),
        Step::Start {
            from: with("conf-v1"),
            to: with("conf-v2"),
            progress: Progress { done: 0, total: 3 }
        }
    );
    assert_eq!(
        with("conf-v2").describe(),
        format!("{OLD} config-object=conf-v2")
    );
    let mut change = ServiceChange::default();
    with("conf-v2").write_template(&with("conf-v1"), "/run/secrets/aerospike.conf", &mut change);
    assert_eq!(change.config_at_target, Some(mount("conf-v2")));
    assert_eq!(change.secret_at_target, None);

    // The template mounts conf-v2, node .2 runs it and never joins: back
    // to conf-v1, which every node ran when the cluster last converged.
    let old = fake_fingerprint(&scene.service);
    let mut scene = scene.service(|s| s.config_mounts = vec![mount("conf-v2")]);
    scene.service.template_fingerprint = fake_fingerprint(&scene.service);
    for task in &mut scene.tasks {
        if task.template_fingerprint == old {
            task.template_fingerprint = "older".into();
        }
    }
    let step = scene
        .task(2, "running", true)
        .meshed(&[3, 4], "AA")
        .previous(|p| {
            p.rollout = Some(ReadyCount {
                ready: 0,
                desired: 3,
            })
        })
        .at("2026-12-01T12:05:00Z")
        .decide();
    let Step::RollBack { from, to, .. } = &step else {
        panic!("{step:?}");
    };
    assert_eq!((from, to), (&with("conf-v2"), &with("conf-v1")));
    let mut change = ServiceChange::default();
    to.write_template(from, "/run/secrets/aerospike.conf", &mut change);
    assert_eq!(change.config_at_target, Some(mount("conf-v1")));
}

fn data_volume() -> VolumeMount {
    VolumeMount {
        source: "aerospike-data".into(),
        target: "/opt/aerospike/data".into(),
        driver: None,
        driver_options: BTreeMap::new(),
    }
}

#[test]
fn adding_storage_to_a_memory_cluster_rolls_the_mount_like_a_config() {
    let scene = Scene::new("7.1.0.0").label("aerospike.cluster.storage.volume", "aerospike-data");
    let step = scene.decide();
    let with = Target {
        storage: Some(data_volume()),
        ..target(OLD)
    };
    assert_eq!(
        step,
        Step::Start {
            from: target(OLD),
            to: with.clone(),
            progress: Progress { done: 0, total: 3 }
        }
    );
    assert_eq!(
        with.describe(),
        format!("{OLD} storage=aerospike-data:/opt/aerospike/data")
    );
    // The template write adds the mount, and nothing else.
    let mut change = ServiceChange::default();
    with.write_template(&target(OLD), "/run/secrets/aerospike.conf", &mut change);
    assert_eq!(
        change,
        ServiceChange {
            volume_at_target: Some(data_volume()),
            ..ServiceChange::default()
        }
    );
    // Written the same again, nothing.
    let mut change = ServiceChange::default();
    with.write_template(&with, "/run/secrets/aerospike.conf", &mut change);
    assert!(change.is_empty());
    // Another driver is another target: rolled again.
    let local = Target {
        storage: Some(VolumeMount {
            driver: Some("local".into()),
            ..data_volume()
        }),
        ..target(OLD)
    };
    let mut change = ServiceChange::default();
    local.write_template(&with, "/run/secrets/aerospike.conf", &mut change);
    assert_eq!(change.volume_at_target, local.storage);
}

#[test]
fn a_storage_rollout_releases_node_by_node_and_rolls_back_by_removing_the_mount() {
    let scene = Scene::new("7.1.0.0")
        .label("aerospike.cluster.storage.volume", "aerospike-data")
        .service(|s| s.volume_mounts = vec![data_volume()]);
    // The template now mounts the volume: every task is on the older one.
    let old = fake_fingerprint(&Scene::new("7.1.0.0").service);
    let mut scene = scene;
    scene.service.template_fingerprint = fake_fingerprint(&scene.service);
    for task in &mut scene.tasks {
        if task.template_fingerprint == old {
            task.template_fingerprint = "older".into();
        }
    }
    // Node .2 replaced and back in the cluster, migrations done: release.
    let step = scene
        .clone()
        .task(2, "running", true)
        .meshed(&[2, 3, 4], "BB")
        .previous(|p| {
            p.rollout = Some(ReadyCount {
                ready: 0,
                desired: 3,
            })
        })
        .decide();
    let with = Target {
        storage: Some(data_volume()),
        ..target(OLD)
    };
    assert!(
        matches!(&step, Step::Release { to, progress, adopt } if *to == with && progress.done == 1 && adopt.is_empty()),
        "{step:?}"
    );
    // Still migrating: hold.
    let step = scene
        .clone()
        .task(2, "running", true)
        .meshed(&[2, 3, 4], "BB")
        .migrating(3, 100)
        .previous(|p| {
            p.rollout = Some(ReadyCount {
                ready: 0,
                desired: 3,
            })
        })
        .decide();
    assert!(matches!(step, Step::Hold { .. }), "{step:?}");
    // Node .2 never joins: roll back to the template without the volume,
    // which the older tasks show.
    let step = scene
        .task(2, "running", true)
        .meshed(&[3, 4], "BB")
        .previous(|p| {
            p.rollout = Some(ReadyCount {
                ready: 0,
                desired: 3,
            })
        })
        .at("2026-12-01T12:05:00Z")
        .decide();
    let Step::RollBack { from, to, .. } = &step else {
        panic!("{step:?}");
    };
    assert_eq!((from, to), (&with, &target(OLD)));
    let mut change = ServiceChange::default();
    to.write_template(from, "/run/secrets/aerospike.conf", &mut change);
    assert_eq!(
        change,
        ServiceChange {
            mount_remove_at: Some("/opt/aerospike/data".into()),
            ..ServiceChange::default()
        }
    );
}

#[test]
fn the_last_node_finishing_keeps_the_rollout_shown_until_safe() {
    let scene = Scene::new("7.2.0.0").template(NEW);
    let scene = [2, 3, 4]
        .into_iter()
        .fold(scene, |s, last| s.task(last, "running", true))
        .previous(|p| {
            p.rollout = Some(ReadyCount {
                ready: 2,
                desired: 3,
            })
        });
    let step = scene.clone().meshed(&[2, 3], "CC").decide();
    assert!(matches!(step, Step::Finishing { .. }), "{step:?}");
    assert!(step.may_write(), "no task runs an older template");
    let step = scene.meshed(&[2, 3, 4], "CC").decide();
    assert_eq!(
        step,
        Step::InSync {
            converged: target(NEW)
        }
    );
}

#[test]
fn docker_times_parse() {
    let t = parse_time("2026-12-01T11:37:21.933483306Z").unwrap();
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(secs.as_secs(), 1_796_125_041);
    assert_eq!(secs.subsec_nanos(), 933_483_306);
    assert!(parse_time("yesterday").is_none());
}
