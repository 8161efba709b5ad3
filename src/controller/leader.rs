//! High availability: leader election on a swarm config, and the fence
//! that keeps every replica but the leader from writing.
//!
//! Run two or more replicas of the operator: exactly one acts (the
//! leader), the others stand by and take over when it goes.
//!
//! ## The lease
//!
//! Swarm has no lease API, so the lease is a swarm **config** the operator
//! owns (`--lease-name`, default `<operator service>.lease`), whose labels
//! say who holds it: `holder` (a per-process id: the hostname, which in a
//! swarm task is its container id, plus a random suffix), `renewals` (a
//! counter), `renewed-at-ms` (wall-clock, for humans only) and
//! `duration-ms`. Every write is a compare-and-swap on the config's
//! `Version.Index` (`POST /configs/{id}/update?version=N`, refused "update
//! out of sequence" when stale: [`crate::swarm::LeaseStore`]); creation
//! races are settled by the name (409).
//!
//! ## Expiry without trusting clocks across managers
//!
//! As client-go's leaderelection does, nobody compares timestamps written
//! by another host. A standby notes, on its own monotonic clock, when it
//! last saw the config's version change; it may take the lease (a CAS at
//! the version it saw) only when that version has stood for a whole lease
//! duration (`--lease-duration`, 10 s). A lease whose `holder` is empty was
//! released by a leader that stopped cleanly: it is taken at once.
//!
//! The leader renews every `--lease-renew` (2 s): it reads the config,
//! steps down if someone else holds it, and CASes its labels at the version
//! it read. A renewal counts from the instant *before* its read, so it
//! never claims time the store did not grant. If no renewal succeeds for
//! the renew deadline (7/10 of the duration: 7 s), it **stops acting at
//! once** and steps down: `action="step-down"`, and the process exits 1 so
//! that swarm restarts it as a fresh standby (simpler and safer than
//! unwinding into standby in place).
//!
//! Why two leaders never act at once: let the leader's last successful
//! renewal start at `s`; its CAS committed at `c >= s`, and a standby sees
//! that version no earlier than `c`, so it takes over no earlier than
//! `c + duration`; the old leader stopped acting at `s + deadline`, at
//! least `duration - deadline` (3 s) before, which absorbs writes in
//! flight and any drift between two monotonic clocks over 10 s. A standby
//! uses the larger of its own duration and the `duration-ms` the holder
//! wrote, so replicas configured differently stay safe.
//!
//! ## The fence
//!
//! A leader that is paused (SIGSTOP, a frozen VM) for longer than the
//! lease must not write a single thing when it resumes, even before its
//! elector has run again. So every write goes through a gate at the seams,
//! [`Fenced`] around the [`SwarmApi`] (service update, create, remove) and
//! [`FencedNodes`] around the [`NodeApi`] (tip, tip-clear, alumni reset,
//! quiesce, recluster): each asks [`Leadership::may_act`] — held, and the
//! last successful renewal less than the renew deadline ago — right
//! before the request. The clock is `CLOCK_MONOTONIC`, which runs on while
//! a process is stopped, so on resume the gate is shut. A refused write is
//! logged and returns an error the reconcile treats as transient. The gate
//! sits outside the counting wrappers, so a refused write is not counted
//! as sent. Swarm's service updates are version-checked themselves, which
//! also turns away a stale pass's write. What no client-side fence can
//! close is a pause between the gate and the bytes leaving the socket (a
//! few microseconds); true fencing tokens would need the store to check
//! them, which swarm does not offer.
//!
//! Lease renewals are not Docker writes of the control loop: the elector
//! talks to the raw [`crate::swarm::DockerSwarm`], so the counters and
//! "a settled cluster costs no write" are unchanged, and the event loop
//! ignores config events other than pause configs, so renewals wake no
//! cluster.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::BoxStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::aerospike::commands::SetConfigOutcome;
use crate::aerospike::{InfoError, NodeReport, TipClearOutcome, TipOutcome};
use crate::serverconf::LiveParam;
use crate::swarm::{
    is_conflict, ConfigObject, LeaseStore, NetworkInfo, NewService, NodeInfo, ServiceChange,
    ServiceInfo, SwarmApi, SwarmError, SwarmEvent, TaskFilter, TaskInfo,
};

use super::nodes::{NodeApi, QuiesceState};

/// Default lease duration (`--lease-duration`).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(10);
/// Default renewal period (`--lease-renew`).
pub const DEFAULT_LEASE_RENEW: Duration = Duration::from_secs(2);
/// The lease name when the operator's own service is not known.
pub const DEFAULT_LEASE_NAME: &str = "aerospike-swarm-operator.lease";

/// Label: the holder's id; empty when released.
pub const HOLDER: &str = "holder";
/// Label: the holder's lease duration in milliseconds.
pub const DURATION_MS: &str = "duration-ms";
/// Label: renewals by the current holder.
pub const RENEWALS: &str = "renewals";
/// Label: wall-clock time of the last renewal (Unix ms), for humans only.
pub const RENEWED_AT_MS: &str = "renewed-at-ms";

/// The lease's name and timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOptions {
    /// The swarm config that is the lease.
    pub name: String,
    /// How long a lease version must stand before a standby takes over.
    pub duration: Duration,
    /// How often the leader renews and a standby looks.
    pub renew: Duration,
    /// How long the leader may go without a successful renewal before it
    /// stops acting; less than `duration`.
    pub renew_deadline: Duration,
}

impl LeaseOptions {
    /// `name` with timings derived from `duration` and `renew`: the renew
    /// deadline is 7/10 of the duration.
    pub fn new(name: &str, duration: Duration, renew: Duration) -> Result<LeaseOptions, String> {
        let options = LeaseOptions {
            name: name.to_string(),
            duration,
            renew,
            renew_deadline: duration * 7 / 10,
        };
        if options.renew * 2 > options.renew_deadline {
            return Err(format!(
                "--lease-renew {renew:?} is too long for --lease-duration {duration:?}: at least \
                 two renewals must fit in the renew deadline (7/10 of the duration, {:?})",
                options.renew_deadline
            ));
        }
        if name.is_empty() {
            return Err("--lease-name must not be empty".into());
        }
        Ok(options)
    }
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions::new(
            DEFAULT_LEASE_NAME,
            DEFAULT_LEASE_DURATION,
            DEFAULT_LEASE_RENEW,
        )
        .expect("the defaults are consistent")
    }
}

/// The `run` flags of leader election, before the lease name is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElection {
    /// `--leader-election` (default on: one replica costs one lease read
    /// and write every renew period, and scaling the operator to 2 is then
    /// safe without reconfiguring it).
    pub enabled: bool,
    /// `--lease-name`; default `<operator service>.lease`, or
    /// [`DEFAULT_LEASE_NAME`] outside swarm.
    pub lease_name: Option<String>,
    /// `--lease-duration`.
    pub duration: Duration,
    /// `--lease-renew`.
    pub renew: Duration,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            enabled: true,
            lease_name: None,
            duration: DEFAULT_LEASE_DURATION,
            renew: DEFAULT_LEASE_RENEW,
        }
    }
}

impl LeaderElection {
    /// Checks the timings (the CLI does, before running).
    pub fn check(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        LeaseOptions::new(
            self.lease_name.as_deref().unwrap_or(DEFAULT_LEASE_NAME),
            self.duration,
            self.renew,
        )
        .map(|_| ())
    }

    /// The lease, when enabled; `operator_service` names the default.
    pub fn lease(&self, operator_service: Option<&str>) -> Option<LeaseOptions> {
        if !self.enabled {
            return None;
        }
        let name = match (&self.lease_name, operator_service) {
            (Some(name), _) => name.clone(),
            (None, Some(service)) => format!("{service}.lease"),
            (None, None) => DEFAULT_LEASE_NAME.to_string(),
        };
        // Inconsistent timings were refused by `check`; fall back to the
        // defaults' ratios rather than run an unsafe lease.
        Some(
            LeaseOptions::new(&name, self.duration, self.renew).unwrap_or_else(|e| {
                warn!(error = %e, "leader election: using the default timings");
                LeaseOptions::new(&name, DEFAULT_LEASE_DURATION, DEFAULT_LEASE_RENEW)
                    .expect("the defaults are consistent")
            }),
        )
    }
}

/// Where this replica stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Waiting; the last read of the lease failed (or none was made yet).
    Standby,
    /// Waiting, and reading the lease: ready to take over.
    Following,
    /// Holding the lease: the control loop runs (writes still pass the
    /// renew deadline check).
    Leader,
    /// Stepped down; the process is about to exit.
    SteppedDown,
    /// Leader election is off: this replica always acts.
    Unconditional,
}

impl Role {
    /// The role's name in logs and health output.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Standby => "standby",
            Role::Following => "following",
            Role::Leader => "leader",
            Role::SteppedDown => "stepped-down",
            Role::Unconditional => "unconditional",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug)]
struct Inner {
    role: Role,
    /// Start of the last successful renewal (or of the acquisition).
    renewed: Option<Instant>,
}

/// This process's standing in the election, shared by the elector (which
/// changes it) and the fences and health checks (which read it).
#[derive(Debug)]
pub struct Leadership {
    holder: String,
    renew_deadline: Duration,
    inner: Mutex<Inner>,
    role_tx: watch::Sender<Role>,
}

impl Leadership {
    /// A replica that takes part in the election as `holder`; it starts as
    /// a standby.
    pub fn elected(holder: &str, options: &LeaseOptions) -> Arc<Leadership> {
        Arc::new(Leadership::with_role(
            holder,
            options.renew_deadline,
            Role::Standby,
        ))
    }

    /// A replica that always acts (leader election off).
    pub fn unconditional() -> Arc<Leadership> {
        Arc::new(Leadership::with_role(
            "",
            Duration::MAX,
            Role::Unconditional,
        ))
    }

    fn with_role(holder: &str, renew_deadline: Duration, role: Role) -> Leadership {
        Leadership {
            holder: holder.to_string(),
            renew_deadline,
            inner: Mutex::new(Inner {
                role,
                renewed: None,
            }),
            role_tx: watch::channel(role).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This process's id in the lease.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Where this replica stands now.
    pub fn role(&self) -> Role {
        self.lock().role
    }

    /// Whether a readiness check should call this replica ready: it acts,
    /// or it follows the lease and can take over.
    pub fn is_ready(&self) -> bool {
        matches!(
            self.role(),
            Role::Leader | Role::Following | Role::Unconditional
        )
    }

    /// Whether this replica may write now: it holds the lease and its last
    /// successful renewal began less than the renew deadline ago (on the
    /// monotonic clock, which runs on while the process is stopped).
    pub fn may_act(&self) -> bool {
        let inner = self.lock();
        match inner.role {
            Role::Unconditional => true,
            Role::Leader => inner
                .renewed
                .is_some_and(|at| at.elapsed() < self.renew_deadline),
            _ => false,
        }
    }

    /// How long since the last successful renewal, while leader.
    pub fn since_renewal(&self) -> Option<Duration> {
        self.lock().renewed.map(|at| at.elapsed())
    }

    /// The fence: `Ok` when [`Leadership::may_act`], else the reason,
    /// logged, for a write described by `what`.
    pub fn check(&self, what: &str) -> Result<(), String> {
        if self.may_act() {
            return Ok(());
        }
        let role = self.role();
        let reason = match (role, self.since_renewal()) {
            (Role::Leader, Some(since)) => format!(
                "not the leader any more: no lease renewal for {} ms (deadline {} ms)",
                since.as_millis(),
                self.renew_deadline.as_millis()
            ),
            _ => format!("not the leader ({role})"),
        };
        warn!(holder = %self.holder, write = what, reason = %reason, "write refused by the leader fence");
        Err(reason)
    }

    fn set_role(&self, role: Role, renewed: Option<Instant>) {
        {
            let mut inner = self.lock();
            inner.role = role;
            inner.renewed = renewed;
        }
        self.role_tx.send_replace(role);
    }

    fn renewed(&self, at: Instant) {
        let mut inner = self.lock();
        if inner.role == Role::Leader {
            inner.renewed = Some(at);
        }
    }

    /// The role, as it changes.
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.role_tx.subscribe()
    }

    /// Completes once the role satisfies `wanted`.
    pub async fn until(&self, wanted: impl Fn(Role) -> bool) -> Role {
        let mut rx = self.role_tx.subscribe();
        let role = *rx
            .wait_for(|r| wanted(*r))
            .await
            .expect("the sender lives in self");
        role
    }
}

/// A holder id for this process: the hostname (a swarm task's is its
/// container id) and a random suffix, so that a restarted container is a
/// new holder.
pub fn holder_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "operator".into());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{host}-{:08x}", hasher.finish() as u32)
}

fn unix_ms() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string()
}

/// Why the elector stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionEnd {
    /// Asked to stop (shutdown); the lease is still held if it was.
    Stopped,
    /// Stepped down: the lease was lost or could not be renewed in time.
    SteppedDown(String),
}

/// Runs the election for one [`Leadership`] over a [`LeaseStore`].
pub struct Elector<L> {
    store: L,
    options: LeaseOptions,
    leadership: Arc<Leadership>,
    /// The version last seen and when (standby), or last written (leader).
    seen: Option<(u64, Instant)>,
    renewals: u64,
    warned: bool,
}

impl<L: LeaseStore> Elector<L> {
    /// An elector for `leadership` (made with [`Leadership::elected`]).
    pub fn new(store: L, options: LeaseOptions, leadership: Arc<Leadership>) -> Elector<L> {
        Elector {
            store,
            options,
            leadership,
            seen: None,
            renewals: 0,
            warned: false,
        }
    }

    /// Runs until `stop` turns true or this replica steps down, one
    /// [`Elector::tick`] every renew period (the first at once).
    pub async fn run(&mut self, mut stop: watch::Receiver<bool>) -> ElectionEnd {
        let mut ticks = tokio::time::interval(self.options.renew);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|s| *s) => return ElectionEnd::Stopped,
            }
            if let Some(reason) = self.tick().await {
                return ElectionEnd::SteppedDown(reason);
            }
        }
    }

    fn labels(&self, renewals: u64) -> BTreeMap<String, String> {
        BTreeMap::from([
            (HOLDER.to_string(), self.leadership.holder().to_string()),
            (
                DURATION_MS.to_string(),
                self.options.duration.as_millis().to_string(),
            ),
            (RENEWALS.to_string(), renewals.to_string()),
            (RENEWED_AT_MS.to_string(), unix_ms()),
        ])
    }

    /// A call to the store, bounded by the renew period.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, SwarmError>>,
    ) -> Result<T, SwarmError> {
        match tokio::time::timeout(self.options.renew, call).await {
            Ok(result) => result,
            Err(_) => Err(SwarmError::Unreachable {
                host: "docker".into(),
                source: format!("no reply within {:?}", self.options.renew).into(),
            }),
        }
    }

    /// One round: renew (leader) or look and maybe take over (standby).
    /// Returns the reason when this replica steps down.
    pub async fn tick(&mut self) -> Option<String> {
        match self.leadership.role() {
            Role::Leader => self.renew().await,
            Role::Standby | Role::Following => {
                self.follow().await;
                None
            }
            Role::SteppedDown => Some("stepped down already".into()),
            Role::Unconditional => None,
        }
    }

    fn step_down(&mut self, reason: String) -> Option<String> {
        self.leadership.set_role(Role::SteppedDown, None);
        error!(
            action = "step-down",
            holder = %self.leadership.holder(),
            reason = %reason,
            "stepping down: this replica stops acting"
        );
        Some(reason)
    }

    fn overdue(&self) -> Option<String> {
        let since = self.leadership.since_renewal()?;
        (since >= self.options.renew_deadline).then(|| {
            format!(
                "no successful lease renewal for {} ms (renew deadline {} ms)",
                since.as_millis(),
                self.options.renew_deadline.as_millis()
            )
        })
    }

    async fn renew(&mut self) -> Option<String> {
        // A leader resumed after a pause finds itself overdue before it
        // sends anything.
        if let Some(reason) = self.overdue() {
            return self.step_down(reason);
        }
        let started = Instant::now();
        let name = self.options.name.clone();
        let result = match self.bounded(self.store.read_config(&name)).await {
            Ok(Some(config)) => {
                let holder = config.labels.get(HOLDER).map(String::as_str);
                if holder != Some(self.leadership.holder()) {
                    return self.step_down(format!(
                        "the lease {name} is held by {:?} now",
                        holder.unwrap_or_default()
                    ));
                }
                let labels = self.labels(self.renewals + 1);
                self.bounded(
                    self.store
                        .update_config_labels(&config.id, config.version, &labels),
                )
                .await
            }
            Ok(None) => {
                // Someone removed the lease: take it again by creating it.
                let labels = self.labels(self.renewals + 1);
                self.bounded(self.store.create_config(&name, &labels)).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.renewals += 1;
                self.leadership.renewed(started);
                self.warned = false;
                debug!(holder = %self.leadership.holder(), renewals = self.renewals, "lease renewed");
            }
            Err(e) => {
                warn!(
                    holder = %self.leadership.holder(),
                    error = %e,
                    since_renewal_ms = self.leadership.since_renewal().unwrap_or_default().as_millis() as u64,
                    "cannot renew the lease"
                );
            }
        }
        self.overdue().and_then(|reason| self.step_down(reason))
    }

    async fn follow(&mut self) {
        let started = Instant::now();
        let name = self.options.name.clone();
        let config = match self.bounded(self.store.read_config(&name)).await {
            Ok(config) => config,
            Err(e) => {
                if !self.warned {
                    warn!(error = %e, lease = %name, "standby: cannot read the lease");
                    self.warned = true;
                }
                self.leadership.set_role(Role::Standby, None);
                return;
            }
        };
        self.warned = false;
        if self.leadership.role() != Role::Following {
            self.leadership.set_role(Role::Following, None);
        }
        let Some(config) = config else {
            let labels = self.labels(0);
            match self.bounded(self.store.create_config(&name, &labels)).await {
                Ok(()) => self.acquired(started, "created the lease".into(), None),
                Err(e) if is_conflict(&e) => debug!("another replica created the lease first"),
                Err(e) => warn!(error = %e, lease = %name, "cannot create the lease"),
            }
            return;
        };
        let holder = config.labels.get(HOLDER).cloned().unwrap_or_default();
        let now = Instant::now();
        let reason = if holder.is_empty() {
            "the lease was released".to_string()
        } else {
            match self.seen {
                Some((version, since)) if version == config.version => {
                    let wait = self.options.duration.max(holder_duration(&config));
                    let stood = now.duration_since(since);
                    if stood < wait {
                        return;
                    }
                    format!(
                        "the lease of {holder} was not renewed for {} ms",
                        stood.as_millis()
                    )
                }
                _ => {
                    self.seen = Some((config.version, now));
                    return;
                }
            }
        };
        let labels = self.labels(0);
        match self
            .bounded(
                self.store
                    .update_config_labels(&config.id, config.version, &labels),
            )
            .await
        {
            Ok(()) => self.acquired(started, reason, Some(holder)),
            Err(e) if e.is_out_of_sequence() => {
                debug!("the lease changed meanwhile; following it");
                self.seen = None;
            }
            Err(e) => warn!(error = %e, lease = %name, "cannot take the lease"),
        }
    }

    fn acquired(&mut self, started: Instant, reason: String, previous: Option<String>) {
        self.renewals = 0;
        self.seen = None;
        self.leadership.set_role(Role::Leader, Some(started));
        info!(
            action = "leader",
            holder = %self.leadership.holder(),
            previous = previous.as_deref().unwrap_or_default(),
            lease = %self.options.name,
            reason = %reason,
            "acquired the lease: this replica acts"
        );
    }

    /// Gives the lease up (holder emptied) if this replica holds it, so a
    /// standby takes over at once. Called on a clean shutdown, after the
    /// control loop stopped.
    pub async fn release(&mut self) {
        if self.leadership.role() != Role::Leader {
            return;
        }
        self.leadership.set_role(Role::SteppedDown, None);
        let name = self.options.name.clone();
        let result = async {
            let Some(config) = self.bounded(self.store.read_config(&name)).await? else {
                return Ok(false);
            };
            if config.labels.get(HOLDER).map(String::as_str) != Some(self.leadership.holder()) {
                return Ok(false);
            }
            let mut labels = config.labels.clone();
            labels.insert(HOLDER.into(), String::new());
            labels.insert(RENEWED_AT_MS.into(), unix_ms());
            self.bounded(
                self.store
                    .update_config_labels(&config.id, config.version, &labels),
            )
            .await
            .map(|()| true)
        }
        .await;
        match result {
            Ok(true) => info!(
                action = "release",
                holder = %self.leadership.holder(),
                reason = "shutting down",
                "released the lease"
            ),
            Ok(false) => {}
            Err(e) => {
                warn!(error = %e, "cannot release the lease; a standby takes over when it expires")
            }
        }
    }
}

/// The `duration-ms` the holder wrote, if any.
fn holder_duration(config: &ConfigObject) -> Duration {
    config
        .labels
        .get(DURATION_MS)
        .and_then(|d| d.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or_default()
}

/// Runs the control loop under leader election: stands by until this
/// replica holds the lease, then runs `act` (the control loop) until
/// `shutdown` completes or the lease is lost. On a clean shutdown it
/// releases the lease; when it stepped down it returns the reason (the
/// caller exits, and swarm starts a fresh standby).
pub async fn lead<L, A, F>(
    store: L,
    options: LeaseOptions,
    leadership: Arc<Leadership>,
    shutdown: impl Future<Output = ()>,
    act: A,
) -> ElectionEnd
where
    L: LeaseStore,
    A: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
    F: Future<Output = ()>,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut elector = Elector::new(store, options.clone(), leadership.clone());
    info!(
        holder = %leadership.holder(),
        lease = %options.name,
        duration_ms = options.duration.as_millis() as u64,
        renew_ms = options.renew.as_millis() as u64,
        "leader election: standing by until this replica holds the lease"
    );
    tokio::pin!(shutdown);
    let election = async {
        let end = elector.run(stop_rx).await;
        (end, elector)
    };
    tokio::pin!(election);
    // Stand by.
    tokio::select! {
        _ = &mut shutdown => {
            let _ = stop_tx.send(true);
            let (_, mut elector) = election.await;
            elector.release().await;
            return ElectionEnd::Stopped;
        }
        _ = leadership.until(|r| r == Role::Leader) => {}
        (end, _) = &mut election => return end,
    }
    // Act, while the elector renews.
    let lost = {
        let leadership = leadership.clone();
        async move {
            leadership.until(|r| r == Role::SteppedDown).await;
        }
    };
    let (loop_tx, loop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop_loop: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        let _ = loop_rx.await;
    });
    let acting = act(stop_loop);
    tokio::pin!(acting);
    let mut loop_tx = Some(loop_tx);
    let mut end = None;
    tokio::pin!(lost);
    loop {
        tokio::select! {
            _ = &mut acting => break,
            _ = &mut shutdown, if end.is_none() => {
                end = Some(None);
                if let Some(tx) = loop_tx.take() { let _ = tx.send(()); }
            }
            _ = &mut lost, if end.is_none() => {
                end = Some(Some(()));
                if let Some(tx) = loop_tx.take() { let _ = tx.send(()); }
            }
            (result, _) = &mut election, if end.is_none() => {
                // The elector ended by itself: it stepped down.
                let reason = match result {
                    ElectionEnd::SteppedDown(reason) => reason,
                    ElectionEnd::Stopped => "the elector stopped".into(),
                };
                if let Some(tx) = loop_tx.take() { let _ = tx.send(()); }
                acting.await;
                return ElectionEnd::SteppedDown(reason);
            }
        }
    }
    // The loop stopped: on shutdown the elector is still renewing, so the
    // lease is held until it is released here.
    let _ = stop_tx.send(true);
    let (result, mut elector) = election.await;
    match result {
        ElectionEnd::SteppedDown(reason) => ElectionEnd::SteppedDown(reason),
        ElectionEnd::Stopped => {
            if leadership.role() == Role::SteppedDown {
                return ElectionEnd::SteppedDown("the lease was lost".into());
            }
            elector.release().await;
            ElectionEnd::Stopped
        }
    }
}

/// [`lead`] with `controller` as the control loop, for [`super::run`]. A
/// replica that stepped down exits the process (status 1) once the loop
/// has stopped: swarm starts a fresh standby in its place.
pub async fn run_elected<L, S, N>(
    store: L,
    options: LeaseOptions,
    leadership: Arc<Leadership>,
    controller: &super::Controller<S, N>,
    shutdown: impl Future<Output = ()>,
) where
    L: LeaseStore,
    S: SwarmApi + Clone,
    N: NodeApi,
{
    let end = lead(store, options, leadership.clone(), shutdown, |stop| {
        controller.run(stop)
    })
    .await;
    if let ElectionEnd::SteppedDown(reason) = end {
        error!(
            holder = %leadership.holder(),
            reason = %reason,
            "exiting after stepping down; swarm restarts this task as a standby"
        );
        std::process::exit(1);
    }
}

/// Mirrors the election's role into the health state `/readyz` reads:
/// ready when leading or following; electing otherwise. Runs until the
/// process ends.
pub async fn report_role(leadership: Arc<Leadership>, health: Arc<super::Health>) {
    use super::http::Role as Health;
    let mut roles = leadership.subscribe();
    loop {
        let role = *roles.borrow_and_update();
        health.set_role(match role {
            Role::Leader | Role::Unconditional => Health::Leader,
            Role::Following => Health::Standby,
            Role::Standby | Role::SteppedDown => Health::Electing,
        });
        if roles.changed().await.is_err() {
            return;
        }
    }
}

/// A refused Docker write: transient for the reconcile (it backs off and
/// retries; by then the process has stepped down).
fn refused(reason: String) -> SwarmError {
    SwarmError::Api {
        status: 503,
        message: format!("write refused by the leader fence: {reason}"),
    }
}

/// A [`SwarmApi`] whose writes pass the leader fence first.
#[derive(Debug, Clone)]
pub struct Fenced<S> {
    inner: S,
    leadership: Arc<Leadership>,
}

impl<S> Fenced<S> {
    /// Wraps `inner`; writes need `leadership.may_act()`.
    pub fn new(inner: S, leadership: Arc<Leadership>) -> Fenced<S> {
        Fenced { inner, leadership }
    }
}

impl<S: SwarmApi> SwarmApi for Fenced<S> {
    async fn list_services(&self) -> Result<Vec<ServiceInfo>, SwarmError> {
        self.inner.list_services().await
    }

    async fn inspect_service(&self, id_or_name: &str) -> Result<ServiceInfo, SwarmError> {
        self.inner.inspect_service(id_or_name).await
    }

    async fn list_nodes(&self) -> Result<Vec<NodeInfo>, SwarmError> {
        self.inner.list_nodes().await
    }

    async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskInfo>, SwarmError> {
        self.inner.list_tasks(filter).await
    }

    async fn network(&self, id_or_name: &str) -> Result<Option<NetworkInfo>, SwarmError> {
        self.inner.network(id_or_name).await
    }

    async fn secret_exists(&self, name: &str) -> Result<bool, SwarmError> {
        self.inner.secret_exists(name).await
    }

    async fn config_text(&self, name: &str) -> Result<Option<String>, SwarmError> {
        self.inner.config_text(name).await
    }

    async fn config_exists(&self, name: &str) -> Result<bool, SwarmError> {
        self.inner.config_exists(name).await
    }

    async fn find_config(&self, name: &str) -> Result<Option<ConfigObject>, SwarmError> {
        self.inner.find_config(name).await
    }

    async fn task_logs(&self, id: &str, tail: usize) -> Result<Vec<String>, SwarmError> {
        self.inner.task_logs(id, tail).await
    }

    async fn create_config_with(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        body: &str,
    ) -> Result<(), SwarmError> {
        self.leadership
            .check(&format!("create config {name}"))
            .map_err(refused)?;
        self.inner.create_config_with(name, labels, body).await
    }

    async fn relabel_config(
        &self,
        id: &str,
        version: u64,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), SwarmError> {
        self.leadership
            .check(&format!("update config {id}"))
            .map_err(refused)?;
        self.inner.relabel_config(id, version, labels).await
    }

    async fn remove_config(&self, name: &str) -> Result<(), SwarmError> {
        self.leadership
            .check(&format!("remove config {name}"))
            .map_err(refused)?;
        self.inner.remove_config(name).await
    }

    async fn update_service(
        &self,
        id: &str,
        version: u64,
        change: &ServiceChange,
    ) -> Result<u64, SwarmError> {
        self.leadership
            .check(&format!("update service {id}"))
            .map_err(refused)?;
        self.inner.update_service(id, version, change).await
    }

    async fn create_service(&self, service: &NewService) -> Result<String, SwarmError> {
        self.leadership
            .check(&format!("create service {}", service.name))
            .map_err(refused)?;
        self.inner.create_service(service).await
    }

    async fn remove_service(&self, id_or_name: &str) -> Result<(), SwarmError> {
        self.leadership
            .check(&format!("remove service {id_or_name}"))
            .map_err(refused)?;
        self.inner.remove_service(id_or_name).await
    }

    fn events(
        &self,
        since: Option<SystemTime>,
    ) -> BoxStream<'static, Result<SwarmEvent, SwarmError>> {
        self.inner.events(since)
    }
}

/// A [`NodeApi`] whose orders (everything but reads) pass the leader fence
/// first.
#[derive(Debug, Clone)]
pub struct FencedNodes<N> {
    inner: N,
    leadership: Arc<Leadership>,
}

impl<N> FencedNodes<N> {
    /// Wraps `inner`; orders need `leadership.may_act()`.
    pub fn new(inner: N, leadership: Arc<Leadership>) -> FencedNodes<N> {
        FencedNodes { inner, leadership }
    }

    fn check(&self, addr: SocketAddr, what: &str) -> Result<(), InfoError> {
        self.leadership
            .check(&format!("{what} to {addr}"))
            .map_err(|reason| InfoError::Io {
                addr,
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("refused by the leader fence: {reason}"),
                ),
            })
    }
}

impl<N: NodeApi> NodeApi for FencedNodes<N> {
    async fn observe(&self, addr: SocketAddr, expected: u32) -> Result<NodeReport, InfoError> {
        self.inner.observe(addr, expected).await
    }

    async fn tip(
        &self,
        addr: SocketAddr,
        host: IpAddr,
        heartbeat_port: u16,
    ) -> Result<TipOutcome, InfoError> {
        self.check(addr, "tip")?;
        self.inner.tip(addr, host, heartbeat_port).await
    }

    async fn tip_clear(
        &self,
        addr: SocketAddr,
        heartbeats: &[SocketAddr],
    ) -> Result<TipClearOutcome, InfoError> {
        self.check(addr, "tip-clear")?;
        self.inner.tip_clear(addr, heartbeats).await
    }

    async fn alumni_reset(&self, addr: SocketAddr) -> Result<(), InfoError> {
        self.check(addr, "services-alumni-reset")?;
        self.inner.alumni_reset(addr).await
    }

    async fn quiesce_state(&self, addr: SocketAddr) -> Result<QuiesceState, InfoError> {
        self.inner.quiesce_state(addr).await
    }

    async fn set_config(
        &self,
        addr: SocketAddr,
        param: &LiveParam,
    ) -> Result<SetConfigOutcome, InfoError> {
        self.check(addr, "set-config")?;
        self.inner.set_config(addr, param).await
    }

    async fn get_config(&self, addr: SocketAddr, param: &LiveParam) -> Result<String, InfoError> {
        self.inner.get_config(addr, param).await
    }

    async fn quiesce(&self, addr: SocketAddr, members: &[SocketAddr]) -> Result<(), InfoError> {
        self.check(addr, "quiesce")?;
        self.inner.quiesce(addr, members).await
    }

    async fn recluster(&self, members: &[SocketAddr]) -> Result<(), InfoError> {
        if let Some(first) = members.first() {
            self.check(*first, "recluster")?;
        }
        self.inner.recluster(members).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::{FakeLeaseStore, FakeSwarm};

    fn options() -> LeaseOptions {
        LeaseOptions::new("op.lease", Duration::from_secs(10), Duration::from_secs(2)).unwrap()
    }

    struct Replica {
        leadership: Arc<Leadership>,
        elector: Elector<crate::swarm::FakeLeaseClient>,
    }

    fn replica(store: &FakeLeaseStore, name: &str) -> Replica {
        let leadership = Leadership::elected(name, &options());
        Replica {
            elector: Elector::new(store.client(name), options(), leadership.clone()),
            leadership,
        }
    }

    /// Ticks both replicas every renew period for `secs`, checking after
    /// every step that at most one may act; returns the seconds (since the
    /// start) at which each became leader.
    async fn run_both(
        a: &mut Replica,
        b: &mut Replica,
        secs: u64,
        mut each: impl FnMut(u64, &mut Replica, &mut Replica),
    ) {
        for t in (0..secs).step_by(2) {
            each(t, a, b);
            a.elector.tick().await;
            assert!(!(a.leadership.may_act() && b.leadership.may_act()), "t={t}");
            b.elector.tick().await;
            assert!(!(a.leadership.may_act() && b.leadership.may_act()), "t={t}");
            tokio::time::advance(Duration::from_secs(2)).await;
            assert!(!(a.leadership.may_act() && b.leadership.may_act()), "t={t}");
        }
    }

    #[test]
    fn options_are_checked() {
        let o = options();
        assert_eq!(o.renew_deadline, Duration::from_secs(7));
        assert!(LeaseOptions::new("l", Duration::from_secs(10), Duration::from_secs(4)).is_err());
        assert!(LeaseOptions::new("", Duration::from_secs(10), Duration::from_secs(2)).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn two_electors_give_exactly_one_leader_that_keeps_the_lease() {
        let store = FakeLeaseStore::new();
        let (mut a, mut b) = (replica(&store, "a"), replica(&store, "b"));
        run_both(&mut a, &mut b, 60, |_, _, _| {}).await;
        assert_eq!(a.leadership.role(), Role::Leader);
        assert!(a.leadership.may_act());
        assert_eq!(b.leadership.role(), Role::Following);
        assert!(b.leadership.is_ready());
        let lease = store.config("op.lease").unwrap();
        assert_eq!(lease.labels[HOLDER], "a");
        assert_eq!(lease.labels[RENEWALS], "29");
    }

    #[tokio::test(start_paused = true)]
    async fn a_standby_takes_over_a_dead_leader_after_the_lease_duration_and_not_before() {
        let store = FakeLeaseStore::new();
        let (mut a, mut b) = (replica(&store, "a"), replica(&store, "b"));
        run_both(&mut a, &mut b, 10, |_, _, _| {}).await;
        assert_eq!(a.leadership.role(), Role::Leader);
        // a dies (stops ticking) after its renewal at t=8; it is t=10.
        let died = Instant::now() - Duration::from_secs(2);
        let mut took_over = None;
        for _ in 0..20 {
            b.elector.tick().await;
            if b.leadership.role() == Role::Leader {
                took_over = Some(died.elapsed());
                break;
            }
            tokio::time::advance(Duration::from_secs(2)).await;
        }
        let took = took_over.expect("b takes over");
        // b saw a's last version at t=8 (its tick right after), so it may
        // take over at 8 + 10 at the earliest, i.e. 10 s after a's last
        // renewal; with one renew period of lag at most, within 12 s.
        assert!(took >= Duration::from_secs(10), "{took:?}");
        assert!(took <= Duration::from_secs(12), "{took:?}");
        assert_eq!(store.config("op.lease").unwrap().labels[HOLDER], "b");
        // a's fence shut long before: 7 s after its last renewal.
        assert!(!a.leadership.may_act());
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_cannot_renew_steps_down_before_the_standby_takes_over() {
        let store = FakeLeaseStore::new();
        let (mut a, mut b) = (replica(&store, "a"), replica(&store, "b"));
        run_both(&mut a, &mut b, 10, |_, _, _| {}).await;
        assert_eq!(a.leadership.role(), Role::Leader);
        store.cut_off("a", true);
        let cut = Instant::now();
        let (mut a_stopped, mut b_leader) = (None, None);
        for _ in 0..40 {
            if a_stopped.is_none() && !a.leadership.may_act() {
                a_stopped = Some(cut.elapsed());
            }
            if a.leadership.role() == Role::Leader {
                if let Some(reason) = a.elector.tick().await {
                    assert!(reason.contains("no successful lease renewal"), "{reason}");
                }
            }
            if a_stopped.is_none() && !a.leadership.may_act() {
                a_stopped = Some(cut.elapsed());
            }
            b.elector.tick().await;
            if b.leadership.role() == Role::Leader && b_leader.is_none() {
                b_leader = Some(cut.elapsed());
                assert!(!a.leadership.may_act(), "two leaders");
            }
            tokio::time::advance(Duration::from_millis(500)).await;
        }
        let (a_stopped, b_leader) = (a_stopped.unwrap(), b_leader.unwrap());
        assert!(a_stopped <= Duration::from_secs(7), "{a_stopped:?}");
        assert!(
            b_leader >= a_stopped + Duration::from_secs(2),
            "{a_stopped:?} {b_leader:?}"
        );
        assert_eq!(a.leadership.role(), Role::SteppedDown);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_compare_and_swap_is_refused_and_the_leader_steps_down_on_a_new_holder() {
        let store = FakeLeaseStore::new();
        let mut a = replica(&store, "a");
        a.elector.tick().await;
        assert_eq!(a.leadership.role(), Role::Leader);
        // A standby that read the lease, then someone else wrote it: its
        // takeover is refused (it follows the new version instead).
        let mut b = replica(&store, "b");
        b.elector.tick().await;
        tokio::time::advance(Duration::from_secs(11)).await;
        let before = store.config("op.lease").unwrap();
        store.touch("op.lease");
        let stale = b
            .elector
            .store
            .update_config_labels(&before.id, before.version, &b.elector.labels(0))
            .await
            .unwrap_err();
        assert!(stale.is_out_of_sequence());
        // b's own clock says the version it saw stood 11 s, but it has
        // changed: b re-reads, sees a new version and waits again.
        b.elector.tick().await;
        assert_eq!(b.leadership.role(), Role::Following);
        // a, overdue on its own clock, steps down without writing.
        let writes = store.writes().len();
        assert!(a.elector.tick().await.is_some());
        assert_eq!(store.writes().len(), writes);
        // Someone else holding it makes a fresh leader step down too.
        let c = replica(&store, "c");
        let config = store.config("op.lease").unwrap();
        c.elector
            .store
            .create_config("other", &BTreeMap::new())
            .await
            .unwrap();
        c.elector
            .store
            .update_config_labels(&config.id, config.version, &c.elector.labels(0))
            .await
            .unwrap();
        let mut d = replica(&store, "d");
        d.leadership.set_role(Role::Leader, Some(Instant::now()));
        let reason = d.elector.tick().await.unwrap();
        assert!(reason.contains("held by \"c\""), "{reason}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_fence_refuses_writes_after_a_pause_longer_than_the_renew_deadline() {
        let store = FakeLeaseStore::new();
        let mut a = replica(&store, "a");
        a.elector.tick().await;
        let fake = FakeSwarm::new();
        fake.put_service(ServiceInfo {
            id: "s1".into(),
            name: "db".into(),
            replicas: Some(1),
            ..ServiceInfo::default()
        });
        let api = Fenced::new(fake.clone(), a.leadership.clone());
        let change = ServiceChange {
            replicas: Some(2),
            ..ServiceChange::default()
        };
        let version = api.inspect_service("s1").await.unwrap().version;
        let version = api.update_service("s1", version, &change).await.unwrap();
        assert_eq!(fake.writes().len(), 1);
        // "SIGSTOP": the elector does not run while time passes.
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(a.leadership.role(), Role::Leader, "nobody told it");
        assert!(!a.leadership.may_act());
        let change = ServiceChange {
            replicas: Some(3),
            ..ServiceChange::default()
        };
        let err = api
            .update_service("s1", version, &change)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(err.to_string().contains("leader fence"), "{err}");
        assert!(api.remove_service("s1").await.is_err());
        assert_eq!(fake.writes().len(), 1, "no write got through");
        // Reads still work (the pass observes, then fails its write).
        assert!(api.list_services().await.is_ok());
        // And on resume the elector steps down at once, writing nothing.
        let writes = store.writes().len();
        let reason = a.elector.tick().await.unwrap();
        assert!(reason.contains("no successful lease renewal"), "{reason}");
        assert_eq!(store.writes().len(), writes);
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_lease_is_taken_at_once_and_a_standby_never_writes() {
        let store = FakeLeaseStore::new();
        let (mut a, mut b) = (replica(&store, "a"), replica(&store, "b"));
        a.elector.tick().await;
        b.elector.tick().await;
        assert!(!b.leadership.may_act());
        assert!(b.leadership.check("tip").is_err());
        a.elector.release().await;
        assert_eq!(store.config("op.lease").unwrap().labels[HOLDER], "");
        assert!(!a.leadership.may_act());
        b.elector.tick().await;
        assert_eq!(b.leadership.role(), Role::Leader);
        assert!(Leadership::unconditional().may_act());
    }

    #[tokio::test]
    async fn a_fenced_controller_writes_nothing_until_it_leads() {
        use crate::aerospike::InfoClient;
        use crate::controller::{Controller, Counters, CountingInfo, Instrumented, RunOptions};
        use crate::spec::status::PHASE;
        let fake = FakeSwarm::new();
        // Paused: the pass needs nothing but the service and writes its
        // status.
        fake.put_service(crate::controller::fixtures::paused_cluster());
        let leadership = Leadership::elected("a", &options());
        let counters = Arc::new(Counters::default());
        let controller = Controller::new(
            Fenced::new(
                Instrumented::new(fake.clone(), counters.clone()),
                leadership.clone(),
            ),
            FencedNodes::new(
                CountingInfo::new(InfoClient::new(), counters.clone()),
                leadership.clone(),
            ),
            counters.clone(),
            RunOptions {
                poll_fast: RunOptions::default().poll_fast,
                ..crate::controller::fixtures::quiet_options()
            },
        );
        let (stop, run) = crate::controller::fixtures::spawn_until_stopped(|shutdown| async move {
            controller.run(shutdown).await
        });
        // A standby's passes run (here: the fence is all that stops them)
        // and are refused at the write: nothing reaches the swarm, nothing
        // is counted as written.
        let start = std::time::Instant::now();
        while counters.snapshot().reconciles < 2 {
            assert!(start.elapsed() < Duration::from_secs(10), "no reconcile");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(fake.writes().is_empty(), "{:?}", fake.writes());
        assert_eq!(counters.snapshot().docker_writes, 0);
        // Leader: the retry (backoff) writes the status.
        leadership.set_role(Role::Leader, Some(Instant::now()));
        let start = std::time::Instant::now();
        while fake
            .service("s1")
            .and_then(|s| s.labels.get(PHASE).cloned())
            .as_deref()
            != Some("Paused")
        {
            assert!(start.elapsed() < Duration::from_secs(10), "no status");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(counters.snapshot().docker_writes >= 1);
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("the loop stops")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn lead_runs_the_loop_only_while_leader_and_releases_on_shutdown() {
        let store = FakeLeaseStore::new();
        let opts = options();
        let leadership = Leadership::elected("a", &opts);
        let acted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = {
            let (store, leadership, acted) = (store.clone(), leadership.clone(), acted.clone());
            tokio::spawn(async move {
                lead(
                    store.client("a"),
                    opts,
                    leadership,
                    async {
                        let _ = stop_rx.await;
                    },
                    |stop| async move {
                        acted.store(true, std::sync::atomic::Ordering::SeqCst);
                        stop.await;
                    },
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(acted.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(leadership.role(), Role::Leader);
        stop_tx.send(()).unwrap();
        assert_eq!(task.await.unwrap(), ElectionEnd::Stopped);
        assert_eq!(store.config("op.lease").unwrap().labels[HOLDER], "");
    }
}
