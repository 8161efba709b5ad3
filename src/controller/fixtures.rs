//! Test fixtures shared by the controller's unit tests (as controller-rs's
//! `fixtures.rs`): a cluster service, quiet run options, a controller run
//! in the background, and a log sink — one copy each instead of one per
//! test module.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::swarm::{EventKind, ServiceInfo, SwarmEvent};

use super::RunOptions;

/// A replicated service `s1` named `db` (1 replica), with `labels`.
pub fn service(labels: &[(&str, &str)]) -> ServiceInfo {
    ServiceInfo {
        id: "s1".into(),
        name: "db".into(),
        replicas: Some(1),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ServiceInfo::default()
    }
}

/// [`service`] declaring a paused 3-node cluster: a pass needs nothing but
/// the service and writes its status (Paused), so no node is asked
/// anything.
pub fn paused_cluster() -> ServiceInfo {
    service(&[
        ("aerospike.cluster.replicas", "3"),
        ("aerospike.cluster.version", "7.1.0.0"),
        ("aerospike.cluster.paused", "true"),
    ])
}

/// An `update` event of service `id`.
pub fn service_event(id: &str) -> SwarmEvent {
    SwarmEvent {
        kind: EventKind::Service,
        action: "update".into(),
        actor_id: id.into(),
        attributes: BTreeMap::new(),
    }
}

/// Run options whose periodic triggers (resync, slow poll, counters line)
/// never fire during a test, so only events, requeues and the error policy
/// explain what happens; a fast poll of 100 ms.
pub fn quiet_options() -> RunOptions {
    RunOptions {
        resync_interval: Duration::from_secs(3600),
        poll_fast: Duration::from_millis(100),
        poll_slow: Duration::from_secs(3600),
        counters_interval: Duration::from_secs(3600),
        ..RunOptions::default()
    }
}

/// Runs `run` (a controller's `run(shutdown)`) in the background until the
/// returned sender is used or dropped.
pub fn spawn_until_stopped<F, Fut>(run: F) -> (oneshot::Sender<()>, JoinHandle<()>)
where
    F: FnOnce(futures::future::BoxFuture<'static, ()>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = Box::pin(async {
        let _ = stopped.await;
    });
    (stop, tokio::spawn(run(shutdown)))
}

/// A log sink a test can read back.
#[derive(Clone, Default)]
pub struct LogSink(Arc<Mutex<Vec<u8>>>);

impl LogSink {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for LogSink {
    type Writer = LogSink;
    fn make_writer(&'w self) -> LogSink {
        self.clone()
    }
}
