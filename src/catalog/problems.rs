//! What building a catalog shares between its parts: where problems are collected (each
//! naming its file and key), the names defined so far, and what a name may be.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Names defined in some file (even if their definition has problems), so one mistake is
/// not reported again as "not defined" wherever the name is used.
pub(super) struct Defined {
    pub(super) dims: std::collections::BTreeSet<String>,
    pub(super) metrics: std::collections::BTreeSet<String>,
    /// Footers already read by the snapshot being replaced, by path.
    pub(super) footers: HashMap<PathBuf, Arc<super::physical::DataFile>>,
}

pub(super) struct Problems<'a> {
    file: &'a Path,
    out: &'a mut Vec<String>,
}

impl<'a> Problems<'a> {
    pub(super) fn new(file: &'a Path, out: &'a mut Vec<String>) -> Self {
        Problems { file, out }
    }

    pub(super) fn add(&mut self, key: &str, msg: impl std::fmt::Display) {
        self.out.push(format!("{}: key `{key}`: {msg}", self.file.display()));
    }
}

/// Whether `name` is usable as a table, dimension or metric name: letters, digits and `_`.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
