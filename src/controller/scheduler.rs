//! Who runs next: a de-duplicating, delaying work queue keyed by cluster,
//! and the error policy that spaces out retries of a failing cluster.
//!
//! As in kube-runtime's scheduler: a key is queued once however often it is
//! triggered (the earliest requested time wins), runs at most once at a
//! time, and a trigger that arrives while it runs queues it again for
//! after. Different keys run in parallel, so one slow cluster never holds
//! up another.
//!
//! Each request carries its [`Trigger`] (event, poll, resync, requeue,
//! error retry), which the runner logs on the reconcile's span and counts.
//! When requests for one key merge, the trigger of the request due earliest
//! is kept (it is the one that makes the key run); of requests due at the
//! same time, the first one's.
//!
//! [`Queue`] is the pure bookkeeping, with time passed in, so its rules are
//! unit-tested without sleeping; [`Scheduler`] puts it behind a lock and a
//! wake-up for the async runner.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::sync::Notify;
use tokio::time::Instant;

pub use super::metrics::Trigger;

/// When a queued key is due, and why it was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Due {
    at: Instant,
    trigger: Trigger,
}

impl Due {
    /// Merges a new request into this one: the earlier wins, the first on
    /// a tie.
    fn merge(&mut self, other: Due) {
        if other.at < self.at {
            *self = other;
        }
    }
}

/// The queue's state.
#[derive(Debug)]
pub struct Queue<K> {
    /// Keys waiting, with when they are due and why.
    waiting: HashMap<K, Due>,
    /// Keys being worked on now.
    running: HashSet<K>,
    /// Keys triggered while running: queued again when they finish.
    again: HashMap<K, Due>,
}

impl<K> Default for Queue<K> {
    fn default() -> Self {
        Queue {
            waiting: HashMap::new(),
            running: HashSet::new(),
            again: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash> Queue<K> {
    /// Asks for `key` to run at `at`, because of `trigger`. Merges with an
    /// earlier request for the same key (the earlier time wins, and its
    /// trigger with it; on a tie the first request's); while the key runs,
    /// the request waits until it finishes.
    pub fn schedule(&mut self, key: K, at: Instant, trigger: Trigger) {
        let slot = if self.running.contains(&key) {
            &mut self.again
        } else {
            &mut self.waiting
        };
        let due = Due { at, trigger };
        slot.entry(key)
            .and_modify(|queued| queued.merge(due))
            .or_insert(due);
    }

    /// Takes the key due earliest, if one is due by `now`, marks it
    /// running, and tells what triggered it.
    pub fn pop_due(&mut self, now: Instant) -> Option<(K, Trigger)> {
        let (key, due) = self
            .waiting
            .iter()
            .filter(|(_, due)| due.at <= now)
            .min_by_key(|(_, due)| due.at)
            .map(|(key, due)| (key.clone(), *due))?;
        self.waiting.remove(&key);
        self.running.insert(key.clone());
        Some((key, due.trigger))
    }

    /// Marks `key` done; a request that came in meanwhile is queued now.
    pub fn finish(&mut self, key: &K) {
        self.running.remove(key);
        if let Some(due) = self.again.remove(key) {
            self.schedule(key.clone(), due.at, due.trigger);
        }
    }

    /// When the next waiting key is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.waiting.values().map(|due| due.at).min()
    }

    /// Whether `key` runs now.
    pub fn is_running(&self, key: &K) -> bool {
        self.running.contains(key)
    }

    /// Keys waiting (not running).
    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }
}

/// [`Queue`] shared between the triggers and the runner.
#[derive(Debug)]
pub struct Scheduler<K> {
    queue: Mutex<Queue<K>>,
    wake: Notify,
}

impl<K> Default for Scheduler<K> {
    fn default() -> Self {
        Scheduler {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
        }
    }
}

impl<K: Clone + Eq + Hash> Scheduler<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<K>> {
        // The queue is consistent after every method, so a panic elsewhere
        // while holding the lock leaves nothing half-done.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` to run after `delay` because of `trigger` (see
    /// [`Queue::schedule`]).
    pub fn schedule(&self, key: K, delay: Duration, trigger: Trigger) {
        self.lock().schedule(key, Instant::now() + delay, trigger);
        self.wake.notify_one();
    }

    /// Waits for the next key that is due, marks it running, and tells
    /// what triggered it.
    pub async fn next(&self) -> (K, Trigger) {
        loop {
            // Registered before looking, so a schedule() between the look
            // and the wait still wakes us.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let next_due = {
                let mut queue = self.lock();
                if let Some(next) = queue.pop_due(Instant::now()) {
                    return next;
                }
                queue.next_due()
            };
            match next_due {
                Some(due) => {
                    tokio::select! {
                        _ = woken => {}
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                None => woken.await,
            }
        }
    }

    /// Marks `key` done (see [`Queue::finish`]).
    pub fn finish(&self, key: &K) {
        self.lock().finish(key);
        self.wake.notify_one();
    }
}

/// The error policy: per-key exponential backoff with jitter.
///
/// A cluster whose reconcile fails is retried after 0.5 s, then about 1 s,
/// 2 s, ... up to 60 s, each delay jittered so that many clusters failing
/// together (Docker restarting) do not retry in lockstep. One success
/// resets it. Other clusters are not affected.
#[derive(Debug)]
pub struct ErrorPolicy<K> {
    builder: ExponentialBuilder,
    failing: Mutex<HashMap<K, ExponentialBackoff>>,
}

impl<K: Clone + Eq + Hash> Default for ErrorPolicy<K> {
    fn default() -> Self {
        ErrorPolicy::new(Duration::from_millis(500), Duration::from_secs(60))
    }
}

impl<K: Clone + Eq + Hash> ErrorPolicy<K> {
    /// Delays start at `min` and double up to `max`.
    pub fn new(min: Duration, max: Duration) -> ErrorPolicy<K> {
        ErrorPolicy {
            builder: ExponentialBuilder::default()
                .with_min_delay(min)
                .with_max_delay(max)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
            failing: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, ExponentialBackoff>> {
        self.failing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `key` failed again: how long to wait before retrying it.
    pub fn on_error(&self, key: &K) -> Duration {
        let mut failing = self.lock();
        let backoff = failing
            .entry(key.clone())
            .or_insert_with(|| self.builder.build());
        // Without a limit on attempts the iterator never ends; the fallback
        // is only for safety.
        backoff.next().unwrap_or(Duration::from_secs(60))
    }

    /// `key` succeeded: its next failure starts from the shortest delay.
    pub fn on_success(&self, key: &K) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn duplicate_requests_merge_and_the_earliest_wins() {
        let base = Instant::now();
        let mut queue = Queue::default();
        queue.schedule("a", at(base, 100), Trigger::Event);
        queue.schedule("a", at(base, 50), Trigger::Event);
        queue.schedule("a", at(base, 200), Trigger::Event);
        assert_eq!(queue.waiting_len(), 1);
        assert_eq!(queue.next_due(), Some(at(base, 50)));
        assert_eq!(queue.pop_due(at(base, 49)), None);
        assert_eq!(queue.pop_due(at(base, 50)), Some(("a", Trigger::Event)));
        assert_eq!(queue.pop_due(at(base, 500)), None, "queued once only");
    }

    #[test]
    fn a_key_runs_once_at_a_time_and_reruns_after() {
        let base = Instant::now();
        let mut queue = Queue::default();
        queue.schedule("a", base, Trigger::Event);
        assert_eq!(queue.pop_due(base), Some(("a", Trigger::Event)));
        // Triggered twice while running: not runnable now...
        queue.schedule("a", base, Trigger::Event);
        queue.schedule("a", at(base, 10), Trigger::Event);
        assert!(queue.is_running(&"a"));
        assert_eq!(queue.pop_due(at(base, 100)), None);
        // ...and once, right after it finishes.
        queue.finish(&"a");
        assert_eq!(queue.pop_due(at(base, 100)), Some(("a", Trigger::Event)));
        queue.finish(&"a");
        assert_eq!(queue.pop_due(at(base, 1000)), None);
    }

    #[test]
    fn different_keys_run_in_parallel_in_due_order() {
        let base = Instant::now();
        let mut queue = Queue::default();
        queue.schedule("late", at(base, 20), Trigger::Event);
        queue.schedule("early", at(base, 10), Trigger::Event);
        assert_eq!(queue.pop_due(at(base, 30)), Some(("early", Trigger::Event)));
        assert_eq!(queue.pop_due(at(base, 30)), Some(("late", Trigger::Event)));
        assert!(queue.is_running(&"early") && queue.is_running(&"late"));
    }

    #[test]
    fn the_trigger_of_the_earliest_request_is_kept() {
        let base = Instant::now();
        let mut queue = Queue::default();
        // A requeue in 1 s, then an event now: the event makes it run.
        queue.schedule("a", at(base, 1000), Trigger::Requeue);
        queue.schedule("a", base, Trigger::Event);
        // A later poll and a same-time resync change nothing.
        queue.schedule("a", at(base, 10), Trigger::Poll);
        queue.schedule("a", base, Trigger::Resync);
        assert_eq!(queue.pop_due(base), Some(("a", Trigger::Event)));
        // While it runs: an error retry later, a poll sooner. The poll is
        // what runs it again after it finishes.
        queue.schedule("a", at(base, 500), Trigger::ErrorRetry);
        queue.schedule("a", at(base, 20), Trigger::Poll);
        queue.finish(&"a");
        assert_eq!(queue.pop_due(at(base, 19)), None);
        assert_eq!(queue.pop_due(at(base, 20)), Some(("a", Trigger::Poll)));
        // Each key keeps its own.
        queue.finish(&"a");
        queue.schedule("a", at(base, 30), Trigger::Requeue);
        queue.schedule("b", at(base, 30), Trigger::Resync);
        let mut popped = vec![
            queue.pop_due(at(base, 30)).unwrap(),
            queue.pop_due(at(base, 30)).unwrap(),
        ];
        popped.sort();
        assert_eq!(popped, [("a", Trigger::Requeue), ("b", Trigger::Resync)]);
    }

    #[tokio::test]
    async fn scheduler_wakes_for_new_and_delayed_work() {
        let scheduler = std::sync::Arc::new(Scheduler::default());
        let runner = {
            let scheduler = scheduler.clone();
            tokio::spawn(async move { scheduler.next().await })
        };
        tokio::task::yield_now().await;
        scheduler.schedule("a", Duration::from_millis(30), Trigger::Poll);
        let started = Instant::now();
        let key = tokio::time::timeout(Duration::from_secs(2), runner)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(key, ("a", Trigger::Poll));
        assert!(started.elapsed() >= Duration::from_millis(25));
    }

    #[test]
    fn error_policy_backs_off_per_key_and_resets_on_success() {
        let policy = ErrorPolicy::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<Duration> = (0..8).map(|_| policy.on_error(&"a")).collect();
        // Jitter adds up to one more delay; the trend still doubles.
        assert!(delays[0] >= Duration::from_millis(100), "{delays:?}");
        assert!(delays[0] <= Duration::from_millis(200), "{delays:?}");
        assert!(delays[3] >= Duration::from_millis(800), "{delays:?}");
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(4)),
            "{delays:?}"
        );
        // Another key starts from the bottom.
        assert!(policy.on_error(&"b") <= Duration::from_millis(200));
        policy.on_success(&"a");
        assert!(policy.on_error(&"a") <= Duration::from_millis(200));
    }
}
