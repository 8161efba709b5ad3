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
    /// The same, kubectl's way: `validate -f cluster.yaml`.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filename: Option<PathBuf>,
    /// A swarm service (name or ID) whose aerospike.cluster.* labels to
    /// check; Docker is reached as the docker CLI does (DOCKER_HOST).
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
}

pub async fn run(args: ValidateArgs) -> ExitCode {
    let checked = match (args.file.or(args.filename), args.service) {
        (Some(file), _) => check::check_file(&file),
        (None, Some(service)) => check::check_service(&service).await,
        // clap's group makes exactly one of the three present.
        (None, None) => unreachable!("clap requires FILE, -f FILE or --service"),
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
        Err(CheckError::Connect(error)) => {
            eprintln!("error: {}", super::swarm_error_hint(&error));
            ExitCode::from(super::exit::CANNOT_CHECK)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(super::exit::CANNOT_CHECK)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};

    fn parse(args: &[&str]) -> Result<super::ValidateArgs, clap::Error> {
        let mut argv = vec!["x", "validate"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Validate(args) => Ok(args),
            other => panic!("expected validate, got {other:?}"),
        }
    }

    #[test]
    fn a_file_positional_or_with_f_or_a_service_exactly_one() {
        assert_eq!(
            parse(&["c.yaml"]).unwrap().file.unwrap().to_str(),
            Some("c.yaml")
        );
        let f = parse(&["-f", "c.yaml"]).unwrap();
        assert_eq!(f.filename.unwrap().to_str(), Some("c.yaml"));
        let f = parse(&["--filename", "c.yaml"]).unwrap();
        assert!(f.filename.is_some());
        assert_eq!(
            parse(&["--service", "db"]).unwrap().service.as_deref(),
            Some("db")
        );
        assert!(parse(&[]).is_err());
        assert!(parse(&["a.yaml", "-f", "b.yaml"]).is_err());
        assert!(parse(&["-f", "b.yaml", "--service", "db"]).is_err());
    }
}
