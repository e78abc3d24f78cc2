//! Signed requests as JSON, and their outcomes.
//!
//! ```json
//! {"kind": "create_transfers", "id": "7", "client": "<64 hex>", "events": [...],
//!  "signature": "<128 hex>"}
//! ```
//!
//! The signature covers the events' 128-byte encodings, not their JSON, so any JSON spelling of
//! the same events verifies (docs/API.md gives the signed bytes).

use crate::api::failure::Failure;
use crate::api::input::{decimal, hex_bytes, object, required};
use crate::hex;
use commonware_codec::DecodeExt as _;
use serde_json::{Value, json};
use tally_chain::keys::{ClientKey, PUBLIC_KEY_SIZE, SIGNATURE_SIZE, Signature, is_strong_key};
use tally_chain::{Request, RequestKey, RequestKind, RequestOutcome, RequestResult};
use tally_ledger::{decode_accounts, decode_transfers, encode_accounts, encode_transfers};

const FIELDS: &[&str] = &["kind", "id", "client", "events", "signature"];

/// The name of a request kind in JSON.
pub fn kind_name(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::CreateAccounts => "create_accounts",
        RequestKind::CreateTransfers => "create_transfers",
    }
}

/// A signed request from its JSON. Checks the form of every field; whether the client is
/// listed and the signature verifies is the caller's next step.
pub fn request_from_json(value: &Value) -> Result<Request, Failure> {
    let map = object(value, "", FIELDS)?;
    for field in FIELDS {
        required(map, "", field)?;
    }
    let kind = match &map["kind"] {
        Value::String(text) if text == "create_accounts" => RequestKind::CreateAccounts,
        Value::String(text) if text == "create_transfers" => RequestKind::CreateTransfers,
        Value::String(text) => return Err(Failure::unknown_kind(text)),
        _ => return Err(Failure::invalid_type("kind", "kind must be a string")),
    };
    let id = decimal(&map["id"], "id")?;
    let client_bytes = hex_bytes(&map["client"], "client", PUBLIC_KEY_SIZE)?;
    let client = ClientKey::decode(client_bytes.clone())
        .ok()
        .filter(is_strong_key)
        .ok_or_else(|| Failure::unknown_client(&hex::encode(&client_bytes)))?;
    let signature_bytes = hex_bytes(&map["signature"], "signature", SIGNATURE_SIZE)?;
    let signature = Signature::decode(signature_bytes)
        .map_err(|_| Failure::bad_signature("the signature is not an ed25519 signature"))?;
    let body = match kind {
        RequestKind::CreateAccounts => encode_accounts(&tally_api::accounts_from_json(&map["events"], "events")?),
        RequestKind::CreateTransfers => encode_transfers(&tally_api::transfers_from_json(&map["events"], "events")?),
    };
    if body.is_empty() {
        return Err(Failure::empty_batch("events"));
    }
    // The body's length was bounded by the batch limit above, so the only refusal left is none.
    Ok(Request::from_parts(kind, id, client, body, signature).expect("a checked body"))
}

/// The JSON of a signed request (what `request_from_json` reads).
pub fn request_to_json(request: &Request) -> Value {
    let events = match request.kind() {
        RequestKind::CreateAccounts => Value::Array(
            decode_accounts(request.body())
                .expect("a request holds whole events")
                .iter()
                .map(tally_api::account_to_json)
                .collect(),
        ),
        RequestKind::CreateTransfers => Value::Array(
            decode_transfers(request.body())
                .expect("a request holds whole events")
                .iter()
                .map(tally_api::transfer_to_json)
                .collect(),
        ),
    };
    json!({
        "kind": kind_name(request.kind()),
        "id": request.id().to_string(),
        "client": hex::encode(request.client().as_ref()),
        "events": events,
        "signature": hex::encode(request.signature().as_ref()),
    })
}

/// The answer for a finalized request: where it was ordered and what the ledger said.
pub fn outcome_to_json(key: &RequestKey, outcome: &RequestOutcome) -> Value {
    let mut answer = json!({
        "request_id": key.id.to_string(),
        "client": hex::encode(key.client.as_ref()),
        "height": outcome.height.to_string(),
        "timestamp": outcome.timestamp_ns.to_string(),
        "events_digest": hex::encode(&outcome.events_digest),
    });
    let fields = answer.as_object_mut().expect("an object");
    match &outcome.result {
        RequestResult::Accounts(results) => {
            fields.insert("results".into(), tally_api::create_account_results_to_json(results));
        }
        RequestResult::Transfers(results) => {
            fields.insert("results".into(), tally_api::create_transfer_results_to_json(results));
        }
        RequestResult::Refused(error) => {
            fields.insert("results".into(), Value::Array(Vec::new()));
            fields.insert("refused".into(), Value::String(error.to_string()));
        }
    }
    answer
}

/// The answer for a request not final within the wait limit.
pub fn pending_to_json(key: &RequestKey, retry_after_ms: u64) -> Value {
    json!({
        "request_id": key.id.to_string(),
        "client": hex::encode(key.client.as_ref()),
        "state": "pending",
        "retry_after_ms": retry_after_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_chain::keys::signer_from_seed;
    use tally_ledger::Transfer;

    fn request() -> Request {
        let transfer = Transfer {
            id: 9,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: u128::MAX,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        Request::create_transfers(3, 77, &signer_from_seed(4), &[transfer]).unwrap()
    }

    #[test]
    fn round_trips_and_still_verifies() {
        let original = request();
        let parsed = request_from_json(&request_to_json(&original)).unwrap();
        assert_eq!(parsed, original);
        parsed.verify_signature(3).unwrap();
    }

    /// The bytes docs/API.md tells clients in other languages to sign with plain Ed25519 (as
    /// PyNaCl does): a one-byte length of the namespace, the namespace, then
    /// `chain_id (u64 BE) | kind (u8) | id (u128 BE) | events (128 bytes each)`.
    fn documented_message(request: &Request, chain_id: u64) -> Vec<u8> {
        let mut message = vec![tally_chain::constants::REQUEST_NAMESPACE.len() as u8];
        message.extend_from_slice(tally_chain::constants::REQUEST_NAMESPACE);
        message.extend_from_slice(&chain_id.to_be_bytes());
        message.push(request.kind() as u8);
        message.extend_from_slice(&request.id().to_be_bytes());
        message.extend_from_slice(request.body());
        message
    }

    /// Plain RFC 8032 verification: `[s]B == R + [SHA-512(R | A | M)]A`.
    fn verifies_as_plain_ed25519(key: &[u8], signature: &[u8], message: &[u8]) -> bool {
        use commonware_cryptography::{Hasher as _, Sha512};
        use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
        use curve25519_dalek::scalar::Scalar;
        let public = CompressedEdwardsY(key.try_into().unwrap()).decompress().unwrap();
        let r = CompressedEdwardsY(signature[..32].try_into().unwrap());
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(signature[32..].try_into().unwrap())).unwrap();
        let digest = Sha512::hash(&[&signature[..32], key, message]);
        let k = Scalar::from_bytes_mod_order_wide(digest.as_ref().try_into().unwrap());
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&-k, &public, &s).compress() == r
    }

    #[test]
    fn the_documented_signed_bytes_are_plain_ed25519() {
        let request = request();
        let message = documented_message(&request, 3);
        assert_eq!(message.len(), 1 + 13 + 8 + 1 + 16 + 128);
        assert!(verifies_as_plain_ed25519(request.client().as_ref(), request.signature().as_ref(), &message));
        // Another chain id gives other bytes, which the signature does not cover.
        let other = documented_message(&request, 4);
        assert!(!verifies_as_plain_ed25519(request.client().as_ref(), request.signature().as_ref(), &other));
    }

    #[test]
    fn each_field_is_checked() {
        let good = request_to_json(&request());
        let with = |field: &str, value: Value| {
            let mut edited = good.clone();
            edited[field] = value;
            request_from_json(&edited).unwrap_err()
        };
        assert_eq!(with("kind", json!("create_account")).code, "unknown_kind");
        assert_eq!(with("kind", json!(1)).code, "invalid_type");
        assert_eq!(with("id", json!(77)).code, "invalid_type");
        assert_eq!(with("id", json!("077")).code, "invalid_number");
        assert_eq!(with("client", json!("abc")).code, "invalid_type");
        assert_eq!(with("signature", json!("00")).code, "invalid_type");
        assert_eq!(with("events", json!([])).code, "empty_batch");
        assert_eq!(with("events", json!({})).code, "invalid_type");
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(with("client", json!(hex::encode(&identity))).code, "unknown_client");
        let mut extra = good.clone();
        extra["memo"] = json!("x");
        assert_eq!(request_from_json(&extra).unwrap_err().code, "unknown_field");
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("signature");
        assert_eq!(request_from_json(&missing).unwrap_err().code, "missing_field");
        assert_eq!(request_from_json(&json!([1])).unwrap_err().code, "invalid_type");
    }
}
