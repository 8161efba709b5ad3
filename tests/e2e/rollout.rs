//! Safe rolling changes end to end: upgrades (through the version label and
//! typed by hand), config rotation, a version that never joins, pause and
//! resume, operator restarts in the middle, and scaling down — each on an
//! RF 2 cluster (the example config) whose migrations are slow enough that
//! releasing a node too early loses data.
//!
//! Two instruments, shared by every test, read what a user would check:
//!
//! - [`Sampler`]: a thread that, every ~200 ms while a change runs, counts
//!   the expected nodes that are *out* of the main Aerospike cluster (from
//!   the tasks API and each running task's `statistics`: a node whose task
//!   is not running, that does not answer, or whose `cluster_key` is not the
//!   majority's is out) and keeps the whole timeline (members, migrations
//!   remaining, the status labels, the tasks and their images);
//! - [`lost_partitions`]: the loss oracle, read from the sim only (the
//!   operator never reads it).
//!
//! The first test is the control: the operator's update policy removed,
//! swarm's CLI defaults put back, and a plain `docker service update
//! --image` must lose partitions. It proves the other tests can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use libtest_mimic::Failed;
use serde_json::Value;

use crate::operator::{
    check_every_node_settled, create_cluster_with_config, example_config, labels, spec_labels,
    status, task_ids, wait_meshed, wait_ready, Operator, CONVERGE,
};
use crate::sandbox::{
    docker, docker_at, ready_node_count, wait_until, Sandbox, TaskView, VolumeGuard,
};
use crate::traffic::Traffic;
use crate::TestResult;

/// The image rollouts go to (they start from the harness's 7.1.0.0), and
/// a 7.2.0.0 whose nodes never join.
const TO: &str = "aerospike/aerospike-server:7.2.0.0";
const NOJOIN: &str = "aerospike/aerospike-server:7.2.0.0-nojoin";

/// Partition copies a node sends per second during migrations
/// (`AEROSPIKE_SIM_MIGRATE_RATE`; the sim's default is 500). A node that
/// joins a 3-node RF 2 cluster receives about 2,730 of the 4,096
/// partitions from two senders: at 200/s each that is about 7 s (measured
/// on the sandbox: see the module's tests' printed figures), against
/// 1.5 s for a failed node to be noticed and 0.3 s for a tipped node to
/// join. Long enough that a change released before the refill ends loses
/// data, short enough for a 3-node rollout to take well under a minute.
pub(crate) const MIGRATE_RATE: &str = "200";
/// Partitions per namespace in the sim (the example config has one, `test`).
const PARTITIONS: u64 = 4096;
/// How long a whole rollout may take on this small, shared machine.
pub(crate) const ROLLOUT: Duration = Duration::from_secs(300);
/// How often the sampler looks.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// How long a paused rollout is watched for a node it should not release:
/// twice the ≈7–10 s a replaced node's refill takes at [`MIGRATE_RATE`],
/// so an operator that ignored the pause would have released the next
/// node (and a third) inside it.
const PAUSE_WINDOW: Duration = Duration::from_secs(20);
/// How long a cluster whose new config secret is missing is watched for a
/// restart: the operator's Error comes first (waited for), then fifteen
/// of its 1 s passes in which a release would show.
const MISSING_SECRET_WINDOW: Duration = Duration::from_secs(15);
/// How long nodes must stay out to count (see [`Report::max_out`]).
const SUSTAINED: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------
// Reading the swarm and the nodes, cheaply enough to sample 5 times a second
// ---------------------------------------------------------------------------

/// One task as the sampler sees it: [`TaskView`] plus its image.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    view: TaskView,
    image: String,
    secrets: Vec<String>,
}

/// The tasks of `service` whose desired state is running, read with one
/// request to the tasks API.
fn tasks_of(service: &str) -> Result<Vec<Task>, Failed> {
    let mut tasks: Vec<Task> = crate::sandbox::running_task_json(service)?
        .iter()
        .map(|task| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            Task {
                view: TaskView::from_json(task),
                image: text(&task["Spec"]["ContainerSpec"]["Image"]),
                secrets: task["Spec"]["ContainerSpec"]["Secrets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| text(&s["SecretName"]))
                    .collect(),
            }
        })
        .collect();
    tasks.sort_by(|a, b| a.view.id.cmp(&b.view.id));
    Ok(tasks)
}

/// Swarm node ID → the socket of its dockerd, read once per test (the
/// harness's `asinfo` asks every daemon for its ID on each call).
#[derive(Clone)]
struct Sockets(BTreeMap<String, String>);

impl Sockets {
    fn of(sandbox: &Sandbox) -> Result<Sockets, Failed> {
        Ok(Sockets(sandbox.node_sockets()?))
    }

    /// The info command `command` to the task's node at its overlay
    /// address, from inside its container's network namespace
    /// ([`crate::sandbox::overlay_info`]); the reply value, trimmed.
    fn asinfo(&self, task: &TaskView, command: &str) -> Result<String, Failed> {
        let socket = self
            .0
            .get(&task.node_id)
            .ok_or_else(|| format!("no sandbox daemon is swarm node {}", task.node_id))?;
        let address = task
            .address
            .as_deref()
            .ok_or_else(|| format!("task {} has no address yet", task.id))?;
        crate::sandbox::overlay_info_at(socket, task, address, command, Duration::from_secs(2))
    }

    /// `statistics` (or another `k=v;...` reply) as a map.
    fn info_map(&self, task: &TaskView, command: &str) -> Result<BTreeMap<String, String>, Failed> {
        Ok(self
            .asinfo(task, command)?
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }
}

/// Runs `f` on every item at once (one thread each); the results in order.
fn each_at_once<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.iter().map(|item| scope.spawn(|| f(item))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    })
}

// ---------------------------------------------------------------------------
// (a) The sampler
// ---------------------------------------------------------------------------

/// How many nodes the sampler expects.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expected {
    /// A fixed number (a rollout keeps the size).
    Nodes(usize),
    /// The service's replica count at each sample (a resize).
    SpecReplicas,
}

/// What one sample saw.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Since the sampler started.
    at: Duration,
    expected: usize,
    /// The service's replica count.
    replicas: usize,
    /// Tasks whose desired state is running.
    tasks: usize,
    /// Of those, the ones that answered with the majority cluster key.
    members: usize,
    out: usize,
    /// `migrate_partitions_remaining`, summed over the members.
    remaining: u64,
    /// Each task: id, image, and what it answered (key or the error).
    nodes: Vec<(String, String, String)>,
    phase: String,
    rollout: String,
    message: String,
    /// The service's image.
    image: String,
}

impl Sample {
    fn line(&self) -> String {
        format!(
            "t={:.1}s out {}/{} (tasks {}, members {}, replicas {}, remaining {}) image {} status \
             {} {:?} {:?}; nodes {:?}",
            self.at.as_secs_f64(),
            self.out,
            self.expected,
            self.tasks,
            self.members,
            self.replicas,
            self.remaining,
            tag(&self.image),
            self.phase,
            self.rollout,
            self.message,
            self.nodes
        )
    }
}

/// Samples a cluster on a thread until [`Sampler::finish`] (or drop).
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Report>>,
}

/// What a sampler saw, start to finish.
#[derive(Debug, Default)]
pub(crate) struct Report {
    samples: Vec<Sample>,
    /// Samples that could not be taken (a Docker call failed), and the last
    /// reason.
    failed: usize,
    last_error: String,
    /// When no node of the cluster's original data lineage was left (see
    /// [`Lineage`]).
    lineage_lost_at: Option<Duration>,
}

impl Sampler {
    /// Starts sampling `service`. Start it on a settled cluster: its first
    /// sample's main cluster is taken as the data's lineage.
    pub(crate) fn start(
        sandbox: &Sandbox,
        service: &str,
        expected: Expected,
    ) -> Result<Sampler, Failed> {
        let sockets = Sockets::of(sandbox)?;
        let stop = Arc::new(AtomicBool::new(false));
        let service = service.to_string();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            let mut report = Report::default();
            let mut lineage = Lineage::default();
            while !flag.load(Ordering::Relaxed) {
                let begun = Instant::now();
                match sample(&sockets, &service, expected, started) {
                    Ok((sample, answers)) => {
                        if lineage.update(&answers) && report.lineage_lost_at.is_none() {
                            report.lineage_lost_at = Some(sample.at);
                        }
                        report.samples.push(sample);
                    }
                    Err(e) => {
                        report.failed += 1;
                        report.last_error = e.message().unwrap_or("?").to_string();
                    }
                }
                if let Some(rest) = SAMPLE_EVERY.checked_sub(begun.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
            report
        });
        Ok(Sampler {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops sampling; what was seen.
    pub(crate) fn finish(mut self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One sample: the service (labels, replicas, image), its tasks, and every
/// running task's `statistics` at once. Also each task's cluster key (None:
/// did not answer), for the lineage.
type Answers = Vec<(String, Option<String>)>;

fn sample(
    sockets: &Sockets,
    service: &str,
    expected: Expected,
    started: Instant,
) -> Result<(Sample, Answers), Failed> {
    let at = started.elapsed();
    let spec = crate::operator::service_spec(service)?;
    let label = |k: &str| {
        spec["Labels"][format!("aerospike.status.{k}")]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let replicas = spec["Mode"]["Replicated"]["Replicas"].as_u64().unwrap_or(0) as usize;
    let tasks = tasks_of(service)?;
    let answers = each_at_once(&tasks, |t| {
        if t.view.state != "running" {
            return Err(Failed::from(format!("state {}", t.view.state)));
        }
        sockets.info_map(&t.view, "statistics")
    });
    // The majority cluster: the key most answering tasks report.
    let mut by_key: BTreeMap<&str, usize> = BTreeMap::new();
    for stats in answers.iter().flatten() {
        if let Some(key) = stats.get("cluster_key") {
            *by_key.entry(key.as_str()).or_default() += 1;
        }
    }
    let (main_key, members) = by_key
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(k, n)| (k.to_string(), *n))
        .unwrap_or_default();
    let remaining = answers
        .iter()
        .flatten()
        .filter(|s| s.get("cluster_key") == Some(&main_key))
        .filter_map(|s| s.get("migrate_partitions_remaining")?.parse::<u64>().ok())
        .sum();
    let expected = match expected {
        Expected::Nodes(n) => n,
        Expected::SpecReplicas => replicas,
    };
    let nodes = tasks
        .iter()
        .zip(&answers)
        .map(|(t, a)| {
            let seen = match a {
                Ok(s) => s.get("cluster_key").cloned().unwrap_or_default(),
                Err(e) => format!("error: {}", e.message().unwrap_or("?")),
            };
            (short(&t.view.id), tag(&t.image), seen)
        })
        .collect();
    let keys = tasks
        .iter()
        .zip(&answers)
        .map(|(t, a)| {
            let key = a.as_ref().ok().and_then(|s| s.get("cluster_key").cloned());
            (t.view.id.clone(), key)
        })
        .collect();
    Ok((
        Sample {
            at,
            expected,
            replicas,
            tasks: tasks.len(),
            members,
            out: expected.saturating_sub(members),
            remaining,
            nodes,
            phase: label("phase"),
            rollout: label("rollout"),
            message: label("message"),
            image: spec["TaskTemplate"]["ContainerSpec"]["Image"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        },
        keys,
    ))
}

/// The first 10 characters of a task id.
fn short(id: &str) -> String {
    id.chars().take(10).collect()
}

/// The tag of an image reference (`repo:tag[@digest]`).
fn tag(image: &str) -> String {
    let image = image.split('@').next().unwrap_or(image);
    image.rsplit_once(':').map_or(image, |(_, t)| t).to_string()
}

/// The tasks that carry the cluster's original data lineage. A node alone
/// with no data starts a new lineage, and a cluster keeps the oldest one,
/// so a node that shares a cluster key with a carrier carries it too; a
/// carrier that stops answering (two samples in a row, so that one failed
/// `docker exec` does not count) no longer does. When none is left, every
/// partition is gone — a loss that neither `dead_partitions` (the nodes
/// that are left have a fresh lineage and count nothing) nor a
/// `partitions_lost` line (nobody was left to notice) records.
#[derive(Default)]
struct Lineage {
    carriers: BTreeMap<String, u32>,
    started: bool,
}

impl Lineage {
    /// Takes one sample's answers; true when the lineage is gone.
    fn update(&mut self, answers: &Answers) -> bool {
        let key_of: BTreeMap<&str, &str> = answers
            .iter()
            .filter_map(|(id, key)| Some((id.as_str(), key.as_deref()?)))
            .collect();
        if !self.started {
            // The first sample: the majority cluster carries it.
            let mut count: BTreeMap<&str, usize> = BTreeMap::new();
            for key in key_of.values() {
                *count.entry(key).or_default() += 1;
            }
            if let Some((main, _)) = count.iter().max_by_key(|(_, n)| **n) {
                for (id, key) in &key_of {
                    if key == main {
                        self.carriers.insert(id.to_string(), 0);
                    }
                }
                self.started = true;
            }
            return false;
        }
        if self.carriers.is_empty() {
            return true;
        }
        let carrier_keys: BTreeSet<&str> = self
            .carriers
            .keys()
            .filter_map(|id| key_of.get(id.as_str()).copied())
            .collect();
        for (id, key) in &key_of {
            if carrier_keys.contains(key) {
                self.carriers.insert(id.to_string(), 0);
            }
        }
        self.carriers.retain(|id, misses| {
            if key_of.contains_key(id.as_str()) {
                *misses = 0;
            } else {
                *misses += 1;
            }
            *misses < 2
        });
        self.carriers.is_empty()
    }
}

impl Report {
    /// The most nodes out at once for at least [`SUSTAINED`]. When a node
    /// leaves or joins, the cluster re-forms and its members adopt the new
    /// key one after the other; the sim's principal may also form a
    /// cluster of itself for a moment. A sample then sees members with
    /// different keys for up to ~0.7 s (seen on the sandbox in every
    /// rollout: one or two samples with "2 out", the two survivors of a
    /// departure under two keys, while the operator had released one node
    /// and nothing was lost). A node really out — stopped, or new and not
    /// yet joined — stays out for the 1.5 s heartbeat timeout or its join,
    /// and the loss oracle sees any copy that went missing meanwhile.
    pub(crate) fn max_out(&self) -> usize {
        self.sustained().max().unwrap_or(0)
    }

    /// The largest out of any single sample.
    fn max_out_raw(&self) -> usize {
        self.samples.iter().map(|s| s.out).max().unwrap_or(0)
    }

    /// Each sample's out, as far as every sample of the next [`SUSTAINED`]
    /// confirms it (the last samples, with less time after them, count
    /// what the rest confirms).
    fn sustained(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.samples.len()).map(|i| {
            let from = self.samples[i].at;
            self.samples[i..]
                .iter()
                .take_while(|s| s.at <= from + SUSTAINED)
                .map(|s| s.out)
                .min()
                .unwrap_or(0)
        })
    }

    /// The first sample with the most nodes out (sustained).
    fn worst(&self) -> Option<&Sample> {
        let max = self.max_out();
        self.sustained()
            .position(|out| out == max)
            .map(|i| &self.samples[i])
    }

    /// The distinct (phase, rollout, message) statuses, in order.
    fn statuses(&self) -> Vec<(String, String, String)> {
        let mut seen: Vec<(String, String, String)> = Vec::new();
        for s in &self.samples {
            let now = (s.phase.clone(), s.rollout.clone(), s.message.clone());
            if seen.last() != Some(&now) {
                seen.push(now);
            }
        }
        seen
    }

    /// The task ids seen running an image with tag `tag`.
    fn tasks_on(&self, wanted: &str) -> BTreeSet<String> {
        self.samples
            .iter()
            .flat_map(|s| s.nodes.iter())
            .filter(|(_, image, _)| image == wanted)
            .map(|(id, _, _)| id.clone())
            .collect()
    }

    /// How long each stretch of migrations lasted (samples with partitions
    /// remaining on the main cluster's nodes), in seconds: the refills.
    fn migrations(&self) -> Vec<f64> {
        let mut stretches = Vec::new();
        let mut begun: Option<Duration> = None;
        for s in &self.samples {
            match (begun, s.remaining > 0) {
                (None, true) => begun = Some(s.at),
                (Some(b), false) => {
                    stretches.push(((s.at - b).as_secs_f64() * 10.0).round() / 10.0);
                    begun = None;
                }
                _ => {}
            }
        }
        stretches
    }

    pub(crate) fn summary(&self) -> String {
        format!(
            "{} samples over {:.1}s ({} failed{}), migrations lasting {:?} s, max out {} \
             (single samples: {}){}",
            self.samples.len(),
            self.samples.last().map_or(0.0, |s| s.at.as_secs_f64()),
            self.failed,
            if self.failed > 0 {
                format!(", last: {}", self.last_error)
            } else {
                String::new()
            },
            self.migrations(),
            self.max_out(),
            self.max_out_raw(),
            self.worst()
                .map(|s| format!(" (first at {})", s.line()))
                .unwrap_or_default()
        )
    }

    /// The samples around `at` (for a failure message).
    fn around(&self, at: Duration) -> Vec<String> {
        self.samples
            .iter()
            .filter(|s| s.at + Duration::from_secs(2) >= at && s.at <= at + Duration::from_secs(2))
            .map(Sample::line)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// (b) The loss oracle
// ---------------------------------------------------------------------------

/// Partitions lost, as the sim tells them; three readings, because each one
/// alone misses a case:
///
/// - `dead_partitions` in `namespace/test` on the nodes that run now. It
///   survives node replacement: the dead set travels in the cluster view
///   the principal hands every member (sim `state.rs`, `form`/`adopt`), so
///   a node that joins after the loss reports it too — as long as one node
///   of the original lineage was always left. If none was, the survivors
///   start a fresh lineage and report 0.
/// - The `partitions_lost` lines in the tasks' logs (every task the
///   service has had: swarm keeps the last 5 tasks of each slot, containers
///   included, so the replaced nodes' logs are still there; see
///   [`logged_losses`]). Each carries the lineage's `dead_partitions` total; the
///   largest one is the loss. It survives the lineage's end, but not
///   everything: nobody logs the loss of the last copy of everything.
/// - The [`Lineage`] the sampler followed: no carrier left means everything
///   was lost ([`PARTITIONS`]).
#[derive(Debug)]
struct Loss {
    dead_on_nodes: u64,
    logged: u64,
    logged_lines: usize,
    lineage_lost_at: Option<Duration>,
}

impl Loss {
    fn partitions(&self) -> u64 {
        let lineage = if self.lineage_lost_at.is_some() {
            PARTITIONS
        } else {
            0
        };
        self.dead_on_nodes.max(self.logged).max(lineage)
    }

    pub(crate) fn summary(&self) -> String {
        format!(
            "{} partitions lost (dead_partitions on the nodes now: {}; largest total in {} \
             partitions_lost log lines: {}; original lineage {})",
            self.partitions(),
            self.dead_on_nodes,
            self.logged_lines,
            self.logged,
            match self.lineage_lost_at {
                Some(at) => format!("gone at t={:.1}s", at.as_secs_f64()),
                None => "alive".to_string(),
            }
        )
    }
}

fn lost_partitions(sandbox: &Sandbox, service: &str, report: &Report) -> Result<Loss, Failed> {
    let sockets = Sockets::of(sandbox)?;
    let tasks: Vec<Task> = tasks_of(service)?
        .into_iter()
        .filter(|t| t.view.state == "running")
        .collect();
    let dead = each_at_once(&tasks, |t| {
        let ns = sockets.info_map(&t.view, "namespace/test")?;
        ns.get("dead_partitions")
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or_else(|| Failed::from(format!("no dead_partitions in namespace/test: {ns:?}")))
    });
    let answered: Vec<u64> = dead
        .iter()
        .filter_map(|d| d.as_ref().ok().copied())
        .collect();
    if answered.is_empty() {
        return Err(format!("no node of {service} answered namespace/test: {dead:?}").into());
    }
    let (logged, logged_lines) = logged_losses(sandbox, service)?;
    Ok(Loss {
        dead_on_nodes: answered.into_iter().max().unwrap_or(0),
        logged,
        logged_lines,
        lineage_lost_at: report.lineage_lost_at,
    })
}

/// The largest `dead_partitions` total of any `partitions_lost` line in the
/// logs of every task `service` has had, and the number of such lines.
///
/// Read container by container (`docker logs` on each task's node, history
/// included: swarm keeps each slot's last 5 tasks and their containers), not
/// with `docker service logs`: on the sandbox that prints every line and
/// then never exits once the service has shut-down tasks on workers.
fn logged_losses(sandbox: &Sandbox, service: &str) -> Result<(u64, usize), Failed> {
    let losses: Vec<u64> = logged_events(sandbox, service, "partitions_lost")?
        .iter()
        .map(|v| v["dead_partitions"].as_u64().unwrap_or(0))
        .collect();
    Ok((losses.iter().copied().max().unwrap_or(0), losses.len()))
}

/// The sim's `event` lines in the logs of every task `service` has had
/// (read as [`logged_losses`] says), each with the task's slot added as
/// `task_slot`.
fn logged_events(sandbox: &Sandbox, service: &str, event: &str) -> Result<Vec<Value>, Failed> {
    let sockets = Sockets::of(sandbox)?;
    let ids = docker(&["service", "ps", "-q", "--no-trunc", service])?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["inspect", "--type", "task"];
    args.extend(ids.iter().copied());
    let tasks: Value = serde_json::from_str(&docker(&args)?)
        .map_err(|e| format!("tasks of {service}: bad JSON: {e}"))?;
    let containers: Vec<(String, String, u64)> = tasks
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let node = t["NodeID"].as_str()?;
            let container = t["Status"]["ContainerStatus"]["ContainerID"].as_str()?;
            let socket = sockets.0.get(node)?;
            Some((
                socket.clone(),
                container.to_string(),
                t["Slot"].as_u64().unwrap_or(0),
            ))
        })
        .filter(|(_, c, _)| !c.is_empty())
        .collect();
    let logs = each_at_once(&containers, |(socket, container, slot)| {
        // The sim logs to stdout; a task that failed to start may have no
        // container any more: nothing to read.
        (
            *slot,
            docker_at(socket, &["logs", container]).unwrap_or_default(),
        )
    });
    Ok(logs
        .iter()
        .flat_map(|(slot, text)| text.lines().map(move |l| (*slot, l)))
        .filter(|(_, l)| l.contains(event))
        .filter_map(|(slot, l)| {
            let mut v = serde_json::from_str::<Value>(l.trim()).ok()?;
            (v["event"] == event).then(|| {
                v["task_slot"] = slot.into();
                v
            })
        })
        .collect())
}

// ---------------------------------------------------------------------------
// Test plumbing
// ---------------------------------------------------------------------------

/// A 3-node (or `replicas`) managed cluster on the example config, with
/// slow migrations, created the way users create one (one task per node
/// from the start, so adoption restarts nothing).
fn slow_cluster(name: &str, replicas: &str) -> Result<crate::operator::ClusterGuard, Failed> {
    let env = format!("AEROSPIKE_SIM_MIGRATE_RATE={MIGRATE_RATE}");
    create_cluster_with_config(
        name,
        1,
        true,
        &spec_labels(replicas),
        &example_config()?,
        &["--env", &env],
    )
}

/// A swarm secret or config (`kind`) a test created, removed when dropped
/// (after the services that use it: declare it before them), pass or fail.
pub(crate) struct ObjectGuard {
    kind: &'static str,
    name: String,
}

impl ObjectGuard {
    /// `docker secret create name` of `content` (one left by an earlier
    /// run is removed first).
    pub(crate) fn secret(name: &str, content: &str) -> Result<ObjectGuard, Failed> {
        ObjectGuard::create("secret", name, content)
    }

    /// `docker config create name` of `content`.
    pub(crate) fn config(name: &str, content: &str) -> Result<ObjectGuard, Failed> {
        ObjectGuard::create("config", name, content)
    }

    fn create(kind: &'static str, name: &str, content: &str) -> Result<ObjectGuard, Failed> {
        let _ = docker(&[kind, "rm", name]);
        let file = std::env::temp_dir().join(format!("asw-e2e-{name}"));
        std::fs::write(&file, content)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let created = docker(&[kind, "create", name, &file.to_string_lossy()]);
        let _ = std::fs::remove_file(&file);
        created?;
        Ok(ObjectGuard {
            kind,
            name: name.to_string(),
        })
    }
}

impl Drop for ObjectGuard {
    fn drop(&mut self) {
        // A service being removed still holds it for a moment.
        let _ = wait_until(
            &format!("{} {} removed", self.kind, self.name),
            Duration::from_secs(30),
            || {
                let gone = docker(&[self.kind, "rm", &self.name]).is_ok()
                    || docker(&[self.kind, "inspect", &self.name]).is_err();
                Ok(gone.then_some(()))
            },
        );
    }
}

/// A managed Enterprise 7.1.0.0 cluster of 3 nodes on the example config,
/// migrations slowed to [`MIGRATE_RATE`], created the way users create one
/// (one task per node from the start), and Ready.
pub(crate) fn enterprise_cluster(
    sandbox: &Sandbox,
    operator: &Operator,
    name: &str,
) -> Result<crate::operator::ClusterGuard, Failed> {
    let env = format!("AEROSPIKE_SIM_MIGRATE_RATE={MIGRATE_RATE}");
    let cluster = crate::operator::create_cluster_on(
        "aerospike/aerospike-server-enterprise:7.1.0.0",
        name,
        1,
        true,
        &spec_labels("3"),
        &example_config()?,
        &["--env", &env],
    )?;
    with_log(
        operator,
        name,
        wait_ready(sandbox, name, 3, CONVERGE).map(|_| ()),
    )?;
    Ok(cluster)
}

/// `docker service update --detach --label-add k=v ... service`.
pub(crate) fn label_add(service: &str, pairs: &[(&str, &str)]) -> TestResult {
    let mut args = vec!["service".to_string(), "update".into(), "--detach".into()];
    for (k, v) in pairs {
        args.extend(["--label-add".into(), format!("{k}={v}")]);
    }
    args.push(service.into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args)?;
    Ok(())
}

fn label_rm(service: &str, key: &str) -> TestResult {
    docker(&["service", "update", "--detach", "--label-rm", key, service])?;
    Ok(())
}

/// Waits until `service` has `size` running tasks, each on an image with
/// tag `version` (and, when given, mounting secret `secret`) and each
/// answering `build` with `build`; then until it is Ready with every node
/// settled ([`wait_ready`]). The tasks at the end.
pub(crate) fn wait_rolled(
    sandbox: &Sandbox,
    service: &str,
    size: usize,
    version: &str,
    build: &str,
    secret: Option<&str>,
    timeout: Duration,
) -> Result<Vec<Task>, Failed> {
    let sockets = Sockets::of(sandbox)?;
    let mut seen = String::new();
    wait_until(
        &format!("{service}: {size} running tasks on {version} answering build {build}"),
        timeout,
        || {
            let tasks = tasks_of(service)?;
            seen = format!(
                "{:?}",
                tasks
                    .iter()
                    .map(|t| (short(&t.view.id), &t.view.state, tag(&t.image), &t.secrets))
                    .collect::<Vec<_>>()
            );
            if tasks.len() != size
                || tasks.iter().any(|t| {
                    t.view.state != "running"
                        || tag(&t.image) != version
                        || secret.is_some_and(|s| !t.secrets.iter().any(|x| x == s))
                })
            {
                return Ok(None);
            }
            let builds = each_at_once(&tasks, |t| sockets.asinfo(&t.view, "build"));
            seen = format!("{seen}; build {builds:?}");
            Ok(builds
                .iter()
                .all(|b| b.as_deref().ok() == Some(build))
                .then_some(()))
        },
    )
    .map_err(|e| format!("{} (last seen: {seen})", e.message().unwrap_or("?")))?;
    wait_ready(sandbox, service, size, CONVERGE)?;
    tasks_of(service)
}

/// The operator's log lines about `cluster` (and its warnings and errors),
/// the last `n`, one short line each: for failure messages.
fn operator_tail(operator: &Operator, cluster: &str, n: usize) -> String {
    let Ok(lines) = operator.logs() else {
        return "(operator logs unreadable)".into();
    };
    let picked: Vec<String> = lines
        .iter()
        .filter(|l| l["action"] != "counters")
        .filter(|l| {
            l["cluster"] == cluster
                || l.to_string().contains(cluster)
                || matches!(l["level"].as_str(), Some("WARN" | "ERROR"))
        })
        .map(|l| {
            let mut l = l.clone();
            if let Some(o) = l.as_object_mut() {
                o.remove("target");
                o.remove("threadId");
            }
            l.to_string()
        })
        .collect();
    let from = picked.len().saturating_sub(n);
    format!(
        "operator log (last {} of {} lines about {cluster}):\n  {}",
        picked.len() - from,
        picked.len(),
        picked[from..].join("\n  ")
    )
}

/// Adds the operator's recent log lines to a failure.
pub(crate) fn with_log<T>(
    operator: &Operator,
    cluster: &str,
    r: Result<T, Failed>,
) -> Result<T, Failed> {
    r.map_err(|e| logged_failure(e.message().unwrap_or("?"), operator, cluster))
}

/// A failure `message` followed by the operator's last 40 lines about
/// `cluster`, and then the message's first line again: a CI report that
/// keeps only the end of a test's output still says what failed.
fn logged_failure(message: &str, operator: &Operator, cluster: &str) -> Failed {
    let first = message.lines().next().unwrap_or("?");
    let first: String = first.chars().take(600).collect();
    format!(
        "{message}\n{}\nfailed: {first}",
        operator_tail(operator, cluster, 40)
    )
    .into()
}

/// The checks every safe change ends with: at most one node out at any
/// sample, nothing lost. Prints the figures either way.
pub(crate) fn check_safe(
    sandbox: &Sandbox,
    operator: &Operator,
    cluster: &str,
    what: &str,
    report: &Report,
    took: Duration,
) -> TestResult {
    let loss = lost_partitions(sandbox, cluster, report)?;
    eprintln!(
        "{what}: took {:.1}s; {}; {}",
        took.as_secs_f64(),
        report.summary(),
        loss.summary()
    );
    eprintln!("{what}: statuses seen: {:?}", report.statuses());
    let mut problems = Vec::new();
    if report.max_out() > 1 {
        let worst = report.worst().map(|s| s.at).unwrap_or_default();
        problems.push(format!(
            "{} nodes out of the cluster at once (at most 1 allowed); samples around it:\n  {}",
            report.max_out(),
            report.around(worst).join("\n  ")
        ));
    }
    if loss.partitions() > 0 {
        problems.push(format!("data lost: {}", loss.summary()));
    }
    if report.samples.is_empty() {
        problems.push(format!(
            "the sampler took no sample ({} failed: {})",
            report.failed, report.last_error
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let message = format!("{what}: {}", problems.join("\n"));
        Err(logged_failure(&message, operator, cluster))
    }
}

/// Whether every node of the sandbox has `image`.
fn image_on_every_node(sandbox: &Sandbox, image: &str) -> Result<Vec<String>, Failed> {
    let mut missing = Vec::new();
    for (node, socket) in sandbox.node_sockets()? {
        if docker_at(&socket, &["image", "inspect", "--format", "{{.Id}}", image]).is_err() {
            missing.push(node);
        }
    }
    Ok(missing)
}

/// A small seeded generator (splitmix64): the kill points are repeatable.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration in `0..=max`, in 100 ms steps.
    pub(crate) fn duration(&mut self, max: Duration) -> Duration {
        let steps = max.as_millis() as u64 / 100;
        Duration::from_millis(100 * (self.next() % (steps + 1)))
    }
}

// ---------------------------------------------------------------------------
// 1. The control
// ---------------------------------------------------------------------------

/// Tips every running task toward another, every 300 ms, as the recipe's
/// `meshworker` sidecar did: the control keeps meshing without the operator.
struct Tipper {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Tipper {
    fn start(sandbox: &Sandbox, service: &str) -> Result<Tipper, Failed> {
        let sockets = Sockets::of(sandbox)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let service = service.to_string();
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if let Ok(tasks) = tasks_of(&service) {
                    let running: Vec<&Task> = tasks
                        .iter()
                        .filter(|t| t.view.state == "running" && t.view.address.is_some())
                        .collect();
                    each_at_once(&running, |t| {
                        let other = running
                            .iter()
                            .filter(|o| o.view.id != t.view.id)
                            .filter_map(|o| o.view.address.clone())
                            .min();
                        if let Some(other) = other {
                            let _ = sockets.asinfo(&t.view, &format!("tip:host={other};port=3002"));
                        }
                    });
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        Ok(Tipper {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Tipper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The control: a settled 3-node RF 2 cluster with slow migrations, the
/// operator gone (nothing puts its update policy back; the test tips new
/// nodes itself, as the recipe's meshworker did), the service's update
/// and rollback policy reset to swarm's CLI defaults, then `docker service
/// update --image 7.2.0.0`: swarm replaces the next node as soon as the
/// previous one runs, before its refill, and the oracle must see lost
/// partitions. If this ever passes with 0, the oracle is blind and the safe
/// tests prove nothing.
pub fn control_swarm_default_update_policy_loses_partitions(sandbox: &Sandbox) -> TestResult {
    let name = "e2e-rollout-control";
    let cluster = slow_cluster(name, "3")?;
    {
        let operator = Operator::deploy()?;
        with_log(
            &operator,
            name,
            wait_ready(sandbox, name, 3, CONVERGE).map(|_| ()),
        )?;
    }
    // Swarm's CLI defaults (`docker service update --help`).
    docker(&[
        "service",
        "update",
        "--detach",
        "--update-parallelism",
        "1",
        "--update-delay",
        "0s",
        "--update-order",
        "stop-first",
        "--update-failure-action",
        "pause",
        "--update-monitor",
        "5s",
        "--update-max-failure-ratio",
        "0",
        "--rollback-parallelism",
        "1",
        "--rollback-delay",
        "0s",
        "--rollback-order",
        "stop-first",
        "--rollback-failure-action",
        "pause",
        "--rollback-monitor",
        "5s",
        "--rollback-max-failure-ratio",
        "0",
        name,
    ])?;
    let _tipper = Tipper::start(sandbox, name)?;
    let traffic = Traffic::start(sandbox, name, "control: plain update")?;
    let sampler = Sampler::start(sandbox, name, Expected::Nodes(3))?;
    let started = Instant::now();
    docker(&["service", "update", "--detach", "--image", TO, name])?;
    // Swarm finishes its update; the tipper meshes the new nodes.
    wait_until("swarm's update to 7.2.0.0 done", ROLLOUT, || {
        let tasks = tasks_of(name)?;
        let done = tasks.len() == 3
            && tasks
                .iter()
                .all(|t| t.view.state == "running" && tag(&t.image) == "7.2.0.0");
        Ok(done.then_some(()))
    })?;
    let took = started.elapsed();
    let _ = wait_meshed(sandbox, name, 3, None, Duration::from_secs(60));
    let report = sampler.finish();
    let load = traffic.finish(3)?;
    let loss = lost_partitions(sandbox, name, &report)?;
    eprintln!(
        "control: swarm's default update took {:.1}s; {}; {}; {}",
        took.as_secs_f64(),
        report.summary(),
        loss.summary(),
        load.line()
    );
    drop(cluster);
    if loss.partitions() == 0 {
        return Err(format!(
            "the control lost nothing: swarm's default rolling update of a slow-migrating RF 2 \
             cluster must lose partitions, or the loss oracle cannot see loss ({})",
            loss.summary()
        )
        .into());
    }
    if load.lost == 0 {
        return Err(format!(
            "the control lost no acknowledged write: the live traffic must see the loss the \
             oracle counts ({}; {})",
            loss.summary(),
            load.line()
        )
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 2-3. Upgrades
// ---------------------------------------------------------------------------

/// Checks that the report saw the Upgrading phase with a rollout `n/N`.
fn check_upgrading_seen(report: &Report, total: usize) -> Result<(), String> {
    let ok = report.samples.iter().any(|s| {
        s.phase == "Upgrading"
            && s.rollout
                .split_once('/')
                .is_some_and(|(n, t)| n.parse::<usize>().is_ok() && t == total.to_string())
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "no status Upgrading with rollout n/{total} was seen during the rollout; statuses \
             seen: {:?}",
            report.statuses()
        ))
    }
}

/// Checks the status image names `version`.
fn check_status_image(service: &str, version: &str) -> Result<(), String> {
    let labels = labels(service).map_err(|e| e.message().unwrap_or("?").to_string())?;
    let image = labels
        .get("aerospike.status.image")
        .cloned()
        .unwrap_or_default();
    if tag(&image) != version {
        return Err(format!(
            "aerospike.status.image is {image:?}, not the image the cluster converged to \
             (tag {version})"
        ));
    }
    Ok(())
}

/// A managed 3-node cluster, Ready on 7.1.0.0, then `change`: waits until
/// every node runs 7.2.0.0 and checks nothing was lost and never two out.
/// The operator, the samples and the cluster (removed when dropped).
fn upgrade_safely(
    sandbox: &Sandbox,
    name: &str,
    what: &str,
    change: impl FnOnce() -> TestResult,
) -> Result<(Operator, Report, crate::operator::ClusterGuard), Failed> {
    upgrade_safely_with(sandbox, name, what, Operator::deploy()?, change)
}

/// [`upgrade_safely`] under an operator deployed by the caller (e.g. with
/// two replicas: `crate::ha`), which it returns; `change` may act on the
/// operator too. The cluster is removed before it returns.
pub(crate) fn upgrade_safely_under(
    sandbox: &Sandbox,
    name: &str,
    what: &str,
    operator: Operator,
    change: impl FnOnce() -> TestResult,
) -> Result<Operator, Failed> {
    upgrade_safely_with(sandbox, name, what, operator, change).map(|(operator, _, _)| operator)
}

fn upgrade_safely_with(
    sandbox: &Sandbox,
    name: &str,
    what: &str,
    operator: Operator,
    change: impl FnOnce() -> TestResult,
) -> Result<(Operator, Report, crate::operator::ClusterGuard), Failed> {
    let cluster = slow_cluster(name, "3")?;
    with_log(
        &operator,
        name,
        wait_ready(sandbox, name, 3, CONVERGE).map(|_| ()),
    )?;
    let traffic = Traffic::start(sandbox, name, what)?;
    let sampler = Sampler::start(sandbox, name, Expected::Nodes(3))?;
    let started = Instant::now();
    change()?;
    let rolled = wait_rolled(sandbox, name, 3, "7.2.0.0", "7.2.0.0", None, ROLLOUT);
    let took = started.elapsed();
    let report = sampler.finish();
    with_log(&operator, name, rolled)?;
    let load = traffic.finish(3)?;
    eprintln!("{what}: {}", load.line());
    check_safe(sandbox, &operator, name, what, &report, took)?;
    load.check_nothing_lost(what)?;
    Ok((operator, report, cluster))
}

/// Upgrade through the label, 7.1.0.0 → 7.2.0.0, on a managed 3-node
/// cluster: it completes (Ready, every node's `build` 7.2.0.0), never more
/// than one node out, nothing lost, and the status said Upgrading with a
/// rollout n/3 on the way.
pub fn upgrade_through_the_version_label_is_one_node_at_a_time_and_loses_nothing(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-rollout-label";
    let (operator, report, _cluster) = upgrade_safely(sandbox, name, "upgrade by label", || {
        label_add(name, &[("aerospike.cluster.version", "7.2.0.0")])
    })?;
    with_log(
        &operator,
        name,
        check_upgrading_seen(&report, 3)
            .and_then(|_| check_status_image(name, "7.2.0.0"))
            .map_err(Failed::from),
    )
}

/// The same upgrade typed by hand on a managed cluster (`docker service
/// update --image`): nothing lost, never two out, Ready on 7.2.0.0.
pub fn upgrade_typed_by_hand_is_one_node_at_a_time_and_loses_nothing(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-rollout-hand";
    let (operator, _report, _cluster) = upgrade_safely(sandbox, name, "upgrade by hand", || {
        docker(&["service", "update", "--detach", "--image", TO, name]).map(|_| ())
    })?;
    with_log(
        &operator,
        name,
        check_status_image(name, "7.2.0.0").map_err(Failed::from),
    )
}

// ---------------------------------------------------------------------------
// 4. Config rotation
// ---------------------------------------------------------------------------

/// Pointing `aerospike.cluster.config-secret` at a second secret (the
/// example config with another `proto-fd-max`) rolls it like an upgrade:
/// never two out, nothing lost, and every task mounts the new secret at the
/// end. Then a secret that does not exist: status Error naming it, and no
/// task restarted (task ids unchanged over 15 s).
pub fn config_rotation_rolls_safely_and_a_missing_secret_restarts_nothing(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-rollout-config";
    let second = format!("{name}-conf-b");
    let missing = format!("{name}-conf-missing");
    let config = example_config()?;
    let rotated = config.replace("proto-fd-max 15000", "proto-fd-max 16000");
    if rotated == config {
        return Err("the example config has no `proto-fd-max 15000` to change".into());
    }
    // Declared before the cluster: dropped after it.
    let _second = ObjectGuard::secret(&second, &rotated)?;
    let operator = Operator::deploy()?;
    let _cluster = slow_cluster(name, "3")?;
    with_log(
        &operator,
        name,
        wait_ready(sandbox, name, 3, CONVERGE).map(|_| ()),
    )?;

    let traffic = Traffic::start(sandbox, name, "config rotation")?;
    let sampler = Sampler::start(sandbox, name, Expected::Nodes(3))?;
    let started = Instant::now();
    label_add(name, &[("aerospike.cluster.config-secret", &second)])?;
    let rolled = wait_rolled(
        sandbox,
        name,
        3,
        "7.1.0.0",
        "7.1.0.0",
        Some(&second),
        ROLLOUT,
    );
    let took = started.elapsed();
    let report = sampler.finish();
    let tasks = with_log(&operator, name, rolled)?;
    let load = traffic.finish(3)?;
    eprintln!("config rotation: {}", load.line());
    check_safe(sandbox, &operator, name, "config rotation", &report, took)?;
    load.check_nothing_lost("config rotation")?;
    let stale: Vec<_> = tasks
        .iter()
        .filter(|t| t.secrets != [second.clone()])
        .map(|t| (short(&t.view.id), t.secrets.clone()))
        .collect();
    if !stale.is_empty() {
        return Err(format!("tasks that do not mount only {second}: {stale:?}").into());
    }

    // A secret that does not exist.
    let before = task_ids(name)?;
    label_add(name, &[("aerospike.cluster.config-secret", &missing)])?;
    let mut last = None;
    let error = wait_until(
        &format!("{name} status Error naming {missing}"),
        Duration::from_secs(60),
        || {
            let s = status(name)?;
            let done = s.phase == "Error" && s.message.contains(&missing);
            last = Some(s.clone());
            Ok(done.then_some(s))
        },
    )
    .map_err(|e| format!("{} (last status {last:?})", e.message().unwrap_or("?")));
    let error = with_log(&operator, name, error.map_err(Failed::from))?;
    eprintln!("missing secret: status {} {:?}", error.phase, error.message);
    let watch = Instant::now();
    while watch.elapsed() < MISSING_SECRET_WINDOW {
        let now = task_ids(name)?;
        if now != before {
            return with_log(
                &operator,
                name,
                Err(format!(
                    "a missing config secret restarted tasks: {before:?} became {now:?} after \
                     {:.1}s",
                    watch.elapsed().as_secs_f64()
                )
                .into()),
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// Where the storage volume is mounted by default
/// (`aerospike.cluster.storage.path`).
const DATA_PATH: &str = "/opt/aerospike/data";

/// Volume mounts as `(source, target)`.
type Mounts = Vec<(String, String)>;

/// The `volume` mounts of a running task: from its spec (the tasks API)
/// and from its container (the node's engine), as `(source, target)`.
fn task_volume_mounts(
    task: &Value,
    sockets: &BTreeMap<String, String>,
) -> Result<(Mounts, Mounts), Failed> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let spec = task["Spec"]["ContainerSpec"]["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Type"] == "volume")
        .map(|m| (text(&m["Source"]), text(&m["Target"])))
        .collect();
    let view = TaskView::from_json(task);
    let socket = sockets
        .get(&view.node_id)
        .ok_or_else(|| format!("no sandbox daemon is swarm node {}", view.node_id))?;
    let inspected = docker_at(
        socket,
        &[
            "inspect",
            "--format",
            "{{json .Mounts}}",
            &view.container_id,
        ],
    )?;
    let mounts: Value = serde_json::from_str(inspected.trim())
        .map_err(|e| format!("container {} mounts: {e}: {inspected}", view.container_id))?;
    let container = mounts
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Type"] == "volume")
        .map(|m| (text(&m["Name"]), text(&m["Destination"])))
        .collect();
    Ok((spec, container))
}

/// A memory-only cluster of 3 given `aerospike.cluster.storage.volume`:
/// the mount is a task-template change, rolled one node at a time (never
/// two out, nothing lost), the cluster ends Ready, and every running task
/// mounts the named volume at `/opt/aerospike/data`, in its spec and in
/// its container on its node.
pub fn adding_a_storage_volume_rolls_it_in_one_node_at_a_time(sandbox: &Sandbox) -> TestResult {
    let name = "e2e-rollout-storage";
    let volume = format!("{name}-data");
    // Declared before the cluster: dropped after it.
    let _volume = VolumeGuard::new(sandbox, &volume)?;
    let operator = Operator::deploy()?;
    let _cluster = slow_cluster(name, "3")?;
    with_log(
        &operator,
        name,
        wait_ready(sandbox, name, 3, CONVERGE).map(|_| ()),
    )?;
    let before = task_ids(name)?;

    let sampler = Sampler::start(sandbox, name, Expected::Nodes(3))?;
    let started = Instant::now();
    label_add(name, &[("aerospike.cluster.storage.volume", &volume)])?;
    let sockets = sandbox.node_sockets()?;
    let wanted = vec![(volume.clone(), DATA_PATH.to_string())];
    let mut seen = String::new();
    let mounted = wait_until(
        &format!("{name}: 3 running tasks mounting {volume} at {DATA_PATH}"),
        ROLLOUT,
        || {
            let tasks = crate::sandbox::running_task_json(name)?;
            let mut all = tasks.len() == 3;
            let mut shown = Vec::new();
            for task in &tasks {
                let view = TaskView::from_json(task);
                let mounts = if view.state == "running" && !view.container_id.is_empty() {
                    task_volume_mounts(task, &sockets).ok()
                } else {
                    None
                };
                all &= mounts
                    .as_ref()
                    .is_some_and(|(spec, container)| *spec == wanted && *container == wanted);
                shown.push((short(&view.id), view.state.clone(), mounts));
            }
            seen = format!("{shown:?}");
            Ok(all.then_some(()))
        },
    )
    .map_err(|e| {
        Failed::from(format!(
            "{} (last seen: {seen})",
            e.message().unwrap_or("?")
        ))
    })
    .and_then(|()| wait_ready(sandbox, name, 3, CONVERGE).map(|_| ()));
    let took = started.elapsed();
    let report = sampler.finish();
    with_log(&operator, name, mounted)?;
    check_safe(
        sandbox,
        &operator,
        name,
        "storage volume added",
        &report,
        took,
    )?;
    check_upgrading_seen(&report, 3).map_err(Failed::from)?;

    // Every node was replaced (the mount is in the template), and each
    // running task mounts the volume, read once more after Ready.
    let after = task_ids(name)?;
    if let Some(kept) = after.iter().find(|t| before.contains(t)) {
        return Err(format!("task {kept} was not replaced: {before:?} -> {after:?}").into());
    }
    for task in crate::sandbox::running_task_json(name)? {
        let (spec, container) = task_volume_mounts(&task, &sockets)?;
        if spec != wanted || container != wanted {
            return Err(format!(
                "task {} mounts {spec:?} in its spec and {container:?} in its container; \
                 wanted {wanted:?}",
                TaskView::from_json(&task).id
            )
            .into());
        }
    }
    let s = status(name)?;
    if s.phase != "Ready" {
        return Err(format!("{name} ended {} ({}), not Ready", s.phase, s.message).into());
    }
    eprintln!(
        "storage volume added: every task mounts {volume} at {DATA_PATH}; {} tasks replaced in \
         {:.1}s",
        before.len(),
        took.as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 5. A version whose nodes never join
// ---------------------------------------------------------------------------

/// `aerospike.cluster.version=7.2.0.0-nojoin` (a sim image whose nodes
/// never join) with `--node-join-timeout 20s`: the rollout stops at one
/// node, rolls it back (every task on 7.1.0.0 again), status Error naming
/// the version; nothing lost, never two out. Fails, saying so, when the
/// image is not on every node (`scripts/sandbox up` builds it).
pub fn a_version_that_never_joins_is_rolled_back_after_the_join_timeout(
    sandbox: &Sandbox,
) -> TestResult {
    let missing = image_on_every_node(sandbox, NOJOIN)?;
    if !missing.is_empty() {
        return Err(format!(
            "image {NOJOIN} is not on sandbox node(s) {missing:?} (scripts/sandbox images builds \
             it once the sandbox knows it)"
        )
        .into());
    }
    let name = "e2e-rollout-nojoin";
    // 20 s instead of the default 300 s: the test is about the timeout
    // firing and the rollback that follows, not about its length; a
    // healthy node joins in ~2 s, so 20 s still tells the two apart.
    let operator = Operator::deploy_with(&["--node-join-timeout", "20s"])?;
    let _cluster = slow_cluster(name, "3")?;
    with_log(
        &operator,
        name,
        wait_ready(sandbox, name, 3, CONVERGE).map(|_| ()),
    )?;
    let sampler = Sampler::start(sandbox, name, Expected::Nodes(3))?;
    let started = Instant::now();
    label_add(name, &[("aerospike.cluster.version", "7.2.0.0-nojoin")])?;
    let mut last = None;
    let error = wait_until(
        &format!("{name} status Error naming 7.2.0.0-nojoin"),
        ROLLOUT,
        || {
            let s = status(name)?;
            let done = s.phase == "Error" && s.message.contains("7.2.0.0-nojoin");
            last = Some(s.clone());
            Ok(done.then_some(s))
        },
    )
    .map_err(|e| format!("{} (last status {last:?})", e.message().unwrap_or("?")).into());
    let error = with_log(&operator, name, error)?;
    eprintln!(
        "nojoin: Error after {:.1}s: {:?}",
        started.elapsed().as_secs_f64(),
        error.message
    );
    // Rolled back: every task on 7.1.0.0, the cluster whole and settled.
    let sockets = Sockets::of(sandbox)?;
    let mut seen = String::new();
    let back = wait_until(
        &format!("{name}: every task back on 7.1.0.0, in one cluster of 3, settled"),
        ROLLOUT,
        || {
            let tasks = tasks_of(name)?;
            seen = format!(
                "{:?}",
                tasks
                    .iter()
                    .map(|t| (short(&t.view.id), &t.view.state, tag(&t.image)))
                    .collect::<Vec<_>>()
            );
            if tasks.len() != 3
                || tasks
                    .iter()
                    .any(|t| t.view.state != "running" || tag(&t.image) != "7.1.0.0")
            {
                return Ok(None);
            }
            let builds = each_at_once(&tasks, |t| sockets.asinfo(&t.view, "build"));
            if !builds.iter().all(|b| b.as_deref().ok() == Some("7.1.0.0")) {
                return Ok(None);
            }
            Ok(check_every_node_settled(sandbox, name, 3).ok())
        },
    )
    .map_err(|e| format!("{} (last seen {seen})", e.message().unwrap_or("?")).into());
    let took = started.elapsed();
    let report = sampler.finish();
    with_log(&operator, name, back)?;
    check_safe(sandbox, &operator, name, "nojoin rollback", &report, took)?;
    let nojoin = report.tasks_on("7.2.0.0-nojoin");
    if nojoin.len() > 1 {
        return with_log(
            &operator,
            name,
            Err(format!(
                "the rollout did not stop at one node: {} tasks ran 7.2.0.0-nojoin: {nojoin:?}",
                nojoin.len()
            )
            .into()),
        );
    }
    if nojoin.is_empty() {
        eprintln!("nojoin: note: no sample saw the nojoin task itself");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 6. Pause and resume
// ---------------------------------------------------------------------------

/// How a user pauses a rollout.
#[derive(Clone, Copy, PartialEq)]
enum Pause {
    /// `aerospike.cluster.paused=true` (a service write: swarm may replace
    /// one more node at once).
    Label,
    /// The swarm config `<service>.paused` (no service write).
    Config,
}

/// `aerospike.cluster.paused=true` written with the new version (one
/// service update): for 20 s no task is replaced and the status says
/// Paused; removing the label runs the upgrade, nothing lost, never two
/// out. (Mid-rollout the label is not the way to pause: its own write is a
/// service update, on which swarm replaces the next task at once — the
/// README says so and points to the config, tested below.)
pub fn pause_stops_a_rollout_and_resume_completes_it(sandbox: &Sandbox) -> TestResult {
    pause_and_resume(sandbox, "e2e-rollout-pause", Pause::Label)
}

/// The same with the pause the README recommends mid-rollout: the swarm
/// config `<service>.paused` (created, then removed to resume).
pub fn pause_through_the_config_stops_a_rollout_and_resume_completes_it(
    sandbox: &Sandbox,
) -> TestResult {
    pause_and_resume(sandbox, "e2e-rollout-pausecfg", Pause::Config)
}

/// A swarm config a test created, removed when dropped.
struct ConfigGuard(String);

impl Drop for ConfigGuard {
    fn drop(&mut self) {
        let _ = docker(&["config", "rm", &self.0]);
    }
}

fn pause_and_resume(sandbox: &Sandbox, name: &str, how: Pause) -> TestResult {
    let config_name = format!("{name}.paused");
    let _ = docker(&["config", "rm", &config_name]);
    let _config = ConfigGuard(config_name.clone());
    let operator = Operator::deploy()?;
    let _cluster = slow_cluster(name, "3")?;
    with_log(
        &operator,
        name,
        wait_ready(sandbox, name, 3, CONVERGE).map(|_| ()),
    )?;
    let sampler = Sampler::start(sandbox, name, Expected::Nodes(3))?;
    let started = Instant::now();
    if let Pause::Label = how {
        return pause_by_label(sandbox, &operator, name, sampler, started);
    }
    label_add(name, &[("aerospike.cluster.version", "7.2.0.0")])?;
    let mut last = (String::new(), String::new());
    let first = wait_until(&format!("{name} rollout 1/3"), ROLLOUT, || {
        let l = labels(name)?;
        let get = |k: &str| l.get(k).cloned().unwrap_or_default();
        last = (
            get("aerospike.status.phase"),
            get("aerospike.status.rollout"),
        );
        Ok((last.1 == "1/3").then_some(()))
    })
    .map_err(|e| {
        format!(
            "{} (last phase/rollout {last:?})",
            e.message().unwrap_or("?")
        )
        .into()
    });
    with_log(&operator, name, first)?;
    let at_pause = task_ids(name)?;
    match how {
        Pause::Label => unreachable!("handled by pause_by_label"),
        Pause::Config => {
            let file = std::env::temp_dir().join(format!("asw-e2e-{config_name}"));
            std::fs::write(&file, "pause\n")
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            let created = docker(&["config", "create", &config_name, &file.to_string_lossy()]);
            let _ = std::fs::remove_file(&file);
            created?;
        }
    }
    let paused_at = Instant::now();
    let mut replaced = BTreeSet::new();
    while paused_at.elapsed() < PAUSE_WINDOW {
        for id in task_ids(name)? {
            if !at_pause.contains(&id) {
                replaced.insert(id);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let paused_status = status(name)?;
    eprintln!(
        "{name}: {} new task(s) in the 20 s after the pause; status {} {:?}",
        replaced.len(),
        paused_status.phase,
        paused_status.message
    );
    if replaced.len() > 1 {
        drop(sampler);
        return with_log(
            &operator,
            name,
            Err(format!(
                "the rollout kept going while paused: {} tasks replaced in the 20 s after the \
                 pause (at most the one already changing allowed): {replaced:?}",
                replaced.len()
            )
            .into()),
        );
    }
    docker(&["config", "rm", &config_name])?;
    let rolled = wait_rolled(sandbox, name, 3, "7.2.0.0", "7.2.0.0", None, ROLLOUT);
    let took = started.elapsed();
    let report = sampler.finish();
    with_log(&operator, name, rolled)?;
    check_safe(sandbox, &operator, name, "pause and resume", &report, took)
}

/// The label variant: paused together with the version change.
fn pause_by_label(
    sandbox: &Sandbox,
    operator: &Operator,
    name: &str,
    sampler: Sampler,
    started: Instant,
) -> TestResult {
    let before = task_ids(name)?;
    label_add(
        name,
        &[
            ("aerospike.cluster.version", "7.2.0.0"),
            ("aerospike.cluster.paused", "true"),
        ],
    )?;
    let paused_at = Instant::now();
    while paused_at.elapsed() < PAUSE_WINDOW {
        let now = task_ids(name)?;
        if now != before {
            drop(sampler);
            return with_log(
                operator,
                name,
                Err(format!("paused, yet tasks were replaced: {before:?} -> {now:?}").into()),
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let paused = status(name)?;
    if paused.phase != "Paused" {
        drop(sampler);
        return Err(format!("status while paused: {} {:?}", paused.phase, paused.message).into());
    }
    label_rm(name, "aerospike.cluster.paused")?;
    let rolled = wait_rolled(sandbox, name, 3, "7.2.0.0", "7.2.0.0", None, ROLLOUT);
    let took = started.elapsed();
    let report = sampler.finish();
    with_log(operator, name, rolled)?;
    check_safe(
        sandbox,
        operator,
        name,
        "pause by label, then resume",
        &report,
        took,
    )
}

// ---------------------------------------------------------------------------
// 7. The operator killed mid-rollout
// ---------------------------------------------------------------------------

/// The operator killed at seeded random points of rollouts (at least 5;
/// seed printed, `ASW_E2E_SEED` to repeat one): its service scaled to 0, a
/// seeded random 0–8 s, back to 1. The first rollout is the upgrade to
/// 7.2.0.0; if it ends before 5 kills, config rotations between two
/// secrets follow. Every rollout finishes, nothing lost, never two out.
pub fn operator_killed_at_random_points_of_a_rollout_still_finishes_safely(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-rollout-kill";
    let seed = crate::kills::seed("operator kills");
    let mut rng = Rng(seed);
    let second = format!("{name}-conf-b");
    let first_secret = format!("{name}-conf");
    let rotated = example_config()?.replace("proto-fd-max 15000", "proto-fd-max 16000");
    let _second = ObjectGuard::secret(&second, &rotated)?;
    let operator = Operator::deploy()?;
    let _cluster = slow_cluster(name, "3")?;
    with_log(
        &operator,
        name,
        wait_ready(sandbox, name, 3, CONVERGE).map(|_| ()),
    )?;

    let sampler = Sampler::start(sandbox, name, Expected::Nodes(3))?;
    let started = Instant::now();
    let mut kills: Vec<String> = Vec::new();
    let sockets = Sockets::of(sandbox)?;
    // (version label or None, secret or None, expected tag, expected secret)
    for round in 0..4 {
        let secret = if round % 2 == 1 {
            &second
        } else {
            &first_secret
        };
        if round == 0 {
            label_add(name, &[("aerospike.cluster.version", "7.2.0.0")])?;
        } else {
            label_add(name, &[("aerospike.cluster.config-secret", secret)])?;
        }
        let wanted_secret = (round > 0).then_some(secret.as_str());
        let rolled_now = || -> Result<bool, Failed> {
            let tasks = tasks_of(name)?;
            if tasks.len() != 3
                || tasks.iter().any(|t| {
                    t.view.state != "running"
                        || tag(&t.image) != "7.2.0.0"
                        || wanted_secret.is_some_and(|s| !t.secrets.iter().any(|x| x == s))
                })
            {
                return Ok(false);
            }
            let builds = each_at_once(&tasks, |t| sockets.asinfo(&t.view, "build"));
            Ok(builds.iter().all(|b| b.as_deref().ok() == Some("7.2.0.0")))
        };
        let round_started = Instant::now();
        while kills.len() < 5 && !rolled_now()? {
            if round_started.elapsed() > ROLLOUT {
                break;
            }
            std::thread::sleep(rng.duration(Duration::from_secs(4)));
            let s = status(name)?;
            let rollout = labels(name)?
                .get("aerospike.status.rollout")
                .cloned()
                .unwrap_or_default();
            let down = rng.duration(Duration::from_secs(8));
            operator.scale(0)?;
            std::thread::sleep(down);
            operator.scale(1)?;
            kills.push(format!(
                "round {round} t={:.1}s phase {} rollout {rollout:?}: down {:.1}s",
                started.elapsed().as_secs_f64(),
                s.phase,
                down.as_secs_f64()
            ));
        }
        let rolled = wait_rolled(
            sandbox,
            name,
            3,
            "7.2.0.0",
            "7.2.0.0",
            wanted_secret,
            ROLLOUT,
        );
        if let Err(e) = rolled {
            drop(sampler);
            return with_log(
                &operator,
                name,
                Err(format!(
                    "round {round} did not finish after kills {kills:?}: {}",
                    e.message().unwrap_or("?")
                )
                .into()),
            );
        }
        if kills.len() >= 5 {
            break;
        }
    }
    let took = started.elapsed();
    let report = sampler.finish();
    eprintln!("operator kills (seed {seed}): {kills:#?}");
    check_safe(sandbox, &operator, name, "operator kills", &report, took)?;
    if kills.len() < 5 {
        return Err(format!(
            "only {} kill points fell inside rollouts: {kills:?}",
            kills.len()
        )
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 8. Scaling down
// ---------------------------------------------------------------------------

/// `aerospike.cluster.replicas` 5 → 3 on a 5-node sandbox: nothing lost,
/// and one removal at a time — the service's replicas go 5, 4, 3 and the
/// cluster is settled at 4 (all 4 in one cluster, no migrations left)
/// before it goes to 3. Reported ignored by the harness with fewer than 5
/// nodes; run anyway (`--include-ignored`), it fails saying so.
pub fn scale_5_to_3_removes_one_node_at_a_time_and_loses_nothing(sandbox: &Sandbox) -> TestResult {
    let nodes = ready_node_count();
    if nodes < 5 {
        return Err(format!(
            "the sandbox has {nodes} Ready nodes, this test needs 5 (scripts/sandbox up --nodes 5)"
        )
        .into());
    }
    let name = "e2e-rollout-scale";
    let operator = Operator::deploy()?;
    let _cluster = slow_cluster(name, "5")?;
    let (report, _) = scale_down_safely(sandbox, &operator, name, 5, 3, "scale 5 -> 3")?;
    // Replicas step by one, and the cluster settles between the steps.
    let mut steps: Vec<usize> = Vec::new();
    let mut settled_at_current = true;
    let mut problems = Vec::new();
    for s in &report.samples {
        match steps.last() {
            Some(&last) if last == s.replicas => {}
            Some(&last) => {
                if s.replicas + 1 != last {
                    problems.push(format!("replicas went from {last} to {}", s.replicas));
                }
                if !settled_at_current {
                    problems.push(format!(
                        "replicas went from {last} to {} before the cluster settled at {last} \
                         ({})",
                        s.replicas,
                        s.line()
                    ));
                }
                steps.push(s.replicas);
                settled_at_current = false;
            }
            None => steps.push(s.replicas),
        }
        if s.members == s.replicas && s.tasks == s.replicas && s.remaining == 0 {
            settled_at_current = true;
        }
    }
    eprintln!("scale 5 -> 3: replicas seen {steps:?}");
    if !problems.is_empty() {
        return with_log(&operator, name, Err(problems.join("; ").into()));
    }
    Ok(())
}

/// Waits for `name` Ready at `from` nodes, lowers the replicas label to
/// `to`, waits for Ready at `to` while sampling, and checks nothing was
/// lost and never two out. The samples and how long it took.
pub(crate) fn scale_down_safely(
    sandbox: &Sandbox,
    operator: &Operator,
    name: &str,
    from: usize,
    to: usize,
    what: &str,
) -> Result<(Report, Duration), Failed> {
    with_log(
        operator,
        name,
        wait_ready(sandbox, name, from, CONVERGE).map(|_| ()),
    )?;
    let traffic = Traffic::start(sandbox, name, what)?;
    let sampler = Sampler::start(sandbox, name, Expected::SpecReplicas)?;
    let started = Instant::now();
    label_add(name, &[("aerospike.cluster.replicas", &to.to_string())])?;
    let ready = wait_ready(sandbox, name, to, ROLLOUT).map(|_| ());
    let took = started.elapsed();
    let report = sampler.finish();
    with_log(operator, name, ready)?;
    let load = traffic.finish(from - to)?;
    eprintln!("{what}: {}", load.line());
    check_safe(sandbox, operator, name, what, &report, took)?;
    load.check_nothing_lost(what)?;
    Ok((report, took))
}

/// Enterprise scale-down 3 -> 2: the operator quiesces the leaving node
/// (the survivors' sim logs show a formation with it quiesced), excludes
/// it with a `node.id!=` constraint only after that, then lowers the
/// replica count;
/// nothing lost, never two out, and the exclusion is gone at the end.
pub fn enterprise_scale_down_quiesces_the_leaving_node_first(sandbox: &Sandbox) -> TestResult {
    let name = "e2e-rollout-ee-scale";
    let operator = Operator::deploy()?;
    let _cluster = enterprise_cluster(sandbox, &operator, name)?;
    let (_, took) = scale_down_safely(sandbox, &operator, name, 3, 2, "scale 3 -> 2")?;
    // The operator's actions, in order: quiesce, exclude, scale, unexclude.
    let actions: Vec<String> = operator
        .actions_for(name)?
        .iter()
        .filter_map(|l| l["action"].as_str().map(str::to_string))
        .filter(|a| ["quiesce", "exclude", "scale", "unexclude"].contains(&a.as_str()))
        .collect();
    let first = |a: &str| actions.iter().position(|x| x == a);
    let order = (first("quiesce"), first("exclude"), first("unexclude"));
    match order {
        (Some(q), Some(e), Some(u)) if q < e && e < u => {}
        _ => {
            return with_log(
                &operator,
                name,
                Err(format!("actions out of order or missing: {actions:?}").into()),
            )
        }
    }
    // The quiesce took effect before the node left, as the survivors' own
    // logs tell: a formation of 3 with a quiesced member comes before the
    // first formation of 2. (The leaving task's container goes with its
    // slot, so its own log cannot be read afterwards.)
    let mut formations = logged_events(sandbox, name, "cluster_changed")?;
    formations.sort_by(|a, b| a["ts"].as_str().cmp(&b["ts"].as_str()));
    // The cluster grew 1 -> 2 -> 3 as it formed: a shrink to 2 counts only
    // after it first had 3 members.
    let formed = formations.iter().position(|e| e["size"] == 3).unwrap_or(0);
    let quiesced_at = formations
        .iter()
        .position(|e| e["size"] == 3 && e["quiesced"].as_array().is_some_and(|q| !q.is_empty()));
    let shrunk_at = formations
        .iter()
        .skip(formed)
        .position(|e| e["size"] == 2)
        .map(|i| i + formed);
    match (quiesced_at, shrunk_at) {
        (Some(q), Some(d)) if q < d => {}
        _ => {
            let seen: Vec<String> = formations
                .iter()
                .map(|e| format!("{} size {} quiesced {}", e["ts"], e["size"], e["quiesced"]))
                .collect();
            return Err(format!(
                "no formation with a quiesced member before the cluster shrank to 2: {}",
                seen.join("; ")
            )
            .into());
        }
    }
    let constraints =
        crate::operator::service_spec(name)?["TaskTemplate"]["Placement"]["Constraints"].clone();
    if constraints.to_string().contains("node.id!=") {
        return Err(format!("the exclusion is still there: {constraints}").into());
    }
    eprintln!("enterprise scale 3 -> 2: {actions:?} in {took:?}");
    Ok(())
}
