//! `topN` and `count` (spec §4.8): non-negative Java ints; 0 means off.

use crate::error::{Error, Reason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegerError {
    pub param: &'static str,
    pub value: String,
}

impl std::fmt::Display for IntegerError {
    // Fili swaps the arguments; quiver prints them in the intended order (DESIGN §7).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} value:'{}' is invalid. Value must be a positive integer.", self.param, self.value)
    }
}

impl From<IntegerError> for Error {
    fn from(e: IntegerError) -> Self {
        let reason = if e.param == "topN" { Reason::TopNInvalid } else { Reason::CountInvalid };
        Error::new(reason, e.to_string())
    }
}

/// Parses `topN` or `count`: an optional sign and digits that fit an `i32`, not negative.
/// Returns `None` for 0 (off).
pub fn parse(param: &'static str, s: &str) -> Result<Option<usize>, IntegerError> {
    let err = || IntegerError { param, value: s.to_string() };
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let v: i32 = s.parse().map_err(|_| err())?;
    if v < 0 {
        return Err(err());
    }
    Ok(if v == 0 { None } else { Some(v as usize) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_java_ints() {
        assert_eq!(parse("topN", "3"), Ok(Some(3)));
        assert_eq!(parse("topN", "0"), Ok(None));
        assert_eq!(parse("count", "+7"), Ok(Some(7)));
        assert_eq!(parse("count", "2147483647"), Ok(Some(2147483647)));
    }

    #[test]
    fn rejects_with_arguments_in_order() {
        for bad in ["bad", "", "3.", " 12", "13 ", "-1", "2147483648", "1e3"] {
            assert_eq!(
                parse("topN", bad).unwrap_err().to_string(),
                format!("topN value:'{bad}' is invalid. Value must be a positive integer.")
            );
        }
        assert_eq!(
            parse("count", "x").unwrap_err().to_string(),
            "count value:'x' is invalid. Value must be a positive integer."
        );
    }
}
