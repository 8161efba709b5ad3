//! `validate`: check an AerospikeCluster YAML file or a live service's
//! labels. Exit codes: 0 valid, 1 invalid, 2 could not check.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use aerospike_swarm_operator::validate::{self as check, CheckError, Verdict};

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ValidateArgs {
    /// An AerospikeCluster YAML document.
    pub file: Option<PathBuf>,
    /// A swarm service (name or ID) whose aerospike.cluster.* labels to
    /// check; Docker is reached as the docker CLI does (DOCKER_HOST).
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
}

pub async fn run(args: ValidateArgs) -> ExitCode {
    let checked = match (args.file, args.service) {
        (Some(file), _) => check::check_file(&file),
        (None, Some(service)) => check::check_service(&service).await,
        // clap's group makes exactly one of the two present.
        (None, None) => unreachable!("clap requires FILE or --service"),
    };
    report(checked)
}

const _: () = assert!(CheckError::EXIT_CODE == super::exit::CANNOT_CHECK);

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
            ExitCode::from(super::exit::CANNOT_CHECK)
        }
    }
}
