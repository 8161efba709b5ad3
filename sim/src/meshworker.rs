//! The recipe's `meshworker`, rewritten from its description (FIELD-NOTES
//! §1), so that benchmarks can run it beside the operator on the same
//! sandbox: `aerospike-sim meshworker --service NAME`.
//!
//! It does what the published stack's sidecar does, faults included:
//!
//! - every `--interval` (5 s) it resolves `tasks.<service>` (swarm's DNS
//!   lists the running tasks only);
//! - when the set of addresses changed, it sends every address now listed
//!   a `tip:host=<new>;port=<heartbeat>` for each new address (not to the
//!   new node itself), and for each vanished address a
//!   `tip-clear:host-port-list=<gone>;<heartbeat>` — the recipe's wrong
//!   form (the server wants `<gone>:<port>`, so it clears nothing) — and a
//!   `services-alumni-reset`;
//! - it never looks at a reply and never retries a failed request: a tip
//!   to a node that is not listening yet is lost until the set changes
//!   again.
//!
//! Each request is logged as one JSON line (`meshworker_send`, with the
//! target, the command, and the reply or the error), so a benchmark can
//! read when a restarted node was first tipped.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;

use crate::events::EventLog;

/// The recipe's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// What the worker needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The swarm service whose `tasks.<service>` name it resolves.
    pub service: String,
    /// How often it resolves the name.
    pub interval: Duration,
    /// The nodes' service (info) port.
    pub service_port: u16,
    /// The nodes' heartbeat port, named in tips.
    pub heartbeat_port: u16,
}

/// One info request the worker sends.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Send {
    /// The node asked.
    pub target: IpAddr,
    /// The command, as sent.
    pub command: String,
}

/// What one change of the resolved set makes the recipe send: from
/// `known` (the last resolution) to `now`.
pub fn sends(known: &BTreeSet<IpAddr>, now: &BTreeSet<IpAddr>, heartbeat_port: u16) -> Vec<Send> {
    let mut out = Vec::new();
    for target in now {
        for new in now.difference(known).filter(|n| *n != target) {
            out.push(Send {
                target: *target,
                command: format!("tip:host={new};port={heartbeat_port}"),
            });
        }
        let gone: Vec<&IpAddr> = known.difference(now).collect();
        for old in &gone {
            // The recipe's form: `;` where the server wants `:`.
            out.push(Send {
                target: *target,
                command: format!("tip-clear:host-port-list={old};{heartbeat_port}"),
            });
        }
        if !gone.is_empty() {
            out.push(Send {
                target: *target,
                command: "services-alumni-reset".to_string(),
            });
        }
    }
    out
}

/// The addresses `tasks.<service>` resolves to now; none when it does not
/// resolve (swarm answers NXDOMAIN while no task runs).
async fn resolve(service: &str) -> BTreeSet<IpAddr> {
    match tokio::net::lookup_host((format!("tasks.{service}").as_str(), 0)).await {
        Ok(addrs) => addrs.map(|a| a.ip()).collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Runs the loop forever.
pub async fn run(options: Options, events: EventLog) {
    let mut known = BTreeSet::new();
    loop {
        let now = resolve(&options.service).await;
        if now != known {
            events.emit(
                "meshworker_change",
                json!({
                    "service": options.service,
                    "addresses": now.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                }),
            );
            for send in sends(&known, &now, options.heartbeat_port) {
                let host = send.target.to_string();
                let reply = crate::client::request(
                    &host,
                    options.service_port,
                    &[send.command.as_str()],
                    Duration::from_secs(1),
                )
                .await;
                let (answer, error) = match reply {
                    Ok(lines) => (lines.last().map(|(_, v)| v.clone()), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                events.emit(
                    "meshworker_send",
                    json!({"target": host, "command": send.command, "reply": answer, "error": error}),
                );
            }
            known = now;
        }
        tokio::time::sleep(options.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_new_address_is_tipped_to_every_other_node_once() {
        let got = sends(
            &set(&["10.0.0.2", "10.0.0.3"]),
            &set(&["10.0.0.2", "10.0.0.3", "10.0.0.4"]),
            3002,
        );
        let commands: Vec<(String, String)> = got
            .iter()
            .map(|s| (s.target.to_string(), s.command.clone()))
            .collect();
        assert_eq!(
            commands,
            vec![
                ("10.0.0.2".into(), "tip:host=10.0.0.4;port=3002".into()),
                ("10.0.0.3".into(), "tip:host=10.0.0.4;port=3002".into()),
            ]
        );
    }

    #[test]
    fn a_vanished_address_gets_the_recipes_wrong_tip_clear_and_a_reset() {
        let got = sends(&set(&["10.0.0.2", "10.0.0.3"]), &set(&["10.0.0.2"]), 3002);
        let commands: Vec<&str> = got.iter().map(|s| s.command.as_str()).collect();
        assert_eq!(
            commands,
            vec![
                "tip-clear:host-port-list=10.0.0.3;3002",
                "services-alumni-reset"
            ]
        );
    }

    #[test]
    fn a_restart_is_one_vanished_and_one_new_address() {
        let got = sends(
            &set(&["10.0.0.2", "10.0.0.3"]),
            &set(&["10.0.0.2", "10.0.0.5"]),
            3002,
        );
        let to_new: Vec<&Send> = got
            .iter()
            .filter(|s| s.target.to_string() == "10.0.0.5")
            .collect();
        // The new node is told of nothing new (it is the new one) but gets
        // the clean-up of the old address like every node listed.
        assert_eq!(to_new.len(), 2, "{got:?}");
        assert!(got
            .iter()
            .any(|s| s.command == "tip:host=10.0.0.5;port=3002"));
        assert!(sends(&set(&["10.0.0.2"]), &set(&["10.0.0.2"]), 3002).is_empty());
    }

    #[test]
    fn the_first_resolution_tips_every_pair() {
        let got = sends(
            &BTreeSet::new(),
            &set(&["10.0.0.2", "10.0.0.3", "10.0.0.4"]),
            3002,
        );
        assert_eq!(got.len(), 6);
        assert!(got.iter().all(|s| s.command.starts_with("tip:")));
    }
}
