//! The operator never reads a secret's contents, checked on the real
//! Docker client ([`swarm::DockerSwarm`]) against an in-process engine.
//!
//! A real engine never returns a secret's `Spec.Data` (`GET /secrets`
//! leaves it out). This one does, as a hostile or broken engine (or proxy)
//! might: every secret it lists carries the contents. Through the calls
//! that touch secrets — `secret_exists` (the config secret's check), a
//! service update that mounts a secret (a config rotation) and one whose
//! secret is missing — the contents appear in no value returned, no error,
//! no request the operator sends back (the update body names the secret by
//! id and name only) and no log line, at TRACE. The control: the engine did
//! send them (its reply bytes are searched the same way).

use std::sync::{Arc, Mutex};

use aerospike_swarm_operator::swarm::{
    self, Endpoint, SecretMount, ServiceChange, SwarmApi, SwarmError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The secret's contents, as the engine would send them.
const CONTENTS: &str = "service { user hunter2-7d3f } # the config secret";

/// What the engine saw and said: (request line, request body, reply).
type Exchanges = Arc<Mutex<Vec<(String, String, String)>>>;

/// `CONTENTS` base64-encoded, as `Spec.Data` carries it.
fn data() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = CONTENTS.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn answer(method: &str, path: &str) -> (u16, String) {
    let secret = format!(
        r#"{{"ID":"sec1","Version":{{"Index":3}},"Spec":{{"Name":"aerospike.conf","Labels":{{}},"Data":"{}"}}}}"#,
        data()
    );
    let path = path.split('?').next().unwrap_or_default();
    let path = path
        .strip_prefix("/v1.41")
        .or_else(|| path.strip_prefix("/v1.43"))
        .unwrap_or(path);
    match (method, path) {
        (_, "/version") => (200, r#"{"ApiVersion":"1.41","Version":"20.10.24"}"#.into()),
        ("GET", "/secrets") => (200, format!("[{secret}]")),
        ("GET", "/secrets/sec1") => (200, secret),
        ("GET", "/services/s1") => (
            200,
            r#"{"ID":"s1","Version":{"Index":5},"Spec":{"Name":"db","Labels":{},
                "TaskTemplate":{"ContainerSpec":{"Image":"aerospike/aerospike-server:7.1.0.0"}},
                "Mode":{"Replicated":{"Replicas":3}}}}"#
                .into(),
        ),
        ("POST", "/services/s1/update") => (200, r#"{"Warnings":[]}"#.into()),
        _ => (404, r#"{"message":"not here"}"#.into()),
    }
}

/// A plain-HTTP engine on 127.0.0.1 recording every exchange.
async fn engine() -> (u16, Exchanges) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Exchanges = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    // One request: the head, then Content-Length bytes.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body =
                        String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
                    buf.drain(..head_end + length);
                    let line = head.lines().next().unwrap_or_default().to_string();
                    let mut words = line.split_whitespace();
                    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                    let (status, reply) = answer(method, path);
                    record
                        .lock()
                        .unwrap()
                        .push((line.clone(), body, reply.clone()));
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// A log sink the test reads back.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Sink {
    type Writer = Sink;
    fn make_writer(&'w self) -> Sink {
        self.clone()
    }
}

#[tokio::test]
async fn a_secrets_data_sent_by_the_engine_goes_nowhere() {
    let sink = Sink::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(sink.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _logs = tracing::subscriber::set_default(subscriber);

    let (port, seen) = engine().await;
    let endpoint =
        Endpoint::from_vars(Some(&format!("tcp://127.0.0.1:{port}")), None, None, None).unwrap();
    let api = swarm::connect(&endpoint).await.expect("connect");

    let mut results = Vec::new();
    results.push(format!("{:?}", api.secret_exists("aerospike.conf").await));
    results.push(format!("{:?}", api.secret_exists("other").await));
    let mount = |name: &str| ServiceChange {
        secret_at_target: Some(SecretMount {
            name: name.into(),
            target: "aerospike.conf".into(),
        }),
        ..ServiceChange::default()
    };
    let rotated = api.update_service("s1", 5, &mount("aerospike.conf")).await;
    assert!(rotated.is_ok(), "{rotated:?}");
    results.push(format!("{rotated:?}"));
    let missing = api.update_service("s1", 5, &mount("gone.conf")).await;
    assert!(
        matches!(missing, Err(SwarmError::NotFound { .. })),
        "{missing:?}"
    );
    results.push(format!("{missing:?}"));
    if let Err(e) = &missing {
        results.push(e.to_string());
    }

    let seen = seen.lock().unwrap().clone();
    let needles = [CONTENTS.to_string(), "hunter2".to_string(), data()];
    // The control: the engine did hand the data over, and the search finds
    // it where it is.
    let replies: String = seen.iter().map(|(_, _, r)| r.as_str()).collect();
    assert!(replies.contains(&data()), "{replies}");
    assert_eq!(results[0], "Ok(true)");
    assert_eq!(results[1], "Ok(false)");
    // The update that mounts it names it by id and name, and carries no data.
    let update = seen
        .iter()
        .find(|(line, _, _)| line.starts_with("POST ") && line.contains("/services/s1/update"))
        .expect("the rotation's update");
    assert!(
        update.1.contains("\"SecretID\":\"sec1\"") && update.1.contains("aerospike.conf"),
        "{}",
        update.1
    );
    let sent: String = seen
        .iter()
        .map(|(line, body, _)| format!("{line}\n{body}\n"))
        .collect();
    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.is_empty(), "the log is captured");
    for needle in &needles {
        for (what, text) in [
            ("a result or error", results.join("\n")),
            ("a request", sent.clone()),
            ("the log", logs.clone()),
        ] {
            assert!(
                !text.contains(needle.as_str()),
                "{what} carries the secret: {text}"
            );
        }
    }
    // Only list calls: the operator never asks for one secret by id.
    assert!(
        !seen.iter().any(|(line, _, _)| line.contains("/secrets/")),
        "{seen:?}"
    );
}
