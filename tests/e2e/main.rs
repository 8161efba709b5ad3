//! End-to-end tests on the sandbox swarm: real dockerd nodes, real swarm,
//! real overlay network, real aerospike-sim containers.
//!
//! This binary has its own `main` (libtest-mimic) so that it can bring the
//! sandbox up once before the tests and take it down once after them. It
//! reuses a sandbox that is already up and leaves that one standing; one it
//! started itself it removes, unless `ASW_KEEP_SANDBOX=1`.
//!
//! **Side by side.** Most tests run beside each other ([`Group::Parallel`]):
//! each has its own cluster services and secrets (named in the test), and
//! its own operator service, `asw-op-<scope>`, started with
//! `--cluster-selector asw.e2e.scope=<scope>` so that it manages only the
//! clusters its test creates (every cluster [`operator::create_cluster`]
//! makes carries that label). The scope is derived from the test's name
//! ([`scope`]). Tests that change the swarm itself or need an operator that
//! manages every cluster run alone ([`Group::Serial`], each with its
//! reason): a lock lets either one serial test or any number of parallel
//! ones run. The serial tests go first, one at a time in the table's
//! order, and the parallel ones start once all of them have finished,
//! longest first; the last serial test may let them start once what made
//! it serial is over ([`share_the_swarm`]).
//! `ASW_E2E_THREADS` sets how many run at once (default
//! [`DEFAULT_THREADS`]; `--test-threads N` wins); 1 runs them one by one.
//! `ASW_E2E_ONLY=a,b` runs only the tests whose names contain `a` or `b`
//! (`scripts/bench-reliability` picks its scenarios with it).
//! `ASW_E2E_LONG=1` also runs the tests marked long (serial tests too long
//! for CI's budget; reported ignored without it, saying why).
//!
//! **Figures.** Each test's wall time (from the moment it may run, not
//! counting the wait for its turn) is printed at the end, slowest first,
//! and appended to the file `ASW_E2E_TIMES` names, if set (`scripts/test`
//! reads it for its table): `name<TAB>group<TAB>seconds<TAB>outcome`.
//!
//! **No hang.** A watchdog ends the run as failed, naming the test, once
//! any test has run longer than `ASW_E2E_TEST_LIMIT` seconds (default
//! 600); every child process the tests start (the Docker CLI, the
//! operator's CLI, `scripts/sandbox`) is killed after its own limit
//! ([`sandbox::output_within`]).
//!
//! Needs root (the sandbox runs daemons and network namespaces). Set
//! `ASW_E2E=skip` to mark these tests ignored on a machine that cannot run
//! them; `scripts/test` and CI never set it.

mod cli;
mod deploy;
mod failures;
mod faults;
mod ha;
mod kills;
mod liveconfig;
mod metrics;
mod network;
mod operator;
mod proxy;
mod reconciler;
mod records;
mod rollout;
mod sandbox;
mod scope;
mod settle;
mod sim_mesh;
mod swarm_basics;
mod traffic;
mod validate;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Condvar, Mutex, Once, RwLock};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use sandbox::Sandbox;

/// The result every end-to-end test returns: failures carry a message.
pub type TestResult = Result<(), Failed>;

/// How many tests run at once by default. Most of an end-to-end test is
/// waiting (heartbeats, migrations, swarm's scheduling); four side by side
/// keep two cores busy without starving the sim nodes' heartbeats.
pub const DEFAULT_THREADS: usize = 4;

/// Whether a test may run beside others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Its own services, secrets and scoped operator: runs beside others.
    Parallel,
    /// Must be alone on the swarm; the text says why.
    Serial(&'static str),
}

impl Group {
    fn label(self) -> &'static str {
        match self {
            Group::Parallel => "parallel",
            Group::Serial(_) => "serial",
        }
    }
}

type Test = fn(&Sandbox) -> TestResult;

/// One end-to-end test: its name, body and group.
struct E2e {
    name: &'static str,
    test: Test,
    group: Group,
    /// How many Ready swarm nodes it needs: with fewer it is reported
    /// ignored (never run and passed).
    min_nodes: usize,
    /// Why it runs only with `ASW_E2E_LONG=1` (reported ignored without):
    /// a serial test too long for CI's 20 minutes on 2 cores.
    long: Option<&'static str>,
}

impl E2e {
    /// A test that needs at least `nodes` Ready swarm nodes.
    fn needs_nodes(mut self, nodes: usize) -> E2e {
        self.min_nodes = nodes;
        self
    }

    /// A test that runs only with `ASW_E2E_LONG=1`, for the reason `why`.
    fn long(mut self, why: &'static str) -> E2e {
        self.long = Some(why);
        self
    }
}

fn parallel(name: &'static str, test: Test) -> E2e {
    E2e {
        name,
        test,
        group: Group::Parallel,
        min_nodes: 0,
        long: None,
    }
}

fn serial(name: &'static str, test: Test, why: &'static str) -> E2e {
    E2e {
        name,
        test,
        group: Group::Serial(why),
        min_nodes: 0,
        long: None,
    }
}

/// Held for reading by a parallel test, for writing by a serial one.
static SWARM: RwLock<()> = RwLock::new(());
/// How many serial tests of this run have not finished: parallel tests
/// start only once it is 0. The lock alone would let a parallel test in
/// between two serial ones (a reader can win the race when a writer
/// leaves), and the other threads would then sit waiting behind it.
static SERIAL_LEFT: Mutex<usize> = Mutex::new(0);
static SERIAL_DONE: Condvar = Condvar::new();
/// The serial tests of this run in the table's order: each starts only
/// once [`SERIAL_LEFT`] has counted down to the tests from it to the end,
/// so they run in that order (the last can [`share_the_swarm`]).
static SERIAL_ORDER: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
/// The removal of an earlier run's operators, before the first test.
static STALE: Once = Once::new();
/// (name, group, seconds, outcome) of every test that ran.
static TIMES: Mutex<Vec<(String, &'static str, f64, &'static str)>> = Mutex::new(Vec::new());
/// The tests running now and when each started (after its turn came).
static RUNNING: Mutex<BTreeMap<&'static str, Instant>> = Mutex::new(BTreeMap::new());
/// How long one test may run before the watchdog ends the whole run
/// (`ASW_E2E_TEST_LIMIT`, seconds). The longest test takes about 2 min.
const DEFAULT_TEST_LIMIT: Duration = Duration::from_secs(600);

fn main() {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        let threads = std::env::var("ASW_E2E_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n >= 1)
            .unwrap_or(DEFAULT_THREADS);
        args.test_threads = Some(threads);
    }

    let skip = std::env::var("ASW_E2E").is_ok_and(|v| v == "skip");
    let mut tests = tests();
    // Several filters at once (the harness's own FILTER takes one):
    // `ASW_E2E_ONLY=a,b` keeps the tests whose names contain a or b.
    if let Ok(only) = std::env::var("ASW_E2E_ONLY") {
        let wanted: Vec<&str> = only.split(',').filter(|w| !w.is_empty()).collect();
        tests.retain(|t| wanted.iter().any(|w| t.name.contains(w)));
    }
    // A test that needs more nodes than the sandbox has is reported
    // ignored, saying why (the harness brings up NODES when none is up).
    let nodes = match sandbox::ready_node_count() {
        0 => sandbox::NODES,
        n => n,
    };
    // Serial tests first (each alone), then the parallel ones in the
    // table's order, which lists the longest first.
    tests.sort_by_key(|t| t.group == Group::Parallel);
    let long_runs = std::env::var("ASW_E2E_LONG").is_ok_and(|v| v == "1");
    let names: Vec<&'static str> = tests.iter().map(|t| t.name).collect();
    let trials: Vec<Trial> = tests
        .into_iter()
        .map(|t| {
            let E2e {
                name,
                test,
                group,
                min_nodes,
                long,
            } = t;
            let too_few = nodes < min_nodes;
            if too_few && !skip {
                eprintln!(
                    "e2e: {name} is ignored: it needs {min_nodes} Ready swarm nodes, the sandbox \
                     has {nodes} (scripts/sandbox up --nodes {min_nodes})"
                );
            }
            let too_long = long.is_some() && !long_runs;
            if let (true, Some(why), false) = (too_long, long, skip) {
                eprintln!("e2e: {name} is ignored: {why}; ASW_E2E_LONG=1 runs it");
            }
            Trial::test(name, move || run_one(name, test, group))
                .with_kind(group.label())
                .with_ignored_flag(skip || too_few || too_long)
        })
        .collect();
    // The serial tests this run will really run (not filtered out, not
    // ignored): the parallel ones wait for exactly these.
    let serial: Vec<&'static str> = names
        .iter()
        .zip(&trials)
        .filter(|(_, t)| t.kind() == "serial" && !args.is_filtered_out(t) && !args.is_ignored(t))
        .map(|(name, _)| *name)
        .collect();
    *SERIAL_LEFT.lock().unwrap_or_else(|e| e.into_inner()) = serial.len();
    *SERIAL_ORDER.lock().unwrap_or_else(|e| e.into_inner()) = serial;

    start_watchdog();
    let conclusion = libtest_mimic::run(&args, trials);
    print_times();
    Sandbox::finish();
    conclusion.exit();
}

/// Runs one test in its group and scope, and records its time.
fn run_one(name: &'static str, test: Test, group: Group) -> TestResult {
    // A poisoned lock only means another test panicked; the swarm is fine.
    let turn = match group {
        Group::Parallel => {
            let mut left = SERIAL_LEFT.lock().unwrap_or_else(|e| e.into_inner());
            while *left > 0 {
                left = SERIAL_DONE.wait(left).unwrap_or_else(|e| e.into_inner());
            }
            drop(left);
            Lock::Read(SWARM.read().unwrap_or_else(|e| e.into_inner()))
        }
        Group::Serial(_) => {
            // Its turn in the table's order: once the tests before it are done.
            let order = SERIAL_ORDER
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(rank) = order.iter().position(|n| *n == name) {
                let mut left = SERIAL_LEFT.lock().unwrap_or_else(|e| e.into_inner());
                while *left > order.len() - rank {
                    left = SERIAL_DONE.wait(left).unwrap_or_else(|e| e.into_inner());
                }
            }
            Lock::Write(SWARM.write().unwrap_or_else(|e| e.into_inner()))
        }
    };
    // Kept where [`share_the_swarm`] can end it early; ended with the test
    // (a panic too) by `_turn`. A serial test counts done when it ends.
    TURN.with(|t| {
        *t.borrow_mut() = Some(Turn {
            _lock: turn,
            serial_done: (matches!(group, Group::Serial(_))).then_some(SerialDone),
        })
    });
    let _turn = EndTurn;
    let _scope = scope::enter(name);
    let _running = Running::start(name);
    let started = Instant::now();
    let result = Sandbox::shared().and_then(|sandbox| {
        // Once, before the first test acts: no operator of an earlier run
        // (or the demo's, which has no selector and so manages every cluster) may act on this run's.
        STALE.call_once(operator::remove_stale_operators);
        test(sandbox)
    });
    let seconds = started.elapsed().as_secs_f64();
    let outcome = if result.is_ok() { "ok" } else { "FAILED" };
    eprintln!("e2e: {name} {outcome} in {seconds:.1} s");
    TIMES.lock().unwrap_or_else(|e| e.into_inner()).push((
        name.to_string(),
        group.label(),
        seconds,
        outcome,
    ));
    result
}

/// The running test's hold on the swarm: its lock and, for a serial test,
/// its count in [`SERIAL_LEFT`]. Dropping it releases both.
struct Turn {
    _lock: Lock,
    serial_done: Option<SerialDone>,
}

thread_local! {
    /// This thread's test's [`Turn`], while it runs.
    static TURN: std::cell::RefCell<Option<Turn>> = const { std::cell::RefCell::new(None) };
}

/// Drops the thread's [`Turn`] (if [`share_the_swarm`] has not) when the
/// test ends, by a return or a panic.
struct EndTurn;

impl Drop for EndTurn {
    fn drop(&mut self) {
        let turn = TURN.with(|t| t.borrow_mut().take());
        drop(turn);
    }
}

/// Called by a serial test once what made it serial is over (e.g. its
/// tasks have started with the addresses it lined up) and the rest of it
/// is waiting that other tests cannot disturb: if it is the last serial
/// test of the run, it counts as done and lets the parallel tests start
/// beside its remaining part. Otherwise (other serial tests are still to
/// run, and they must not run beside it) it keeps the swarm to itself, as
/// if this was never called. Does nothing in a parallel test.
pub fn share_the_swarm(name: &str) {
    TURN.with(|t| {
        let mut turn = t.borrow_mut();
        if turn.as_ref().is_none_or(|t| t.serial_done.is_none()) {
            return;
        }
        let left = *SERIAL_LEFT.lock().unwrap_or_else(|e| e.into_inner());
        // Only serial tests count down, and this one is running: when it
        // is the last, no other serial test can start after it.
        if left != 1 {
            return;
        }
        eprintln!("e2e: {name}: the last serial test shares the swarm for the rest of its run");
        drop(turn.take());
    });
}

/// Counts one serial test done when dropped, and wakes the tests waiting
/// for their turn: the next serial test, or, once none is left, the
/// parallel ones.
struct SerialDone;

impl Drop for SerialDone {
    fn drop(&mut self) {
        let mut left = SERIAL_LEFT.lock().unwrap_or_else(|e| e.into_inner());
        *left = left.saturating_sub(1);
        // The next serial test, or at 0 the parallel ones.
        SERIAL_DONE.notify_all();
    }
}

/// One test in [`RUNNING`] while it lives.
struct Running(&'static str);

impl Running {
    fn start(name: &'static str) -> Running {
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, Instant::now());
        Running(name)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(self.0);
    }
}

/// A thread that ends the run, with a failure that names the test, once
/// any test has run longer than the limit. A test blocks in calls to
/// Docker and to the nodes, which cannot be cancelled from outside; a hang
/// in one must fail the suite in minutes, not run out CI's clock.
fn start_watchdog() {
    let limit = std::env::var("ASW_E2E_TEST_LIMIT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TEST_LIMIT);
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some((name, started)) = running.iter().find(|(_, s)| s.elapsed() > limit) else {
            continue;
        };
        eprintln!(
            "\ne2e: WATCHDOG: {name} has run for {:.0} s, over the limit of {} s \
             (ASW_E2E_TEST_LIMIT): ending the run as failed",
            started.elapsed().as_secs_f64(),
            limit.as_secs()
        );
        for (other, since) in &running {
            eprintln!(
                "e2e: still running: {other} ({:.0} s)",
                since.elapsed().as_secs_f64()
            );
        }
        print_times();
        Sandbox::finish();
        std::process::exit(101);
    });
}

/// A turn on the swarm: shared or alone.
enum Lock {
    Read(#[allow(dead_code)] std::sync::RwLockReadGuard<'static, ()>),
    Write(#[allow(dead_code)] std::sync::RwLockWriteGuard<'static, ()>),
}

/// Prints every test's time, slowest first, and appends them to the file
/// `ASW_E2E_TIMES` names.
fn print_times() {
    let mut times = TIMES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if times.is_empty() {
        return;
    }
    times.sort_by(|a, b| b.2.total_cmp(&a.2));
    eprintln!("\ne2e: test times, slowest first");
    for (name, group, seconds, outcome) in &times {
        eprintln!("{seconds:8.1} s  {group:<8}  {outcome:<6}  {name}");
    }
    if let Ok(path) = std::env::var("ASW_E2E_TIMES") {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        match file {
            Ok(mut file) => {
                for (name, group, seconds, outcome) in &times {
                    let _ = writeln!(file, "{name}\t{group}\t{seconds:.1}\t{outcome}");
                }
            }
            Err(e) => eprintln!("e2e: cannot write {path}: {e}"),
        }
    }
}

/// Every end-to-end test with its group. Parallel tests are listed longest
/// first (from the suite's last measured times, BENCHMARKS.md), so that the
/// longest start first and the run ends with the short ones.
fn tests() -> Vec<E2e> {
    vec![
        serial(
            "reconciler::replicas_5_on_3_nodes_is_degraded_and_grows_when_a_node_joins",
            reconciler::replicas_5_on_3_nodes_is_degraded_and_grows_when_a_node_joins,
            "adds a fourth node to the swarm and removes it again",
        ),
        serial(
            "failures::an_engine_stopped_degrades_a_settled_cluster_and_holds_a_rollout_without_loss",
            failures::an_engine_stopped_degrades_a_settled_cluster_and_holds_a_rollout_without_loss,
            "stops a node's engine, which every other cluster would feel",
        ),
        serial(
            "network::a_drain_and_a_partition_hold_a_rollout_and_lose_nothing",
            network::a_drain_and_a_partition_hold_a_rollout_and_lose_nothing,
            "drains a worker and cuts another off the network, which every other cluster would feel",
        )
        .long("about 4 minutes with every other test held (serial), beyond CI's 20-minute budget"),
        serial(
            "rollout::scale_5_to_3_removes_one_node_at_a_time_and_loses_nothing",
            rollout::scale_5_to_3_removes_one_node_at_a_time_and_loses_nothing,
            "uses five nodes of the swarm",
        )
        .needs_nodes(5),
        // Last of the serial tests: once its tasks have started on the
        // addresses it lined up, it waits about 90 s for a stall and a
        // quiet operator, which the parallel tests may share.
        serial(
            "settle::address_any_is_named_reported_stalled_and_left_alone",
            settle::address_any_is_named_reported_stalled_and_left_alone,
            "lines up the workers' docker_gwbridge addresses, which any other task's start shifts",
        ),
        parallel(
            "failures::an_upgrade_whose_cold_starts_outlast_the_join_timeout_completes_without_loss",
            failures::an_upgrade_whose_cold_starts_outlast_the_join_timeout_completes_without_loss,
        ),
        parallel(
            "faults::a_rollout_and_a_scale_down_converge_through_a_docker_api_that_fails",
            faults::a_rollout_and_a_scale_down_converge_through_a_docker_api_that_fails,
        ),
        parallel(
            "failures::a_whole_cluster_kill_with_persistent_storage_loses_nothing",
            failures::a_whole_cluster_kill_with_persistent_storage_loses_nothing,
        ),
        parallel(
            "failures::a_whole_cluster_kill_with_memory_storage_loses_everything",
            failures::a_whole_cluster_kill_with_memory_storage_loses_everything,
        ),
        parallel(
            "failures::a_killed_container_leaves_ready_within_2_s_on_any_node",
            failures::a_killed_container_leaves_ready_within_2_s_on_any_node,
        ),
        parallel(
            "settle::the_example_config_resizes_3_2_3_and_each_end_is_settled_and_quiet",
            settle::the_example_config_resizes_3_2_3_and_each_end_is_settled_and_quiet,
        ),
        parallel(
            "rollout::pause_stops_a_rollout_and_resume_completes_it",
            rollout::pause_stops_a_rollout_and_resume_completes_it,
        ),
        parallel(
            "rollout::upgrade_typed_by_hand_is_one_node_at_a_time_and_loses_nothing",
            rollout::upgrade_typed_by_hand_is_one_node_at_a_time_and_loses_nothing,
        ),
        parallel(
            "ha::a_paused_leader_never_writes_again_and_a_killed_one_is_replaced_mid_rollout",
            ha::a_paused_leader_never_writes_again_and_a_killed_one_is_replaced_mid_rollout,
        ),
        parallel(
            "kills::operator_killed_at_random_points_of_a_cold_start_upgrade_still_finishes_safely",
            kills::operator_killed_at_random_points_of_a_cold_start_upgrade_still_finishes_safely,
        )
        .long("CI runs the rollout's kills (a new seed each run); these run under scripts/bench-operator-kills"),
        parallel(
            "kills::operator_killed_at_random_points_of_a_scale_down_still_finishes_safely",
            kills::operator_killed_at_random_points_of_a_scale_down_still_finishes_safely,
        )
        .long("CI runs the rollout's kills (a new seed each run); these run under scripts/bench-operator-kills"),
        parallel(
            "rollout::operator_killed_at_random_points_of_a_rollout_still_finishes_safely",
            rollout::operator_killed_at_random_points_of_a_rollout_still_finishes_safely,
        ),
        parallel(
            "liveconfig::rack_id_on_community_is_refused_and_a_static_change_rolls",
            liveconfig::rack_id_on_community_is_refused_and_a_static_change_rolls,
        ),
        parallel(
            "liveconfig::a_live_change_restarts_nothing_and_a_crashed_node_gets_it_again",
            liveconfig::a_live_change_restarts_nothing_and_a_crashed_node_gets_it_again,
        ),
        parallel(
            "rollout::config_rotation_rolls_safely_and_a_missing_secret_restarts_nothing",
            rollout::config_rotation_rolls_safely_and_a_missing_secret_restarts_nothing,
        ),
        parallel(
            "rollout::adding_a_storage_volume_rolls_it_in_one_node_at_a_time",
            rollout::adding_a_storage_volume_rolls_it_in_one_node_at_a_time,
        ),
        parallel(
            "rollout::upgrade_through_the_version_label_is_one_node_at_a_time_and_loses_nothing",
            rollout::upgrade_through_the_version_label_is_one_node_at_a_time_and_loses_nothing,
        ),
        parallel(
            "rollout::enterprise_scale_down_quiesces_the_leaving_node_first",
            rollout::enterprise_scale_down_quiesces_the_leaving_node_first,
        ),
        parallel(
            "reconciler::replicas_3_gives_three_nodes_in_one_cluster_and_ready_status",
            reconciler::replicas_3_gives_three_nodes_in_one_cluster_and_ready_status,
        ),
        parallel(
            "rollout::a_version_that_never_joins_is_rolled_back_after_the_join_timeout",
            rollout::a_version_that_never_joins_is_rolled_back_after_the_join_timeout,
        ),
        parallel(
            "rollout::pause_through_the_config_stops_a_rollout_and_resume_completes_it",
            rollout::pause_through_the_config_stops_a_rollout_and_resume_completes_it,
        ),
        parallel(
            "rollout::control_swarm_default_update_policy_loses_partitions",
            rollout::control_swarm_default_update_policy_loses_partitions,
        ),
        parallel(
            "reconciler::an_operator_back_from_zero_replicas_acts_once_on_the_missed_change",
            reconciler::an_operator_back_from_zero_replicas_acts_once_on_the_missed_change,
        ),
        parallel(
            "deploy::the_operator_stack_attaches_itself_to_the_example_stacks_network_and_converges_it",
            deploy::the_operator_stack_attaches_itself_to_the_example_stacks_network_and_converges_it,
        ),
        parallel(
            "proxy::the_operator_converges_a_cluster_through_a_socket_proxy_that_allows_only_the_documented_endpoints",
            proxy::the_operator_converges_a_cluster_through_a_socket_proxy_that_allows_only_the_documented_endpoints,
        ),
        parallel(
            "reconciler::a_manual_scale_is_put_back_and_logged",
            reconciler::a_manual_scale_is_put_back_and_logged,
        ),
        parallel(
            "reconciler::a_bad_label_gives_error_status_and_leaves_the_service_alone",
            reconciler::a_bad_label_gives_error_status_and_leaves_the_service_alone,
        ),
        parallel(
            "reconciler::two_clusters_converge_side_by_side_without_mixing",
            reconciler::two_clusters_converge_side_by_side_without_mixing,
        ),
        parallel(
            "reconciler::an_operator_restart_mid_convergence_converges_without_conflicts",
            reconciler::an_operator_restart_mid_convergence_converges_without_conflicts,
        ),
        parallel(
            "reconciler::a_cluster_let_go_gets_the_plain_update_policy_back",
            reconciler::a_cluster_let_go_gets_the_plain_update_policy_back,
        ),
        parallel(
            "cli::apply_and_status_drive_a_cluster_to_ready_and_report_what_the_nodes_say",
            cli::apply_and_status_drive_a_cluster_to_ready_and_report_what_the_nodes_say,
        ),
        parallel(
            "validate::validate_service_names_the_bad_label_and_accepts_the_fix",
            validate::validate_service_names_the_bad_label_and_accepts_the_fix,
        ),
        parallel(
            "metrics::metrics_healthz_and_readyz_answer_over_the_overlay",
            metrics::metrics_healthz_and_readyz_answer_over_the_overlay,
        ),
        parallel(
            "swarm_basics::max_one_per_node_spreads_tasks_and_overlay_carries_tcp",
            swarm_basics::max_one_per_node_spreads_tasks_and_overlay_carries_tcp,
        ),
        parallel(
            "sim_mesh::sim_tasks_on_three_nodes_mesh_over_the_overlay_when_tipped",
            sim_mesh::sim_tasks_on_three_nodes_mesh_over_the_overlay_when_tipped,
        ),
    ]
}
