//! Admission (spec §7, DESIGN §6): concurrent in-flight `/data` requests per user and
//! globally, held by a [`Permit`] exactly while the query runs (also after it became a job),
//! plus an optional per-user requests-per-second rate through governor's keyed limiter.

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
    global: usize,
    users: HashMap<String, usize>,
}

/// Concurrency limits and the optional rate limit.
pub struct Admission {
    cfg: LimitsConfig,
    counts: Arc<Mutex<Counts>>,
    rate: Option<Box<dyn RateCheck>>,
}

/// Holding one permits one in-flight data request; dropping it releases the slot.
pub struct Permit {
    user: String,
    counts: Arc<Mutex<Counts>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.global = c.global.saturating_sub(1);
        if let Some(n) = c.users.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.users.remove(&self.user);
            }
        }
    }
}

impl Admission {
    pub fn new(cfg: LimitsConfig) -> Admission {
        let rate = GovernorRate::new(cfg.rate_per_user, cfg.rate_burst, DefaultClock::default())
            .map(|g| Box::new(g) as Box<dyn RateCheck>);
        Admission { cfg, counts: Arc::default(), rate }
    }

    /// Replaces the rate limiter (tests use governor's fake clock).
    pub fn with_rate(mut self, rate: Box<dyn RateCheck>) -> Admission {
        self.rate = Some(rate);
        self
    }

    /// Admits one data request of `user` for `uri`; `ui` selects the UI per-user limit.
    pub fn admit(&self, user: &str, ui: bool, uri: &str) -> Result<Permit, Error> {
        if let Some(rate) = &self.rate
            && let Err(wait) = rate.check(user)
        {
            return Err(Error::new(
                Reason::RateLimited,
                format!(
                    "Rate limit reached. Too many requests per second for this user; retry after {} ms. Reject {uri}",
                    wait.as_millis().max(1)
                ),
            ));
        }
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if self.cfg.request_limit_global >= 0 && c.global as i64 >= self.cfg.request_limit_global {
            return Err(Error::new(
                Reason::RateLimited,
                format!("Rate limit reached. Global request limit exceeded. Reject {uri}"),
            ));
        }
        let limit = if ui { self.cfg.request_limit_ui } else { self.cfg.request_limit_per_user };
        let mine = c.users.get(user).copied().unwrap_or(0);
        if limit >= 0 && mine as i64 >= limit {
            return Err(Error::new(
                Reason::RateLimited,
                format!("Rate limit reached. Exceeded user request limit. Reject {uri}"),
            ));
        }
        c.global += 1;
        *c.users.entry(user.to_string()).or_default() += 1;
        Ok(Permit { user: user.to_string(), counts: self.counts.clone() })
    }

    /// In-flight requests: global count and per user.
    pub fn snapshot(&self) -> (usize, Vec<(String, usize)>) {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        (c.global, c.users.iter().map(|(u, n)| (u.clone(), *n)).collect())
    }

    /// In-flight requests: (global, of `user`).
    pub fn in_flight(&self, user: &str) -> (usize, usize) {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        (c.global, c.users.get(user).copied().unwrap_or(0))
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
