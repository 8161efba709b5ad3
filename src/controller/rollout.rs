//! Rolling changes of the task template — a new version, a new config
//! secret, or anything someone changes by hand — one node at a time, each
//! only when the whole cluster is safe. Pure decisions, from one pass's
//! observation; [`super::reconcile`] applies them.
//!
//! # How swarm is made to wait
//!
//! Swarm's rolling update ("updater") replaces the tasks whose spec differs
//! from the service's template. Two facts, measured on the sandbox (engine
//! 20.10) and read in swarmkit's `updater.go`, decide the design:
//!
//! - With `UpdateConfig.Delay` set, the updater replaces one task, then
//!   sleeps that long before the next.
//! - **Any** update of the service's spec — a label too — cancels the
//!   running updater and starts a new one, which replaces the next task at
//!   once: it neither sleeps nor waits for the health of the task replaced
//!   just before. (A healthcheck gate alone is therefore not enough: the
//!   next status write would walk past it.)
//!
//! So the operator sets the **valve** policy ([`valve_policy`]): one task at
//! a time, stop-first, pause on failure, and a delay of a year. A change of
//! the template — the operator's own, or `docker service update --image`
//! typed by a user — then replaces exactly one task and stops. The next
//! task is replaced when the operator writes the service again, which it
//! does only when every node is safe ([`Step::Release`]), and while a node
//! is changing it writes nothing at all ([`Step::Hold`]). If the operator
//! is down, swarm waits: the valve fails closed.
//!
//! Everything the rollout needs is read from swarm each pass (which tasks
//! run which template, when the changing task was created) or from the
//! status labels (the image and config every node ran when the cluster
//! last converged, the target that failed), so an operator restarted
//! mid-rollout carries on from what it observes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::aerospike::{NodeReport, StabilityCheck};
use crate::spec::{ClusterSpec, ClusterStatus, CONFIG_OBJECT, CONFIG_SECRET, IMAGE, VERSION};
use crate::swarm::{SecretMount, ServiceChange, ServiceInfo, TaskInfo, UpdatePolicy, VolumeMount};

/// The updater's sleep after each replaced task: a year, i.e. until the
/// operator's next write.
pub const VALVE_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The default of `--node-join-timeout`: how long a task of the new
/// template may take to start and join the cluster before the rollout is
/// rolled back.
pub const DEFAULT_JOIN_TIMEOUT: Duration = Duration::from_secs(300);

/// The update (and rollback) policy the operator keeps on every managed
/// service: see the module docs.
pub fn valve_policy() -> UpdatePolicy {
    UpdatePolicy {
        parallelism: 1,
        delay_ns: VALVE_DELAY.as_nanos() as u64,
        failure_action: "pause".into(),
        monitor_ns: Duration::from_secs(5).as_nanos() as u64,
        order: "stop-first".into(),
    }
}

/// The wait between tasks of [`released_policy`].
pub const RELEASED_DELAY: Duration = Duration::from_secs(30);

/// How long after each replacement a failure of the new task pauses the
/// update, in [`released_policy`].
pub const RELEASED_MONITOR: Duration = Duration::from_secs(30);

/// The update (and rollback) policy the operator puts back on a service it
/// lets go (its `aerospike.cluster.replicas` label removed, or no longer
/// matched by the cluster selector), in place of the valve, which would
/// otherwise hold the next `docker service update --image` after one node
/// for a year.
///
/// It is the valve without the operator: still one task at a time,
/// stop-first (as with the valve: a node's slot never runs two copies at
/// once), pausing on failure (a node that does not
/// come up stops the update instead of taking the next one down or rolling
/// back behind the user's back), with [`RELEASED_DELAY`] between tasks and
/// a [`RELEASED_MONITOR`] window in which a task that fails counts as a
/// failed update (a server that dies on a bad config or image does so
/// within seconds). Swarm knows nothing of migrations: 30 s lets a
/// restarted node rejoin before the next goes, not finish migrating; who
/// needs that waits between updates by hand, or keeps the operator.
///
/// A service let go in the middle of a rollout (tasks still on the old
/// template) is, by this write, handed to swarm's updater: it replaces the
/// remaining tasks at this pace without the operator's checks.
pub fn released_policy() -> UpdatePolicy {
    UpdatePolicy {
        parallelism: 1,
        delay_ns: RELEASED_DELAY.as_nanos() as u64,
        failure_action: "pause".into(),
        monitor_ns: RELEASED_MONITOR.as_nanos() as u64,
        order: "stop-first".into(),
    }
}

/// Whether `policy` holds swarm after each task: one at a time, stop-first
/// (start-first would run two copies of a node's slot), pausing on failure,
/// and a delay of at least a day.
pub fn is_valve(policy: Option<&UpdatePolicy>) -> bool {
    policy.is_some_and(|p| {
        p.parallelism == 1
            && p.delay_ns >= Duration::from_secs(24 * 3600).as_nanos() as u64
            && p.order == "stop-first"
            && p.failure_action == "pause"
    })
}

/// What the task template should run: the image, the config secret and
/// the storage volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Full image reference.
    pub image: String,
    /// The secret mounted at the config target; `None` when the spec names
    /// no config secret (the operator then leaves secrets alone).
    pub config_secret: Option<String>,
    /// The swarm config (config object) mounted at the config target;
    /// `None` when the spec names none.
    pub config_object: Option<String>,
    /// The named volume mounted at the storage path; `None` when the spec
    /// declares no storage (the operator then leaves mounts alone).
    pub storage: Option<VolumeMount>,
}

impl Target {
    /// `aerospike/aerospike-server:7.2.0.0`, with `config-secret=NAME` and
    /// `storage=VOLUME:PATH` when they are managed.
    pub fn describe(&self) -> String {
        let mut out = self.image.clone();
        if let Some(secret) = &self.config_secret {
            out.push_str(&format!(" config-secret={secret}"));
        }
        if let Some(config) = &self.config_object {
            out.push_str(&format!(" config-object={config}"));
        }
        if let Some(volume) = &self.storage {
            out.push_str(&format!(" storage={}:{}", volume.source, volume.target));
            if let Some(driver) = &volume.driver {
                out.push_str(&format!(" driver={driver}"));
            }
            for (key, value) in &volume.driver_options {
                out.push_str(&format!(" {key}={value}"));
            }
        }
        out
    }

    /// Adds to `change` what turns the template from `from` into this
    /// target (only the parts that differ).
    pub fn write_template(&self, from: &Target, config_target: &str, change: &mut ServiceChange) {
        if self.image != from.image {
            change.image = Some(self.image.clone());
        }
        if let Some(secret) = &self.config_secret {
            if Some(secret) != from.config_secret.as_ref() {
                change.secret_at_target = Some(SecretMount {
                    name: secret.clone(),
                    target: config_target.to_string(),
                });
            }
        }
        if let Some(config) = &self.config_object {
            if Some(config) != from.config_object.as_ref() {
                change.config_at_target = Some(SecretMount {
                    name: config.clone(),
                    target: config_target.to_string(),
                });
            }
        }
        match (&self.storage, &from.storage) {
            (Some(volume), from) if Some(volume) != from.as_ref() => {
                change.volume_at_target = Some(volume.clone());
            }
            // `from` has a volume only where the spec manages storage: no
            // volume in the target is a rollback to the template before
            // the volume was added.
            (None, Some(volume)) => change.mount_remove_at = Some(volume.target.clone()),
            _ => {}
        }
    }

    /// What the spec asks for.
    pub fn desired(spec: &ClusterSpec, service: &ServiceInfo) -> Target {
        Target {
            image: spec.image_reference(service.image.as_deref()),
            config_secret: spec.config_secret.clone(),
            config_object: spec.config_object.clone(),
            storage: spec.storage.as_ref().map(|s| VolumeMount {
                source: s.volume.clone(),
                target: s.path().to_string(),
                driver: s.driver.clone(),
                driver_options: s.driver_options.clone(),
            }),
        }
    }

    /// What the service's template runs (the config secret and the
    /// storage volume only when the spec manages them).
    pub fn of_template(spec: &ClusterSpec, service: &ServiceInfo) -> Target {
        Target {
            image: service.image.clone().unwrap_or_default(),
            config_secret: spec.config_secret.as_ref().and_then(|_| {
                service
                    .secret_mounts
                    .iter()
                    .find(|m| m.is_at(spec.config_target()))
                    .map(|m| m.name.clone())
            }),
            config_object: spec.config_object.as_ref().and_then(|_| {
                service
                    .config_mounts
                    .iter()
                    .find(|m| m.is_at(spec.config_target()))
                    .map(|m| m.name.clone())
            }),
            storage: storage_at(spec, &service.volume_mounts),
        }
    }

    /// What every node ran when the cluster last converged, from the
    /// status labels. The status does not record the storage volume: it
    /// is the one the tasks of the older template mount (`tasks` still
    /// running a template other than the service's), and with none of
    /// those, the template's own.
    pub fn converged(
        spec: &ClusterSpec,
        status: &ClusterStatus,
        service: &ServiceInfo,
        tasks: &[TaskInfo],
    ) -> Option<Target> {
        let older = tasks
            .iter()
            .find(|t| wanted(t) && is_stale(t, service))
            .map(|t| storage_at(spec, &t.volume_mounts));
        Some(Target {
            image: status.image.clone()?,
            config_secret: spec
                .config_secret
                .as_ref()
                .and(status.config_secret.clone()),
            config_object: spec
                .config_object
                .as_ref()
                .and(status.config_object.clone()),
            storage: older.unwrap_or_else(|| storage_at(spec, &service.volume_mounts)),
        })
    }
}

/// The volume mounted at the spec's storage path, when the spec declares
/// storage.
fn storage_at(spec: &ClusterSpec, mounts: &[VolumeMount]) -> Option<VolumeMount> {
    let path = spec.storage.as_ref()?.path();
    let trimmed = |p: &str| p.trim_end_matches('/').to_string();
    mounts
        .iter()
        .find(|m| trimmed(&m.target) == trimmed(path))
        .map(|m| VolumeMount {
            target: path.to_string(),
            ..m.clone()
        })
}

/// Everything one pass knows that a rollout decision needs.
#[derive(Debug)]
pub struct RolloutFacts<'a> {
    pub spec: &'a ClusterSpec,
    pub service: &'a ServiceInfo,
    /// The service's whole task list, history included.
    pub tasks: &'a [TaskInfo],
    /// The cluster network's id (task addresses are read on it).
    pub network_id: &'a str,
    /// The nodes' reports of this pass.
    pub reports: &'a [NodeReport],
    /// Addresses of the nodes in the main Aerospike cluster.
    pub members: &'a BTreeSet<IpAddr>,
    /// The replica count the cluster should have now.
    pub target_replicas: u64,
    /// The status labels as read at the start of the pass.
    pub previous: &'a ClusterStatus,
    pub now: SystemTime,
    pub join_timeout: Duration,
    /// Tasks that are cold-starting, by id, with when their cold start
    /// last made progress: their join clock runs from then, not from their
    /// creation.
    pub cold_starts: &'a BTreeMap<String, SystemTime>,
    /// Since when this operator has watched the cluster: the join clock
    /// never runs from before it (a node no operator was there to tip has
    /// not failed to join).
    pub watched_since: SystemTime,
    /// `aerospike.cluster.paused=true`, or the pause config exists (see
    /// [`pause_config_name`]).
    pub paused: bool,
}

/// The swarm config whose existence pauses a cluster's rollout without a
/// write to its service (which would let swarm replace the next node):
/// `<service>.paused`.
pub fn pause_config_name(service: &str) -> String {
    format!("{service}.paused")
}

/// Progress of a rollout: nodes on the new template (running and in the
/// cluster) out of all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u32,
    pub total: u32,
}

impl From<&Progress> for crate::spec::ReadyCount {
    fn from(p: &Progress) -> Self {
        crate::spec::ReadyCount {
            ready: p.done,
            desired: p.total,
        }
    }
}

/// What to do about the task template this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No rollout: the template is what the spec asks for and every task
    /// runs it. Record it as the converged target.
    InSync { converged: Target },
    /// The last node of a rollout is changing; no task runs an older
    /// template, so writes release nothing.
    Finishing { to: Target, progress: Progress },
    /// Start rolling to `to`: write the template (swarm replaces the first
    /// node at once).
    Start {
        from: Target,
        to: Target,
        progress: Progress,
    },
    /// The template should change, but not now (`why`); nothing is
    /// pending, so the status may be written.
    WaitToStart { to: Target, why: String },
    /// The spec asks for a target that was rolled back: nothing is tried
    /// until the spec changes.
    Failed { to: Target, from: Target },
    /// A node is changing or the cluster is not safe: write nothing to the
    /// service (a write would let swarm replace the next node).
    Hold { progress: Progress, why: String },
    /// Safe between two nodes, but `aerospike.cluster.paused=true`: write
    /// nothing.
    PausedBetween { progress: Progress },
    /// Every node is safe: write the service (the status, and `adopt`
    /// spec labels for a template changed by hand), which lets swarm
    /// replace the next node.
    Release {
        to: Target,
        progress: Progress,
        adopt: BTreeMap<String, String>,
    },
    /// The changing node failed (`why`): put the converged template back.
    RollBack {
        from: Target,
        to: Target,
        why: String,
    },
    /// The service's update policy lets swarm replace the next node on its
    /// own: put the valve back now (a write, even mid-rollout: swarm would
    /// go on anyway).
    FixPolicy { why: String },
}

impl Step {
    /// Whether this pass may write the service at all.
    pub fn may_write(&self) -> bool {
        !matches!(self, Step::Hold { .. } | Step::PausedBetween { .. })
    }
}

/// A task that is meant to run (desired state `running`).
fn wanted(task: &TaskInfo) -> bool {
    task.desired_state == "running"
}

/// Whether `task` runs another template than the service's: swarm's
/// updater will replace it. Unknown fingerprints never count.
pub fn is_stale(task: &TaskInfo, service: &ServiceInfo) -> bool {
    !task.template_fingerprint.is_empty()
        && !service.template_fingerprint.is_empty()
        && task.template_fingerprint != service.template_fingerprint
}

/// How many of `tasks` that swarm wants running still run an older
/// template than `service`'s: nodes of a rollout not yet replaced (the one
/// changing among them). More than 0: a service write releases the next.
pub fn stale_running(tasks: &[TaskInfo], service: &ServiceInfo) -> usize {
    tasks
        .iter()
        .filter(|t| t.desired_state == "running" && is_stale(t, service))
        .count()
}

/// Parses Docker's RFC 3339 time (`2026-12-01T11:37:21.933483306Z`).
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.strip_suffix('Z')?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    let nanos: u32 = format!("{:0<9}", &frac[..frac.len().min(9)]).parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + min * 60 + s;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Decides this pass's step.
pub fn decide(facts: &RolloutFacts<'_>) -> Step {
    let spec = facts.spec;
    let service = facts.service;
    let desired = Target::desired(spec, service);
    let template = Target::of_template(spec, service);
    let converged = Target::converged(spec, facts.previous, service, facts.tasks);
    let running: Vec<&TaskInfo> = facts.tasks.iter().filter(|t| wanted(t)).collect();
    let stale = running.iter().filter(|t| is_stale(t, service)).count();
    let address = |t: &TaskInfo| t.address_on(facts.network_id);
    let joined = |t: &TaskInfo| {
        t.state == "running" && address(t).is_some_and(|ip| facts.members.contains(&ip))
    };
    let done = running
        .iter()
        .filter(|t| !is_stale(t, service) && joined(t))
        .count() as u32;
    let progress = Progress {
        done,
        total: facts.target_replicas as u32,
    };

    // The changing nodes: tasks of the current template not (yet) in the
    // cluster. Their slot's first task of this template says since when.
    let changing: Vec<&TaskInfo> = running
        .iter()
        .copied()
        .filter(|t| !is_stale(t, service) && !joined(t))
        .collect();
    let in_rollout = stale > 0 || (facts.previous.rollout.is_some() && !changing.is_empty());

    if in_rollout && !is_valve(service.update_policy.as_ref()) {
        return Step::FixPolicy {
            why: format!(
                "the service's update policy lets swarm replace the next node without waiting \
                 ({}); putting back the operator's (one node at a time, each only when the \
                 cluster is safe)",
                describe_policy(service.update_policy.as_ref())
            ),
        };
    }

    if in_rollout {
        if let Some(why) = failure(facts, &changing) {
            let rest: Vec<NodeReport> = facts
                .reports
                .iter()
                .filter(|r| {
                    !changing
                        .iter()
                        .any(|t| address(t) == Some(r.observation.addr.ip()))
                })
                .cloned()
                .collect();
            let rest_size = running.len().saturating_sub(changing.len()) as u32;
            let observations: Vec<_> = rest.iter().map(|r| r.observation.clone()).collect();
            let rest_safe = !rest.is_empty()
                && StabilityCheck {
                    expected_size: rest_size,
                }
                .evaluate(&observations)
                .is_ok();
            return match converged {
                Some(to) if to != template && rest_safe => Step::RollBack {
                    from: template,
                    to,
                    why,
                },
                Some(to) if to != template => Step::Hold {
                    progress,
                    why: format!(
                        "{why}; rolling back to {} once the other nodes are safe",
                        to.describe()
                    ),
                },
                _ => Step::Hold {
                    progress,
                    why: format!("{why}; no earlier template is known to roll back to"),
                },
            };
        }
    }

    let safe = super::plan::safety(facts.reports, running.len(), facts.target_replicas);

    if stale > 0 {
        if let Err(why) = safe {
            return Step::Hold { progress, why };
        }
        // The last release (or the start) let swarm replace one node; the
        // next waits until that one is done. A pass right after the write,
        // before swarm acted on it, must not release another.
        let released_at = facts.previous.rollout.map_or(0, |r| r.ready);
        if done <= released_at {
            return Step::Hold {
                progress,
                why: "waiting for swarm to replace the next node".into(),
            };
        }
        if facts.paused {
            return Step::PausedBetween { progress };
        }
        // A template changed by someone else since the cluster converged:
        // the spec follows it, so that the status and the spec agree.
        let adopt = if converged.as_ref().is_some_and(|c| *c != template) && template != desired {
            adoption(spec, service, &template)
        } else {
            BTreeMap::new()
        };
        return Step::Release {
            to: template,
            progress,
            adopt,
        };
    }

    // No task runs an older template.
    if template != desired {
        if converged.as_ref().is_some_and(|c| *c != template) {
            // Changed by hand and already rolled out (the operator was
            // away): take it into the spec.
            return Step::Release {
                to: template.clone(),
                progress,
                adopt: adoption(spec, service, &template),
            };
        }
        if facts.previous.failed_rollout.as_deref() == Some(desired.describe().as_str()) {
            return Step::Failed {
                to: desired,
                from: template,
            };
        }
        if facts.paused {
            return Step::WaitToStart {
                to: desired,
                why: "paused (aerospike.cluster.paused=true, or the config <service>.paused)"
                    .into(),
            };
        }
        return match safe {
            Ok(()) if changing.is_empty() => Step::Start {
                from: template,
                to: desired,
                progress: Progress {
                    done: 0,
                    ..progress
                },
            },
            Ok(()) => Step::WaitToStart {
                to: desired,
                why: "a node is still joining".into(),
            },
            Err(why) => Step::WaitToStart { to: desired, why },
        };
    }
    if in_rollout || (facts.previous.rollout.is_some() && safe.is_err()) {
        return Step::Finishing {
            to: template,
            progress,
        };
    }
    Step::InSync {
        converged: template,
    }
}

/// Why the changing node counts as failed, if it does: swarm paused the
/// update (a task of the new template exited soon after it started), a
/// node lacks its image, or a task of the new template has not joined
/// within the join timeout since the first task of its slot was created.
fn failure(facts: &RolloutFacts<'_>, changing: &[&TaskInfo]) -> Option<String> {
    let service = facts.service;
    if service.update_status.as_deref() == Some("paused") {
        return Some(format!(
            "swarm paused the update: {}",
            service
                .update_message
                .as_deref()
                .unwrap_or("a task of the new template failed")
        ));
    }
    let fresh = |t: &&TaskInfo| !is_stale(t, service);
    if let Some(task) = facts.tasks.iter().filter(fresh).find(|t| {
        t.error
            .as_deref()
            .is_some_and(|e| e.contains("No such image"))
    }) {
        if !facts.tasks.iter().filter(fresh).any(|t| t.is_running()) {
            return Some(format!(
                "task {} cannot start: {}",
                task.id,
                task.error.as_deref().unwrap_or_default()
            ));
        }
    }
    for task in changing {
        // Waiting for a node to take it (its own node is down, every other
        // one has a task of the cluster): nothing is wrong with the new
        // template, and a node lost during a change is not a failed
        // rollout. It counts once it is placed.
        if task.state == "pending" {
            continue;
        }
        // The slot's tasks since it last ran another template: an older
        // era of this same template (a rollout back to it) does not count.
        let mut slot: Vec<(SystemTime, bool)> = facts
            .tasks
            .iter()
            .filter(|t| t.slot == task.slot)
            .filter_map(|t| {
                let created = t.created_at.as_deref().and_then(parse_time)?;
                Some((created, !is_stale(t, service)))
            })
            .collect();
        slot.sort();
        let first = slot
            .iter()
            .rev()
            .take_while(|(_, fresh)| *fresh)
            .map(|(created, _)| *created)
            .last();
        let Some(first) = first else { continue };
        // Reading its storage back is not failing to join: the clock
        // starts again at each step of progress its console reports.
        let progressed = facts.cold_starts.get(&task.id).copied();
        let since = progressed.map_or(first, |at| at.max(first));
        let watched = facts.watched_since > since;
        let since = since.max(facts.watched_since);
        let waited = facts.now.duration_since(since).unwrap_or_default();
        if waited > facts.join_timeout {
            let what = match (task.state.as_str(), progressed, watched) {
                ("running", Some(_), false) => "has made no cold-start progress and has not joined",
                ("running", _, true) => {
                    "has not joined the cluster since this operator began to watch it"
                }
                ("running", _, false) => "has not joined the cluster",
                _ => "has not started",
            };
            return Some(format!(
                "the node of slot {} on the new template {what} within {} s (task {}, {})",
                task.slot.unwrap_or(0),
                facts.join_timeout.as_secs(),
                task.id,
                task.state
            ));
        }
    }
    None
}

/// The spec labels that make the spec ask for `template`.
fn adoption(
    spec: &ClusterSpec,
    service: &ServiceInfo,
    template: &Target,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let repository = crate::spec::names::repository_of(&template.image).to_string();
    let tag = template.image.split('@').next().unwrap_or_default();
    let tag = tag
        .strip_prefix(repository.as_str())
        .and_then(|t| t.strip_prefix(':'))
        .unwrap_or_default();
    if !tag.is_empty() && tag != spec.version {
        labels.insert(VERSION.to_string(), tag.to_string());
    }
    if spec.repository(service.image.as_deref()) != repository {
        labels.insert(IMAGE.to_string(), repository);
    }
    if let (Some(secret), Some(current)) = (&template.config_secret, &spec.config_secret) {
        if secret != current {
            labels.insert(CONFIG_SECRET.to_string(), secret.clone());
        }
    }
    if let (Some(config), Some(current)) = (&template.config_object, &spec.config_object) {
        if config != current {
            labels.insert(CONFIG_OBJECT.to_string(), config.clone());
        }
    }
    labels
}

/// `parallelism 1, delay 0s, stop-first, on failure pause` for the log.
fn describe_policy(policy: Option<&UpdatePolicy>) -> String {
    match policy {
        None => "none set: swarm's defaults, no delay".into(),
        Some(p) => format!(
            "parallelism {}, delay {} s, {}, on failure {}",
            p.parallelism,
            p.delay_ns / 1_000_000_000,
            p.order,
            p.failure_action
        ),
    }
}

#[cfg(test)]
mod tests;
