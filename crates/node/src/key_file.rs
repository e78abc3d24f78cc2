//! Key files: one ed25519 private key per file, as the 64 hex characters of its 32-byte seed
//! (the form PyNaCl's `SigningKey(bytes.fromhex(...))` takes), written with mode 0600 and
//! refused when others can read them.

use crate::error::NodeError;
use crate::hex;
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_cryptography::ed25519;
use rand_core::Rng as _;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use tally_chain::keys::{PUBLIC_KEY_SIZE, is_strong_key, public_key};

/// The size of a private key's seed.
pub const SEED_SIZE: usize = 32;

/// A new private key from the operating system's randomness.
pub fn generate() -> ed25519::PrivateKey {
    let mut seed = [0u8; SEED_SIZE];
    commonware_utils::sys_rng().fill_bytes(&mut seed);
    let key = ed25519::PrivateKey::decode(seed.to_vec()).expect("any 32 bytes are a seed");
    seed.fill(0);
    key
}

/// The hex text of a private key's seed.
pub fn private_key_hex(key: &ed25519::PrivateKey) -> String {
    hex::encode(&key.encode())
}

/// The hex text of a public key.
pub fn public_key_hex(key: &ed25519::PublicKey) -> String {
    hex::encode(key.as_ref())
}

/// Parses a public key from 64 hex characters, refusing weak keys.
pub fn parse_public_key(text: &str) -> Result<ed25519::PublicKey, String> {
    let bytes = hex::decode(text, PUBLIC_KEY_SIZE)?;
    let key = ed25519::PublicKey::decode(bytes).map_err(|_| "is not an ed25519 public key".to_string())?;
    if !is_strong_key(&key) {
        return Err("is a weak key (small order or non-canonical)".to_string());
    }
    Ok(key)
}

/// Writes a new key file with mode 0600. Never overwrites an existing file.
pub fn write(path: &Path, key: &ed25519::PrivateKey) -> Result<(), NodeError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| NodeError::io(path, source))?;
    let text = format!("{}\n", private_key_hex(key));
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(|source| NodeError::io(path, source))
}

/// Whether only the owner can read `path`, which holds `secret`: `None` if so, or else what is
/// wrong and the command that fixes it.
pub fn check_private(path: &Path, secret: &str) -> Result<Option<String>, NodeError> {
    let metadata = std::fs::metadata(path).map_err(|source| NodeError::io(path, source))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    Ok(Some(format!("mode {mode:o} lets the group or others read {secret}; run `chmod 600 {}`", path.display())))
}

/// Reads a key file written by `write` (or by hand: 64 hex characters, surrounding whitespace
/// allowed). Refuses files that the group or others can read.
pub fn read(path: &Path) -> Result<ed25519::PrivateKey, NodeError> {
    let problem = |problem: String| NodeError::KeyFile { path: path.to_path_buf(), problem };
    if let Some(why) = check_private(path, "the private key")? {
        return Err(problem(why));
    }
    let text = std::fs::read_to_string(path).map_err(|source| NodeError::io(path, source))?;
    let seed = hex::decode(text.trim(), SEED_SIZE).map_err(|why| problem(format!("the key {why}")))?;
    let key = ed25519::PrivateKey::decode(seed.to_vec()).map_err(|_| problem("not an ed25519 seed".into()))?;
    if !is_strong_key(&public_key(&key)) {
        return Err(problem("the key's public half is weak".into()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_keys_read_back_and_stay_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.key");
        let key = generate();
        write(&path, &key).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(public_key(&read(&path).unwrap()), public_key(&key));
        // Never overwritten.
        assert!(matches!(write(&path, &generate()), Err(NodeError::Io { .. })));
        // Readable by others: refused.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains(&format!("chmod 600 {}", path.display())), "{error}");
        assert!(error.contains("mode 644"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("group or others"));
    }

    #[test]
    fn malformed_key_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.key");
        std::fs::write(&path, "abc\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("64 hex characters"), "{error}");
    }

    #[test]
    fn public_keys_parse_from_hex() {
        let key = public_key(&generate());
        assert_eq!(parse_public_key(&public_key_hex(&key)).unwrap(), key);
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(parse_public_key(&hex::encode(&identity)).unwrap_err().contains("weak"));
    }
}
