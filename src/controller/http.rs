//! The operator's HTTP endpoints (`--metrics-address`, default
//! `0.0.0.0:9090`):
//!
//! - `GET /metrics`: [`Metrics::encode`], OpenMetrics text;
//! - `GET /healthz`: 200 while the control loop's runtime is alive (its
//!   heartbeat is recent), 503 otherwise;
//! - `GET /readyz`: 200 when Docker answers (the last call reached it) and
//!   this replica is the leader, or a standby that follows one; 503
//!   otherwise;
//! - anything else: 404.
//!
//! Only GET reads them (and HEAD, which is GET without the body: HTTP
//! requires a server that answers GET to answer HEAD, and probes such as
//! `curl -I` use it; it changes nothing and shows less). Every other
//! method (POST, PUT, DELETE, PATCH, OPTIONS, ...) gets 405 with
//! `Allow: GET, HEAD`, on every path: nothing here changes state. The
//! bodies carry counters, gauges and fixed words, never a secret (see the
//! tests): the Docker calls are counted by endpoint template
//! (`GET /secrets`), not by the name asked, and no label carries an
//! error's text.
//!
//! [`Health`] is the shared state behind the last two: the swarm wrapper
//! ([`super::Instrumented`]) sets `docker_ok`, the leader election sets the
//! [`Role`] (the leader when there is no election), the loop beats.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::metrics::{Metrics, CONTENT_TYPE};

/// How often the loop beats (see [`Health::beat`]).
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// How old the last heartbeat may be for `/healthz` to answer 200.
pub const LIVENESS: Duration = Duration::from_secs(15);

/// What this replica does in a leader election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Holds the lease and reconciles (also: no election configured).
    Leader = 0,
    /// Follows a live leader, ready to take over.
    Standby = 1,
    /// Neither yet: electing, or lost the lease and stepping down.
    Electing = 2,
}

impl Role {
    fn from_u8(value: u8) -> Role {
        match value {
            0 => Role::Leader,
            1 => Role::Standby,
            _ => Role::Electing,
        }
    }

    /// The spelling in the `/readyz` body.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Standby => "standby",
            Role::Electing => "electing",
        }
    }
}

/// Liveness and readiness, shared by the loop, the swarm wrapper, the
/// leader election and the HTTP server.
#[derive(Debug)]
pub struct Health {
    docker_ok: AtomicBool,
    role: AtomicU8,
    last_beat: Mutex<Instant>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            docker_ok: AtomicBool::new(false),
            role: AtomicU8::new(Role::Leader as u8),
            last_beat: Mutex::new(Instant::now()),
        }
    }
}

impl Health {
    /// Records whether the last Docker call reached Docker.
    pub fn set_docker_ok(&self, ok: bool) {
        self.docker_ok.store(ok, Ordering::Relaxed);
    }

    /// Whether the last Docker call reached Docker.
    pub fn docker_ok(&self) -> bool {
        self.docker_ok.load(Ordering::Relaxed)
    }

    /// Sets this replica's role (the leader election calls this).
    pub fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::Relaxed);
    }

    /// This replica's role.
    pub fn role(&self) -> Role {
        Role::from_u8(self.role.load(Ordering::Relaxed))
    }

    /// The loop is alive now.
    pub fn beat(&self) {
        *self.last_beat.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Whether the loop beat within [`LIVENESS`].
    pub fn is_alive(&self) -> bool {
        self.last_beat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            < LIVENESS
    }

    /// Docker answers, and this replica leads or follows.
    pub fn is_ready(&self) -> bool {
        self.docker_ok() && matches!(self.role(), Role::Leader | Role::Standby)
    }
}

/// The methods the endpoints answer (the `Allow` header of a 405).
pub const ALLOWED: &str = "GET, HEAD";

/// The paths served.
pub const PATHS: [&str; 3] = ["/metrics", "/healthz", "/readyz"];

/// Listens on `addr` (port 0 picks a free one; see
/// [`TcpListener::local_addr`]).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves the endpoints on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, health: Arc<Health>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, go on.
                warn!(error = %e, "metrics server: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (metrics, health) = (metrics.clone(), health.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<_>| {
                let response = respond(request.method(), request.uri().path(), &metrics, &health);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                debug!(peer = %peer, error = %e, "metrics server: connection ended");
            }
        });
    }
}

/// The answer to `method path`.
pub fn respond(
    method: &Method,
    path: &str,
    metrics: &Metrics,
    health: &Health,
) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
        response.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static(ALLOWED),
        );
        return response;
    }
    match path {
        "/metrics" => Response::builder()
            .status(StatusCode::OK)
            .header(hyper::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(Bytes::from(metrics.encode())))
            .expect("a valid response"),
        "/healthz" if health.is_alive() => text(StatusCode::OK, "ok\n".into()),
        "/healthz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the control loop is not beating\n".into(),
        ),
        "/readyz" => {
            let body = format!(
                "docker: {}\nrole: {}\n",
                if health.docker_ok() {
                    "ok"
                } else {
                    "unreachable"
                },
                health.role().as_str()
            );
            let status = if health.is_ready() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(status, body)
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::metrics::{parse_text, Trigger};
    use crate::controller::{Counters, Instrumented};
    use crate::swarm::{FakeSwarm, SwarmApi};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One HTTP/1.1 request over a raw socket: (status, body).
    async fn get(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
        let (status, _, body) = exchange(addr, method, path).await;
        (status, body)
    }

    /// One HTTP/1.1 request over a raw socket (with a small body for the
    /// methods that carry one): (status, head, body).
    async fn exchange(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body = if matches!(method, "POST" | "PUT" | "PATCH") {
            "x=1"
        } else {
            ""
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        let status = reply
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status: {reply}"));
        let (head, body) = reply
            .split_once("\r\n\r\n")
            .map(|(head, body)| (head.to_string(), body.to_string()))
            .unwrap_or_default();
        (status, head, body)
    }

    async fn server() -> (SocketAddr, Arc<Metrics>, Arc<Health>) {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::default());
        tokio::spawn(serve(listener, metrics.clone(), health.clone()));
        (addr, metrics, health)
    }

    #[tokio::test]
    async fn the_endpoints_answer() {
        let (addr, metrics, health) = server().await;
        metrics.reconcile_started(Trigger::Event).cluster("db");
        let (status, body) = get(addr, "GET", "/metrics").await;
        assert_eq!(status, 200);
        let samples = parse_text(&body).unwrap();
        assert!(samples
            .iter()
            .any(|s| s.name == "asw_reconciles_total" && s.labels["trigger"] == "event"));
        assert_eq!(get(addr, "GET", "/healthz").await, (200, "ok\n".into()));
        assert_eq!(get(addr, "GET", "/nope").await.0, 404);
        assert_eq!(get(addr, "POST", "/metrics").await.0, 405);
        assert_eq!(get(addr, "HEAD", "/healthz").await.0, 200);
        // Query strings are ignored.
        assert_eq!(get(addr, "GET", "/metrics?x=1").await.0, 200);
        let _ = health;
    }

    #[tokio::test]
    async fn every_endpoint_answers_get_and_head_only() {
        let (addr, metrics, health) = server().await;
        health.set_docker_ok(true);
        metrics.reconcile_started(Trigger::Event).cluster("db");
        for path in PATHS {
            let (status, head, body) = exchange(addr, "GET", path).await;
            assert_eq!(status, 200, "GET {path}: {body}");
            assert!(!body.is_empty(), "GET {path}");
            // HEAD: the same status, no body.
            let (status, head_only, rest) = exchange(addr, "HEAD", path).await;
            assert_eq!(status, 200, "HEAD {path}");
            assert_eq!(rest, "", "HEAD {path} sent a body");
            let content_type = |h: &str| {
                h.lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("content-type:"))
                    .map(str::to_string)
            };
            assert_eq!(content_type(&head_only), content_type(&head), "HEAD {path}");
            for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"] {
                let (status, head, body) = exchange(addr, method, path).await;
                assert_eq!(status, 405, "{method} {path}: {body}");
                assert!(
                    head.to_ascii_lowercase().contains("\r\nallow: get, head"),
                    "{method} {path}: {head}"
                );
                assert_eq!(body, "only GET\n");
            }
        }
        // A method refused changed nothing: the counters read as before.
        let before = get(addr, "GET", "/metrics").await.1;
        exchange(addr, "POST", "/metrics").await;
        exchange(addr, "DELETE", "/metrics").await;
        assert_eq!(get(addr, "GET", "/metrics").await.1, before);
        // Unknown paths: 404 to GET, 405 to the rest.
        assert_eq!(get(addr, "GET", "/secrets").await.0, 404);
        assert_eq!(get(addr, "PUT", "/secrets").await.0, 405);
    }

    /// Every Docker call about a secret, counted and failing (the error
    /// names it): none of the three bodies shows the secret's name,
    /// while a cluster's name (meant to be shown) does — the control that
    /// the search would find a leak.
    #[tokio::test]
    async fn no_endpoint_reveals_a_secret() {
        use crate::swarm::{SecretMount, ServiceChange, ServiceInfo};
        const MARK: &str = "s3cret-MARK";
        let (addr, metrics, health) = server().await;
        let fake = FakeSwarm::new();
        fake.add_secret(&format!("{MARK}.conf"));
        fake.put_service(ServiceInfo {
            id: "s1".into(),
            name: "db-visible".into(),
            ..ServiceInfo::default()
        });
        let api = Instrumented::new(fake.clone(), Arc::new(Counters::default()))
            .with_metrics(metrics.clone())
            .with_health(health.clone());
        assert!(api.secret_exists(&format!("{MARK}.conf")).await.unwrap());
        assert!(!api.secret_exists(&format!("{MARK}-gone")).await.unwrap());
        let change = ServiceChange {
            secret_at_target: Some(SecretMount {
                name: format!("{MARK}-missing"),
                target: "aerospike.conf".into(),
            }),
            ..ServiceChange::default()
        };
        let version = fake.service("s1").unwrap().version;
        let error = api
            .update_service("s1", version, &change)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains(MARK),
            "the error names it: {error}"
        );
        // Info errors are counted by command, a `&'static str`: a node's
        // error text has no way into a label.
        metrics.info_error("observe");
        metrics
            .reconcile_started(Trigger::Event)
            .cluster("db-visible");

        let mut bodies = String::new();
        for path in PATHS {
            bodies.push_str(&get(addr, "GET", path).await.1);
        }
        assert!(!bodies.contains(MARK), "{bodies}");
        assert!(bodies.contains("asw_docker_requests_total{endpoint=\"GET /secrets\""));
        assert!(bodies.contains("cluster=\"db-visible\""), "{bodies}");
    }

    #[tokio::test]
    async fn readyz_follows_docker_and_the_role() {
        let (addr, _metrics, health) = server().await;
        // Nothing has reached Docker yet.
        let (status, body) = get(addr, "GET", "/readyz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("docker: unreachable"), "{body}");

        // The swarm wrapper flips it with each call.
        let fake = FakeSwarm::new();
        let api = Instrumented::new(fake.clone(), Arc::new(Counters::default()))
            .with_health(health.clone());
        api.list_nodes().await.unwrap();
        assert_eq!(get(addr, "GET", "/readyz").await.0, 200);
        // A 404 is an answer: still ready.
        assert!(api.inspect_service("gone").await.is_err());
        assert_eq!(get(addr, "GET", "/readyz").await.0, 200);
        fake.set_unreachable(true);
        assert!(api.list_nodes().await.is_err());
        assert_eq!(get(addr, "GET", "/readyz").await.0, 503);
        fake.set_unreachable(false);
        api.list_services().await.unwrap();
        assert_eq!(get(addr, "GET", "/readyz").await.0, 200);

        // A standby that follows is ready; one still electing is not.
        health.set_role(Role::Standby);
        assert_eq!(
            get(addr, "GET", "/readyz").await,
            (200, "docker: ok\nrole: standby\n".into())
        );
        health.set_role(Role::Electing);
        assert_eq!(get(addr, "GET", "/readyz").await.0, 503);
        health.set_role(Role::Leader);
        assert_eq!(get(addr, "GET", "/readyz").await.0, 200);
    }

    #[tokio::test]
    async fn instrumented_counts_calls_and_errors_by_endpoint() {
        let fake = FakeSwarm::new();
        let metrics = Arc::new(Metrics::new());
        let counters = Arc::new(Counters::default());
        let api = Instrumented::new(fake.clone(), counters.clone()).with_metrics(metrics.clone());
        api.list_nodes().await.unwrap();
        assert!(api.inspect_service("gone").await.is_err());
        fake.set_unreachable(true);
        assert!(api.list_nodes().await.is_err());
        let samples = parse_text(&metrics.encode()).unwrap();
        let find = |name: &str, endpoint: &str, kind: Option<&str>| {
            samples
                .iter()
                .find(|s| {
                    s.name == name
                        && s.labels["endpoint"] == endpoint
                        && kind.is_none_or(|k| s.labels["kind"] == k)
                })
                .map(|s| s.value)
        };
        assert_eq!(
            find("asw_docker_requests_total", "GET /nodes", None),
            Some(2.0)
        );
        assert_eq!(
            find(
                "asw_docker_errors_total",
                "GET /nodes",
                Some("docker_unreachable")
            ),
            Some(1.0)
        );
        assert_eq!(
            find(
                "asw_docker_errors_total",
                "GET /services/{id}",
                Some("not_found")
            ),
            Some(1.0)
        );
        assert_eq!(counters.snapshot().docker_reads, 3);
    }

    #[test]
    fn healthz_fails_when_the_heartbeat_stops() {
        let health = Health::default();
        assert!(health.is_alive());
        *health.last_beat.lock().unwrap() = Instant::now() - LIVENESS - Duration::from_secs(1);
        assert!(!health.is_alive());
        let metrics = Metrics::new();
        assert_eq!(
            respond(&Method::GET, "/healthz", &metrics, &health).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.beat();
        assert_eq!(
            respond(&Method::GET, "/healthz", &metrics, &health).status(),
            StatusCode::OK
        );
    }
}
