//! The operator's HTTP endpoints on the sandbox: `/metrics` (Prometheus
//! text), `/healthz`, `/readyz`, reached the way a Prometheus on the
//! clusters' overlay network reaches them: from another container on that
//! network, at the operator task's overlay address, port 9090.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use aerospike_swarm_operator::controller::metrics::{parse_text, Sample};
use libtest_mimic::Failed;

use crate::operator::{create_cluster, spec_labels, wait_status, Operator, CONVERGE};
use crate::sandbox::{docker_at, running_tasks, wait_until, Sandbox, TaskView};
use crate::TestResult;

/// `GET url` from inside `from`'s network namespace (curl of the host,
/// run with `nsenter --net`): the status code and the body.
pub(crate) fn http_get(
    sandbox: &Sandbox,
    from: &TaskView,
    url: &str,
) -> Result<(u16, String), Failed> {
    let socket = sandbox.socket_of(&from.node_id)?;
    let pid = docker_at(
        &socket,
        &["inspect", "--format", "{{.State.Pid}}", &from.container_id],
    )?;
    let out = crate::sandbox::output_within(
        Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", pid.trim()))
            .args(["curl", "-sS", "-m", "5", "-w", "\n%{http_code}", url]),
        Duration::from_secs(30),
    )
    .map_err(|e| format!("cannot run nsenter curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "GET {url} from {}: {}",
            from.container_id,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text
        .rsplit_once('\n')
        .ok_or_else(|| format!("GET {url}: no status in {text:?}"))?;
    let code = code
        .trim()
        .parse()
        .map_err(|_| format!("GET {url}: bad status {code:?}"))?;
    Ok((code, body.to_string()))
}

/// The sum of the samples named `name` whose labels include `labels`.
pub(crate) fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// Deploys the operator, creates one 3-node cluster, and reads the
/// endpoints from one of the cluster's own containers: `/metrics` parses
/// and its reconcile count grows while the cluster converges; once Ready
/// the tips are counted, the gauges say 3 desired, running and meshed and
/// phase Ready; `/healthz` and `/readyz` answer 200; unknown paths 404.
pub fn metrics_healthz_and_readyz_answer_over_the_overlay(sandbox: &Sandbox) -> TestResult {
    let started = Instant::now();
    let name = "e2e-metrics";
    let deployed = Operator::deploy()?;
    let operator = running_tasks(deployed.name())?
        .into_iter()
        .find(|t| t.state == "running")
        .ok_or("no running operator task")?;
    let address = operator
        .address
        .clone()
        .ok_or("the operator's task has no overlay address")?;
    let _cluster = create_cluster(name, 1, false, &spec_labels("3"))?;
    let url = |path: &str| format!("http://{address}:9090{path}");

    // The first reconciles, read from a node of the cluster as soon as
    // one runs and the operator has counted a pass over the cluster.
    let (node, first) = wait_until(
        "a cluster node, and the operator's first reconcile in /metrics",
        Duration::from_secs(30),
        || {
            let Some(node) = running_tasks(name)?
                .into_iter()
                .find(|t| t.state == "running" && !t.container_id.is_empty())
            else {
                return Ok(None);
            };
            let Ok((200, body)) = http_get(sandbox, &node, &url("/metrics")) else {
                return Ok(None);
            };
            let samples = parse_text(&body).map_err(|e| format!("/metrics: {e}"))?;
            let reconciles = sum(&samples, "asw_reconciles_total", &[("cluster", name)]);
            Ok((reconciles > 0.0).then_some((node, reconciles)))
        },
    )?;

    wait_status(name, "Ready", "3/3", CONVERGE)?;
    let (code, body) = http_get(sandbox, &node, &url("/metrics"))?;
    if code != 200 {
        return Err(format!("/metrics answered {code}: {body}").into());
    }
    if !body.ends_with("# EOF\n") {
        return Err(format!("/metrics is not a whole OpenMetrics exposition: {body}").into());
    }
    let samples = parse_text(&body).map_err(|e| format!("/metrics: {e}"))?;
    let cluster = [("cluster", name)];
    let reconciles = sum(&samples, "asw_reconciles_total", &cluster);
    let tips = sum(&samples, "asw_tips_total", &[]);
    let gauges: BTreeMap<&str, f64> = [
        "asw_cluster_nodes_desired",
        "asw_cluster_tasks_running",
        "asw_cluster_nodes_meshed",
    ]
    .into_iter()
    .map(|g| (g, sum(&samples, g, &cluster)))
    .collect();
    let ready = sum(
        &samples,
        "asw_cluster_phase",
        &[("cluster", name), ("phase", "Ready")],
    );
    let docker_calls = sum(&samples, "asw_docker_requests_total", &[]);
    let inspects = sum(
        &samples,
        "asw_docker_requests_total",
        &[("endpoint", "GET /services/{id}")],
    );
    let observes = sum(
        &samples,
        "asw_info_requests_total",
        &[("command", "observe")],
    );
    let durations = sum(&samples, "asw_reconcile_duration_seconds_count", &cluster);
    println!(
        "metrics: reconciles {first} -> {reconciles}, tips {tips}, gauges {gauges:?}, \
         phase Ready {ready}, docker calls {docker_calls} ({inspects} inspects), \
         observes {observes}, durations {durations}"
    );
    if reconciles <= first {
        return Err(format!("the reconcile count did not grow: {first} -> {reconciles}").into());
    }
    if tips <= 0.0 {
        return Err("a 3-node cluster converged with no tip counted".into());
    }
    if gauges.values().any(|v| *v != 3.0) {
        return Err(format!("desired/running/meshed are not 3: {gauges:?}").into());
    }
    if ready != 1.0 {
        return Err(format!("asw_cluster_phase{{phase=\"Ready\"}} is {ready}").into());
    }
    if inspects <= 0.0 || observes <= 0.0 || durations != reconciles {
        return Err(format!(
            "inspects {inspects}, observes {observes}, durations {durations} for \
             {reconciles} reconciles"
        )
        .into());
    }

    for (path, want) in [("/healthz", 200), ("/readyz", 200), ("/nope", 404)] {
        let (code, body) = http_get(sandbox, &node, &url(path))?;
        if code != want {
            return Err(format!("{path} answered {code}, not {want}: {body}").into());
        }
    }
    println!("metrics e2e took {:?}", started.elapsed());
    Ok(())
}
