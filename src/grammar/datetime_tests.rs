use super::*;
use chrono_tz::America::New_York;
use chrono_tz::UTC;

fn is_monday(tz: Tz, ms: i64) -> bool {
    use chrono::Datelike;
    time::to_local(tz, ms).weekday() == chrono::Weekday::Mon
}

fn utc(s: &str) -> i64 {
    let fmt = if s.len() == 10 { format!("{s} 00:00:00") } else { s.to_string() };
    NaiveDateTime::parse_from_str(&fmt, "%Y-%m-%d %H:%M:%S").unwrap().and_utc().timestamp_millis()
}

fn ctx(grain: Grain) -> Context {
    // "Now" is Wednesday 2013-06-05 13:45:10 UTC.
    Context { grain, tz: UTC, now: utc("2013-06-05 13:45:10"), rrule_max: 100 }
}

fn eval(text: &str, c: &Context) -> Result<Vec<Interval>, String> {
    parse(Some(text)).and_then(|a| evaluate(&a, c)).map_err(|e| e.to_string())
}

fn iv(a: &str, b: &str) -> Interval {
    Interval::new(utc(a), utc(b))
}

#[test]
fn plain_dates_at_every_precision() {
    let c = ctx(Grain::Day);
    assert_eq!(eval("2013-06-01/2013-07-01", &c), Ok(vec![iv("2013-06-01", "2013-07-01")]));
    assert_eq!(eval("2013/2014", &ctx(Grain::Year)), Ok(vec![iv("2013-01-01", "2014-01-01")]));
    assert_eq!(eval("2013-06/2013-07", &ctx(Grain::Month)), Ok(vec![iv("2013-06-01", "2013-07-01")]));
    let h = ctx(Grain::Hour);
    assert_eq!(eval("2013-06-01T05/2013-06-01T07", &h), Ok(vec![iv("2013-06-01 05:00:00", "2013-06-01 07:00:00")]));
    assert_eq!(
        eval("2013-06-01 05:00/2013-06-01 07:00:00.000", &h),
        Ok(vec![iv("2013-06-01 05:00:00", "2013-06-01 07:00:00")])
    );
    let s = ctx(Grain::Second);
    assert_eq!(
        eval("2013-06-01t05:00:01/2013-06-01T05:00:03", &s),
        Ok(vec![iv("2013-06-01 05:00:01", "2013-06-01 05:00:03")])
    );
}

#[test]
fn periods_on_either_side() {
    let c = ctx(Grain::Day);
    assert_eq!(eval("2013-06-01/P3D", &c), Ok(vec![iv("2013-06-01", "2013-06-04")]));
    assert_eq!(eval("P1M/2013-07-01", &c), Ok(vec![iv("2013-06-01", "2013-07-01")]));
    assert_eq!(eval("2013-01-01/P1Y2M3D", &c), Ok(vec![iv("2013-01-01", "2014-03-04")]));
    assert_eq!(eval("2013-06-03/P2W", &ctx(Grain::Week)), Ok(vec![iv("2013-06-03", "2013-06-17")]));
    assert_eq!(eval("2013-06-01/PT2H", &ctx(Grain::Hour)), Ok(vec![iv("2013-06-01 00:00:00", "2013-06-01 02:00:00")]));
}

#[test]
fn macros_relative_to_grain() {
    let d = ctx(Grain::Day);
    assert_eq!(eval("P1D/current", &d), Ok(vec![iv("2013-06-04", "2013-06-05")]));
    assert_eq!(eval("current/next", &d), Ok(vec![iv("2013-06-05", "2013-06-06")]));
    assert_eq!(eval("currentWeek/nextWeek", &ctx(Grain::Week)), Ok(vec![iv("2013-06-03", "2013-06-10")]));
    assert_eq!(eval("currentMonth/NEXTMONTH", &d), Ok(vec![iv("2013-06-01", "2013-07-01")]));
    assert_eq!(eval("currentQuarter/nextQuarter", &d), Ok(vec![iv("2013-04-01", "2013-07-01")]));
    assert_eq!(eval("currentYear/nextYear", &d), Ok(vec![iv("2013-01-01", "2014-01-01")]));
    assert_eq!(eval("currentDay/nextDay", &ctx(Grain::Hour)), Ok(vec![iv("2013-06-05", "2013-06-06")]));
    // With `all`, current is now and next is now + 1 ms.
    let a = ctx(Grain::All);
    let now = a.now;
    assert_eq!(eval("current/next", &a), Ok(vec![Interval::new(now, now + 1)]));
    // P1D/current,current/next merges into one interval.
    assert_eq!(eval("P1D/current,current/next", &d), Ok(vec![iv("2013-06-04", "2013-06-06")]));
}

#[test]
fn rolling_offsets() {
    let d = ctx(Grain::Day);
    assert_eq!(eval("P7D/current-P1D", &d), Ok(vec![iv("2013-05-28", "2013-06-04")]));
    assert_eq!(eval("current-P1M/current", &d), Ok(vec![iv("2013-05-05", "2013-06-05")]));
    assert_eq!(eval("current-P2D/current+P1D", &d), Ok(vec![iv("2013-06-03", "2013-06-06")]));
    assert_eq!(eval("currentMonth-P1M/currentMonth", &d), Ok(vec![iv("2013-05-01", "2013-06-01")]));
}

#[test]
fn rrule_occurrences() {
    // The Fili example: last day of three months.
    let d = ctx(Grain::Day);
    assert_eq!(
        eval("2019-08-01/RRULE=FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3", &d),
        Ok(vec![iv("2019-08-31", "2019-09-01"), iv("2019-09-30", "2019-10-01"), iv("2019-10-31", "2019-11-01")])
    );
    // Commas inside the rule stay with it.
    let r = eval("2013-06-03/RRULE=FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4", &d).unwrap();
    assert_eq!(r.len(), 4);
    // Capped.
    let capped = eval("2013-01-01/RRULE=FREQ=DAILY", &Context { rrule_max: 5, ..d }).unwrap();
    assert_eq!(capped, vec![iv("2013-01-01", "2013-01-06")], "abutting days merge");
    let weekly = eval("2013-01-07/RRULE=FREQ=WEEKLY", &Context { rrule_max: 7, ..d }).unwrap();
    assert_eq!(weekly.len(), 7);
    // Zoned: occurrences at local midnight across DST.
    let ny = Context { tz: New_York, ..d };
    let z = eval("2013-03-09/RRULE=FREQ=DAILY;INTERVAL=2;COUNT=2", &ny).unwrap();
    assert_eq!(
        z,
        vec![iv("2013-03-09 05:00:00", "2013-03-10 05:00:00"), iv("2013-03-11 04:00:00", "2013-03-12 04:00:00")]
    );
}

#[test]
fn time_zone_shifts_parsing_and_alignment() {
    let ny = Context { tz: New_York, ..ctx(Grain::Day) };
    assert_eq!(eval("2013-06-01/2013-06-02", &ny), Ok(vec![iv("2013-06-01 04:00:00", "2013-06-02 04:00:00")]));
    // 2013-03-10 is 23 hours long in New York.
    assert_eq!(eval("2013-03-10/P1D", &ny), Ok(vec![iv("2013-03-10 05:00:00", "2013-03-11 04:00:00")]));
    assert_eq!(parse_time_zone("America/Los_Angeles"), Ok(chrono_tz::America::Los_Angeles));
    assert_eq!(
        parse_time_zone("Mars/Olympus").unwrap_err().to_string(),
        "Time zone 'Mars/Olympus' is unknown.  See (http://joda-time.sourceforge.net/timezones.html) for valid time zone ids."
    );
}

#[test]
fn error_messages() {
    let d = ctx(Grain::Day);
    assert_eq!(
        eval("", &d).unwrap_err(),
        "Required parameter dateTime is missing. Use dateTime=YYYY-MM-DD/YYYY-MM-DD in the query string."
    );
    assert_eq!(parse(None).unwrap_err(), DateTimeError::Missing);
    assert_eq!(
        eval("2013-06-01", &d).unwrap_err(),
        "Interval '2013-06-01' is invalid. Interval expressions must contain at least one date as the first or second argument."
    );
    assert_eq!(
        eval("2013-06-01/2013-06-02/2013-06-03", &d).unwrap_err(),
        "Interval '2013-06-01/2013-06-02/2013-06-03' is invalid. Interval expressions must contain at least one date as the first or second argument."
    );
    assert_eq!(
        eval("2013-06-01/yesterday", &d).unwrap_err(),
        "Interval '2013-06-01/yesterday' is invalid. The intervals specified cannot be parsed."
    );
    assert_eq!(
        eval("P1D/P2D", &d).unwrap_err(),
        "Interval 'P1D/P2D' is invalid. Interval expressions must contain at least one date as the first or second argument."
    );
    assert_eq!(
        eval("2005-02-30/2005-03-01", &d).unwrap_err(),
        "Interval '2005-02-30/2005-03-01' is invalid. Cannot parse \"2005-02-30\": Value 30 for dayOfMonth must be in the range [1,28]."
    );
    assert_eq!(
        eval("2005-1/2005-03-01", &d).unwrap_err(),
        "Interval '2005-1/2005-03-01' is invalid. Invalid format: \"2005-1\" is malformed at \"-1\"."
    );
    assert_eq!(
        eval("2014-09-02/2014-09-01", &d).unwrap_err(),
        "Interval '2014-09-02/2014-09-01' is invalid. The end instant must be greater than the start instant."
    );
    assert_eq!(
        eval("2014-09-01/2014-09-01", &d).unwrap_err(),
        "Date time cannot have zero length intervals. 2014-09-01/2014-09-01."
    );
    assert_eq!(
        eval("current/current", &d).unwrap_err(),
        "Date time cannot have zero length intervals. current/current."
    );
    assert_eq!(
        eval("2019-08-01/RRULE=FREQ=MONTHLY;COUNT=3", &ctx(Grain::All)).unwrap_err(),
        "Interval '2019-08-01/RRULE=FREQ=MONTHLY;COUNT=3' is invalid. RRule is only legal with a concrete time grain."
    );
    assert_eq!(
        eval("RRULE=FREQ=DAILY/2019-08-01", &d).unwrap_err(),
        "Interval 'RRULE=FREQ=DAILY/2019-08-01' is invalid. Recurrence rule intervals must be used in the form of DATEEXPRESSION/RRULE=KEY=VALUE;KEY=VALUE..."
    );
    assert!(
        eval("2019-08-01/RRULE=FREQ=SOMETIMES", &d)
            .unwrap_err()
            .starts_with("Interval '2019-08-01/RRULE=FREQ=SOMETIMES' is invalid. ")
    );
    assert_eq!(
        eval("/2014-09-01", &d).unwrap_err(),
        "Interval '/2014-09-01' is invalid. The start of the interval is empty: put a date, a period or a macro before the '/'."
    );
    assert_eq!(
        eval("2014-09-01/", &d).unwrap_err(),
        "Interval '2014-09-01/' is invalid. The end of the interval is empty: put a date, a period or a macro after the '/'."
    );
    assert!(eval("current-X/next", &d).unwrap_err().contains("cannot be parsed"));
    assert!(eval("2013-01-01/P999999999999999999Y", &d).unwrap_err().contains("outside the supported range"));
}

#[test]
fn alignment_messages_per_grain() {
    let cases = [
        (
            Grain::Week,
            "2015-02-15/2016-02-22",
            "'[2015-02-15T00:00:00.000Z/2016-02-22T00:00:00.000Z]' does not align with granularity 'week'. Week must start on a Monday and end on a Monday.",
        ),
        (
            Grain::Month,
            "2015-02-15/2015-03-01",
            "'[2015-02-15T00:00:00.000Z/2015-03-01T00:00:00.000Z]' does not align with granularity 'month'. Month must start on the 1st of a month and end on the 1st of a month.",
        ),
        (
            Grain::Quarter,
            "2015-02-01/2015-04-01",
            "'[2015-02-01T00:00:00.000Z/2015-04-01T00:00:00.000Z]' does not align with granularity 'quarter'. Quarter must start and end on the 1st day of the 1st, 4th, 7th, or 10th month of a year.",
        ),
        (
            Grain::Year,
            "2015-02-01/2016-01-01",
            "'[2015-02-01T00:00:00.000Z/2016-01-01T00:00:00.000Z]' does not align with granularity 'year'. Year must start on January 1st and end on January 1st.",
        ),
        (
            Grain::Day,
            "2015-02-01T05/2015-02-03",
            "'[2015-02-01T05:00:00.000Z/2015-02-03T00:00:00.000Z]' does not align with granularity 'day'. Day must start and end on the 1st hour of a day.",
        ),
        (
            Grain::Hour,
            "2015-02-01T05:30/2015-02-03",
            "'[2015-02-01T05:30:00.000Z/2015-02-03T00:00:00.000Z]' does not align with granularity 'hour'. Hour must start and end on the 1st minute of an hour.",
        ),
        (
            Grain::Minute,
            "2015-02-01T05:30:10/2015-02-03",
            "'[2015-02-01T05:30:10.000Z/2015-02-03T00:00:00.000Z]' does not align with granularity 'minute'. Minute must start and end on the 1st second of a minute.",
        ),
    ];
    for (g, text, msg) in cases {
        assert_eq!(eval(text, &ctx(g)).unwrap_err(), msg, "{g}");
    }
    // `all` accepts anything.
    assert!(eval("2015-02-01T05:30:10.123/2015-02-03", &ctx(Grain::All)).is_ok());
    // Zoned rendering shows the offset.
    let ny = Context { tz: New_York, ..ctx(Grain::Week) };
    assert_eq!(
        eval("2015-02-15/2015-02-23", &ny).unwrap_err(),
        "'[2015-02-15T00:00:00.000-05:00/2015-02-23T00:00:00.000-05:00]' does not align with granularity 'week'. Week must start on a Monday and end on a Monday."
    );
}

#[test]
fn lists_merge_and_sort() {
    let d = ctx(Grain::Day);
    assert_eq!(
        eval("2013-06-10/2013-06-12,2013-06-01/2013-06-03,2013-06-02/2013-06-05,2013-06-12/2013-06-13", &d),
        Ok(vec![iv("2013-06-01", "2013-06-05"), iv("2013-06-10", "2013-06-13")])
    );
}

#[test]
fn rendering_round_trips() {
    for text in [
        "2013-06-01/P3D",
        "p1y2m3w4dt5h6m7.008s/current",
        "currentWeek-P1W/nextWeek+PT1H",
        "2013-06-01T05:06:07.008/RRULE=FREQ=DAILY;COUNT=2",
        "2013/2014-02",
    ] {
        let ast = parse(Some(text)).unwrap();
        let pairs: Vec<(Term, Term)> = ast.intervals.iter().map(|i| (i.start.clone(), i.end.clone())).collect();
        let again = parse(Some(&render(&pairs))).unwrap();
        let pairs2: Vec<(Term, Term)> = again.intervals.iter().map(|i| (i.start.clone(), i.end.clone())).collect();
        assert_eq!(pairs, pairs2, "{text}");
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn grain() -> impl Strategy<Value = Grain> {
        prop_oneof![
            Just(Grain::Hour),
            Just(Grain::Day),
            Just(Grain::Week),
            Just(Grain::Month),
            Just(Grain::Quarter),
            Just(Grain::Year)
        ]
    }

    fn zone() -> impl Strategy<Value = Tz> {
        prop_oneof![Just(UTC), Just(New_York), Just(chrono_tz::Europe::London), Just(chrono_tz::Asia::Kolkata)]
    }

    fn period() -> impl Strategy<Value = Period> {
        (0i64..3, 0i64..14, 0i64..5, 0i64..40, 0i64..30, 0i64..70, 0i64..70, 0i64..1000).prop_map(
            |(years, months, weeks, days, hours, minutes, seconds, millis)| Period {
                years,
                months,
                weeks,
                days,
                hours,
                minutes,
                seconds,
                millis,
            },
        )
    }

    fn date() -> impl Strategy<Value = LocalDate> {
        (1990i32..2030, 1u32..13, 1u32..29, 0u32..24, 0u32..60, 0u32..60, 0u32..1000, 1u8..8).prop_map(
            |(year, month, day, hour, minute, second, milli, precision)| {
                let mut d = LocalDate { year, month, day, hour, minute, second, milli, precision };
                // Fields below the precision are at their minimum, as parsing gives them.
                if precision < 2 {
                    d.month = 1
                }
                if precision < 3 {
                    d.day = 1
                }
                if precision < 4 {
                    d.hour = 0
                }
                if precision < 5 {
                    d.minute = 0
                }
                if precision < 6 {
                    d.second = 0
                }
                if precision < 7 {
                    d.milli = 0
                }
                d
            },
        )
    }

    fn term() -> impl Strategy<Value = Term> {
        prop_oneof![
            date().prop_map(Term::Date),
            period().prop_map(Term::Period),
            (
                prop_oneof![
                    Just(Macro::Current),
                    Just(Macro::Next),
                    Just(Macro::CurrentOf(Grain::Week)),
                    Just(Macro::NextOf(Grain::Year))
                ],
                proptest::collection::vec((any::<bool>(), period()), 0..3)
            )
                .prop_map(|(m, o)| Term::Macro(m, o)),
        ]
    }

    proptest! {
        #[test]
        fn render_then_parse_is_identity(pairs in proptest::collection::vec((term(), term()), 1..4)) {
            let text = render(&pairs);
            let ast = parse(Some(&text)).unwrap();
            let back: Vec<(Term, Term)> = ast.intervals.iter().map(|i| (i.start.clone(), i.end.clone())).collect();
            // Periods equal to zero render as P0D, which parses to the same zero period.
            prop_assert_eq!(back, pairs);
        }

        #[test]
        fn merged_lists_are_sorted_disjoint_and_aligned(
            g in grain(), tz in zone(),
            starts in proptest::collection::vec((0i64..2000, 1i64..6), 1..6),
        ) {
            // Build aligned intervals by stepping whole buckets from an aligned origin.
            let origin = time::floor(g, tz, utc("2012-01-01"));
            let pieces: Vec<String> = starts.iter().map(|(s, len)| {
                let a = time::add(g, tz, origin, *s % 60);
                let b = time::add(g, tz, a, *len);
                let fmt = |ms: i64| time::to_local(tz, ms).format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
                format!("{}/{}", fmt(a), fmt(b))
            }).collect();
            let c = Context { grain: g, tz, now: utc("2013-06-05"), rrule_max: 100 };
            let text = pieces.join(",");
            let out = parse(Some(&text)).and_then(|a| evaluate(&a, &c));
            // Local times inside a DST gap do not exist; such inputs may legitimately fail.
            if let Ok(out) = out {
                for w in out.windows(2) {
                    prop_assert!(w[0].end < w[1].start, "sorted and disjoint, not abutting");
                }
                for i in &out {
                    prop_assert!(i.start < i.end);
                    prop_assert!(time::is_aligned(g, tz, i.start) && time::is_aligned(g, tz, i.end));
                    if g == Grain::Week {
                        prop_assert!(is_monday(tz, i.start));
                    }
                }
            }
        }
    }
}
