//! A node's identity: an ed25519 key pair kept in `<data-dir>/node.key`
//! (PKCS#8 v2 DER, as ring writes it, mode 0600). The node id is the public
//! key, written as 64 lowercase hex digits; anyone can check a node's
//! signature with the id alone.

use crate::NetError;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file name of the key inside a node's data directory.
pub const KEY_FILE: &str = "node.key";

/// A node id: the node's ed25519 public key, 64 lowercase hex digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

impl NodeId {
    /// Parses a node id (64 hex digits, any case).
    pub fn parse(s: &str) -> Result<Self, NetError> {
        let lower = s.to_ascii_lowercase();
        if lower.len() != 64 || !lower.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NetError::Invalid(format!(
                "`{s}` is not a node id: expected 64 hex digits (an ed25519 public key)"
            )));
        }
        Ok(NodeId(lower))
    }

    /// The id as text (also its KV key and consumer-name form).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short form for logs and tables (first 12 hex digits).
    pub fn short(&self) -> &str {
        &self.0[..12]
    }

    /// Checks `signature_hex` over `message` against this id's public key.
    pub fn verify(&self, message: &[u8], signature_hex: &str) -> Result<(), NetError> {
        let bad = |detail: &str| NetError::BadSignature {
            node: self.0.clone(),
            detail: detail.to_string(),
        };
        let public = hex::decode(&self.0).map_err(|_| bad("node id is not hex"))?;
        let signature = hex::decode(signature_hex).map_err(|_| bad("signature is not hex"))?;
        UnparsedPublicKey::new(&ED25519, public)
            .verify(message, &signature)
            .map_err(|_| bad("ed25519 verification failed"))
    }
}

impl TryFrom<String> for NodeId {
    type Error = NetError;
    fn try_from(s: String) -> Result<Self, NetError> {
        NodeId::parse(&s)
    }
}

impl From<NodeId> for String {
    fn from(id: NodeId) -> String {
        id.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

/// A node's private key.
pub struct NodeKey {
    pair: Ed25519KeyPair,
    id: NodeId,
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey").field("id", &self.id).finish()
    }
}

impl NodeKey {
    /// A fresh key, kept in memory only (tests, throw-away clients).
    pub fn generate() -> Result<Self, NetError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| NetError::Invalid("the system random generator failed".into()))?;
        Self::from_pkcs8(pkcs8.as_ref(), "<memory>")
    }

    fn from_pkcs8(der: &[u8], path: &str) -> Result<Self, NetError> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| NetError::Key {
            path: path.to_string(),
            detail: format!(
                "not an ed25519 PKCS#8 key ({e}); move it away to let the node make a new identity"
            ),
        })?;
        let id = NodeId(hex::encode(pair.public_key().as_ref()));
        Ok(NodeKey { pair, id })
    }

    /// Loads `<data_dir>/node.key`, or creates it (mode 0600, written to a
    /// temporary file and renamed, so a crash never leaves half a key).
    /// A key readable by group or others is refused, as ssh does.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, NetError> {
        let path = data_dir.join(KEY_FILE);
        let shown = path.display().to_string();
        let key_err = |detail: String| NetError::Key {
            path: shown.clone(),
            detail,
        };
        match std::fs::read(&path) {
            Ok(der) => {
                check_private(&path).map_err(key_err)?;
                Self::from_pkcs8(&der, &shown)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)
                    .map_err(|e| key_err(format!("cannot create the data directory: {e}")))?;
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| key_err("the system random generator failed".into()))?;
                let tmp = tmp_path(&path);
                write_private(&tmp, pkcs8.as_ref())
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&tmp);
                        key_err(format!("cannot write the key: {e}"))
                    })?;
                Self::from_pkcs8(pkcs8.as_ref(), &shown)
            }
            Err(e) => Err(key_err(format!("cannot read: {e}"))),
        }
    }

    /// This node's id (its public key).
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// An ed25519 signature over `message`, as hex.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.pair.sign(message).as_ref())
    }
}

pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(unix)]
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(unix)]
pub(crate) fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot stat: {e}"))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "is readable by others (mode {:o}): run `chmod 600 {}`",
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_private(_path: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_private_and_signs() {
        let dir = tempfile::tempdir().unwrap();
        let a = NodeKey::load_or_create(dir.path()).unwrap();
        let b = NodeKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.id(), b.id(), "the second start reuses the key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sig = a.sign(b"hello");
        a.id().verify(b"hello", &sig).unwrap();
        assert!(a.id().verify(b"hellO", &sig).is_err());
        let other = NodeKey::generate().unwrap();
        assert!(other.id().verify(b"hello", &sig).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        NodeKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = NodeKey::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn node_ids_parse_strictly() {
        assert!(NodeId::parse("abc").is_err());
        assert!(NodeId::parse(&"g".repeat(64)).is_err());
        let id = NodeId::parse(&"AB".repeat(32)).unwrap();
        assert_eq!(id.as_str(), "ab".repeat(32));
    }
}
