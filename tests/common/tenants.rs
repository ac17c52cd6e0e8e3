//! A multi-tenant server: the flights table, a second table `vault` with a dimension and a
//! metric only it offers, and roles that see one, the other, or flights under a row-level
//! filter.

use super::*;

/// The second tenant's table (a copy of the flights file under another name).
pub const VAULT_TOML: &str = r#"
[table.vault]
longName = "Vault"
description = "Another tenant's table"
grains = ["day", "all"]
dimensions = ["carrier", "vaultCode"]
metrics = ["flights", "vaultCount"]

[[table.vault.physical]]
name = "vault_raw"
path = "data/vault.parquet"
time_column = "time_hour"
grain = "hour"

[dimension.vaultCode]
longName = "Vault code"
description = "Only the vault has it"
category = "Vault"
column = "dest"

[metric.vaultCount]
longName = "Vault count"
description = "Only the vault offers it"
aggregation = "count"
"#;

/// Tokens and roles; `H(name)` is replaced by the hash of the token `t-name`.
pub const ROLES: &str = r#"
[auth]
enabled = true

[[auth.tokens]]
sha256 = "H(fl)"
user = "flo"
roles = ["fl"]

[[auth.tokens]]
sha256 = "H(jfk)"
user = "jo"
roles = ["jfk"]

[[auth.tokens]]
sha256 = "H(vault)"
user = "val"
roles = ["vault"]

[[auth.tokens]]
sha256 = "H(admin)"
user = "ada"
roles = ["ops"]

[[auth.tokens]]
sha256 = "H(nojobs)"
user = "nick"
roles = ["nojobs"]

[auth.roles.fl]
tables = ["flights"]

[auth.roles.jfk]
tables = ["flights"]
filters = "origin|id-in[JFK]"

[auth.roles.vault]
tables = ["vault"]

[auth.roles.ops]
admin = true

[auth.roles.nojobs]
scopes = ["meta", "data"]
tables = ["flights"]
"#;

/// The row-level role's filter, as a `filters` value.
pub const JFK_FILTER: &str = "origin|id-in[JFK]";

/// A scratch config with both tables and the roles; `edit` may change it before start.
pub fn tenants_config(edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = scratch_config();
    let d = dir.path();
    std::fs::copy(d.join("data/flights.parquet"), d.join("data/vault.parquet")).unwrap();
    std::fs::write(d.join("config/tables/vault.toml"), VAULT_TOML).unwrap();
    let mut roles = ROLES.to_string();
    for name in ["fl", "jfk", "vault", "admin", "nojobs"] {
        roles = roles.replace(&format!("H({name})"), &quiver::auth::hash_token(&format!("t-{name}")));
    }
    let p = d.join("config/gateway.toml");
    let s = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, format!("{s}\n{roles}")).unwrap();
    edit(d);
    dir
}

/// Starts the multi-tenant server.
pub async fn tenants() -> (Server, tempfile::TempDir) {
    let dir = tenants_config(|_| {});
    let s = start(&dir.path().join("config")).await;
    (s, dir)
}

/// A GET as the holder of token `t-{who}`, or with no token for `None`.
pub async fn as_role(s: &Server, who: Option<&str>, path: &str) -> Resp {
    match who {
        Some(w) => get_with(s, path, &[("authorization", &format!("Bearer t-{w}"))]).await,
        None => get(s, path).await,
    }
}

/// Percent-encodes a query parameter value.
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
