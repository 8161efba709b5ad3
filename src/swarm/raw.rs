//! A minimal HTTP/1 client for the few Docker calls bollard cannot do for us.
//!
//! bollard deserializes every reply into its typed models and has no public
//! way to send a request and keep the JSON. Three of our calls need the JSON:
//!
//! - `GET /tasks`: bollard's `Task` has no `NetworksAttachments`, which is
//!   the only place task addresses appear (DNS hides tasks that are not
//!   yet healthy).
//! - `GET /services/ID`: bollard's `Service` has no `PreviousSpec`, which
//!   tells whether the last update only wrote status labels.
//! - service updates: we must write back exactly the spec the engine
//!   stored, edited only where asked. Round-tripping it through typed
//!   models could drop or add fields, and a changed `TaskTemplate` rolls
//!   every task.
//!
//! Each request opens its own connection (unix socket, TCP, or TLS over
//! TCP, configured like bollard from the same [`Endpoint`]); these calls
//! are infrequent enough that pooling is not worth its code.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::connect::{Endpoint, TlsFiles};
use super::error::SwarmError;

/// Where the raw client sends requests.
#[derive(Clone)]
enum Target {
    Unix(PathBuf),
    Tcp {
        host: String,
        port: u16,
    },
    Tls {
        host: String,
        port: u16,
        server_name: ServerName<'static>,
        connector: tokio_rustls::TlsConnector,
    },
}

/// A raw JSON client for the Docker Engine API.
#[derive(Clone)]
pub(crate) struct RawClient {
    target: Target,
    /// The endpoint as text, for errors.
    host: String,
    /// Negotiated API version, e.g. `1.41`; every path is prefixed with it
    /// so the engine answers in the dialect bollard also speaks.
    api_version: String,
    timeout: Duration,
}

impl RawClient {
    /// Prepares a client for `endpoint` (reading TLS files now, so a bad
    /// path is reported at startup rather than on the first call).
    pub(crate) fn new(
        endpoint: &Endpoint,
        api_version: String,
        timeout: Duration,
    ) -> Result<RawClient, SwarmError> {
        let target = match endpoint {
            Endpoint::Unix(path) => Target::Unix(path.clone()),
            Endpoint::Tcp {
                host,
                port,
                tls: None,
            } => Target::Tcp {
                host: host.clone(),
                port: *port,
            },
            Endpoint::Tcp {
                host,
                port,
                tls: Some(files),
            } => Target::Tls {
                host: host.clone(),
                port: *port,
                server_name: ServerName::try_from(host.clone()).map_err(|e| {
                    SwarmError::Config(format!("{host:?} is not a valid TLS server name: {e}"))
                })?,
                connector: tokio_rustls::TlsConnector::from(Arc::new(tls_config(files)?)),
            },
        };
        Ok(RawClient {
            target,
            host: endpoint.display(),
            api_version,
            timeout,
        })
    }

    /// The negotiated API version, e.g. `1.41`.
    pub(crate) fn api_version(&self) -> &str {
        &self.api_version
    }

    /// `GET path` and decode the JSON reply. `what` names the object for
    /// errors (e.g. `service "db"`).
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        what: &str,
    ) -> Result<T, SwarmError> {
        let body = self.call(Method::GET, path_and_query, None, what).await?;
        serde_json::from_slice(&body).map_err(|e| SwarmError::Decode {
            context: what.to_string(),
            message: e.to_string(),
        })
    }

    /// `POST path` with a JSON body; returns the reply body.
    pub(crate) async fn post_json(
        &self,
        path_and_query: &str,
        body: &serde_json::Value,
        what: &str,
    ) -> Result<Bytes, SwarmError> {
        let body = serde_json::to_vec(body).map_err(|e| SwarmError::Decode {
            context: what.to_string(),
            message: format!("cannot encode request: {e}"),
        })?;
        self.call(Method::POST, path_and_query, Some(body), what)
            .await
    }

    /// One request; non-2xx replies become errors via
    /// [`SwarmError::from_reply`].
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        what: &str,
    ) -> Result<Bytes, SwarmError> {
        let request = self.exchange(method, path_and_query, body);
        let (status, body) =
            tokio::time::timeout(self.timeout, request)
                .await
                .map_err(|_| {
                    self.unreachable(format!("no reply within {:?}", self.timeout).into())
                })??;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        #[derive(serde::Deserialize)]
        struct ErrorReply {
            message: String,
        }
        let message = serde_json::from_slice::<ErrorReply>(&body)
            .map(|r| r.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_string());
        Err(SwarmError::from_reply(status, message, what))
    }

    async fn exchange(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Bytes), SwarmError> {
        let uri = format!("/v{}{}", self.api_version, path_and_query);
        let (authority, has_body) = match &self.target {
            // Docker ignores the Host header on a unix socket, but HTTP/1.1
            // requires one; the CLI sends "docker" there too.
            Target::Unix(_) => ("docker".to_string(), body.is_some()),
            Target::Tcp { host, port } | Target::Tls { host, port, .. } => {
                (format!("{host}:{port}"), body.is_some())
            }
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::HOST, authority);
        if has_body {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| self.unreachable(Box::new(e)))?;

        match &self.target {
            Target::Unix(path) => {
                let stream = UnixStream::connect(path)
                    .await
                    .map_err(|e| self.unreachable(Box::new(e)))?;
                self.send_over(stream, request).await
            }
            Target::Tcp { host, port } => {
                let stream = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| self.unreachable(Box::new(e)))?;
                self.send_over(stream, request).await
            }
            Target::Tls {
                host,
                port,
                server_name,
                connector,
            } => {
                let tcp = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| self.unreachable(Box::new(e)))?;
                let stream = connector
                    .connect(server_name.clone(), tcp)
                    .await
                    .map_err(|e| self.unreachable(Box::new(e)))?;
                self.send_over(stream, request).await
            }
        }
    }

    async fn send_over<S>(
        &self,
        stream: S,
        request: Request<Full<Bytes>>,
    ) -> Result<(u16, Bytes), SwarmError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(Box::new(e)))?;
        // The connection future drives the socket; it ends when the
        // response has been read and `sender` is dropped.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "docker raw connection closed with an error");
            }
        });
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(Box::new(e)))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.unreachable(Box::new(e)))?
            .to_bytes();
        Ok((status, body))
    }

    fn unreachable(&self, source: super::error::BoxError) -> SwarmError {
        SwarmError::Unreachable {
            host: self.host.clone(),
            source,
        }
    }
}

/// A rustls client config as the Docker CLI's: trust only `ca.pem`, present
/// `cert.pem` + `key.pem`.
fn tls_config(files: &TlsFiles) -> Result<rustls::ClientConfig, SwarmError> {
    let bad = |path: &std::path::Path, e: &dyn std::fmt::Display| {
        SwarmError::Config(format!("cannot read {}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&files.ca).map_err(|e| bad(&files.ca, &e))? {
        roots
            .add(cert.map_err(|e| bad(&files.ca, &e))?)
            .map_err(|e| bad(&files.ca, &e))?;
    }
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| bad(&files.cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&files.cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad(&files.key, &e))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| SwarmError::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| SwarmError::Config(format!("TLS client certificate: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tls_files_are_a_config_error() {
        let endpoint = Endpoint::Tcp {
            host: "mgr".into(),
            port: 2376,
            tls: Some(TlsFiles::in_dir(std::path::Path::new("/nonexistent-certs"))),
        };
        let err = RawClient::new(&endpoint, "1.41".into(), Duration::from_secs(1))
            .err()
            .expect("must fail");
        assert!(matches!(err, SwarmError::Config(_)), "{err:?}");
        assert!(
            err.to_string().contains("/nonexistent-certs/ca.pem"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_absent_socket_is_unreachable_not_a_panic() {
        let client = RawClient::new(
            &Endpoint::Unix("/nonexistent/docker.sock".into()),
            "1.41".into(),
            Duration::from_secs(1),
        )
        .unwrap();
        let err = client
            .get_json::<serde_json::Value>("/tasks", "tasks")
            .await
            .unwrap_err();
        assert!(matches!(err, SwarmError::Unreachable { .. }), "{err:?}");
        assert!(
            err.to_string().contains("unix:///nonexistent/docker.sock"),
            "{err}"
        );
    }
}
