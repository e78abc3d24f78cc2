//! The JSON the client sends and reads: signed requests, request outcomes, filters, balances and
//! the cluster status. Ledger objects use `tally-api`'s representation (u128 and u64 as decimal
//! strings, flags as lists of names), the same the validators parse.

use crate::error::ClientError;
use serde_json::{Map, Value, json};
use tally_chain::{Events, Request, RequestKind};
use tally_ledger::{
    Account, AccountBalance, AccountFilter, AccountFlags, CreateAccountResult, CreateAccountStatus,
    CreateTransferResult, CreateTransferStatus, QueryFilter, Transfer, TransferFlags,
};

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    text
}

/// The bytes of a hex string (either case), or `None` if it is not an even number of hex digits.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |byte: u8| (byte as char).to_digit(16).map(|value| value as u8);
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2).map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?)).collect()
}

/// The JSON body of `POST /v1/requests`:
/// `{"kind", "id", "expires_ns", "client", "events", "signature"}`.
pub fn request_to_json(request: &Request) -> Value {
    let (kind, events) = match request.events() {
        Events::Accounts(accounts) => {
            ("create_accounts", accounts.iter().map(tally_api::account_to_json).collect::<Vec<_>>())
        }
        Events::Transfers(transfers) => {
            ("create_transfers", transfers.iter().map(tally_api::transfer_to_json).collect::<Vec<_>>())
        }
    };
    debug_assert_eq!(kind == "create_accounts", request.kind() == RequestKind::CreateAccounts);
    json!({
        "kind": kind,
        "id": request.id().to_string(),
        "expires_ns": request.expires_ns().to_string(),
        "client": hex(request.client().as_ref()),
        "events": events,
        "signature": hex(request.signature().as_ref()),
    })
}

/// Refuses accounts that JSON cannot carry exactly: flags are sent by name, so a reserved flag
/// bit would be lost on the way and the validator would see other bytes than were signed.
pub fn check_accounts_representable(accounts: &[Account]) -> Result<(), ClientError> {
    match accounts.iter().position(|account| account.flags.has_reserved_bits()) {
        Some(index) => Err(reserved_flags(&format!("accounts[{index}].flags"), accounts[index].flags.bits())),
        None => Ok(()),
    }
}

/// Refuses transfers that JSON cannot carry exactly (see [`check_accounts_representable`]).
pub fn check_transfers_representable(transfers: &[Transfer]) -> Result<(), ClientError> {
    match transfers.iter().position(|transfer| transfer.flags.has_reserved_bits()) {
        Some(index) => Err(reserved_flags(&format!("transfers[{index}].flags"), transfers[index].flags.bits())),
        None => Ok(()),
    }
}

fn reserved_flags(field: &str, bits: u16) -> ClientError {
    ClientError::input("unknown_flag", field, format!("flag bits {bits:#06x} include bits that have no name"))
}

/// An `AccountFilter` as JSON (the form `POST /v1/accounts/transfers` and `/balances` take).
pub fn account_filter_to_json(filter: &AccountFilter) -> Value {
    json!({
        "account_id": filter.account_id.to_string(),
        "user_data_128": filter.user_data_128.to_string(),
        "user_data_64": filter.user_data_64.to_string(),
        "user_data_32": filter.user_data_32,
        "code": filter.code,
        "timestamp_min": filter.timestamp_min.to_string(),
        "timestamp_max": filter.timestamp_max.to_string(),
        "limit": filter.limit,
        "flags": filter.flags.names().collect::<Vec<_>>(),
    })
}

/// A `QueryFilter` as JSON (the form `POST /v1/accounts/query` and `/v1/transfers/query` take).
pub fn query_filter_to_json(filter: &QueryFilter) -> Value {
    json!({
        "user_data_128": filter.user_data_128.to_string(),
        "user_data_64": filter.user_data_64.to_string(),
        "user_data_32": filter.user_data_32,
        "ledger": filter.ledger,
        "code": filter.code,
        "timestamp_min": filter.timestamp_min.to_string(),
        "timestamp_max": filter.timestamp_max.to_string(),
        "limit": filter.limit,
        "flags": filter.flags.names().collect::<Vec<_>>(),
    })
}

/// Reading an answer: every failure names the validator and the offending field.
#[derive(Debug)]
pub struct Reader<'a> {
    pub validator: &'a str,
}

impl Reader<'_> {
    fn error(&self, reason: impl Into<String>) -> ClientError {
        ClientError::invalid_answer(self.validator, reason)
    }

    pub fn object<'v>(&self, value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, ClientError> {
        value.as_object().ok_or_else(|| self.error(format!("{path} is not an object")))
    }

    pub fn field<'v>(&self, object: &'v Map<String, Value>, name: &str) -> Result<&'v Value, ClientError> {
        object.get(name).ok_or_else(|| self.error(format!("the field {name} is missing")))
    }

    pub fn list<'v>(&self, object: &'v Map<String, Value>, name: &str) -> Result<&'v Vec<Value>, ClientError> {
        self.field(object, name)?.as_array().ok_or_else(|| self.error(format!("{name} is not a list")))
    }

    pub fn text<'v>(&self, object: &'v Map<String, Value>, name: &str) -> Result<&'v str, ClientError> {
        self.field(object, name)?.as_str().ok_or_else(|| self.error(format!("{name} is not a string")))
    }

    /// An unsigned integer sent as a decimal string (the API's form for u64 and u128) or, for
    /// counters, as a JSON number.
    pub fn unsigned(&self, value: &Value, name: &str) -> Result<u128, ClientError> {
        match value {
            Value::String(text) => {
                text.parse::<u128>().map_err(|_| self.error(format!("{name} is not a decimal integer: {text:?}")))
            }
            Value::Number(number) => {
                number.as_u64().map(u128::from).ok_or_else(|| self.error(format!("{name} is not an unsigned integer")))
            }
            _ => Err(self.error(format!("{name} is not a number"))),
        }
    }

    pub fn u128(&self, object: &Map<String, Value>, name: &str) -> Result<u128, ClientError> {
        self.unsigned(self.field(object, name)?, name)
    }

    pub fn u64(&self, object: &Map<String, Value>, name: &str) -> Result<u64, ClientError> {
        let value = self.u128(object, name)?;
        u64::try_from(value).map_err(|_| self.error(format!("{name} {value} does not fit 64 bits")))
    }

    /// A list of ledger objects under `name`, each read by `item` (`tally-api`'s parsers).
    pub fn objects<T>(
        &self,
        value: &Value,
        name: &str,
        item: fn(&Value, &str) -> Result<T, tally_api::ApiError>,
    ) -> Result<Vec<T>, ClientError> {
        let list = self.list(self.object(value, "the answer")?, name)?;
        list.iter()
            .enumerate()
            .map(|(index, value)| {
                item(value, &format!("{name}[{index}]")).map_err(|error| self.error(error.to_string()))
            })
            .collect()
    }
}

/// What a validator answered to a finalized request (`200` of `POST /v1/requests` or
/// `GET /v1/requests/{client}/{id}`), with the statuses still as names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeJson {
    pub request_id: u128,
    pub client: String,
    pub height: u64,
    pub timestamp: u64,
    /// `(status name, timestamp)` per event, in event order.
    pub results: Vec<(String, u64)>,
}

/// Reads a request outcome and checks it answers the request `request_id` of `client` with
/// `events_digest` (hex) and one result per event, indexed 0, 1, 2, …. An outcome of the same
/// name for other events means the id was used before for another request:
/// `ClientError::RequestIdConflict`.
pub fn outcome_from_json(
    reader: &Reader<'_>,
    value: &Value,
    request_id: u128,
    client: &str,
    events_digest: &str,
    events: usize,
) -> Result<OutcomeJson, ClientError> {
    let object = reader.object(value, "the answer")?;
    let outcome = OutcomeJson {
        request_id: reader.u128(object, "request_id")?,
        client: reader.text(object, "client")?.to_string(),
        height: reader.u64(object, "height")?,
        timestamp: reader.u64(object, "timestamp")?,
        results: reader
            .list(object, "results")?
            .iter()
            .enumerate()
            .map(|(position, result)| {
                let result = reader.object(result, "a result")?;
                let index = reader.u64(result, "index")?;
                if index != position as u64 {
                    return Err(reader.error(format!("result {position} has index {index}")));
                }
                Ok((reader.text(result, "status")?.to_string(), reader.u64(result, "timestamp")?))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    if outcome.request_id != request_id || !outcome.client.eq_ignore_ascii_case(client) {
        return Err(reader.error(format!(
            "the outcome is for request {} of {}, not {request_id} of {client}",
            outcome.request_id, outcome.client
        )));
    }
    // Validators before `events_digest` leave it out; from them the check cannot be made.
    if object.contains_key("events_digest")
        && !reader.text(object, "events_digest")?.eq_ignore_ascii_case(events_digest)
    {
        return Err(ClientError::RequestIdConflict { validator: reader.validator.to_string(), request_id });
    }
    if let Some(reason) = object.get("refused") {
        let reason = reason.as_str().ok_or_else(|| reader.error("refused is not a string"))?;
        return Err(ClientError::BatchRefused {
            request_id: outcome.request_id,
            height: outcome.height,
            reason: reason.to_string(),
        });
    }
    if outcome.results.len() != events {
        return Err(reader.error(format!("{} results for {events} events", outcome.results.len())));
    }
    Ok(outcome)
}

/// The results of a `create_accounts` request, with statuses as the ledger's enum.
pub fn account_results(
    reader: &Reader<'_>,
    results: &[(String, u64)],
) -> Result<Vec<CreateAccountResult>, ClientError> {
    results
        .iter()
        .map(|(name, timestamp)| {
            let status = CreateAccountStatus::from_name(name)
                .ok_or_else(|| reader.error(format!("unknown create_accounts status {name:?}")))?;
            Ok(CreateAccountResult { timestamp: *timestamp, status })
        })
        .collect()
}

/// The results of a `create_transfers` request, with statuses as the ledger's enum.
pub fn transfer_results(
    reader: &Reader<'_>,
    results: &[(String, u64)],
) -> Result<Vec<CreateTransferResult>, ClientError> {
    results
        .iter()
        .map(|(name, timestamp)| {
            let status = CreateTransferStatus::from_name(name)
                .ok_or_else(|| reader.error(format!("unknown create_transfers status {name:?}")))?;
            Ok(CreateTransferResult { timestamp: *timestamp, status })
        })
        .collect()
}

/// A balance-history entry (`{"debits_pending", …, "timestamp"}`).
pub fn balance_from_json(value: &Value, path: &str) -> Result<AccountBalance, tally_api::ApiError> {
    let invalid = |message: String| tally_api::ApiError::new(tally_api::ErrorCode::InvalidType, path, message);
    let object = value.as_object().ok_or_else(|| invalid(format!("{path} is not an object")))?;
    let number = |name: &str| -> Result<u128, tally_api::ApiError> {
        object
            .get(name)
            .and_then(Value::as_str)
            .and_then(|text| text.parse::<u128>().ok())
            .ok_or_else(|| invalid(format!("{path}.{name} is not a decimal string")))
    };
    let timestamp = number("timestamp")?;
    Ok(AccountBalance {
        debits_pending: number("debits_pending")?,
        debits_posted: number("debits_posted")?,
        credits_pending: number("credits_pending")?,
        credits_posted: number("credits_posted")?,
        timestamp: u64::try_from(timestamp).map_err(|_| invalid(format!("{path}.timestamp does not fit 64 bits")))?,
    })
}

/// The error of a refused call (`{"error": {"code", "field", "message"}}`), or `None` if the body
/// is not one.
pub fn error_from_json(value: &Value) -> Option<(String, String, String)> {
    let error = value.get("error")?.as_object()?;
    let code = error.get("code")?.as_str()?.to_string();
    let field = error.get("field").and_then(Value::as_str).unwrap_or_default().to_string();
    let message = error.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
    Some((code, field, message))
}

/// Whether an account's flags link it to the next event of its batch.
pub fn account_is_linked(account: &Account) -> bool {
    account.flags.contains(AccountFlags::LINKED)
}

/// Whether a transfer's flags link it to the next event of its batch.
pub fn transfer_is_linked(transfer: &Transfer) -> bool {
    transfer.flags.contains(TransferFlags::LINKED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_chain::keys;
    use tally_ledger::{AccountFilterFlags, QueryFilterFlags};

    fn transfer(id: u128) -> Transfer {
        Transfer {
            id,
            debit_account_id: 1,
            credit_account_id: u128::MAX - 1,
            amount: u128::MAX,
            user_data_64: u64::MAX,
            timeout: 7,
            ledger: 1,
            code: 1,
            flags: TransferFlags::PENDING | TransferFlags::LINKED,
            ..Transfer::default()
        }
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(from_hex("00AB7f"), Some(vec![0x00, 0xab, 0x7f]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(""), Some(vec![]));
    }

    /// What a validator does with the JSON of a request: parse the events with `tally-api`,
    /// re-encode them, and check the signature over those bytes.
    fn request_from_json(value: &Value) -> Request {
        let kind = match value["kind"].as_str().unwrap() {
            "create_accounts" => RequestKind::CreateAccounts,
            "create_transfers" => RequestKind::CreateTransfers,
            other => panic!("unknown kind {other}"),
        };
        let body = match kind {
            RequestKind::CreateAccounts => {
                tally_ledger::encode_accounts(&tally_api::accounts_from_json(&value["events"], "events").unwrap())
            }
            RequestKind::CreateTransfers => {
                tally_ledger::encode_transfers(&tally_api::transfers_from_json(&value["events"], "events").unwrap())
            }
        };
        use commonware_codec::DecodeExt as _;
        let client = keys::ClientKey::decode(from_hex(value["client"].as_str().unwrap()).unwrap()).unwrap();
        let signature = keys::Signature::decode(from_hex(value["signature"].as_str().unwrap()).unwrap()).unwrap();
        let id = value["id"].as_str().unwrap().parse().unwrap();
        let expires_ns = value["expires_ns"].as_str().unwrap().parse().unwrap();
        Request::from_parts(kind, id, expires_ns, client, body, signature).unwrap()
    }

    #[test]
    fn a_request_as_json_verifies_after_the_validators_parsing() {
        let signer = keys::signer_from_seed(3);
        let request = Request::create_transfers(
            42,
            u128::MAX,
            tally_chain::default_expiry(),
            &signer,
            &[transfer(5), transfer(6)],
        )
        .unwrap();
        let value = request_to_json(&request);
        let object = value.as_object().unwrap();
        let mut names: Vec<_> = object.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["client", "events", "expires_ns", "id", "kind", "signature"]);
        assert_eq!(value["kind"], "create_transfers");
        assert_eq!(value["id"], u128::MAX.to_string());
        assert_eq!(value["client"].as_str().unwrap().len(), 64);
        assert_eq!(value["signature"].as_str().unwrap().len(), 128);
        assert_eq!(value["events"][0]["amount"], u128::MAX.to_string());
        assert_eq!(value["events"][0]["flags"], json!(["linked", "pending"]));

        let parsed = request_from_json(&value);
        assert_eq!(parsed, request);
        parsed.verify_signature(42).unwrap();
        assert!(parsed.verify_signature(43).is_err(), "the signature is bound to the chain id");

        let account =
            Account { id: 9, user_data_32: 3, ledger: 2, code: 4, flags: AccountFlags::HISTORY, ..Account::default() };
        let request = Request::create_accounts(42, 1, tally_chain::default_expiry(), &signer, &[account]).unwrap();
        let value = request_to_json(&request);
        assert_eq!(value["kind"], "create_accounts");
        let parsed = request_from_json(&value);
        assert_eq!(parsed, request);
        parsed.verify_signature(42).unwrap();
    }

    #[test]
    fn reserved_flag_bits_are_refused_before_sending() {
        let mut account = Account { id: 1, ledger: 1, code: 1, ..Account::default() };
        check_accounts_representable(&[account]).unwrap();
        account.flags = AccountFlags::from_bits_retain(1 << 12);
        let error = check_accounts_representable(&[Account::default(), account]).unwrap_err();
        assert_eq!(error.code(), "unknown_flag");
        assert!(error.to_string().contains("accounts[1].flags"), "{error}");
        let mut transfer = transfer(1);
        transfer.flags = TransferFlags::from_bits_retain(1 << 15);
        assert_eq!(check_transfers_representable(&[transfer]).unwrap_err().code(), "unknown_flag");
    }

    #[test]
    fn filters_as_json_parse_back_with_the_validators_parser() {
        let filter = AccountFilter {
            account_id: u128::MAX,
            user_data_128: 5,
            user_data_64: u64::MAX,
            user_data_32: 7,
            code: 9,
            timestamp_min: 10,
            timestamp_max: 20,
            limit: 100,
            flags: AccountFilterFlags::DEBITS | AccountFilterFlags::REVERSED,
        };
        assert_eq!(tally_api::account_filter_from_json(&account_filter_to_json(&filter), "").unwrap(), filter);
        let query = QueryFilter {
            user_data_128: 1,
            user_data_64: 2,
            user_data_32: 3,
            ledger: 4,
            code: 5,
            timestamp_min: 6,
            timestamp_max: 7,
            limit: 8,
            flags: QueryFilterFlags::REVERSED,
        };
        assert_eq!(tally_api::query_filter_from_json(&query_filter_to_json(&query), "").unwrap(), query);
    }

    #[test]
    fn outcomes_parse_into_the_ledgers_statuses() {
        let reader = Reader { validator: "v" };
        let client = "ab".repeat(32);
        let digest = "0f".repeat(32);
        let value = json!({
            "request_id": "77", "client": client, "height": "12", "timestamp": "1000", "events_digest": digest,
            "results": [
                {"index": 0, "status": "created", "timestamp": "1000"},
                {"index": 1, "status": "exceeds_credits", "timestamp": "1001"},
            ],
        });
        let outcome = outcome_from_json(&reader, &value, 77, &client, &digest, 2).unwrap();
        assert_eq!(outcome.height, 12);
        let results = transfer_results(&reader, &outcome.results).unwrap();
        assert_eq!(results[0], CreateTransferResult { timestamp: 1000, status: CreateTransferStatus::Created });
        assert_eq!(results[1].status, CreateTransferStatus::ExceedsCredits);
        // The same names are not all account statuses.
        assert_eq!(account_results(&reader, &outcome.results).unwrap_err().code(), "invalid_answer");

        // Every status the ledger has parses back from its name.
        for status in CreateAccountStatus::ALL {
            let parsed = account_results(&reader, &[(status.name().to_string(), 1)]).unwrap();
            assert_eq!(parsed[0].status, *status);
        }
        for status in CreateTransferStatus::ALL {
            let parsed = transfer_results(&reader, &[(status.name().to_string(), 1)]).unwrap();
            assert_eq!(parsed[0].status, *status);
        }

        // Answers that do not match the request are refused.
        assert!(outcome_from_json(&reader, &value, 78, &client, &digest, 2).is_err(), "another id");
        assert!(outcome_from_json(&reader, &value, 77, &"cd".repeat(32), &digest, 2).is_err(), "another client");
        assert!(outcome_from_json(&reader, &value, 77, &client, &digest, 3).is_err(), "missing results");
        let mut shuffled = value.clone();
        shuffled["results"][0]["index"] = json!(1);
        assert!(outcome_from_json(&reader, &shuffled, 77, &client, &digest, 2).is_err(), "out of order");
        let mut refused = value.clone();
        refused["results"] = json!([]);
        refused["refused"] = json!("batch timestamp leaves no room");
        let error = outcome_from_json(&reader, &refused, 77, &client, &digest, 2).unwrap_err();
        assert!(matches!(error, ClientError::BatchRefused { request_id: 77, height: 12, .. }), "{error}");
        // An outcome of other events under this name: the id was used for another request.
        let error = outcome_from_json(&reader, &value, 77, &client, &"f0".repeat(32), 2).unwrap_err();
        assert!(matches!(error, ClientError::RequestIdConflict { request_id: 77, .. }), "{error}");
        assert_eq!(error.code(), "request_id_conflict");
        let mut older = value.clone();
        older.as_object_mut().unwrap().remove("events_digest");
        assert!(
            outcome_from_json(&reader, &older, 77, &client, &"f0".repeat(32), 2).is_ok(),
            "a validator without the field"
        );
        let mut missing = value.clone();
        missing.as_object_mut().unwrap().remove("height");
        assert!(outcome_from_json(&reader, &missing, 77, &client, &digest, 2).is_err(), "no height");
    }

    #[test]
    fn balances_and_errors_parse() {
        let balance = AccountBalance {
            debits_pending: 1,
            debits_posted: u128::MAX,
            credits_pending: 3,
            credits_posted: 4,
            timestamp: u64::MAX,
        };
        let value = tally_api::account_balance_to_json(&balance);
        assert_eq!(balance_from_json(&value, "balances[0]").unwrap(), balance);
        assert!(balance_from_json(&json!({"debits_pending": 1}), "b").is_err());

        let error = json!({"error": {"code": "bad_signature", "field": "signature", "message": "no"}});
        assert_eq!(
            error_from_json(&error),
            Some(("bad_signature".to_string(), "signature".to_string(), "no".to_string()))
        );
        assert_eq!(error_from_json(&json!({"status": "ok"})), None);
    }
}
