//! `metrics` (spec §4.2): a comma list of `name` or `name(key=value,…)`; values are
//! `[A-Za-z0-9_]+` or parenthesised with `\)` escaping `)`. Whitespace between tokens is
//! ignored; duplicates collapse.

use crate::error::{Error, Reason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricRef {
    pub name: String,
    pub params: Vec<(String, String)>,
}

impl MetricRef {
    /// The output column name: the name, or `name(k=v,…)` with parameters.
    pub fn column_name(&self) -> String {
        if self.params.is_empty() {
            return self.name.clone();
        }
        let ps: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| {
                if !v.is_empty() && v.chars().all(is_word) {
                    format!("{k}={v}")
                } else {
                    format!("{k}=({})", v.replace(')', "\\)"))
                }
            })
            .collect();
        format!("{}({})", self.name, ps.join(","))
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsError {
    Missing,
    Invalid { text: String, detail: String },
}

impl std::fmt::Display for MetricsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricsError::Missing => f.write_str(
                "Required parameter metrics is missing or empty. Use 'metrics=METRICNAME1,METRICNAME2' in the query string.",
            ),
            MetricsError::Invalid { text, detail } => write!(f, "Metric expression '{text}' is invalid. ({detail})"),
        }
    }
}

impl From<MetricsError> for Error {
    fn from(e: MetricsError) -> Self {
        let reason = match e {
            MetricsError::Missing => Reason::MetricsMissing,
            MetricsError::Invalid { .. } => Reason::MetricInvalid,
        };
        Error::new(reason, e.to_string())
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

struct Cursor<'a> {
    chars: Vec<char>,
    pos: usize,
    text: &'a str,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.chars.len() && self.chars[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    fn fail(&self, detail: impl Into<String>) -> MetricsError {
        MetricsError::Invalid { text: self.text.to_string(), detail: detail.into() }
    }

    fn word(&mut self, what: &str) -> Result<String, MetricsError> {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.chars.len() && is_word(self.chars[self.pos]) {
            self.pos += 1;
        }
        if start == self.pos {
            let found = self.chars.get(self.pos).map(|c| format!("'{c}'")).unwrap_or_else(|| "end of input".into());
            return Err(self.fail(format!("expected {what} at position {}, found {found}", self.pos)));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn expect(&mut self, c: char) -> Result<(), MetricsError> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            other => Err(self.fail(format!(
                "expected '{c}' at position {}, found {}",
                self.pos,
                other.map(|o| format!("'{o}'")).unwrap_or_else(|| "end of input".into())
            ))),
        }
    }

    fn value(&mut self) -> Result<String, MetricsError> {
        if self.peek() != Some('(') {
            return self.word("a parameter value");
        }
        self.pos += 1;
        let mut v = String::new();
        loop {
            match self.chars.get(self.pos) {
                None => return Err(self.fail("unclosed '(' in a parameter value")),
                Some('\\') if self.chars.get(self.pos + 1) == Some(&')') => {
                    v.push(')');
                    self.pos += 2;
                }
                Some(')') => {
                    self.pos += 1;
                    return Ok(v);
                }
                Some(c) => {
                    v.push(*c);
                    self.pos += 1;
                }
            }
        }
    }
}

/// Parses the `metrics` parameter. `None` or blank → `Missing`.
pub fn parse(s: Option<&str>) -> Result<Vec<MetricRef>, MetricsError> {
    let text = match s {
        Some(t) if !t.trim().is_empty() => t,
        _ => return Err(MetricsError::Missing),
    };
    let mut c = Cursor { chars: text.chars().collect(), pos: 0, text };
    let mut out: Vec<MetricRef> = Vec::new();
    loop {
        let name = c.word("a metric name")?;
        let mut params = Vec::new();
        if c.peek() == Some('(') {
            c.pos += 1;
            loop {
                let k = c.word("a parameter name")?;
                c.expect('=')?;
                let v = c.value()?;
                params.push((k, v));
                match c.peek() {
                    Some(',') => c.pos += 1,
                    _ => break,
                }
            }
            c.expect(')')?;
        }
        let m = MetricRef { name, params };
        if !out.contains(&m) {
            out.push(m);
        }
        match c.peek() {
            None => break,
            Some(',') => c.pos += 1,
            Some(x) => return Err(c.fail(format!("expected ',' at position {}, found '{x}'", c.pos))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(n: &str) -> MetricRef {
        MetricRef { name: n.into(), params: vec![] }
    }

    #[test]
    fn lists_and_duplicates() {
        assert_eq!(parse(Some("a,b,a")), Ok(vec![m("a"), m("b")]));
        assert_eq!(parse(Some(" a , b ")), Ok(vec![m("a"), m("b")]));
    }

    #[test]
    fn parameters() {
        let r = parse(Some("added(reagg=dayAvg),x(k=(a,b\\)c), j = v2)")).unwrap();
        assert_eq!(r[0].param("reagg"), Some("dayAvg"));
        assert_eq!(r[0].column_name(), "added(reagg=dayAvg)");
        assert_eq!(r[1].params, vec![("k".into(), "a,b)c".into()), ("j".into(), "v2".into())]);
        assert_eq!(parse(Some(&r[1].column_name())).unwrap()[0], r[1]);
    }

    #[test]
    fn missing_and_invalid() {
        let missing = "Required parameter metrics is missing or empty. Use 'metrics=METRICNAME1,METRICNAME2' in the query string.";
        assert_eq!(parse(None).unwrap_err().to_string(), missing);
        assert_eq!(parse(Some("")).unwrap_err().to_string(), missing);
        let e = parse(Some("a,,b")).unwrap_err().to_string();
        assert!(e.starts_with("Metric expression 'a,,b' is invalid. (expected a metric name at position 2"), "{e}");
        assert!(parse(Some("a(b)")).is_err());
        assert!(parse(Some("a(b=(c")).is_err());
        assert!(parse(Some("a-b")).is_err());
    }
}
