//! Ledger objects as JSON, and back, with every input checked.
//!
//! - `u128` and `u64` fields travel as decimal strings (`"340282366920938463463374607431768211455"`),
//!   because JSON numbers lose precision above 2^53 in most languages. They are plain ASCII
//!   digits, without sign, spaces or leading zeros, and must fit the field.
//! - `u32` and `u16` fields are JSON numbers.
//! - Flags are lists of TigerBeetle's snake-case names (`["linked", "pending"]`).
//! - Every field but `id` (and a filter's `account_id`) may be left out and is then zero, as in
//!   TigerBeetle's clients; a field this version does not know is refused, so that a typo never
//!   silently becomes a zero.

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value, json};
use tally_ledger::{
    Account, AccountBalance, AccountFilter, AccountFilterFlags, AccountFlags, BATCH_EVENTS_MAX, CreateAccountResult,
    CreateTransferResult, QueryFilter, QueryFilterFlags, Transfer, TransferFlags,
};

use crate::error::{ApiError, ErrorCode};

/// The largest request body accepted: a full batch of transfers as JSON, with room to spare.
pub const BODY_BYTES_MAX: usize = 8 * 1024 * 1024;

// A full batch of the longest transfers (every field at its widest) fits in a body.
const _: () = assert!(BATCH_EVENTS_MAX * 900 < BODY_BYTES_MAX);

/// Parses a request body, refusing oversized bodies before reading them and objects that name
/// a field twice (`duplicate_field`, with the path of the second one): JSON leaves the meaning
/// of a duplicate open, and parsers differ on which one wins, so a signed body with one must
/// not mean one thing to its signer and another here.
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > BODY_BYTES_MAX {
        return Err(ApiError::new(
            ErrorCode::BodyTooLarge,
            "",
            format!("the body has {} bytes; the limit is {BODY_BYTES_MAX}", body.len()),
        ));
    }
    let duplicate = std::cell::RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = DeserializeSeed::deserialize(Unique { duplicate: &duplicate }, &mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    match parsed {
        Ok(value) => Ok(value),
        Err(error) => {
            let trail = duplicate.into_inner();
            if trail.is_empty() {
                return Err(ApiError::new(ErrorCode::MalformedJson, "", error.to_string()));
            }
            let field = trail.iter().rev().fold(String::new(), |path, step| match step {
                Step::Index(index) => format!("{path}[{index}]"),
                Step::Key(key) => join(&path, key),
            });
            Err(ApiError::new(ErrorCode::DuplicateField, field.clone(), format!("{field} appears twice in one object")))
        }
    }
}

/// One step of the path to a duplicated field, innermost first.
enum Step {
    Key(String),
    Index(usize),
}

/// Deserializes a JSON value like `serde_json::Value` does, but refuses an object with a key
/// seen before in it. On that error, `duplicate` holds the path from the duplicated key out to
/// the body, each level adding its step as the error passes through it; on success nothing is
/// allocated beyond the value, so a full batch parses as fast as with `serde_json::from_slice`.
#[derive(Clone, Copy)]
struct Unique<'a> {
    duplicate: &'a std::cell::RefCell<Vec<Step>>,
}

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            match seq.next_element_seed(self) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(Value::Array(items)),
                Err(error) => {
                    self.step_out(Step::Index(items.len()));
                    return Err(error);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match fields.entry(key) {
                Entry::Occupied(occupied) => {
                    let key = occupied.key().clone();
                    let message = format!("duplicate field {key:?}");
                    self.duplicate.borrow_mut().push(Step::Key(key));
                    return Err(serde::de::Error::custom(message));
                }
                Entry::Vacant(vacant) => match map.next_value_seed(self) {
                    Ok(value) => {
                        vacant.insert(value);
                    }
                    Err(error) => {
                        self.step_out(Step::Key(vacant.key().clone()));
                        return Err(error);
                    }
                },
            }
        }
        Ok(Value::Object(fields))
    }
}

impl Unique<'_> {
    /// Adds this level's step to the path of a duplicate passing through it.
    fn step_out(self, step: Step) {
        let mut trail = self.duplicate.borrow_mut();
        if !trail.is_empty() {
            trail.push(step);
        }
    }
}

/// Where a value sits in the body, written out only for an error message: a named path
/// (`transfers`, `events[3]`) or an item of a list (`events` and 3). A full batch of 8,190 events
/// has over 100,000 fields, so their paths are not built unless one of them is refused.
#[derive(Debug, Clone, Copy)]
enum Place<'a> {
    Named(&'a str),
    Item(&'a str, usize),
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Named(path) => f.write_str(path),
            Self::Item(path, index) => write!(f, "{path}[{index}]"),
        }
    }
}

impl Place<'_> {
    fn is_body(&self) -> bool {
        matches!(self, Self::Named(""))
    }
}

/// The path of field `name` of the object at `place` (`events[3].amount`), written out only for
/// an error message.
#[derive(Debug, Clone, Copy)]
struct FieldPath<'a> {
    place: Place<'a>,
    name: &'a str,
}

impl std::fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.place.is_body() { f.write_str(self.name) } else { write!(f, "{}.{}", self.place, self.name) }
    }
}

/// The fields of one JSON object, checked against the names a kind of object has.
struct Object<'a> {
    map: &'a Map<String, Value>,
    place: Place<'a>,
}

impl<'a> Object<'a> {
    fn new(value: &'a Value, place: Place<'a>, known: &[&str]) -> Result<Self, ApiError> {
        let Some(map) = value.as_object() else {
            let path = place.to_string();
            let message = format!("{} must be an object", name(&path));
            return Err(ApiError::new(ErrorCode::InvalidType, path, message));
        };
        if let Some(unknown) = map.keys().find(|key| !known.contains(&key.as_str())) {
            let field = FieldPath { place, name: unknown }.to_string();
            return Err(ApiError::new(
                ErrorCode::UnknownField,
                field.clone(),
                format!("unknown field {field}; the fields are {}", known.join(", ")),
            ));
        }
        Ok(Self { map, place })
    }

    /// The field's value, if given, and its path for errors.
    fn field(&self, name: &'a str) -> (Option<&'a Value>, FieldPath<'a>) {
        (self.map.get(name), FieldPath { place: self.place, name })
    }

    fn required(&self, name: &'a str) -> Result<(), ApiError> {
        if self.map.contains_key(name) {
            Ok(())
        } else {
            let field = FieldPath { place: self.place, name }.to_string();
            Err(ApiError::new(ErrorCode::MissingField, field.clone(), format!("{field} is required")))
        }
    }

    fn u128(&self, name: &'a str) -> Result<u128, ApiError> {
        match self.field(name) {
            (None, _) => Ok(0),
            (Some(value), field) => decimal(value, field, u128::MAX),
        }
    }

    fn u64(&self, name: &'a str) -> Result<u64, ApiError> {
        match self.field(name) {
            (None, _) => Ok(0),
            (Some(value), field) => decimal(value, field, u128::from(u64::MAX)).map(|value| value as u64),
        }
    }

    fn number(&self, name: &'a str, max: u64) -> Result<u64, ApiError> {
        match self.field(name) {
            (None, _) => Ok(0),
            (Some(value), field) => {
                let Some(number) = value.as_number() else {
                    let field = field.to_string();
                    return Err(ApiError::new(
                        ErrorCode::InvalidType,
                        field.clone(),
                        format!("{field} must be a number"),
                    ));
                };
                match number.as_u64() {
                    Some(number) if number <= max => Ok(number),
                    _ => {
                        let field = field.to_string();
                        Err(ApiError::new(
                            ErrorCode::InvalidNumber,
                            field.clone(),
                            format!("{field} must be an integer from 0 to {max}, got {number}"),
                        ))
                    }
                }
            }
        }
    }

    fn u32(&self, name: &'a str) -> Result<u32, ApiError> {
        self.number(name, u64::from(u32::MAX)).map(|value| value as u32)
    }

    fn u16(&self, name: &'a str) -> Result<u16, ApiError> {
        self.number(name, u64::from(u16::MAX)).map(|value| value as u16)
    }

    /// A list of flag names, each looked up with `from_name`.
    fn flags<F: Copy + std::ops::BitOr<Output = F>>(
        &self,
        name: &'a str,
        none: F,
        from_name: fn(&str) -> Option<F>,
        known: impl Fn() -> Vec<&'static str>,
    ) -> Result<F, ApiError> {
        let (value, field) = self.field(name);
        let Some(value) = value else {
            return Ok(none);
        };
        let Some(list) = value.as_array() else {
            let field = field.to_string();
            return Err(ApiError::new(
                ErrorCode::InvalidType,
                field.clone(),
                format!("{field} must be a list of flag names"),
            ));
        };
        let mut flags = none;
        for (index, item) in list.iter().enumerate() {
            let item_field = || format!("{field}[{index}]");
            let Some(text) = item.as_str() else {
                let item_field = item_field();
                return Err(ApiError::new(
                    ErrorCode::InvalidType,
                    item_field.clone(),
                    format!("{item_field} must be a flag name"),
                ));
            };
            let Some(flag) = from_name(text) else {
                let item_field = item_field();
                return Err(ApiError::new(
                    ErrorCode::UnknownFlag,
                    item_field.clone(),
                    format!("unknown flag {text:?} in {item_field}; the flags are {}", known().join(", ")),
                ));
            };
            flags = flags | flag;
        }
        Ok(flags)
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

fn name(path: &str) -> &str {
    if path.is_empty() { "the body" } else { path }
}

/// A decimal string with a value of at most `max`; `field` is written out only on an error.
fn decimal(value: &Value, field: impl std::fmt::Display, max: u128) -> Result<u128, ApiError> {
    let Some(text) = value.as_str() else {
        let field = field.to_string();
        let message =
            format!("{field} must be a decimal string such as \"42\" (large integers do not survive JSON numbers)");
        return Err(ApiError::new(ErrorCode::InvalidType, field, message));
    };
    let invalid = |why: &str| {
        let field = field.to_string();
        let message = format!("{field} {why}, got {text:?}");
        ApiError::new(ErrorCode::InvalidNumber, field, message)
    };
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid("must contain only the digits 0-9"));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(invalid("must not have leading zeros"));
    }
    match text.parse::<u128>() {
        Ok(number) if number <= max => Ok(number),
        _ => Err(invalid(&format!("must be at most {max}"))),
    }
}

const ACCOUNT_FIELDS: &[&str] = &[
    "id",
    "debits_pending",
    "debits_posted",
    "credits_pending",
    "credits_posted",
    "user_data_128",
    "user_data_64",
    "user_data_32",
    "reserved",
    "ledger",
    "code",
    "flags",
    "timestamp",
];

const TRANSFER_FIELDS: &[&str] = &[
    "id",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "pending_id",
    "user_data_128",
    "user_data_64",
    "user_data_32",
    "timeout",
    "ledger",
    "code",
    "flags",
    "timestamp",
];

fn account_flag_names() -> Vec<&'static str> {
    AccountFlags::NAMED.iter().map(|(_, name)| *name).collect()
}

fn transfer_flag_names() -> Vec<&'static str> {
    TransferFlags::NAMED.iter().map(|(_, name)| *name).collect()
}

/// An account from JSON; `path` names it in errors (`accounts[0]`).
pub fn account_from_json(value: &Value, path: &str) -> Result<Account, ApiError> {
    account_at(value, Place::Named(path))
}

fn account_at(value: &Value, place: Place<'_>) -> Result<Account, ApiError> {
    let object = Object::new(value, place, ACCOUNT_FIELDS)?;
    object.required("id")?;
    Ok(Account {
        id: object.u128("id")?,
        debits_pending: object.u128("debits_pending")?,
        debits_posted: object.u128("debits_posted")?,
        credits_pending: object.u128("credits_pending")?,
        credits_posted: object.u128("credits_posted")?,
        user_data_128: object.u128("user_data_128")?,
        user_data_64: object.u64("user_data_64")?,
        user_data_32: object.u32("user_data_32")?,
        reserved: object.u32("reserved")?,
        ledger: object.u32("ledger")?,
        code: object.u16("code")?,
        flags: object.flags("flags", AccountFlags::NONE, AccountFlags::from_name, account_flag_names)?,
        timestamp: object.u64("timestamp")?,
    })
}

/// A transfer from JSON; `path` names it in errors (`transfers[0]`).
pub fn transfer_from_json(value: &Value, path: &str) -> Result<Transfer, ApiError> {
    transfer_at(value, Place::Named(path))
}

fn transfer_at(value: &Value, place: Place<'_>) -> Result<Transfer, ApiError> {
    let object = Object::new(value, place, TRANSFER_FIELDS)?;
    object.required("id")?;
    Ok(Transfer {
        id: object.u128("id")?,
        debit_account_id: object.u128("debit_account_id")?,
        credit_account_id: object.u128("credit_account_id")?,
        amount: object.u128("amount")?,
        pending_id: object.u128("pending_id")?,
        user_data_128: object.u128("user_data_128")?,
        user_data_64: object.u64("user_data_64")?,
        user_data_32: object.u32("user_data_32")?,
        timeout: object.u32("timeout")?,
        ledger: object.u32("ledger")?,
        code: object.u16("code")?,
        flags: object.flags("flags", TransferFlags::NONE, TransferFlags::from_name, transfer_flag_names)?,
        timestamp: object.u64("timestamp")?,
    })
}

/// A JSON list of at most `BATCH_EVENTS_MAX` items, each decoded by `item`.
fn batch_from_json<T>(
    value: &Value,
    path: &str,
    item: impl Fn(&Value, Place<'_>) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    let list = value
        .as_array()
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidType, path, format!("{} must be a list", name(path))))?;
    if list.len() > BATCH_EVENTS_MAX {
        return Err(ApiError::new(
            ErrorCode::BatchTooLong,
            path,
            format!("{} has {} items; a batch holds at most {BATCH_EVENTS_MAX}", name(path), list.len()),
        ));
    }
    list.iter().enumerate().map(|(index, value)| item(value, Place::Item(path, index))).collect()
}

/// A batch of accounts from a JSON list.
pub fn accounts_from_json(value: &Value, path: &str) -> Result<Vec<Account>, ApiError> {
    batch_from_json(value, path, account_at)
}

/// A batch of transfers from a JSON list.
pub fn transfers_from_json(value: &Value, path: &str) -> Result<Vec<Transfer>, ApiError> {
    batch_from_json(value, path, transfer_at)
}

/// A list of ids (decimal strings) for a lookup.
pub fn ids_from_json(value: &Value, path: &str) -> Result<Vec<u128>, ApiError> {
    batch_from_json(value, path, |value, place| decimal(value, place, u128::MAX))
}

/// An `AccountFilter` from JSON.
pub fn account_filter_from_json(value: &Value, path: &str) -> Result<AccountFilter, ApiError> {
    let object = Object::new(
        value,
        Place::Named(path),
        &[
            "account_id",
            "user_data_128",
            "user_data_64",
            "user_data_32",
            "code",
            "timestamp_min",
            "timestamp_max",
            "limit",
            "flags",
        ],
    )?;
    object.required("account_id")?;
    Ok(AccountFilter {
        account_id: object.u128("account_id")?,
        user_data_128: object.u128("user_data_128")?,
        user_data_64: object.u64("user_data_64")?,
        user_data_32: object.u32("user_data_32")?,
        code: object.u16("code")?,
        timestamp_min: object.u64("timestamp_min")?,
        timestamp_max: object.u64("timestamp_max")?,
        limit: object.u32("limit")?,
        flags: object.flags("flags", AccountFilterFlags::NONE, AccountFilterFlags::from_name, || {
            AccountFilterFlags::NAMED.iter().map(|(_, name)| *name).collect()
        })?,
    })
}

/// A `QueryFilter` from JSON.
pub fn query_filter_from_json(value: &Value, path: &str) -> Result<QueryFilter, ApiError> {
    let object = Object::new(
        value,
        Place::Named(path),
        &[
            "user_data_128",
            "user_data_64",
            "user_data_32",
            "ledger",
            "code",
            "timestamp_min",
            "timestamp_max",
            "limit",
            "flags",
        ],
    )?;
    Ok(QueryFilter {
        user_data_128: object.u128("user_data_128")?,
        user_data_64: object.u64("user_data_64")?,
        user_data_32: object.u32("user_data_32")?,
        ledger: object.u32("ledger")?,
        code: object.u16("code")?,
        timestamp_min: object.u64("timestamp_min")?,
        timestamp_max: object.u64("timestamp_max")?,
        limit: object.u32("limit")?,
        flags: object.flags("flags", QueryFilterFlags::NONE, QueryFilterFlags::from_name, || {
            QueryFilterFlags::NAMED.iter().map(|(_, name)| *name).collect()
        })?,
    })
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> Value {
    Value::Array(names.map(|name| Value::String(name.to_string())).collect())
}

/// An account as JSON (every field, flags by name).
pub fn account_to_json(account: &Account) -> Value {
    json!({
        "id": account.id.to_string(),
        "debits_pending": account.debits_pending.to_string(),
        "debits_posted": account.debits_posted.to_string(),
        "credits_pending": account.credits_pending.to_string(),
        "credits_posted": account.credits_posted.to_string(),
        "user_data_128": account.user_data_128.to_string(),
        "user_data_64": account.user_data_64.to_string(),
        "user_data_32": account.user_data_32,
        "reserved": account.reserved,
        "ledger": account.ledger,
        "code": account.code,
        "flags": names(account.flags.names()),
        "timestamp": account.timestamp.to_string(),
    })
}

/// A transfer as JSON (every field, flags by name).
pub fn transfer_to_json(transfer: &Transfer) -> Value {
    json!({
        "id": transfer.id.to_string(),
        "debit_account_id": transfer.debit_account_id.to_string(),
        "credit_account_id": transfer.credit_account_id.to_string(),
        "amount": transfer.amount.to_string(),
        "pending_id": transfer.pending_id.to_string(),
        "user_data_128": transfer.user_data_128.to_string(),
        "user_data_64": transfer.user_data_64.to_string(),
        "user_data_32": transfer.user_data_32,
        "timeout": transfer.timeout,
        "ledger": transfer.ledger,
        "code": transfer.code,
        "flags": names(transfer.flags.names()),
        "timestamp": transfer.timestamp.to_string(),
    })
}

/// A balance-history entry as JSON.
pub fn account_balance_to_json(balance: &AccountBalance) -> Value {
    json!({
        "debits_pending": balance.debits_pending.to_string(),
        "debits_posted": balance.debits_posted.to_string(),
        "credits_pending": balance.credits_pending.to_string(),
        "credits_posted": balance.credits_posted.to_string(),
        "timestamp": balance.timestamp.to_string(),
    })
}

/// Per-event results as JSON: `{"index", "status", "timestamp"}` for each event, in order.
fn results_to_json(results: impl Iterator<Item = (&'static str, u64)>) -> Value {
    Value::Array(
        results
            .enumerate()
            .map(|(index, (status, timestamp))| {
                json!({ "index": index, "status": status, "timestamp": timestamp.to_string() })
            })
            .collect(),
    )
}

/// The results of `create_accounts`, one per event.
pub fn create_account_results_to_json(results: &[CreateAccountResult]) -> Value {
    results_to_json(results.iter().map(|result| (result.status.name(), result.timestamp)))
}

/// The results of `create_transfers`, one per event.
pub fn create_transfer_results_to_json(results: &[CreateTransferResult]) -> Value {
    results_to_json(results.iter().map(|result| (result.status.name(), result.timestamp)))
}
