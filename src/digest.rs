//! Content digests that name things: cache keys, ETags, snapshot fingerprints.

use sha2::{Digest, Sha256};

/// Hex SHA-256 of the parts, each followed by a newline (so `["ab", "c"]` and `["a", "bc"]`
/// differ).
pub fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}
