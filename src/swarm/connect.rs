//! Connecting to Docker the way the Docker CLI does, and checking that the
//! engine can run the operator.
//!
//! The endpoint comes from `DOCKER_HOST` (`unix://PATH` or `tcp://HOST:PORT`,
//! default `unix:///var/run/docker.sock`). When `DOCKER_TLS_VERIFY` is set
//! to anything but the empty string, a tcp endpoint is spoken to over TLS,
//! verifying the engine against `ca.pem` and presenting `cert.pem`/`key.pem`
//! from `DOCKER_CERT_PATH` (default `~/.docker`), as the CLI does.
//!
//! The same [`Endpoint`] feeds both bollard (typed calls) and our small raw
//! client (the few calls whose replies bollard's models lose, see
//! [`super::raw`]), so both always talk to the same engine the same way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;

use super::error::SwarmError;
use super::raw::RawClient;
use super::DockerSwarm;

/// The Docker CLI's default endpoint.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How long one API call (up to the reply's headers) may take. Streams such
/// as events are not bounded by it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the engine is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A local unix socket.
    Unix(PathBuf),
    /// A TCP endpoint, plain or TLS.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port.
        port: u16,
        /// Client certificate and CA when TLS is on.
        tls: Option<TlsFiles>,
    },
}

/// The three PEM files the Docker CLI reads from `DOCKER_CERT_PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA that signed the engine's certificate (`ca.pem`).
    pub ca: PathBuf,
    /// Our client certificate (`cert.pem`).
    pub cert: PathBuf,
    /// Our client key (`key.pem`).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The CLI's file names inside a certificate directory.
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

impl Endpoint {
    /// Reads `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH` (and
    /// `HOME` for the default cert path) from the process environment.
    pub fn from_env() -> Result<Endpoint, SwarmError> {
        let var = |name: &str| std::env::var(name).ok();
        Endpoint::from_vars(
            var("DOCKER_HOST").as_deref(),
            var("DOCKER_TLS_VERIFY").as_deref(),
            var("DOCKER_CERT_PATH").as_deref(),
            var("HOME").as_deref(),
        )
    }

    /// As [`Endpoint::from_env`], with the variables given explicitly.
    pub fn from_vars(
        docker_host: Option<&str>,
        tls_verify: Option<&str>,
        cert_path: Option<&str>,
        home: Option<&str>,
    ) -> Result<Endpoint, SwarmError> {
        let host = docker_host
            .filter(|h| !h.is_empty())
            .unwrap_or(DEFAULT_DOCKER_HOST);
        // The CLI treats any non-empty DOCKER_TLS_VERIFY as "on".
        let tls = tls_verify.is_some_and(|v| !v.is_empty());

        if let Some(path) = host.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(SwarmError::Config(format!(
                    "DOCKER_HOST {host:?} names no socket path"
                )));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        let Some(rest) = host.strip_prefix("tcp://") else {
            return Err(SwarmError::Config(format!(
                "DOCKER_HOST {host:?} is not supported: use unix://PATH or tcp://HOST:PORT"
            )));
        };
        let authority = rest.trim_end_matches('/');
        let (name, port) = split_host_port(authority, if tls { 2376 } else { 2375 })
            .ok_or_else(|| SwarmError::Config(format!("DOCKER_HOST {host:?} has no valid host")))?;
        let tls = tls.then(|| {
            let dir = match (cert_path.filter(|p| !p.is_empty()), home) {
                (Some(dir), _) => PathBuf::from(dir),
                (None, Some(home)) => Path::new(home).join(".docker"),
                (None, None) => PathBuf::from(".docker"),
            };
            TlsFiles::in_dir(&dir)
        });
        Ok(Endpoint::Tcp {
            host: name,
            port,
            tls,
        })
    }

    /// The endpoint as a `DOCKER_HOST` URL, for messages.
    pub fn display(&self) -> String {
        match self {
            Endpoint::Unix(path) => format!("unix://{}", path.display()),
            Endpoint::Tcp { host, port, .. } if host.contains(':') => {
                format!("tcp://[{host}]:{port}")
            }
            Endpoint::Tcp { host, port, .. } => format!("tcp://{host}:{port}"),
        }
    }
}

/// Splits `host[:port]` (IPv6 in brackets), defaulting the port.
fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some((host.to_string(), port))
}

/// Connects to the engine named by the environment (see [`Endpoint::from_env`])
/// and negotiates the API version.
pub async fn connect_from_env() -> Result<DockerSwarm, SwarmError> {
    connect(&Endpoint::from_env()?).await
}

/// Connects to `endpoint` and negotiates the API version: bollard speaks a
/// newer API (1.53) than older engines (20.10 speaks 1.41), and the engine
/// refuses versions newer than its own, so we settle on the lower of both.
pub async fn connect(endpoint: &Endpoint) -> Result<DockerSwarm, SwarmError> {
    let display = endpoint.display();
    let timeout = REQUEST_TIMEOUT.as_secs();
    let version = bollard::API_DEFAULT_VERSION;
    let docker = match endpoint {
        Endpoint::Unix(path) => {
            Docker::connect_with_unix(&path.to_string_lossy(), timeout, version)
        }
        Endpoint::Tcp {
            host,
            port,
            tls: None,
        } => Docker::connect_with_http(&format!("tcp://{host}:{port}"), timeout, version),
        Endpoint::Tcp {
            host,
            port,
            tls: Some(files),
        } => {
            install_crypto_provider();
            Docker::connect_with_ssl(
                &format!("tcp://{host}:{port}"),
                &files.key,
                &files.cert,
                &files.ca,
                timeout,
                version,
            )
        }
    }
    .map_err(|e| SwarmError::from_bollard(e, &display, "connection"))?;

    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| SwarmError::from_bollard(e, &display, "API version"))?;
    let api = docker.client_version();
    let api_version = format!("{}.{}", api.major_version, api.minor_version);
    let raw = RawClient::new(endpoint, api_version, REQUEST_TIMEOUT)?;
    Ok(DockerSwarm::new(docker, raw, display))
}

/// rustls needs one process-wide crypto provider; bollard's TLS code looks
/// it up rather than passing one. Installing twice is harmless (the second
/// attempt is refused), hence the ignored result.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What [`preflight`] learned about the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineIdentity {
    /// This engine's swarm node id.
    pub node_id: String,
    /// Engine version, e.g. `20.10.24+dfsg1`.
    pub server_version: String,
    /// The API version both sides agreed on, e.g. `1.41`.
    pub api_version: String,
}

/// Refuses, with a message that says what to do, an engine the operator
/// cannot work with: one that is not in a swarm, or is a worker (workers
/// cannot see or change services).
pub async fn preflight(swarm: &DockerSwarm) -> Result<EngineIdentity, SwarmError> {
    let info = swarm
        .docker()
        .info()
        .await
        .map_err(|e| SwarmError::from_bollard(e, swarm.host(), "engine info"))?;
    let state = info
        .swarm
        .as_ref()
        .and_then(|s| s.local_node_state.as_ref())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let control = info
        .swarm
        .as_ref()
        .and_then(|s| s.control_available)
        .unwrap_or(false);
    check_swarm_role(swarm.host(), &state, control)?;
    let node_id = info.swarm.and_then(|s| s.node_id).unwrap_or_default();
    Ok(EngineIdentity {
        node_id,
        server_version: info.server_version.unwrap_or_default(),
        api_version: swarm.api_version().to_string(),
    })
}

/// The decision of [`preflight`], apart from the call, so it can be tested.
fn check_swarm_role(
    host: &str,
    local_node_state: &str,
    control_available: bool,
) -> Result<(), SwarmError> {
    if local_node_state != "active" {
        let state = if local_node_state.is_empty() {
            "unknown"
        } else {
            local_node_state
        };
        return Err(SwarmError::NotManager(format!(
            "the Docker engine at {host} is not part of an active swarm (swarm state: {state}); \
             run the operator against a swarm manager (`docker swarm init` creates one)"
        )));
    }
    if !control_available {
        return Err(SwarmError::NotManager(format!(
            "the Docker engine at {host} is a swarm worker, not a manager; \
             run the operator on a manager node (see `docker node ls` on a manager)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_local_socket() {
        assert_eq!(
            Endpoint::from_vars(None, None, None, None).unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Endpoint::from_vars(Some(""), None, None, None).unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
    }

    #[test]
    fn unix_and_tcp_hosts_parse() {
        assert_eq!(
            Endpoint::from_vars(Some("unix:///tmp/d.sock"), None, None, None).unwrap(),
            Endpoint::Unix("/tmp/d.sock".into())
        );
        assert_eq!(
            Endpoint::from_vars(Some("tcp://10.0.0.1:2375"), None, None, None).unwrap(),
            Endpoint::Tcp {
                host: "10.0.0.1".into(),
                port: 2375,
                tls: None
            }
        );
        let ep = Endpoint::from_vars(Some("tcp://[::1]"), None, None, None).unwrap();
        assert_eq!(ep.display(), "tcp://[::1]:2375");
    }

    #[test]
    fn tls_verify_uses_cert_path_and_the_tls_port() {
        let ep = Endpoint::from_vars(Some("tcp://mgr"), Some("1"), Some("/certs"), Some("/root"))
            .unwrap();
        assert_eq!(
            ep,
            Endpoint::Tcp {
                host: "mgr".into(),
                port: 2376,
                tls: Some(TlsFiles::in_dir(Path::new("/certs")))
            }
        );
        let ep =
            Endpoint::from_vars(Some("tcp://mgr:1234"), Some("1"), None, Some("/root")).unwrap();
        let Endpoint::Tcp {
            tls: Some(files),
            port,
            ..
        } = ep
        else {
            panic!("expected tls")
        };
        assert_eq!(port, 1234);
        assert_eq!(files.ca, Path::new("/root/.docker/ca.pem"));
        // An empty DOCKER_TLS_VERIFY means off, as in the CLI.
        let ep = Endpoint::from_vars(Some("tcp://mgr"), Some(""), None, None).unwrap();
        assert!(matches!(ep, Endpoint::Tcp { tls: None, .. }));
    }

    #[test]
    fn unsupported_hosts_are_refused_clearly() {
        for bad in [
            "ssh://me@host",
            "npipe:////./pipe/docker",
            "unix://",
            "tcp://:2375",
            "tcp://h:x",
        ] {
            let err = Endpoint::from_vars(Some(bad), None, None, None).unwrap_err();
            assert!(matches!(err, SwarmError::Config(_)), "{bad}: {err:?}");
            assert!(err.to_string().contains("DOCKER_HOST"), "{bad}: {err}");
        }
    }

    #[test]
    fn preflight_refuses_non_managers() {
        assert!(check_swarm_role("h", "active", true).is_ok());
        let err = check_swarm_role("h", "inactive", false).unwrap_err();
        assert!(
            err.to_string().contains("not part of an active swarm"),
            "{err}"
        );
        let err = check_swarm_role("h", "active", false).unwrap_err();
        assert!(err.to_string().contains("worker"), "{err}");
        assert!(matches!(err, SwarmError::NotManager(_)));
    }
}
