//! Admission (spec §7, DESIGN §6): concurrent in-flight `/data` requests per caller and
//! globally, held by a [`Permit`] while the query runs and its response is written (also
//! while it runs as a job); concurrent scans per physical table; a budget of result bytes in
//! flight; and an optional per-caller requests-per-second rate through governor's keyed
//! limiter. A caller is an authenticated user, or a client address when auth is off.

use crate::config::LimitsConfig;
use crate::error::{Error, Reason};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A per-user rate check; `Err` carries how long to wait.
pub trait RateCheck: Send + Sync {
    fn check(&self, user: &str) -> Result<(), Duration>;
}

/// governor's keyed GCRA limiter over any clock (a fake one in tests).
pub struct GovernorRate<C: Clock> {
    limiter: RateLimiter<String, DashMapStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>,
    clock: C,
}

impl<C: Clock + Clone> GovernorRate<C> {
    pub fn new(per_second: u32, burst: u32, clock: C) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        let quota = Quota::per_second(rate).allow_burst(burst);
        Some(GovernorRate { limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()), clock })
    }
}

impl<C> RateCheck for GovernorRate<C>
where
    C: Clock + Send + Sync,
{
    fn check(&self, user: &str) -> Result<(), Duration> {
        self.limiter.check_key(&user.to_string()).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[derive(Default)]
struct Counts {
    global: u64,
    keys: HashMap<String, u64>,
}

/// Amounts held, in all and per key (a caller, a physical table, a client address), each
/// taken under optional caps and given back when its [`Held`] is dropped.
#[derive(Default, Clone)]
pub struct Ledger(Arc<Mutex<Counts>>);

/// Which cap a [`Ledger::take`] would have passed.
pub enum Over {
    Global,
    Key,
}

impl Ledger {
    /// Takes `amount` for `key` unless that would pass `global_cap` (in all) or `key_cap`.
    pub fn take(&self, key: &str, amount: u64, global_cap: Option<u64>, key_cap: Option<u64>) -> Result<Held, Over> {
        let mut l = self.lock();
        if global_cap.is_some_and(|cap| l.global + amount > cap) {
            return Err(Over::Global);
        }
        let mine = l.keys.get(key).copied().unwrap_or(0);
        if key_cap.is_some_and(|cap| mine + amount > cap) {
            return Err(Over::Key);
        }
        l.global += amount;
        *l.keys.entry(key.to_string()).or_default() += amount;
        Ok(Held { ledger: self.clone(), key: key.to_string(), amount })
    }

    /// Held in all, and by `key`.
    pub fn held(&self, key: &str) -> (u64, u64) {
        let l = self.lock();
        (l.global, l.keys.get(key).copied().unwrap_or(0))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An amount taken from a ledger; dropping it gives it back.
pub struct Held {
    ledger: Ledger,
    key: String,
    amount: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut l = self.ledger.lock();
        l.global = l.global.saturating_sub(self.amount);
        if let Some(n) = l.keys.get_mut(&self.key) {
            *n = n.saturating_sub(self.amount);
            if *n == 0 {
                l.keys.remove(&self.key);
            }
        }
    }
}

/// Holding one permits one in-flight data request, from admission until the last byte of its
/// response is handed to the connection (or the connection is gone); dropping it frees the
/// slot.
pub type Permit = Held;

/// Concurrency limits per caller and globally, per physical table, the budget of result bytes
/// in flight, and the optional rate limit.
pub struct Admission {
    cfg: LimitsConfig,
    counts: Ledger,
    tables: Ledger,
    bytes: Ledger,
    bytes_cap: (u64, u64),
    rate: Option<Box<dyn RateCheck>>,
    /// Requests admitted since start (the memory purge's sign of activity).
    admitted: std::sync::atomic::AtomicU64,
}

fn cap(limit: i64) -> Option<u64> {
    (limit >= 0).then_some(limit as u64)
}

impl Admission {
    /// Limits from `[limits]`, with no byte budget (see [`Admission::with_byte_budget`]).
    pub fn new(cfg: LimitsConfig) -> Admission {
        let rate = GovernorRate::new(cfg.rate_per_user, cfg.rate_burst, DefaultClock::default())
            .map(|g| Box::new(g) as Box<dyn RateCheck>);
        Admission {
            cfg,
            counts: Ledger::default(),
            tables: Ledger::default(),
            bytes: Ledger::default(),
            bytes_cap: (u64::MAX, u64::MAX),
            rate,
            admitted: Default::default(),
        }
    }

    /// Sets the result-byte budget: `global` in all, `per_caller` for one caller.
    pub fn with_byte_budget(mut self, global: usize, per_caller: usize) -> Admission {
        self.bytes_cap = (global as u64, per_caller as u64);
        self
    }

    /// Replaces the rate limiter (tests use governor's fake clock).
    pub fn with_rate(mut self, rate: Box<dyn RateCheck>) -> Admission {
        self.rate = Some(rate);
        self
    }

    /// Admits one data request of the caller `key` for `uri`; `ui` (granted by a role, never
    /// by a header) selects the UI per-caller limit.
    pub fn admit(&self, key: &str, ui: bool, uri: &str) -> Result<Permit, Error> {
        self.check_rate(key, uri)?;
        self.admit_running(key, ui, uri)
    }

    /// The per-user request rate alone: every data request counts, answered from the cache or
    /// not.
    pub fn check_rate(&self, key: &str, uri: &str) -> Result<(), Error> {
        if let Some(rate) = &self.rate
            && let Err(wait) = rate.check(key)
        {
            return Err(Error::new(
                Reason::RateLimited,
                format!(
                    "Rate limit reached. Too many requests per second for this user; retry after {} ms. Reject {uri}",
                    wait.as_millis().max(1)
                ),
            ));
        }
        Ok(())
    }

    /// The concurrency limits alone: for a query that is about to run.
    pub fn admit_running(&self, key: &str, ui: bool, uri: &str) -> Result<Permit, Error> {
        let limit = if ui { self.cfg.request_limit_ui } else { self.cfg.request_limit_per_user };
        self.admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.counts.take(key, 1, cap(self.cfg.request_limit_global), cap(limit)).map_err(|over| {
            let which = match over {
                Over::Global => "Global request limit exceeded",
                Over::Key => "Exceeded user request limit",
            };
            Error::new(Reason::RateLimited, format!("Rate limit reached. {which}. Reject {uri}"))
        })
    }

    /// Admits one scan of the physical table `table`, limited to `max` at once.
    pub fn admit_table(&self, table: &str, max: Option<usize>) -> Result<Option<Held>, Error> {
        let Some(max) = max else { return Ok(None) };
        self.tables.take(table, 1, None, Some(max as u64)).map(Some).map_err(|_| {
            Error::new(
                Reason::ServerBusy,
                format!("Table '{table}' is busy: {max} queries are scanning it (its max_concurrent_queries). Retry shortly."),
            )
        })
    }

    /// Reserves `bytes` of result in flight for the caller `key`: 429 past the caller's
    /// budget, 503 past the global one, both with `Retry-After`.
    pub fn reserve_bytes(&self, key: &str, bytes: u64) -> Result<Held, Error> {
        let (global, per_caller) = self.bytes_cap;
        let mb = |b: u64| b.div_ceil(1 << 20);
        self.bytes.take(key, bytes, Some(global), Some(per_caller)).map_err(|over| match over {
            Over::Key => Error::new(
                Reason::RateLimited,
                format!(
                    "Your responses in flight hold too much: this result needs {} MB and your budget is {} MB (query.max_inflight_bytes_per_user). Read or close your open responses, or narrow the query.",
                    mb(bytes),
                    mb(per_caller)
                ),
            ),
            Over::Global => Error::new(
                Reason::ServerBusy,
                format!(
                    "The server holds too many results in flight to take one of {} MB (query.max_inflight_bytes). Retry shortly.",
                    mb(bytes)
                ),
            ),
        })
    }

    /// Result bytes held for responses in flight, in all.
    pub fn bytes_in_flight(&self) -> u64 {
        self.bytes.held("").0
    }

    /// In-flight requests: global count and per caller.
    pub fn snapshot(&self) -> (usize, Vec<(String, usize)>) {
        let c = self.counts.lock();
        (c.global as usize, c.keys.iter().map(|(u, n)| (u.clone(), *n as usize)).collect())
    }

    /// Requests that asked for admission since start (admitted or not).
    pub fn admitted(&self) -> u64 {
        self.admitted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// In-flight requests: (global, of the caller `key`).
    pub fn in_flight(&self, key: &str) -> (usize, usize) {
        let (global, mine) = self.counts.held(key);
        (global as usize, mine as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn cfg(global: i64, user: i64) -> LimitsConfig {
        LimitsConfig { request_limit_global: global, request_limit_per_user: user, ..Default::default() }
    }

    #[test]
    fn per_user_then_global() {
        let a = Admission::new(cfg(3, 2));
        let p1 = a.admit("ann", false, "u").unwrap();
        let _p2 = a.admit("ann", false, "u").unwrap();
        let e = a.admit("ann", false, "u").err().unwrap();
        assert_eq!(e.message, "Rate limit reached. Exceeded user request limit. Reject u");
        assert_eq!(e.status(), 429);
        let _p3 = a.admit("bob", false, "u").unwrap();
        let e = a.admit("cat", false, "u").err().unwrap();
        assert_eq!(e.message, "Rate limit reached. Global request limit exceeded. Reject u");
        drop(p1);
        assert!(a.admit("ann", false, "u").is_ok(), "a released permit frees the slot");
        assert_eq!(a.in_flight("ann"), (2, 1), "the permit of the last admit was dropped at once");
    }

    #[test]
    fn minus_one_disables() {
        let a = Admission::new(cfg(-1, -1));
        let _ps: Vec<Permit> = (0..100).map(|_| a.admit("x", false, "u").unwrap()).collect();
    }

    #[test]
    fn byte_budget_per_caller_then_global() {
        let a = Admission::new(cfg(-1, -1)).with_byte_budget(100, 60);
        let h = a.reserve_bytes("ann", 50).unwrap();
        let e = a.reserve_bytes("ann", 20).err().unwrap();
        assert_eq!(e.status(), 429, "{}", e.message);
        let _b = a.reserve_bytes("bob", 50).unwrap();
        let e = a.reserve_bytes("cat", 10).err().unwrap();
        assert_eq!(e.status(), 503, "{}", e.message);
        assert_eq!(a.bytes_in_flight(), 100);
        drop(h);
        assert!(a.reserve_bytes("cat", 10).is_ok(), "released bytes are free again");
    }

    #[test]
    fn table_concurrency() {
        let a = Admission::new(cfg(-1, -1));
        assert!(a.admit_table("t", None).unwrap().is_none());
        let h = a.admit_table("t", Some(1)).unwrap();
        assert_eq!(a.admit_table("t", Some(1)).err().unwrap().status(), 503);
        assert!(a.admit_table("u", Some(1)).is_ok(), "tables are counted apart");
        drop(h);
        assert!(a.admit_table("t", Some(1)).is_ok());
    }

    #[test]
    fn rate_limit_with_fake_clock() {
        let clock = FakeRelativeClock::default();
        let rate = GovernorRate::new(2, 2, clock.clone()).unwrap();
        let a = Admission::new(cfg(-1, -1)).with_rate(Box::new(rate));
        assert!(a.admit("ann", false, "u").is_ok());
        assert!(a.admit("ann", false, "u").is_ok());
        let e = a.admit("ann", false, "u").err().unwrap();
        assert!(e.message.starts_with("Rate limit reached. Too many requests per second"), "{}", e.message);
        assert!(a.admit("bob", false, "u").is_ok(), "keyed per user");
        clock.advance(Duration::from_millis(500));
        assert!(a.admit("ann", false, "u").is_ok());
    }
}
