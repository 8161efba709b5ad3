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
}

/// A filtering proxy in front of a Docker socket; stops when dropped.
pub struct SocketProxy {
    pub address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl SocketProxy {
    /// Listens on `bind` (port 0: any) and passes the requests `allowed`
    /// permits to the unix socket `upstream`.
    pub fn start(
        bind: SocketAddr,
        upstream: &str,
        allowed: Vec<DockerEndpoint>,
    ) -> Result<SocketProxy, Failed> {
        let listener = TcpListener::bind(bind).map_err(|e| format!("proxy bind {bind}: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2, upstream) = (seen.clone(), stop.clone(), upstream.to_string());
        let allowed = Arc::new(allowed);
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (seen, allowed, upstream) =
                            (seen2.clone(), allowed.clone(), upstream.clone());
                        std::thread::spawn(move || {
                            let _ = serve(client, &upstream, &allowed, &seen);
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
        })
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
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        allowed: ok,
    });
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
    let _ = std::io::copy(&mut server, &mut client);
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

/// The operator reaches Docker only through the proxy (no socket mount),
/// which allows the `run` rows of `swarm::endpoints` and nothing else: a
/// 3-node cluster converges to Ready, no request of the operator's was
/// denied, and (the control) a request off the list is denied with 403.
pub fn the_operator_converges_a_cluster_through_a_socket_proxy_that_allows_only_the_documented_endpoints(
    sandbox: &Sandbox,
) -> TestResult {
    let run_only: Vec<DockerEndpoint> = ENDPOINTS
        .iter()
        .copied()
        .filter(|e| e.used_by == Use::Run)
        .collect();
    let bind: SocketAddr = format!("{}:0", manager_bridge_address())
        .parse()
        .map_err(|e| format!("bad bridge address: {e}"))?;
    let proxy = SocketProxy::start(bind, "/var/run/docker.sock", run_only)?;
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
