//! Values derived from one catalog snapshot on first use and kept as long as the snapshot
//! lives: distinct dimension values, a role's view of the catalog, a role's dimension values
//! and availability under its row-level filters. A new snapshot starts with empty memos, so
//! nothing computed here can outlive the data it was computed from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A map from key to a value computed at most once per key (concurrent callers of one key
/// wait for the first; a failed computation is not kept, so the next caller tries again).
pub struct Memo<T> {
    slots: Mutex<HashMap<String, Arc<Mutex<Option<T>>>>>,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo { slots: Mutex::new(HashMap::new()) }
    }
}

impl<T> std::fmt::Debug for Memo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Memo({} keys)", lock(&self.slots).len())
    }
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T: Clone> Memo<T> {
    /// The value under `key`, computing it with `make` if no caller has yet.
    pub fn get_or_try<E>(&self, key: &str, make: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let slot = lock(&self.slots).entry(key.to_string()).or_default().clone();
        let mut value = lock(&slot);
        if let Some(v) = value.as_ref() {
            return Ok(v.clone());
        }
        let v = make()?;
        *value = Some(v.clone());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_once_and_retries_failures() {
        let m: Memo<u32> = Memo::default();
        let mut calls = 0;
        assert_eq!(m.get_or_try::<()>("a", || Err(())), Err(()));
        assert_eq!(
            m.get_or_try::<()>("a", || {
                calls += 1;
                Ok(7)
            }),
            Ok(7)
        );
        assert_eq!(
            m.get_or_try::<()>("a", || {
                calls += 1;
                Ok(8)
            }),
            Ok(7)
        );
        assert_eq!(calls, 1);
    }
}
