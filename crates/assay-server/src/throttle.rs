//! Login throttling: after `MAX_FAILURES` wrong passwords for one username within `WINDOW`, logins for that
//! username are refused with 429 for `LOCKOUT`, whatever the password, so passwords cannot be guessed at the
//! speed of the network. A successful login clears the count. Kept in memory per server.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
pub const LOCKOUT: Duration = Duration::from_secs(5 * 60);
/// Usernames tracked at most; the oldest entries go first.
const CAPACITY: usize = 10_000;

/// Failures of one username: how many, since when, and the end of its lockout.
type Failures = (u32, Instant, Option<Instant>);

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, Failures>>,
}

impl LoginThrottle {
    fn key(username: &str) -> String {
        username.trim().to_lowercase()
    }

    /// `Some(seconds)` while the username is locked out.
    pub fn locked(&self, username: &str) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (_, _, until) = map.get(&Self::key(username))?;
        let left = until.and_then(|u| u.checked_duration_since(Instant::now()))?;
        Some(left.as_secs().max(1))
    }

    pub fn failed(&self, username: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CAPACITY {
            map.retain(|_, (_, first, until)| {
                now.duration_since(*first) < WINDOW || until.is_some_and(|u| u > now)
            });
        }
        let e = map.entry(Self::key(username)).or_insert((0, now, None));
        if now.duration_since(e.1) >= WINDOW && e.2.is_none_or(|u| u <= now) {
            *e = (0, now, None);
        }
        e.0 += 1;
        if e.0 >= MAX_FAILURES {
            e.2 = Some(now + LOCKOUT);
        }
    }

    pub fn succeeded(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&Self::key(username));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_repeated_failures_and_a_success_clears_them() {
        let t = LoginThrottle::default();
        for _ in 0..MAX_FAILURES - 1 {
            t.failed("Alice");
        }
        assert_eq!(t.locked("alice"), None);
        t.succeeded("alice");
        for _ in 0..MAX_FAILURES - 1 {
            t.failed("alice");
        }
        assert_eq!(
            t.locked("alice"),
            None,
            "the success cleared the earlier failures"
        );
        t.failed(" ALICE ");
        assert!(t.locked("alice").is_some_and(|s| s <= LOCKOUT.as_secs()));
        assert_eq!(t.locked("bob"), None);
    }
}
