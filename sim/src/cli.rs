//! Command line and environment of the `aerospike-sim` binary.
//!
//! ```text
//! aerospike-sim [--config-file PATH] [--foreground|-f] [--migrate-rate N]
//! aerospike-sim asinfo [-h HOST] [-p PORT] [-v COMMAND] [-t SECONDS]
//! aerospike-sim meshworker --service NAME [--interval SECONDS] [--service-port P] [--heartbeat-port P]
//! aerospike-sim idle
//! ```
//!
//! Environment: `AEROSPIKE_SIM_BUILD` (version reported by `build`),
//! `AEROSPIKE_SIM_EDITION` (`community` or `enterprise`),
//! `AEROSPIKE_SIM_MIGRATE_RATE` (partitions per second, overridden by
//! `--migrate-rate`), `AEROSPIKE_SIM_INTERFACES` (test seam: the interface
//! list `address any` expands to, see [`crate::netif`]),
//! `AEROSPIKE_SIM_FAULT` (`never-join` or `exit-on-start`: an injected
//! failure, see [`crate::state::Fault`]), `AEROSPIKE_SIM_COLD_START_RATE`
//! (partition copies a cold start reads per second).

use std::time::Duration;

use crate::state::{Edition, Fault, Settings};

/// What the binary was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// Run a node.
    Server {
        /// `--config-file`, or `None` for the built-in default config.
        config_file: Option<String>,
        /// Build, edition and migration rate.
        settings: Settings,
    },
    /// Send one info request and print the reply.
    Asinfo {
        /// Host to connect to.
        host: String,
        /// Service port.
        port: u16,
        /// The command; `None` asks for the default set.
        command: Option<String>,
        /// Give up after this long.
        timeout: Duration,
    },
    /// Run the recipe's DNS-polling sidecar (see [`crate::meshworker`]).
    Meshworker(crate::meshworker::Options),
    /// Do nothing until SIGTERM or SIGINT: a container whose network
    /// namespace on the overlay hosts clients the tests run there
    /// (`nsenter --net`), as an application container would.
    Idle,
    /// Print usage.
    Help,
}

/// Usage text.
pub const USAGE: &str = "\
usage:
  aerospike-sim [--config-file PATH] [--foreground|-f] [--migrate-rate PARTITIONS_PER_SEC]
  aerospike-sim asinfo [-h HOST] [-p PORT] [-v COMMAND] [-t TIMEOUT_SECONDS]
  aerospike-sim meshworker --service NAME [--interval SECONDS] [--service-port PORT] [--heartbeat-port PORT]
  aerospike-sim idle          do nothing until SIGTERM (a client host on the overlay for tests)
environment:
  AEROSPIKE_SIM_BUILD         version reported by `build` (default 7.1.0.0)
  AEROSPIKE_SIM_EDITION       community (default) or enterprise
  AEROSPIKE_SIM_MIGRATE_RATE  partitions sent per second per node (default 500)
  AEROSPIKE_SIM_INTERFACES    test seam: [name=]ip,... replaces the host's interface list
  AEROSPIKE_SIM_FAULT         injected failure: never-join or exit-on-start (default none)
  AEROSPIKE_SIM_COLD_START_RATE  partition copies a cold start reads per second (default 10000)
";

fn parse_rate(text: &str, source: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("{source} must be a positive number, got '{text}'")),
    }
}

/// Reads the settings from environment variables (`env` looks one up).
pub fn settings_from_env(env: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
    let mut settings = Settings::default();
    if let Some(build) = env("AEROSPIKE_SIM_BUILD").filter(|b| !b.is_empty()) {
        settings.build = build;
    }
    if let Some(edition) = env("AEROSPIKE_SIM_EDITION").filter(|e| !e.is_empty()) {
        settings.edition = Edition::parse(&edition).ok_or_else(|| {
            format!("AEROSPIKE_SIM_EDITION must be community or enterprise, got '{edition}'")
        })?;
    }
    if let Some(rate) = env("AEROSPIKE_SIM_MIGRATE_RATE").filter(|r| !r.is_empty()) {
        settings.migrate_rate = parse_rate(&rate, "AEROSPIKE_SIM_MIGRATE_RATE")?;
    }
    if let Some(rate) = env("AEROSPIKE_SIM_COLD_START_RATE").filter(|r| !r.is_empty()) {
        settings.cold_start_rate = parse_rate(&rate, "AEROSPIKE_SIM_COLD_START_RATE")?;
    }
    if let Some(list) = env("AEROSPIKE_SIM_INTERFACES").filter(|l| !l.is_empty()) {
        settings.interfaces = Some(
            crate::netif::parse_interfaces(&list)
                .map_err(|e| format!("AEROSPIKE_SIM_INTERFACES: {e}"))?,
        );
    }
    if let Some(fault) = env("AEROSPIKE_SIM_FAULT").filter(|f| !f.is_empty()) {
        settings.fault = Some(Fault::parse(&fault).ok_or_else(|| {
            format!(
                "AEROSPIKE_SIM_FAULT must be one of {}, got '{fault}'",
                Fault::ACCEPTED
            )
        })?);
    }
    Ok(settings)
}

/// Parses the arguments after the program name.
pub fn parse_args(args: &[String], settings: Settings) -> Result<Invocation, String> {
    if args.first().map(String::as_str) == Some("asinfo") {
        return parse_asinfo(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("meshworker") {
        return parse_meshworker(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("idle") {
        return match args.get(1) {
            None => Ok(Invocation::Idle),
            Some(other) => Err(format!("unknown idle argument '{other}'")),
        };
    }
    let mut config_file = None;
    let mut settings = settings;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--config-file" => {
                config_file = Some(rest.next().ok_or("--config-file needs a path")?.clone());
            }
            // asd's flags for running in the foreground: the sim always does.
            "--foreground" | "-f" | "--fgdaemon" => {}
            "--migrate-rate" => {
                let value = rest.next().ok_or("--migrate-rate needs a number")?;
                settings.migrate_rate = parse_rate(value, "--migrate-rate")?;
            }
            "--help" => return Ok(Invocation::Help),
            other => {
                if let Some(path) = other.strip_prefix("--config-file=") {
                    config_file = Some(path.to_string());
                } else {
                    return Err(format!("unknown argument '{other}'"));
                }
            }
        }
    }
    Ok(Invocation::Server {
        config_file,
        settings,
    })
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("bad port '{text}'"))
}

/// The value after `flag` in a subcommand's arguments.
fn value_of(rest: &mut std::slice::Iter<'_, String>, flag: &str) -> Result<String, String> {
    rest.next()
        .cloned()
        .ok_or_else(|| format!("{flag} needs a value"))
}

/// A positive number of seconds (`what` names it in the error).
fn parse_seconds(text: &str, what: &str) -> Result<Duration, String> {
    text.parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("bad {what} '{text}'"))
}

fn parse_meshworker(args: &[String]) -> Result<Invocation, String> {
    let mut options = crate::meshworker::Options {
        service: String::new(),
        interval: crate::meshworker::DEFAULT_INTERVAL,
        service_port: 3000,
        heartbeat_port: 3002,
    };
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || value_of(&mut rest, flag);
        match flag.as_str() {
            "--service" => options.service = value()?,
            "--interval" => options.interval = parse_seconds(&value()?, "interval")?,
            "--service-port" => options.service_port = parse_port(&value()?)?,
            "--heartbeat-port" => options.heartbeat_port = parse_port(&value()?)?,
            "--help" => return Ok(Invocation::Help),
            other => return Err(format!("unknown meshworker argument '{other}'")),
        }
    }
    if options.service.is_empty() {
        return Err("meshworker needs --service NAME".into());
    }
    Ok(Invocation::Meshworker(options))
}

fn parse_asinfo(args: &[String]) -> Result<Invocation, String> {
    let mut host = "127.0.0.1".to_string();
    let mut port = 3000;
    let mut command = None;
    let mut timeout = Duration::from_secs(5);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || value_of(&mut rest, flag);
        match flag.as_str() {
            "-h" | "--host" => host = value()?,
            "-p" | "--port" => port = parse_port(&value()?)?,
            "-v" | "--value" => command = Some(value()?),
            "-t" | "--timeout" => timeout = parse_seconds(&value()?, "timeout")?,
            "--help" => return Ok(Invocation::Help),
            other => return Err(format!("unknown asinfo argument '{other}'")),
        }
    }
    Ok(Invocation::Asinfo {
        host,
        port,
        command,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn server_flags_like_asd() {
        let got = parse_args(
            &args(&[
                "--config-file",
                "/run/secrets/aerospike.conf",
                "--foreground",
            ]),
            Settings::default(),
        )
        .unwrap();
        assert_eq!(
            got,
            Invocation::Server {
                config_file: Some("/run/secrets/aerospike.conf".into()),
                settings: Settings::default()
            }
        );
        assert!(parse_args(&args(&["--config-file"]), Settings::default()).is_err());
        assert!(parse_args(&args(&["--bogus"]), Settings::default()).is_err());
        assert!(parse_args(&args(&["--migrate-rate", "-1"]), Settings::default()).is_err());
    }

    #[test]
    fn asinfo_flags() {
        let got = parse_args(
            &args(&["asinfo", "-h", "10.0.0.2", "-p", "3100", "-v", "statistics"]),
            Settings::default(),
        )
        .unwrap();
        assert_eq!(
            got,
            Invocation::Asinfo {
                host: "10.0.0.2".into(),
                port: 3100,
                command: Some("statistics".into()),
                timeout: Duration::from_secs(5)
            }
        );
        assert!(parse_args(&args(&["asinfo", "-p", "x"]), Settings::default()).is_err());
        assert!(parse_args(&args(&["asinfo", "-v"]), Settings::default()).is_err());
    }

    #[test]
    fn idle_takes_no_arguments() {
        assert_eq!(
            parse_args(&args(&["idle"]), Settings::default()),
            Ok(Invocation::Idle)
        );
        assert!(parse_args(&args(&["idle", "x"]), Settings::default()).is_err());
    }

    #[test]
    fn meshworker_flags() {
        let got = parse_args(
            &args(&[
                "meshworker",
                "--service",
                "aerospikedb",
                "--interval",
                "0.5",
            ]),
            Settings::default(),
        )
        .unwrap();
        assert_eq!(
            got,
            Invocation::Meshworker(crate::meshworker::Options {
                service: "aerospikedb".into(),
                interval: Duration::from_millis(500),
                service_port: 3000,
                heartbeat_port: 3002,
            })
        );
        assert!(parse_args(&args(&["meshworker"]), Settings::default()).is_err());
        assert!(parse_args(
            &args(&["meshworker", "--service", "x", "--interval", "0"]),
            Settings::default()
        )
        .is_err());
    }

    #[test]
    fn environment_knobs() {
        let env = |key: &str| match key {
            "AEROSPIKE_SIM_BUILD" => Some("6.4.0.2".to_string()),
            "AEROSPIKE_SIM_EDITION" => Some("Enterprise".to_string()),
            "AEROSPIKE_SIM_MIGRATE_RATE" => Some("50".to_string()),
            _ => None,
        };
        let settings = settings_from_env(env).unwrap();
        assert_eq!(settings.build, "6.4.0.2");
        assert_eq!(settings.edition, Edition::Enterprise);
        assert_eq!(settings.migrate_rate, 50.0);
        let bad = |key: &str| (key == "AEROSPIKE_SIM_EDITION").then(|| "gold".to_string());
        assert!(settings_from_env(bad).unwrap_err().contains("gold"));
        assert_eq!(settings_from_env(|_| None).unwrap(), Settings::default());
    }

    #[test]
    fn cold_start_rate_knob() {
        let with = |value: &'static str| {
            settings_from_env(move |key| {
                (key == "AEROSPIKE_SIM_COLD_START_RATE").then(|| value.to_string())
            })
        };
        assert_eq!(with("25").unwrap().cold_start_rate, 25.0);
        assert_eq!(
            with("").unwrap().cold_start_rate,
            crate::state::DEFAULT_COLD_START_RATE
        );
        for bad in ["0", "-3", "fast", "NaN"] {
            let message = with(bad).unwrap_err();
            assert!(
                message.contains("AEROSPIKE_SIM_COLD_START_RATE"),
                "{message}"
            );
        }
    }

    #[test]
    fn fault_knob() {
        let with = |value: &'static str| {
            settings_from_env(move |key| (key == "AEROSPIKE_SIM_FAULT").then(|| value.to_string()))
        };
        assert_eq!(with("never-join").unwrap().fault, Some(Fault::NeverJoin));
        assert_eq!(
            with("exit-on-start").unwrap().fault,
            Some(Fault::ExitOnStart)
        );
        assert_eq!(with("").unwrap().fault, None);
        assert_eq!(settings_from_env(|_| None).unwrap().fault, None);
        for bad in ["crash", "Never-Join", "never-join ", "1"] {
            let message = with(bad).unwrap_err();
            assert!(message.contains("AEROSPIKE_SIM_FAULT"), "{message}");
            assert!(message.contains("never-join"), "{message}");
            assert!(message.contains("exit-on-start"), "{message}");
            assert!(message.contains(&format!("'{bad}'")), "{message}");
        }
    }
}
