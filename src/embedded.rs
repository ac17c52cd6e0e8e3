//! The embedded data set (NYC flights 2013) and its catalog, compiled into the binary, so that
//! `quiver serve` with no configuration works from any directory on any machine; and the
//! per-user directories (XDG) quiver keeps things in when nobody said where.

use std::path::{Path, PathBuf};

/// Every embedded file, by its path under the unpacked root.
const FILES: &[(&str, &[u8])] = &[
    ("config/gateway.toml", include_bytes!("../config/gateway.toml")),
    ("config/tables/flights.toml", include_bytes!("../config/tables/flights.toml")),
    ("data/README.md", include_bytes!("../data/README.md")),
    ("data/flights.parquet", include_bytes!("../data/flights.parquet")),
    ("data/flights_day.parquet", include_bytes!("../data/flights_day.parquet")),
    ("data/airlines.csv", include_bytes!("../data/airlines.csv")),
    ("data/airports.csv", include_bytes!("../data/airports.csv")),
    ("data/planes.csv", include_bytes!("../data/planes.csv")),
];

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(fallback)))
        .unwrap_or_else(std::env::temp_dir)
        .join("quiver")
}

/// Where quiver keeps data it unpacks: `$XDG_DATA_HOME/quiver` (`~/.local/share/quiver`).
pub fn data_home() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share")
}

/// Where quiver keeps state (jobs) when the configuration does not say:
/// `$XDG_STATE_HOME/quiver` (`~/.local/state/quiver`).
pub fn state_home() -> PathBuf {
    xdg("XDG_STATE_HOME", ".local/state")
}

/// Unpacks the embedded files under `root` (again only when this build's files differ from
/// what is there) and returns the configuration directory.
pub fn unpack(root: &Path) -> Result<PathBuf, String> {
    let stamp = format!("{} {}", env!("CARGO_PKG_VERSION"), FILES.iter().map(|(_, b)| b.len()).sum::<usize>());
    let marker = root.join(".unpacked");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == stamp) {
        return Ok(root.join("config"));
    }
    for (rel, bytes) in FILES {
        let path = root.join(rel);
        let dir = path.parent().unwrap_or(root);
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // Write beside, then rename: a second process unpacking at once never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    std::fs::write(&marker, stamp).map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(root.join("config"))
}

/// The embedded set's root for this build: `data_home()/embedded-VERSION`.
pub fn root() -> PathBuf {
    data_home().join(format!("embedded-{}", env!("CARGO_PKG_VERSION")))
}
