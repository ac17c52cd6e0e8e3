//! Signed share links (DESIGN §6): a link carries its query plus who signed it, until when,
//! and an HMAC-SHA256 over both. Anyone holding the link can run exactly that query, as its
//! signer would see it, without a token; any other change to it breaks the signature.
//!
//! Nothing is stored per link: the signature is checked against the server's key, and the
//! signer's token must still be configured, so removing a token revokes its links.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::path::Path;

/// The link parameter naming the signer.
pub const USER: &str = "shareUser";
/// The link parameter holding the expiry (Unix seconds).
pub const EXPIRES: &str = "shareExpires";
/// The link parameter holding the hex signature.
pub const SIGNATURE: &str = "shareSignature";
/// The parameters a link adds to its query.
pub const LINK_PARAMS: [&str; 3] = [USER, EXPIRES, SIGNATURE];

/// The key share links are signed with.
pub struct Signer {
    key: Vec<u8>,
}

/// The file, in the job store's directory, holding a generated key.
pub const KEY_FILE: &str = "share.key";

impl Signer {
    /// Signs with `key` as given.
    pub fn new(key: &[u8]) -> Signer {
        Signer { key: key.to_vec() }
    }

    /// The configured key, else the one in `dir/share.key`, created (readable by the owner
    /// only) with 244 random bits the first time.
    pub fn load(configured: &str, dir: &Path) -> Result<Signer, String> {
        if !configured.is_empty() {
            return Ok(Signer::new(configured.as_bytes()));
        }
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(k) if k.trim().len() >= 32 => return Ok(Signer::new(k.trim().as_bytes())),
            Ok(_) => return Err(format!("{} holds no usable key; delete it to make a new one", path.display())),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot read {}: {e}", path.display()));
            }
            Err(_) => {}
        }
        let key = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        write_private(&path, &key).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Signer::new(key.as_bytes()))
    }

    fn mac(&self, user: &str, token: &str, expires: i64, canonical: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        for part in ["quiver-share-v1", user, token, &expires.to_string(), canonical] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    /// The hex signature of `canonical` signed by `user` through the token hashed `token`.
    pub fn sign(&self, user: &str, token: &str, expires: i64, canonical: &str) -> String {
        hex::encode(self.mac(user, token, expires, canonical).finalize().into_bytes())
    }

    /// Whether `signature` is the one [`Signer::sign`] gives (compared in constant time).
    pub fn verify(&self, user: &str, token: &str, expires: i64, canonical: &str, signature: &str) -> bool {
        let Ok(sig) = hex::decode(signature) else { return false };
        self.mac(user, token, expires, canonical).verify_slice(&sig).is_ok()
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_part() {
        let s = Signer::new(b"0123456789abcdef");
        let sig = s.sign("ann", "h1", 100, "q");
        assert!(s.verify("ann", "h1", 100, "q", &sig));
        assert!(!s.verify("bob", "h1", 100, "q", &sig));
        assert!(!s.verify("ann", "h2", 100, "q", &sig));
        assert!(!s.verify("ann", "h1", 101, "q", &sig));
        assert!(!s.verify("ann", "h1", 100, "q2", &sig));
        assert!(!s.verify("ann", "h1", 100, "q", "zz"));
        assert!(!Signer::new(b"another key 1234").verify("ann", "h1", 100, "q", &sig));
    }

    #[test]
    fn a_generated_key_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let a = Signer::load("", d.path()).unwrap().sign("u", "t", 1, "q");
        let b = Signer::load("", d.path()).unwrap().sign("u", "t", 1, "q");
        assert_eq!(a, b);
        assert_ne!(Signer::load("configured secret!", d.path()).unwrap().sign("u", "t", 1, "q"), a);
    }
}
