//! The operator's HTTP endpoints (`--metrics-address`, default
//! `0.0.0.0:9090`):
//!
//! - `GET /metrics`: [`Metrics::encode`], OpenMetrics text;
//! - `GET /healthz`: 200 while the control loop's runtime is alive (its
//!   heartbeat is recent), 503 otherwise;
//! - `GET /readyz`: 200 when Docker answers (the last call reached it) and
//!   this replica is the leader, or a standby that follows one; 503
//!   otherwise;
//! - anything else: 404 (405 for a method other than GET or HEAD).
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
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
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
