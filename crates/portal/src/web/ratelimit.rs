//! Rate limits on sign-ins and submissions, in memory: a fixed window per
//! key (`account:NAME`, `address:IP`), so one client cannot try many
//! accounts and many clients cannot try one account faster than the limit.
//! Each replica counts on its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts per window, per key.
pub struct RateLimiter {
    max: u32,
    window: Duration,
    hits: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Entries kept before expired windows are swept.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            max,
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt against every key, or refuses it without counting
    /// when any key is at its limit: `Err(seconds)` until that key's window
    /// ends (for `Retry-After`).
    pub fn attempt(&self, keys: &[String]) -> Result<(), u64> {
        self.attempt_at(keys, Instant::now())
    }

    fn attempt_at(&self, keys: &[String], now: Instant) -> Result<(), u64> {
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        if hits.len() > SWEEP_AT {
            hits.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let mut wait = None;
        for k in keys {
            if let Some((start, n)) = hits.get(k) {
                let age = now.duration_since(*start);
                if age < self.window && *n >= self.max {
                    let left = (self.window - age).as_secs().max(1);
                    wait = Some(wait.map_or(left, |w: u64| w.max(left)));
                }
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        for k in keys {
            let e = hits.entry(k.clone()).or_insert((now, 0));
            if now.duration_since(e.0) >= self.window {
                *e = (now, 0);
            }
            e.1 += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_window() {
        let l = RateLimiter::new(2, Duration::from_secs(60));
        let t = Instant::now();
        let a = ["account:ann".to_string(), "address:1".to_string()];
        let b = ["account:bob".to_string(), "address:1".to_string()];
        let c = ["account:bob".to_string(), "address:2".to_string()];
        assert!(l.attempt_at(&a, t).is_ok());
        assert!(l.attempt_at(&a, t).is_ok());
        // The address is spent, whatever the account.
        assert_eq!(l.attempt_at(&b, t + Duration::from_secs(10)), Err(50));
        assert!(
            l.attempt_at(&c, t).is_ok(),
            "another address, another account"
        );
        assert!(
            l.attempt_at(&a, t + Duration::from_secs(60)).is_ok(),
            "a new window"
        );
    }
}
