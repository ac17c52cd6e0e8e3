//! The `show` matrix parameter of a dimension path segment (spec §4.1):
//! `carrier;show=id,desc`, several `show=` merged; `all` and `none` only when alone.

use crate::error::{Error, Reason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    /// No `show`: the dimension's default fields.
    Default,
    All,
    None,
    Fields(Vec<String>),
}

/// A dimension path segment: its name and `show` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimensionSegment {
    pub name: String,
    pub show: Show,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowError(pub String);

impl std::fmt::Display for ShowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Matrix parameter '{}' is invalid. Use 'dimension;show=field1,field2'.", self.0)
    }
}

impl From<ShowError> for Error {
    fn from(e: ShowError) -> Self {
        Error::new(Reason::ShowFieldUndefined, e.to_string())
    }
}

/// Parses a decoded path segment such as `carrier;show=desc;show=id`.
pub fn parse(segment: &str) -> Result<DimensionSegment, ShowError> {
    let mut parts = segment.split(';');
    let name = parts.next().unwrap_or("").to_string();
    let mut fields: Vec<String> = Vec::new();
    let mut any = false;
    for p in parts.filter(|p| !p.is_empty()) {
        match p.split_once('=') {
            Some(("show", v)) => {
                any = true;
                for f in v.split(',').filter(|f| !f.is_empty()) {
                    if !fields.iter().any(|x| x == f) {
                        fields.push(f.to_string());
                    }
                }
            }
            _ => return Err(ShowError(p.to_string())),
        }
    }
    let show = if !any {
        Show::Default
    } else if fields == ["all"] {
        Show::All
    } else if fields == ["none"] || fields.is_empty() {
        Show::None
    } else {
        Show::Fields(fields)
    };
    Ok(DimensionSegment { name, show })
}

/// Renders a segment that [`parse`] reads back.
pub fn render(seg: &DimensionSegment) -> String {
    match &seg.show {
        Show::Default => seg.name.clone(),
        Show::All => format!("{};show=all", seg.name),
        Show::None => format!("{};show=none", seg.name),
        Show::Fields(f) => format!("{};show={}", seg.name, f.join(",")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse("page").unwrap().show, Show::Default);
        assert_eq!(parse("page;show=all").unwrap().show, Show::All);
        assert_eq!(parse("page;show=none").unwrap().show, Show::None);
        assert_eq!(parse("page;show=id,desc").unwrap().show, Show::Fields(vec!["id".into(), "desc".into()]));
        assert_eq!(parse("page;show=desc;show=id").unwrap().show, Show::Fields(vec!["desc".into(), "id".into()]));
        // Keywords only count alone.
        assert_eq!(parse("page;show=all,id").unwrap().show, Show::Fields(vec!["all".into(), "id".into()]));
        assert_eq!(
            parse("page;color=red").unwrap_err().to_string(),
            "Matrix parameter 'color=red' is invalid. Use 'dimension;show=field1,field2'."
        );
    }

    #[test]
    fn round_trip() {
        for s in ["page", "page;show=all", "page;show=none", "page;show=id,desc"] {
            assert_eq!(render(&parse(s).unwrap()), s);
        }
    }
}
