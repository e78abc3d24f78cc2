//! Client requests: one signed batch of ledger events.
//!
//! A request is either a batch of accounts to create or a batch of transfers to create (1 to
//! 8,190 events, each the ledger's 128-byte encoding). The client signs, under
//! `REQUEST_NAMESPACE`, the bytes `chain_id (u64) | kind (u8) | id (u128) | expires (u64) |
//! body`, so that a signature is valid on one chain, for one kind, one id and one expiry only.
//! The pair (client key, id) names a request: a retry through another validator carries the
//! same pair and is included in the chain once.
//!
//! A request expires: `expires_ns` (nanoseconds since the Unix epoch, the clock of block
//! timestamps) is the last block timestamp that may include it, and it may lie at most
//! `REQUEST_TTL_MAX_NS` after the including block's. Validators remember an included request's
//! name until `REQUEST_NAMES_KEPT_AFTER_EXPIRY_NS` past its expiry, which bounds what they hold
//! for idempotent retries by the request rate of a window rather than by the chain's age (see
//! `execution.rs`).
//!
//! Wire format (big-endian, fixed width):
//!
//! ```text
//! kind (1) | id (16) | expires (8) | client key (32) | body length (4) | body (length) | signature (64)
//! ```
//!
//! The body length is checked against `REQUEST_BODY_SIZE_MAX` and the bytes remaining before
//! anything is allocated.

use crate::constants::{EVENT_SIZE, REQUEST_BODY_SIZE_MAX, REQUEST_HEADER_SIZE, REQUEST_NAMESPACE, REQUEST_TTL_MAX_NS};
use crate::error::ChainError;
use crate::keys::{self, ClientKey, ClientSigner, Signature};
use bytes::{Buf as _, BufMut, Bytes};
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt as _, Write};
use tally_ledger::{Account, Transfer, decode_accounts, decode_transfers, encode_accounts, encode_transfers};

/// What a request asks the ledger to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestKind {
    CreateAccounts = 1,
    CreateTransfers = 2,
}

impl RequestKind {
    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::CreateAccounts),
            2 => Some(Self::CreateTransfers),
            _ => None,
        }
    }
}

/// The key of BLAKE3's derive-key mode for `Request::events_digest`.
const EVENTS_DIGEST_CONTEXT: &str = "tally 2026 request events digest v1";

/// What a request asks, without its name or signature: see `Request::events_digest`.
pub type EventsDigest = [u8; 32];

/// `Request::events_digest` of a request of `kind` with `body` (the events' encoding).
pub fn events_digest(kind: RequestKind, body: &[u8]) -> EventsDigest {
    let mut hasher = blake3::Hasher::new_derive_key(EVENTS_DIGEST_CONTEXT);
    hasher.update(&[kind as u8]);
    hasher.update(body);
    *hasher.finalize().as_bytes()
}

/// The name of a request across retries: its client and the client's id for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestKey {
    pub client: ClientKey,
    pub id: u128,
}

/// A signed batch of ledger events from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    kind: RequestKind,
    id: u128,
    expires_ns: u64,
    client: ClientKey,
    body: Bytes,
    signature: Signature,
}

/// The decoded events of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Events {
    Accounts(Vec<Account>),
    Transfers(Vec<Transfer>),
}

/// The bytes a client signs (after the namespace).
fn signed_bytes(chain_id: u64, kind: RequestKind, id: u128, expires_ns: u64, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + 1 + 16 + 8 + body.len());
    bytes.extend_from_slice(&chain_id.to_be_bytes());
    bytes.push(kind as u8);
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(&expires_ns.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// Checks a body's length: a whole number of events, at least one, at most the limit.
fn check_body_length(bytes: usize) -> Result<(), ChainError> {
    if bytes == 0 {
        return Err(ChainError::EmptyRequest);
    }
    if bytes > REQUEST_BODY_SIZE_MAX {
        return Err(ChainError::RequestTooLong { bytes, max: REQUEST_BODY_SIZE_MAX });
    }
    if !bytes.is_multiple_of(EVENT_SIZE) {
        return Err(ChainError::PartialEvent { bytes });
    }
    Ok(())
}

impl Request {
    /// Signs a request to create `accounts`, to be included by `expires_ns` at the latest.
    pub fn create_accounts(
        chain_id: u64,
        id: u128,
        expires_ns: u64,
        signer: &ClientSigner,
        accounts: &[Account],
    ) -> Result<Self, ChainError> {
        Self::sign(chain_id, RequestKind::CreateAccounts, id, expires_ns, signer, encode_accounts(accounts))
    }

    /// Signs a request to create `transfers`, to be included by `expires_ns` at the latest.
    pub fn create_transfers(
        chain_id: u64,
        id: u128,
        expires_ns: u64,
        signer: &ClientSigner,
        transfers: &[Transfer],
    ) -> Result<Self, ChainError> {
        Self::sign(chain_id, RequestKind::CreateTransfers, id, expires_ns, signer, encode_transfers(transfers))
    }

    /// Signs an encoded body of `kind`.
    pub fn sign(
        chain_id: u64,
        kind: RequestKind,
        id: u128,
        expires_ns: u64,
        signer: &ClientSigner,
        body: Vec<u8>,
    ) -> Result<Self, ChainError> {
        check_body_length(body.len())?;
        let signature = keys::sign(signer, REQUEST_NAMESPACE, &signed_bytes(chain_id, kind, id, expires_ns, &body));
        Ok(Self { kind, id, expires_ns, client: keys::public_key(signer), body: Bytes::from(body), signature })
    }

    /// Assembles a request from its parts as they arrived, without signing it or checking the
    /// signature (`verify_signature` judges it, as for a decoded request).
    pub fn from_parts(
        kind: RequestKind,
        id: u128,
        expires_ns: u64,
        client: ClientKey,
        body: Vec<u8>,
        signature: Signature,
    ) -> Result<Self, ChainError> {
        check_body_length(body.len())?;
        Ok(Self { kind, id, expires_ns, client, body: Bytes::from(body), signature })
    }

    pub fn kind(&self) -> RequestKind {
        self.kind
    }

    pub fn id(&self) -> u128 {
        self.id
    }

    /// The last block timestamp (nanoseconds since the Unix epoch) that may include this request.
    pub fn expires_ns(&self) -> u64 {
        self.expires_ns
    }

    /// Whether a block with `timestamp_ns` may include this request as far as its expiry goes:
    /// not expired, and not expiring further ahead than `REQUEST_TTL_MAX_NS`.
    pub fn check_expiry(&self, timestamp_ns: u64) -> Result<(), ChainError> {
        if self.expires_ns < timestamp_ns {
            return Err(ChainError::RequestExpired { id: self.id, expires_ns: self.expires_ns });
        }
        if self.expires_ns - timestamp_ns > REQUEST_TTL_MAX_NS {
            return Err(ChainError::ExpiryTooFar {
                id: self.id,
                expires_ns: self.expires_ns,
                latest_ns: timestamp_ns.saturating_add(REQUEST_TTL_MAX_NS),
            });
        }
        Ok(())
    }

    pub fn client(&self) -> &ClientKey {
        &self.client
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The request's name across retries.
    pub fn key(&self) -> RequestKey {
        RequestKey { client: self.client.clone(), id: self.id }
    }

    /// BLAKE3 (derive-key mode) of the kind code and the body: what the request asks, without
    /// its name (client, id) or its signature. Two requests of one name are the same request
    /// exactly when these digests match: a retry answers the recorded outcome, while a
    /// different request that reuses the id is refused (`request_id_conflict`). The signature
    /// is left out so that a client whose Ed25519 signatures are randomized can still retry.
    pub fn events_digest(&self) -> EventsDigest {
        events_digest(self.kind, &self.body)
    }

    /// The number of events in the body.
    pub fn events_count(&self) -> usize {
        self.body.len() / EVENT_SIZE
    }

    /// Checks the client's signature for `chain_id` and marks the request as checked, so that
    /// this validator does not check it again (the mempool takes only checked requests).
    pub fn verify(self, chain_id: u64) -> Result<VerifiedRequest, ChainError> {
        self.verify_signature(chain_id)?;
        Ok(VerifiedRequest(self))
    }

    /// Checks the client's signature for `chain_id` (`verify_strict` rules). Whether the client
    /// may write is the genesis's question.
    pub fn verify_signature(&self, chain_id: u64) -> Result<(), ChainError> {
        let message = signed_bytes(chain_id, self.kind, self.id, self.expires_ns, &self.body);
        if keys::verify_strict(&self.client, REQUEST_NAMESPACE, &message, &self.signature) {
            Ok(())
        } else {
            Err(ChainError::BadSignature)
        }
    }

    /// The ledger events. The body's length was checked when the request was built or decoded,
    /// so this cannot fail.
    pub fn events(&self) -> Events {
        match self.kind {
            RequestKind::CreateAccounts => {
                Events::Accounts(decode_accounts(&self.body).expect("body length checked on decode"))
            }
            RequestKind::CreateTransfers => {
                Events::Transfers(decode_transfers(&self.body).expect("body length checked on decode"))
            }
        }
    }
}

/// A request whose signature [`Request::verify`] checked for this validator's chain: the only
/// way to make one, so that each request's signature is checked once per validator (by the API
/// that received it, or by the task that decodes peers' gossip), never on the actor's task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRequest(Request);

impl VerifiedRequest {
    pub fn into_request(self) -> Request {
        self.0
    }
}

impl std::ops::Deref for VerifiedRequest {
    type Target = Request;

    fn deref(&self) -> &Request {
        &self.0
    }
}

impl Write for Request {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.kind as u8);
        buf.put_u128(self.id);
        buf.put_u64(self.expires_ns);
        self.client.write(buf);
        let length = u32::try_from(self.body.len()).expect("body length checked on construction");
        buf.put_u32(length);
        buf.put_slice(&self.body);
        self.signature.write(buf);
    }
}

impl EncodeSize for Request {
    fn encode_size(&self) -> usize {
        REQUEST_HEADER_SIZE + self.body.len()
    }
}

impl Read for Request {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let kind = RequestKind::from_code(u8::read(buf)?).ok_or(CodecError::Invalid("Request", "unknown kind"))?;
        let id = u128::read(buf)?;
        let expires_ns = u64::read(buf)?;
        let client = ClientKey::read(buf)?;
        let length = u32::read(buf)? as usize;
        check_body_length(length).map_err(|_| CodecError::InvalidLength(length))?;
        if buf.remaining() < length {
            return Err(CodecError::EndOfBuffer);
        }
        let body = buf.copy_to_bytes(length);
        let signature = Signature::read(buf)?;
        Ok(Self { kind, id, expires_ns, client, body, signature })
    }
}

/// The expiry a client sets on a request it signs now: `REQUEST_TTL_DEFAULT_NS` ahead by this
/// machine's clock.
pub fn default_expiry() -> u64 {
    expires_in(std::time::Duration::from_nanos(crate::constants::REQUEST_TTL_DEFAULT_NS))
}

/// An expiry `ttl` from now by this machine's clock: what a client sets on a request it sends
/// now (`REQUEST_TTL_DEFAULT_NS` unless it knows better).
pub fn expires_in(ttl: std::time::Duration) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from((now + ttl).as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::{REQUEST_EVENTS_MAX, REQUEST_SIZE_MAX};
    use commonware_codec::{Decode as _, Encode as _};

    const EXPIRES_NS: u64 = 300_000_000_000;

    fn transfer(id: u128) -> Transfer {
        Transfer { id, debit_account_id: 1, credit_account_id: 2, amount: 5, ledger: 1, code: 1, ..Transfer::default() }
    }

    #[test]
    fn round_trips_and_verifies() {
        let signer = keys::signer_from_seed(1);
        let request = Request::create_transfers(9, 77, EXPIRES_NS, &signer, &[transfer(1), transfer(2)]).unwrap();
        let bytes = request.encode();
        assert_eq!(bytes.len(), REQUEST_HEADER_SIZE + 2 * EVENT_SIZE);
        let decoded = Request::decode_cfg(bytes, &()).unwrap();
        assert_eq!(decoded, request);
        decoded.verify_signature(9).unwrap();
        assert_eq!(decoded.events(), Events::Transfers(vec![transfer(1), transfer(2)]));
    }

    #[test]
    fn a_signature_is_bound_to_chain_kind_id_and_body() {
        let signer = keys::signer_from_seed(1);
        let request = Request::create_transfers(9, 77, EXPIRES_NS, &signer, &[transfer(1)]).unwrap();
        assert_eq!(request.verify_signature(10), Err(ChainError::BadSignature));

        let same = |kind, id, body: &[u8]| {
            Request::from_parts(
                kind,
                id,
                EXPIRES_NS,
                request.client().clone(),
                body.to_vec(),
                request.signature().clone(),
            )
            .unwrap()
        };
        let other_kind = same(RequestKind::CreateAccounts, 77, request.body());
        assert_eq!(other_kind.verify_signature(9), Err(ChainError::BadSignature));
        let other_id = same(RequestKind::CreateTransfers, 78, request.body());
        assert_eq!(other_id.verify_signature(9), Err(ChainError::BadSignature));
        let mut body = request.body().to_vec();
        body[40] ^= 1;
        let other_body = same(RequestKind::CreateTransfers, 77, &body);
        assert_eq!(other_body.verify_signature(9), Err(ChainError::BadSignature));
        let later = Request::from_parts(
            RequestKind::CreateTransfers,
            77,
            EXPIRES_NS + 1,
            request.client().clone(),
            request.body().to_vec(),
            request.signature().clone(),
        )
        .unwrap();
        assert_eq!(later.verify_signature(9), Err(ChainError::BadSignature), "the expiry is signed");
        same(RequestKind::CreateTransfers, 77, request.body()).verify_signature(9).unwrap();
    }

    #[test]
    fn a_block_may_include_a_request_from_ten_minutes_before_its_expiry_until_it() {
        let expires_ns = 2 * REQUEST_TTL_MAX_NS;
        let request = Request::create_transfers(9, 77, expires_ns, &keys::signer_from_seed(1), &[transfer(1)]).unwrap();
        assert_eq!(request.expires_ns(), expires_ns);
        assert_eq!(request.check_expiry(expires_ns), Ok(()));
        assert_eq!(request.check_expiry(expires_ns - REQUEST_TTL_MAX_NS), Ok(()));
        assert_eq!(
            request.check_expiry(expires_ns + 1),
            Err(ChainError::RequestExpired { id: 77, expires_ns: expires_ns })
        );
        assert_eq!(
            request.check_expiry(expires_ns - REQUEST_TTL_MAX_NS - 1),
            Err(ChainError::ExpiryTooFar { id: 77, expires_ns: expires_ns, latest_ns: expires_ns - 1 })
        );
        // The expiry is on the wire, in its place.
        let bytes = request.encode();
        assert_eq!(&bytes[17..25], &expires_ns.to_be_bytes());
        assert_eq!(Request::decode_cfg(bytes, &()).unwrap().expires_ns(), expires_ns);
    }

    #[test]
    fn a_signature_from_another_key_is_rejected() {
        let honest = keys::signer_from_seed(1);
        let forger = keys::signer_from_seed(2);
        let forged = Request::create_transfers(9, 77, EXPIRES_NS, &forger, &[transfer(1)]).unwrap();
        let claimed = Request::from_parts(
            RequestKind::CreateTransfers,
            77,
            EXPIRES_NS,
            keys::public_key(&honest),
            forged.body().to_vec(),
            forged.signature().clone(),
        )
        .unwrap();
        assert_eq!(claimed.verify_signature(9), Err(ChainError::BadSignature));
    }

    #[test]
    fn body_bounds_are_enforced_on_build() {
        let signer = keys::signer_from_seed(1);
        assert_eq!(Request::create_transfers(9, 1, EXPIRES_NS, &signer, &[]), Err(ChainError::EmptyRequest));
        let full: Vec<Transfer> = (0..REQUEST_EVENTS_MAX as u128).map(transfer).collect();
        let request = Request::create_transfers(9, 1, EXPIRES_NS, &signer, &full).unwrap();
        assert_eq!(request.encode().len(), REQUEST_SIZE_MAX);
        let over: Vec<Transfer> = (0..=REQUEST_EVENTS_MAX as u128).map(transfer).collect();
        assert!(matches!(
            Request::create_transfers(9, 1, EXPIRES_NS, &signer, &over),
            Err(ChainError::RequestTooLong { .. })
        ));
        assert_eq!(
            Request::sign(9, RequestKind::CreateTransfers, 1, EXPIRES_NS, &signer, vec![0; 129]),
            Err(ChainError::PartialEvent { bytes: 129 })
        );
    }

    /// Rewrites the body length field of an encoded request.
    fn with_length(bytes: &[u8], length: u32) -> Vec<u8> {
        let mut bytes = bytes.to_vec();
        bytes[57..61].copy_from_slice(&length.to_be_bytes());
        bytes
    }

    #[test]
    fn decode_refuses_bad_lengths_before_allocating() {
        let signer = keys::signer_from_seed(1);
        let request = Request::create_transfers(9, 1, EXPIRES_NS, &signer, &[transfer(1)]).unwrap();
        let bytes = request.encode();

        // A length past the limit is refused from the 4-byte field alone: the buffer is far
        // shorter than the claimed length, so nothing of that size was allocated.
        let huge = with_length(&bytes, u32::MAX);
        assert!(matches!(Request::decode_cfg(huge, &()), Err(CodecError::InvalidLength(_))));
        let over = with_length(&bytes, (REQUEST_BODY_SIZE_MAX + EVENT_SIZE) as u32);
        assert!(matches!(Request::decode_cfg(over, &()), Err(CodecError::InvalidLength(_))));
        let partial = with_length(&bytes, 100);
        assert!(matches!(Request::decode_cfg(partial, &()), Err(CodecError::InvalidLength(_))));
        let empty = with_length(&bytes, 0);
        assert!(matches!(Request::decode_cfg(empty, &()), Err(CodecError::InvalidLength(_))));
        // A valid length that the buffer does not hold.
        let short = with_length(&bytes, (2 * EVENT_SIZE) as u32);
        assert!(Request::decode_cfg(short, &()).is_err());
        // An unknown kind.
        let mut unknown = bytes.to_vec();
        unknown[0] = 3;
        assert!(matches!(Request::decode_cfg(unknown, &()), Err(CodecError::Invalid(..))));
        // Trailing bytes.
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(matches!(Request::decode_cfg(trailing, &()), Err(CodecError::ExtraData(1))));
    }
}
