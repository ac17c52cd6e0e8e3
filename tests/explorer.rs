//! The explorer over HTTP (issue 16): content negotiation, the landing page, the assets and
//! their Content-Security-Policy. The browser tests are in tests/browser.rs.

mod common;

use common::*;

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const Q: &str = "/v1/data/flights/day/carrier?metrics=flights&dateTime=2013-06-01/2013-06-03";

#[tokio::test]
async fn browsers_get_the_page_and_scripts_get_the_data() {
    let s = embedded().await;
    for path in [Q, "/v1/tables", "/v1/dimensions/carrier/values", "/v1/metrics/flights", "/v1", "/"] {
        let page = get_with(&s, path, &[("accept", BROWSER)]).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.header("content-type").unwrap().starts_with("text/html"), "{path}");
        assert!(page.body.contains("/ui/app.js"), "{path}");
        assert!(page.header("content-security-policy").unwrap().contains("default-src 'none'"));
        assert_eq!(page.header("vary").as_deref(), Some("Accept, Origin"));
    }
    // Scripts: no Accept (curl), */*, JSON or CSV asked for: what they always got.
    for accept in [None, Some("*/*"), Some("application/json")] {
        let h: Vec<(&str, &str)> = accept.map(|a| vec![("accept", a)]).unwrap_or_default();
        let r = get_with(&s, Q, &h).await;
        assert!(r.header("content-type").unwrap().starts_with("application/json"), "{accept:?}");
        assert!(r.json()["rows"].is_array());
    }
    let csv = get_with(&s, Q, &[("accept", "text/csv")]).await;
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    // An explicit format always wins, even for a browser.
    let r = get_with(&s, &format!("{Q}&format=csv"), &[("accept", BROWSER)]).await;
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    let r = get_with(&s, &format!("{Q}&format=json"), &[("accept", BROWSER)]).await;
    assert!(r.json()["rows"].is_array());
    // JSON preferred over HTML: data.
    let r = get_with(&s, Q, &[("accept", "application/json, text/html")]).await;
    assert!(r.json()["rows"].is_array());
    // The landing addresses answer scripts with an index, not a 404.
    let idx = get(&s, "/v1").await;
    assert_eq!(idx.status, 200);
    assert!(idx.json()["tables"].as_str().unwrap().ends_with("/v1/tables"));
}

#[tokio::test]
async fn the_page_shell_needs_no_token_but_the_data_does() {
    use common::tenants::*;
    let (s, _d) = tenants().await;
    let page = get_with(&s, Q, &[("accept", BROWSER)]).await;
    assert_eq!(page.status, 200, "the shell holds no data");
    assert!(!page.body.contains("flights_raw") && !page.body.contains("vault"));
    assert_eq!(get(&s, Q).await.status, 401, "the data still needs a token");
}

#[tokio::test]
async fn assets_are_embedded_small_and_refer_to_nothing_outside() {
    let s = embedded().await;
    let mut total = 0;
    for (name, text) in quiver::http::ui::all_assets() {
        total += text.len();
        // The SVG namespace is a name, not a resource.
        let text_checked = text.replace("http://www.w3.org/2000/svg", "");
        for bad in ["http://", "https://", "//cdn", "@import", " url(", ":url("] {
            assert!(!text_checked.contains(bad), "{name} refers to '{bad}'");
        }
        if name != "index.html" {
            let r = get(&s, &format!("/ui/{name}")).await;
            assert_eq!(r.status, 200, "{name}");
            assert_eq!(r.body, text);
            assert!(r.header("content-security-policy").is_some());
            assert!(r.header("cache-control").unwrap().contains("max-age"));
        }
    }
    assert!(total < 300 * 1024, "total transfer {total} bytes");
    eprintln!("explorer assets: {total} bytes in all");
    assert_eq!(get(&s, "/ui/nothing.js").await.status, 404);
    let html = get_with(&s, "/", &[("accept", BROWSER)]).await.body;
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style (CSP)");
}
