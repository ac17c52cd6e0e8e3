//! Value lists inside `[...]` of filters and having: comma-separated, double quotes quote
//! (`"a,b"` → `a,b`, `""""` → `"`, `""` → empty); no backslash escapes. Unquoted items may
//! not be empty or padded with whitespace.

/// A value list that cannot be split (the caller renders it with its own clause text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadValues;

/// Splits `text` into values; fails when an unquoted item is empty or padded, or a quote
/// is unbalanced.
pub fn split_values(text: &str) -> Result<Vec<String>, BadValues> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if i < chars.len() && chars[i] == '"' {
            // Quoted item.
            let mut v = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(BadValues),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        v.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        v.push(*c);
                        i += 1;
                    }
                }
            }
            out.push(v);
            match chars.get(i) {
                None => return Ok(out),
                Some(',') => i += 1,
                Some(_) => return Err(BadValues),
            }
        } else {
            let start = i;
            while i < chars.len() && chars[i] != ',' {
                if chars[i] == '"' {
                    return Err(BadValues);
                }
                i += 1;
            }
            let v: String = chars[start..i].iter().collect();
            if v.is_empty() || v.trim() != v {
                return Err(BadValues);
            }
            out.push(v);
            if i >= chars.len() {
                return Ok(out);
            }
            i += 1; // the comma
        }
    }
}

/// Renders values so that [`split_values`] gives them back.
pub fn join_values(values: &[String]) -> String {
    values
        .iter()
        .map(|v| {
            if v.is_empty() || v.contains([',', '"']) || v.trim() != v {
                format!("\"{}\"", v.replace('"', "\"\""))
            } else {
                v.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits a clause list on commas that immediately follow a `]` (Fili's `(?<=]),`).
pub fn split_clauses(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for i in 1..bytes.len() {
        if bytes[i] == b',' && bytes[i - 1] == b']' {
            out.push(&text[start..i]);
            start = i + 1;
        }
    }
    out.push(&text[start..]);
    out
}

/// Matches `head[values]` with an optional closing `]` at the very end; `values` non-empty and
/// free of `]`. Returns (head, values).
pub fn bracketed(clause: &str) -> Option<(&str, &str)> {
    let open = clause.find('[')?;
    let head = &clause[..open];
    let rest = &clause[open + 1..];
    let (values, tail) = match rest.find(']') {
        Some(close) => (&rest[..close], &rest[close + 1..]),
        None => (rest, ""),
    };
    if values.is_empty() || !tail.is_empty() {
        return None;
    }
    Some((head, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_rules() {
        assert_eq!(split_values("a,b"), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(split_values("\"a,b\""), Ok(vec!["a,b".into()]));
        assert_eq!(split_values("\"\"\"\""), Ok(vec!["\"".into()]));
        assert_eq!(split_values("\"\""), Ok(vec!["".into()]));
        assert_eq!(split_values("\" x \",y"), Ok(vec![" x ".into(), "y".into()]));
    }

    #[test]
    fn unquoted_empty_or_padded_rejected() {
        for bad in [",a", "a,", "a,,b", "a, ,b", " ", "a ,b", "\"a", "\"a\"b", "a\"b"] {
            assert_eq!(split_values(bad), Err(BadValues), "{bad}");
        }
    }

    #[test]
    fn clause_split_and_brackets() {
        assert_eq!(split_clauses("a|id-in[x,y],b|id-in[z]"), vec!["a|id-in[x,y]", "b|id-in[z]"]);
        assert_eq!(bracketed("page|id-in[foo"), Some(("page|id-in", "foo")));
        assert_eq!(bracketed("page|id-in[foo]"), Some(("page|id-in", "foo")));
        assert_eq!(bracketed("page|id-in[]"), None);
        assert_eq!(bracketed("page|id-in[a]b"), None);
    }

    #[test]
    fn join_round_trips() {
        let v = vec!["a,b".to_string(), "".into(), "\"q\"".into(), " pad".into(), "plain".into()];
        assert_eq!(split_values(&join_values(&v)), Ok(v));
    }
}
