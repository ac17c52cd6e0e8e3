//! Answers at the speed of a cache (issue 15): ETag/304, HEAD, the result cache and paging
//! from it, per-principal entries, Arrow and Parquet out, spreadsheet-safe CSV.

mod common;

use common::*;
use std::sync::atomic::Ordering::Relaxed;

const Q: &str = "/v1/data/flights/day/carrier?metrics=flights,avgDepDelay&dateTime=2013-06-01/2013-07-01";

fn queries(s: &Server) -> u64 {
    s.state.counters.queries.load(Relaxed)
}

#[tokio::test]
async fn etag_304_and_a_new_snapshot_gives_a_new_etag() {
    let dir = scratch_config();
    config_set(dir.path(), "refresh_seconds", "0");
    let s = start(&dir.path().join("config")).await;
    let r = get(&s, Q).await;
    assert_eq!(r.status, 200);
    let etag = r.header("etag").expect("an ETag");
    assert!(etag.starts_with('"') && etag.len() > 20, "{etag}");
    assert!(r.header("last-modified").unwrap().ends_with(" GMT"));
    assert_eq!(r.header("cache-control").as_deref(), Some("public, max-age=0"));
    let ran = queries(&s);
    let nm = get_with(&s, Q, &[("if-none-match", &etag)]).await;
    assert_eq!((nm.status, nm.body.as_str()), (304, ""));
    assert_eq!(nm.header("etag").as_deref(), Some(etag.as_str()));
    assert_eq!(queries(&s), ran, "a 304 runs nothing");
    // The same answer in another format or page is another representation.
    let csv = get(&s, &format!("{Q}&format=csv")).await;
    assert_ne!(csv.header("etag").unwrap(), etag);
    // New data: a new snapshot, a new ETag, and the old one no longer matches.
    let rollup = dir.path().join("data/flights_day.parquet");
    let bytes = std::fs::read(&rollup).unwrap();
    std::fs::write(&rollup, &bytes).unwrap(); // same bytes, a new modification time
    assert!(s.state.refresh().unwrap(), "a new snapshot");
    let again = get_with(&s, Q, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 200);
    assert_ne!(again.header("etag").unwrap(), etag);
    assert_eq!(again.header("x-quiver-snapshot").as_deref(), Some("2"));
}

#[tokio::test]
async fn repeats_pages_and_formats_come_from_one_run() {
    let s = embedded().await;
    let big = "/v1/data/flights/hour/carrier?metrics=flights&dateTime=2013-01-01/2013-03-01";
    let first = get(&s, &format!("{big}&perPage=1000&page=1")).await;
    assert_eq!(first.status, 200);
    assert!(first.header("server-timing").unwrap().contains("cache;desc=\"miss\""));
    let total = first.json()["meta"]["pagination"]["numberOfResults"].as_u64().unwrap();
    assert!(total > 5_000, "{total}");
    let ran = queries(&s);
    for page in [2, 3, 7] {
        let r = get(&s, &format!("{big}&perPage=1000&page={page}")).await;
        assert_eq!(r.status, 200);
        assert!(r.header("server-timing").unwrap().contains("cache;desc=\"hit\""), "page {page}");
        assert_eq!(r.json()["meta"]["pagination"]["currentPage"], page);
    }
    assert_eq!(get(&s, &format!("{big}&format=csv")).await.status, 200);
    assert_eq!(queries(&s), ran, "later pages and other formats ran nothing");
    // Cache-Control: no-cache runs it again.
    let fresh = get_with(&s, big, &[("cache-control", "no-cache")]).await;
    assert!(fresh.header("server-timing").unwrap().contains("cache;desc=\"miss\""));
    assert_eq!(queries(&s), ran + 1);
    let m = get_as_operator(&s, "/metrics").await.body;
    let hits: u64 =
        m.lines().find(|l| l.starts_with("quiver_cache_hits_total ")).unwrap()[24..].trim().parse().unwrap();
    assert!(hits >= 4, "{m}");
}

#[tokio::test]
async fn head_answers_headers_only_from_the_cache() {
    let s = embedded().await;
    let head = |path: String| {
        let base = s.base.clone();
        async move { reqwest::Client::new().head(format!("{base}{path}")).send().await.unwrap() }
    };
    let r = head(Q.to_string()).await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("etag").is_some());
    let ran = queries(&s);
    let r = head(Q.to_string()).await;
    assert!(r.headers().get("server-timing").unwrap().to_str().unwrap().contains("cache;desc=\"hit\""));
    assert_eq!(r.bytes().await.unwrap().len(), 0, "no body");
    assert_eq!(get(&s, Q).await.status, 200);
    assert_eq!(queries(&s), ran, "HEAD and then GET came from the cache");
}

#[tokio::test]
async fn the_cache_is_bounded_in_bytes() {
    let dir = scratch_config();
    config_set(dir.path(), "max_bytes", "60000");
    let s = start(&dir.path().join("config")).await;
    for m in 1..=12 {
        let q = format!("/v1/data/flights/day/carrier?metrics=flights&dateTime=2013-{m:02}-01/P1M");
        assert_eq!(get(&s, &q).await.status, 200);
    }
    let stats = s.state.cache.stats();
    assert!(stats.bytes <= 60_000, "{stats:?}");
    assert!(stats.evictions > 0 && stats.entries < 12, "{stats:?}");
}

#[tokio::test]
async fn principals_never_share_an_entry() {
    use common::tenants::*;
    let (s, _d) = tenants().await;
    let q = "/v1/data/flights/month/origin?metrics=flights&dateTime=2013-01-01/2013-04-01";
    let a = as_role(&s, Some("fl"), q).await;
    let ran = queries(&s);
    let b = as_role(&s, Some("nojobs"), q).await;
    assert_eq!(queries(&s), ran + 1, "another user's identical query is not a hit");
    assert_ne!(a.header("etag"), b.header("etag"));
    assert_eq!(a.header("cache-control").as_deref(), Some("private, max-age=0"));
    let jfk = as_role(&s, Some("jfk"), q).await;
    assert_eq!(jfk.json()["rows"].as_array().unwrap().len(), 3, "one origin × three months");
    // A user's own repeat is a hit.
    let ran = queries(&s);
    as_role(&s, Some("fl"), q).await;
    assert_eq!(queries(&s), ran);
}

/// Reads an Arrow IPC stream or a Parquet file into batches.
fn read_back(bytes: Vec<u8>, parquet: bool) -> Vec<arrow::array::RecordBatch> {
    if parquet {
        let b = bytes::Bytes::from(bytes);
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(b).unwrap().build().unwrap();
        r.map(|b| b.unwrap()).collect()
    } else {
        let r = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
        r.map(|b| b.unwrap()).collect()
    }
}

#[tokio::test]
async fn arrow_and_parquet_read_back_equal_to_json() {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType};
    let s = embedded().await;
    let q = "/v1/data/flights/day/carrier;show=id,desc?metrics=flights,avgDepDelay&dateTime=2013-06-01/2013-06-15&timeZone=America/New_York&sort=dateTime|asc,flights|desc";
    let json = get(&s, q).await.json();
    let rows = json["rows"].as_array().unwrap();
    for (format, parquet, mime) in
        [("arrow", false, "application/vnd.apache.arrow.stream"), ("parquet", true, "application/vnd.apache.parquet")]
    {
        let r = reqwest::get(format!("{}{q}&format={format}", s.base)).await.unwrap();
        assert_eq!(r.headers()["content-type"], mime);
        assert!(r.headers()["content-disposition"].to_str().unwrap().ends_with(&format!(".{format}")));
        let batches = read_back(r.bytes().await.unwrap().to_vec(), parquet);
        let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        assert_eq!(b.num_rows(), rows.len(), "{format}");
        let schema = b.schema();
        assert_eq!(
            schema.field_with_name("dateTime").unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("America/New_York".into()))
        );
        assert_eq!(schema.field_with_name("flights").unwrap().data_type(), &DataType::Int64);
        assert_eq!(schema.field_with_name("avgDepDelay").unwrap().data_type(), &DataType::Float64);
        let times = b.column_by_name("dateTime").unwrap().as_primitive::<TimestampMillisecondType>();
        let desc = b.column_by_name("carrier|desc").unwrap().as_string::<i32>();
        let flights = b.column_by_name("flights").unwrap().as_primitive::<Int64Type>();
        let avg = b.column_by_name("avgDepDelay").unwrap().as_primitive::<Float64Type>();
        for (i, row) in rows.iter().enumerate() {
            let local = quiver::time::format_local(chrono_tz::America::New_York, times.value(i));
            assert_eq!(row["dateTime"], local, "{format} row {i}");
            assert_eq!(row["carrier|desc"], desc.value(i));
            assert_eq!(row["flights"], flights.value(i));
            match row["avgDepDelay"].as_f64() {
                Some(v) => assert!((v - avg.value(i)).abs() < 1e-9),
                None => assert!(avg.is_null(i)),
            }
        }
    }
}

#[tokio::test]
async fn csv_neutralises_formulas_and_names_downloads_in_utf8() {
    let dir = scratch_config();
    let airlines = dir.path().join("data/airlines.csv");
    let text = std::fs::read_to_string(&airlines).unwrap().replace("United Air Lines Inc.", "=1+1 United");
    std::fs::write(&airlines, text).unwrap();
    let s = start(&dir.path().join("config")).await;
    let q = "/v1/data/flights/month/carrier;show=desc?metrics=flights,depDelay&dateTime=2013-06-01/2013-07-01&format=csv&filename=Donn%C3%A9es%20%C3%A9t%C3%A9";
    let r = get(&s, q).await;
    assert!(r.body.contains("\"'=1+1 United\""), "{}", r.body);
    assert!(!r.body.contains("\"=1+1"), "no live formula");
    assert_eq!(
        r.header("content-disposition").unwrap(),
        "attachment; filename=Donn_es__t_.csv; filename*=UTF-8''Donn%C3%A9es%20%C3%A9t%C3%A9.csv"
    );
    let values = get(&s, "/v1/dimensions/carrier/values?format=csv").await.body;
    assert!(values.contains("'=1+1 United"), "metadata CSV too: {values}");
    let dates = get(&s, &format!("{q}&csvDates=spreadsheet")).await.body;
    assert!(dates.lines().nth(1).unwrap().starts_with("2013-06-01T00:00:00,"), "{dates}");
    assert_eq!(get(&s, &format!("{q}&csvDates=excel")).await.status, 400);
}

/// Opens a CSV answer in LibreOffice (headless) and reads the cells back.
#[tokio::test]
async fn libreoffice_opens_the_csv_with_numbers_and_dates() {
    if std::process::Command::new("soffice").arg("--version").output().is_err() {
        eprintln!("SKIPPED: soffice (libreoffice-calc-nogui) is not installed");
        return;
    }
    let s = embedded().await;
    let q = "/v1/data/flights/day/carrier;show=desc?metrics=flights,avgDepDelay&dateTime=2013-06-01/2013-06-03&format=csv&csvDates=spreadsheet&sort=flights|desc&topN=2";
    let r = get(&s, q).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("answer.csv");
    std::fs::write(&csv, &r.body).unwrap();
    let out = std::process::Command::new("soffice")
        .args(["--headless", "--convert-to", "xlsx", "--outdir"])
        .arg(dir.path())
        .arg(&csv)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cells = xlsx_cells(&dir.path().join("answer.xlsx"));
    // Row 2: dateTime (a date serial, 41426 = 2013-06-01), carrier|desc (text), flights,
    // avgDepDelay (numbers).
    let row2: Vec<&(String, String, String)> = cells.iter().filter(|c| c.0.ends_with('2') && c.0.len() == 2).collect();
    assert_eq!(row2[0].1, "n", "dateTime imports as a date: {row2:?}");
    assert!(row2[0].2.starts_with("41426"), "{row2:?}");
    assert_eq!(row2[1].1, "s", "{row2:?}");
    assert_eq!((row2[2].1.as_str(), row2[3].1.as_str()), ("n", "n"), "metrics import as numbers: {row2:?}");
}

/// (cell reference, type, value) of each cell of the first sheet of an .xlsx file.
fn xlsx_cells(path: &std::path::Path) -> Vec<(String, String, String)> {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys,zipfile,re\nx=zipfile.ZipFile(sys.argv[1]).read('xl/worksheets/sheet1.xml').decode()\n\
             for m in re.finditer(r'<c r=\"([A-Z]+[0-9]+)\"[^>]*?t=\"(\\w+)\"[^>]*>(?:<f[^>]*>[^<]*</f>)?<v>([^<]*)</v>',x): print('\\t'.join(m.groups()))",
        )
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let p: Vec<&str> = l.split('\t').collect();
            (p[0].to_string(), p[1].to_string(), p[2].to_string())
        })
        .collect()
}
