//! `format` and `filename` (spec §4.10).

use crate::error::{Error, Reason};

/// Response formats of the data endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Format {
    Json,
    Csv,
    JsonApi,
    Debug,
    /// Arrow IPC stream.
    Arrow,
    Parquet,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::JsonApi => "jsonapi",
            Format::Debug => "debug",
            Format::Arrow => "arrow",
            Format::Parquet => "parquet",
        }
    }

    /// The download extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => ".csv",
            Format::Arrow => ".arrow",
            Format::Parquet => ".parquet",
            _ => ".json",
        }
    }

    /// Format chosen from an `Accept` header when `format` is absent (spec §1).
    pub fn from_accept(accept: &str) -> Option<Format> {
        if accept.contains("application/json") {
            Some(Format::Json)
        } else if accept.contains("application/vnd.api+json") {
            Some(Format::JsonApi)
        } else if accept.contains("text/csv") {
            Some(Format::Csv)
        } else if accept.contains("application/vnd.apache.arrow.stream") {
            Some(Format::Arrow)
        } else if accept.contains("application/vnd.apache.parquet") || accept.contains("application/x-parquet") {
            Some(Format::Parquet)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Format '{}' is unknown. Choose from 'csv', 'json'.", self.0)
    }
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        Error::new(Reason::FormatInvalid, e.to_string())
    }
}

/// Parses a format name, case-insensitively.
pub fn parse(s: &str) -> Result<Format, FormatError> {
    match s.to_ascii_lowercase().as_str() {
        "json" => Ok(Format::Json),
        "csv" => Ok(Format::Csv),
        "jsonapi" => Ok(Format::JsonApi),
        "debug" => Ok(Format::Debug),
        "arrow" => Ok(Format::Arrow),
        "parquet" => Ok(Format::Parquet),
        _ => Err(FormatError(s.to_string())),
    }
}

/// Replaces the characters Fili replaces (`/` and `\` by `_`, `,` by `__`) and, beyond Fili,
/// every character that is unsafe in a header or a file name (quotes, `;`, control
/// characters, spaces, non-ASCII) by `_`, so a `filename` can never inject a header.
pub fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ',' => out.push_str("__"),
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | ':' | '=' | '@' | '(' | ')') => {
                out.push(c)
            }
            _ => out.push('_'),
        }
    }
    out
}

/// The download file name (with extension) for a request.
///
/// `given` is the `filename` parameter; `default_stem` the name Fili builds from the path and
/// the `dateTime` (see [`default_stem`]). A given name loses any trailing repeats of the
/// format's extension (`x.csv.csv` → `x`); an empty result falls back to the default.
/// `max_len` > 0 truncates the stem.
pub fn download_name(given: Option<&str>, default_stem: &str, format: Format, max_len: i64) -> String {
    let ext = format.extension();
    let mut stem = given.map(sanitize).unwrap_or_default();
    while stem.len() >= ext.len() && stem.to_ascii_lowercase().ends_with(ext) {
        stem.truncate(stem.len() - ext.len());
    }
    if stem.is_empty() {
        stem = sanitize(default_stem);
    }
    if max_len > 0 && stem.len() > max_len as usize {
        stem.truncate(max_len as usize);
    }
    format!("{stem}{ext}")
}

/// The `Content-Disposition` of a download: Fili's `attachment; filename=NAME` with the
/// ASCII-safe name, plus RFC 6266's `filename*=UTF-8''…` carrying the name as given when
/// making it safe changed it (`Données été` → `filename=Donn_es__t_.csv;
/// filename*=UTF-8''Donn%C3%A9es%20%C3%A9t%C3%A9.csv`).
pub fn content_disposition(given: Option<&str>, default_stem: &str, format: Format, max_len: i64) -> String {
    let ascii = download_name(given, default_stem, format, max_len);
    let mut out = format!("attachment; filename={ascii}");
    let ext = format.extension();
    if let Some(g) = given {
        // The name as given, minus what no file name may hold (path separators, controls).
        let mut stem: String = g.chars().filter(|c| !c.is_control() && !matches!(c, '/' | '\\')).collect();
        while stem.to_lowercase().ends_with(ext) && stem.len() > ext.len() {
            stem.truncate(stem.len() - ext.len());
        }
        if max_len > 0 {
            stem = stem.chars().take(max_len as usize).collect();
        }
        let full = format!("{stem}{ext}");
        if !stem.is_empty() && full != ascii {
            const ATTR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
                .remove(b'!')
                .remove(b'#')
                .remove(b'$')
                .remove(b'&')
                .remove(b'+')
                .remove(b'-')
                .remove(b'.')
                .remove(b'^')
                .remove(b'_')
                .remove(b'`')
                .remove(b'|')
                .remove(b'~');
            out.push_str(&format!("; filename*=UTF-8''{}", percent_encoding::utf8_percent_encode(&full, ATTR)));
        }
    }
    out
}

/// Fili's default name: path segments joined by `-`, then `_` and the `dateTime` value,
/// e.g. `data-wikipedia-day-page_2015-09-12_2015-09-13`.
pub fn default_stem(path_segments: &[&str], date_time: &str) -> String {
    let joined = path_segments.iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("-");
    if date_time.is_empty() { joined } else { format!("{joined}_{date_time}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_case_insensitively() {
        assert_eq!(parse("CSV"), Ok(Format::Csv));
        assert_eq!(parse("JsonApi"), Ok(Format::JsonApi));
        assert_eq!(parse("debug"), Ok(Format::Debug));
        assert_eq!(parse("xml").unwrap_err().to_string(), "Format 'xml' is unknown. Choose from 'csv', 'json'.");
    }

    #[test]
    fn accept_header_order() {
        assert_eq!(Format::from_accept("text/csv, application/json"), Some(Format::Json));
        assert_eq!(Format::from_accept("application/vnd.api+json"), Some(Format::JsonApi));
        assert_eq!(Format::from_accept("text/csv"), Some(Format::Csv));
        assert_eq!(Format::from_accept("text/html"), None);
    }

    #[test]
    fn default_name_follows_fili() {
        let stem = default_stem(&["data", "wikipedia", "day", "page"], "2015-09-12/2015-09-13");
        assert_eq!(download_name(None, &stem, Format::Csv, -1), "data-wikipedia-day-page_2015-09-12_2015-09-13.csv");
        let stem2 = default_stem(&["data", "t", "day"], "2015-09-12/2015-09-13,2015-09-14/2015-09-15");
        assert_eq!(
            download_name(None, &stem2, Format::Json, -1),
            "data-t-day_2015-09-12_2015-09-13__2015-09-14_2015-09-15.json"
        );
    }

    #[test]
    fn given_name_rules() {
        assert_eq!(download_name(Some("x.csv.csv"), "d", Format::Csv, -1), "x.csv");
        assert_eq!(download_name(Some(".csv"), "d", Format::Csv, -1), "d.csv");
        assert_eq!(download_name(Some("report"), "d", Format::Json, -1), "report.json");
        assert_eq!(download_name(Some("a/b\\c"), "d", Format::Csv, -1), "a_b_c.csv");
        assert_eq!(download_name(Some("abcdefgh"), "d", Format::Csv, 3), "abc.csv");
    }

    #[test]
    fn non_ascii_names_get_filename_star() {
        assert_eq!(
            content_disposition(Some("Données été"), "d", Format::Csv, -1),
            "attachment; filename=Donn_es__t_.csv; filename*=UTF-8''Donn%C3%A9es%20%C3%A9t%C3%A9.csv"
        );
        assert_eq!(content_disposition(Some("june"), "d", Format::Csv, -1), "attachment; filename=june.csv");
        assert_eq!(content_disposition(None, "d", Format::Parquet, -1), "attachment; filename=d.parquet");
        let evil = content_disposition(Some("a\r\nSet-Cookie: x;\"y"), "d", Format::Csv, -1);
        assert!(!evil.contains(['\r', '\n', '"']), "{evil}");
    }

    #[test]
    fn header_injection_is_neutralized() {
        let n = download_name(Some("x\r\nSet-Cookie: a=b\"; y"), "d", Format::Csv, -1);
        assert!(!n.contains(['\r', '\n', '"', ';', ' ']), "{n}");
    }
}
