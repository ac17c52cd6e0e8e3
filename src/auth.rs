//! Identity (DESIGN §6): bearer tokens stored as SHA-256 hashes map to a user and roles;
//! roles grant scopes, tables and row-level filters. With auth off everyone is `anonymous`.

use crate::config::AuthConfig;
use crate::error::{Error, Reason};
use crate::grammar::filters::{self, FilterClause};
use crate::share::Signer;
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
    /// Identified by a token (false when auth is off, and for a share link's holder, who
    /// is limited by address).
    pub authenticated: bool,
    /// The SHA-256 of the token that identified the caller (empty when none did).
    pub token: String,
    /// Acting through a share link: the signer's grants, for that link's query only.
    pub shared: bool,
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
            token: String::new(),
            shared: false,
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

    /// Whether a role grants `table` (see [`crate::access`] for what follows from it).
    pub fn may_read_table(&self, table: &str) -> bool {
        self.tables.as_ref().is_none_or(|t| t.contains(table))
    }
}

/// The parts of a share link that identify its signer.
pub struct ShareClaim<'a> {
    pub user: &'a str,
    pub expires: &'a str,
    pub signature: &'a str,
    /// The link's query in canonical form.
    pub canonical: &'a str,
}

/// The token of an `Authorization: Bearer <token>` header value.
fn bearer(authorization: Option<&str>) -> Option<&str> {
    authorization
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Hex SHA-256 of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Token lookup and role resolution.
pub struct Auth {
    enabled: bool,
    tokens: HashMap<String, Principal>,
    status_token: String,
    /// How long a share link signed now works (`auth.share_link_seconds`).
    pub share_link_seconds: u64,
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
                token: t.sha256.to_ascii_lowercase(),
                shared: false,
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
        Auth {
            enabled: cfg.enabled,
            tokens,
            status_token: cfg.status_token_sha256.to_ascii_lowercase(),
            share_link_seconds: cfg.share_link_seconds,
        }
    }

    /// Whether operational detail is protected: auth is on, or a status token is set.
    pub fn guards_operations(&self) -> bool {
        self.enabled || !self.status_token.is_empty()
    }

    /// Whether the caller may see operational detail (the full `/status`, `/metrics`): it
    /// presents the configured status token, or with auth on an admin's token.
    pub fn is_operator(&self, authorization: Option<&str>) -> bool {
        let Some(token) = bearer(authorization) else { return false };
        let hash = hash_token(token);
        (!self.status_token.is_empty() && hash == self.status_token)
            || (self.enabled && self.tokens.get(&hash).is_some_and(|p| p.admin))
    }

    /// The principal a share link acts as: its signer's grants, the data scope only, limited
    /// by the holder's address. Refused when the signature does not match (the query was
    /// changed, or the link is forged), the link has expired, or the signer's token is no
    /// longer configured.
    pub fn identify_share(&self, signer: &Signer, claim: &ShareClaim, now_s: i64) -> Result<Principal, Error> {
        let invalid = || {
            Error::new(
                Reason::ShareLinkInvalid,
                "This share link is not valid: the query was changed after it was signed, the link is damaged, or its signer's access was removed. Ask for a new link (GET /v1/share).",
            )
        };
        let expires: i64 = claim.expires.parse().map_err(|_| invalid())?;
        let p = self
            .tokens
            .values()
            .filter(|p| p.user == claim.user)
            .find(|p| signer.verify(&p.user, &p.token, expires, claim.canonical, claim.signature))
            .ok_or_else(invalid)?;
        if now_s >= expires {
            return Err(Error::new(
                Reason::ShareLinkExpired,
                format!(
                    "This share link expired at {}. Ask for a new link (GET /v1/share).",
                    chrono::DateTime::from_timestamp(expires, 0).map(|t| t.to_rfc3339()).unwrap_or_default()
                ),
            ));
        }
        Ok(Principal { scopes: [Scope::Data].into_iter().collect(), authenticated: false, shared: true, ..p.clone() })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The principal of an `Authorization` header value.
    pub fn identify(&self, authorization: Option<&str>) -> Result<Principal, Error> {
        if !self.enabled {
            return Ok(Principal::anonymous());
        }
        let token = bearer(authorization).ok_or_else(|| {
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
            ..Default::default()
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
