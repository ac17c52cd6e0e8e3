//! Time buckets: the request intervals cut into buckets of the base grain (the request grain,
//! or the inner grain of a nested average), each mapped to an output bucket. Boundaries are
//! computed once per query in the zone; rows find their bucket by a cursor check (data sorted
//! by time hits it almost always) or a binary search — never by formatting dates.

use super::EngineError;
use crate::time::{self, Grain, Interval};
use chrono_tz::Tz;

/// Marker for "this row is not aggregated".
pub const SKIP: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub struct Buckets {
    starts: Vec<i64>,
    ends: Vec<i64>,
    /// Output bucket of each base bucket.
    pub outer: Vec<u32>,
    /// Start of each output bucket (what `dateTime` prints).
    pub outer_starts: Vec<i64>,
    pub base_grain: Grain,
    pub tz: Tz,
}

impl Buckets {
    /// Cuts `intervals` (aligned to `grain`) into `base` buckets, only where `clip` (the data's
    /// time range, inclusive) can have rows. `base` must satisfy `grain`.
    pub fn new(
        intervals: &[Interval],
        grain: Grain,
        base: Grain,
        tz: Tz,
        clip: Option<(i64, i64)>,
        max_buckets: usize,
    ) -> Result<Buckets, EngineError> {
        let mut b = Buckets { starts: vec![], ends: vec![], outer: vec![], outer_starts: vec![], base_grain: base, tz };
        let first_start = intervals.first().map(|i| i.start).unwrap_or(0);
        for iv in intervals {
            let (lo, hi) = match clip {
                Some((min, max)) => (iv.start.max(min), iv.end.min(max.saturating_add(1))),
                None => (iv.start, iv.end),
            };
            if lo >= hi {
                continue;
            }
            if base == Grain::All {
                b.push(iv.start, iv.end, grain, first_start);
                continue;
            }
            let mut aligned = time::floor(base, tz, lo);
            let mut s = aligned.max(iv.start);
            while s < hi {
                // Step from the aligned boundary: `s` may be an unaligned interval start (grain all).
                let next = time::add(base, tz, aligned, 1);
                let e = next.min(iv.end);
                if e <= s {
                    break;
                }
                b.push(s, e, grain, first_start);
                if b.starts.len() > max_buckets {
                    return Err(EngineError::TooManyBuckets(max_buckets));
                }
                s = e;
                aligned = next;
            }
        }
        Ok(b)
    }

    fn push(&mut self, s: i64, e: i64, grain: Grain, first_start: i64) {
        let outer_start = if grain == Grain::All { first_start } else { time::floor(grain, self.tz, s) };
        let idx = match self.outer_starts.last() {
            Some(&last) if last == outer_start => self.outer_starts.len() - 1,
            _ => {
                self.outer_starts.push(outer_start);
                self.outer_starts.len() - 1
            }
        };
        self.starts.push(s);
        self.ends.push(e);
        self.outer.push(idx as u32);
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    pub fn start(&self, i: usize) -> i64 {
        self.starts[i]
    }

    /// The base bucket of instant `t`, or [`SKIP`]. `cursor` remembers the last hit.
    #[inline]
    pub fn locate(&self, t: i64, cursor: &mut usize) -> u32 {
        let c = *cursor;
        if c < self.starts.len() && t >= self.starts[c] && t < self.ends[c] {
            return c as u32;
        }
        let i = self.starts.partition_point(|&s| s <= t);
        if i == 0 {
            return SKIP;
        }
        let i = i - 1;
        if t < self.ends[i] {
            *cursor = i;
            i as u32
        } else {
            SKIP
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;

    fn utc(s: &str) -> i64 {
        chrono::NaiveDateTime::parse_from_str(&format!("{s} 00:00:00"), "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    #[test]
    fn day_buckets_in_month_output() {
        let iv = [Interval::new(utc("2013-01-01"), utc("2013-03-01"))];
        let b = Buckets::new(&iv, Grain::Month, Grain::Day, chrono_tz::UTC, None, 1000).unwrap();
        assert_eq!(b.len(), 59);
        assert_eq!(b.outer_starts, vec![utc("2013-01-01"), utc("2013-02-01")]);
        let mut c = 0;
        assert_eq!(b.outer[b.locate(utc("2013-02-10") + 5, &mut c) as usize], 1);
        assert_eq!(b.locate(utc("2013-03-01"), &mut c), SKIP);
        assert_eq!(b.locate(utc("2012-12-31"), &mut c), SKIP);
    }

    #[test]
    fn all_grain_maps_every_interval_to_one_bucket() {
        let iv = [Interval::new(10, 20), Interval::new(30, 40)];
        let b = Buckets::new(&iv, Grain::All, Grain::All, chrono_tz::UTC, None, 10).unwrap();
        assert_eq!(b.outer, vec![0, 0]);
        assert_eq!(b.outer_starts, vec![10]);
        let mut c = 0;
        assert_eq!(b.locate(25, &mut c), SKIP);
        assert_eq!(b.locate(35, &mut c), 1);
    }

    #[test]
    fn clipping_and_caps() {
        let iv = [Interval::new(utc("2000-01-01"), utc("2100-01-01"))];
        let b = Buckets::new(&iv, Grain::Day, Grain::Day, New_York, Some((utc("2013-01-01"), utc("2013-01-03"))), 100)
            .unwrap();
        assert_eq!(b.len(), 3, "clipped to the data range");
        assert!(Buckets::new(&iv, Grain::Day, Grain::Day, New_York, None, 100).is_err());
    }
}
