//! The `aerospike-sim` binary: runs a node, or acts as `asinfo`, as the
//! recipe's `meshworker`, or as an idle client host for tests.

use std::process::ExitCode;

use aerospike_sim::cli::{parse_args, settings_from_env, Invocation, USAGE};
use aerospike_sim::client::request;
use aerospike_sim::config::{Config, DEFAULT_CONFIG};
use aerospike_sim::events::EventLog;
use aerospike_sim::node;
use serde_json::json;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let events = EventLog::stdout();
    let invocation = settings_from_env(|key| std::env::var(key).ok())
        .and_then(|settings| parse_args(&args, settings));
    let invocation = match invocation {
        Ok(invocation) => invocation,
        Err(message) => {
            events.emit("config_error", json!({"message": message}));
            eprintln!("aerospike-sim: {message}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("aerospike-sim: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match invocation {
        Invocation::Meshworker(options) => {
            runtime.block_on(aerospike_sim::meshworker::run(options, events));
            ExitCode::SUCCESS
        }
        Invocation::Idle => {
            let reason = runtime.block_on(node::wait_for_signal());
            events.emit("shutdown", json!({"signal": reason}));
            ExitCode::SUCCESS
        }
        Invocation::Help => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Invocation::Asinfo {
            host,
            port,
            command,
            timeout,
        } => {
            let commands: Vec<&str> = command.iter().map(String::as_str).collect();
            match runtime.block_on(request(&host, port, &commands, timeout)) {
                Ok(lines) if command.is_some() => {
                    // Like asinfo -v: just the value.
                    println!("{}", lines.last().map(|(_, v)| v.as_str()).unwrap_or(""));
                    ExitCode::SUCCESS
                }
                Ok(lines) => {
                    for (name, value) in lines {
                        println!("{name}\t{value}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("asinfo: {host}:{port}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Invocation::Server {
            config_file,
            settings,
        } => {
            let (text, source) = match &config_file {
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(text) => (text, path.clone()),
                    Err(e) => {
                        let message = format!("cannot read config file {path}: {e}");
                        events.emit("config_error", json!({"path": path, "message": message}));
                        eprintln!("aerospike-sim: {message}");
                        return ExitCode::FAILURE;
                    }
                },
                None => (DEFAULT_CONFIG.to_string(), "built-in default".to_string()),
            };
            let config = match Config::parse_for(&text, settings.enterprise()) {
                Ok(config) => config,
                Err(e) => {
                    node::log_config_refusal(&events, &e);
                    events.emit(
                        "config_error",
                        json!({"path": source, "line": e.line, "message": e.message}),
                    );
                    eprintln!("aerospike-sim: {source}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if settings.edition == aerospike_sim::state::Edition::Community
                && config.namespaces.len() > 2
            {
                let message = "community edition supports at most 2 namespaces";
                events.emit("config_error", json!({"path": source, "message": message}));
                eprintln!("aerospike-sim: {source}: {message}");
                return ExitCode::FAILURE;
            }
            match runtime.block_on(node::run(config, settings, events.clone(), &source)) {
                Ok(_) => {
                    // Do not wait for lingering blocking DNS lookups.
                    runtime.shutdown_background();
                    ExitCode::SUCCESS
                }
                Err(message) if message == node::EXIT_ON_START_MESSAGE => {
                    // Logged already as a `fatal` event.
                    eprintln!("aerospike-sim: {message}");
                    ExitCode::FAILURE
                }
                Err(message) => {
                    events.emit("config_error", json!({"message": message}));
                    eprintln!("aerospike-sim: {message}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
