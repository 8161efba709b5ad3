//! `run`: the operator itself. Every flag has an environment variable
//! (`ASW_...`), so a service definition can configure it either way.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use aerospike_swarm_operator::controller::{self, LogFormat, RunOptions};

use super::{exit, parse_duration};

#[derive(Debug, Args)]
pub struct RunArgs {
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
        ..RunOptions::default()
    };
    match controller::run(options).await {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) => {
            tracing::error!(error = %error, "cannot run the operator");
            eprintln!("error: {error}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;

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
    }
}
