//! `GET /v1/data` through the real server over the embedded flights. Numbers are checked
//! against an independent computation over the same Parquet (`common::flights`).

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn all_flights() -> &'static Vec<Flight> {
    static F: OnceLock<Vec<Flight>> = OnceLock::new();
    F.get_or_init(flights)
}

fn in_range<'a>(from: &str, to: &str) -> impl Iterator<Item = &'a Flight> {
    let (a, b) = (day_ms(from), day_ms(to));
    all_flights().iter().filter(move |f| f.time_ms >= a && f.time_ms < b)
}

fn rows(r: &Resp) -> Vec<Value> {
    r.json()["rows"].as_array().unwrap_or_else(|| panic!("no rows: {}", r.body)).clone()
}

#[tokio::test]
async fn grouped_json_matches_independent_totals() {
    let s = embedded().await;
    let r = get(
        &s,
        "/v1/data/flights/month/carrier?metrics=flights,depDelay,avgDepDelay,cancelled&dateTime=2013-01-01/2013-03-01",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type").unwrap(), "application/json; charset=utf-8");
    let got = rows(&r);
    // Independent: per (month, carrier).
    let mut want: BTreeMap<(String, String), (i64, i64, i64)> = BTreeMap::new();
    for f in in_range("2013-01-01", "2013-03-01") {
        let month =
            if f.time_ms < day_ms("2013-02-01") { "2013-01-01 00:00:00.000" } else { "2013-02-01 00:00:00.000" };
        let e = want.entry((month.to_string(), f.carrier.clone())).or_default();
        e.0 += 1;
        e.1 += f.dep_delay.unwrap_or(0);
        e.2 += i64::from(f.dep_delay.is_some());
    }
    assert_eq!(got.len(), want.len());
    for (row, ((month, carrier), (n, delay, departed))) in got.iter().zip(&want) {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["dateTime", "carrier|id", "carrier|desc", "flights", "depDelay", "avgDepDelay", "cancelled"]);
        assert_eq!(row["dateTime"], json!(month));
        assert_eq!(row["carrier|id"], json!(carrier));
        assert_eq!(row["flights"], json!(n), "long metrics are JSON integers");
        assert_eq!(row["depDelay"], json!(delay));
        assert_eq!(row["cancelled"], json!(n - departed));
        let avg = row["avgDepDelay"].as_f64().unwrap();
        assert!((avg - *delay as f64 / *departed as f64).abs() < 1e-9);
    }
    assert_eq!(got[0]["carrier|desc"], "Endeavor Air Inc.");
    let timing = r.header("server-timing").unwrap();
    assert!(timing.starts_with("engine;dur=") && timing.contains("rows;desc="), "{timing}");
}

#[tokio::test]
async fn csv_is_rfc4180_byte_for_byte() {
    let s = embedded().await;
    let r =
        get(&s, "/v1/data/flights/day/origin?metrics=flights,depDelay&dateTime=2013-06-01/2013-06-02&format=csv").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").unwrap(), "text/csv; charset=utf-8");
    assert_eq!(
        r.header("content-disposition").unwrap(),
        "attachment; filename=data-flights-day-origin_2013-06-01_2013-06-02.csv"
    );
    let names = [("EWR", "Newark Liberty Intl"), ("JFK", "John F Kennedy Intl"), ("LGA", "La Guardia")];
    let mut expected = String::from("dateTime,origin|id,origin|desc,flights,depDelay\r\n");
    for (code, name) in names {
        let fs: Vec<&Flight> = in_range("2013-06-01", "2013-06-02").filter(|f| f.origin == code).collect();
        let delay: i64 = fs.iter().filter_map(|f| f.dep_delay).sum();
        expected.push_str(&format!("\"2013-06-01 00:00:00.000\",{code},\"{name}\",{},{delay}\r\n", fs.len()));
    }
    assert_eq!(r.body, expected);
}

#[tokio::test]
async fn jsonapi_has_sidecars() {
    let s = embedded().await;
    let r = get(&s, "/v1/data/flights/all/carrier;show=desc/origin;show=none?metrics=flights&dateTime=2013-06-01/2013-06-02&format=jsonapi&filters=carrier%7Cid-in%5BDL,UA%5D").await;
    let v = r.json();
    // Grouped by carrier and origin; origin's columns are hidden (show=none), not its grouping.
    let n = in_range("2013-06-01", "2013-06-02").filter(|f| f.carrier == "DL" && f.origin == "EWR").count();
    assert_eq!(v["rows"][0], json!({"dateTime": "2013-06-01 00:00:00.000", "carrier": "DL", "flights": n}));
    assert_eq!(
        v["carrier"],
        json!([{"desc": "Delta Air Lines Inc.", "id": "DL"}, {"desc": "United Air Lines Inc.", "id": "UA"}])
    );
    assert!(v.get("origin").is_none(), "show=none has no sidecar");
}

#[tokio::test]
async fn show_clauses() {
    let s = embedded().await;
    let r = get(&s, "/v1/data/flights/all/dest;show=all?metrics=flights&dateTime=2013-06-01/2013-06-02&filters=dest%7Cid-in%5BLAX%5D").await;
    let row = &rows(&r)[0];
    let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "dateTime",
            "dest|id",
            "dest|desc",
            "dest|lat",
            "dest|lon",
            "dest|alt",
            "dest|tz",
            "dest|dst",
            "dest|tzone",
            "flights"
        ]
    );
    assert_eq!(row["dest|tzone"], "America/Los_Angeles");
    let r = get(&s, "/v1/data/flights/all/dest;show=tzone,id?metrics=flights&dateTime=2013-06-01/2013-06-02&filters=dest%7Cid-in%5BLAX%5D").await;
    let keys: Vec<String> = rows(&r)[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["dateTime", "dest|tzone", "dest|id", "flights"]);
    let r = get(&s, "/v1/data/flights/all/dest;show=none?metrics=flights&dateTime=2013-06-01/2013-06-02&filters=dest%7Cid-in%5BLAX%5D").await;
    let keys: Vec<String> = rows(&r)[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["dateTime", "flights"]);
    let r = get(&s, "/v1/data/flights/all/dest;show=foo?metrics=flights&dateTime=2013-06-01/2013-06-02").await;
    assert_eq!(
        (r.status, r.description()),
        (400, "Dimension field(s) '[foo]' do not exist for dimension 'dest'".into())
    );
}

#[tokio::test]
async fn filters_through_lookups_and_semantics_of_no_match() {
    let s = embedded().await;
    let base = "/v1/data/flights/all?metrics=flights&dateTime=2013-01-01/2014-01-01";
    let total: usize = in_range("2013-01-01", "2014-01-01").count();
    let delta = in_range("2013-01-01", "2014-01-01").filter(|f| f.carrier == "DL").count();
    let r = get(&s, &format!("{base}&filters=carrier%7Cdesc-contains%5BDelta%5D")).await;
    assert_eq!(rows(&r)[0]["flights"], json!(delta));
    let r = get(&s, &format!("{base}&filters=carrier%7Cdesc-notin%5B%22Delta%20Air%20Lines%20Inc.%22%5D")).await;
    assert_eq!(rows(&r)[0]["flights"], json!(total - delta));
    // Matching nothing: `in` gives an empty result, `notin` excludes nothing (DESIGN §7).
    let r = get(&s, &format!("{base}&filters=carrier%7Cdesc-in%5BNobody%5D")).await;
    assert_eq!((r.status, rows(&r).len()), (200, 0));
    let r = get(&s, &format!("{base}&filters=carrier%7Cid-notin%5BZZ%5D")).await;
    assert_eq!(rows(&r)[0]["flights"], json!(total));
    // Several clauses AND; integer dimension keys.
    let n = in_range("2013-01-01", "2014-01-01").filter(|f| f.origin == "JFK" && f.flight == 1).count();
    let r = get(&s, &format!("{base}&filters=origin%7Cid-in%5BJFK%5D,flight%7Cid-eq%5B1%5D")).await;
    assert_eq!(rows(&r)[0]["flights"], json!(n));
    // Bound operations through the dimension rows: airports west of -150° longitude.
    let mut airports = csv::Reader::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/data/airports.csv")).unwrap();
    let west: Vec<String> = airports
        .records()
        .map(|r| r.unwrap())
        .filter(|r| r[3].parse::<f64>().unwrap() < -150.0)
        .map(|r| r[0].to_string())
        .collect();
    let r = get(&s, &format!("{base}&filters=dest%7Clon-lt%5B-150%5D")).await;
    let n = in_range("2013-01-01", "2014-01-01").filter(|f| west.contains(&f.dest)).count();
    assert!(n > 0);
    assert_eq!(rows(&r)[0]["flights"], json!(n));
}

#[tokio::test]
async fn sort_topn_count_having() {
    let s = embedded().await;
    let r = get(
        &s,
        "/v1/data/flights/month/carrier?metrics=flights&dateTime=2013-01-01/2013-03-01&sort=flights%7Cdesc&topN=2",
    )
    .await;
    let got = rows(&r);
    assert_eq!(got.len(), 4);
    let mut jan: BTreeMap<String, usize> = BTreeMap::new();
    for f in in_range("2013-01-01", "2013-02-01") {
        *jan.entry(f.carrier.clone()).or_default() += 1;
    }
    let mut top: Vec<(usize, String)> = jan.into_iter().map(|(k, v)| (v, k)).collect();
    top.sort_by(|a, b| b.cmp(a));
    assert_eq!(got[0]["carrier|id"], json!(top[0].1));
    assert_eq!(got[1]["carrier|id"], json!(top[1].1));
    assert_eq!(got[2]["dateTime"], "2013-02-01 00:00:00.000");

    let r = get(&s, "/v1/data/flights/month/carrier?metrics=flights&dateTime=2013-01-01/2013-03-01&sort=dateTime%7Cdesc,flights%7Casc&count=3").await;
    let got = rows(&r);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0]["dateTime"], "2013-02-01 00:00:00.000");
    assert!(got[0]["flights"].as_i64() <= got[1]["flights"].as_i64());

    let r = get(
        &s,
        "/v1/data/flights/all/carrier?metrics=flights&dateTime=2013-01-01/2014-01-01&having=flights-gt%5B50000%5D",
    )
    .await;
    let ids: Vec<&str> = rows(&r)
        .iter()
        .map(|x| x["carrier|id"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .leak()
        .iter()
        .map(|s| s.as_str())
        .collect();
    let mut year: BTreeMap<String, usize> = BTreeMap::new();
    for f in in_range("2013-01-01", "2014-01-01") {
        *year.entry(f.carrier.clone()).or_default() += 1;
    }
    let want: Vec<&String> = year.iter().filter(|(_, n)| **n > 50000).map(|(k, _)| k).collect();
    assert_eq!(ids, want);
    // Sorting on a grouped dimension.
    let r =
        get(&s, "/v1/data/flights/all/origin?metrics=flights&dateTime=2013-01-01/2014-01-01&sort=origin%7Cdesc").await;
    let ids: Vec<String> = rows(&r).iter().map(|x| x["origin|id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, ["LGA", "JFK", "EWR"]);
}

#[tokio::test]
async fn nested_average_and_reagg() {
    let s = embedded().await;
    let r =
        get(&s, "/v1/data/flights/month?metrics=dayAvgFlights,flights(reagg=dayAvg)&dateTime=2013-02-01/2013-03-01")
            .await;
    let row = &rows(&r)[0];
    let mut days: BTreeMap<i64, usize> = BTreeMap::new();
    for f in in_range("2013-02-01", "2013-03-01") {
        *days.entry(f.time_ms / 86_400_000).or_default() += 1;
    }
    let want = days.values().sum::<usize>() as f64 / days.len() as f64;
    assert!((row["dayAvgFlights"].as_f64().unwrap() - want).abs() < 1e-9);
    assert_eq!(row["dayAvgFlights"], row["flights(reagg=dayAvg)"]);
    let r = get(&s, "/v1/data/flights/hour?metrics=flights(reagg=dayAvg)&dateTime=2013-02-01/2013-03-01").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.description(),
        "Illegal request: query requires time grain 'day' which cannot satisfy request time grain 'hour'."
    );
}

#[tokio::test]
async fn time_zone_buckets() {
    let s = embedded().await;
    let r =
        get(&s, "/v1/data/flights/day?metrics=flights&dateTime=2013-06-01/2013-06-02&timeZone=America/New_York").await;
    let row = &rows(&r)[0];
    assert_eq!(row["dateTime"], "2013-06-01 00:00:00.000");
    let (a, b) = (day_ms("2013-06-01") + 4 * 3_600_000, day_ms("2013-06-02") + 4 * 3_600_000);
    let n = all_flights().iter().filter(|f| f.time_ms >= a && f.time_ms < b).count();
    assert_eq!(row["flights"], json!(n));
}

#[tokio::test]
async fn pagination_meta_links_and_404() {
    let s = embedded().await;
    let q = "/v1/data/flights/day?metrics=flights&dateTime=2013-06-01/2013-06-11";
    let r = get(&s, &format!("{q}&perPage=3&page=2")).await;
    let v = r.json();
    assert_eq!(v["rows"].as_array().unwrap().len(), 3);
    assert_eq!(v["rows"][0]["dateTime"], "2013-06-04 00:00:00.000");
    let p = &v["meta"]["pagination"];
    let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["first", "last", "next", "previous", "currentPage", "rowsPerPage", "numberOfResults"]);
    assert_eq!(p["numberOfResults"], 10);
    assert_eq!(
        p["last"],
        format!("{}{q}&perPage=3&page=4", s.base).replace("2013-06-01/2013-06-11", "2013-06-01%2F2013-06-11")
    );
    assert!(r.header("link").unwrap().contains("rel=\"next\""));
    let r = get(&s, &format!("{q}&perPage=3&page=5")).await;
    assert_eq!(
        (r.status, r.description()),
        (404, "Requested page '5' with '3' rows per page, but there are only '4' pages.".into())
    );
    let r = get(&s, &format!("{q}&perPage=3&page=last")).await;
    assert_eq!(r.json()["rows"].as_array().unwrap().len(), 1);
    assert!(r.json()["meta"]["pagination"].get("next").is_none());
}

#[tokio::test]
async fn missing_intervals_and_debug() {
    let s = embedded().await;
    let r = get(&s, "/v1/data/flights/month?metrics=flights&dateTime=2012-11-01/2013-02-01").await;
    let v = r.json();
    assert_eq!(v["meta"]["missingIntervals"], json!(["2012-11-01 00:00:00.000/2013-01-01 00:00:00.000"]));
    let r = get(&s, "/v1/data/flights/month?metrics=flights&dateTime=2013-03-01/2013-05-01").await;
    assert!(r.json().get("meta").is_none(), "{}", r.body);

    let r = get(&s, "/v1/data/flights/day/carrier?metrics=flights&dateTime=2013-06-01/2013-06-03&format=debug").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(
        (v["status"].clone(), v["reason"].clone(), v["description"].clone()),
        (json!(200), json!("debug"), json!("DEBUG"))
    );
    let q = &v["druidQuery"];
    assert_eq!(q["physicalTable"]["name"], "flights_day");
    assert_eq!(q["physicalTable"]["kind"], "rollup");
    assert_eq!(q["intervals"], json!(["2013-06-01T00:00:00.000Z/2013-06-03T00:00:00.000Z"]));
    let scan = q["files"][0]["rowGroupsToScan"].as_array().unwrap();
    assert!(!scan.is_empty() && scan.len() <= 2, "{scan:?}");
}

#[tokio::test]
async fn formats_accept_and_filenames() {
    let s = embedded().await;
    let q = "/v1/data/flights/all?metrics=flights&dateTime=2013-06-01/2013-06-02";
    let r = get_with(&s, q, &[("accept", "text/csv")]).await;
    assert_eq!(r.header("content-type").unwrap(), "text/csv; charset=utf-8");
    let r = get(&s, &format!("{q}&filename=june.csv.csv&format=csv")).await;
    assert_eq!(r.header("content-disposition").unwrap(), "attachment; filename=june.csv");
    let r = get(&s, &format!("{q}&filename=june")).await;
    assert_eq!(r.header("content-disposition").unwrap(), "attachment; filename=june.json");
    let r = get(&s, q).await;
    assert!(r.header("content-disposition").is_none());
}

async fn error(s: &Server, path: &str) -> (u16, String, String) {
    let r = get(s, path).await;
    let v = r.json();
    (r.status, v["reason"].as_str().unwrap().to_string(), v["description"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn errors_and_their_precedence() {
    let s = embedded().await;
    let d = "dateTime=2013-06-01/2013-06-02";
    let cases: Vec<(String, u16, &str, String)> = vec![
        // format wins over everything.
        (format!("/v1/data/nope/fortnight?format=xml&{d}"), 400, "FORMAT_INVALID", "Format 'xml' is unknown. Choose from 'csv', 'json'.".into()),
        (format!("/v1/data/flights/day?metrics=flights&{d}&asyncAfter=soon"), 400, "ASYNC_AFTER_INVALID", "Invalid 'asyncAfter' parameter: 'soon'. 'asyncAfter' must be either 'never' or an integer number of milliseconds.".into()),
        (format!("/v1/data/flights/day?metrics=flights&{d}&perPage=2"), 400, "PAGINATION_INVALID", "Missing parameter 'page.' Both 'perPage' and 'page' are required for pagination.".into()),
        (format!("/v1/data/flights/fortnight?metrics=x&{d}&timeZone=Mars/Base"), 400, "TIME_ZONE_UNKNOWN", "Time zone 'Mars/Base' is unknown.  See (http://joda-time.sourceforge.net/timezones.html) for valid time zone ids.".into()),
        (format!("/v1/data/nope/fortnight?metrics=x&{d}"), 400, "GRAIN_INVALID", "'fortnight' is not a valid granularity. Try 'day', 'week', 'month', 'year' or 'all'".into()),
        (format!("/v1/data/nope/day?metrics=x&{d}"), 400, "TABLE_UNDEFINED", "Table with name 'nope' does not exist.".into()),
        (format!("/v1/data/flights/minute?metrics=x&{d}"), 400, "TABLE_UNDEFINED", "Table with name 'flights' does not exist.".into()),
        (format!("/v1/data/flights/day/bad/worse?metrics=x&{d}"), 400, "DIMENSION_UNDEFINED", "Dimension(s) '[bad, worse]' do not exist.".into()),
        (format!("/v1/data/flights/day?{d}"), 400, "METRICS_MISSING", "Required parameter metrics is missing or empty. Use 'metrics=METRICNAME1,METRICNAME2' in the query string.".into()),
        (format!("/v1/data/flights/day?metrics=bad,worse&{d}"), 400, "METRIC_UNDEFINED", "Metric(s) '[bad, worse]' do not exist.".into()),
        (format!("/v1/data/flights/hour?metrics=dayAvgFlights&{d}"), 400, "METRICS_NOT_IN_TABLE", "Requested metric(s) '[dayAvgFlights]' are not supported by the table 'flights' with grain 'hour' Valid grains are '[all, day, month, quarter, week, year]'.".into()),
        (format!("/v1/data/flights/day?metrics=flights(reagg=hourAvg)&{d}"), 400, "METRIC_INVALID", "Metric expression 'flights(reagg=hourAvg)' is invalid. (reagg 'hourAvg' must be one of dayAvg, weekAvg, monthAvg)".into()),
        ("/v1/data/flights/day?metrics=flights".into(), 400, "DATETIME_MISSING", "Required parameter dateTime is missing. Use dateTime=YYYY-MM-DD/YYYY-MM-DD in the query string.".into()),
        ("/v1/data/flights/day?metrics=flights&dateTime=2013-06-01/2013-06-01".into(), 400, "INTERVAL_ZERO_LENGTH", "Date time cannot have zero length intervals. 2013-06-01/2013-06-01.".into()),
        ("/v1/data/flights/week?metrics=flights&dateTime=2013-06-01/2013-06-08".into(), 400, "INTERVAL_MISALIGNED", "'[2013-06-01T00:00:00.000Z/2013-06-08T00:00:00.000Z]' does not align with granularity 'week'. Week must start on a Monday and end on a Monday.".into()),
        ("/v1/data/flights/day?metrics=flights&dateTime=/2013-06-01".into(), 400, "INTERVAL_INVALID", "Interval '/2013-06-01' is invalid. The start of the interval is empty: put a date, a period or a macro before the '/'.".into()),
        (format!("/v1/data/flights/day?metrics=flights&{d}&filters=nope%7Cid-in%5Bx%5D"), 400, "FILTER_DIMENSION_UNDEFINED", "Filter dimension 'nope' does not exist.".into()),
        (format!("/v1/data/flights/day?metrics=flights&{d}&filters=carrier%7Cname-in%5Bx%5D"), 400, "FILTER_FIELD_UNDEFINED", "Filter dimension field 'name' is not supported by the dimension 'carrier'.".into()),
        (format!("/v1/data/flights/day?metrics=flights&{d}&filters=carrier%7Cid-like%5Bx%5D"), 400, "FILTER_OPERATOR_INVALID", "Filter operator 'like' is invalid.".into()),
        (format!("/v1/data/flights/day?metrics=flights&{d}&filters=carrier%7Cid-in%5Ba,,b%5D"), 400, "FILTER_VALUES_INVALID", "Filter expression 'carrier|id-in[a,,b]' resulted in the following error: Set of values 'a,,b' cannot be processed.  Empty strings, commas, and leading or trailing whitespace must be quoted.".into()),
        (format!("/v1/data/flights/day?metrics=flights&{d}&having=depDelay-gt%5B1%5D"), 400, "HAVING_METRIC_UNDEFINED", "Having metric 'depDelay' does not exist.".into()),
        (format!("/v1/data/flights/day?metrics=flights&{d}&having=flights-gt%5Bx%5D"), 400, "HAVING_VALUE_INVALID", "Having expression 'x' is not numeric.".into()),
        (format!("/v1/data/flights/day?metrics=flights,departed&{d}&sort=bad,worse"), 400, "SORT_METRIC_UNDEFINED", "Requested sort metric(s) '[bad, worse]' were not selected in the metrics expression.Possible matches: '[flights,departed]'".into()),
        (format!("/v1/data/flights/day?metrics=flights&{d}&sort=flights,dateTime"), 400, "SORT_INVALID", "dateTime should be the first field in the sort list".into()),
        (format!("/v1/data/flights/day?metrics=flights&{d}&count=x"), 400, "COUNT_INVALID", "count value:'x' is invalid. Value must be a positive integer.".into()),
        (format!("/v1/data/flights/day?metrics=flights&{d}&topN=3"), 400, "TOPN_WITHOUT_SORT", "TopN requires at least one metric column to sort on, specified using a query parameter of the form 'sort=metricName|dir' where 'dir' is one of 'asc' (ascending) or 'desc' (descending)".into()),
        (format!("/v1/data/flights/day?metrics=flights&{d}&topN=-1&sort=flights"), 400, "TOPN_INVALID", "topN value:'-1' is invalid. Value must be a positive integer.".into()),
    ];
    for (path, status, reason, msg) in cases {
        let (st, re, de) = error(&s, &path).await;
        assert_eq!((st, re.as_str(), de.as_str()), (status, reason, msg.as_str()), "{path}");
    }
    // Filter dimension of another table is rejected; metric not in table at all.
    let r = get(&s, &format!("/v1/data/flights/day/carrier;show=id?metrics=flights&{d}&sort=carrier")).await;
    assert_eq!(r.status, 200);
}

async fn physical(s: &Server, path: &str) -> String {
    let sep = if path.contains('?') { "&" } else { "?" };
    let r = get(s, &format!("{path}{sep}format=debug")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["druidQuery"]["physicalTable"]["name"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn routing_prefers_the_rollup_and_falls_back_to_raw() {
    let s = embedded().await;
    let d = "dateTime=2013-01-01/2014-01-01";
    assert_eq!(physical(&s, &format!("/v1/data/flights/day/carrier?metrics=flights&{d}")).await, "flights_day");
    assert_eq!(
        physical(&s, &format!("/v1/data/flights/month/origin/dest?metrics=avgDepDelay,dayAvgFlights&{d}")).await,
        "flights_day"
    );
    assert_eq!(
        physical(&s, &format!("/v1/data/flights/all?metrics=flights&{d}&filters=carrier%7Cdesc-contains%5BDelta%5D"))
            .await,
        "flights_day"
    );
    // Back to raw: a dimension the rollup lacks, a distinct count, a finer grain, another zone.
    assert_eq!(physical(&s, &format!("/v1/data/flights/day/tailnum?metrics=flights&{d}")).await, "flights_raw");
    assert_eq!(physical(&s, &format!("/v1/data/flights/day?metrics=flights,uniqueTails&{d}")).await, "flights_raw");
    assert_eq!(physical(&s, &format!("/v1/data/flights/hour?metrics=flights&{d}")).await, "flights_raw");
    assert_eq!(
        physical(&s, &format!("/v1/data/flights/day?metrics=flights&{d}&timeZone=America/New_York")).await,
        "flights_raw"
    );
    assert_eq!(
        physical(&s, &format!("/v1/data/flights/day?metrics=flights&{d}&filters=flight%7Cid-in%5B1%5D")).await,
        "flights_raw"
    );
}

#[tokio::test]
async fn rollup_answers_equal_raw_answers() {
    let s = embedded().await;
    let d = "dateTime=2013-01-01/2014-01-01";
    let metrics =
        "flights,departed,cancelled,depDelay,avgDepDelay,maxDepDelay,minDepDelay,dayAvgFlights,delayedDepartures";
    let via_rollup = get(&s, &format!("/v1/data/flights/month/carrier?metrics={metrics}&{d}")).await;
    // The same numbers from the raw table: force it with a filter the rollup cannot serve
    // that keeps every row.
    let via_raw =
        get(&s, &format!("/v1/data/flights/month/carrier?metrics={metrics}&{d}&filters=flight%7Cid-notin%5B-1%5D"))
            .await;
    assert_eq!(
        physical(
            &s,
            &format!("/v1/data/flights/month/carrier?metrics={metrics}&{d}&filters=flight%7Cid-notin%5B-1%5D")
        )
        .await,
        "flights_raw"
    );
    let (a, b) = (rows(&via_rollup), rows(&via_raw));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        for (k, v) in x.as_object().unwrap() {
            match (v.as_f64(), y[k].as_f64()) {
                (Some(p), Some(q)) => assert!((p - q).abs() <= 1e-9 * p.abs().max(1.0), "{k}: {p} vs {q}"),
                _ => assert_eq!(v, &y[k], "{k}"),
            }
        }
    }
    // And against the independent computation for one cell.
    let ua_jan = in_range("2013-01-01", "2013-02-01").filter(|f| f.carrier == "UA").count();
    let cell = a.iter().find(|r| r["carrier|id"] == "UA" && r["dateTime"] == "2013-01-01 00:00:00.000").unwrap();
    assert_eq!(cell["flights"], json!(ua_jan));
}

#[tokio::test]
async fn rollup_command_builds_a_routable_table() {
    let dir = scratch_config();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args([
            "rollup",
            "--table",
            "flights",
            "--grain",
            "month",
            "--dimensions",
            "carrier",
            "--metrics",
            "flights,depDelay,departed",
            "--name",
            "flights_month",
            "--config",
        ])
        .arg(dir.path().join("config"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("data/flights_month.parquet").exists());
    let s = start(&dir.path().join("config")).await;
    let q = "/v1/data/flights/month/carrier?metrics=flights,avgDepDelay&dateTime=2013-01-01/2014-01-01";
    assert_eq!(physical(&s, q).await, "flights_month");
    let r = get(&s, q).await;
    let ua = in_range("2013-03-01", "2013-04-01").filter(|f| f.carrier == "UA").count();
    let cell =
        rows(&r).into_iter().find(|x| x["carrier|id"] == "UA" && x["dateTime"] == "2013-03-01 00:00:00.000").unwrap();
    assert_eq!(cell["flights"], json!(ua));
    // A metric the new rollup does not carry routes to the daily one.
    assert_eq!(
        physical(&s, "/v1/data/flights/month/carrier?metrics=maxDepDelay&dateTime=2013-01-01/2014-01-01").await,
        "flights_day"
    );
}
