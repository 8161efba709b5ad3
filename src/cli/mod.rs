//! The `aerospike-swarm-operator` command line: one module per command
//! behind [`Command`], argument parsing, exit codes and the helpers the
//! commands share. The work itself is in the library.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod explain;
mod run;
mod schema;
mod validate;

/// Exit codes scripts can rely on; the same meaning on every command.
pub mod exit {
    /// Done: valid, applied, Ready.
    pub const OK: u8 = 0;
    /// The answer is no: the spec is invalid, the cluster reports Error,
    /// there is no such service, or the command failed.
    pub const FAILURE: u8 = 1;
    /// The check could not be made (Docker unreachable, file unreadable).
    pub const CANNOT_CHECK: u8 = 2;
    /// `--wait` gave up: the timeout passed before the cluster was Ready.
    #[allow(dead_code)] // apply --wait, next.
    pub const TIMEOUT: u8 = 3;
}

#[derive(Debug, Parser)]
#[command(name = "aerospike-swarm-operator", version, about)]
pub struct Cli {
    /// The Docker engine to talk to (a swarm manager): unix:///PATH or
    /// tcp://HOST:PORT; DOCKER_TLS_VERIFY and DOCKER_CERT_PATH apply as for
    /// the docker CLI. The flag wins over the environment.
    #[arg(long, global = true, env = "DOCKER_HOST", value_name = "URL")]
    pub docker_host: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator: watch the swarm and make every service that
    /// carries aerospike.cluster.replicas match its spec. Docker is reached
    /// as the docker CLI does (DOCKER_HOST, DOCKER_TLS_VERIFY,
    /// DOCKER_CERT_PATH); the engine must be a swarm manager. RUST_LOG
    /// filters the logs. Stops on SIGTERM after finishing in-flight work.
    Run(run::RunArgs),
    /// Check an AerospikeCluster YAML file, or the labels of a live swarm
    /// service. Prints every problem; exits 0 when valid, 1 when invalid,
    /// 2 when the check could not be made.
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema of the AerospikeCluster YAML document.
    Schema,
    /// Explain the labels: every spec and status label with its type,
    /// default and meaning, or one of them. Exits 1 for an unknown name.
    Explain(explain::ExplainArgs),
}

/// Parses the command line, points the Docker client at `--docker-host`,
/// and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(host) = &cli.docker_host {
        // Before any thread exists: the connect code reads DOCKER_HOST.
        std::env::set_var("DOCKER_HOST", host);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Run(args) => run::run(args).await,
        Command::Validate(args) => validate::run(args).await,
        Command::Schema => schema::run(),
        Command::Explain(args) => explain::run(args),
    }
}

/// Parses `500ms`, `1s`, `1.5s`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

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
    fn the_command_line_is_well_formed_and_every_command_has_help() {
        Cli::command().debug_assert();
        for sub in Cli::command().get_subcommands() {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            assert!(
                !about.trim().is_empty(),
                "{} has no --help text",
                sub.get_name()
            );
            for arg in sub.get_arguments() {
                if arg.get_id() == "help" || arg.get_id() == "version" {
                    continue;
                }
                assert!(
                    arg.get_help().is_some(),
                    "{} {} has no help text",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn docker_host_is_global_and_the_flag_wins() {
        let cli = Cli::try_parse_from([
            "x",
            "validate",
            "--service",
            "db",
            "--docker-host",
            "tcp://10.0.0.1:2375",
        ])
        .unwrap();
        assert_eq!(cli.docker_host.as_deref(), Some("tcp://10.0.0.1:2375"));
        let cli = Cli::try_parse_from(["x", "--docker-host", "unix:///d.sock", "run"]).unwrap();
        assert_eq!(cli.docker_host.as_deref(), Some("unix:///d.sock"));
    }
}
