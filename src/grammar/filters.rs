//! `filters` (spec §4.5): `dimension|field-op[v1,v2,…]` clauses separated by a comma right
//! after `]`; the last clause may omit its `]`.

use super::tokens;
use crate::error::{Error, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    In,
    NotIn,
    StartsWith,
    Contains,
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
}

impl FilterOp {
    /// Parses an operation or alias (case-sensitive).
    pub fn parse(s: &str) -> Option<FilterOp> {
        Some(match s {
            "in" => FilterOp::In,
            "notin" => FilterOp::NotIn,
            "startswith" => FilterOp::StartsWith,
            "contains" => FilterOp::Contains,
            "eq" | "equals" => FilterOp::Eq,
            "lt" | "less" => FilterOp::Lt,
            "lte" | "notgt" | "notGreater" | "notGreaterThan" => FilterOp::Lte,
            "gt" | "greater" => FilterOp::Gt,
            "gte" | "notlt" | "notLess" | "notLessThan" => FilterOp::Gte,
            "between" | "bet" => FilterOp::Between,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FilterOp::In => "in",
            FilterOp::NotIn => "notin",
            FilterOp::StartsWith => "startswith",
            FilterOp::Contains => "contains",
            FilterOp::Eq => "eq",
            FilterOp::Lt => "lt",
            FilterOp::Lte => "lte",
            FilterOp::Gt => "gt",
            FilterOp::Gte => "gte",
            FilterOp::Between => "between",
        }
    }

    /// Exact number of values the bound operations take.
    pub fn arity(self) -> Option<usize> {
        match self {
            FilterOp::Lt | FilterOp::Lte | FilterOp::Gt | FilterOp::Gte => Some(1),
            FilterOp::Between => Some(2),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterClause {
    pub dimension: String,
    pub field: String,
    pub op: FilterOp,
    pub values: Vec<String>,
}

impl FilterClause {
    /// `dim|field-op[values]`, the form used in messages and re-parsable.
    pub fn render(&self) -> String {
        format!("{}|{}-{}[{}]", self.dimension, self.field, self.op.name(), tokens::join_values(&self.values))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    Invalid(String),
    Values { clause: String, values: String },
    Operator(String),
    Arity { op: String, expected: usize, found: usize, clause: String },
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterError::Invalid(c) => write!(f, "Filter expression '{c}' is invalid."),
            FilterError::Values { clause, values } => write!(
                f,
                "Filter expression '{clause}' resulted in the following error: Set of values '{values}' cannot be processed.  Empty strings, commas, and leading or trailing whitespace must be quoted."
            ),
            FilterError::Operator(op) => write!(f, "Filter operator '{op}' is invalid."),
            FilterError::Arity { op, expected, found, clause } => {
                write!(f, "Filter operator '{op}' expects {expected} argument(s).  Found {found} in '{clause}'.")
            }
        }
    }
}

impl From<FilterError> for Error {
    fn from(e: FilterError) -> Self {
        let reason = match e {
            FilterError::Invalid(_) => Reason::FilterInvalid,
            FilterError::Values { .. } | FilterError::Arity { .. } => Reason::FilterValuesInvalid,
            FilterError::Operator(_) => Reason::FilterOperatorInvalid,
        };
        Error::new(reason, e.to_string())
    }
}

/// Parses one clause.
pub fn parse_clause(clause: &str) -> Result<FilterClause, FilterError> {
    let invalid = || FilterError::Invalid(clause.to_string());
    let (head, values) = tokens::bracketed(clause).ok_or_else(invalid)?;
    let (dimension, rest) = head.split_once('|').ok_or_else(invalid)?;
    let (field, op) = rest.split_once('-').ok_or_else(invalid)?;
    if dimension.is_empty() || field.is_empty() || op.is_empty() {
        return Err(invalid());
    }
    let op_parsed = FilterOp::parse(op).ok_or_else(|| FilterError::Operator(op.to_string()))?;
    let vals = tokens::split_values(values)
        .map_err(|_| FilterError::Values { clause: clause.to_string(), values: values.to_string() })?;
    if let Some(n) = op_parsed.arity()
        && vals.len() != n
    {
        return Err(FilterError::Arity {
            op: op.to_string(),
            expected: n,
            found: vals.len(),
            clause: clause.to_string(),
        });
    }
    Ok(FilterClause { dimension: dimension.to_string(), field: field.to_string(), op: op_parsed, values: vals })
}

/// Parses the whole parameter; empty means no filters.
pub fn parse(s: &str) -> Result<Vec<FilterClause>, FilterError> {
    if s.is_empty() {
        return Ok(vec![]);
    }
    tokens::split_clauses(s).into_iter().map(parse_clause).collect()
}

/// Renders clauses that [`parse`] reads back.
pub fn render(clauses: &[FilterClause]) -> String {
    clauses.iter().map(|c| c.render()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(d: &str, f: &str, op: FilterOp, v: &[&str]) -> FilterClause {
        FilterClause { dimension: d.into(), field: f.into(), op, values: v.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn spec_examples() {
        assert_eq!(
            parse("page|id-in[foo,bar],user|desc-notin[x]"),
            Ok(vec![
                clause("page", "id", FilterOp::In, &["foo", "bar"]),
                clause("user", "desc", FilterOp::NotIn, &["x"])
            ])
        );
        assert_eq!(parse("page|id-in[foo"), Ok(vec![clause("page", "id", FilterOp::In, &["foo"])]));
        assert_eq!(parse("p|id-in[\"a,b\",\"\"\"\"]"), Ok(vec![clause("p", "id", FilterOp::In, &["a,b", "\""])]));
        assert_eq!(parse("p|id-equals[x]"), Ok(vec![clause("p", "id", FilterOp::Eq, &["x"])]));
        assert_eq!(parse("p|id-notGreaterThan[5]"), Ok(vec![clause("p", "id", FilterOp::Lte, &["5"])]));
        assert_eq!(parse("p|id-bet[1,5]"), Ok(vec![clause("p", "id", FilterOp::Between, &["1", "5"])]));
        assert_eq!(parse("my-dim|id-in[x]").unwrap()[0].dimension, "my-dim");
        assert_eq!(parse(""), Ok(vec![]));
    }

    #[test]
    fn error_messages() {
        assert_eq!(parse("page-in[x]").unwrap_err().to_string(), "Filter expression 'page-in[x]' is invalid.");
        assert_eq!(parse("page|id-in[]").unwrap_err().to_string(), "Filter expression 'page|id-in[]' is invalid.");
        assert_eq!(parse("page|id-in[a]x").unwrap_err().to_string(), "Filter expression 'page|id-in[a]x' is invalid.");
        assert_eq!(parse("page|id-like[x]").unwrap_err().to_string(), "Filter operator 'like' is invalid.");
        assert_eq!(parse("page|id-IN[x]").unwrap_err().to_string(), "Filter operator 'IN' is invalid.");
        for vals in [",a", "a,", "a,,b", "a, ,b", " "] {
            let c = format!("page|id-in[{vals}]");
            assert_eq!(
                parse(&c).unwrap_err().to_string(),
                format!(
                    "Filter expression '{c}' resulted in the following error: Set of values '{vals}' cannot be processed.  Empty strings, commas, and leading or trailing whitespace must be quoted."
                )
            );
        }
        assert_eq!(
            parse("p|id-gt[1,2]").unwrap_err().to_string(),
            "Filter operator 'gt' expects 1 argument(s).  Found 2 in 'p|id-gt[1,2]'."
        );
        assert_eq!(
            parse("p|id-between[1]").unwrap_err().to_string(),
            "Filter operator 'between' expects 2 argument(s).  Found 1 in 'p|id-between[1]'."
        );
    }

    #[test]
    fn round_trip() {
        let c = vec![clause("a", "desc", FilterOp::Contains, &["x,y", " z"]), clause("b", "id", FilterOp::In, &["1"])];
        assert_eq!(parse(&render(&c)), Ok(c));
    }
}
