//! [`LeaseStore`]: the one swarm object leader election needs, a config
//! whose labels are updated with swarm's own optimistic concurrency.
//!
//! Swarm has no lease API, but every object carries a `Version.Index`, and
//! `POST /configs/{id}/update?version=N` (only the labels of a config may
//! change) is refused with "update out of sequence" when `N` is not the
//! stored version: a compare-and-swap. Creation races are settled by the
//! name: a second `POST /configs/create` of the same name gets 409.
//!
//! This is a trait of its own rather than more of [`super::SwarmApi`]: the
//! reconciler never touches the lease, and the elector needs nothing else.
//! [`super::DockerSwarm`] implements it over bollard; [`FakeLeaseStore`]
//! in memory, with the same version checks, for the election's tests.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use bollard::models::ConfigSpec;
use bollard::query_parameters::UpdateConfigOptions;

use super::docker::DockerSwarm;
use super::error::SwarmError;

/// A swarm config as the elector sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigObject {
    /// The config's id.
    pub id: String,
    /// Its `Version.Index`: what an update must name.
    pub version: u64,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// Reads, creates and compare-and-swaps the labels of one swarm config.
pub trait LeaseStore: Send + Sync + 'static {
    /// The config named exactly `name`, or `None`.
    fn read_config(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ConfigObject>, SwarmError>> + Send;

    /// Creates config `name` with `labels` (and a short fixed body). A name
    /// that exists already gives [`SwarmError::Api`] with status 409: see
    /// [`is_conflict`].
    fn create_config(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), SwarmError>> + Send;

    /// Replaces the labels of config `id`, read at `version`. A stale
    /// version gives [`SwarmError::OutOfSequence`] and changes nothing.
    fn update_config_labels(
        &self,
        id: &str,
        version: u64,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), SwarmError>> + Send;
}

/// True for the reply to a create whose name is taken (HTTP 409).
pub fn is_conflict(error: &SwarmError) -> bool {
    matches!(error, SwarmError::Api { status: 409, .. })
}

/// The body of the lease config. Swarm requires some data; nothing reads it.
const LEASE_BODY: &str = "aerospike-swarm-operator leader lease: see the labels\n";

impl LeaseStore for DockerSwarm {
    async fn read_config(&self, name: &str) -> Result<Option<ConfigObject>, SwarmError> {
        let what = format!("config {name:?}");
        // Inspect by name: the engine resolves an exact name (and id
        // prefixes, which a name with a dot never is).
        match self.docker().inspect_config(name).await {
            Ok(config) => {
                let spec = config.spec.unwrap_or_default();
                if spec.name.as_deref() != Some(name) {
                    return Ok(None);
                }
                let version =
                    config
                        .version
                        .and_then(|v| v.index)
                        .ok_or_else(|| SwarmError::Decode {
                            context: what.clone(),
                            message: "config has no Version.Index".into(),
                        })?;
                Ok(Some(ConfigObject {
                    id: config.id.unwrap_or_default(),
                    version,
                    labels: spec.labels.unwrap_or_default().into_iter().collect(),
                }))
            }
            Err(e) => {
                let error = SwarmError::from_bollard(e, self.host(), &what);
                if error.is_not_found() {
                    Ok(None)
                } else {
                    Err(error)
                }
            }
        }
    }

    async fn create_config(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), SwarmError> {
        create_config_with_body(self, name, labels, LEASE_BODY).await
    }

    async fn update_config_labels(
        &self,
        id: &str,
        version: u64,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), SwarmError> {
        let what = format!("config {id:?}");
        let err = |e| SwarmError::from_bollard(e, self.host(), &what);
        // The update must repeat the rest of the spec as stored.
        let current = self.docker().inspect_config(id).await.map_err(err)?;
        let mut spec = current.spec.unwrap_or_default();
        spec.labels = Some(labels.clone().into_iter().collect());
        let version = i64::try_from(version).map_err(|_| SwarmError::InvalidChange {
            service: what.clone(),
            reason: format!("version {version} is out of range"),
        })?;
        self.docker()
            .update_config(id, spec, UpdateConfigOptions { version })
            .await
            .map_err(|e| SwarmError::from_bollard(e, self.host(), &what))
    }
}

/// Creates config `name` with `labels` and `body` as its data.
pub(super) async fn create_config_with_body(
    docker: &DockerSwarm,
    name: &str,
    labels: &BTreeMap<String, String>,
    body: &str,
) -> Result<(), SwarmError> {
    use base64_body::encode;
    let spec = ConfigSpec {
        name: Some(name.to_string()),
        labels: Some(labels.clone().into_iter().collect::<HashMap<_, _>>()),
        data: Some(encode(body.as_bytes())),
        ..ConfigSpec::default()
    };
    docker
        .docker()
        .create_config(spec)
        .await
        .map(|_| ())
        .map_err(|e| SwarmError::from_bollard(e, docker.host(), &format!("config {name:?}")))
}

/// Standard base64 of a short constant, without a dependency for it.
mod base64_body {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[cfg(test)]
    #[test]
    fn encodes_as_standard_base64() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg==");
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode(b"foobar"), "Zm9vYmFy");
    }
}

/// An in-memory [`LeaseStore`] that checks versions as swarm does. Cloning
/// shares the store, so two electors in one test race on the same config.
#[derive(Debug, Clone, Default)]
pub struct FakeLeaseStore {
    state: Arc<Mutex<FakeState>>,
}

#[derive(Debug, Default)]
struct FakeState {
    next_index: u64,
    configs: BTreeMap<String, ConfigObject>,
    /// Names of electors (by the `holder` label they write) whose calls
    /// fail as if Docker could not be reached.
    cut_off: Vec<String>,
    /// Every successful write: (config name, labels written).
    writes: Vec<BTreeMap<String, String>>,
}

impl FakeLeaseStore {
    /// An empty store.
    pub fn new() -> FakeLeaseStore {
        FakeLeaseStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The config named `name`, as stored.
    pub fn config(&self, name: &str) -> Option<ConfigObject> {
        self.lock().configs.get(name).cloned()
    }

    /// Every successful write's labels, in order.
    pub fn writes(&self) -> Vec<BTreeMap<String, String>> {
        self.lock().writes.clone()
    }

    /// A view of this store for one client: its calls fail while
    /// [`FakeLeaseStore::cut_off`] names `client`.
    pub fn client(&self, client: &str) -> FakeLeaseClient {
        FakeLeaseClient {
            store: self.clone(),
            client: client.to_string(),
        }
    }

    /// Makes every call of `client` fail (`true`) or work again.
    pub fn cut_off(&self, client: &str, cut: bool) {
        let mut state = self.lock();
        state.cut_off.retain(|c| c != client);
        if cut {
            state.cut_off.push(client.to_string());
        }
    }

    /// Bumps the config's version without changing it (someone else's
    /// write), as a stale-CAS test needs.
    pub fn touch(&self, name: &str) {
        let mut state = self.lock();
        state.next_index += 1;
        let index = state.next_index;
        if let Some(config) = state.configs.get_mut(name) {
            config.version = index;
        }
    }
}

/// One client's view of a [`FakeLeaseStore`].
#[derive(Debug, Clone)]
pub struct FakeLeaseClient {
    store: FakeLeaseStore,
    client: String,
}

impl FakeLeaseClient {
    fn check(&self, state: &FakeState) -> Result<(), SwarmError> {
        if state.cut_off.contains(&self.client) {
            return Err(SwarmError::Unreachable {
                host: "fake://lease".into(),
                source: format!("{} is cut off", self.client).into(),
            });
        }
        Ok(())
    }
}

impl LeaseStore for FakeLeaseClient {
    async fn read_config(&self, name: &str) -> Result<Option<ConfigObject>, SwarmError> {
        let state = self.store.lock();
        self.check(&state)?;
        Ok(state.configs.get(name).cloned())
    }

    async fn create_config(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), SwarmError> {
        let mut state = self.store.lock();
        self.check(&state)?;
        if state.configs.contains_key(name) {
            return Err(SwarmError::Api {
                status: 409,
                message: format!("config {name} already exists"),
            });
        }
        state.next_index += 1;
        let config = ConfigObject {
            id: format!("cfg-{}", state.next_index),
            version: state.next_index,
            labels: labels.clone(),
        };
        state.configs.insert(name.to_string(), config);
        state.writes.push(labels.clone());
        Ok(())
    }

    async fn update_config_labels(
        &self,
        id: &str,
        version: u64,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), SwarmError> {
        let mut state = self.store.lock();
        self.check(&state)?;
        state.next_index += 1;
        let index = state.next_index;
        let config = state
            .configs
            .values_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| SwarmError::NotFound {
                what: format!("config {id:?}"),
            })?;
        if config.version != version {
            return Err(SwarmError::OutOfSequence {
                service: format!("config {id:?}"),
            });
        }
        config.version = index;
        config.labels = labels.clone();
        state.writes.push(labels.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(holder: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("holder".to_string(), holder.to_string())])
    }

    #[tokio::test]
    async fn the_fake_refuses_a_second_create_and_a_stale_update() {
        let store = FakeLeaseStore::new();
        let (a, b) = (store.client("a"), store.client("b"));
        a.create_config("l", &labels("a")).await.unwrap();
        let err = b.create_config("l", &labels("b")).await.unwrap_err();
        assert!(is_conflict(&err), "{err:?}");
        let seen = b.read_config("l").await.unwrap().unwrap();
        a.update_config_labels(&seen.id, seen.version, &labels("a"))
            .await
            .unwrap();
        let err = b
            .update_config_labels(&seen.id, seen.version, &labels("b"))
            .await
            .unwrap_err();
        assert!(err.is_out_of_sequence(), "{err:?}");
        assert_eq!(store.config("l").unwrap().labels, labels("a"));
        store.cut_off("b", true);
        assert!(b.read_config("l").await.is_err());
        assert!(a.read_config("l").await.is_ok());
    }
}
