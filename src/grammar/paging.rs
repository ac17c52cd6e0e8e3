//! `perPage` and `page` (spec §4.9): both or neither; positive integers; `page` also
//! `first` or `last`.

use crate::error::{Error, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Page {
    Number(usize),
    First,
    Last,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Paging {
    pub per_page: usize,
    pub page: Page,
}

impl Paging {
    /// The 1-based page number for `total` rows, or the 404 message past the end.
    pub fn resolve(&self, total: usize) -> Result<usize, Error> {
        let last = total.div_ceil(self.per_page).max(1);
        let p = match self.page {
            Page::First => 1,
            Page::Last => last,
            Page::Number(n) => n,
        };
        if p > last {
            return Err(Error::new(
                Reason::PageNotFound,
                format!(
                    "Requested page '{p}' with '{}' rows per page, but there are only '{last}' pages.",
                    self.per_page
                ),
            ));
        }
        Ok(p)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PagingError {
    Missing(&'static str),
    NotPositive(&'static str, String),
}

impl std::fmt::Display for PagingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PagingError::Missing(p) => {
                write!(f, "Missing parameter '{p}.' Both 'perPage' and 'page' are required for pagination.")
            }
            PagingError::NotPositive(p, v) => {
                write!(f, "Parameter '{p}' expected a positive integer but received: '{v}'")
            }
        }
    }
}

impl From<PagingError> for Error {
    fn from(e: PagingError) -> Self {
        Error::new(Reason::PaginationInvalid, e.to_string())
    }
}

fn positive(param: &'static str, v: &str) -> Result<usize, PagingError> {
    match v.parse::<u32>() {
        Ok(n) if n > 0 && v.bytes().all(|b| b.is_ascii_digit()) => Ok(n as usize),
        _ => Err(PagingError::NotPositive(param, v.to_string())),
    }
}

/// Parses the pair; `Ok(None)` when both are absent. `perPage` is validated before `page`.
pub fn parse(per_page: Option<&str>, page: Option<&str>) -> Result<Option<Paging>, PagingError> {
    match (per_page, page) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(PagingError::Missing("page")),
        (None, Some(_)) => Err(PagingError::Missing("perPage")),
        (Some(pp), Some(p)) => {
            let per_page = positive("perPage", pp)?;
            let page = match p {
                "first" => Page::First,
                "last" => Page::Last,
                _ => Page::Number(positive("page", p)?),
            };
            Ok(Some(Paging { per_page, page }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_or_neither() {
        assert_eq!(parse(None, None), Ok(None));
        assert_eq!(
            parse(Some("5"), None).unwrap_err().to_string(),
            "Missing parameter 'page.' Both 'perPage' and 'page' are required for pagination."
        );
        assert_eq!(
            parse(None, Some("1")).unwrap_err().to_string(),
            "Missing parameter 'perPage.' Both 'perPage' and 'page' are required for pagination."
        );
    }

    #[test]
    fn values() {
        assert_eq!(parse(Some("5"), Some("last")), Ok(Some(Paging { per_page: 5, page: Page::Last })));
        assert_eq!(parse(Some("5"), Some("2")), Ok(Some(Paging { per_page: 5, page: Page::Number(2) })));
        assert_eq!(
            parse(Some("0"), Some("x")).unwrap_err().to_string(),
            "Parameter 'perPage' expected a positive integer but received: '0'"
        );
        assert_eq!(
            parse(Some("5"), Some("-1")).unwrap_err().to_string(),
            "Parameter 'page' expected a positive integer but received: '-1'"
        );
        assert!(parse(Some("+5"), Some("1")).is_err());
    }

    #[test]
    fn page_resolution() {
        let p = Paging { per_page: 10, page: Page::Last };
        assert_eq!(p.resolve(25), Ok(3));
        assert_eq!(p.resolve(0), Ok(1));
        let e = Paging { per_page: 10, page: Page::Number(4) }.resolve(25).unwrap_err();
        assert_eq!(e.message, "Requested page '4' with '10' rows per page, but there are only '3' pages.");
        assert_eq!(e.status(), 404);
    }
}
