//! [`ErrorHandler`]: retry with exponential backoff and jitter, and the recovery action each kind
//! of failure calls for.

use std::time::{Duration, Instant};

use chromalite_core::{Error, ErrorKind, DEFAULT_DATABASE, DEFAULT_TENANT};
use serde::{Deserialize, Serialize};

use crate::model::Mode;

/// How often and how patiently to retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Each delay is the previous one times this.
    pub backoff_factor: f64,
    /// Delay before the first retry.
    #[serde(with = "crate::time::seconds")]
    pub initial_delay: Duration,
    /// No delay is longer than this.
    #[serde(with = "crate::time::seconds")]
    pub max_delay: Duration,
    /// Relative spread (0 to 1) applied to every delay so that many clients retrying the same
    /// store do not wake up in lock-step.
    pub jitter: f64,
    /// Error kinds worth retrying. `Timeout` is left out by default: repeating a hung call would
    /// multiply the hang; the fallback handles it instead.
    pub retry_on: Vec<ErrorKind>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            backoff_factor: 2.0,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            jitter: 0.2,
            retry_on: vec![ErrorKind::Locked, ErrorKind::Unavailable],
        }
    }
}

impl RetryPolicy {
    /// The nominal (jitter-free) delay before retry number `retry` (0-based).
    #[must_use]
    pub fn nominal_delay(&self, retry: u32) -> Duration {
        let secs = self.initial_delay.as_secs_f64() * self.backoff_factor.max(1.0).powi(retry.min(64) as i32);
        Duration::from_secs_f64(secs.min(self.max_delay.as_secs_f64()))
    }

    /// The delay to sleep before retry number `retry`: nominal, spread by `jitter`, capped.
    #[must_use]
    pub fn delay(&self, retry: u32) -> Duration {
        let spread = self.jitter.clamp(0.0, 1.0) * (2.0 * unit_random() - 1.0);
        let secs = self.nominal_delay(retry).as_secs_f64() * (1.0 + spread);
        Duration::from_secs_f64(secs.clamp(0.0, self.max_delay.as_secs_f64()))
    }

    /// Whether `e` is worth another attempt.
    #[must_use]
    pub fn retries(&self, e: &Error) -> bool {
        self.retry_on.contains(&e.kind())
    }
}

/// A uniform number in `[0, 1)`. Jitter needs spread, not quality: std's per-process random
/// hasher keys mixed with the clock give that without a dependency.
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// What to do about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Wait and try the same call again.
    Retry,
    /// The default tenant or database is gone (a Chroma directory reset by another tool):
    /// recreate `default_tenant` / `default_database`, then retry.
    RecreateDefaults,
    /// The writer lock's holder (`pid`) is dead: take the lock over.
    TakeOverLock { pid: u32 },
    /// A file is damaged: back up, rebuild the damaged part, reopen.
    Repair,
    /// Keep serving in a reduced mode.
    Degrade(Mode),
    /// Nothing to do but report the error.
    Fail,
}

/// Retry logic with exponential backoff, and the recovery strategy per error kind.
#[derive(Debug, Clone, Default)]
pub struct ErrorHandler {
    policy: RetryPolicy,
}

impl ErrorHandler {
    /// A handler with `policy`.
    #[must_use]
    pub fn new(policy: RetryPolicy) -> Self {
        ErrorHandler { policy }
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Runs `op`, retrying transient failures with backoff. Permanent errors return at once; the
    /// last transient error returns once the retries are used up. A server's `retry_after` hint
    /// lengthens the wait, never shortens it.
    pub fn retry_with_backoff<T>(&self, mut op: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
        let mut retry = 0;
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if retry < self.policy.max_retries && self.policy.retries(&e) => {
                    let mut wait = self.policy.delay(retry);
                    if let Error::Unavailable { retry_after: Some(hint), .. } = &e {
                        wait = wait.max((*hint).min(self.policy.max_delay));
                    }
                    sleep_until(Instant::now() + wait);
                    retry += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The recovery action for `error`, met while doing `context` (used in messages only).
    #[must_use]
    pub fn handle_connection_error(&self, error: &Error, context: &str) -> Recovery {
        let _ = context;
        match error {
            Error::NotFound { what: "tenant", name } if name == DEFAULT_TENANT => Recovery::RecreateDefaults,
            Error::NotFound { what: "database", name } if name == DEFAULT_DATABASE => Recovery::RecreateDefaults,
            Error::Locked { pid: Some(pid), .. } if !crate::store::pid_alive(*pid) => {
                Recovery::TakeOverLock { pid: *pid }
            }
            Error::Corrupt { .. } => Recovery::Repair,
            e if self.policy.retries(e) => Recovery::Retry,
            e if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Locked) => {
                Recovery::Degrade(Mode::MemoryFallback)
            }
            e if matches!(e.kind(), ErrorKind::ReadOnly | ErrorKind::Io) => Recovery::Degrade(Mode::ReadOnly),
            _ => Recovery::Fail,
        }
    }

    /// User-facing text and numbered recovery steps for entering `mode` because of `cause`.
    #[must_use]
    pub fn graceful_degradation(&self, mode: Mode, cause: &str, store: &str) -> (String, Vec<String>) {
        match mode {
            Mode::Normal => (format!("{store} is back to normal; every write made meanwhile is in the store."), Vec::new()),
            Mode::ReadOnly => (
                format!("{store} can be read but not written ({cause}). Searches keep working; saving is paused."),
                vec![
                    format!("1. Check that the disk holding {store} has free space and that this user may write to it."),
                    format!("2. Run `chromalite --path {store} doctor` to rule out damaged files."),
                    "3. Writing resumes by itself once the store accepts writes again; no restart is needed.".into(),
                ],
            ),
            Mode::MemoryFallback => (
                format!("{store} is unavailable ({cause}). Work continues in memory and every write is journaled on disk."),
                vec![
                    format!("1. If another program uses {store}, let it finish or stop it (`chromalite --path {store} doctor` names the lock holder)."),
                    "2. If the store is a server, check that it is running and reachable.".into(),
                    "3. Keep working: the journaled writes are replayed into the store, in order and once, as soon as it answers.".into(),
                    "4. Do not delete the `chromalite-session` folder: it holds the journal.".into(),
                ],
            ),
        }
    }
}

/// Sleeps until `deadline` (robust against early wake-ups).
fn sleep_until(deadline: Instant) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_by_the_factor_within_the_jitter_and_cap() {
        let p = RetryPolicy {
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(35),
            ..RetryPolicy::default()
        };
        assert_eq!(p.nominal_delay(0), Duration::from_millis(10));
        assert_eq!(p.nominal_delay(1), Duration::from_millis(20));
        assert_eq!(p.nominal_delay(2), Duration::from_millis(35));
        for r in 0..4 {
            let d = p.delay(r).as_secs_f64();
            let n = p.nominal_delay(r).as_secs_f64();
            assert!(d >= n * 0.8 - 1e-9 && d <= (n * 1.2).min(0.035) + 1e-9, "retry {r}: {d} vs {n}");
        }
    }

    #[test]
    fn recovery_actions_follow_the_kind() {
        let h = ErrorHandler::default();
        assert_eq!(
            h.handle_connection_error(&Error::not_found("tenant", DEFAULT_TENANT), "x"),
            Recovery::RecreateDefaults
        );
        assert_eq!(h.handle_connection_error(&Error::not_found("collection", "c"), "x"), Recovery::Fail);
        assert_eq!(h.handle_connection_error(&Error::corrupt("f", "g", "h"), "x"), Recovery::Repair);
        assert_eq!(
            h.handle_connection_error(&Error::Locked { path: "p".into(), pid: Some(std::process::id()) }, "x"),
            Recovery::Retry
        );
        assert_eq!(
            h.handle_connection_error(&Error::Timeout("t".into()), "x"),
            Recovery::Degrade(Mode::MemoryFallback)
        );
        assert_eq!(
            h.handle_connection_error(&Error::ReadOnly { reason: "r".into() }, "x"),
            Recovery::Degrade(Mode::ReadOnly)
        );
    }
}
