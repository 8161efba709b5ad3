//! Decide: one pass's decision from its observation, with no I/O.
//!
//! [`decide`] takes what [`super::observe`] read and returns a
//! [`Decision`]: the action lines to log, the orders to send to the nodes,
//! the one write to the service (or none), and when to look again. It
//! combines the single-purpose decisions — [`super::plan`] (placement,
//! status), [`super::mesh`] (tips, clean-ups), [`super::rollout`] (the
//! valve), [`super::scaledown`] — and is what the tests in
//! [`super::fixtures`]' scenes check. [`super::reconcile`] carries the
//! decision out.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::aerospike::{ClusterView, NodeId};
use crate::spec::{ClusterStatus, Edition, Phase};
use crate::swarm::{ServiceChange, TaskInfo};

use super::attach;
use super::liveconfig::{self, LiveOrder};
use super::membership::WatchSet;
use super::mesh;
use super::metrics::{ClusterGauges, NodeGauges};
use super::observe::{ClusterObservation, Observed, Stop};
use super::plan::{self, Settle, StatusFacts};
use super::reconcile::{Action, STARTING_RECHECK, UNREACHABLE_RECHECK, WATCH_RECHECK};
use super::rollout::{self, RolloutFacts, Step};
use super::scaledown::{self, ScaleFacts, ScaleStep};
use super::suspect::{self, Screened};

/// The reconciler's settings a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How soon a converging cluster is looked at again.
    pub poll_fast: Duration,
    /// How long a task of a new template may take to start and join before
    /// the rollout is rolled back.
    pub join_timeout: Duration,
}

/// Everything one pass does, decided before any of it is done.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// Action log lines, in order (`action`, `reason`).
    pub acts: Vec<Act>,
    /// Tips to send (each only if not sent within the order grace).
    pub tips: Vec<TipOrder>,
    /// Tip-clears and alumni resets for the survivors of departed nodes.
    pub cleanups: Vec<mesh::Cleanup>,
    /// The heartbeat port the orders name.
    pub heartbeat_port: u16,
    /// An order for a scale-down's leaving node (Enterprise).
    pub node_order: Option<NodeOrder>,
    /// `set-config`s of a config object's live parameters (see
    /// [`liveconfig`]).
    pub live_sets: Vec<LiveOrder>,
    /// The one write to Docker.
    pub write: Write,
    /// The status to show now in the cluster's status config
    /// (`<service>.status`), whatever `write` does: the live status, also
    /// while a node is changing and the service must not be written.
    pub shown: Option<ClusterStatus>,
    /// Forget what the reconciler remembers of the service (it is gone or
    /// no longer managed).
    pub forget: bool,
    /// Remove the status config this reconciler wrote for the service (it
    /// is gone, or declares no cluster any more).
    pub remove_status_config: bool,
    /// When to look again.
    pub next: Next,
    /// The service's name when it is managed.
    pub managed: Option<String>,
    /// What the pass saw, for the metrics.
    pub gauges: Option<ClusterGauges>,
    /// The main cluster, for the membership watch.
    pub watch: Option<WatchSet>,
    /// Which node holds each node id after this pass, for the next one
    /// ([`suspect::remember`]).
    pub node_ids: Option<BTreeMap<NodeId, SocketAddr>>,
}

/// One action log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Act {
    /// The `action` field: `scale`, `rollout-start`, `quiesce`, …
    pub action: &'static str,
    /// Why, in words.
    pub reason: String,
}

/// A tip to send: `node` is told about `target`'s heartbeat endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TipOrder {
    /// The node outside the main cluster.
    pub node: SocketAddr,
    /// A member of the cluster it should join.
    pub target: IpAddr,
    /// The log line's reason.
    pub reason: String,
}

/// An order to the node that leaves next in an Enterprise scale-down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOrder {
    /// `quiesce` it, then `recluster` every member.
    Quiesce {
        /// The leaving node.
        node: SocketAddr,
        /// Every node of the cluster.
        members: Vec<SocketAddr>,
    },
    /// Its quiesce is pending: `recluster` again.
    Recluster {
        /// The leaving node.
        node: SocketAddr,
        /// Every node of the cluster.
        members: Vec<SocketAddr>,
    },
}

/// The one write of a pass.
// One per pass, moved once: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Write {
    /// Nothing (settled, or a node is changing: any write would let swarm
    /// replace the next one).
    #[default]
    Nothing,
    /// The cluster's service: `change`, and the status labels that differ
    /// from `status` (none when `status` is `None`). Nothing is sent when
    /// neither changes anything.
    Service {
        /// The status to show.
        status: Option<ClusterStatus>,
        /// Placement, replicas, template, policy.
        change: ServiceChange,
    },
    /// The operator's own service (attach it to the cluster's network).
    Operator {
        /// The operator's service.
        service: String,
        /// The change.
        change: ServiceChange,
    },
}

/// When to look at the cluster again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// This, whatever the orders do.
    Fixed(Action),
    /// This, or a fast poll when an order was sent or failed: its effect is
    /// read on the next pass.
    SoonerIfOrdered(Action),
}

impl Default for Next {
    fn default() -> Next {
        Next::Fixed(Action::AwaitChange)
    }
}

impl Decision {
    fn act(&mut self, action: &'static str, reason: impl Into<String>) {
        self.acts.push(Act {
            action,
            reason: reason.into(),
        });
    }
}

/// Decides one pass from `observed`.
pub fn decide(observed: &Observed, settings: &Settings) -> Decision {
    let previous = observed.previous();
    match observed {
        Observed::Gone { .. } => Decision {
            forget: true,
            remove_status_config: true,
            ..Decision::default()
        },
        Observed::Unmanaged {
            release,
            declares_cluster,
            ..
        } => {
            let mut decision = Decision {
                forget: true,
                // Selected by no operator of ours any more: no status is
                // kept. (One that another operator's selector matches keeps
                // its config: that operator writes it.)
                remove_status_config: !declares_cluster,
                ..Decision::default()
            };
            if let Some(stale) = release {
                decision.act("release-policy", release_reason(*declares_cluster, *stale));
                decision.write = Write::Service {
                    status: None,
                    change: ServiceChange {
                        update_policy: Some(rollout::released_policy()),
                        ..ServiceChange::default()
                    },
                };
            }
            decision
        }
        Observed::Invalid {
            service,
            problems,
            changing,
        } => {
            let message = format!("invalid spec: {}", problems.join("; "));
            let status = plan::error_status(&previous, message);
            unless_changing(&service.name, status, *changing)
        }
        Observed::Stopped {
            service,
            spec,
            changing,
            why,
        } => {
            let mut decision = match why {
                Stop::Paused => {
                    let status = plan::paused_status(&previous);
                    Decision {
                        gauges: Some(ClusterGauges::phase(status.phase)),
                        shown: Some(status.clone()),
                        write: Write::Service {
                            status: Some(status),
                            change: ServiceChange::default(),
                        },
                        managed: Some(service.name.clone()),
                        ..Decision::default()
                    }
                }
                Stop::Problem(message) => unless_changing(
                    &service.name,
                    plan::error_status(&previous, message.clone()),
                    *changing,
                ),
                Stop::Unreached(attach::Reach::Forbidden(message)) => unless_changing(
                    &service.name,
                    plan::error_status(&previous, message.clone()),
                    *changing,
                ),
                Stop::Unreached(attach::Reach::Attach {
                    service: operator,
                    network_id,
                    reason,
                }) => {
                    // A write to the operator's service, never to the
                    // cluster's: it releases no node of a rollout. This
                    // process is replaced shortly; its successor looks again.
                    let mut decision = Decision {
                        write: Write::Operator {
                            service: operator.clone(),
                            change: ServiceChange {
                                networks_add: vec![network_id.clone()],
                                ..ServiceChange::default()
                            },
                        },
                        next: Next::Fixed(Action::Requeue(WATCH_RECHECK)),
                        managed: Some(service.name.clone()),
                        ..Decision::default()
                    };
                    decision.act("attach-network", reason.clone());
                    decision
                }
                Stop::Unreached(attach::Reach::Attached) => Decision {
                    managed: Some(service.name.clone()),
                    ..Decision::default()
                },
            };
            if previous.phase.is_none() {
                decision.acts.insert(0, adopt(spec.summary()));
            }
            decision
        }
        Observed::Cluster(cluster) => {
            let mut decision = decide_cluster(cluster, &previous, settings);
            if previous.phase.is_none() {
                decision.acts.insert(0, adopt(cluster.spec.summary()));
            }
            decision
        }
    }
}

fn adopt(summary: String) -> Act {
    Act {
        action: "adopt",
        reason: format!("managing this service as an Aerospike cluster: {summary}"),
    }
}

fn release_reason(declares_cluster: bool, stale: usize) -> String {
    let why = if declares_cluster {
        "it is no longer matched by the cluster selector"
    } else {
        "it no longer has an aerospike.cluster.replicas label"
    };
    let (delay, monitor) = (
        rollout::RELEASED_DELAY.as_secs(),
        rollout::RELEASED_MONITOR.as_secs(),
    );
    let mut reason = format!(
        "not managed any more ({why}): sets the service's update and rollback policy from the \
         operator's valve (a year between tasks) to one task at a time, stop-first, pause on \
         failure, {delay} s between tasks, failures counted for {monitor} s: swarm now rolls \
         template changes by itself, without the operator's checks; the aerospike.status.* \
         labels stay as last written and are no longer kept up to date"
    );
    if stale > 0 {
        reason.push_str(&format!(
            "; {stale} task(s) still run the old template of a rollout under way: swarm replaces \
             them now, one every {delay} s"
        ));
    }
    reason
}

/// Writes `status` unless a node of a rollout is changing (then any write
/// would let swarm replace the next node): the problem is logged instead,
/// and looked at again soon.
fn unless_changing(cluster: &str, status: ClusterStatus, changing: bool) -> Decision {
    let gauges = Some(ClusterGauges::phase(status.phase));
    let shown = Some(status.clone());
    if changing {
        warn!(
            cluster = %cluster,
            problem = %status.message.clone().unwrap_or_default(),
            "not writing the status to the service while a node is changing (a write would let \
             swarm replace the next one): only to its status config"
        );
        return Decision {
            gauges,
            shown,
            next: Next::Fixed(Action::Requeue(WATCH_RECHECK)),
            managed: Some(cluster.to_string()),
            ..Decision::default()
        };
    }
    Decision {
        gauges,
        shown,
        write: Write::Service {
            status: Some(status),
            change: ServiceChange::default(),
        },
        managed: Some(cluster.to_string()),
        ..Decision::default()
    }
}

/// The decision of a full pass: mesh orders, the rollout step, placement
/// and replicas, and the status, in one write at most.
///
/// The reports are screened first ([`suspect::screen`]): everything is
/// decided from the trusted ones alone, as if the untrusted nodes had not
/// answered, and the status then names them (Degraded).
fn decide_cluster(
    observed: &ClusterObservation,
    previous: &ClusterStatus,
    settings: &Settings,
) -> Decision {
    let screened = suspect::screen(
        &observed.reports,
        &observed.misbehaving,
        &observed.id_holders,
        &observed.addrs,
        &observed.all_tasks,
        &observed.network.id,
    );
    let node_ids = suspect::remember(
        &observed.id_holders,
        &screened,
        &observed.reports,
        &observed.addrs,
    );
    let trusted;
    let cluster = if screened.suspects.is_empty() {
        observed
    } else {
        trusted = trusted_only(observed, &screened);
        &trusted
    };
    let mut decision = decide_trusted(cluster, previous, settings, &screened);
    decision.node_ids = Some(node_ids);
    decision
}

/// `observed` as if only the trusted nodes had answered: their reports,
/// the view of them, and a stall only if on one of them.
fn trusted_only(observed: &ClusterObservation, screened: &Screened) -> ClusterObservation {
    ClusterObservation {
        reports: screened.trusted.clone(),
        view: ClusterView::from(
            screened
                .trusted
                .iter()
                .map(|r| r.observation.clone())
                .collect::<Vec<_>>(),
        ),
        stalled: observed.stalled.filter(|s| !screened.is_suspect(s.node)),
        misbehaving: Vec::new(),
        ..observed.clone()
    }
}

/// [`decide_cluster`] over the trusted reports; `screened` names the
/// suspects.
fn decide_trusted(
    cluster: &ClusterObservation,
    previous: &ClusterStatus,
    settings: &Settings,
    screened: &Screened,
) -> Decision {
    let suspects = &screened.suspects;
    let ClusterObservation {
        service,
        spec,
        all_tasks,
        changing,
        pause_config,
        network,
        eligible,
        last_set,
        tasks,
        reports,
        unreachable,
        cold_starting,
        cold_progress,
        silence,
        view,
        answered,
        stalled,
        now,
        watched_since,
        ..
    } = cluster;
    let name = &service.name;
    let mut decision = Decision {
        managed: Some(name.clone()),
        heartbeat_port: spec.heartbeat_port(),
        ..Decision::default()
    };
    let placement = plan::plan_placement(spec, service, *eligible, previous, *last_set);
    let unreachable_persists = reports.is_empty() && silence.all_past_grace;

    // Mesh: tips toward the main cluster, clean-ups of departed nodes.
    let tips = mesh::plan_tips(view);
    let main = view.main_cluster();
    decision.tips = tips
        .iter()
        .map(|(node, target)| TipOrder {
            node: *node,
            target: *target,
            reason: match main {
                Some(main) => format!(
                    "node {node} is not in the main cluster ({} nodes, key {}); tipping it toward \
                     member {target}",
                    main.members.len(),
                    main.cluster_key
                ),
                None => format!("no node is in a cluster yet; tipping {node} toward {target}"),
            },
        })
        .collect();
    decision.cleanups =
        mesh::plan_cleanup(reports, &tasks.present, spec.heartbeat_port(), answered);
    let strays = mesh::stray_addresses(reports);

    // The rollout, the replicas and the status: one write at most.
    let members: BTreeSet<IpAddr> = main
        .map(|m| m.members.iter().map(|n| n.addr.ip()).collect())
        .unwrap_or_default();
    // A live config change: the rollout targets the template's config.
    let rollout_spec = liveconfig::rollout_spec(spec, &cluster.config);
    let step = rollout::decide(&RolloutFacts {
        spec: &rollout_spec,
        service,
        tasks: all_tasks,
        network_id: &network.id,
        reports,
        members: &members,
        target_replicas: placement.target,
        previous,
        now: *now,
        join_timeout: settings.join_timeout,
        cold_starts: cold_progress,
        watched_since: *watched_since,
        paused: spec.paused() || *pause_config,
    });
    // The next node is never released while a node is not trusted (the
    // safety check, on the trusted reports, already fails: this says so).
    let step = match step {
        Step::Release { progress, .. } if !suspects.is_empty() => Step::Hold {
            progress,
            why: format!(
                "not releasing the next node while {}",
                suspect::message(suspects)
            ),
        },
        step => step,
    };
    let mut change = ServiceChange::default();
    let mut scale_wait = None;
    if !changing && step.may_write() {
        scale_wait = placement_change(&mut decision, cluster, &placement, &mut change, suspects);
    }
    let scaled = change.replicas.is_some()
        || change.max_replicas_per_node.is_some()
        || change.constraints.is_some();
    if !rollout::is_valve(service.update_policy.as_ref())
        || !rollout::is_valve(service.rollback_policy.as_ref())
    {
        if !matches!(step, Step::FixPolicy { .. }) {
            decision.act(
                "update-policy",
                "sets the service's update and rollback policy to one task at a time, stop-first, \
                 pause on failure, and a delay of a year: swarm then replaces one node per change \
                 and waits for the operator to release the next (restarts nothing by itself)",
            );
        }
        change.update_policy = Some(rollout::valve_policy());
    }

    let observed = plan::observed_version(service, previous);
    let facts = StatusFacts {
        spec,
        placement: &placement,
        scaled,
        tasks,
        view,
        reports,
        unreachable,
        cold_starting: &cold_starting
            .iter()
            .map(|c| (c.addr, c.cold.describe()))
            .collect::<Vec<_>>(),
        unreachable_persists,
        strays: &strays,
        stalled: *stalled,
        previous,
        network: &network.name,
    };
    let (computed, settle) = plan::compute_status(&facts, Some(observed));
    let mut status = rollout_status(&step, computed, previous);
    if let Some(wait) = &scale_wait {
        status.phase = Some(Phase::Scaling);
        status.message = Some(wait.clone());
    }
    let status = liveconfig::shape_status(status, &cluster.config, tasks.desired);
    let status = suspect::degrade(status, suspects);
    decision.live_sets = liveconfig::live_orders(&cluster.config, |node| screened.is_suspect(node));
    for order in &decision.live_sets {
        debug!(cluster = %name, node = %order.node, param = %order.param.name, "live config order");
    }
    let template_change = step_acts(
        &mut decision,
        name,
        &step,
        spec.config_target(),
        &mut change,
    );

    let gauges = ClusterGauges {
        phase: status.phase,
        nodes: Some(NodeGauges {
            desired: tasks.desired as u64,
            running: tasks.running as u64,
            meshed: members.len() as u64,
            migrations_remaining: reports
                .iter()
                .map(|r| r.observation.stats.migrate_partitions_remaining)
                .sum(),
            rollout: status
                .rollout
                .map(|r| (u64::from(r.ready), u64::from(r.desired))),
        }),
    };
    let rolling = !matches!(step, Step::InSync { .. });
    decision.next = if status.phase == Some(Phase::Error) && !unreachable.is_empty() {
        Next::Fixed(Action::Requeue(UNREACHABLE_RECHECK))
    } else if status.phase == Some(Phase::Scaling) && scale_wait.is_none() || silence.some_new {
        // Swarm has no task events: look again soon, so that a task is
        // tipped a moment after it starts (and listens) rather than a poll
        // later.
        Next::Fixed(Action::Requeue(STARTING_RECHECK.min(settings.poll_fast)))
    } else if scaled || template_change || !tips.is_empty() {
        // Tips take effect within a few heartbeats: verify cluster_size and
        // cluster_key on the next pass.
        Next::Fixed(Action::Requeue(settings.poll_fast))
    } else if rolling && !matches!(step, Step::Failed { .. }) {
        // Nothing in the swarm changes when migrations end.
        Next::Fixed(Action::Requeue(settings.poll_fast))
    } else {
        Next::SoonerIfOrdered(match settle {
            Settle::Converging => Action::Requeue(settings.poll_fast),
            Settle::Watching => Action::Requeue(WATCH_RECHECK),
            // No swarm event says when an untrusted node mends.
            Settle::Settled if !suspects.is_empty() => Action::Requeue(WATCH_RECHECK),
            Settle::Settled => Action::AwaitChange,
        })
    };
    if matches!(&cluster.config, liveconfig::ConfigObservation::Live { pending, .. } if pending.values().any(|p| !p.is_empty()))
    {
        // Read back with get-config on the next pass.
        decision.next = Next::Fixed(Action::Requeue(settings.poll_fast));
    }
    debug!(
        cluster = %name,
        tasks_desired = tasks.desired,
        tasks_running = tasks.running,
        nodes_up = tasks.up.len(),
        nodes_unreachable = unreachable.len(),
        outsiders = view.outsiders().len(),
        migrations_remaining = gauges.nodes.as_ref().map(|n| n.migrations_remaining).unwrap_or(0),
        phase = ?status.phase,
        next = ?decision.next,
        "pass decided"
    );
    decision.shown = Some(status.clone());
    if step.may_write() {
        decision.write = Write::Service {
            status: Some(status),
            change,
        };
    } else {
        debug!(cluster = %name, step = ?step, "a node is changing: not writing the service");
    }
    decision.gauges = Some(gauges);
    decision.watch = main.map(|main| WatchSet {
        members: main.members.iter().map(|m| m.addr).collect(),
        cluster_key: main.cluster_key.clone(),
    });
    decision
}

/// Adds the placement and replica changes of `placement` to `change` (one
/// step of a scale-down at a time, see [`scaledown`]), with their action
/// lines and node orders; what a scale-down waits for, if it waits.
fn placement_change(
    decision: &mut Decision,
    cluster: &ClusterObservation,
    placement: &plan::PlacementPlan,
    change: &mut ServiceChange,
    suspects: &[suspect::Suspect],
) -> Option<String> {
    let ClusterObservation {
        service,
        spec,
        all_tasks,
        network,
        tasks,
        addrs,
        reports,
        quiesce,
        ..
    } = cluster;
    let mut scale_wait = None;
    if let Some(reason) = &placement.set_max_replicas {
        decision.act("place", reason.clone());
        change.max_replicas_per_node = Some(1);
    }
    let current = service.replicas.unwrap_or(0);
    let ours = service
        .constraints
        .iter()
        .any(|c| c.replace(' ', "").starts_with(scaledown::EXCLUDE_PREFIX));
    if placement.set_replicas.is_some() || ours {
        let running_tasks: Vec<TaskInfo> = all_tasks
            .iter()
            .filter(|t| t.desired_state == "running")
            .cloned()
            .collect();
        let enterprise = spec.edition(service.image.as_deref()) == Edition::Enterprise;
        let reason = placement
            .set_replicas
            .as_ref()
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        let step = scaledown::decide(&ScaleFacts {
            enterprise,
            target: placement.target,
            current,
            tasks: &running_tasks,
            network_id: &network.id,
            service_port: spec.service_port(),
            reports,
            summary: tasks,
            constraints: &service.constraints,
            quiesce: *quiesce,
        });
        // No node is quiesced or removed while a node is not trusted (the
        // safety check, on the trusted reports, already fails: this says
        // so). Growing, and dropping tasks that do not run, go on.
        let step = match step {
            ScaleStep::Quiesce { .. } | ScaleStep::Recluster { .. } | ScaleStep::Exclude { .. }
                if !suspects.is_empty() =>
            {
                ScaleStep::Wait(format!(
                    "removing no node while {}",
                    suspect::message(suspects)
                ))
            }
            ScaleStep::Replicas(next) if next < current && !suspects.is_empty() => {
                let running = tasks.running as u64;
                if next >= running {
                    // Only tasks that do not run are dropped.
                    ScaleStep::Replicas(next)
                } else {
                    ScaleStep::Wait(format!(
                        "removing no node while {}",
                        suspect::message(suspects)
                    ))
                }
            }
            step => step,
        };
        match step {
            ScaleStep::Replicas(next) if next != current => {
                decision.act("scale", reason);
                change.replicas = Some(next);
            }
            ScaleStep::Replicas(_) | ScaleStep::Nothing => {}
            ScaleStep::Wait(why) => scale_wait = Some(format!("{reason}; {why}")),
            ScaleStep::Quiesce { node, task } => {
                decision.act(
                    "quiesce",
                    format!(
                        "{reason}; node {node} (task {task}) leaves next: quiesce so that it \
                         hands its partitions off before it stops"
                    ),
                );
                decision.node_order = Some(NodeOrder::Quiesce {
                    node,
                    members: addrs.clone(),
                });
                scale_wait = Some(format!("{reason}; quiescing node {node} before it leaves"));
            }
            ScaleStep::Recluster { node } => {
                decision.node_order = Some(NodeOrder::Recluster {
                    node,
                    members: addrs.clone(),
                });
                scale_wait = Some(format!(
                    "{reason}; waiting for the quiesce of node {node} to take effect \
                     (recluster)"
                ));
            }
            ScaleStep::Exclude { task, constraint } => {
                decision.act(
                    "exclude",
                    format!(
                        "{reason}; task {task} is quiesced and every node is safe: adding the \
                         constraint {constraint} so that swarm stops exactly that task"
                    ),
                );
                let mut constraints = service.constraints.clone();
                constraints.push(constraint);
                change.constraints = Some(constraints);
            }
            ScaleStep::Unexclude { constraints } => {
                decision.act(
                    "unexclude",
                    format!(
                        "{current} nodes left as asked; removing the constraints {} (no task \
                         restarts)",
                        constraints.join(", ")
                    ),
                );
                change.constraints = Some(
                    service
                        .constraints
                        .iter()
                        .filter(|c| !constraints.contains(c))
                        .cloned()
                        .collect(),
                );
            }
        }
    }
    scale_wait
}

/// Adds what `step` does to the action lines, and its template changes to
/// `change`; whether it changes the template.
fn step_acts(
    decision: &mut Decision,
    cluster: &str,
    step: &Step,
    config_target: &str,
    change: &mut ServiceChange,
) -> bool {
    match step {
        Step::Start { from, to, progress } => {
            decision.act(
                "rollout-start",
                format!(
                    "rolling {} nodes from {} to {}, one at a time: swarm replaces one node, the \
                     next only once every node is back in one cluster with 0 migrations",
                    progress.total,
                    from.describe(),
                    to.describe()
                ),
            );
            to.write_template(from, config_target, change);
            true
        }
        Step::Release {
            progress,
            adopt,
            to,
            ..
        } => {
            if !adopt.is_empty() {
                let labels: Vec<String> = adopt.iter().map(|(k, v)| format!("{k}={v}")).collect();
                decision.act(
                    "adopt-template",
                    format!(
                        "the task template was changed outside the operator (docker service \
                         update?) to {}; the spec follows it: {}",
                        to.describe(),
                        labels.join(", ")
                    ),
                );
                change.labels_set.extend(adopt.clone());
            }
            decision.act(
                "rollout-next",
                format!(
                    "{}/{} nodes run {}; every node is safe (one cluster, 0 migrations): letting \
                     swarm replace the next node",
                    progress.done,
                    progress.total,
                    to.describe()
                ),
            );
            false
        }
        Step::RollBack { from, to, why } => {
            decision.act(
                "rollback",
                format!(
                    "the rollout to {} failed: {why}; rolling back to {}",
                    from.describe(),
                    to.describe()
                ),
            );
            to.write_template(from, config_target, change);
            true
        }
        Step::FixPolicy { why } => {
            decision.act("update-policy", why.clone());
            change.update_policy = Some(rollout::valve_policy());
            false
        }
        Step::Hold { progress, why } => {
            debug!(cluster = %cluster, done = progress.done, total = progress.total, why = %why, "rollout: holding");
            false
        }
        Step::PausedBetween { progress } => {
            info!(cluster = %cluster, done = progress.done, total = progress.total, "rollout paused between nodes (aerospike.cluster.paused=true): not releasing the next node");
            false
        }
        Step::InSync { .. }
        | Step::Finishing { .. }
        | Step::WaitToStart { .. }
        | Step::Failed { .. } => false,
    }
}

/// The status for this pass: the one [`plan::compute_status`] gave, with
/// what the rollout step says on top.
fn rollout_status(step: &Step, computed: ClusterStatus, previous: &ClusterStatus) -> ClusterStatus {
    let next_step = Some(previous.rollout_step.unwrap_or(0) + 1);
    let upgrading = |message: String| ClusterStatus {
        phase: Some(Phase::Upgrading),
        message: Some(message),
        ..computed.clone()
    };
    match step {
        Step::InSync { converged } => ClusterStatus {
            image: Some(converged.image.clone()),
            config_secret: converged.config_secret.clone(),
            config_object: converged.config_object.clone(),
            failed_rollout: None,
            rollout: None,
            rollout_step: None,
            ..computed
        },
        Step::Finishing { to, progress } => ClusterStatus {
            rollout: Some(progress.into()),
            rollout_step: previous.rollout_step,
            ..upgrading(format!(
                "{}/{} nodes run {}; waiting for the last one: {}",
                progress.done,
                progress.total,
                to.describe(),
                computed.message.clone().unwrap_or_default()
            ))
        },
        Step::Start { from, to, progress } => ClusterStatus {
            rollout: Some(progress.into()),
            rollout_step: next_step,
            image: Some(from.image.clone()),
            config_secret: from.config_secret.clone(),
            config_object: from.config_object.clone(),
            ..upgrading(format!(
                "rolling {} nodes to {}: replacing the first; each next one only once every node \
                 is back in one cluster with 0 migrations",
                progress.total,
                to.describe()
            ))
        },
        Step::WaitToStart { to, why } => match computed.phase {
            Some(Phase::Error) | Some(Phase::Degraded) => ClusterStatus {
                message: Some(format!(
                    "{}; then rolling to {}",
                    computed.message.clone().unwrap_or_default(),
                    to.describe()
                )),
                ..computed
            },
            _ => upgrading(format!(
                "waiting to start rolling to {}: {why}",
                to.describe()
            )),
        },
        Step::Failed { to, from } => ClusterStatus {
            phase: Some(Phase::Error),
            message: Some(match (&previous.phase, &previous.message) {
                (Some(Phase::Error), Some(m)) if m.starts_with("the rollout to") => m.clone(),
                _ => format!(
                    "the rollout to {} failed and was rolled back; the nodes run {}; set another \
                     version (or config secret) to roll again",
                    to.describe(),
                    from.describe()
                ),
            }),
            ..computed
        },
        Step::Release { to, progress, .. } => ClusterStatus {
            rollout: Some(progress.into()),
            rollout_step: next_step,
            ..upgrading(format!(
                "{}/{} nodes run {}; replacing the next (one at a time, each only once every node \
                 is back in one cluster with 0 migrations)",
                progress.done,
                progress.total,
                to.describe()
            ))
        },
        Step::RollBack { from, to, why } => ClusterStatus {
            phase: Some(Phase::Error),
            message: Some(format!(
                "the rollout to {} failed: {why}; rolled back to {}; set another version (or \
                 config secret) to roll again",
                from.describe(),
                to.describe()
            )),
            failed_rollout: Some(from.describe()),
            rollout: None,
            rollout_step: None,
            ..computed
        },
        Step::FixPolicy { .. } | Step::Hold { .. } | Step::PausedBetween { .. } => ClusterStatus {
            rollout: previous.rollout,
            rollout_step: next_step,
            ..upgrading(computed.message.clone().unwrap_or_default())
        },
    }
}

#[cfg(test)]
mod tests {
    //! Decisions from observed scenes ([`super::super::fixtures::Scene`]):
    //! what each situation leads the pass to do, with no Docker and no node
    //! behind it.

    use super::*;
    use crate::controller::fixtures::{self, addr, ip, Scene};

    /// What the decision would send to Docker for `scene`, if anything.
    fn sent(decision: &Decision, scene: &Scene) -> Option<String> {
        match &decision.write {
            Write::Nothing => None,
            Write::Service { status, change } => {
                let labels = status.as_ref().filter(|s| s.would_change(&scene.labels()));
                (labels.is_some() || !change.is_empty())
                    .then(|| format!("status {labels:?}, change {change:?}"))
            }
            Write::Operator { service, change } => Some(format!("{service}: {change:?}")),
        }
    }

    fn status(decision: &Decision) -> ClusterStatus {
        match &decision.write {
            Write::Service {
                status: Some(status),
                ..
            } => status.clone(),
            other => panic!("no status written: {other:?}"),
        }
    }

    fn actions(decision: &Decision) -> Vec<&'static str> {
        decision.acts.iter().map(|a| a.action).collect()
    }

    #[test]
    fn a_settled_cluster_sends_nothing_and_waits_for_a_change() {
        let first = Scene::cluster(3);
        let decision = first.decide();
        // The control: the first pass adopts the cluster and writes Ready.
        assert_eq!(actions(&decision), ["adopt"]);
        assert!(sent(&decision, &first).is_some());
        assert_eq!(status(&decision).phase, Some(Phase::Ready));

        let settled = first.after_a_pass();
        let decision = settled.decide();
        assert_eq!(sent(&decision, &settled), None);
        assert!(decision.acts.is_empty(), "{:?}", decision.acts);
        assert!(decision.tips.is_empty() && decision.cleanups.is_empty());
        assert_eq!(decision.node_order, None);
        assert_eq!(decision.next, Next::SoonerIfOrdered(Action::AwaitChange));
        let watch = decision.watch.expect("a main cluster to watch");
        assert_eq!(watch.members, [addr(2), addr(3), addr(4)]);
        assert_eq!(watch.cluster_key, "AA");
    }

    #[test]
    fn a_member_that_stops_answering_is_not_ready_and_leaves_the_watch() {
        let scene = Scene::cluster(3).after_a_pass().silent(4);
        let decision = scene.decide();
        let status = status(&decision);
        assert_ne!(status.phase, Some(Phase::Ready), "{status:?}");
        assert_eq!(status.ready.map(|r| (r.ready, r.desired)), Some((2, 3)));
        assert!(sent(&decision, &scene).is_some());
        let watch = decision.watch.expect("the two that answer");
        assert_eq!(watch.members, [addr(2), addr(3)]);
        assert_ne!(decision.next, Next::SoonerIfOrdered(Action::AwaitChange));
    }

    #[test]
    fn a_node_in_a_cluster_of_its_own_is_tipped_toward_the_lowest_member() {
        let scene = Scene::cluster(3).after_a_pass().outsider(4, "BB");
        let decision = scene.decide();
        let tips: Vec<(SocketAddr, IpAddr)> =
            decision.tips.iter().map(|t| (t.node, t.target)).collect();
        assert_eq!(tips, [(addr(4), ip(2))]);
        assert!(decision.tips[0]
            .reason
            .contains("not in the main cluster (2 nodes, key AA)"));
        assert_ne!(status(&decision).phase, Some(Phase::Ready));
        assert_eq!(
            decision.next,
            Next::Fixed(Action::Requeue(fixtures::scene_settings().poll_fast))
        );
    }

    #[test]
    fn a_cold_starting_member_is_named_with_its_progress_not_as_unreachable() {
        let scene = Scene::cluster(3).after_a_pass().cold_starting(4, 1200);
        let decision = scene.decide();
        let status = status(&decision);
        assert_eq!(status.phase, Some(Phase::Meshing), "{status:?}");
        let message = status.message.unwrap_or_default();
        assert!(
            message.contains(
                "10.0.0.4:3000 is cold-starting namespace test: 1200 objects loaded, device 40%"
            ),
            "{message}"
        );
        assert!(!message.contains("cannot reach"), "{message}");
        assert_eq!(
            decision.next,
            Next::SoonerIfOrdered(Action::Requeue(fixtures::scene_settings().poll_fast))
        );
    }

    #[test]
    fn migrations_under_way_are_not_ready_and_looked_at_again_soon() {
        let scene = Scene::cluster(3).after_a_pass().migrating(3, 120);
        let decision = scene.decide();
        let status = status(&decision);
        assert_ne!(status.phase, Some(Phase::Ready), "{status:?}");
        assert_eq!(status.migrations_remaining, Some(120));
        assert_eq!(
            decision.next,
            Next::SoonerIfOrdered(Action::Requeue(fixtures::scene_settings().poll_fast))
        );
    }

    #[test]
    fn a_new_version_label_starts_a_rollout_in_one_write() {
        let scene = Scene::cluster(3)
            .after_a_pass()
            .label("aerospike.cluster.version", "7.2.0.0");
        let decision = scene.decide();
        assert_eq!(actions(&decision), ["rollout-start"]);
        let Write::Service { status, change } = &decision.write else {
            panic!("one service write: {:?}", decision.write);
        };
        assert_eq!(
            change.image.as_deref(),
            Some("aerospike/aerospike-server:7.2.0.0")
        );
        assert_eq!(
            status.as_ref().and_then(|s| s.phase),
            Some(Phase::Upgrading)
        );
        assert_eq!(
            decision.next,
            Next::Fixed(Action::Requeue(fixtures::scene_settings().poll_fast))
        );
    }

    #[test]
    fn bad_labels_while_a_node_changes_write_nothing_and_look_again() {
        let service = fixtures::service(&[("aerospike.cluster.replicas", "x")]);
        let invalid = |changing| Observed::Invalid {
            service: service.clone(),
            problems: vec!["aerospike.cluster.replicas: not a number".into()],
            changing,
        };
        let settings = fixtures::scene_settings();
        // The control: with no node changing, the error is written.
        let decision = decide(&invalid(false), &settings);
        let status = status(&decision);
        assert_eq!(status.phase, Some(Phase::Error));
        assert!(status
            .message
            .unwrap_or_default()
            .contains("aerospike.cluster.replicas"));

        let decision = decide(&invalid(true), &settings);
        assert_eq!(decision.write, Write::Nothing);
        // Shown live in the status config, which releases nothing.
        assert_eq!(decision.shown.and_then(|s| s.phase), Some(Phase::Error));
        assert_eq!(decision.next, Next::Fixed(Action::Requeue(WATCH_RECHECK)));
    }

    #[test]
    fn more_replicas_than_eligible_nodes_is_degraded_and_grows_when_one_joins() {
        let scene = Scene::cluster(3)
            .after_a_pass()
            .label("aerospike.cluster.replicas", "5");
        let decision = scene.decide();
        let Write::Service { status, change } = &decision.write else {
            panic!("a status write: {:?}", decision.write);
        };
        assert_eq!(change.replicas, None, "no node for a fourth task");
        let status = status.clone().expect("a status");
        assert_eq!(status.phase, Some(Phase::Degraded), "{status:?}");
        assert_eq!(status.ready.map(|r| (r.ready, r.desired)), Some((3, 5)));

        let decision = scene.eligible(4).decide();
        assert_eq!(actions(&decision), ["scale"]);
        let Write::Service { change, .. } = &decision.write else {
            panic!("a service write: {:?}", decision.write);
        };
        assert_eq!(change.replicas, Some(4));
    }

    fn tips(decision: &Decision) -> Vec<(SocketAddr, IpAddr)> {
        decision.tips.iter().map(|t| (t.node, t.target)).collect()
    }

    /// The status shown this pass (also when the service is not written).
    fn shown(decision: &Decision) -> ClusterStatus {
        decision.shown.clone().expect("a status shown")
    }

    fn message(status: &ClusterStatus) -> String {
        status.message.clone().unwrap_or_default()
    }

    #[test]
    fn a_node_that_claims_another_nodes_id_is_degraded_named_and_never_tipped() {
        // The control: a node in a cluster of its own, with its own id, is
        // tipped toward the main cluster.
        let honest = Scene::cluster(3).after_a_pass().outsider(4, "BB");
        let decision = honest.decide();
        assert_eq!(tips(&decision), [(addr(4), ip(2))]);
        assert_ne!(status(&decision).phase, Some(Phase::Degraded));

        // The same node reporting node .2's id, which .2 held the pass
        // before: not tipped, named, not ready; .2 is still trusted.
        let scene = honest.clone().claims_id_of(4, 2);
        let decision = scene.decide();
        assert_eq!(tips(&decision), []);
        let status = status(&decision);
        assert_eq!(status.phase, Some(Phase::Degraded), "{status:?}");
        assert!(
            message(&status).starts_with(
                "node 10.0.0.4:3000 (task t4) reports node id 2, which node 10.0.0.2:3000 \
                 holds; the operator acts on nothing it says"
            ),
            "{status:?}"
        );
        assert_eq!(status.ready.map(|r| (r.ready, r.desired)), Some((2, 3)));
        let watch = decision.watch.as_ref().expect("the trusted members");
        assert_eq!(watch.members, [addr(2), addr(3)]);
        // The id stays .2's for the next pass.
        let ids = decision.node_ids.expect("ids remembered");
        assert_eq!(ids.get(&crate::aerospike::NodeId(2)), Some(&addr(2)));
        assert_ne!(decision.next, Next::SoonerIfOrdered(Action::AwaitChange));
    }

    #[test]
    fn no_node_is_tipped_toward_an_untrusted_one() {
        // The control: an outsider is tipped toward the lowest member, .2.
        let four = Scene::cluster(4).after_a_pass().outsider(5, "BB");
        assert_eq!(tips(&four.decide()), [(addr(5), ip(2))]);
        // A new id nobody holds is no duplicate: still .2.
        assert_eq!(
            tips(&four.clone().claims_id_of(2, 9).decide()),
            [(addr(5), ip(2))]
        );
        // .2 reporting .3's id: toward .3, the lowest trusted member.
        let decision = four.claims_id_of(2, 3).decide();
        assert_eq!(tips(&decision), [(addr(5), ip(3))]);
        assert!(
            message(&shown(&decision)).starts_with("node 10.0.0.2:3000 (task t2) reports"),
            "{:?}",
            decision.shown
        );
    }

    #[test]
    fn two_nodes_with_one_id_and_no_earlier_holder_are_both_untrusted() {
        // The first pass (an operator just started): which one is right
        // cannot be told.
        let decision = Scene::cluster(3).claims_id_of(4, 2).decide();
        let status = status(&decision);
        assert_eq!(status.phase, Some(Phase::Degraded), "{status:?}");
        let text = message(&status);
        assert!(
            text.starts_with(
                "node 10.0.0.2:3000 (task t2) reports node id 2, as does 10.0.0.4:3000 \
                 (node-id set in the config?); node 10.0.0.4:3000 (task t4) reports node id 2, \
                 as does 10.0.0.2:3000"
            ),
            "{text}"
        );
        assert_eq!(status.ready.map(|r| (r.ready, r.desired)), Some((1, 3)));
    }

    #[test]
    fn a_node_answering_garbage_or_slowly_is_degraded_named_and_not_ready() {
        // The control: a node that cannot be reached at all is being meshed
        // back, not Degraded.
        let decision = Scene::cluster(3).after_a_pass().silent(4).decide();
        assert_eq!(status(&decision).phase, Some(Phase::Meshing));
        for (error, said) in [
            (
                "10.0.0.4:3000: bad reply frame: reply body of 140737488355328 bytes exceeds \
                 the limit of 4194304 bytes",
                "answers unusably: bad reply frame: reply body of 140737488355328 bytes",
            ),
            (
                "10.0.0.4:3000: no reply within 2s",
                "answers unusably: no reply within 2s",
            ),
            (
                "10.0.0.4:3000: statistics: field cluster_key is \"zz\", expected 1 to 16 hex \
                 digits",
                "answers unusably: statistics: field cluster_key",
            ),
        ] {
            let decision = Scene::cluster(3)
                .after_a_pass()
                .misbehaving(4, error)
                .decide();
            let status = status(&decision);
            assert_eq!(status.phase, Some(Phase::Degraded), "{status:?}");
            assert!(
                message(&status).starts_with(&format!("node 10.0.0.4:3000 (task t4) {said}")),
                "{status:?}"
            );
            assert_eq!(status.ready.map(|r| (r.ready, r.desired)), Some((2, 3)));
            assert_eq!(tips(&decision), []);
            assert_ne!(decision.next, Next::SoonerIfOrdered(Action::AwaitChange));
        }
    }

    #[test]
    fn an_untrusted_nodes_alumni_clear_no_seed() {
        // The control: a survivor that remembers a departed node .9 clears
        // it.
        let scene = Scene::cluster(3).after_a_pass().remembers_departed(4, 9);
        let decision = scene.decide();
        let cleared: Vec<SocketAddr> = decision.cleanups.iter().map(|c| c.node).collect();
        assert_eq!(cleared, [addr(4)]);
        // The same report from a node claiming .2's id: nothing.
        let decision = scene.claims_id_of(4, 2).decide();
        assert!(decision.cleanups.is_empty(), "{:?}", decision.cleanups);
    }

    /// A rollout to 7.2.0.0 under way: started by the operator, its first
    /// node replaced and back in the cluster.
    fn rollout_after_the_first_node() -> Scene {
        Scene::cluster(3)
            .after_a_pass()
            .label("aerospike.cluster.version", "7.2.0.0")
            .after_a_pass()
            .template_changed("7.2.0.0")
            .replaced(2)
    }

    #[test]
    fn a_rollout_releases_no_node_while_a_node_is_untrusted() {
        // The control: every node answers as itself: the next is released.
        let scene = rollout_after_the_first_node();
        let decision = scene.decide();
        assert_eq!(actions(&decision), ["rollout-next"], "{:?}", decision.acts);
        assert_eq!(shown(&decision).phase, Some(Phase::Upgrading));

        for untrusted in [
            rollout_after_the_first_node().claims_id_of(3, 4),
            rollout_after_the_first_node().misbehaving(3, "10.0.0.3:3000: no reply within 2s"),
            rollout_after_the_first_node()
                .misbehaving(3, "10.0.0.3:3000: bad reply frame: reply is not UTF-8 text"),
        ] {
            let decision = untrusted.decide();
            assert!(
                !actions(&decision).contains(&"rollout-next"),
                "{:?}",
                decision.acts
            );
            assert_eq!(sent(&decision, &untrusted), None, "nothing written");
            let status = shown(&decision);
            assert_eq!(status.phase, Some(Phase::Degraded), "{status:?}");
            assert!(
                message(&status).starts_with("node 10.0.0.3:3000 (task t3) "),
                "{status:?}"
            );
        }
        // Whatever the safety check says: an untrusted node that is none of
        // the counted tasks (every node is asked because it is one; this
        // tests the refusal itself) stops the release too.
        let decision = rollout_after_the_first_node()
            .misbehaving(9, "10.0.0.9:3000: no reply within 2s")
            .decide();
        assert!(
            !actions(&decision).contains(&"rollout-next"),
            "{:?}",
            decision.acts
        );
        assert!(message(&shown(&decision)).starts_with("node 10.0.0.9:3000 answers unusably"));
    }

    #[test]
    fn a_scale_down_removes_no_node_while_a_node_is_untrusted() {
        // The control: 3 -> 2 with every node safe removes one.
        let asked = Scene::cluster(3)
            .after_a_pass()
            .label("aerospike.cluster.replicas", "2");
        let decision = asked.decide();
        assert_eq!(actions(&decision), ["scale"]);
        let replicas = |d: &Decision| match &d.write {
            Write::Service { change, .. } => change.replicas,
            _ => None,
        };
        assert_eq!(replicas(&decision), Some(2));

        for untrusted in [
            asked.clone().claims_id_of(3, 2),
            asked
                .clone()
                .misbehaving(3, "10.0.0.3:3000: no reply within 2s"),
        ] {
            let decision = untrusted.decide();
            assert_eq!(actions(&decision), Vec::<&str>::new());
            assert_eq!(replicas(&decision), None);
            assert_eq!(decision.node_order, None);
            let status = status(&decision);
            assert_eq!(status.phase, Some(Phase::Degraded), "{status:?}");
            assert!(
                message(&status).starts_with("node 10.0.0.3:3000 (task t3) "),
                "{status:?}"
            );
        }
        // The refusal itself, whatever the safety check says (see the
        // rollout's test above).
        let decision = asked
            .misbehaving(9, "10.0.0.9:3000: no reply within 2s")
            .decide();
        assert_eq!(actions(&decision), Vec::<&str>::new());
        assert_eq!(replicas(&decision), None);
        let status = status(&decision);
        assert_eq!(status.phase, Some(Phase::Degraded), "{status:?}");
        assert!(message(&status).contains("removing no node while node 10.0.0.9:3000"));
    }

    #[test]
    fn an_enterprise_scale_down_quiesces_no_node_while_a_node_is_untrusted() {
        // The control: every node safe, the leaving node is quiesced first.
        let asked = Scene::cluster(3)
            .label("aerospike.cluster.edition", "enterprise")
            .after_a_pass()
            .label("aerospike.cluster.replicas", "2")
            .leaving_not_quiesced();
        let decision = asked.decide();
        assert_eq!(actions(&decision), ["quiesce"], "{:?}", decision.acts);
        assert!(matches!(
            decision.node_order,
            Some(NodeOrder::Quiesce { .. })
        ));

        for untrusted in [
            asked.clone().claims_id_of(3, 2),
            // Outside the counted tasks: the refusal itself.
            asked
                .clone()
                .misbehaving(9, "10.0.0.9:3000: no reply within 2s"),
        ] {
            let decision = untrusted.decide();
            assert_eq!(actions(&decision), Vec::<&str>::new());
            assert_eq!(decision.node_order, None);
            assert_eq!(status(&decision).phase, Some(Phase::Degraded));
        }
    }

    #[test]
    fn a_service_that_is_gone_is_forgotten_with_no_write() {
        let decision = decide(
            &Observed::Gone { id: "s1".into() },
            &fixtures::scene_settings(),
        );
        assert!(decision.forget);
        assert_eq!(decision.write, Write::Nothing);
        assert_eq!(decision.managed, None);
    }
}
