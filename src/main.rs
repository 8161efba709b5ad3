//! The `aerospike-swarm-operator` command line. Argument parsing and exit
//! codes only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use aerospike_swarm_operator::controller::{self, LogFormat, RunOptions};
use aerospike_swarm_operator::spec::schema;
use aerospike_swarm_operator::validate::{self as check, CheckError, Verdict};

#[derive(Debug, Parser)]
#[command(name = "aerospike-swarm-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the operator: watch the swarm and make every service that
    /// carries aerospike.cluster.replicas match its spec. Docker is reached
    /// as the docker CLI does (DOCKER_HOST, DOCKER_TLS_VERIFY,
    /// DOCKER_CERT_PATH); the engine must be a swarm manager. RUST_LOG
    /// filters the logs. Stops on SIGTERM after finishing in-flight work.
    Run(RunArgs),
    /// Check an AerospikeCluster YAML file, or the labels of a live swarm
    /// service. Prints every problem; exits 0 when valid, 1 when invalid,
    /// 2 when the check could not be made.
    Validate(ValidateArgs),
    /// Print the JSON Schema of the AerospikeCluster YAML document.
    Schema,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct ValidateArgs {
    /// An AerospikeCluster YAML document.
    file: Option<PathBuf>,
    /// A swarm service (name or ID) whose aerospike.cluster.* labels to
    /// check; Docker is reached as the docker CLI does (DOCKER_HOST).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Log line format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// How often every service is re-read in full, besides events.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    resync_interval: Duration,
    /// Task poll period while any cluster is converging.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    poll_fast: Duration,
    /// Task poll period when every cluster is settled.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    poll_slow: Duration,
    /// How often the cumulative counters are logged (action="counters").
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    counters_interval: Duration,
    /// How long a node's count of partitions to migrate may stay the same
    /// before the status calls the migrations stalled (phase Degraded).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    migration_stall_timeout: Duration,
    /// How long a task of a new version or config may take to start and
    /// join the cluster during a rollout before the operator rolls the
    /// service back to what every node ran before.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    node_join_timeout: Duration,
}

/// Parses `500ms`, `1s`, `1.5s`, `2m`, `1h` (a bare number is seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 10s or 2m"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ))
        }
    };
    if !(seconds > 0.0 && seconds < 1e9) {
        return Err(format!("{text:?} must be more than zero"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
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
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(error = %error, "cannot run the operator");
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Validate(args) => {
            let checked = match (args.file, args.service) {
                (Some(file), _) => check::check_file(&file),
                (None, Some(service)) => check::check_service(&service).await,
                // clap's group makes exactly one of the two present.
                (None, None) => unreachable!("clap requires FILE or --service"),
            };
            report(checked)
        }
        Command::Schema => {
            print!("{}", schema::json_schema_text());
            ExitCode::SUCCESS
        }
    }
}

/// Errors go to stderr one per line, the summary to stdout on success and
/// to stderr otherwise, so `validate ... 2>/dev/null` is quiet unless ok.
fn report(checked: Result<Verdict, CheckError>) -> ExitCode {
    match checked {
        Ok(verdict) => {
            if let Verdict::Invalid { errors, .. } = &verdict {
                for error in errors.errors() {
                    eprintln!("{error}");
                }
            }
            if verdict.exit_code() == 0 {
                println!("{}", verdict.summary());
            } else {
                eprintln!("{}", verdict.summary());
            }
            ExitCode::from(verdict.exit_code())
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(CheckError::EXIT_CODE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        for bad in ["", "s", "0s", "10x", "-1s", "1 s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
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
    }
}
