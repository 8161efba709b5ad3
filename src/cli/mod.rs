//! The `aerospike-swarm-operator` command line: one module per command
//! behind [`Command`], argument parsing, exit codes and the helpers the
//! commands share. The work itself is in the library.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use aerospike_swarm_operator::swarm::{self, DockerSwarm, SwarmError};

mod apply;
mod explain;
mod run;
mod schema;
mod status;
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
    /// Run the operator: make every managed service match its spec.
    ///
    /// Watches the swarm and makes every service that carries
    /// aerospike.cluster.replicas match its spec. Docker is reached
    /// as the docker CLI does (DOCKER_HOST, DOCKER_TLS_VERIFY,
    /// DOCKER_CERT_PATH); the engine must be a swarm manager. RUST_LOG
    /// filters the logs. Stops on SIGTERM after finishing in-flight work.
    Run(run::RunArgs),
    /// Check an AerospikeCluster YAML file or a live service's labels, and/or
    /// an Aerospike server config (--config).
    ///
    /// Prints every problem; exits 0 when valid, 1 when invalid, 2 when
    /// the check could not be made.
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema of the AerospikeCluster YAML document.
    Schema,
    /// Explain the labels: type, default and meaning of each.
    ///
    /// Lists every spec and status label, or shows one (a label, a YAML
    /// path such as spec.replicas, or a bare name). Exits 1 for an unknown
    /// name, with the closest known one.
    Explain(explain::ExplainArgs),
    /// Create or update a cluster's service from a YAML document.
    ///
    /// kubectl-style: prints the diff, then applies it. A new service is
    /// created as the recipe runs it; on an existing one only the
    /// aerospike.cluster.* labels change (the operator rolls the image).
    /// --wait follows the status until Ready. Exits 0 done/Ready, 1 invalid
    /// or Error, 2 Docker unreachable, 3 timed out.
    Apply(apply::ApplyArgs),
    /// Show the managed clusters: phase, ready nodes, what they wait for.
    ///
    /// Every managed cluster (or one): phase, ready nodes, version, config
    /// secret, cluster key, migrations, rollout and the status message, as
    /// a table or as JSON/YAML; --watch redraws on change. Exits 1 for an
    /// unknown NAME.
    Status(status::StatusArgs),
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
        Command::Apply(args) => apply::run(args).await,
        Command::Status(args) => status::run(args).await,
    }
}

/// Connects to Docker as the docker CLI does and checks that the engine
/// is a swarm manager; the error is a sentence that says what to do.
pub async fn connect() -> Result<DockerSwarm, String> {
    let docker = swarm::connect_from_env()
        .await
        .map_err(|e| swarm_error_hint(&e))?;
    swarm::preflight(&docker)
        .await
        .map_err(|e| swarm_error_hint(&e))?;
    Ok(docker)
}

/// A Docker error as the command line reports it: the cause, then a way
/// out.
pub fn swarm_error_hint(error: &SwarmError) -> String {
    match error {
        SwarmError::Unreachable { .. } => {
            let text = error.to_string();
            if text.contains("daemon running?") {
                format!("{text}; set DOCKER_HOST or --docker-host")
            } else {
                format!("{text}; is dockerd running? set DOCKER_HOST or --docker-host")
            }
        }
        SwarmError::Config(_) => {
            format!("{error}; set DOCKER_HOST or --docker-host to unix:///PATH or tcp://HOST:PORT")
        }
        SwarmError::NotManager(_) => {
            format!("{error}; or point DOCKER_HOST / --docker-host at a manager")
        }
        _ => error.to_string(),
    }
}

/// "no such service" with a way out.
pub fn no_such_service(name: &str) -> String {
    format!(
        "no such service {name:?}; `docker service ls` lists the services, \
         `aerospike-swarm-operator status` the managed clusters"
    )
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

    /// A service definition can configure `run` by environment alone.
    #[test]
    fn every_run_flag_has_an_environment_variable() {
        let cli = Cli::command();
        let run = cli.find_subcommand("run").expect("run");
        for arg in run.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            let expected = if id == "docker_host" {
                "DOCKER_HOST".to_string()
            } else {
                format!("ASW_{}", id.to_ascii_uppercase())
            };
            assert_eq!(env.as_deref(), Some(expected.as_str()), "run --{id}");
        }
    }

    #[test]
    fn docker_errors_name_the_cause_and_a_way_out() {
        let unreachable = SwarmError::Unreachable {
            host: "unix:///var/run/docker.sock".into(),
            source: "connection refused".into(),
        };
        assert_eq!(
            swarm_error_hint(&unreachable),
            "cannot reach Docker at unix:///var/run/docker.sock: connection refused; \
             is dockerd running? set DOCKER_HOST or --docker-host"
        );
        let no_socket = SwarmError::Unreachable {
            host: "unix:///nope.sock".into(),
            source: "no socket at /nope.sock (is the Docker daemon running?)".into(),
        };
        assert_eq!(
            swarm_error_hint(&no_socket),
            "cannot reach Docker at unix:///nope.sock: no socket at /nope.sock (is the Docker \
             daemon running?); set DOCKER_HOST or --docker-host"
        );
        let worker = SwarmError::NotManager(
            "the Docker engine at tcp://w:2375 is a swarm worker, not a manager; run the \
             operator on a manager node"
                .into(),
        );
        let text = swarm_error_hint(&worker);
        assert!(text.starts_with("the Docker engine at tcp://w:2375 is a swarm worker"));
        assert!(text.ends_with("point DOCKER_HOST / --docker-host at a manager"));
        let config = SwarmError::Config("DOCKER_HOST \"ftp://x\" is not supported".into());
        assert!(swarm_error_hint(&config).contains("set DOCKER_HOST or --docker-host"));
        assert_eq!(
            no_such_service("db"),
            "no such service \"db\"; `docker service ls` lists the services, \
             `aerospike-swarm-operator status` the managed clusters"
        );
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
