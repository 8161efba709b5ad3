//! The `aerospike-swarm-operator` command line. Argument parsing and exit
//! codes only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use aerospike_swarm_operator::spec::check::{self, CheckError, Verdict};
use aerospike_swarm_operator::spec::schema;

#[derive(Debug, Parser)]
#[command(name = "aerospike-swarm-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
