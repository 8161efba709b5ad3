//! Each test's scope: a short name derived from the test's name, which
//! names the test's own operator service (`asw-op-<scope>`) and labels the
//! clusters it creates (`asw.e2e.scope=<scope>`), so that tests running
//! side by side never act on each other's clusters.
//!
//! The harness sets it for the thread that runs a test ([`enter`]); the
//! helpers that deploy an operator or create a cluster read it
//! ([`current`]). A helper called from a thread the test spawned itself
//! sees the scope of no test, and says so.

use std::cell::RefCell;

/// The service label every cluster a test creates carries, with the
/// test's scope as its value; the test's operator selects on it.
pub const LABEL: &str = "asw.e2e.scope";

thread_local! {
    static CURRENT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The scope of test `name`: its function name, shortened, and a hash of
/// the whole name (two tests never share one). At most 40 characters, of
/// `[a-z0-9-]`, so that `asw-op-<scope>.lease` is a valid config name.
pub fn of(name: &str) -> String {
    let function = name.rsplit("::").next().unwrap_or(name);
    let short: String = function
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(24)
        .collect();
    // FNV-1a, 32 bits: stable across runs and builds.
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{}-{hash:08x}", short.trim_end_matches('-'))
}

/// Sets the scope of test `name` on this thread until the guard drops.
pub fn enter(name: &str) -> Entered {
    CURRENT.with(|c| *c.borrow_mut() = Some(of(name)));
    Entered(())
}

/// Clears the thread's scope when dropped.
pub struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

/// The scope of the test running on this thread.
pub fn current() -> Result<String, libtest_mimic::Failed> {
    CURRENT
        .with(|c| c.borrow().clone())
        .ok_or_else(|| "no test scope on this thread: deploy operators and create clusters from the test's own thread".into())
}

/// The label selector of the current test's operator, `asw.e2e.scope=<scope>`.
pub fn selector() -> Result<String, libtest_mimic::Failed> {
    Ok(format!("{LABEL}={}", current()?))
}
