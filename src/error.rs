//! The one error model of quiver.
//!
//! Every failure that reaches a client is an [`Error`]: a stable machine [`Reason`] code plus a
//! human message. [`Reason::status`] is the single exhaustive mapping from reason to HTTP status
//! (adding a reason forces a decision about its status), and [`Error::body`] renders Fili's JSON
//! error shape `{status, statusName, reason, description, druidQuery, requestId}` which every
//! endpoint uses (DESIGN §7: metadata endpoints too, not plain text).

use serde_json::{Value, json};
use std::fmt;

/// Stable machine-readable error codes, rendered in the `reason` field of error bodies.
/// Clients may match on these; they never change meaning once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    // ---- request syntax (400) ----
    /// `format` is not one of json, csv, jsonapi, debug.
    FormatInvalid,
    /// `filename` cannot be used.
    FilenameInvalid,
    /// `asyncAfter` is neither `never`, `always` nor a number of milliseconds.
    AsyncAfterInvalid,
    /// `perPage`/`page` missing one of the pair or not positive integers.
    PaginationInvalid,
    /// `timeZone` is not an IANA zone id.
    TimeZoneUnknown,
    /// The grain path segment is not a known granularity.
    GrainInvalid,
    /// `metrics` parameter absent or empty.
    MetricsMissing,
    /// `metrics` parameter cannot be parsed.
    MetricInvalid,
    /// `dateTime` parameter absent or empty.
    #[serde(rename = "DATETIME_MISSING")]
    DateTimeMissing,
    /// An interval in `dateTime` is malformed, reversed or uses an RRULE wrongly.
    IntervalInvalid,
    /// An interval in `dateTime` has zero length.
    IntervalZeroLength,
    /// An interval does not sit on bucket boundaries of the request grain.
    IntervalMisaligned,
    /// An RRULE produced more occurrences than allowed, or a period produced too many buckets.
    IntervalTooMany,
    /// `filters` cannot be parsed.
    FilterInvalid,
    /// `filters` uses an unknown operation.
    FilterOperatorInvalid,
    /// `filters` values are malformed (unquoted empty or padded values).
    FilterValuesInvalid,
    /// `having` cannot be parsed.
    HavingInvalid,
    /// `having` uses an unknown operation.
    HavingOperatorInvalid,
    /// `having` values are not numbers or the wrong count.
    HavingValueInvalid,
    /// `sort` cannot be parsed (bad direction, dateTime not first).
    SortInvalid,
    /// `topN` is not a non-negative integer.
    #[serde(rename = "TOPN_INVALID")]
    TopNInvalid,
    /// `topN` given without a metric or dimension sort.
    #[serde(rename = "TOPN_WITHOUT_SORT")]
    TopNWithoutSort,
    /// `count` is not a non-negative integer.
    CountInvalid,
    /// A `show` clause names an unknown field.
    ShowFieldUndefined,
    /// A query parameter value is longer than allowed.
    ParameterTooLong,
    // ---- resolution against the catalog (400 on data, 404 on metadata lookups) ----
    /// Table name unknown.
    TableUndefined,
    /// Table exists but not at this grain.
    TableGrainInvalid,
    /// Dimension name unknown.
    DimensionUndefined,
    /// Dimension exists but is not part of the table.
    DimensionNotInTable,
    /// Metric name unknown.
    MetricUndefined,
    /// Metric exists but not on this table at this grain.
    #[serde(rename = "METRICS_NOT_IN_TABLE")]
    MetricNotInTable,
    /// Filter names an unknown dimension.
    FilterDimensionUndefined,
    /// Filter names a field the dimension lacks.
    FilterFieldUndefined,
    /// Filter dimension is not part of the table.
    FilterDimensionNotInTable,
    /// Substring filter operations are disabled by configuration.
    FilterOperationDisabled,
    /// Too many filter values after resolution.
    FilterTooManyValues,
    /// Having names a metric that was not requested.
    HavingMetricUndefined,
    /// Sort names a column that was not requested.
    SortMetricUndefined,
    /// Nested-average metric asked at a grain its inner grain cannot satisfy.
    GrainNotSatisfiable,
    /// Slice (physical table) name unknown.
    SliceUndefined,
    /// Metadata lookup of an unknown table.
    TableNotFound,
    /// Metadata lookup of an unknown dimension.
    DimensionNotFound,
    /// Metadata lookup of an unknown metric.
    MetricNotFound,
    /// Job ticket unknown.
    JobNotFound,
    /// No route matches the path.
    RouteNotFound,
    /// The requested page lies past the last page.
    PageNotFound,
    /// HTTP method other than GET/OPTIONS.
    MethodNotAllowed,
    /// URL longer than the configured maximum.
    UriTooLong,
    /// The request target is not a path (absolute-form, authority-form, `*`).
    RequestTargetInvalid,
    // ---- identity and admission ----
    /// Missing or unknown bearer token.
    Unauthorized,
    /// Scope not granted to the caller's roles.
    Forbidden,
    /// `/v1/share` without a usable `url` to sign.
    ShareUrlInvalid,
    /// A share link whose signature does not match its query, or whose signer is gone.
    ShareLinkInvalid,
    /// A share link past its expiry.
    ShareLinkExpired,
    /// Concurrency or rate limit reached.
    RateLimited,
    // ---- execution ----
    /// The query would produce more groups or bytes than the configured cap.
    ResultTooLarge,
    /// No physical table can answer the query.
    TableSchemaUndefined,
    /// A Parquet file could not be read.
    DataFileUnreadable,
    /// The query was canceled (client went away or shutdown).
    QueryCanceled,
    /// The job store cannot accept new jobs (disk full, unwritable directory).
    JobStoreUnavailable,
    /// The caller has too many pending jobs or too many stored result bytes.
    JobQuotaExceeded,
    /// The job was canceled because nobody asked for it within `jobs.orphan_seconds`.
    JobOrphaned,
    /// The job was cut off by a server stop (shutdown or crash) before it finished.
    JobInterrupted,
    /// The job's stored results are damaged (checksum mismatch or unparsable).
    JobResultsCorrupt,
    /// The service is unhealthy.
    ServiceUnavailable,
    /// The distributed engine of the table cannot be reached, lost its executors, or did not
    /// answer within `distributed.timeout_seconds`.
    ClusterUnavailable,
    /// A global budget (connections, result bytes in flight, a table's concurrency) is used
    /// up; retry after `Retry-After`.
    ServerBusy,
    /// A bug: something that should not happen.
    Internal,
}

impl Reason {
    /// The one mapping from reason to HTTP status code.
    pub fn status(self) -> u16 {
        use Reason::*;
        match self {
            FormatInvalid
            | FilenameInvalid
            | AsyncAfterInvalid
            | PaginationInvalid
            | TimeZoneUnknown
            | GrainInvalid
            | MetricsMissing
            | MetricInvalid
            | DateTimeMissing
            | IntervalInvalid
            | IntervalZeroLength
            | IntervalMisaligned
            | IntervalTooMany
            | FilterInvalid
            | FilterOperatorInvalid
            | FilterValuesInvalid
            | HavingInvalid
            | HavingOperatorInvalid
            | HavingValueInvalid
            | SortInvalid
            | TopNInvalid
            | TopNWithoutSort
            | CountInvalid
            | ShowFieldUndefined
            | ParameterTooLong
            | TableUndefined
            | TableGrainInvalid
            | DimensionUndefined
            | DimensionNotInTable
            | MetricUndefined
            | MetricNotInTable
            | FilterDimensionUndefined
            | FilterFieldUndefined
            | FilterDimensionNotInTable
            | FilterOperationDisabled
            | FilterTooManyValues
            | HavingMetricUndefined
            | SortMetricUndefined
            | GrainNotSatisfiable
            | RequestTargetInvalid
            | ShareUrlInvalid => 400,
            Unauthorized => 401,
            Forbidden | ShareLinkInvalid | ShareLinkExpired => 403,
            SliceUndefined | TableNotFound | DimensionNotFound | MetricNotFound | JobNotFound | RouteNotFound
            | PageNotFound => 404,
            MethodNotAllowed => 405,
            UriTooLong => 414,
            RateLimited | JobQuotaExceeded => 429,
            JobOrphaned => 410,
            TableSchemaUndefined | DataFileUnreadable | JobResultsCorrupt | Internal => 500,
            JobStoreUnavailable | ServiceUnavailable | ClusterUnavailable | ServerBusy | QueryCanceled
            | JobInterrupted => 503,
            ResultTooLarge => 507,
        }
    }

    /// The stable code rendered in `reason`.
    pub fn code(self) -> &'static str {
        use Reason::*;
        match self {
            FormatInvalid => "FORMAT_INVALID",
            FilenameInvalid => "FILENAME_INVALID",
            AsyncAfterInvalid => "ASYNC_AFTER_INVALID",
            PaginationInvalid => "PAGINATION_INVALID",
            TimeZoneUnknown => "TIME_ZONE_UNKNOWN",
            GrainInvalid => "GRAIN_INVALID",
            MetricsMissing => "METRICS_MISSING",
            MetricInvalid => "METRIC_INVALID",
            DateTimeMissing => "DATETIME_MISSING",
            IntervalInvalid => "INTERVAL_INVALID",
            IntervalZeroLength => "INTERVAL_ZERO_LENGTH",
            IntervalMisaligned => "INTERVAL_MISALIGNED",
            IntervalTooMany => "INTERVAL_TOO_MANY",
            FilterInvalid => "FILTER_INVALID",
            FilterOperatorInvalid => "FILTER_OPERATOR_INVALID",
            FilterValuesInvalid => "FILTER_VALUES_INVALID",
            HavingInvalid => "HAVING_INVALID",
            HavingOperatorInvalid => "HAVING_OPERATOR_INVALID",
            HavingValueInvalid => "HAVING_VALUE_INVALID",
            SortInvalid => "SORT_INVALID",
            TopNInvalid => "TOPN_INVALID",
            TopNWithoutSort => "TOPN_WITHOUT_SORT",
            CountInvalid => "COUNT_INVALID",
            ShowFieldUndefined => "SHOW_FIELD_UNDEFINED",
            ParameterTooLong => "PARAMETER_TOO_LONG",
            TableUndefined => "TABLE_UNDEFINED",
            TableGrainInvalid => "TABLE_GRAIN_INVALID",
            DimensionUndefined => "DIMENSION_UNDEFINED",
            DimensionNotInTable => "DIMENSION_NOT_IN_TABLE",
            MetricUndefined => "METRIC_UNDEFINED",
            MetricNotInTable => "METRICS_NOT_IN_TABLE",
            FilterDimensionUndefined => "FILTER_DIMENSION_UNDEFINED",
            FilterFieldUndefined => "FILTER_FIELD_UNDEFINED",
            FilterDimensionNotInTable => "FILTER_DIMENSION_NOT_IN_TABLE",
            FilterOperationDisabled => "FILTER_OPERATION_DISABLED",
            FilterTooManyValues => "FILTER_TOO_MANY_VALUES",
            HavingMetricUndefined => "HAVING_METRIC_UNDEFINED",
            SortMetricUndefined => "SORT_METRIC_UNDEFINED",
            GrainNotSatisfiable => "GRAIN_NOT_SATISFIABLE",
            SliceUndefined => "SLICE_UNDEFINED",
            TableNotFound => "TABLE_NOT_FOUND",
            DimensionNotFound => "DIMENSION_NOT_FOUND",
            MetricNotFound => "METRIC_NOT_FOUND",
            JobNotFound => "JOB_NOT_FOUND",
            RouteNotFound => "ROUTE_NOT_FOUND",
            PageNotFound => "PAGE_NOT_FOUND",
            MethodNotAllowed => "METHOD_NOT_ALLOWED",
            UriTooLong => "URI_TOO_LONG",
            RequestTargetInvalid => "REQUEST_TARGET_INVALID",
            Unauthorized => "UNAUTHORIZED",
            Forbidden => "FORBIDDEN",
            ShareUrlInvalid => "SHARE_URL_INVALID",
            ShareLinkInvalid => "SHARE_LINK_INVALID",
            ShareLinkExpired => "SHARE_LINK_EXPIRED",
            RateLimited => "RATE_LIMITED",
            ResultTooLarge => "RESULT_TOO_LARGE",
            TableSchemaUndefined => "TABLE_SCHEMA_UNDEFINED",
            DataFileUnreadable => "DATA_FILE_UNREADABLE",
            QueryCanceled => "QUERY_CANCELED",
            JobStoreUnavailable => "JOB_STORE_UNAVAILABLE",
            JobQuotaExceeded => "JOB_QUOTA_EXCEEDED",
            JobOrphaned => "JOB_ORPHANED",
            JobInterrupted => "JOB_INTERRUPTED",
            JobResultsCorrupt => "JOB_RESULTS_CORRUPT",
            ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ClusterUnavailable => "CLUSTER_UNAVAILABLE",
            ServerBusy => "SERVER_BUSY",
            Internal => "INTERNAL",
        }
    }
}

/// The error every request path returns: a reason code and the user-facing message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Error {
    pub reason: Reason,
    pub message: String,
}

impl Error {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Error { reason, message: message.into() }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(Reason::Internal, message)
    }

    pub fn status(&self) -> u16 {
        self.reason.status()
    }

    /// Fili's error JSON body. `druid_query` carries the resolved plan where one exists.
    pub fn body(&self, request_id: &str, druid_query: Option<Value>) -> Value {
        json!({
            "status": self.status(),
            "statusName": status_name(self.status()),
            "reason": self.reason.code(),
            "description": self.message,
            "druidQuery": druid_query.unwrap_or(Value::Null),
            "requestId": request_id,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.reason.code())
    }
}

impl std::error::Error for Error {}

/// The reason phrase Fili prints in `statusName` (507 has none, so it prints the number).
pub fn status_name(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        507 => "507",
        _ => "Error",
    }
}

/// Java's `List.toString()` rendering (`[a, b]`), which Fili's messages embed.
pub fn java_list<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<&str> = items.iter().map(|s| s.as_ref()).collect();
    format!("[{}]", parts.join(", "))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_fili_shape() {
        let e = Error::new(Reason::MetricUndefined, "Metric(s) '[x]' do not exist.");
        let b = e.body("rid", None);
        assert_eq!(b["status"], 400);
        assert_eq!(b["statusName"], "Bad Request");
        assert_eq!(b["reason"], "METRIC_UNDEFINED");
        assert_eq!(b["description"], "Metric(s) '[x]' do not exist.");
        assert!(b["druidQuery"].is_null());
        assert_eq!(b["requestId"], "rid");
        let keys: Vec<&String> = b.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["status", "statusName", "reason", "description", "druidQuery", "requestId"]);
    }

    #[test]
    fn too_large_is_507_with_numeric_status_name() {
        let e = Error::new(Reason::ResultTooLarge, "x");
        assert_eq!(e.status(), 507);
        assert_eq!(e.body("r", None)["statusName"], "507");
    }

    #[test]
    fn java_list_formats_like_java() {
        assert_eq!(java_list(&["bad", "worse"]), "[bad, worse]");
        assert_eq!(java_list::<&str>(&[]), "[]");
    }

    #[test]
    fn reasons_serialise_as_their_codes() {
        use Reason::*;
        for r in
            [DateTimeMissing, TopNInvalid, TopNWithoutSort, MetricNotInTable, TableNotFound, ShareLinkExpired, Internal]
        {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.code()));
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), r);
        }
    }
}
