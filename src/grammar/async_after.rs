//! `asyncAfter` (spec §4.11): `never`, `always`, or a whole number of milliseconds.

use crate::error::{Error, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncAfter {
    /// Wait for the result however long it takes.
    Never,
    /// Answer with a job ticket at once.
    Always,
    /// Answer with a ticket if the result is not ready within this many milliseconds.
    Millis(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncAfterError(pub String);

impl std::fmt::Display for AsyncAfterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Invalid 'asyncAfter' parameter: '{}'. 'asyncAfter' must be either 'never' or an integer number of milliseconds.",
            self.0
        )
    }
}

impl From<AsyncAfterError> for Error {
    fn from(e: AsyncAfterError) -> Self {
        Error::new(Reason::AsyncAfterInvalid, e.to_string())
    }
}

/// Keywords are case-sensitive (as in Fili); negative numbers are rejected rather than
/// treated as Fili's internal `-1` "always" sentinel (DESIGN §7).
pub fn parse(s: &str) -> Result<AsyncAfter, AsyncAfterError> {
    match s {
        "never" => Ok(AsyncAfter::Never),
        "always" => Ok(AsyncAfter::Always),
        _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u64>().map(AsyncAfter::Millis).map_err(|_| AsyncAfterError(s.to_string()))
        }
        _ => Err(AsyncAfterError(s.to_string())),
    }
}

impl std::fmt::Display for AsyncAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AsyncAfter::Never => f.write_str("never"),
            AsyncAfter::Always => f.write_str("always"),
            AsyncAfter::Millis(m) => write!(f, "{m}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_and_numbers() {
        assert_eq!(parse("never"), Ok(AsyncAfter::Never));
        assert_eq!(parse("always"), Ok(AsyncAfter::Always));
        assert_eq!(parse("0"), Ok(AsyncAfter::Millis(0)));
        assert_eq!(parse("1500"), Ok(AsyncAfter::Millis(1500)));
    }

    #[test]
    fn rejects_everything_else_with_the_spec_message() {
        for bad in ["NEVER", "-1", "1.5", "", " 5", "soon", "99999999999999999999999"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "Invalid 'asyncAfter' parameter: '{bad}'. 'asyncAfter' must be either 'never' or an integer number of milliseconds."
                )
            );
        }
    }

    #[test]
    fn renders_back() {
        for s in ["never", "always", "250"] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
    }
}
