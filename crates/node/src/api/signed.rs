//! Signed requests as JSON or as their binary encoding, and their outcomes.
//!
//! ```json
//! {"kind": "create_transfers", "id": "7", "expires_ns": "1796000000000000000",
//!  "client": "<64 hex>", "events": [...], "signature": "<128 hex>"}
//! ```
//!
//! The signature covers the events' 128-byte encodings, not their JSON, so any JSON spelling of
//! the same events verifies (docs/API.md gives the signed bytes). The binary form
//! (`application/octet-stream`) is the request's own encoding, as the chain stores it:
//!
//! ```text
//! kind (1) | id (16, BE) | expires ns (8, BE) | client key (32) | body length (4, BE) | events (length)
//! | signature (64)
//! ```

use crate::api::failure::Failure;
use crate::api::input::{decimal, hex_bytes, object, required};
use crate::hex;
use axum::body::Bytes;
use commonware_codec::{DecodeExt as _, ReadExt as _};
use serde_json::{Value, json};
use tally_chain::constants::{EVENT_SIZE, REQUEST_BODY_SIZE_MAX, REQUEST_EVENTS_MAX, REQUEST_HEADER_SIZE};
use tally_chain::keys::{ClientKey, PUBLIC_KEY_SIZE, SIGNATURE_SIZE, Signature, is_strong_key};
use tally_chain::{Request, RequestKey, RequestKind, RequestOutcome, RequestResult};
use tally_ledger::{decode_accounts, decode_transfers, encode_accounts, encode_transfers};

const FIELDS: &[&str] = &["kind", "id", "expires_ns", "client", "events", "signature"];

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
    let expires_ns = u64::try_from(decimal(&map["expires_ns"], "expires_ns")?).map_err(|_| {
        Failure::invalid_number(
            "expires_ns",
            format!("expires_ns must be at most {} (nanoseconds since 1970)", u64::MAX),
        )
    })?;
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
    Ok(Request::from_parts(kind, id, expires_ns, client, body, signature).expect("a checked body"))
}

/// A signed request from its binary encoding (an `application/octet-stream` body). Each field is
/// read in the encoding's order so that a refusal says which one is wrong, with the same codes as
/// the JSON form where the fault is the same (`unknown_kind`, `unknown_client`, `empty_batch`,
/// `batch_too_long`, `bad_signature`) and `malformed_request` where the bytes are not a request
/// at all. Whether the client is listed and the signature verifies is the caller's next step.
pub fn request_from_bytes(bytes: Bytes) -> Result<Request, Failure> {
    let malformed = |message: String| Failure::malformed_request(message);
    if bytes.len() < REQUEST_HEADER_SIZE {
        return Err(malformed(format!(
            "the body has {} bytes; a request's encoding has at least {REQUEST_HEADER_SIZE} (kind, id, expiry, client, \
             body length, signature) and its events",
            bytes.len()
        )));
    }
    let mut header = bytes.clone();
    let kind = u8::read(&mut header).expect("the header's length was checked");
    if !matches!(kind, 1 | 2) {
        return Err(Failure::unknown_kind(&format!("byte {kind} (1 is create_accounts, 2 create_transfers)")));
    }
    let _id = u128::read(&mut header).expect("the header's length was checked");
    let _expires_ns = u64::read(&mut header).expect("the header's length was checked");
    let client = ClientKey::read(&mut header)
        .ok()
        .filter(is_strong_key)
        .ok_or_else(|| Failure::unknown_client(&hex::encode(&bytes[25..25 + PUBLIC_KEY_SIZE])))?;
    let length = u32::read(&mut header).expect("the header's length was checked") as usize;
    if length == 0 {
        return Err(Failure::empty_batch("events"));
    }
    if length > REQUEST_BODY_SIZE_MAX {
        return Err(Failure::batch_too_long(
            "events",
            format!(
                "the body length says {length} bytes; a request holds at most {REQUEST_EVENTS_MAX} events of \
                 {EVENT_SIZE} bytes"
            ),
        ));
    }
    if !length.is_multiple_of(EVENT_SIZE) {
        return Err(malformed(format!("the body length {length} is not a whole number of {EVENT_SIZE}-byte events")));
    }
    let expected = REQUEST_HEADER_SIZE + length;
    if bytes.len() != expected {
        return Err(malformed(format!(
            "the body length says {length} bytes of events, so the request has {expected} bytes, but the body has {}",
            bytes.len()
        )));
    }
    let request = Request::decode(bytes).map_err(|error| {
        // Every field but the signature was read above; an encoding that is not a signature's
        // is the one refusal left.
        tracing::debug!(%error, "a binary request's signature does not decode");
        Failure::bad_signature("the signature is not an ed25519 signature")
    })?;
    assert_eq!(request.client(), &client);
    Ok(request)
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
        "expires_ns": request.expires_ns().to_string(),
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
        Request::create_transfers(3, 77, tally_chain::default_expiry(), &signer_from_seed(4), &[transfer]).unwrap()
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
    /// `chain_id (u64 BE) | kind (u8) | id (u128 BE) | expires_ns (u64 BE) | events (128 bytes each)`.
    fn documented_message(request: &Request, chain_id: u64) -> Vec<u8> {
        let mut message = vec![tally_chain::constants::REQUEST_NAMESPACE.len() as u8];
        message.extend_from_slice(tally_chain::constants::REQUEST_NAMESPACE);
        message.extend_from_slice(&chain_id.to_be_bytes());
        message.push(request.kind() as u8);
        message.extend_from_slice(&request.id().to_be_bytes());
        message.extend_from_slice(&request.expires_ns().to_be_bytes());
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
        assert_eq!(message.len(), 1 + 13 + 8 + 1 + 16 + 8 + 128);
        assert!(verifies_as_plain_ed25519(request.client().as_ref(), request.signature().as_ref(), &message));
        // Another chain id gives other bytes, which the signature does not cover.
        let other = documented_message(&request, 4);
        assert!(!verifies_as_plain_ed25519(request.client().as_ref(), request.signature().as_ref(), &other));
    }

    #[test]
    fn the_binary_form_round_trips_and_each_fault_has_its_code() {
        use commonware_codec::Encode as _;
        let original = request();
        let good = original.encode().to_vec();
        let parsed = request_from_bytes(Bytes::from(good.clone())).unwrap();
        assert_eq!(parsed, original);
        parsed.verify_signature(3).unwrap();

        let code = |bytes: &[u8]| request_from_bytes(Bytes::copy_from_slice(bytes)).unwrap_err().code;
        let edited = |at: usize, value: &[u8]| {
            let mut bytes = good.clone();
            bytes[at..at + value.len()].copy_from_slice(value);
            bytes
        };
        // Layout: kind 0, id 1..17, expiry 17..25, client 25..57, length 57..61, events 61.., signature
        // last 64.
        assert_eq!(code(&[]), "malformed_request");
        assert_eq!(code(&good[..REQUEST_HEADER_SIZE - 1]), "malformed_request");
        assert_eq!(code(&good[..good.len() - 1]), "malformed_request", "truncated");
        assert_eq!(code(&[good.as_slice(), &[0]].concat()), "malformed_request", "a byte left over");
        assert_eq!(code(&edited(0, &[3])), "unknown_kind");
        assert_eq!(code(&edited(0, &[0])), "unknown_kind");
        assert_eq!(code(&edited(57, &0u32.to_be_bytes())), "empty_batch");
        assert_eq!(code(&edited(57, &127u32.to_be_bytes())), "malformed_request", "a partial event");
        assert_eq!(code(&edited(57, &256u32.to_be_bytes())), "malformed_request", "more than the body holds");
        let too_long = ((REQUEST_EVENTS_MAX + 1) * EVENT_SIZE) as u32;
        assert_eq!(code(&edited(57, &too_long.to_be_bytes())), "batch_too_long");
        assert_eq!(code(&edited(57, &u32::MAX.to_be_bytes())), "batch_too_long");
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(code(&edited(25, &identity)), "unknown_client", "a weak key");
        // A request of the other kind with the same bytes is another request: its signature is
        // checked by the caller and fails there.
        let other_kind = request_from_bytes(Bytes::from(edited(0, &[1]))).unwrap();
        assert!(other_kind.verify_signature(3).is_err());
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
        assert_eq!(with("expires_ns", json!(5)).code, "invalid_type");
        assert_eq!(with("expires_ns", json!("18446744073709551616")).code, "invalid_number", "past u64");
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
