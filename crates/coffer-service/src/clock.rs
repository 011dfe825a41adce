//! Time as a parameter: the service never reads the system clock directly, so tests can move time
//! (deletion windows, version pruning) without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_store::EpochMillis;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now_millis(&self) -> EpochMillis;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> EpochMillis {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as EpochMillis).unwrap_or(0)
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: EpochMillis) -> Self {
        ManualClock(AtomicI64::new(start))
    }

    pub fn advance_millis(&self, by: i64) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }

    pub fn set(&self, to: EpochMillis) {
        self.0.store(to, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> EpochMillis {
        self.0.load(Ordering::SeqCst)
    }
}

pub const MILLIS_PER_DAY: i64 = 86_400_000;

/// Midnight UTC of the day `t` falls in.
pub fn start_of_day(t: EpochMillis) -> EpochMillis {
    t.div_euclid(MILLIS_PER_DAY) * MILLIS_PER_DAY
}
