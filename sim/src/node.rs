//! A running node: the service port, the heartbeat port, the dialers that
//! keep heartbeat connections to seeds and peers, and the ticker that drives
//! the state machine.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::config::Config;
use crate::events::EventLog;
use crate::frame::{encode_info, read_request};
use crate::heartbeat::{decode_line, encode_line, Heartbeat, MAX_LINE};
use crate::ids::NodeId;
use crate::info::handle_request;
use crate::state::{NodeState, Settings};

/// Service connections idle this long are closed, like the server's
/// `proto-fd-idle-ms` default.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

type Shared = Arc<Mutex<NodeState>>;

/// Locks the state. A panic while holding the lock cannot leave the state
/// half-updated in a way that matters more than stopping would, so a
/// poisoned lock is used as is.
fn lock(state: &Shared) -> MutexGuard<'_, NodeState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts one open connection in a [`crate::state::Counters`] field for as
/// long as it lives, so a task that is aborted still gives its count back.
struct Counted {
    state: Shared,
    field: fn(&mut NodeState) -> &mut u64,
}

impl Counted {
    fn new(state: &Shared, field: fn(&mut NodeState) -> &mut u64) -> Counted {
        *field(&mut lock(state)) += 1;
        Counted {
            state: state.clone(),
            field,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        let count = (self.field)(&mut st);
        *count = count.saturating_sub(1);
    }
}

fn heartbeat_connections(st: &mut NodeState) -> &mut u64 {
    &mut st.counters.heartbeat_connections
}

fn client_connections(st: &mut NodeState) -> &mut u64 {
    &mut st.counters.client_connections
}

/// Starts a node and runs it until SIGTERM or SIGINT; returns the signal's
/// name. Fails only when a port cannot be bound.
pub async fn run(
    config: Config,
    settings: Settings,
    events: EventLog,
    config_source: &str,
) -> Result<&'static str, String> {
    let id = config
        .node_id
        .unwrap_or_else(|| NodeId::generate(config.service_port));
    let events = events.for_node(id.to_string());
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let service_bind = SocketAddr::new(config.service_address.unwrap_or(any), config.service_port);
    let heartbeat_bind = SocketAddr::new(
        config.heartbeat.address.unwrap_or(any),
        config.heartbeat.port,
    );
    let service = TcpListener::bind(service_bind)
        .await
        .map_err(|e| format!("cannot listen on service port {service_bind}: {e}"))?;
    let heartbeat = TcpListener::bind(heartbeat_bind)
        .await
        .map_err(|e| format!("cannot listen on heartbeat port {heartbeat_bind}: {e}"))?;

    events.emit(
        "started",
        json!({
            "build": settings.build,
            "edition": settings.edition.long_name(),
            "config": config_source,
            "service": service_bind.to_string(),
            "heartbeat": heartbeat_bind.to_string(),
            "heartbeat_interval_ms": config.heartbeat.interval_ms,
            "heartbeat_timeout": config.heartbeat.timeout,
            "seeds": config.heartbeat.seeds.iter().map(|(h, p)| format!("{h}:{p}")).collect::<Vec<_>>(),
            "namespaces": config.namespaces.iter().map(|n| json!({
                "name": n.name, "replication_factor": n.replication_factor,
            })).collect::<Vec<_>>(),
            "migrate_rate": settings.migrate_rate,
        }),
    );
    let state: Shared = Arc::new(Mutex::new(NodeState::new(
        id,
        config,
        settings,
        events.clone(),
        Instant::now(),
    )));
    let (heartbeat_tx, heartbeat_rx) = watch::channel(Arc::new(lock(&state).heartbeat()));

    tokio::spawn(serve_info(service, state.clone()));
    tokio::spawn(serve_heartbeats(heartbeat, state.clone()));
    tokio::spawn(drive(state.clone(), heartbeat_tx, heartbeat_rx));

    let signal = wait_for_signal().await;
    // Returning drops the runtime with every task: heartbeats stop at once,
    // which is what a stopped container looks like to its peers.
    events.emit("shutdown", json!({"signal": signal}));
    Ok(signal)
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process can still be killed; wait forever.
        std::future::pending::<()>().await;
        return "none";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Ticks the state once per heartbeat interval, publishes the heartbeat and
/// keeps one dialer per wanted endpoint.
async fn drive(
    state: Shared,
    heartbeat_tx: watch::Sender<Arc<Heartbeat>>,
    heartbeat_rx: watch::Receiver<Arc<Heartbeat>>,
) {
    let interval = lock(&state).interval();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut dialers: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        ticker.tick().await;
        let (heartbeat, targets) = {
            let mut st = lock(&state);
            st.tick(Instant::now());
            (st.heartbeat(), st.dial_targets())
        };
        heartbeat_tx.send_replace(Arc::new(heartbeat));
        dialers.retain(|target, handle| {
            let keep = targets.contains(target) && !handle.is_finished();
            if !keep {
                handle.abort();
            }
            keep
        });
        for target in targets {
            dialers.entry(target.clone()).or_insert_with(|| {
                tokio::spawn(dial(target, state.clone(), heartbeat_rx.clone(), interval))
            });
        }
    }
}

/// Keeps a heartbeat connection to `target`, reconnecting every interval.
async fn dial(
    target: String,
    state: Shared,
    heartbeats: watch::Receiver<Arc<Heartbeat>>,
    interval: Duration,
) {
    let connect_timeout = interval.max(Duration::from_millis(500));
    loop {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(connect_timeout, TcpStream::connect(target.as_str())).await
        {
            if let Ok(local) = stream.local_addr() {
                lock(&state).learn_address(local.ip());
            }
            let _counted = Counted::new(&state, heartbeat_connections);
            send_heartbeats(stream, &target, &heartbeats, interval).await;
        }
        tokio::time::sleep(interval).await;
    }
}

async fn send_heartbeats(
    mut stream: TcpStream,
    target: &str,
    heartbeats: &watch::Receiver<Arc<Heartbeat>>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let heartbeat = heartbeats.borrow().clone();
        let line = encode_line(target, &heartbeat);
        if stream.write_all(line.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn serve_heartbeats(listener: TcpListener, state: Shared) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        if let Ok(local) = stream.local_addr() {
            lock(&state).learn_address(local.ip());
        }
        tokio::spawn(read_heartbeats(stream, peer, state.clone()));
    }
}

async fn read_heartbeats(stream: TcpStream, peer: SocketAddr, state: Shared) {
    let counted = Counted::new(&state, heartbeat_connections);
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let reason = loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) => break None,
            Err(e) => break Some(e.to_string()),
            Ok(_) if line.len() > MAX_LINE => break Some("heartbeat line too long".into()),
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let result = decode_line(text.trim_end())
            .and_then(|envelope| lock(&state).on_heartbeat(envelope, peer.ip(), Instant::now()));
        if let Err(e) = result {
            break Some(e);
        }
    };
    drop(counted);
    if let Some(reason) = reason {
        lock(&state).events().emit(
            "heartbeat_error",
            json!({"peer": peer.to_string(), "reason": reason}),
        );
    }
}

async fn serve_info(listener: TcpListener, state: Shared) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_client(stream, peer, state.clone()));
    }
}

async fn serve_client(mut stream: TcpStream, peer: SocketAddr, state: Shared) {
    let _counted = Counted::new(&state, client_connections);
    loop {
        let request = match tokio::time::timeout(IDLE_TIMEOUT, read_request(&mut stream)).await {
            Err(_) | Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                lock(&state).events().emit(
                    "protocol_error",
                    json!({"peer": peer.to_string(), "reason": e.to_string()}),
                );
                break;
            }
            Ok(Ok(Some(body))) => body,
        };
        let reply = handle_request(&mut lock(&state), &request, peer, Instant::now());
        if stream.write_all(&encode_info(&reply)).await.is_err() {
            break;
        }
    }
}
