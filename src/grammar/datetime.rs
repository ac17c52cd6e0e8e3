//! `dateTime` and `timeZone` (spec §4.3, §4.4).
//!
//! Two steps, both pure: [`parse`] turns the parameter into an AST (dates, ISO periods, macros
//! with rolling offsets, RRULEs), and [`evaluate`] turns the AST into sorted, merged UTC
//! intervals for a grain, zone and injected "now", checking length, order and alignment.

use crate::error::{Error, Reason, java_list};
use crate::time::{self, Grain, Interval};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;
use std::fmt;

/// A date-time as written: fields down to `precision` (1 = year … 7 = millisecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalDate {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub milli: u32,
    pub precision: u8,
}

impl LocalDate {
    pub fn naive(&self) -> Option<NaiveDateTime> {
        let d = NaiveDate::from_ymd_opt(self.year, self.month, self.day)?;
        let t = NaiveTime::from_hms_milli_opt(self.hour, self.minute, self.second, self.milli)?;
        Some(d.and_time(t))
    }
}

/// An ISO 8601 period; each field may be large but is bounded by `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    pub years: i64,
    pub months: i64,
    pub weeks: i64,
    pub days: i64,
    pub hours: i64,
    pub minutes: i64,
    pub seconds: i64,
    pub millis: i64,
}

/// `current`/`next` (relative to the request grain) or a fixed-grain macro.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Macro {
    Current,
    Next,
    CurrentOf(Grain),
    NextOf(Grain),
}

/// One side of an interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Date(LocalDate),
    Period(Period),
    /// A macro with rolling offsets (`current-P1D`): `true` adds, `false` subtracts.
    Macro(Macro, Vec<(bool, Period)>),
    /// The rule text after `RRULE=`.
    RRule(String),
}

/// One `start/end` interval expression, with its text for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalExpr {
    pub text: String,
    pub start: Term,
    pub end: Term,
}

/// The parsed parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTimeAst {
    pub text: String,
    pub intervals: Vec<IntervalExpr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateTimeError {
    Missing,
    /// Not exactly one `/` (whole parameter).
    Slash(String),
    /// An element that is neither date, period, macro nor RRULE (interval text).
    Unparsable(String),
    BothPeriods(String),
    EmptyTerm {
        whole: String,
        start: bool,
    },
    BadDate {
        whole: String,
        detail: String,
    },
    Reversed(String),
    ZeroLength(String),
    RRuleAll(String),
    RRuleFirst(String),
    RRuleInvalid {
        whole: String,
        detail: String,
    },
    Overflow(String),
    Misaligned {
        intervals: String,
        grain: Grain,
    },
    TimeZone(String),
}

impl fmt::Display for DateTimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DateTimeError::*;
        match self {
            Missing => f.write_str(
                "Required parameter dateTime is missing. Use dateTime=YYYY-MM-DD/YYYY-MM-DD in the query string.",
            ),
            Slash(w) | BothPeriods(w) => write!(
                f,
                "Interval '{w}' is invalid. Interval expressions must contain at least one date as the first or second argument."
            ),
            Unparsable(i) => write!(f, "Interval '{i}' is invalid. The intervals specified cannot be parsed."),
            EmptyTerm { whole, start } => write!(
                f,
                "Interval '{whole}' is invalid. The {} of the interval is empty: put a date, a period or a macro {} the '/'.",
                if *start { "start" } else { "end" },
                if *start { "before" } else { "after" }
            ),
            BadDate { whole, detail } => write!(f, "Interval '{whole}' is invalid. {detail}."),
            Reversed(w) => {
                write!(f, "Interval '{w}' is invalid. The end instant must be greater than the start instant.")
            }
            ZeroLength(i) => write!(f, "Date time cannot have zero length intervals. {i}."),
            RRuleAll(w) => write!(f, "Interval '{w}' is invalid. RRule is only legal with a concrete time grain."),
            RRuleFirst(w) => write!(
                f,
                "Interval '{w}' is invalid. Recurrence rule intervals must be used in the form of DATEEXPRESSION/RRULE=KEY=VALUE;KEY=VALUE..."
            ),
            RRuleInvalid { whole, detail } => write!(f, "Interval '{whole}' is invalid. {detail}."),
            Overflow(w) => write!(f, "Interval '{w}' is invalid. A date or period is outside the supported range."),
            Misaligned { intervals, grain } => {
                write!(f, "'{intervals}' does not align with granularity '{grain}'. {}", grain.alignment_description())
            }
            TimeZone(z) => write!(
                f,
                "Time zone '{z}' is unknown.  See (http://joda-time.sourceforge.net/timezones.html) for valid time zone ids."
            ),
        }
    }
}

impl From<DateTimeError> for Error {
    fn from(e: DateTimeError) -> Self {
        let reason = match e {
            DateTimeError::Missing => Reason::DateTimeMissing,
            DateTimeError::ZeroLength(_) => Reason::IntervalZeroLength,
            DateTimeError::Misaligned { .. } => Reason::IntervalMisaligned,
            DateTimeError::TimeZone(_) => Reason::TimeZoneUnknown,
            _ => Reason::IntervalInvalid,
        };
        Error::new(reason, e.to_string())
    }
}

/// Parses a `timeZone` value (any IANA id).
pub fn parse_time_zone(s: &str) -> Result<Tz, DateTimeError> {
    s.parse::<Tz>().map_err(|_| DateTimeError::TimeZone(s.to_string()))
}

/// Splits on commas, keeping commas inside an RRULE (`BYDAY=MO,WE`) with their rule.
fn split_intervals(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in text.split(',') {
        match out.last_mut() {
            Some(last) if last.to_ascii_uppercase().contains("RRULE=") && !piece.contains('/') => {
                last.push(',');
                last.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out
}

/// Parses the `dateTime` parameter (`None` or empty → missing).
pub fn parse(text: Option<&str>) -> Result<DateTimeAst, DateTimeError> {
    let text = match text {
        Some(t) if !t.is_empty() => t,
        _ => return Err(DateTimeError::Missing),
    };
    let mut intervals = Vec::new();
    for piece in split_intervals(text) {
        let parts: Vec<&str> = piece.split('/').collect();
        if parts.len() != 2 {
            return Err(DateTimeError::Slash(text.to_string()));
        }
        let start = parse_term(parts[0], &piece, text, true)?;
        let end = parse_term(parts[1], &piece, text, false)?;
        intervals.push(IntervalExpr { text: piece.clone(), start, end });
    }
    Ok(DateTimeAst { text: text.to_string(), intervals })
}

fn parse_term(raw: &str, interval: &str, whole: &str, is_start: bool) -> Result<Term, DateTimeError> {
    if raw.is_empty() {
        return Err(DateTimeError::EmptyTerm { whole: whole.to_string(), start: is_start });
    }
    let up = raw.to_ascii_uppercase();
    if let Some(rule) = up.strip_prefix("RRULE=") {
        return Ok(Term::RRule(rule.to_string()));
    }
    if up.starts_with('P') {
        return parse_period(&up).map(Term::Period).ok_or_else(|| DateTimeError::Unparsable(interval.to_string()));
    }
    if let Some(t) = parse_macro(&up) {
        return t.map_err(|_| DateTimeError::Unparsable(interval.to_string()));
    }
    if up.starts_with(|c: char| c.is_ascii_digit()) {
        return parse_date(&up)
            .map(Term::Date)
            .map_err(|detail| DateTimeError::BadDate { whole: whole.to_string(), detail });
    }
    Err(DateTimeError::Unparsable(interval.to_string()))
}

const MACROS: [(&str, Macro); 12] = [
    ("CURRENTDAY", Macro::CurrentOf(Grain::Day)),
    ("CURRENTWEEK", Macro::CurrentOf(Grain::Week)),
    ("CURRENTMONTH", Macro::CurrentOf(Grain::Month)),
    ("CURRENTQUARTER", Macro::CurrentOf(Grain::Quarter)),
    ("CURRENTYEAR", Macro::CurrentOf(Grain::Year)),
    ("NEXTDAY", Macro::NextOf(Grain::Day)),
    ("NEXTWEEK", Macro::NextOf(Grain::Week)),
    ("NEXTMONTH", Macro::NextOf(Grain::Month)),
    ("NEXTQUARTER", Macro::NextOf(Grain::Quarter)),
    ("NEXTYEAR", Macro::NextOf(Grain::Year)),
    ("CURRENT", Macro::Current),
    ("NEXT", Macro::Next),
];

fn macro_name(m: Macro) -> String {
    MACROS.iter().find(|(_, x)| *x == m).map(|(n, _)| n.to_ascii_lowercase()).unwrap_or_default()
}

/// `Some(Ok)` for a macro with valid offsets, `Some(Err)` for a macro with bad offsets,
/// `None` when the text is no macro.
fn parse_macro(up: &str) -> Option<Result<Term, ()>> {
    let (name, m) = MACROS.iter().find(|(n, _)| up.starts_with(n))?;
    let mut rest = &up[name.len()..];
    if !rest.is_empty() && !rest.starts_with(['+', '-']) {
        return None;
    }
    let mut offsets = Vec::new();
    while !rest.is_empty() {
        let plus = rest.starts_with('+');
        let body = &rest[1..];
        let next = body.find(['+', '-']).unwrap_or(body.len());
        match parse_period(&body[..next]) {
            Some(p) => offsets.push((plus, p)),
            None => return Some(Err(())),
        }
        rest = &body[next..];
    }
    Some(Ok(Term::Macro(*m, offsets)))
}

fn parse_period(up: &str) -> Option<Period> {
    let body = up.strip_prefix('P')?;
    let (date_part, time_part) = match body.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let mut p = Period::default();
    let mut any = false;
    let mut num = String::new();
    for c in date_part.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let v: i64 = num.parse().ok()?;
        num.clear();
        any = true;
        match c {
            'Y' => p.years = v,
            'M' => p.months = v,
            'W' => p.weeks = v,
            'D' => p.days = v,
            _ => return None,
        }
    }
    if !num.is_empty() {
        return None;
    }
    if let Some(t) = time_part {
        if t.is_empty() {
            return None;
        }
        for c in t.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            any = true;
            match c {
                'H' => p.hours = num.parse().ok()?,
                'M' => p.minutes = num.parse().ok()?,
                'S' => {
                    let (s, ms) = match num.split_once('.') {
                        Some((s, f)) if !f.is_empty() && f.len() <= 3 => {
                            (s.parse::<i64>().ok()?, format!("{f:0<3}").parse::<i64>().ok()?)
                        }
                        Some(_) => return None,
                        None => (num.parse().ok()?, 0),
                    };
                    p.seconds = s;
                    p.millis = ms;
                }
                _ => return None,
            }
            num.clear();
        }
        if !num.is_empty() {
            return None;
        }
    }
    if any { Some(p) } else { None }
}

fn parse_date(up: &str) -> Result<LocalDate, String> {
    let malformed = |at: usize| format!("Invalid format: \"{up}\" is malformed at \"{}\"", &up[at..]);
    let b = up.as_bytes();
    let digits = |at: usize, n: usize| -> Option<u32> {
        if at + n > b.len() || !b[at..at + n].iter().all(|c| c.is_ascii_digit()) {
            return None;
        }
        up[at..at + n].parse().ok()
    };
    let mut d = LocalDate { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0, milli: 0, precision: 1 };
    d.year = digits(0, 4).ok_or_else(|| malformed(0))? as i32;
    let mut pos = 4;
    // (separator, width, precision)
    let steps: [(&[u8], usize); 6] = [(b"-", 2), (b"-", 2), (b"T ", 2), (b":", 2), (b":", 2), (b".", 3)];
    for (i, (seps, width)) in steps.iter().enumerate() {
        if pos == b.len() {
            break;
        }
        if !seps.contains(&b[pos]) {
            return Err(malformed(pos));
        }
        let v = if i == 5 {
            // Milliseconds: 1 to 3 digits.
            let n = b[pos + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 || n > 3 {
                return Err(malformed(pos));
            }
            format!("{:0<3}", &up[pos + 1..pos + 1 + n]).parse().map_err(|_| malformed(pos))?
        } else {
            digits(pos + 1, *width).ok_or_else(|| malformed(pos))?
        };
        let width = if i == 5 { b[pos + 1..].iter().take_while(|c| c.is_ascii_digit()).count() } else { *width };
        match i {
            0 => d.month = v,
            1 => d.day = v,
            2 => d.hour = v,
            3 => d.minute = v,
            4 => d.second = v,
            _ => d.milli = v,
        }
        d.precision = i as u8 + 2;
        pos += 1 + width;
    }
    if pos != b.len() {
        return Err(malformed(pos));
    }
    let range = |v: u32, name: &str, lo: u32, hi: u32| -> Result<(), String> {
        if v < lo || v > hi {
            Err(format!("Cannot parse \"{up}\": Value {v} for {name} must be in the range [{lo},{hi}]"))
        } else {
            Ok(())
        }
    };
    range(d.month, "monthOfYear", 1, 12)?;
    let month_len = days_in_month(d.year, d.month);
    range(d.day, "dayOfMonth", 1, month_len)?;
    range(d.hour, "hourOfDay", 0, 23)?;
    range(d.minute, "minuteOfHour", 0, 59)?;
    range(d.second, "secondOfMinute", 0, 59)?;
    Ok(d)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let first = NaiveDate::from_ymd_opt(year, month, 1);
    let next = time::add_months(first.unwrap_or_default(), 1);
    match (first, next) {
        (Some(a), Some(b)) => (b - a).num_days() as u32,
        _ => 31,
    }
}

/// What evaluation needs besides the AST.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub grain: Grain,
    pub tz: Tz,
    /// "Now" in UTC ms, injected so tests are exact.
    pub now: i64,
    pub rrule_max: u16,
}

/// Adds (or subtracts) a period to an instant: years, months, weeks and days in local
/// calendar terms, the time part as an absolute duration. `None` on overflow.
pub fn plus_period(tz: Tz, instant: i64, p: &Period, add: bool) -> Option<i64> {
    let sign = if add { 1 } else { -1 };
    let local = time::to_local(tz, instant);
    let months = p.years.checked_mul(12)?.checked_add(p.months)?.checked_mul(sign)?;
    let date = time::add_months(local.date(), months)?;
    let days = p.weeks.checked_mul(7)?.checked_add(p.days)?.checked_mul(sign)?;
    let date = date.checked_add_signed(Duration::try_days(days)?)?;
    let base = if p.years == 0 && p.months == 0 && p.weeks == 0 && p.days == 0 {
        instant
    } else {
        time::from_local(tz, date.and_time(local.time()))
    };
    let ms = p
        .hours
        .checked_mul(time::MS_PER_HOUR)?
        .checked_add(p.minutes.checked_mul(time::MS_PER_MINUTE)?)?
        .checked_add(p.seconds.checked_mul(time::MS_PER_SECOND)?)?
        .checked_add(p.millis)?;
    let out = base.checked_add(ms.checked_mul(sign)?)?;
    // Keep within the years chrono can render.
    (out.abs() < 8_000_000_000_000_000 / 1000).then_some(out)
}

fn macro_instant(m: Macro, ctx: &Context) -> i64 {
    match m {
        Macro::Current if ctx.grain == Grain::All => ctx.now,
        Macro::Next if ctx.grain == Grain::All => ctx.now + 1,
        Macro::Current => time::floor(ctx.grain, ctx.tz, ctx.now),
        Macro::Next => time::add(ctx.grain, ctx.tz, time::floor(ctx.grain, ctx.tz, ctx.now), 1),
        Macro::CurrentOf(g) => time::floor(g, ctx.tz, ctx.now),
        Macro::NextOf(g) => time::add(g, ctx.tz, time::floor(g, ctx.tz, ctx.now), 1),
    }
}

fn instant(term: &Term, ctx: &Context, whole: &str) -> Result<Option<i64>, DateTimeError> {
    let overflow = || DateTimeError::Overflow(whole.to_string());
    match term {
        Term::Date(d) => {
            let n = d.naive().ok_or_else(overflow)?;
            Ok(Some(time::from_local(ctx.tz, n)))
        }
        Term::Macro(m, offsets) => {
            let mut t = macro_instant(*m, ctx);
            for (add, p) in offsets {
                t = plus_period(ctx.tz, t, p, *add).ok_or_else(overflow)?;
            }
            Ok(Some(t))
        }
        Term::Period(_) | Term::RRule(_) => Ok(None),
    }
}

/// Evaluates the AST into sorted, merged, aligned intervals.
pub fn evaluate(ast: &DateTimeAst, ctx: &Context) -> Result<Vec<Interval>, DateTimeError> {
    let whole = ast.text.as_str();
    let overflow = || DateTimeError::Overflow(whole.to_string());
    let mut out = Vec::new();
    for iv in &ast.intervals {
        let (s, e) = match (&iv.start, &iv.end) {
            (Term::RRule(_), _) => return Err(DateTimeError::RRuleFirst(whole.to_string())),
            (Term::Period(_), Term::Period(_)) => return Err(DateTimeError::BothPeriods(iv.text.clone())),
            (Term::Period(_), Term::RRule(_)) => return Err(DateTimeError::RRuleFirst(whole.to_string())),
            (start, Term::RRule(rule)) => {
                if ctx.grain == Grain::All {
                    return Err(DateTimeError::RRuleAll(whole.to_string()));
                }
                let s = instant(start, ctx, whole)?.ok_or_else(overflow)?;
                out.extend(rrule_intervals(rule, s, ctx, whole)?);
                continue;
            }
            (Term::Period(p), end) => {
                let e = instant(end, ctx, whole)?.ok_or_else(overflow)?;
                (plus_period(ctx.tz, e, p, false).ok_or_else(overflow)?, e)
            }
            (start, Term::Period(p)) => {
                let s = instant(start, ctx, whole)?.ok_or_else(overflow)?;
                (s, plus_period(ctx.tz, s, p, true).ok_or_else(overflow)?)
            }
            (start, end) => {
                (instant(start, ctx, whole)?.ok_or_else(overflow)?, instant(end, ctx, whole)?.ok_or_else(overflow)?)
            }
        };
        if s == e {
            return Err(DateTimeError::ZeroLength(iv.text.clone()));
        }
        if e < s {
            return Err(DateTimeError::Reversed(whole.to_string()));
        }
        out.push(Interval::new(s, e));
    }
    let misaligned: Vec<String> = out
        .iter()
        .filter(|iv| !time::is_aligned(ctx.grain, ctx.tz, iv.start) || !time::is_aligned(ctx.grain, ctx.tz, iv.end))
        .map(|iv| format!("{}/{}", iso_zoned(ctx.tz, iv.start), iso_zoned(ctx.tz, iv.end)))
        .collect();
    if !misaligned.is_empty() {
        return Err(DateTimeError::Misaligned { intervals: java_list(&misaligned), grain: ctx.grain });
    }
    Ok(time::merge(out))
}

/// Joda's ISO rendering in a zone: `2015-02-15T00:00:00.000Z` or `…T00:00:00.000-05:00`.
pub fn iso_zoned(tz: Tz, ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(dt) => {
            let s = dt.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string();
            match s.strip_suffix("+00:00") {
                Some(p) if tz == chrono_tz::UTC => format!("{p}Z"),
                _ => s,
            }
        }
        None => ms.to_string(),
    }
}

fn rrule_intervals(rule: &str, start: i64, ctx: &Context, whole: &str) -> Result<Vec<Interval>, DateTimeError> {
    let invalid = |d: String| DateTimeError::RRuleInvalid { whole: whole.to_string(), detail: d };
    let parsed: rrule::RRule<rrule::Unvalidated> =
        rule.parse().map_err(|e: rrule::RRuleError| invalid(e.to_string()))?;
    let dtstart = chrono::DateTime::from_timestamp_millis(start)
        .ok_or_else(|| DateTimeError::Overflow(whole.to_string()))?
        .with_timezone(&rrule::Tz::from(ctx.tz));
    let set = parsed.build(dtstart).map_err(|e| invalid(e.to_string()))?;
    let result = set.all(ctx.rrule_max);
    Ok(result
        .dates
        .iter()
        .map(|d| {
            let s = d.timestamp_millis();
            Interval::new(s, time::add(ctx.grain, ctx.tz, s, 1))
        })
        .collect())
}

// ---------- rendering (for round-trip tests and debug output) ----------

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("P")?;
        let mut any = false;
        for (v, u) in [(self.years, 'Y'), (self.months, 'M'), (self.weeks, 'W'), (self.days, 'D')] {
            if v != 0 {
                write!(f, "{v}{u}")?;
                any = true;
            }
        }
        if self.hours != 0 || self.minutes != 0 || self.seconds != 0 || self.millis != 0 {
            f.write_str("T")?;
            if self.hours != 0 {
                write!(f, "{}H", self.hours)?;
            }
            if self.minutes != 0 {
                write!(f, "{}M", self.minutes)?;
            }
            if self.seconds != 0 || self.millis != 0 {
                if self.millis != 0 {
                    write!(f, "{}.{:03}S", self.seconds, self.millis)?;
                } else {
                    write!(f, "{}S", self.seconds)?;
                }
            }
        } else if !any {
            f.write_str("0D")?;
        }
        Ok(())
    }
}

impl fmt::Display for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        let parts = [
            (2, format!("-{:02}", self.month)),
            (3, format!("-{:02}", self.day)),
            (4, format!("T{:02}", self.hour)),
            (5, format!(":{:02}", self.minute)),
            (6, format!(":{:02}", self.second)),
            (7, format!(".{:03}", self.milli)),
        ];
        for (p, s) in parts {
            if self.precision >= p {
                f.write_str(&s)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Date(d) => write!(f, "{d}"),
            Term::Period(p) => write!(f, "{p}"),
            Term::Macro(m, offs) => {
                f.write_str(&macro_name(*m))?;
                for (add, p) in offs {
                    write!(f, "{}{p}", if *add { '+' } else { '-' })?;
                }
                Ok(())
            }
            Term::RRule(r) => write!(f, "RRULE={r}"),
        }
    }
}

/// Renders intervals that [`parse`] reads back into the same terms.
pub fn render(intervals: &[(Term, Term)]) -> String {
    intervals.iter().map(|(s, e)| format!("{s}/{e}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
#[path = "datetime_tests.rs"]
mod tests;
