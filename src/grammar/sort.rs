//! `sort` (spec §4.7): `col[|dir],…`; direction defaults to descending and is matched by
//! prefix (`asc`, `ascending`, `DESCEN`); `dateTime` may only come first.

use crate::error::{Error, Reason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortItem {
    pub column: String,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortError {
    Direction(String),
    DateTimeNotFirst,
}

impl std::fmt::Display for SortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SortError::Direction(d) => write!(f, "Sort direction '{d}' is invalid."),
            SortError::DateTimeNotFirst => f.write_str("dateTime should be the first field in the sort list"),
        }
    }
}

impl From<SortError> for Error {
    fn from(e: SortError) -> Self {
        Error::new(Reason::SortInvalid, e.to_string())
    }
}

pub fn parse(s: &str) -> Result<Vec<SortItem>, SortError> {
    let mut out = Vec::new();
    for item in s.split(',').filter(|i| !i.is_empty()) {
        let (column, dir) = match item.split_once('|') {
            Some((c, d)) => (c, Some(d)),
            None => (item, None),
        };
        let descending = match dir {
            None => true,
            Some(d) => {
                let up = d.to_ascii_uppercase();
                if up.starts_with("DESC") {
                    true
                } else if up.starts_with("ASC") {
                    false
                } else {
                    return Err(SortError::Direction(d.to_string()));
                }
            }
        };
        if column == "dateTime" && !out.is_empty() {
            return Err(SortError::DateTimeNotFirst);
        }
        out.push(SortItem { column: column.to_string(), descending });
    }
    Ok(out)
}

/// Renders a sort list that [`parse`] reads back.
pub fn render(items: &[SortItem]) -> String {
    items
        .iter()
        .map(|i| format!("{}|{}", i.column, if i.descending { "desc" } else { "asc" }))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(c: &str, d: bool) -> SortItem {
        SortItem { column: c.into(), descending: d }
    }

    #[test]
    fn directions() {
        assert_eq!(parse("a"), Ok(vec![item("a", true)]));
        assert_eq!(parse("a|asc,b|ascending,c|DESCEN"), Ok(vec![item("a", false), item("b", false), item("c", true)]));
        assert_eq!(parse("dateTime|asc,a"), Ok(vec![item("dateTime", false), item("a", true)]));
        assert_eq!(parse("a|up").unwrap_err().to_string(), "Sort direction 'up' is invalid.");
        assert_eq!(parse("a|a").unwrap_err().to_string(), "Sort direction 'a' is invalid.");
    }

    #[test]
    fn datetime_first_only() {
        assert_eq!(parse("a,dateTime").unwrap_err().to_string(), "dateTime should be the first field in the sort list");
    }
}
