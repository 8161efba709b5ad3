//! `run`: the operator itself. Every flag has an environment variable
//! (`ASW_...`), so a service definition can configure it either way.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use aerospike_swarm_operator::controller::leader::LeaderElection;
use aerospike_swarm_operator::controller::{self, ClusterSelector, LogFormat, RunOptions};

use super::{exit, parse_duration};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where to serve /metrics (Prometheus), /healthz and /readyz, as
    /// ADDRESS:PORT; `off` serves none.
    #[arg(long, env = "ASW_METRICS_ADDRESS", value_name = "ADDR", default_value = "0.0.0.0:9090", value_parser = parse_metrics_address)]
    pub metrics_address: MetricsAddress,
    /// Log line format.
    #[arg(long, env = "ASW_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// How often every service is re-read in full, besides events.
    #[arg(long, env = "ASW_RESYNC_INTERVAL", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub resync_interval: Duration,
    /// Task poll period while any cluster is converging.
    #[arg(long, env = "ASW_POLL_FAST", value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub poll_fast: Duration,
    /// Task poll period when every cluster is settled.
    #[arg(long, env = "ASW_POLL_SLOW", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub poll_slow: Duration,
    /// How often the cumulative counters are logged (action="counters").
    #[arg(long, env = "ASW_COUNTERS_INTERVAL", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub counters_interval: Duration,
    /// How long a node's count of partitions to migrate may stay the same
    /// before the status calls the migrations stalled (phase Degraded).
    #[arg(long, env = "ASW_MIGRATION_STALL_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub migration_stall_timeout: Duration,
    /// How long a task of a new version or config may take to start and
    /// join the cluster during a rollout before the operator rolls the
    /// service back to what every node ran before.
    #[arg(long, env = "ASW_NODE_JOIN_TIMEOUT", value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    pub node_join_timeout: Duration,
    /// High availability: replicas elect one leader on a swarm config (the
    /// lease); the others stand by. On by default, so the operator service
    /// can be scaled to 2 as it is; `--leader-election false` makes every
    /// replica act (run only one then).
    #[arg(long, env = "ASW_LEADER_ELECTION", value_name = "BOOL", default_value = "true", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub leader_election: bool,
    /// The swarm config that is the lease (default: `<operator service>.lease`,
    /// or aerospike-swarm-operator.lease outside swarm).
    #[arg(long, env = "ASW_LEASE_NAME", value_name = "NAME")]
    pub lease_name: Option<String>,
    /// How long the lease must go unrenewed before a standby takes over.
    /// The leader stops acting when it could not renew for 7/10 of it.
    #[arg(long, env = "ASW_LEASE_DURATION", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// How often the leader renews the lease and standbys read it.
    #[arg(long, env = "ASW_LEASE_RENEW", value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub lease_renew: Duration,
    /// The operator's own swarm service, which it attaches to a managed
    /// cluster's overlay network it is not on (deploy/operator.yml sets it
    /// to `{{.Service.Name}}`). When absent, the operator asks the engine
    /// which service its container belongs to.
    #[arg(long, env = "ASW_OPERATOR_SERVICE", value_name = "NAME")]
    pub operator_service: Option<String>,
    /// Never attach the operator's service to a cluster's network (an
    /// update of the operator's own service, which restarts its task once);
    /// the cluster's status then gives the command to run instead.
    #[arg(long, env = "ASW_NO_ATTACH_NETWORKS", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_attach_networks: bool,
    /// Turn off the membership watch (a held info connection per node and
    /// one small probe per cluster every 0.5 s): a node dying unannounced
    /// is then seen only at the next task poll. For comparisons and for
    /// networks where held connections are unwelcome.
    #[arg(long, env = "ASW_NO_MEMBERSHIP_WATCH", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_membership_watch: bool,
    /// Manage only the clusters whose service has this label: LABEL=VALUE
    /// (that value), or LABEL (any value). The others are left alone, as
    /// services without aerospike.cluster.* labels are, so several
    /// operators (each its own service and selector) can share a swarm.
    /// Empty: every cluster.
    #[arg(long, env = "ASW_CLUSTER_SELECTOR", value_name = "LABEL[=VALUE]", value_parser = parse_cluster_selector)]
    pub cluster_selector: Option<SelectorArg>,
}

pub async fn run(args: RunArgs) -> ExitCode {
    controller::init_logging(args.log_format);
    let options = RunOptions {
        resync_interval: args.resync_interval,
        poll_fast: args.poll_fast,
        poll_slow: args.poll_slow,
        counters_interval: args.counters_interval,
        migration_stall_timeout: args.migration_stall_timeout,
        node_join_timeout: args.node_join_timeout,
        operator_service: args.operator_service,
        attach_networks: !args.no_attach_networks,
        membership_watch: !args.no_membership_watch,
        leader_election: LeaderElection {
            enabled: args.leader_election,
            lease_name: args.lease_name,
            duration: args.lease_duration,
            renew: args.lease_renew,
        },
        metrics_address: args.metrics_address.0,
        cluster_selector: args.cluster_selector.and_then(|s| s.0),
        ..RunOptions::default()
    };
    if let Err(error) = options.leader_election.check() {
        tracing::error!(error = %error, "cannot run the operator");
        eprintln!("error: {error}");
        return ExitCode::from(exit::FAILURE);
    }
    match controller::run(options).await {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) => {
            tracing::error!(error = %error, "cannot run the operator");
            eprintln!("error: {error}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

/// `--metrics-address`: an address, or none (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddress(pub Option<SocketAddr>);

fn parse_metrics_address(text: &str) -> Result<MetricsAddress, String> {
    match text.trim() {
        "off" | "none" | "" => Ok(MetricsAddress(None)),
        address => address
            .parse()
            .map(|address| MetricsAddress(Some(address)))
            .map_err(|e| format!("{e}: expected ADDRESS:PORT (e.g. 0.0.0.0:9090) or off")),
    }
}

/// `--cluster-selector`: a selector, or none (the empty value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorArg(pub Option<ClusterSelector>);

fn parse_cluster_selector(text: &str) -> Result<SelectorArg, String> {
    ClusterSelector::parse(text).map(SelectorArg).map_err(|e| {
        format!("{e} (from --cluster-selector or ASW_CLUSTER_SELECTOR; empty for every cluster)")
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;

    #[test]
    fn metrics_address_is_an_address_or_off() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(["x", "run"].iter().chain(args)).unwrap();
            let Command::Run(args) = cli.command else {
                panic!("expected run")
            };
            args.metrics_address.0
        };
        assert_eq!(parse(&[]), Some("0.0.0.0:9090".parse().unwrap()));
        assert_eq!(
            parse(&["--metrics-address", "127.0.0.1:9100"]),
            Some("127.0.0.1:9100".parse().unwrap())
        );
        assert_eq!(parse(&["--metrics-address", "off"]), None);
        assert!(Cli::try_parse_from(["x", "run", "--metrics-address", "9090"]).is_err());
    }

    #[test]
    fn run_flags_parse() {
        let cli = Cli::try_parse_from([
            "aerospike-swarm-operator",
            "run",
            "--log-format",
            "json",
            "--resync-interval",
            "60s",
            "--poll-fast",
            "1s",
            "--poll-slow",
            "10s",
            "--counters-interval",
            "30s",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(args.log_format, LogFormat::Json);
        assert_eq!(args.poll_fast, Duration::from_secs(1));
        assert!(Cli::try_parse_from(["x", "run", "--log-format", "yaml"]).is_err());
        assert!(args.leader_election);
        assert_eq!(args.lease_duration, Duration::from_secs(10));
        let cli = Cli::try_parse_from([
            "x",
            "run",
            "--leader-election",
            "false",
            "--lease-name",
            "op.lease",
            "--lease-renew",
            "1s",
        ])
        .unwrap();
        let Command::Run(ha) = cli.command else {
            panic!("expected run")
        };
        assert!(!ha.leader_election);
        assert_eq!(ha.lease_name.as_deref(), Some("op.lease"));
        assert_eq!(ha.lease_renew, Duration::from_secs(1));
        assert!(!args.no_attach_networks);
        assert_eq!(args.operator_service, None);
        let cli = Cli::try_parse_from([
            "x",
            "run",
            "--no-attach-networks",
            "--operator-service",
            "asw_operator",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("expected run")
        };
        assert!(args.no_attach_networks);
        assert_eq!(args.operator_service.as_deref(), Some("asw_operator"));
    }

    #[test]
    fn cluster_selector_is_label_value_label_or_empty() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(["x", "run"].iter().chain(args))?;
            let Command::Run(args) = cli.command else {
                panic!("expected run")
            };
            Ok::<_, clap::Error>(args.cluster_selector.and_then(|s| s.0))
        };
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&["--cluster-selector", ""]).unwrap(), None);
        let team_a = parse(&["--cluster-selector", "team=a"]).unwrap().unwrap();
        assert_eq!((team_a.label(), team_a.value()), ("team", Some("a")));
        let any = parse(&["--cluster-selector=team"]).unwrap().unwrap();
        assert_eq!((any.label(), any.value()), ("team", None));
        for bad in ["=a", "te am=a", " team=a", "aerospike.cluster.team=a"] {
            let error = parse(&["--cluster-selector", bad]).unwrap_err().to_string();
            assert!(error.contains("--cluster-selector"), "{bad:?}: {error}");
        }
    }
}
