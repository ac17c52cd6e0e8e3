//! Identity (DESIGN §6): bearer tokens stored as SHA-256 hashes map to a user and roles;
//! roles grant scopes, tables and row-level filters. With auth off everyone is `anonymous`.

use crate::config::AuthConfig;
use crate::error::{Error, Reason};
use crate::grammar::filters::{self, FilterClause};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Meta,
    Data,
    Jobs,
}

impl Scope {
    fn parse(s: &str) -> Option<Scope> {
        match s {
            "meta" => Some(Scope::Meta),
            "data" => Some(Scope::Data),
            "jobs" => Some(Scope::Jobs),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scope::Meta => "meta",
            Scope::Data => "data",
            Scope::Jobs => "jobs",
        }
    }
}

/// The caller, after authentication.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: String,
    pub scopes: HashSet<Scope>,
    /// `None` = every table.
    pub tables: Option<HashSet<String>>,
    /// Row-level filters ANDed into every query.
    pub filters: Vec<FilterClause>,
    /// Sees every user's jobs and the detailed `/status`.
    pub admin: bool,
    /// A role grants the UI concurrency limit (`ui = true`).
    pub ui: bool,
    /// Identified by a token (false when auth is off).
    pub authenticated: bool,
}

impl Principal {
    pub fn anonymous() -> Principal {
        Principal {
            user: "anonymous".into(),
            scopes: [Scope::Meta, Scope::Data, Scope::Jobs].into_iter().collect(),
            tables: None,
            filters: vec![],
            admin: false,
            ui: false,
            authenticated: false,
        }
    }

    /// The key limits and quotas count under: the user when authenticated, else the client
    /// address (so callers without a token do not share one budget, and no header can pick
    /// another's).
    pub fn limit_key(&self, client: std::net::IpAddr) -> String {
        if self.authenticated { format!("user:{}", self.user) } else { format!("addr:{client}") }
    }

    pub fn require(&self, scope: Scope) -> Result<(), Error> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(Error::new(
                Reason::Forbidden,
                format!("User '{}' is not allowed the '{}' scope.", self.user, scope.name()),
            ))
        }
    }

    pub fn may_read_table(&self, table: &str) -> bool {
        self.tables.as_ref().is_none_or(|t| t.contains(table))
    }

    pub fn require_table(&self, table: &str) -> Result<(), Error> {
        if self.may_read_table(table) {
            Ok(())
        } else {
            Err(Error::new(Reason::Forbidden, format!("User '{}' is not allowed to query table '{table}'.", self.user)))
        }
    }
}

/// Hex SHA-256 of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Token lookup and role resolution.
pub struct Auth {
    enabled: bool,
    tokens: HashMap<String, Principal>,
}

impl Auth {
    pub fn new(cfg: &AuthConfig) -> Auth {
        let mut tokens = HashMap::new();
        for t in &cfg.tokens {
            let mut p = Principal {
                user: t.user.clone(),
                scopes: HashSet::new(),
                tables: Some(HashSet::new()),
                filters: vec![],
                admin: false,
                ui: false,
                authenticated: true,
            };
            for r in t.roles.iter().filter_map(|r| cfg.roles.get(r)) {
                p.scopes.extend(r.scopes.iter().filter_map(|s| Scope::parse(s)));
                if r.tables.iter().any(|t| t == "*") {
                    p.tables = None;
                } else if let Some(ts) = &mut p.tables {
                    ts.extend(r.tables.iter().cloned());
                }
                // Every role's filters apply (the most restrictive reading).
                p.filters.extend(filters::parse(&r.filters).unwrap_or_default());
                p.admin |= r.admin;
                p.ui |= r.ui;
            }
            tokens.insert(t.sha256.to_ascii_lowercase(), p);
        }
        Auth { enabled: cfg.enabled, tokens }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The principal of an `Authorization` header value.
    pub fn identify(&self, authorization: Option<&str>) -> Result<Principal, Error> {
        if !self.enabled {
            return Ok(Principal::anonymous());
        }
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::new(Reason::Unauthorized, "Authentication required: send 'Authorization: Bearer <token>'.")
            })?;
        self.tokens
            .get(&hash_token(token))
            .cloned()
            .ok_or_else(|| Error::new(Reason::Unauthorized, "The bearer token is not valid."))
    }
}

/// A new random token (two UUIDs' worth of randomness) and its hash.
pub fn new_token() -> (String, String) {
    let token = format!("qv_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let hash = hash_token(&token);
    (token, hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RoleConfig, TokenConfig};

    fn cfg() -> AuthConfig {
        let mut roles = std::collections::BTreeMap::new();
        roles.insert(
            "jfk".into(),
            RoleConfig {
                scopes: vec!["data".into()],
                tables: vec!["flights".into()],
                filters: "origin|id-in[JFK]".into(),
                admin: false,
                ui: false,
            },
        );
        roles.insert("ops".into(), RoleConfig { admin: true, ..Default::default() });
        AuthConfig {
            enabled: true,
            tokens: vec![
                TokenConfig { sha256: hash_token("secret-a"), user: "ann".into(), roles: vec!["jfk".into()] },
                TokenConfig { sha256: hash_token("secret-b"), user: "bob".into(), roles: vec!["ops".into()] },
            ],
            roles,
        }
    }

    #[test]
    fn tokens_map_to_principals() {
        let a = Auth::new(&cfg());
        let ann = a.identify(Some("Bearer secret-a")).unwrap();
        assert_eq!(ann.user, "ann");
        assert!(ann.require(Scope::Data).is_ok());
        assert_eq!(ann.require(Scope::Meta).unwrap_err().status(), 403);
        assert!(ann.may_read_table("flights") && !ann.may_read_table("other"));
        assert_eq!(ann.filters.len(), 1);
        let bob = a.identify(Some("Bearer secret-b")).unwrap();
        assert!(bob.admin && bob.may_read_table("anything"));
        assert_eq!(a.identify(None).unwrap_err().status(), 401);
        assert_eq!(a.identify(Some("Bearer nope")).unwrap_err().status(), 401);
        assert_eq!(a.identify(Some("Basic abc")).unwrap_err().status(), 401);
    }

    #[test]
    fn disabled_means_anonymous() {
        let a = Auth::new(&AuthConfig::default());
        assert_eq!(a.identify(Some("Bearer whatever")).unwrap().user, "anonymous");
    }

    #[test]
    fn new_tokens_hash_consistently() {
        let (t, h) = new_token();
        assert_eq!(hash_token(&t), h);
        assert_eq!(h.len(), 64);
    }
}
