//! Rate limiting with GCRA (the generic cell rate algorithm): one atomic "theoretical
//! arrival time" per key, updated by compare-and-swap, so a limit holds exactly under any
//! number of concurrent requests without a lock. A limit of `n` per window allows a burst
//! of `n` and then one request every `window / n`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use timedb::model::RateLimit;

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// Seconds until the full burst is available again.
    pub reset_secs: u64,
    /// When denied: seconds to wait before one request is allowed.
    pub retry_after_secs: u64,
}

/// One GCRA cell.
pub struct Gcra {
    limit: RateLimit,
    /// Nanoseconds (since the limiter's epoch) at which the bucket is empty again.
    tat: AtomicU64,
    interval: u64,
    period: u64,
}

impl Gcra {
    pub fn new(limit: RateLimit) -> Self {
        let period = limit.per.seconds() * 1_000_000_000;
        Self { limit, tat: AtomicU64::new(0), interval: period / u64::from(limit.requests), period }
    }

    /// Take one cell at `now` (nanoseconds since the epoch), if one is free.
    pub fn check(&self, now: u64) -> Decision {
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            let new_tat = start + self.interval;
            if new_tat > now + self.period {
                // Over the burst: the earliest instant a cell frees up.
                let wait = new_tat - now - self.period;
                return Decision {
                    allowed: false,
                    limit: self.limit.requests,
                    remaining: 0,
                    reset_secs: ceil_secs(tat.saturating_sub(now)),
                    retry_after_secs: ceil_secs(wait).max(1),
                };
            }
            match self.tat.compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    let free = (now + self.period - new_tat) / self.interval;
                    return Decision {
                        allowed: true,
                        limit: self.limit.requests,
                        remaining: free.min(u64::from(self.limit.requests)) as u32,
                        reset_secs: ceil_secs(new_tat - now),
                        retry_after_secs: 0,
                    };
                }
                Err(actual) => tat = actual,
            }
        }
    }
}

fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

/// GCRA cells by key (API key id, client address), created on first use. The limit of
/// an existing cell is replaced when a key's configured limit changes.
pub struct Limiter<K> {
    epoch: Instant,
    cells: RwLock<HashMap<K, Arc<Gcra>>>,
    max_cells: usize,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(max_cells: usize) -> Self {
        Self { epoch: Instant::now(), cells: RwLock::new(HashMap::new()), max_cells }
    }

    fn now(&self) -> u64 {
        // Offset by a day so a fresh cell (tat = 0) starts with its full burst.
        (self.epoch.elapsed() + Duration::from_secs(86_400)).as_nanos() as u64
    }

    fn cell(&self, key: &K, limit: RateLimit) -> Arc<Gcra> {
        if let Some(c) = self.cells.read().unwrap_or_else(|p| p.into_inner()).get(key)
            && c.limit == limit
        {
            return c.clone();
        }
        let mut cells = self.cells.write().unwrap_or_else(|p| p.into_inner());
        if cells.len() >= self.max_cells {
            // Bounded memory: forgetting idle cells only ever grants a fresh burst.
            cells.clear();
        }
        let cell = cells.entry(key.clone()).or_insert_with(|| Arc::new(Gcra::new(limit)));
        if cell.limit != limit {
            *cell = Arc::new(Gcra::new(limit));
        }
        cell.clone()
    }

    /// Take one request from `key`'s allowance.
    pub fn check(&self, key: &K, limit: RateLimit) -> Decision {
        let now = self.now();
        self.cell(key, limit).check(now)
    }

    /// Whether `key` has allowance left, without taking any.
    pub fn is_exhausted(&self, key: &K, limit: RateLimit) -> Option<Decision> {
        let now = self.now();
        let cell = self.cell(key, limit);
        let tat = cell.tat.load(Ordering::Relaxed);
        (tat.max(now) + cell.interval > now + cell.period).then(|| Decision {
            allowed: false,
            limit: limit.requests,
            remaining: 0,
            reset_secs: ceil_secs(tat.saturating_sub(now)),
            retry_after_secs: ceil_secs(tat.max(now) + cell.interval - now - cell.period).max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timedb::model::Window;

    #[test]
    fn a_burst_of_n_then_one_per_interval() {
        let g = Gcra::new(RateLimit { requests: 3, per: Window::Second });
        let t0 = 10_000_000_000;
        let d: Vec<bool> = (0..4).map(|_| g.check(t0).allowed).collect();
        assert_eq!(d, vec![true, true, true, false]);
        let denied = g.check(t0);
        assert_eq!(denied.retry_after_secs, 1);
        assert!(g.check(t0 + 340_000_000).allowed, "one cell frees after 1/3 s");
        assert!(!g.check(t0 + 340_000_000).allowed);
    }

    #[test]
    fn remaining_counts_down() {
        let g = Gcra::new(RateLimit { requests: 5, per: Window::Minute });
        let t0 = 100_000_000_000;
        let left: Vec<u32> = (0..5).map(|_| g.check(t0).remaining).collect();
        assert_eq!(left, vec![4, 3, 2, 1, 0]);
    }

    #[test]
    fn exact_under_concurrency() {
        let limiter = Arc::new(Limiter::<u32>::new(16));
        let limit = RateLimit { requests: 100, per: Window::Hour };
        let allowed = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for _ in 0..50 {
                        if limiter.check(&7, limit).allowed {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(allowed.load(Ordering::Relaxed), 100);
    }
}
