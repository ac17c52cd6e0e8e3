//! Pagination meta and `Link` headers, one layout for data and metadata (DESIGN §7).

use super::reply::{Ctx, set_header};
use crate::error::Error;
use crate::grammar::paging::{self, Paging};
use serde_json::{Map, Value, json};
use warp::reply::Response;

/// One page of a result.
#[derive(Debug, Clone)]
pub struct Page {
    pub current: usize,
    pub per_page: usize,
    pub total: usize,
    /// `(rel, url)`: first, last, next, previous as they apply.
    pub links: Vec<(&'static str, String)>,
}

impl Page {
    pub fn range(&self) -> std::ops::Range<usize> {
        let start = ((self.current - 1) * self.per_page).min(self.total);
        start..(start + self.per_page).min(self.total)
    }

    /// `{"pagination": {...}}` with links inline (the data endpoint's layout).
    pub fn meta(&self) -> Value {
        let mut p = Map::new();
        for (rel, url) in &self.links {
            p.insert(rel.to_string(), json!(url));
        }
        p.insert("currentPage".into(), json!(self.current));
        p.insert("rowsPerPage".into(), json!(self.per_page));
        p.insert("numberOfResults".into(), json!(self.total));
        json!({ "pagination": p })
    }

    pub fn add_link_header(&self, r: &mut Response) {
        if let Some(v) = self.link_header() {
            set_header(r, "link", &v);
        }
    }

    /// The `Link` header's value (RFC 8288), when there are links.
    pub fn link_header(&self) -> Option<String> {
        if self.links.is_empty() {
            return None;
        }
        let v: Vec<String> = self
            .links
            .iter()
            .map(|(rel, url)| format!("<{url}>; rel=\"{}\"", if *rel == "previous" { "prev" } else { rel }))
            .collect();
        Some(v.join(", "))
    }
}

/// Pages `total` rows; `None` when not paginating.
pub fn page(ctx: &Ctx, paging: Option<Paging>, total: usize) -> Result<Option<Page>, Error> {
    let Some(p) = paging else { return Ok(None) };
    let current = p.resolve(total)?;
    let last = total.div_ceil(p.per_page).max(1);
    let link = |n: usize| ctx.url_with_query(&ctx.params.with_page(n, p.per_page));
    let mut links = Vec::new();
    if current > 1 {
        links.push(("first", link(1)));
    }
    if current < last {
        links.push(("last", link(last)));
        links.push(("next", link(current + 1)));
    }
    if current > 1 {
        links.push(("previous", link(current - 1)));
    }
    Ok(Some(Page { current, per_page: p.per_page, total, links }))
}

/// Metadata lists are always paginated (default page size from config); `meta` shows only
/// when there is more than one page or paging was asked for.
pub fn metadata_page(ctx: &Ctx, default_per_page: usize, total: usize) -> Result<(Page, bool), Error> {
    let asked = ctx.params.paging()?;
    let explicit = asked.is_some();
    let p = asked.unwrap_or(Paging { per_page: default_per_page, page: paging::Page::Number(1) });
    let page =
        page(ctx, Some(p), total)?.unwrap_or(Page { current: 1, per_page: default_per_page, total, links: vec![] });
    let show = explicit || !page.links.is_empty();
    Ok((page, show))
}
