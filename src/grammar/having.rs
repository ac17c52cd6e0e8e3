//! `having` (spec §4.6): `metric-op[numbers]` clauses separated by a comma right after `]`.
//! The metric may carry parameters (`added(reagg=dayAvg)-gt[10]`).

use super::tokens;
use crate::error::{Error, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HavingOp {
    EqualTo,
    GreaterThan,
    LessThan,
    NotEqualTo,
    NotGreaterThan,
    NotLessThan,
    Between,
    NotBetween,
}

impl HavingOp {
    pub fn parse(s: &str) -> Option<HavingOp> {
        Some(match s {
            "equalTo" | "equals" | "eq" => HavingOp::EqualTo,
            "greaterThan" | "greater" | "gt" => HavingOp::GreaterThan,
            "lessThan" | "less" | "lt" => HavingOp::LessThan,
            "notEqualTo" | "notEquals" | "noteq" | "neq" => HavingOp::NotEqualTo,
            "notGreaterThan" | "notGreater" | "notgt" | "lte" => HavingOp::NotGreaterThan,
            "notLessThan" | "notLess" | "notlt" | "gte" => HavingOp::NotLessThan,
            "between" | "bet" => HavingOp::Between,
            "notBetween" | "nbet" => HavingOp::NotBetween,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            HavingOp::EqualTo => "equalTo",
            HavingOp::GreaterThan => "greaterThan",
            HavingOp::LessThan => "lessThan",
            HavingOp::NotEqualTo => "notEqualTo",
            HavingOp::NotGreaterThan => "notGreaterThan",
            HavingOp::NotLessThan => "notLessThan",
            HavingOp::Between => "between",
            HavingOp::NotBetween => "notBetween",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HavingClause {
    /// The metric as written, parameters included (`added(reagg=dayAvg)`).
    pub metric: String,
    pub op: HavingOp,
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HavingError {
    Invalid(String),
    Operator(String),
    NotNumeric(String),
    Values { clause: String, values: String },
    BetweenCount(usize),
    BetweenOrder,
}

impl std::fmt::Display for HavingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HavingError::Invalid(c) => write!(f, "Having expression '{c}' is invalid."),
            HavingError::Operator(o) => write!(f, "Having operator '{o}' is invalid."),
            HavingError::NotNumeric(v) => write!(f, "Having expression '{v}' is not numeric."),
            HavingError::Values { clause, values } => write!(
                f,
                "Having expression '{clause}' resulted in the following error: Set of values '{values}' cannot be processed.  Empty strings, commas, and leading or trailing whitespace must be quoted."
            ),
            HavingError::BetweenCount(n) => write!(
                f,
                "Wrong number of parameters provided for between operator. between operator needs 2 parameters but found {n}"
            ),
            HavingError::BetweenOrder => {
                f.write_str("Upper range cannot be less than the lower range for between operator.")
            }
        }
    }
}

impl From<HavingError> for Error {
    fn from(e: HavingError) -> Self {
        let reason = match e {
            HavingError::Invalid(_) => Reason::HavingInvalid,
            HavingError::Operator(_) => Reason::HavingOperatorInvalid,
            _ => Reason::HavingValueInvalid,
        };
        Error::new(reason, e.to_string())
    }
}

/// Decimal or scientific notation only: `1`, `-2`, `1.`, `.1`, `-.1`, `1e8`, `1.5E-3`, `1.e1`.
pub fn is_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - f;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == b.len()
}

pub fn parse_clause(clause: &str) -> Result<HavingClause, HavingError> {
    let invalid = || HavingError::Invalid(clause.to_string());
    let (head, values) = tokens::bracketed(clause).ok_or_else(invalid)?;
    let dash = head.rfind('-').ok_or_else(invalid)?;
    let (metric, op) = (&head[..dash], &head[dash + 1..]);
    if metric.is_empty() || op.is_empty() || metric.contains('|') {
        return Err(invalid());
    }
    let op_parsed = HavingOp::parse(op).ok_or_else(|| HavingError::Operator(op.to_string()))?;
    // Whitespace around numbers is accepted, as Fili does (`deleted-eq[50, 11]`).
    let trimmed: Vec<&str> = values.split(',').map(str::trim).collect();
    let texts = tokens::split_values(&trimmed.join(","))
        .map_err(|_| HavingError::Values { clause: clause.to_string(), values: values.to_string() })?;
    let mut nums = Vec::with_capacity(texts.len());
    for t in &texts {
        if !is_number(t) {
            return Err(HavingError::NotNumeric(t.clone()));
        }
        nums.push(t.parse::<f64>().map_err(|_| HavingError::NotNumeric(t.clone()))?);
    }
    if matches!(op_parsed, HavingOp::Between | HavingOp::NotBetween) {
        if nums.len() != 2 {
            return Err(HavingError::BetweenCount(nums.len()));
        }
        if nums[1] < nums[0] {
            return Err(HavingError::BetweenOrder);
        }
    }
    Ok(HavingClause { metric: metric.to_string(), op: op_parsed, values: nums })
}

pub fn parse(s: &str) -> Result<Vec<HavingClause>, HavingError> {
    if s.is_empty() {
        return Ok(vec![]);
    }
    tokens::split_clauses(s).into_iter().map(parse_clause).collect()
}

/// Renders clauses that [`parse`] reads back (numbers in Rust's shortest round-trip form).
pub fn render(clauses: &[HavingClause]) -> String {
    clauses
        .iter()
        .map(|c| {
            let v: Vec<String> = c.values.iter().map(|x| format!("{x:?}")).collect();
            format!("{}-{}[{}]", c.metric, c.op.name(), v.join(","))
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        for ok in ["1", "-2", "1.", ".1", "-.1", "1e8", "1.5e8", "1.e1", "2E-3", "+4"] {
            assert!(is_number(ok), "{ok}");
        }
        for bad in ["0x10", "e1", "abc", "NaN", "inf", "1e", ".", "-", "1.2.3", "1d"] {
            assert!(!is_number(bad), "{bad}");
        }
    }

    #[test]
    fn clauses_and_aliases() {
        let h = parse("added(reagg=dayAvg)-gt[10],count-notBetween[1,5],x-neq[2,4]").unwrap();
        assert_eq!(h[0].metric, "added(reagg=dayAvg)");
        assert_eq!(h[0].op, HavingOp::GreaterThan);
        assert_eq!(h[1].op, HavingOp::NotBetween);
        assert_eq!(h[2].values, vec![2.0, 4.0]);
        assert_eq!(parse("a-lte[1e3]").unwrap()[0].op, HavingOp::NotGreaterThan);
        assert_eq!(parse("my-metric-eq[1]").unwrap()[0].metric, "my-metric");
    }

    #[test]
    fn errors() {
        assert_eq!(parse("a-equal[1]").unwrap_err().to_string(), "Having operator 'equal' is invalid.");
        assert_eq!(parse("agt[1]").unwrap_err().to_string(), "Having expression 'agt[1]' is invalid.");
        assert_eq!(parse("a-gt[x]").unwrap_err().to_string(), "Having expression 'x' is not numeric.");
        assert_eq!(
            parse("a-gt[,1]").unwrap_err().to_string(),
            "Having expression 'a-gt[,1]' resulted in the following error: Set of values ',1' cannot be processed.  Empty strings, commas, and leading or trailing whitespace must be quoted."
        );
        assert_eq!(
            parse("a-between[1,2,3]").unwrap_err().to_string(),
            "Wrong number of parameters provided for between operator. between operator needs 2 parameters but found 3"
        );
        assert_eq!(
            parse("a-between[5,1]").unwrap_err().to_string(),
            "Upper range cannot be less than the lower range for between operator."
        );
    }

    #[test]
    fn whitespace_around_numbers_is_accepted() {
        // Fili's own tests: deleted-eq[50, 11] and added-gt[  0,1.8  ].
        assert_eq!(parse("deleted-eq[50, 11]").unwrap()[0].values, vec![50.0, 11.0]);
        assert_eq!(parse("added-gt[  0,1.8  ]").unwrap()[0].values, vec![0.0, 1.8]);
        assert!(parse("a-gt[ ,1]").is_err(), "an empty value is still an error");
        assert!(parse("a-gt[1 2]").is_err(), "whitespace inside a number is not");
    }

    #[test]
    fn round_trip() {
        let h = parse("a-gt[1.5,2e10],b-nbet[-1,1]").unwrap();
        assert_eq!(parse(&render(&h)).unwrap(), h);
    }
}
