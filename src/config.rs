//! Gateway settings (`config/gateway.toml`): typed, with a documented default per field.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default). Names follow
//! Fili's configuration keys (spec §12) where Fili has one.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole `gateway.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    pub server: ServerConfig,
    pub query: QueryConfig,
    pub limits: LimitsConfig,
    pub jobs: JobsConfig,
    pub catalog: CatalogConfig,
    pub auth: AuthConfig,
    pub cache: CacheConfig,
    pub distributed: DistributedConfig,
}

/// The result cache and HTTP caching (issue 15).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Bytes of answers kept in memory (least recently used out); 0 turns the cache off.
    /// Default 268435456 (256 MiB).
    pub max_bytes: u64,
    /// How long an answer is kept at most, in seconds (a new data snapshot drops it at once).
    /// Default 300.
    pub ttl_seconds: u64,
    /// `Cache-Control: max-age` of data answers, in seconds: how long a browser or proxy may
    /// reuse one without asking (it then revalidates with its ETag). Default 0.
    pub max_age_seconds: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { max_bytes: 256 << 20, ttl_seconds: 300, max_age_seconds: 0 }
    }
}

/// Identity (DESIGN §6): off by default, everyone is `anonymous`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require `Authorization: Bearer <token>` on every endpoint but `/status`. Default false.
    pub enabled: bool,
    /// Known tokens, by the SHA-256 of the secret (print one with `quiver token`).
    pub tokens: Vec<TokenConfig>,
    /// Roles by name.
    pub roles: std::collections::BTreeMap<String, RoleConfig>,
    /// SHA-256 of a token that shows the detailed `/status` and `/metrics` (for monitoring,
    /// with auth on or off; with auth on an admin's token does too). Default none.
    pub status_token_sha256: String,
    /// The key signing share links (`/v1/share`). Default none: a random one is generated
    /// on first use and kept in `share.key` in the job store's directory.
    pub share_secret: String,
    /// How long a share link works, in seconds. Default 604800 (7 days).
    pub share_link_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: false,
            tokens: vec![],
            roles: Default::default(),
            status_token_sha256: String::new(),
            share_secret: String::new(),
            share_link_seconds: 7 * 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Lower-case hex SHA-256 of the token. Required.
    pub sha256: String,
    /// The user the token belongs to. Required.
    pub user: String,
    /// Role names. Default none.
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoleConfig {
    /// API scopes: `meta` (metadata endpoints), `data` (/data), `jobs` (/jobs). Default all.
    pub scopes: Vec<String>,
    /// Tables the role may query; `*` = all. Default `["*"]`.
    pub tables: Vec<String>,
    /// Row-level filters in the filters grammar, ANDed into every query and dimension-values
    /// listing of the role. Default none.
    pub filters: String,
    /// Sees every user's jobs and the detailed `/status`. Default false.
    pub admin: bool,
    /// Members get `limits.request_limit_ui` concurrent data queries instead of
    /// `request_limit_per_user` (for a dashboard's service account). Default false.
    pub ui: bool,
}

impl Default for RoleConfig {
    fn default() -> Self {
        RoleConfig {
            scopes: vec!["meta".into(), "data".into(), "jobs".into()],
            tables: vec!["*".into()],
            filters: String::new(),
            admin: false,
            ui: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1`.
    pub bind: String,
    /// TCP port. Default 9998 (Fili's).
    pub port: u16,
    /// Root of the API paths. Default `/v1`.
    pub api_root: String,
    /// Longest accepted request URI in bytes; longer gets 414. Default 16384.
    pub max_uri_length: usize,
    /// Seconds a client has to send a complete request head, counted from the moment the
    /// server starts waiting for it (on a new connection, or after the previous response on a
    /// keep-alive one, so it is also the idle keep-alive timeout); past it the connection is
    /// closed. Default 10.
    pub header_read_timeout_seconds: u64,
    /// Seconds a response may make no progress because the client does not read it; past it
    /// the connection is closed and everything the response held is released. Default 30.
    pub write_timeout_seconds: u64,
    /// Open connections across all clients; past it new connections get a 503 and are
    /// closed. Default 1000.
    pub max_connections: usize,
    /// Open connections from one client address; past it new ones get a 503. Default 256.
    pub max_connections_per_client: usize,
    /// Seconds SIGTERM/SIGINT waits for open requests before closing every connection.
    /// Default 30.
    pub shutdown_deadline_seconds: u64,
    /// Addresses (`10.0.0.1`) or networks (`10.0.0.0/8`) of reverse proxies whose
    /// `X-Forwarded-For` names the client. Requests from anywhere else are identified by their
    /// own address whatever that header says. Default none.
    pub trusted_proxies: Vec<String>,
    /// Origins (`https://dash.example.com`) whose pages may call the API from a browser
    /// with credentials, or `*` for any page without credentials. Default none: no CORS
    /// headers beyond `Vary: Origin`.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1".into(),
            port: 9998,
            api_root: "/v1".into(),
            max_uri_length: 16384,
            header_read_timeout_seconds: 10,
            write_timeout_seconds: 30,
            max_connections: 1000,
            max_connections_per_client: 256,
            shutdown_deadline_seconds: 30,
            trusted_proxies: vec![],
            cors_allowed_origins: vec![],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(non_snake_case)]
pub struct QueryConfig {
    /// Zone for parsing `dateTime` and bucketing when `timeZone` is absent. Default `UTC`.
    pub timezone: String,
    /// `asyncAfter` when the request has none: `never`, `always` or milliseconds. Default `never`.
    pub default_asyncAfter: String,
    /// Page size of metadata listings and dimension values. Default 10000.
    pub default_per_page: usize,
    /// Most occurrences one RRULE may produce. Default 100 (Fili's spelling kept).
    pub rrule_max_occurences: u16,
    /// Allow `startswith`/`contains` filters on `/data`. Default true.
    pub data_filter_substring_operations_enabled: bool,
    /// Report `missingIntervals` for buckets the data does not cover. Default true.
    pub partial_data_enabled: bool,
    /// Truncate download file names to this many characters; <= 0 disables. Default -1.
    pub download_file_max_name_length: i64,
    /// Most filter values after resolving non-key filters to keys. Default 10000.
    pub max_num_filter_values: usize,
    /// Most groups (time buckets × dimension combinations) one query may build; past it 507.
    /// Default 5,000,000.
    pub max_groups: usize,
    /// Most time buckets one request's intervals may span at its grain; past it 400.
    /// Default 10,000,000.
    pub max_buckets: usize,
    /// Most bytes of aggregation state one query worker may hold; past it 507.
    /// Default 2 GiB.
    pub max_query_bytes: usize,
    /// Bytes of results held for responses being written (or waiting for a slow client), in
    /// all. A query whose result would pass it gets 503 with `Retry-After`. Default 1 GiB.
    pub max_inflight_bytes: usize,
    /// The same budget per caller; past it 429 with `Retry-After`. Default 256 MiB.
    pub max_inflight_bytes_per_user: usize,
    /// Nice value of the threads that scan, render and write job files, so that `/status`,
    /// `/metrics` and metadata stay responsive under heavy queries (0 leaves them alone).
    /// Default 10.
    pub worker_nice: i32,
    /// Worker threads for one query's scan; 0 = number of cores. Default 0.
    pub scan_threads: usize,
    /// Read flat, PLAIN or dictionary-encoded row groups with the engine's own
    /// page decoder (dictionary indices grouped and filtered directly); false sends every
    /// row group through the Arrow reader. Default true.
    pub page_decoder: bool,
    /// Bytes of decompressed column chunks the page decoder keeps in memory (least recently
    /// used leave first; a chunk read whole enters it), as Druid keeps segments in its
    /// segment cache. Work avoided, not made faster; 0 turns it off. Default 256 MiB.
    pub chunk_cache_bytes: u64,
    /// CSV text cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
    /// `@`, tab or carriage return, and not a plain number) are prefixed with `'` (OWASP's
    /// CSV-injection guidance). Default true.
    pub csv_formula_protection: bool,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            timezone: "UTC".into(),
            default_asyncAfter: "never".into(),
            default_per_page: 10000,
            rrule_max_occurences: 100,
            data_filter_substring_operations_enabled: true,
            partial_data_enabled: true,
            download_file_max_name_length: -1,
            max_num_filter_values: 10000,
            max_groups: 5_000_000,
            max_buckets: 10_000_000,
            max_query_bytes: 2 << 30,
            max_inflight_bytes: 1 << 30,
            max_inflight_bytes_per_user: 256 << 20,
            worker_nice: 10,
            scan_threads: 0,
            page_decoder: true,
            chunk_cache_bytes: 256 << 20,
            csv_formula_protection: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Concurrent `/data` requests across all users; -1 disables. Default 70.
    pub request_limit_global: i64,
    /// Concurrent `/data` requests per user; -1 disables. Default 2.
    pub request_limit_per_user: i64,
    /// Per-user limit for principals whose role has `ui = true` (never chosen by a request
    /// header). Default 52.
    pub request_limit_ui: i64,
    /// Requests per second per user (governor); 0 disables. Default 0.
    pub rate_per_user: u32,
    /// Burst allowed above `rate_per_user`. Default equal to the rate.
    pub rate_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            request_limit_global: 70,
            request_limit_per_user: 2,
            request_limit_ui: 52,
            rate_per_user: 0,
            rate_burst: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Directory holding the job database and result files, relative to the config directory.
    /// Default `../var/jobs`.
    pub dir: String,
    /// Seconds after which finished jobs and their results are deleted. Default 7 days.
    pub expiry_seconds: u64,
    /// Pending jobs one user may have; past it new jobs get 429. Default 10.
    pub max_pending_per_user: usize,
    /// Jobs one user may have stored (pending or finished, until they expire); past it new
    /// jobs get 429. Default 1000.
    pub max_jobs_per_user: usize,
    /// Bytes of stored results one user may hold; past it new jobs get 429 until old ones
    /// expire. Default 1 GiB.
    pub max_result_bytes_per_user: u64,
    /// A pending job whose status or results nobody has asked for in this many seconds is
    /// canceled (reported `canceled`, reason `JOB_ORPHANED`); 0 disables. Default 600.
    pub orphan_seconds: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            dir: "../var/jobs".into(),
            expiry_seconds: 7 * 24 * 3600,
            max_pending_per_user: 10,
            max_jobs_per_user: 1000,
            max_result_bytes_per_user: 1 << 30,
            orphan_seconds: 600,
        }
    }
}

/// `[distributed]`: the Apache DataFusion Ballista cluster that runs the physical tables
/// marked `engine = "distributed"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DistributedConfig {
    /// The scheduler, `df://host:port`. Default empty: no cluster.
    pub scheduler: String,
    /// Most seconds a query may take on the cluster; past it the Ballista job is canceled
    /// and the answer is 503 CLUSTER_UNAVAILABLE. Default 60.
    pub timeout_seconds: f64,
    /// How often the scheduler is probed for `/status` (reachability, executors); a failed
    /// probe marks the distributed tables degraded. 0 = never. Default 5.
    pub probe_seconds: f64,
    /// Most seconds one probe may take. Default 2.
    pub probe_timeout_seconds: f64,
}

impl Default for DistributedConfig {
    fn default() -> Self {
        DistributedConfig {
            scheduler: String::new(),
            timeout_seconds: 60.0,
            probe_seconds: 5.0,
            probe_timeout_seconds: 2.0,
        }
    }
}

impl DistributedConfig {
    /// The scheduler's host and port, from `df://host:port`.
    pub fn address(&self) -> Result<(String, u16), String> {
        let s = &self.scheduler;
        let bad = || format!("key `distributed.scheduler`: '{s}' is not of the form 'df://host:port'");
        s.strip_prefix("df://").and_then(host_port).ok_or_else(bad)
    }

    fn validate(&self) -> Result<(), String> {
        if !self.scheduler.is_empty() {
            self.address()?;
        }
        for (key, v) in
            [("timeout_seconds", self.timeout_seconds), ("probe_timeout_seconds", self.probe_timeout_seconds)]
        {
            if !(v > 0.0 && v <= 86_400.0) {
                return Err(format!("key `distributed.{key}`: expected seconds between 0 and 86400, got {v}"));
            }
        }
        if !(self.probe_seconds >= 0.0 && self.probe_seconds <= 86_400.0) {
            return Err(format!(
                "key `distributed.probe_seconds`: expected 0 (never) to 86400, got {}",
                self.probe_seconds
            ));
        }
        Ok(())
    }
}

/// `host:port` (an IPv6 host in brackets) → (host, port); `None` if it is not one.
pub fn host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    if host.is_empty() || host.contains('/') {
        return None;
    }
    Some((host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Directory that relative data paths in `tables/*.toml` are resolved against, itself
    /// relative to the config directory. Default `..` (config/ and data/ side by side).
    pub data_root: String,
    /// Directory of table files, relative to the config directory. Default `tables`.
    pub tables_dir: String,
    /// How often the files under every physical table's path are compared with the serving
    /// snapshot; a change builds a new one. 0 = only on SIGHUP. Default 10.
    pub refresh_seconds: u64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig { data_root: "..".into(), tables_dir: "tables".into(), refresh_seconds: 10 }
    }
}

impl GatewayConfig {
    /// Reads `DIR/gateway.toml`; a missing file means all defaults.
    pub fn load(dir: &Path) -> Result<GatewayConfig, String> {
        let path = dir.join("gateway.toml");
        if !path.exists() {
            return Ok(GatewayConfig::default());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let cfg: GatewayConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), toml_message(&text, &e)))?;
        cfg.validate().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        self.distributed.validate()?;
        if self.query.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(format!(
                "key `query.timezone`: '{}' is not an IANA time zone id (e.g. UTC, America/New_York)",
                self.query.timezone
            ));
        }
        crate::grammar::async_after::parse(&self.query.default_asyncAfter).map_err(|_| {
            format!(
                "key `query.default_asyncAfter`: '{}' must be never, always or milliseconds",
                self.query.default_asyncAfter
            )
        })?;
        if self.query.default_per_page == 0 {
            return Err("key `query.default_per_page`: expected a positive integer".into());
        }
        for (i, t) in self.auth.tokens.iter().enumerate() {
            if t.sha256.len() != 64 || !t.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("key `auth.tokens[{i}].sha256`: expected 64 hex characters (see `quiver token`)"));
            }
            for r in &t.roles {
                if !self.auth.roles.contains_key(r) {
                    return Err(format!("key `auth.tokens[{i}].roles`: role '{r}' is not defined under [auth.roles]"));
                }
            }
        }
        for (name, r) in &self.auth.roles {
            for s in &r.scopes {
                if !["meta", "data", "jobs"].contains(&s.as_str()) {
                    return Err(format!("key `auth.roles.{name}.scopes`: '{s}' is not one of meta, data, jobs"));
                }
            }
            crate::grammar::filters::parse(&r.filters).map_err(|e| format!("key `auth.roles.{name}.filters`: {e}"))?;
        }
        crate::net::parse_all(&self.server.trusted_proxies)
            .map_err(|e| format!("key `server.trusted_proxies`: {e}"))?;
        for o in &self.server.cors_allowed_origins {
            if !crate::net::valid_origin(o) {
                return Err(format!(
                    "key `server.cors_allowed_origins`: '{o}' is not an origin like 'https://host[:port]' (no path) or '*'"
                ));
            }
        }
        let st = &self.auth.status_token_sha256;
        if !st.is_empty() && (st.len() != 64 || !st.chars().all(|c| c.is_ascii_hexdigit())) {
            return Err("key `auth.status_token_sha256`: expected 64 hex characters (see `quiver token`)".into());
        }
        if self.auth.share_link_seconds == 0 {
            return Err("key `auth.share_link_seconds`: expected a positive number of seconds".into());
        }
        if !self.auth.share_secret.is_empty() && self.auth.share_secret.len() < 16 {
            return Err("key `auth.share_secret`: expected at least 16 characters".into());
        }
        if !self.server.api_root.starts_with('/') {
            return Err(format!("key `server.api_root`: '{}' must start with '/'", self.server.api_root));
        }
        Ok(())
    }

    pub fn data_root(&self, config_dir: &Path) -> PathBuf {
        config_dir.join(&self.catalog.data_root)
    }

    pub fn tables_dir(&self, config_dir: &Path) -> PathBuf {
        config_dir.join(&self.catalog.tables_dir)
    }

    pub fn jobs_dir(&self, config_dir: &Path) -> PathBuf {
        config_dir.join(&self.jobs.dir)
    }

    pub fn timezone(&self) -> chrono_tz::Tz {
        self.query.timezone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// A toml error as one line, `line L: message`, located in `text`.
pub fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {msg}")
        }
        None => msg.to_string(),
    }
}

/// The directory quiver uses when no `--config` (or `QUIVER_CONFIG`) is given: `./config` if
/// it holds a catalog, otherwise the embedded flights data set, unpacked once into the user's
/// data directory. The flag says which: `true` for the embedded set.
pub fn default_config_dir() -> Result<(PathBuf, bool), String> {
    let local = PathBuf::from("config");
    if local.join("tables").is_dir() {
        return Ok((local, false));
    }
    crate::embedded::unpack(&crate::embedded::root()).map(|d| (d, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_fili() {
        let c = GatewayConfig::default();
        assert_eq!(c.server.port, 9998);
        assert_eq!(c.query.default_per_page, 10000);
        assert_eq!(c.limits.request_limit_per_user, 2);
        assert_eq!(c.limits.request_limit_global, 70);
        assert_eq!(c.query.rrule_max_occurences, 100);
    }

    #[test]
    fn unknown_key_is_an_error() {
        let text = "[server]\nprot = 1\n";
        let e = toml::from_str::<GatewayConfig>(text).unwrap_err();
        assert!(toml_message(text, &e).contains("unknown field `prot`"), "{}", toml_message(text, &e));
    }
}
