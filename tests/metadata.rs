//! Metadata endpoints through the real server: shapes, headers and errors (spec §2, §6).

mod common;

use common::*;
use serde_json::Value;

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn tables_list_one_row_per_grain() {
    let s = embedded().await;
    let r = get(&s, "/v1/tables").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").unwrap(), "application/json; charset=utf-8");
    let rows = r.json()["rows"].as_array().unwrap().clone();
    let grains: Vec<&str> = rows.iter().map(|x| x["granularity"].as_str().unwrap()).collect();
    assert_eq!(grains, ["hour", "day", "week", "month", "quarter", "year", "all"]);
    assert_eq!(keys(&rows[0]), ["category", "name", "longName", "granularity", "uri"]);
    assert_eq!(rows[1]["uri"], format!("{}/v1/tables/flights/day", s.base));
    assert!(r.json().get("meta").is_none(), "one page: no meta");
    // /tables/{t} lists the same rows.
    assert_eq!(get(&s, "/v1/tables/flights").await.json()["rows"], Value::Array(rows));
}

#[tokio::test]
async fn table_at_grain_has_schema_and_2013_availability() {
    let s = embedded().await;
    let r = get(&s, "/v1/tables/flights/day").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(
        keys(&v),
        [
            "category",
            "name",
            "longName",
            "retention",
            "granularity",
            "description",
            "dimensions",
            "metrics",
            "availableIntervals"
        ]
    );
    assert_eq!(v["granularity"], "day");
    let dims: Vec<&str> = v["dimensions"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(dims, ["carrier", "origin", "dest", "tailnum", "flight"]);
    assert_eq!(keys(&v["dimensions"][0]), ["category", "name", "longName", "uri", "cardinality", "storageStrategy"]);
    let metrics: Vec<&str> = v["metrics"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert!(metrics.contains(&"dayAvgFlights") && metrics.contains(&"uniqueTails"));
    // The data runs from the first scheduled hour of 2013 to the last (UTC).
    let avail = v["availableIntervals"].as_array().unwrap();
    assert_eq!(avail.len(), 1);
    let iv = avail[0].as_str().unwrap();
    assert!(iv.starts_with("2013-01-01T") && iv.contains("/2014-01-0"), "{iv}");
    // A nested average is not offered below its inner grain.
    let hour = get(&s, "/v1/tables/flights/hour").await.json();
    assert!(!hour["metrics"].as_array().unwrap().iter().any(|m| m["name"] == "dayAvgFlights"));
}

#[tokio::test]
async fn table_errors() {
    let s = embedded().await;
    let r = get(&s, "/v1/tables/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.description(), "Table with name 'nope' does not exist.");
    assert_eq!(r.json()["reason"], "TABLE_NOT_FOUND");
    let r = get(&s, "/v1/tables/flights/fortnight").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.description(), "'fortnight' is not a valid granularity. Try 'day', 'week', 'month', 'year' or 'all'");
    let r = get(&s, "/v1/tables/flights/minute").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.description(), "Invalid pair of granularity 'minute' and table 'flights'.");
}

#[tokio::test]
async fn constrained_table_request_narrows_availability() {
    let s = embedded().await;
    let r = get(&s, "/v1/tables/flights/day/carrier?dateTime=2013-06-01/2013-07-01").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["availableIntervals"],
        serde_json::json!(["2013-06-01T00:00:00.000Z/2013-07-01T00:00:00.000Z"])
    );
    let r = get(&s, "/v1/tables/flights/day/bogus?dateTime=2013-06-01/2013-07-01").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.description(), "Dimension(s) '[bogus]' do not exist.");
}

#[tokio::test]
async fn fullview() {
    let s = embedded().await;
    let v = get(&s, "/v1/tables?format=fullview").await.json();
    let t = &v["tables"][0];
    assert_eq!(keys(t), ["name", "longName", "description", "category", "timeGrains"]);
    let g = &t["timeGrains"][1];
    assert_eq!(g["name"], "day");
    assert_eq!(g["longName"], "Day");
    assert_eq!(g["description"], "The flights day grain");
    assert_eq!(keys(&g["dimensions"][0]), ["category", "name", "longName", "cardinality", "fields", "storageStrategy"]);
    assert_eq!(keys(&g["metrics"][0]), ["category", "name", "longName", "type"]);
}

/// Airline names straight from the lookup CSV, read independently.
fn airlines() -> Vec<(String, String)> {
    let mut r = csv::Reader::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/data/airlines.csv")).unwrap();
    let mut v: Vec<(String, String)> =
        r.records().map(|x| x.unwrap()).map(|x| (x[0].to_string(), x[1].to_string())).collect();
    v.sort();
    v
}

#[tokio::test]
async fn dimension_values_show_real_airline_names() {
    let s = embedded().await;
    let r = get(&s, "/v1/dimensions/carrier/values").await;
    assert_eq!(r.status, 200);
    let rows = r.json()["rows"].as_array().unwrap().clone();
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|x| (x["id"].as_str().unwrap().to_string(), x["description"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(got, airlines());
    assert_eq!(keys(&rows[0]), ["id", "description"]);
}

#[tokio::test]
async fn dimension_values_filters_paging_csv() {
    let s = embedded().await;
    let r = get(&s, "/v1/dimensions/carrier/values?filters=carrier%7Cdesc-contains%5BAir%5D").await;
    let expected: Vec<String> = airlines().into_iter().filter(|(_, n)| n.contains("Air")).map(|(k, _)| k).collect();
    let got: Vec<String> =
        r.json()["rows"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, expected);

    let r = get(&s, "/v1/dimensions/carrier/values?perPage=5&page=2").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["rows"].as_array().unwrap().len(), 5);
    let p = &v["meta"]["pagination"];
    assert_eq!(p["currentPage"], 2);
    assert_eq!(p["rowsPerPage"], 5);
    assert_eq!(p["numberOfResults"], 16);
    assert_eq!(p["next"], format!("{}/v1/dimensions/carrier/values?perPage=5&page=3", s.base));
    assert_eq!(p["previous"], format!("{}/v1/dimensions/carrier/values?perPage=5&page=1", s.base));
    let link = r.header("link").unwrap();
    assert!(
        link.contains("rel=\"next\"")
            && link.contains("rel=\"prev\"")
            && link.contains("rel=\"first\"")
            && link.contains("rel=\"last\""),
        "{link}"
    );

    let r = get(&s, "/v1/dimensions/carrier/values?perPage=5&page=9").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.description(), "Requested page '9' with '5' rows per page, but there are only '4' pages.");
    let r = get(&s, "/v1/dimensions/carrier/values?perPage=5").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.description(), "Missing parameter 'page.' Both 'perPage' and 'page' are required for pagination.");

    let r = get(&s, "/v1/dimensions/carrier/values?format=csv").await;
    assert_eq!(r.header("content-type").unwrap(), "text/csv; charset=utf-8");
    assert_eq!(r.header("content-disposition").unwrap(), "attachment; filename=dimensions-carrier-values.csv");
    assert!(r.body.starts_with("id,description\n9E,Endeavor Air Inc.\n"), "{}", r.body);
}

#[tokio::test]
async fn dimension_without_lookup_lists_fact_values() {
    let s = embedded().await;
    let r = get(&s, "/v1/dimensions/flight/values?filters=flight%7Cid-in%5B1545,99999%5D").await;
    assert_eq!(r.json()["rows"], serde_json::json!([{"id": "1545", "description": "1545"}]));
    let d = get(&s, "/v1/dimensions/flight").await.json();
    assert_eq!(d["storageStrategy"], "none");
    assert!(d["cardinality"].as_u64().unwrap() > 3000);
}

#[tokio::test]
async fn dimension_detail_and_errors() {
    let s = embedded().await;
    let v = get(&s, "/v1/dimensions/origin").await.json();
    assert_eq!(
        keys(&v),
        ["category", "name", "longName", "description", "fields", "values", "cardinality", "storageStrategy", "tables"]
    );
    assert_eq!(v["fields"][0], serde_json::json!({"name": "id", "description": "FAA airport code"}));
    assert_eq!(v["values"], format!("{}/v1/dimensions/origin/values", s.base));
    assert_eq!(v["tables"].as_array().unwrap().len(), 7);
    let r = get(&s, "/v1/dimensions/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.description(), "Dimension(s) 'nope' do not exist.");
    let r = get(&s, "/v1/dimensions/carrier/values?filters=carrier%7Cfoo-in%5Bx%5D").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.description(), "Filter dimension field 'foo' is not supported by the dimension 'carrier'.");
    let r = get(&s, "/v1/dimensions/carrier/values?filters=carrier-in%5Bx%5D").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.description(), "Filter expression 'carrier-in[x]' is invalid.");
    let r = get(&s, "/v1/dimensions/carrier/search?query=x").await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn metrics_and_slices() {
    let s = embedded().await;
    let v = get(&s, "/v1/metrics").await.json();
    assert_eq!(keys(&v["rows"][0]), ["category", "name", "longName", "type", "uri"]);
    let m = get(&s, "/v1/metrics/dayAvgFlights").await.json();
    assert_eq!(keys(&m), ["category", "name", "longName", "type", "description", "tables"]);
    let grains: Vec<&str> =
        m["tables"].as_array().unwrap().iter().map(|t| t["granularity"].as_str().unwrap()).collect();
    assert_eq!(grains, ["day", "week", "month", "quarter", "year", "all"]);
    let r = get(&s, "/v1/metrics/nope").await;
    assert_eq!((r.status, r.description()), (404, "Metric(s) 'nope' do not exist.".to_string()));

    let v = get(&s, "/v1/slices").await.json();
    assert_eq!(keys(&v["rows"][0]), ["name", "timeGrain", "uri"]);
    let sl = get(&s, "/v1/slices/flights_raw").await.json();
    assert_eq!(sl["timeGrain"], "hour");
    assert_eq!(sl["files"][0]["rows"], 336776);
    let r = get(&s, "/v1/slices/nope").await;
    assert_eq!((r.status, r.description()), (404, "Slice with name 'nope' does not exist.".to_string()));
}

#[tokio::test]
async fn cross_cutting_headers_methods_and_case() {
    let s = embedded().await;
    let r = get_with(&s, "/v1/tables", &[("origin", "http://example.test"), ("x-request-id", "abc-123")]).await;
    assert_eq!(r.header("x-request-id").unwrap(), "abc-123");
    // No origin is allowed by default: the origin is not reflected, and caches are told.
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("access-control-allow-credentials"), None);
    assert_eq!(r.header("vary").as_deref(), Some("Accept, Origin"));
    let r = get(&s, "/v1/tables").await;
    assert_eq!(r.header("x-request-id").unwrap().len(), 36, "a UUID when none is given");
    // Preflight and other methods.
    let r = request(&s, reqwest::Method::OPTIONS, "/v1/tables").await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD, OPTIONS"));
    let r = request(&s, reqwest::Method::POST, "/v1/tables").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["reason"], "METHOD_NOT_ALLOWED");
    assert!(r.header("x-request-id").is_some());
    // Parameter names are case-insensitive.
    let r = get(&s, "/v1/dimensions/carrier/values?PERPAGE=2&Page=1").await;
    assert_eq!(r.json()["rows"].as_array().unwrap().len(), 2);
    // Unknown routes get the JSON error shape too.
    let r = get(&s, "/v1/nothing").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["reason"], "ROUTE_NOT_FOUND");
    let r = get(&s, "/status").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"status": "ok", "healthy": true}), "no detail without a token");
    assert_eq!(status(&s).await["tables"]["flights"]["status"], "ok");
}

#[tokio::test]
async fn oversized_uri_is_414() {
    let s = embedded().await;
    let long = "x".repeat(20_000);
    let r = get(&s, &format!("/v1/tables?filters={long}")).await;
    assert_eq!(r.status, 414);
}

#[tokio::test]
async fn prometheus_metrics() {
    let s = embedded().await;
    get(&s, "/v1/tables").await;
    get(&s, "/v1/tables/nope").await;
    get(&s, "/v1/data/flights/day?metrics=flights&dateTime=2013-06-01/2013-06-03").await;
    assert_eq!(get(&s, "/metrics").await.status, 401, "a status token is configured");
    let r = get_as_operator(&s, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    for line in [
        "quiver_requests_total{endpoint=\"tables\",status=\"200\"} 1",
        "quiver_requests_total{endpoint=\"tables\",status=\"404\"} 1",
        "quiver_requests_total{endpoint=\"data\",status=\"200\"} 1",
        "quiver_query_errors_total{reason=\"TABLE_NOT_FOUND\"} 1",
        "quiver_queries_total 1",
        "quiver_in_flight_queries{class=\"all\"} 0",
        "quiver_jobs{status=\"pending\"} 0",
        "quiver_rate_limited_total 0",
    ] {
        assert!(r.body.contains(line), "missing {line}\n{}", r.body);
    }
    assert!(r.body.contains("quiver_request_duration_seconds_bucket{endpoint=\"data\",le=\"+Inf\"} 1"));
    let rows: u64 = r
        .body
        .lines()
        .find(|l| l.starts_with("quiver_rows_scanned_total "))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rows > 0);
}

#[tokio::test]
async fn openapi_documents_every_route_and_every_documented_route_answers() {
    let s = embedded().await;
    let doc = get(&s, "/v1/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.0.3");
    let mut documented: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let mut routes: Vec<String> = quiver::http::ROUTES.iter().map(|r| r.to_string()).collect();
    documented.sort();
    documented.dedup();
    routes.sort();
    routes.dedup();
    assert_eq!(documented, routes, "every route documented, every documented path routed");
    // Each documented path answers (with sample values), never with ROUTE_NOT_FOUND.
    let job =
        get(&s, "/v1/data/flights/day?metrics=flights&dateTime=2013-06-01/2013-06-02&asyncAfter=always").await.json();
    let ticket = job["jobTicket"].as_str().unwrap().to_string();
    for path in documented {
        let concrete = path
            .replace("{table}", "flights")
            .replace("{grain}", "day")
            .replace("{dimensions}", "carrier")
            .replace("{dimension}", "carrier")
            .replace("{metric}", "flights")
            .replace("{slice}", "flights_raw")
            .replace("{ticket}", &ticket);
        let mut url = format!("/v1{concrete}?metrics=flights&dateTime=2013-06-01/2013-06-02");
        if concrete == "/share" {
            url = "/v1/share?url=%2Fv1%2Fdata%2Fflights%2Fday%3Fmetrics%3Dflights%26dateTime%3D2013-06-01%2F2013-06-02"
                .into();
        }
        let r = get(&s, &url).await;
        assert_eq!(r.status, 200, "{url}: {}", r.body);
    }
}

/// Found by Schemathesis: a 405 must say which methods are allowed (RFC 9110).
#[tokio::test]
async fn method_not_allowed_carries_allow_header() {
    let s = embedded().await;
    for m in [reqwest::Method::POST, reqwest::Method::DELETE, reqwest::Method::PUT, reqwest::Method::TRACE] {
        let r = request(&s, m.clone(), "/v1/data/flights/day?metrics=flights&dateTime=2013/2014").await;
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD, OPTIONS"), "{m}");
    }
}

/// Found by Schemathesis: the Prometheus `/metrics` (outside the API root) had overwritten
/// the document's `/metrics` (the metric list) entry, so the list was described as text.
#[tokio::test]
async fn openapi_describes_the_metric_list_as_json() {
    let s = embedded().await;
    let doc = get(&s, "/v1/openapi.json").await.json();
    let content = &doc["paths"]["/metrics"]["get"]["responses"]["200"];
    assert_eq!(content["$ref"], "#/components/responses/List");
    assert_eq!(get(&s, "/v1/metrics").await.header("content-type").unwrap(), "application/json; charset=utf-8");
    assert!(get_as_operator(&s, "/metrics").await.header("content-type").unwrap().starts_with("text/plain"));
}
