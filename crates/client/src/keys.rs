//! Client keys: a client signs its requests with an ed25519 private key whose public half is
//! listed in the chain's genesis.
//!
//! A key file holds the 32-byte private key (the ed25519 seed) as 64 hex digits; whitespace
//! around it and a `0x` prefix are ignored. It must be private (mode 0600, as `tally init`
//! writes it): whoever reads it can move money, so a file others can read is refused.

use crate::error::ClientError;
use crate::wire::{from_hex, hex};
use commonware_codec::{DecodeExt as _, Encode as _};
use rand_core::Rng as _;
use std::path::Path;
use tally_chain::keys::{ClientKey, ClientSigner};

/// Size of a private key (the ed25519 seed).
pub const PRIVATE_KEY_SIZE: usize = 32;

/// A private key from its 64 hex digits.
pub fn signer_from_hex(text: &str) -> Option<ClientSigner> {
    let text = text.trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    let bytes = from_hex(text)?;
    if bytes.len() != PRIVATE_KEY_SIZE {
        return None;
    }
    ClientSigner::decode(bytes).ok()
}

/// A private key as 64 hex digits (the form of a key file).
pub fn signer_to_hex(signer: &ClientSigner) -> String {
    hex(&signer.encode())
}

/// A public key as 64 hex digits (the form the API and the genesis use).
pub fn client_key_to_hex(key: &ClientKey) -> String {
    hex(key.as_ref())
}

/// A public key from its 64 hex digits.
pub fn client_key_from_hex(text: &str) -> Option<ClientKey> {
    let bytes = from_hex(text.trim())?;
    ClientKey::decode(bytes).ok()
}

/// Reads a key file.
pub fn load_signer(path: &Path) -> Result<ClientSigner, ClientError> {
    use std::os::unix::fs::PermissionsExt as _;
    let error = |reason: String| ClientError::KeyFile { path: path.to_path_buf(), reason };
    let metadata = std::fs::metadata(path).map_err(|io| error(io.to_string()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(error(format!("mode {mode:o} lets others read the private key; run `chmod 600` on it")));
    }
    let text = std::fs::read_to_string(path).map_err(|io| error(io.to_string()))?;
    signer_from_hex(&text)
        .ok_or_else(|| error(format!("expected {} hex digits of a private key", PRIVATE_KEY_SIZE * 2)))
}

/// A new private key from the operating system's randomness.
pub fn generate_signer() -> ClientSigner {
    let mut seed = [0u8; PRIVATE_KEY_SIZE];
    commonware_utils::sys_rng().fill_bytes(&mut seed);
    ClientSigner::decode(seed.to_vec()).expect("every 32-byte seed is a private key")
}

/// A request id from the operating system's randomness: 128 random bits, so that two ids of one
/// client never collide in practice. Never zero.
pub fn random_request_id() -> u128 {
    let mut rng = commonware_utils::sys_rng();
    loop {
        let id = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        if id != 0 {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;
    use tally_chain::keys::{public_key, signer_from_seed};

    #[test]
    fn key_files_round_trip() {
        let signer = signer_from_seed(5);
        let text = signer_to_hex(&signer);
        assert_eq!(text.len(), 64);
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("client.key");
        std::fs::write(&path, format!("0x{text}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = load_signer(&path).unwrap_err();
        assert!(error.to_string().contains("chmod 600"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let loaded = load_signer(&path).unwrap();
        assert_eq!(public_key(&loaded), public_key(&signer));

        std::fs::write(&path, "not a key").unwrap();
        assert_eq!(load_signer(&path).unwrap_err().code(), "key_file");
        std::fs::write(&path, &text[..62]).unwrap();
        assert_eq!(load_signer(&path).unwrap_err().code(), "key_file");
        assert_eq!(load_signer(&directory.path().join("missing")).unwrap_err().code(), "key_file");

        let key = public_key(&signer);
        assert_eq!(client_key_from_hex(&client_key_to_hex(&key)), Some(key));
    }

    #[test]
    fn generated_keys_and_ids_differ() {
        assert_ne!(public_key(&generate_signer()), public_key(&generate_signer()));
        assert_ne!(random_request_id(), random_request_id());
    }
}
