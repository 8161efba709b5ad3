//! End-to-end tests on the sandbox swarm: real dockerd nodes, real swarm,
//! real overlay network, real aerospike-sim containers.
//!
//! This binary has its own `main` (libtest-mimic) so that it can bring the
//! sandbox up once before the tests and take it down once after them. It
//! reuses a sandbox that is already up and leaves that one standing; one it
//! started itself it removes, unless `ASW_KEEP_SANDBOX=1`.
//!
//! Needs root (the sandbox runs daemons and network namespaces). Set
//! `ASW_E2E=skip` to mark these tests ignored on a machine that cannot run
//! them; `scripts/test` and CI never set it.

mod cli;
mod deploy;
mod ha;
mod metrics;
mod operator;
mod proxy;
mod reconciler;
mod rollout;
mod sandbox;
mod settle;
mod sim_mesh;
mod swarm_basics;
mod validate;

use libtest_mimic::{Arguments, Failed, Trial};
use sandbox::Sandbox;

/// The result every end-to-end test returns: failures carry a message.
pub type TestResult = Result<(), Failed>;

fn main() {
    let mut args = Arguments::from_args();
    // The tests share one swarm and some of them stop nodes: run them one
    // at a time.
    args.test_threads = Some(1);

    let skip = std::env::var("ASW_E2E").is_ok_and(|v| v == "skip");
    let trials: Vec<Trial> = tests()
        .into_iter()
        .map(|(name, test)| {
            Trial::test(name, move || test(Sandbox::shared()?)).with_ignored_flag(skip)
        })
        .collect();

    let conclusion = libtest_mimic::run(&args, trials);
    Sandbox::finish();
    conclusion.exit();
}

type Test = fn(&Sandbox) -> TestResult;

fn tests() -> Vec<(&'static str, Test)> {
    vec![
        (
            "validate::validate_service_names_the_bad_label_and_accepts_the_fix",
            validate::validate_service_names_the_bad_label_and_accepts_the_fix,
        ),
        (
            "cli::apply_and_status_drive_a_cluster_to_ready_and_report_what_the_nodes_say",
            cli::apply_and_status_drive_a_cluster_to_ready_and_report_what_the_nodes_say,
        ),
        (
            "swarm_basics::max_one_per_node_spreads_tasks_and_overlay_carries_tcp",
            swarm_basics::max_one_per_node_spreads_tasks_and_overlay_carries_tcp,
        ),
        (
            "sim_mesh::sim_tasks_on_three_nodes_mesh_over_the_overlay_when_tipped",
            sim_mesh::sim_tasks_on_three_nodes_mesh_over_the_overlay_when_tipped,
        ),
        (
            "metrics::metrics_healthz_and_readyz_answer_over_the_overlay",
            metrics::metrics_healthz_and_readyz_answer_over_the_overlay,
        ),
        (
            "reconciler::replicas_3_gives_three_nodes_in_one_cluster_and_ready_status",
            reconciler::replicas_3_gives_three_nodes_in_one_cluster_and_ready_status,
        ),
        (
            "reconciler::replicas_5_on_3_nodes_is_degraded_and_grows_when_a_node_joins",
            reconciler::replicas_5_on_3_nodes_is_degraded_and_grows_when_a_node_joins,
        ),
        (
            "reconciler::a_stopped_node_degrades_the_cluster_and_its_return_heals_it",
            reconciler::a_stopped_node_degrades_the_cluster_and_its_return_heals_it,
        ),
        (
            "reconciler::two_clusters_converge_side_by_side_without_mixing",
            reconciler::two_clusters_converge_side_by_side_without_mixing,
        ),
        (
            "reconciler::a_bad_label_gives_error_status_and_leaves_the_service_alone",
            reconciler::a_bad_label_gives_error_status_and_leaves_the_service_alone,
        ),
        (
            "reconciler::an_operator_restart_mid_convergence_converges_without_conflicts",
            reconciler::an_operator_restart_mid_convergence_converges_without_conflicts,
        ),
        (
            "reconciler::an_operator_back_from_zero_replicas_acts_once_on_the_missed_change",
            reconciler::an_operator_back_from_zero_replicas_acts_once_on_the_missed_change,
        ),
        (
            "reconciler::a_manual_scale_is_put_back_and_logged",
            reconciler::a_manual_scale_is_put_back_and_logged,
        ),
        (
            "settle::the_example_config_resizes_3_2_3_and_each_end_is_settled_and_quiet",
            settle::the_example_config_resizes_3_2_3_and_each_end_is_settled_and_quiet,
        ),
        (
            "settle::address_any_is_named_reported_stalled_and_left_alone",
            settle::address_any_is_named_reported_stalled_and_left_alone,
        ),
        (
            "deploy::the_operator_stack_attaches_itself_to_the_example_stacks_network_and_converges_it",
            deploy::the_operator_stack_attaches_itself_to_the_example_stacks_network_and_converges_it,
        ),
        (
            "proxy::the_operator_converges_a_cluster_through_a_socket_proxy_that_allows_only_the_documented_endpoints",
            proxy::the_operator_converges_a_cluster_through_a_socket_proxy_that_allows_only_the_documented_endpoints,
        ),
        (
            "ha::a_paused_leader_never_writes_again_and_a_killed_one_is_replaced_mid_rollout",
            ha::a_paused_leader_never_writes_again_and_a_killed_one_is_replaced_mid_rollout,
        ),
        (
            "rollout::control_swarm_default_update_policy_loses_partitions",
            rollout::control_swarm_default_update_policy_loses_partitions,
        ),
        (
            "rollout::upgrade_through_the_version_label_is_one_node_at_a_time_and_loses_nothing",
            rollout::upgrade_through_the_version_label_is_one_node_at_a_time_and_loses_nothing,
        ),
        (
            "rollout::upgrade_typed_by_hand_is_one_node_at_a_time_and_loses_nothing",
            rollout::upgrade_typed_by_hand_is_one_node_at_a_time_and_loses_nothing,
        ),
        (
            "rollout::config_rotation_rolls_safely_and_a_missing_secret_restarts_nothing",
            rollout::config_rotation_rolls_safely_and_a_missing_secret_restarts_nothing,
        ),
        (
            "rollout::a_version_that_never_joins_is_rolled_back_after_the_join_timeout",
            rollout::a_version_that_never_joins_is_rolled_back_after_the_join_timeout,
        ),
        (
            "rollout::pause_stops_a_rollout_and_resume_completes_it",
            rollout::pause_stops_a_rollout_and_resume_completes_it,
        ),
        (
            "rollout::pause_through_the_config_stops_a_rollout_and_resume_completes_it",
            rollout::pause_through_the_config_stops_a_rollout_and_resume_completes_it,
        ),
        (
            "rollout::operator_killed_at_random_points_of_a_rollout_still_finishes_safely",
            rollout::operator_killed_at_random_points_of_a_rollout_still_finishes_safely,
        ),
        (
            "rollout::scale_5_to_3_removes_one_node_at_a_time_and_loses_nothing",
            rollout::scale_5_to_3_removes_one_node_at_a_time_and_loses_nothing,
        ),
        (
            "rollout::enterprise_scale_down_quiesces_the_leaving_node_first",
            rollout::enterprise_scale_down_quiesces_the_leaving_node_first,
        ),
    ]
}
