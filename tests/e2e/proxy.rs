//! Least privilege: the operator runs behind a filtering Docker socket
//! proxy that allows exactly the endpoints `docs/docker-api.md` lists for
//! `run` (by method and path) and answers 403 to everything else — and a
//! cluster still converges, with nothing denied.
//!
//! The proxy is this test's own: a thread per connection, reading each
//! request's head, checking it against `swarm::endpoints`, and passing
//! allowed requests to the manager's socket with `Connection: close`, so
//! that every request on a connection is seen (none rides a kept-alive
//! connection past the filter). It listens on the sandbox manager's
//! bridge address, which the operator's container reaches through its
//! gateway.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aerospike_swarm_operator::swarm::endpoints::{self, DockerEndpoint, Use, ENDPOINTS};
use libtest_mimic::Failed;

use crate::operator::{create_cluster, spec_labels, wait_ready, Operator, CONVERGE};
use crate::sandbox::{docker, Sandbox, NETWORK};
use crate::TestResult;

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub allowed: bool,
    /// The fault injected into it, if any.
    pub injected: Option<Injected>,
}

/// A filtering proxy in front of a Docker socket; stops when dropped.
pub struct SocketProxy {
    pub address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    faults: Arc<Mutex<Faults>>,
}

/// Faults the proxy injects into the requests it passes, each a share in
/// per mille, drawn from a seeded generator (a failing run names its seed).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// The generator's seed.
    pub seed: u64,
    /// Answered 500 without reaching Docker.
    pub error_500: u32,
    /// Service updates answered 409 "update out of sequence" (a stale
    /// version), without reaching Docker.
    pub conflict_409: u32,
    /// Reads of one object (`GET /<kind>/<id>`) answered 404.
    pub not_found_404: u32,
    /// Held 2 s before they are passed on.
    pub delay_2s: u32,
    /// Passed on, and the reply cut after its first bytes: a write took
    /// effect, but the operator cannot know it did.
    pub cut_reply: u32,
    /// The event stream (`GET /events`) cut this long after it opened.
    pub events_for: Option<Duration>,
    /// Every update of this service id is answered 400 (a spec Docker
    /// refuses), without reaching Docker.
    pub refuse_updates_of: Option<String>,
}

/// What [`Faults`] made of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    Error500,
    Conflict409,
    NotFound404,
    Refused400,
    Delay2s,
    CutReply,
    EventsCut,
}

impl Faults {
    /// The fault for one request (at most one), from the generator `rng`.
    fn pick(&self, rng: &mut u64, method: &str, path: &str) -> Option<Injected> {
        let path = path.split('?').next().unwrap_or_default();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // `/v1.41/services/ID/update` (the version prefix is optional).
        let parts: &[&str] = match parts.first() {
            Some(v) if v.starts_with('v') && v[1..].contains('.') => &parts[1..],
            _ => &parts[..],
        };
        let update = method == "POST" && parts.len() == 3 && parts[2] == "update";
        if update && parts[0] == "services" && self.refuse_updates_of.as_deref() == Some(parts[1]) {
            return Some(Injected::Refused400);
        }
        if parts.first() == Some(&"events") {
            return None;
        }
        let mut roll = |share: u32| share > 0 && (splitmix(rng) % 1000) < share as u64;
        if roll(self.error_500) {
            return Some(Injected::Error500);
        }
        if update && parts[0] == "services" && roll(self.conflict_409) {
            return Some(Injected::Conflict409);
        }
        if method == "GET" && parts.len() == 2 && roll(self.not_found_404) {
            return Some(Injected::NotFound404);
        }
        if roll(self.delay_2s) {
            return Some(Injected::Delay2s);
        }
        if roll(self.cut_reply) {
            return Some(Injected::CutReply);
        }
        None
    }
}

/// splitmix64: the next value of the generator whose state is `state`.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SocketProxy {
    /// Listens on `bind` (port 0: any) and passes the requests `allowed`
    /// permits to the unix socket `upstream`, injecting `faults` (none:
    /// `Faults::default()`; changed later with [`SocketProxy::set_faults`]).
    pub fn start_with(
        bind: SocketAddr,
        upstream: &str,
        allowed: Vec<DockerEndpoint>,
        faults: Faults,
    ) -> Result<SocketProxy, Failed> {
        let listener = TcpListener::bind(bind).map_err(|e| format!("proxy bind {bind}: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let rng = Arc::new(Mutex::new(faults.seed));
        let faults = Arc::new(Mutex::new(faults));
        let (seen2, stop2, upstream) = (seen.clone(), stop.clone(), upstream.to_string());
        let faults2 = faults.clone();
        let allowed = Arc::new(allowed);
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (seen, allowed, upstream) =
                            (seen2.clone(), allowed.clone(), upstream.clone());
                        let (faults, rng) = (faults2.clone(), rng.clone());
                        std::thread::spawn(move || {
                            let _ = serve(client, &upstream, &allowed, &seen, &faults, &rng);
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        Ok(SocketProxy {
            address,
            seen,
            stop,
            faults,
        })
    }

    /// Replaces the faults injected from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for SocketProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One client connection: one request (the proxy closes after it).
fn serve(
    mut client: TcpStream,
    upstream: &str,
    allowed: &[DockerEndpoint],
    seen: &Mutex<Vec<Seen>>,
    faults: &Mutex<Faults>,
    rng: &Mutex<u64>,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
        if head.len() > 64 * 1024 {
            return Ok(());
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut words = text.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let ok = endpoints::allows(allowed, &method, &path);
    let faults = faults.lock().unwrap().clone();
    let injected = if ok {
        faults.pick(&mut rng.lock().unwrap(), &method, &path)
    } else {
        None
    };
    let events = path
        .split('?')
        .next()
        .unwrap_or_default()
        .ends_with("/events");
    let events_cut = faults.events_for.filter(|_| ok && events);
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        allowed: ok,
        injected: injected.or(events_cut.map(|_| Injected::EventsCut)),
    });
    let answer = |status: &str, message: &str| (status.to_string(), message.to_string());
    let synthetic = match injected {
        Some(Injected::Error500) => Some(answer(
            "500 Internal Server Error",
            "injected by the test's proxy: internal error",
        )),
        Some(Injected::Conflict409) => Some(answer(
            "409 Conflict",
            "rpc error: code = Unknown desc = update out of sequence",
        )),
        Some(Injected::NotFound404) => Some(answer(
            "404 Not Found",
            "injected by the test's proxy: no such object",
        )),
        Some(Injected::Refused400) => Some(answer(
            "400 Bad Request",
            "injected by the test's proxy: invalid spec: this update is refused",
        )),
        _ => None,
    };
    if let Some((status, message)) = synthetic {
        let body = format!("{{\"message\":\"{message}\"}}");
        write!(
            client,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return client.shutdown(Shutdown::Both);
    }
    if injected == Some(Injected::Delay2s) {
        std::thread::sleep(Duration::from_secs(2));
    }
    if !ok {
        let body = format!(
            "{{\"message\":\"denied by the test's socket proxy: {method} {}\"}}",
            path.split('?').next().unwrap_or_default()
        );
        write!(
            client,
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return client.shutdown(Shutdown::Both);
    }
    // The head again, with "Connection: close" in place of any
    // Connection header.
    let mut lines: Vec<&str> = text.trim_end_matches("\r\n").split("\r\n").collect();
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    let forwarded = format!("{}\r\nConnection: close\r\n\r\n", lines.join("\r\n"));
    let mut server = UnixStream::connect(upstream)?;
    server.write_all(forwarded.as_bytes())?;
    // The request body (if any) one way, the reply the other.
    let mut from_client = client.try_clone()?;
    let mut to_server = server.try_clone()?;
    let uplink = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    if let Some(after) = events_cut {
        let (client, server) = (client.try_clone()?, server.try_clone()?);
        std::thread::spawn(move || {
            std::thread::sleep(after);
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        });
    }
    if injected == Some(Injected::CutReply) {
        // Some of the reply (its status line, perhaps part of its head),
        // then the connection goes.
        let mut first = [0u8; 24];
        let n = server.read(&mut first)?;
        client.write_all(&first[..n])?;
    } else {
        let _ = std::io::copy(&mut server, &mut client);
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = uplink.join();
    Ok(())
}

/// The sandbox manager's address on the sandbox bridge (scripts/sandbox:
/// `$ASW_SANDBOX_SUBNET.1`), which the manager's containers reach.
fn manager_bridge_address() -> String {
    let subnet = std::env::var("ASW_SANDBOX_SUBNET").unwrap_or_else(|_| "10.213.7".into());
    format!("{subnet}.1")
}

/// A proxy on the sandbox manager's bridge address that passes the `run`
/// rows of `swarm::endpoints` to the manager's socket (injecting
/// `faults`), and an operator that reaches Docker only through it (no
/// socket mount). Drop the operator first: it is declared last.
pub(crate) fn operator_behind_proxy(faults: Faults) -> Result<(SocketProxy, Operator), Failed> {
    let run_only: Vec<DockerEndpoint> = ENDPOINTS
        .iter()
        .copied()
        .filter(|e| e.used_by == Use::Run)
        .collect();
    let bind: SocketAddr = format!("{}:0", manager_bridge_address())
        .parse()
        .map_err(|e| format!("bad bridge address: {e}"))?;
    let proxy = SocketProxy::start_with(bind, "/var/run/docker.sock", run_only, faults)?;
    let host = format!("DOCKER_HOST=tcp://{}", proxy.address);
    let operator = Operator::deploy_custom(
        &[
            "--env",
            &host,
            "--env",
            "ASW_OPERATOR_SERVICE={{.Service.Name}}",
            "--network",
            NETWORK,
        ],
        &[],
    )?;
    Ok((proxy, operator))
}

/// The operator reaches Docker only through the proxy (no socket mount),
/// which allows the `run` rows of `swarm::endpoints` and nothing else: a
/// 3-node cluster converges to Ready, no request of the operator's was
/// denied, and (the control) a request off the list is denied with 403.
pub fn the_operator_converges_a_cluster_through_a_socket_proxy_that_allows_only_the_documented_endpoints(
    sandbox: &Sandbox,
) -> TestResult {
    let (proxy, operator) = operator_behind_proxy(Faults::default())?;
    let name = "e2e-proxy";
    let _cluster = create_cluster(name, 1, false, &spec_labels("3"))?;
    wait_ready(sandbox, name, 3, CONVERGE)?;

    let seen = proxy.seen();
    let denied: Vec<String> = seen
        .iter()
        .filter(|s| !s.allowed)
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    let mut used: Vec<String> = seen
        .iter()
        .map(|s| {
            let path = s.path.split('?').next().unwrap_or_default();
            format!("{} {path}", s.method)
        })
        .collect();
    used.sort();
    used.dedup();
    println!(
        "  proxy: {} requests from the operator, {} denied; distinct: {}",
        seen.len(),
        denied.len(),
        used.len()
    );
    if seen.len() < 10 {
        return Err(format!(
            "the proxy saw only {} requests: is the operator using it? {used:?}",
            seen.len()
        )
        .into());
    }
    if !denied.is_empty() {
        return Err(format!(
            "the proxy denied requests the operator made (a call missing from \
             src/swarm/endpoints.rs?): {denied:?}"
        )
        .into());
    }

    // The control: the same proxy passes a listed request and denies one
    // off the list (a container create), so "nothing denied" above means
    // something.
    let info = raw_request(proxy.address, "GET", "/v1.41/info")?;
    if !info.starts_with("HTTP/1.1 200") {
        return Err(format!("GET /info through the proxy: {}", first_line(&info)).into());
    }
    let create = raw_request(proxy.address, "POST", "/v1.41/containers/create")?;
    if !create.starts_with("HTTP/1.1 403") {
        return Err(format!(
            "POST /containers/create through the proxy was not denied: {}",
            first_line(&create)
        )
        .into());
    }
    // The operator's own calls all went through the proxy: the
    // operator's service has no socket mount.
    let mounts = docker(&[
        "service",
        "inspect",
        "-f",
        "{{json .Spec.TaskTemplate.ContainerSpec.Mounts}}",
        operator.name(),
    ])?;
    if mounts.contains("docker.sock") {
        return Err(format!("the operator still mounts the socket: {mounts}").into());
    }
    drop(operator);
    Ok(())
}

/// One HTTP/1.1 request with an empty JSON body; the whole reply.
fn raw_request(address: SocketAddr, method: &str, path: &str) -> Result<String, Failed> {
    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect {address}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    )
    .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    Ok(reply)
}

fn first_line(reply: &str) -> &str {
    reply.lines().next().unwrap_or("(no reply)")
}
