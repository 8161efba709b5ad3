//! `DOCKER_TLS_VERIFY` connections, checked against an in-process TLS
//! server that requires a client certificate, the way a TLS-enabled
//! dockerd does (`--tlsverify`). Both clients are exercised: bollard's
//! (version negotiation) and our raw one (tasks).

use std::path::Path;
use std::sync::Arc;

use aerospike_swarm_operator::swarm::{self, Endpoint, SwarmApi, SwarmError, TaskFilter, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Writes ca.pem, cert.pem, key.pem (client) into `dir`; returns the
/// server's certificate chain and key, signed by the same CA.
fn make_certs(dir: &Path) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["operator".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();

    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), client.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), client_key.serialize_pem()).unwrap();
    let server_chain = vec![server.der().clone()];
    let server_key = PrivateKeyDer::from_pem_slice(server_key.serialize_pem().as_bytes()).unwrap();
    (server_chain, server_key, ca.pem())
}

/// A TLS server answering `/version` and `/tasks` like a 1.41 engine;
/// clients without a certificate from the CA are refused in the handshake.
async fn serve(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    ca_pem: String,
) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let body = if head.contains(" /version ") || head.contains("/version HTTP") {
                    r#"{"ApiVersion":"1.41","Version":"20.10.24"}"#
                } else if head.starts_with("GET /v1.41/tasks ") {
                    r#"[{"ID":"t1","ServiceID":"s1","NodeID":"n1","DesiredState":"running",
                        "Status":{"State":"running","Message":"started"},
                        "NetworksAttachments":[{"Network":{"ID":"net"},"Addresses":["10.0.1.5/24"]}]}]"#
                } else {
                    r#"{"message":"unexpected request"}"#
                };
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn tls_verify_connects_negotiates_and_reads_tasks() {
    let dir = std::env::temp_dir().join(format!("swarmtest-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (chain, key, ca_pem) = make_certs(&dir);
    let port = serve(chain, key, ca_pem).await;

    let endpoint = Endpoint::from_vars(
        Some(&format!("tcp://localhost:{port}")),
        Some("1"),
        Some(dir.to_str().unwrap()),
        None,
    )
    .unwrap();
    assert!(matches!(endpoint, Endpoint::Tcp { tls: Some(_), .. }));
    let api = swarm::connect(&endpoint)
        .await
        .expect("TLS connect and negotiate");
    assert_eq!(api.api_version(), "1.41");
    let tasks = api
        .list_tasks(&TaskFilter::all())
        .await
        .expect("tasks over TLS");
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        tasks[0].address_on("net"),
        Some("10.0.1.5".parse().unwrap())
    );

    // The server refuses a client whose certificate it does not trust.
    let stranger = dir.join("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    let (_, _, _) = make_certs(&stranger);
    std::fs::copy(dir.join("ca.pem"), stranger.join("ca.pem")).unwrap();
    let endpoint = Endpoint::Tcp {
        host: "localhost".into(),
        port,
        tls: Some(TlsFiles::in_dir(&stranger)),
    };
    let err = swarm::connect(&endpoint).await.unwrap_err();
    assert!(matches!(err, SwarmError::Unreachable { .. }), "{err:?}");

    std::fs::remove_dir_all(&dir).unwrap();
}
