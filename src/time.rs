//! Time grains, zoned bucket arithmetic and intervals.
//!
//! Every instant in quiver is UTC milliseconds since the epoch (`i64`). A [`Grain`] divides time
//! into buckets *in a time zone*: day, week (Monday), month, quarter and year buckets start at
//! local midnight, so their UTC length changes across DST; second, minute and hour buckets are
//! fixed durations floored in local time. The grammar (alignment of `dateTime`) and the engine
//! (bucket boundaries) both use these functions, so they can never disagree.

use chrono::{Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use std::fmt;

pub const MS_PER_SECOND: i64 = 1_000;
pub const MS_PER_MINUTE: i64 = 60_000;
pub const MS_PER_HOUR: i64 = 3_600_000;
pub const MS_PER_DAY: i64 = 86_400_000;

/// A time granularity of the API (`second` is a quiver addition, DESIGN §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grain {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
    All,
}

impl Grain {
    pub const ALL_GRAINS: [Grain; 9] = [
        Grain::Second,
        Grain::Minute,
        Grain::Hour,
        Grain::Day,
        Grain::Week,
        Grain::Month,
        Grain::Quarter,
        Grain::Year,
        Grain::All,
    ];

    /// Parses a grain name, case-insensitively.
    pub fn parse(s: &str) -> Option<Grain> {
        let lower = s.to_ascii_lowercase();
        Grain::ALL_GRAINS.iter().copied().find(|g| g.name() == lower)
    }

    pub fn name(self) -> &'static str {
        match self {
            Grain::Second => "second",
            Grain::Minute => "minute",
            Grain::Hour => "hour",
            Grain::Day => "day",
            Grain::Week => "week",
            Grain::Month => "month",
            Grain::Quarter => "quarter",
            Grain::Year => "year",
            Grain::All => "all",
        }
    }

    /// `Day`, `Week`, … as in `/tables?format=fullview`.
    pub fn long_name(self) -> String {
        let n = self.name();
        let mut c = n.chars();
        match c.next() {
            Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
            None => String::new(),
        }
    }

    /// The alignment rule printed after a misalignment error (spec §4.3).
    pub fn alignment_description(self) -> &'static str {
        match self {
            Grain::Second => "Second must start and end on the 1st millisecond of a second.",
            Grain::Minute => "Minute must start and end on the 1st second of a minute.",
            Grain::Hour => "Hour must start and end on the 1st minute of an hour.",
            Grain::Day => "Day must start and end on the 1st hour of a day.",
            Grain::Week => "Week must start on a Monday and end on a Monday.",
            Grain::Month => "Month must start on the 1st of a month and end on the 1st of a month.",
            Grain::Quarter => {
                "Quarter must start and end on the 1st day of the 1st, 4th, 7th, or 10th month of a year."
            }
            Grain::Year => "Year must start on January 1st and end on January 1st.",
            Grain::All => "",
        }
    }

    /// Whether data stored at grain `self` can answer a request at grain `request`
    /// (spec §10: hour from minute, day from hour, week and month from day, quarter from month,
    /// year from quarter or month, `all` from anything; transitively; week and month never from
    /// each other).
    pub fn can_satisfy(self, request: Grain) -> bool {
        if self == request || request == Grain::All {
            return true;
        }
        use Grain::*;
        let direct: &[Grain] = match self {
            Second => &[Minute],
            Minute => &[Hour],
            Hour => &[Day],
            Day => &[Week, Month],
            Month => &[Quarter, Year],
            Quarter => &[Year],
            Week | Year | All => &[],
        };
        direct.iter().any(|&g| g.can_satisfy(request))
    }

    /// Fixed duration of sub-day grains in ms, `None` for calendar grains and `all`.
    pub fn fixed_ms(self) -> Option<i64> {
        match self {
            Grain::Second => Some(MS_PER_SECOND),
            Grain::Minute => Some(MS_PER_MINUTE),
            Grain::Hour => Some(MS_PER_HOUR),
            _ => None,
        }
    }
}

impl fmt::Display for Grain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// UTC offset of `tz` at the instant `ms`, in ms.
pub fn offset_ms(tz: Tz, ms: i64) -> i64 {
    use chrono::Offset;
    let dt = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    tz.offset_from_utc_datetime(&dt.naive_utc()).fix().local_minus_utc() as i64 * MS_PER_SECOND
}

/// The local wall-clock time of instant `ms` in `tz`.
pub fn to_local(tz: Tz, ms: i64) -> NaiveDateTime {
    let dt = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    dt.with_timezone(&tz).naive_local()
}

/// The instant of local time `local` in `tz`. An ambiguous time (DST fall-back) takes the
/// earlier instant; a time inside a DST gap moves forward to the first valid instant.
pub fn from_local(tz: Tz, local: NaiveDateTime) -> i64 {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.timestamp_millis(),
        LocalResult::Ambiguous(a, _) => a.timestamp_millis(),
        LocalResult::None => {
            // Inside a gap: the first valid local time after it. Gaps are at most a few hours.
            let mut probe = local;
            for _ in 0..(4 * 24) {
                probe += Duration::minutes(15);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    // Back off to the exact end of the gap, minute by minute.
                    let mut best = t.timestamp_millis();
                    let mut back = probe;
                    for _ in 0..15 {
                        back -= Duration::minutes(1);
                        match tz.from_local_datetime(&back).earliest() {
                            Some(t2) => best = t2.timestamp_millis(),
                            None => break,
                        }
                    }
                    return best;
                }
            }
            local.and_utc().timestamp_millis()
        }
    }
}

fn first_of_bucket(grain: Grain, d: NaiveDate) -> NaiveDate {
    match grain {
        Grain::Week => d - Duration::days(d.weekday().num_days_from_monday() as i64),
        Grain::Month => d.with_day(1).unwrap_or(d),
        Grain::Quarter => NaiveDate::from_ymd_opt(d.year(), (d.month0() / 3) * 3 + 1, 1).unwrap_or(d),
        Grain::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d),
        _ => d,
    }
}

/// The start of the bucket of `grain` containing instant `ms`, in zone `tz`.
/// For `All` the instant itself is returned.
pub fn floor(grain: Grain, tz: Tz, ms: i64) -> i64 {
    match grain {
        Grain::All => ms,
        Grain::Second | Grain::Minute | Grain::Hour => {
            let width = grain.fixed_ms().unwrap_or(1);
            let off = offset_ms(tz, ms);
            let local = ms + off;
            let floored = local.div_euclid(width) * width;
            let candidate = floored - off;
            // If the zone's offset changed inside this bucket, use the offset at the candidate.
            let off2 = offset_ms(tz, candidate);
            if off2 != off {
                let c2 = (ms + off2).div_euclid(width) * width - off2;
                if c2 <= ms { c2 } else { candidate }
            } else {
                candidate
            }
        }
        _ => {
            let local = to_local(tz, ms);
            let day = first_of_bucket(grain, local.date());
            let start = from_local(tz, day.and_hms_opt(0, 0, 0).unwrap_or_default());
            if start > ms {
                // Midnight fell in a gap that pushed the start past the instant: step back.
                let prev = first_of_bucket(grain, day - Duration::days(1));
                from_local(tz, prev.and_hms_opt(0, 0, 0).unwrap_or_default())
            } else {
                start
            }
        }
    }
}

/// The boundary `n` buckets after the bucket start `start` (n may be negative).
/// Calendar grains step in local dates, fixed grains in absolute durations.
pub fn add(grain: Grain, tz: Tz, start: i64, n: i64) -> i64 {
    match grain {
        Grain::All => start,
        Grain::Second | Grain::Minute | Grain::Hour => {
            start.saturating_add(n.saturating_mul(grain.fixed_ms().unwrap_or(0)))
        }
        _ => {
            let local = to_local(tz, start);
            let d = local.date();
            let target = match grain {
                Grain::Day => d.checked_add_signed(Duration::days(n)),
                Grain::Week => d.checked_add_signed(Duration::days(7 * n)),
                Grain::Month => add_months(d, n),
                Grain::Quarter => add_months(d, 3 * n),
                Grain::Year => add_months(d, 12 * n),
                _ => Some(d),
            };
            match target {
                Some(t) => from_local(tz, t.and_time(local.time())),
                None => {
                    if n >= 0 {
                        i64::MAX / 4
                    } else {
                        i64::MIN / 4
                    }
                }
            }
        }
    }
}

/// Adds calendar months, clamping the day to the target month's length (Joda semantics).
pub fn add_months(d: NaiveDate, n: i64) -> Option<NaiveDate> {
    let total = d.year() as i64 * 12 + d.month0() as i64 + n;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month0 = total.rem_euclid(12) as u32;
    let mut day = d.day();
    loop {
        if let Some(r) = NaiveDate::from_ymd_opt(year, month0 + 1, day) {
            return Some(r);
        }
        if day <= 28 {
            return None;
        }
        day -= 1;
    }
}

/// Whether `ms` lies on a bucket boundary of `grain` in `tz` (always true for `all`).
pub fn is_aligned(grain: Grain, tz: Tz, ms: i64) -> bool {
    grain == Grain::All || floor(grain, tz, ms) == ms
}

/// A half-open interval `[start, end)` of UTC milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval {
    pub start: i64,
    pub end: i64,
}

impl Interval {
    pub fn new(start: i64, end: i64) -> Self {
        Interval { start, end }
    }

    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn contains(&self, ms: i64) -> bool {
        self.start <= ms && ms < self.end
    }

    /// Joda's ISO rendering in UTC: `2014-09-01T00:00:00.000Z/2014-09-08T00:00:00.000Z`.
    pub fn iso_utc(&self) -> String {
        format!("{}/{}", iso_utc(self.start), iso_utc(self.end))
    }
}

/// Sorts intervals and merges overlapping or abutting ones.
pub fn merge(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.sort();
    let mut out: Vec<Interval> = Vec::with_capacity(intervals.len());
    for iv in intervals {
        match out.last_mut() {
            Some(last) if iv.start <= last.end => last.end = last.end.max(iv.end),
            _ => out.push(iv),
        }
    }
    out
}

/// Intersection of two sorted, disjoint interval lists.
pub fn intersect(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let s = a[i].start.max(b[j].start);
        let e = a[i].end.min(b[j].end);
        if s < e {
            out.push(Interval::new(s, e));
        }
        if a[i].end < b[j].end { i += 1 } else { j += 1 }
    }
    out
}

/// `a` minus `b`, both sorted and disjoint.
pub fn subtract(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::new();
    for iv in a {
        let mut cur = iv.start;
        for cut in b.iter().filter(|c| c.overlaps(iv)) {
            if cut.start > cur {
                out.push(Interval::new(cur, cut.start));
            }
            cur = cur.max(cut.end);
        }
        if cur < iv.end {
            out.push(Interval::new(cur, iv.end));
        }
    }
    out
}

/// `2014-09-01T00:00:00.000Z`.
pub fn iso_utc(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

/// `2014-09-01 00:00:00.000` in zone `tz` (the API's `output_datetime_format`).
pub fn format_local(tz: Tz, ms: i64) -> String {
    use chrono::{Datelike, Timelike};
    let t = to_local(tz, ms);
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
    }
    // Written field by field: strftime re-parses its pattern on every call.
    format!(
        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 1_000_000 % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::London;
    use chrono_tz::UTC;

    fn utc(s: &str) -> i64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap().and_utc().timestamp_millis()
    }

    #[test]
    fn grain_names_parse_case_insensitively() {
        assert_eq!(Grain::parse("DAY"), Some(Grain::Day));
        assert_eq!(Grain::parse("second"), Some(Grain::Second));
        assert_eq!(Grain::parse("fortnight"), None);
        assert_eq!(Grain::Quarter.long_name(), "Quarter");
    }

    #[test]
    fn satisfaction_follows_fili_rules() {
        assert!(Grain::Day.can_satisfy(Grain::Week));
        assert!(Grain::Day.can_satisfy(Grain::Year));
        assert!(Grain::Hour.can_satisfy(Grain::Month));
        assert!(!Grain::Month.can_satisfy(Grain::Week));
        assert!(!Grain::Week.can_satisfy(Grain::Month));
        assert!(Grain::Month.can_satisfy(Grain::Year));
        assert!(Grain::Week.can_satisfy(Grain::All));
        assert!(!Grain::Day.can_satisfy(Grain::Hour));
    }

    #[test]
    fn week_floor_is_monday() {
        // 2013-06-05 is a Wednesday.
        assert_eq!(floor(Grain::Week, UTC, utc("2013-06-05 13:00:00")), utc("2013-06-03 00:00:00"));
        assert_eq!(floor(Grain::Quarter, UTC, utc("2013-06-05 13:00:00")), utc("2013-04-01 00:00:00"));
    }

    #[test]
    fn day_buckets_follow_dst_in_new_york() {
        // DST starts 2013-03-10 in New York: that local day is 23 hours long.
        let start = floor(Grain::Day, New_York, utc("2013-03-10 12:00:00"));
        assert_eq!(start, utc("2013-03-10 05:00:00"));
        assert_eq!(add(Grain::Day, New_York, start, 1) - start, 23 * MS_PER_HOUR);
        // Fall back on 2013-11-03: 25 hours.
        let s2 = floor(Grain::Day, New_York, utc("2013-11-03 12:00:00"));
        assert_eq!(add(Grain::Day, New_York, s2, 1) - s2, 25 * MS_PER_HOUR);
    }

    #[test]
    fn hour_floor_across_london_fall_back() {
        // 2013-10-27 01:30 UTC is 01:30 GMT, after the repeated hour.
        let t = utc("2013-10-27 01:30:00");
        assert_eq!(floor(Grain::Hour, London, t), utc("2013-10-27 01:00:00"));
        let t0 = utc("2013-10-27 00:30:00"); // 01:30 BST
        assert_eq!(floor(Grain::Hour, London, t0), utc("2013-10-27 00:00:00"));
    }

    #[test]
    fn month_addition_clamps() {
        let d = NaiveDate::from_ymd_opt(2019, 1, 31).unwrap();
        assert_eq!(add_months(d, 1), NaiveDate::from_ymd_opt(2019, 2, 28));
    }

    #[test]
    fn merge_joins_overlaps_and_abutting() {
        let m = merge(vec![Interval::new(5, 8), Interval::new(0, 2), Interval::new(2, 3), Interval::new(7, 9)]);
        assert_eq!(m, vec![Interval::new(0, 3), Interval::new(5, 9)]);
        assert_eq!(
            subtract(&[Interval::new(0, 10)], &[Interval::new(2, 3), Interval::new(8, 12)]),
            vec![Interval::new(0, 2), Interval::new(3, 8)]
        );
        assert_eq!(
            intersect(&[Interval::new(0, 10)], &[Interval::new(2, 3), Interval::new(8, 12)]),
            vec![Interval::new(2, 3), Interval::new(8, 10)]
        );
    }

    #[test]
    fn formats() {
        assert_eq!(iso_utc(utc("2014-09-01 00:00:00")), "2014-09-01T00:00:00.000Z");
        assert_eq!(format_local(New_York, utc("2014-09-01 04:00:00")), "2014-09-01 00:00:00.000");
        // The hand-written formatter agrees with strftime across zones, eras and milliseconds.
        for ms in (-40_000_000_000_000i64..250_000_000_000_000).step_by(9_876_543_210_987).chain([0, 1, 999, -1]) {
            for tz in [chrono_tz::UTC, New_York, chrono_tz::Asia::Kolkata] {
                assert_eq!(format_local(tz, ms), to_local(tz, ms).format("%Y-%m-%d %H:%M:%S%.3f").to_string());
            }
        }
    }
}
