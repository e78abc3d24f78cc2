//! The keys of Tally: validators and clients both sign with ed25519. Commonware's types live
//! behind these names so that the rest of the crate reads as Tally.
//!
//! Commonware's ed25519 verification follows ZIP-215 (cofactored, permissive on encodings).
//! Client signatures are consensus-critical input, so Tally narrows it to the rules of
//! `verify_strict`: a public key or signature `R` of small order (a "weak" key, for which one
//! signature can verify for many messages) is refused, and so is a non-canonical point encoding.
//! Every validator applies the same rule, so they agree on every signature.

use commonware_cryptography::{Signer as _, Verifier as _, ed25519};
use curve25519_dalek::edwards::CompressedEdwardsY;

/// A validator's identity and vote-signing key.
pub type ValidatorKey = ed25519::PublicKey;
/// A validator's private key.
pub type ValidatorSigner = ed25519::PrivateKey;
/// A client's request-signing public key, listed in the genesis.
pub type ClientKey = ed25519::PublicKey;
/// A client's private key.
pub type ClientSigner = ed25519::PrivateKey;
/// An ed25519 signature.
pub type Signature = ed25519::Signature;

/// Size of an encoded public key.
pub const PUBLIC_KEY_SIZE: usize = 32;
/// Size of an encoded signature.
pub const SIGNATURE_SIZE: usize = 64;

/// A key derived from a seed, for tests and simulations only (never for real keys).
pub fn signer_from_seed(seed: u64) -> ed25519::PrivateKey {
    ed25519::PrivateKey::from_seed(seed)
}

/// The public half of a signer.
pub fn public_key(signer: &ed25519::PrivateKey) -> ed25519::PublicKey {
    signer.public_key()
}

/// Signs `message` under `namespace`.
pub fn sign(signer: &ed25519::PrivateKey, namespace: &[u8], message: &[u8]) -> Signature {
    signer.sign(namespace, message)
}

/// Whether a 32-byte point encoding is canonical and not of small order.
fn is_strong_point(bytes: [u8; 32]) -> bool {
    let compressed = CompressedEdwardsY(bytes);
    let Some(point) = compressed.decompress() else {
        return false;
    };
    point.compress() == compressed && !point.is_small_order()
}

/// Whether a public key is acceptable to list in a genesis: canonical and not of small order.
pub fn is_strong_key(key: &ed25519::PublicKey) -> bool {
    let bytes: [u8; PUBLIC_KEY_SIZE] = key.as_ref().try_into().expect("32-byte key");
    is_strong_point(bytes)
}

/// Verifies `signature` over `message` under `namespace` with `verify_strict`'s refusals: weak
/// keys and small-order or non-canonical `R` fail.
pub fn verify_strict(key: &ed25519::PublicKey, namespace: &[u8], message: &[u8], signature: &Signature) -> bool {
    let signature_bytes: &[u8] = signature.as_ref();
    assert_eq!(signature_bytes.len(), SIGNATURE_SIZE);
    let r_bytes: [u8; 32] = signature_bytes[..32].try_into().expect("32-byte R");
    is_strong_key(key) && is_strong_point(r_bytes) && key.verify(namespace, message, signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::DecodeExt as _;

    #[test]
    fn a_signature_verifies_only_for_its_message_and_namespace() {
        let signer = signer_from_seed(7);
        let key = public_key(&signer);
        let signature = sign(&signer, b"tally/test", b"hello");
        assert!(verify_strict(&key, b"tally/test", b"hello", &signature));
        assert!(!verify_strict(&key, b"tally/test", b"hellp", &signature));
        assert!(!verify_strict(&key, b"tally/other", b"hello", &signature));
        let other = public_key(&signer_from_seed(8));
        assert!(!verify_strict(&other, b"tally/test", b"hello", &signature));
    }

    #[test]
    fn small_order_keys_are_weak() {
        // The identity point (y = 1) has order one: it is the classic weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let key = ed25519::PublicKey::decode(identity.as_slice().to_vec()).expect("a point");
        assert!(!is_strong_key(&key));
        assert!(is_strong_key(&public_key(&signer_from_seed(1))));
    }

    #[test]
    fn a_signature_with_small_order_r_is_refused() {
        // With A = identity and R = identity, s = 0 satisfies the cofactored equation for every
        // message: ZIP-215 accepts it, verify_strict must not.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let key = ed25519::PublicKey::decode(identity.as_slice().to_vec()).expect("a point");
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&identity);
        let signature = Signature::decode(forged.as_slice().to_vec()).expect("64 bytes");
        assert!(key.verify(b"tally/test", b"anything", &signature), "ZIP-215 accepts it");
        assert!(!verify_strict(&key, b"tally/test", b"anything", &signature));
    }
}
