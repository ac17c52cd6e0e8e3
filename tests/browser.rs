//! The explorer in a real browser (issue 16): Debian's chromium, driven headless through
//! chromedriver's WebDriver protocol. Each test saves screenshots under
//! `target/tmp/browser/`. Without chromium and chromedriver the tests print SKIPPED.

mod common;

use common::*;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver process and one browser session.
struct Browser {
    base: String,
    session: String,
    http: reqwest::Client,
    _driver: Kill,
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Browser {
    /// A headless chromium at 1280×800, or `None` (SKIPPED) when none is installed.
    async fn start(test: &str) -> Option<Browser> {
        let (Ok(_), Ok(_)) = (which("chromedriver"), which("chromium")) else {
            eprintln!("SKIPPED {test}: chromium and chromium-driver are not installed");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let driver = Kill(child);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"],
        }}}});
        let r: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {r}")).to_string();
        Some(Browser { base, session, http, _driver: driver })
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = self.http.request(method, url);
        let req = if body.is_null() { req } else { req.json(&body) };
        let r: Value = req.send().await.unwrap().json().await.unwrap();
        r["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    async fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(reqwest::Method::POST, "/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// Polls `script` until it returns something truthy.
    async fn wait(&self, script: &str, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.js(script, json!([])).await;
            let truthy = !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0) || v == json!([]));
            if truthy && v.get("error").is_none() {
                return v;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "timed out waiting for {what}: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn size(&self, width: u32, height: u32) {
        self.cmd(reqwest::Method::POST, "/window/rect", json!({ "width": width, "height": height })).await;
    }

    /// Saves a PNG screenshot as `target/tmp/browser/NAME.png`.
    async fn shot(&self, name: &str) {
        use base64_decode::decode;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
        std::fs::create_dir_all(&dir).unwrap();
        let png = v.as_str().unwrap_or_else(|| panic!("no screenshot: {v}"));
        std::fs::write(dir.join(format!("{name}.png")), decode(png)).unwrap();
    }
}

fn which(cmd: &str) -> Result<(), ()> {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map_err(|_| ())?
        .status
        .success()
        .then_some(())
        .ok_or(())
}

/// A small base64 decoder (screenshots only), to need no crate.
mod base64_decode {
    pub fn decode(s: &str) -> Vec<u8> {
        let val = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        let bytes: Vec<u8> = s.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()).map(val).collect();
        bytes
            .chunks(4)
            .flat_map(|c| {
                let n = c.iter().fold(0u32, |acc, v| (acc << 6) | *v as u32) << (6 * (4 - c.len()));
                let b = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
                b[..c.len().saturating_sub(1)].to_vec()
            })
            .collect()
    }
}

const TABLE_CELLS: &str =
    "return [...document.querySelectorAll('#table tbody tr')].map(tr => [...tr.cells].map(td => td.textContent));";

/// A JSON cell as the table shows it (numbers formatted with separators).
fn same_cell(json: &Value, shown: &str) -> bool {
    match json {
        Value::Number(n) => {
            let v: f64 = shown.replace(',', "").parse().unwrap_or(f64::NAN);
            (v - n.as_f64().unwrap()).abs() < 1e-3 * n.as_f64().unwrap().abs().max(1.0)
        }
        Value::String(s) => s == shown,
        Value::Null => shown.is_empty(),
        _ => false,
    }
}

#[tokio::test]
async fn a_data_url_is_a_page_whose_table_and_chart_show_the_rows() {
    let Some(b) = Browser::start("data page").await else { return };
    let s = embedded().await;
    let path = "/v1/data/flights/day/carrier;show=desc?metrics=flights,avgDepDelay&dateTime=2013-06-01/2013-06-08&filters=carrier%7Cid-in%5BUA,AA,DL,B6%5D";
    let rows = get(&s, path).await.json()["rows"].as_array().unwrap().clone();
    b.goto(&format!("{}{path}", s.base)).await;
    let cells = b.wait(TABLE_CELLS, "the table").await;
    let cells = cells.as_array().unwrap();
    assert_eq!(cells.len(), rows.len());
    let cols: Vec<String> = rows[0].as_object().unwrap().keys().cloned().collect();
    for (row, shown) in rows.iter().zip(cells) {
        for (c, cell) in cols.iter().zip(shown.as_array().unwrap()) {
            assert!(same_cell(&row[c], cell.as_str().unwrap()), "{c}: {} vs {cell}", row[c]);
        }
    }
    let series = b.js("return document.querySelectorAll('#chart .series').length;", json!([])).await;
    assert_eq!(series, 4, "one line per carrier");
    b.shot("data-1280x800").await;
    b.size(390, 844).await;
    let wide = b.js("return document.documentElement.scrollWidth;", json!([])).await;
    assert!(wide.as_u64().unwrap() <= 400, "no horizontal scrolling at 390 px: {wide}");
    b.shot("data-390").await;
}

#[tokio::test]
async fn changing_the_form_changes_the_address_and_the_results() {
    let Some(b) = Browser::start("form").await else { return };
    let s = embedded().await;
    let path = "/v1/data/flights/month/origin?metrics=flights&dateTime=2013-01-01/2013-04-01";
    b.goto(&format!("{}{path}", s.base)).await;
    b.wait(TABLE_CELLS, "the first table").await;
    b.js(
        "document.getElementById('metric-departed').checked = true;
         document.querySelector('#f-filters').parentElement.querySelector('button').click();
         const row = document.querySelector('#f-filters .filter');
         row.querySelector('.f-dim').value = 'origin';
         row.querySelector('.f-op').value = 'in';
         row.querySelector('.f-values').value = 'JFK';
         document.getElementById('query').dispatchEvent(new Event('change', { bubbles: true }));",
        json!([]),
    )
    .await;
    let href = b
        .wait(
            "return location.href.includes('departed') && location.href.includes('origin|id-in[JFK]') \
             && document.querySelectorAll('#table tbody tr').length === 3 \
             && [...document.querySelectorAll('#table th')].some(th => th.textContent === 'departed') && location.href;",
            "the address and results to change",
        )
        .await;
    let href = href.as_str().unwrap().to_string();
    let before = b.js(TABLE_CELLS, json!([])).await;
    assert!(before.as_array().unwrap().iter().all(|r| r[1] == "JFK"), "{before}");
    b.shot("form-changed").await;
    // The address is the shareable link: opened fresh it shows the same.
    b.goto(&href).await;
    let after = b.wait(TABLE_CELLS, "the reopened table").await;
    assert_eq!(after, before);
    let json = reqwest::Client::new()
        .get(&href)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 3, "the same URL is the same query for a script");
}

#[tokio::test]
async fn an_error_url_shows_the_description_and_the_parameter() {
    let Some(b) = Browser::start("error").await else { return };
    let s = embedded().await;
    let path = "/v1/data/flights/day?metrics=nonsense&dateTime=2013-06-01/2013-06-02";
    let description = get(&s, path).await.description();
    b.goto(&format!("{}{path}", s.base)).await;
    let shown =
        b.wait("const e = document.querySelector('.notice.error'); return e && e.textContent;", "the error").await;
    assert!(shown.as_str().unwrap().contains(&description), "{shown} / {description}");
    assert!(shown.as_str().unwrap().contains("Fix the metrics parameter"), "{shown}");
    b.shot("error").await;
}

#[tokio::test]
async fn an_async_query_shows_its_ticket_and_fills_in() {
    let Some(b) = Browser::start("async").await else { return };
    let s = embedded().await;
    let path = "/v1/data/flights/week/carrier?metrics=flights&dateTime=2013-01-07/2013-03-04&asyncAfter=always";
    b.goto(&format!("{}{path}", s.base)).await;
    let ticket = b.wait("const e = document.getElementById('job-done'); return e && e.textContent;", "the job").await;
    let ticket = ticket.as_str().unwrap();
    assert!(ticket.len() > 10, "{ticket}");
    let cells = b.js(TABLE_CELLS, json!([])).await;
    assert!(!cells.as_array().unwrap().is_empty());
    let job = get(&s, &format!("/v1/jobs/{ticket}")).await.json();
    assert_eq!(job["status"], "success");
    b.shot("async").await;
}

#[tokio::test]
async fn under_auth_the_page_asks_for_a_token_and_a_share_link_needs_none() {
    use common::tenants::*;
    let Some(b) = Browser::start("auth").await else { return };
    let (s, _d) = tenants().await;
    let path = "/v1/data/flights/month/origin?metrics=flights&dateTime=2013-01-01/2013-03-01";
    b.goto(&format!("{}{path}", s.base)).await;
    b.wait("return document.getElementById('token');", "the token prompt").await;
    b.shot("auth-token").await;
    b.js(
        "document.getElementById('token').value = 't-jfk';
         document.getElementById('token-form').requestSubmit();",
        json!([]),
    )
    .await;
    let cells = b.wait(TABLE_CELLS, "the table after signing in").await;
    assert!(cells.as_array().unwrap().iter().all(|r| r[1] == "JFK"), "the role's rows: {cells}");
    // A share link, in a fresh browser with no token stored.
    let link = as_role(&s, Some("jfk"), &format!("/v1/share?url={}", enc(path))).await.json()["url"]
        .as_str()
        .unwrap()
        .to_string();
    drop(b);
    let Some(b) = Browser::start("share").await else { return };
    b.goto(&link).await;
    let shared = b.wait(TABLE_CELLS, "the shared table").await;
    assert_eq!(shared, cells);
    let prompt = b.js("return !!document.getElementById('token');", json!([])).await;
    assert_eq!(prompt, false, "no token asked for a share link");
    b.shot("share-link").await;
}
