//! `validate`: check an AerospikeCluster YAML file or a live service's
//! labels, and/or an Aerospike server config (`--config FILE`). Exit
//! codes: 0 valid, 1 invalid, 2 could not check.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use aerospike_swarm_operator::spec::Edition;
use aerospike_swarm_operator::validate::{self as check, CheckError, Verdict};

#[derive(Debug, Args)]
#[group(skip)]
#[command(group = clap::ArgGroup::new("spec").multiple(false))]
pub struct ValidateArgs {
    /// An AerospikeCluster YAML document.
    #[arg(group = "spec")]
    pub file: Option<PathBuf>,
    /// The same, kubectl's way: `validate -f cluster.yaml`.
    #[arg(short = 'f', long = "filename", value_name = "FILE", group = "spec")]
    pub filename: Option<PathBuf>,
    /// A swarm service (name or ID) whose aerospike.cluster.* labels to
    /// check; Docker is reached as the docker CLI does (DOCKER_HOST).
    #[arg(long, value_name = "NAME", group = "spec")]
    pub service: Option<String>,
    /// An Aerospike server config (aerospike.conf) to parse and check:
    /// against the spec given with it (replicas, ports, edition), else
    /// against 3 replicas, the default ports and --edition.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present_any = ["file", "filename", "service"]
    )]
    pub config: Option<PathBuf>,
    /// The image's edition for --config without a spec.
    #[arg(long, value_enum, default_value = "community", value_name = "EDITION")]
    pub edition: EditionArg,
}

/// `--edition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EditionArg {
    Community,
    Enterprise,
}

impl From<EditionArg> for Edition {
    fn from(arg: EditionArg) -> Edition {
        match arg {
            EditionArg::Community => Edition::Community,
            EditionArg::Enterprise => Edition::Enterprise,
        }
    }
}

pub async fn run(args: ValidateArgs) -> ExitCode {
    let checked = match (args.file.or(args.filename), args.service) {
        (Some(file), _) => Some(check::check_file(&file)),
        (None, Some(service)) => Some(check::check_service(&service).await),
        (None, None) => None,
    };
    let Some(config) = args.config else {
        let checked = checked.expect("clap requires FILE, -f FILE, --service or --config");
        return ExitCode::from(report(checked));
    };
    let spec = match &checked {
        Some(Ok(Verdict::Valid { spec, .. })) => Some(spec.as_ref().clone()),
        _ => None,
    };
    let spec_code = checked.map(report).unwrap_or(super::exit::OK);
    let ctx = check::config_context(spec.as_ref(), args.edition.into());
    let config_code = match check::check_config_file(&config, &ctx) {
        Ok(problems) if problems.is_empty() => {
            println!(
                "ok: {} passes the checks ({} replicas, {} edition, ports service {} / \
                 heartbeat {} / fabric {})",
                config.display(),
                ctx.replicas,
                ctx.edition,
                ctx.service_port,
                ctx.heartbeat_port,
                ctx.fabric_port
            );
            super::exit::OK
        }
        Ok(problems) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            let n = problems.len();
            let noun = if n == 1 { "problem" } else { "problems" };
            eprintln!("invalid: {} has {n} {noun}", config.display());
            super::exit::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error}");
            super::exit::CANNOT_CHECK
        }
    };
    ExitCode::from(spec_code.max(config_code))
}

const _: () = assert!(CheckError::EXIT_CODE == super::exit::CANNOT_CHECK);

/// Errors go to stderr one per line, the summary to stdout on success and
/// to stderr otherwise, so `validate ... 2>/dev/null` is quiet unless ok.
fn report(checked: Result<Verdict, CheckError>) -> u8 {
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
            verdict.exit_code()
        }
        Err(CheckError::Connect(error)) => {
            eprintln!("error: {}", super::swarm_error_hint(&error));
            super::exit::CANNOT_CHECK
        }
        Err(error) => {
            eprintln!("error: {error}");
            super::exit::CANNOT_CHECK
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

    #[test]
    fn a_config_alone_or_with_a_spec() {
        let alone = parse(&["--config", "a.conf"]).unwrap();
        assert_eq!(alone.config.unwrap().to_str(), Some("a.conf"));
        assert_eq!(alone.edition, super::EditionArg::Community);
        let both = parse(&["-f", "c.yaml", "--config", "a.conf"]).unwrap();
        assert!(both.filename.is_some() && both.config.is_some());
        let ee = parse(&["--config", "a.conf", "--edition", "enterprise"]).unwrap();
        assert_eq!(ee.edition, super::EditionArg::Enterprise);
        assert!(parse(&["--edition", "enterprise"]).is_err());
        assert!(parse(&["--config", "a.conf", "--edition", "gold"]).is_err());
    }
}
