//! Query parameters: the one place raw parameters are read. Names are case-insensitive and
//! mapped to their canonical spelling, values percent-decoded; a repeated parameter keeps its
//! first value (JAX-RS behaviour). Parameters shared by several endpoints (format with its
//! `Accept` fallback, paging, asyncAfter with its default, filename) have typed accessors
//! here, so every endpoint reads them the same way.

use crate::error::Error;
use crate::grammar::async_after::{self, AsyncAfter};
use crate::grammar::format::{self, Format};
use crate::grammar::paging::{self, Paging};
use std::collections::HashMap;

/// Every parameter the API knows, in canonical spelling.
pub const KNOWN: [&str; 20] = [
    "metrics",
    "dateTime",
    "filters",
    "having",
    "sort",
    "count",
    "topN",
    "format",
    "timeZone",
    "asyncAfter",
    "filename",
    "perPage",
    "page",
    "_cache",
    "query",
    "show",
    "csvDates",
    crate::share::USER,
    crate::share::EXPIRES,
    crate::share::SIGNATURE,
];

/// Parsed query parameters.
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: HashMap<String, String>,
    /// The raw query string as received (for building links).
    pub raw: String,
}

impl Params {
    pub fn parse(raw: &str) -> Params {
        let mut values = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            let lower = k.to_ascii_lowercase();
            let name = KNOWN.iter().find(|n| n.to_ascii_lowercase() == lower).map(|n| n.to_string()).unwrap_or(lower);
            values.entry(name).or_insert_with(|| v.into_owned());
        }
        Params { values, raw: raw.to_string() }
    }

    /// The query in canonical form: `path`, then every parameter but those in `skip`, as the
    /// server reads them (names in canonical spelling, first value of a repeated one,
    /// percent-decoded), sorted. Two URLs with one canonical form ask the same question.
    pub fn canonical(&self, path: &str, skip: &[&str]) -> String {
        let mut pairs: Vec<(&String, &String)> =
            self.values.iter().filter(|(k, _)| !skip.iter().any(|s| s.eq_ignore_ascii_case(k))).collect();
        pairs.sort();
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            out.append_pair(k, v);
        }
        format!("{path}?{}", out.finish())
    }

    /// The raw query without the parameters in `skip` (original order and spelling).
    pub fn raw_without(&self, skip: &[&str]) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(self.raw.as_bytes()) {
            if !skip.iter().any(|s| s.eq_ignore_ascii_case(&k)) {
                out.append_pair(&k, &v);
            }
        }
        out.finish()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|s| s.as_str())
    }

    /// `format`, else what the `Accept` header prefers, else JSON.
    pub fn format(&self, accept: Option<&str>) -> Result<Format, Error> {
        match self.get("format") {
            Some(f) => Ok(format::parse(f)?),
            None => Ok(accept.and_then(Format::from_accept).unwrap_or(Format::Json)),
        }
    }

    /// `perPage` and `page` (both or neither).
    pub fn paging(&self) -> Result<Option<Paging>, Error> {
        Ok(paging::parse(self.get("perPage"), self.get("page"))?)
    }

    /// `asyncAfter`, else `default`.
    pub fn async_after(&self, default: AsyncAfter) -> Result<AsyncAfter, Error> {
        match self.get("asyncAfter") {
            Some(a) => Ok(async_after::parse(a)?),
            None => Ok(default),
        }
    }

    /// `csvDates=spreadsheet`: CSV `dateTime` as `2013-06-01T13:45:10`, which spreadsheets
    /// import as a date; `fili` (the default) keeps Fili's `2013-06-01 13:45:10.000`.
    pub fn spreadsheet_dates(&self) -> Result<bool, Error> {
        match self.get("csvDates").map(str::to_ascii_lowercase).as_deref() {
            None | Some("fili") => Ok(false),
            Some("spreadsheet") => Ok(true),
            Some(other) => Err(Error::new(
                crate::error::Reason::FormatInvalid,
                format!("csvDates '{other}' is unknown. Choose from 'fili', 'spreadsheet'."),
            )),
        }
    }

    /// `filename` when given and not empty.
    pub fn filename(&self) -> Option<&str> {
        self.get("filename").filter(|f| !f.is_empty())
    }

    /// The query string with `page`/`perPage` replaced (pagination links), other parameters
    /// kept in their original order and spelling.
    pub fn with_page(&self, page: usize, per_page: usize) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(self.raw.as_bytes()) {
            let l = k.to_ascii_lowercase();
            if l != "page" && l != "perpage" {
                out.append_pair(&k, &v);
            }
        }
        out.append_pair("perPage", &per_page.to_string());
        out.append_pair("page", &page.to_string());
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_first_value_wins() {
        let p = Params::parse("DATETIME=2013-01-01%2F2013-02-01&metrics=a&Metrics=b&topn=3");
        assert_eq!(p.get("dateTime"), Some("2013-01-01/2013-02-01"));
        assert_eq!(p.get("metrics"), Some("a"));
        assert_eq!(p.get("topN"), Some("3"));
    }

    #[test]
    fn page_links_replace_paging() {
        let p = Params::parse("metrics=a&page=2&PERPAGE=5");
        assert_eq!(p.with_page(3, 5), "metrics=a&perPage=5&page=3");
    }
}
