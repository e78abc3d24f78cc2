//! Every kind of bad input gets its stable code and the path of the field; good input round-trips.

use proptest::prelude::*;
use serde_json::json;
use tally_api::*;
use tally_ledger::*;

fn transfers(body: &str) -> Result<Vec<Transfer>, ApiError> {
    transfers_from_json(&parse_body(body.as_bytes())?, "transfers")
}

fn error(body: &str) -> (ErrorCode, String) {
    let error = transfers(body).expect_err("bad input is refused");
    (error.code, error.field)
}

#[test]
fn malformed_json() {
    let error = parse_body(b"[{\"id\": \"1\",").unwrap_err();
    assert_eq!(error.code, ErrorCode::MalformedJson);
    assert_eq!(error.code.http_status(), 400);
    assert!(error.message.contains("EOF"), "{}", error.message);
}

#[test]
fn oversized_body_is_refused_before_parsing() {
    let body = vec![b' '; BODY_BYTES_MAX + 1];
    let error = parse_body(&body).unwrap_err();
    assert_eq!(error.code, ErrorCode::BodyTooLarge);
    assert_eq!(error.code.http_status(), 413);
}

#[test]
fn wrong_types() {
    assert_eq!(error(r#"{"id": "1"}"#), (ErrorCode::InvalidType, "transfers".into()));
    assert_eq!(error(r#"[7]"#), (ErrorCode::InvalidType, "transfers[0]".into()));
    assert_eq!(error(r#"[{"id": 1}]"#), (ErrorCode::InvalidType, "transfers[0].id".into()));
    assert_eq!(error(r#"[{"id": "1", "ledger": "1"}]"#), (ErrorCode::InvalidType, "transfers[0].ledger".into()));
    assert_eq!(error(r#"[{"id": "1", "flags": "pending"}]"#), (ErrorCode::InvalidType, "transfers[0].flags".into()));
    assert_eq!(error(r#"[{"id": "1", "flags": [1]}]"#), (ErrorCode::InvalidType, "transfers[0].flags[0]".into()));
}

#[test]
fn non_numeric_and_out_of_range_numbers() {
    for bad in ["-1", "+1", " 1", "1.0", "1e3", "0x10", "", "01", "abc", "340282366920938463463374607431768211456"] {
        let body = json!([{ "id": "1", "amount": bad }]).to_string();
        assert_eq!(error(&body), (ErrorCode::InvalidNumber, "transfers[0].amount".into()), "{bad:?}");
    }
    // u64 fields stop at 2^64 - 1.
    let body = json!([{ "id": "1", "user_data_64": "18446744073709551616" }]).to_string();
    assert_eq!(error(&body), (ErrorCode::InvalidNumber, "transfers[0].user_data_64".into()));
    // Numbers out of a u16 or u32 field's range, negative or fractional.
    for (field, bad) in
        [("code", json!(65_536)), ("ledger", json!(4_294_967_296u64)), ("timeout", json!(-1)), ("code", json!(1.5))]
    {
        let body = json!([{ "id": "1", field: bad }]).to_string();
        assert_eq!(error(&body), (ErrorCode::InvalidNumber, format!("transfers[0].{field}")), "{field} {bad}");
    }
}

#[test]
fn unknown_fields_and_flags() {
    let (code, field) = error(r#"[{"id": "1", "ammount": "5"}]"#);
    assert_eq!((code, field.as_str()), (ErrorCode::UnknownField, "transfers[0].ammount"));
    let error = transfers(r#"[{"id": "1", "flags": ["pending", "instant"]}]"#).unwrap_err();
    assert_eq!((error.code, error.field.as_str()), (ErrorCode::UnknownFlag, "transfers[0].flags[1]"));
    assert!(error.message.contains("post_pending_transfer"), "the message lists the flags: {}", error.message);
    // An account flag is not a transfer flag.
    assert_eq!(error_code(r#"[{"id": "1", "flags": ["history"]}]"#), ErrorCode::UnknownFlag);
}

fn error_code(body: &str) -> ErrorCode {
    error(body).0
}

#[test]
fn missing_id() {
    assert_eq!(error(r#"[{"amount": "5"}]"#), (ErrorCode::MissingField, "transfers[0].id".into()));
    let error = account_filter_from_json(&json!({"limit": 10}), "filter").unwrap_err();
    assert_eq!((error.code, error.field.as_str()), (ErrorCode::MissingField, "filter.account_id"));
}

#[test]
fn batches_over_the_limit() {
    let batch: Vec<_> = (1..=BATCH_EVENTS_MAX + 1).map(|id| json!({ "id": id.to_string() })).collect();
    let error = transfers_from_json(&json!(batch), "transfers").unwrap_err();
    assert_eq!((error.code, error.field.as_str()), (ErrorCode::BatchTooLong, "transfers"));
    let error = ids_from_json(&json!(vec!["1"; BATCH_EVENTS_MAX + 1]), "ids").unwrap_err();
    assert_eq!(error.code, ErrorCode::BatchTooLong);
    assert_eq!(transfers_from_json(&json!(batch[..BATCH_EVENTS_MAX]), "transfers").unwrap().len(), BATCH_EVENTS_MAX);
}

#[test]
fn error_bodies_are_stable_json() {
    let error = transfers(r#"[{"id": "x"}]"#).unwrap_err();
    let body = error.to_json();
    assert_eq!(body["error"]["code"], "invalid_number");
    assert_eq!(body["error"]["field"], "transfers[0].id");
    assert!(body["error"]["message"].as_str().unwrap().contains("digits"));
    let names: std::collections::HashSet<_> = ErrorCode::ALL.iter().map(|code| code.name()).collect();
    assert_eq!(names.len(), ErrorCode::ALL.len(), "codes have distinct names");
}

#[test]
fn filters_and_results() {
    let filter = account_filter_from_json(
        &json!({"account_id": "7", "limit": 10, "timestamp_min": "5", "flags": ["debits", "reversed"]}),
        "filter",
    )
    .unwrap();
    assert_eq!(filter.account_id, 7);
    assert_eq!(filter.flags, AccountFilterFlags::DEBITS | AccountFilterFlags::REVERSED);
    let query = query_filter_from_json(&json!({"ledger": 3, "limit": 1}), "query").unwrap();
    assert_eq!((query.ledger, query.limit), (3, 1));

    let results = [CreateTransferResult { timestamp: 9, status: CreateTransferStatus::ExceedsCredits }];
    assert_eq!(
        create_transfer_results_to_json(&results),
        json!([{"index": 0, "status": "exceeds_credits", "timestamp": "9"}])
    );
}

fn any_account() -> impl Strategy<Value = Account> {
    (any::<[u128; 6]>(), any::<u64>(), any::<[u32; 3]>(), any::<u16>(), 0u16..64, any::<u64>()).prop_map(
        |(wide, user_data_64, narrow, code, flags, timestamp)| Account {
            id: wide[0],
            debits_pending: wide[1],
            debits_posted: wide[2],
            credits_pending: wide[3],
            credits_posted: wide[4],
            user_data_128: wide[5],
            user_data_64,
            user_data_32: narrow[0],
            reserved: narrow[1],
            ledger: narrow[2],
            code,
            flags: AccountFlags::from_bits_retain(flags),
            timestamp,
        },
    )
}

fn any_transfer() -> impl Strategy<Value = Transfer> {
    (any::<[u128; 6]>(), any::<u64>(), any::<[u32; 3]>(), any::<u16>(), 0u16..512, any::<u64>()).prop_map(
        |(wide, user_data_64, narrow, code, flags, timestamp)| Transfer {
            id: wide[0],
            debit_account_id: wide[1],
            credit_account_id: wide[2],
            amount: wide[3],
            pending_id: wide[4],
            user_data_128: wide[5],
            user_data_64,
            user_data_32: narrow[0],
            timeout: narrow[1],
            ledger: narrow[2],
            code,
            flags: TransferFlags::from_bits_retain(flags),
            timestamp,
        },
    )
}

proptest! {
    #[test]
    fn accounts_round_trip(account in any_account()) {
        let text = account_to_json(&account).to_string();
        prop_assert_eq!(account_from_json(&parse_body(text.as_bytes()).unwrap(), "account").unwrap(), account);
    }

    #[test]
    fn transfers_round_trip(transfer in any_transfer()) {
        let text = transfer_to_json(&transfer).to_string();
        prop_assert_eq!(transfer_from_json(&parse_body(text.as_bytes()).unwrap(), "transfer").unwrap(), transfer);
    }

    /// Arbitrary bytes are an error or a batch, never a panic.
    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(value) = parse_body(&body) {
            let _ = transfers_from_json(&value, "transfers");
            let _ = accounts_from_json(&value, "accounts");
        }
    }
}

#[test]
fn duplicate_fields_are_refused_with_their_path() {
    let duplicate = |body: &str| {
        let error = parse_body(body.as_bytes()).expect_err("a duplicate is refused");
        assert_eq!(error.code, ErrorCode::DuplicateField, "{body}: {error}");
        assert_eq!(error.code.http_status(), 400);
        error.field
    };
    assert_eq!(duplicate(r#"{"id": "1", "id": "2"}"#), "id");
    assert_eq!(duplicate(r#"{"a": 1, "b": 2, "a": 1}"#), "a");
    assert_eq!(
        duplicate(r#"{"transfers": [{"id": "1"}, {"id": "2", "amount": "3", "amount": "4"}]}"#),
        "transfers[1].amount"
    );
    assert_eq!(duplicate(r#"[[1], [{"x": {"y": 1, "y": 2}}]]"#), "[1][0].x.y");
    assert_eq!(duplicate(r#"{"filter": {"flags": ["debits"], "flags": []}}"#), "filter.flags");
    // The same name in different objects, or as a value, is no duplicate.
    let value = parse_body(br#"{"a": {"a": "a"}, "b": [{"a": 1}, {"a": 2}]}"#).unwrap();
    assert_eq!(value, json!({ "a": { "a": "a" }, "b": [{ "a": 1 }, { "a": 2 }] }));
    // Syntax errors stay malformed_json, even after a duplicate-free prefix.
    assert_eq!(parse_body(br#"{"a": 1, "a"#).unwrap_err().code, ErrorCode::MalformedJson);
    assert_eq!(parse_body(br#"{"a": 1} x"#).unwrap_err().code, ErrorCode::MalformedJson);
}

#[test]
fn the_unique_parser_reads_values_as_serde_json_does() {
    let body =
        br#"{"s": "\u00e9\n", "n": [0, -1, 18446744073709551615, 1.5, -2.5e3], "b": [true, false, null], "o": {}}"#;
    assert_eq!(parse_body(body).unwrap(), serde_json::from_slice::<serde_json::Value>(body).unwrap());
}

/// A full batch of the widest transfers, as a gateway body.
fn full_transfer_batch() -> Vec<u8> {
    let widest = Transfer {
        id: u128::MAX,
        debit_account_id: u128::MAX - 1,
        credit_account_id: u128::MAX - 2,
        amount: u128::MAX,
        pending_id: u128::MAX,
        user_data_128: u128::MAX,
        user_data_64: u64::MAX,
        user_data_32: u32::MAX,
        timeout: u32::MAX,
        ledger: u32::MAX,
        code: u16::MAX,
        flags: TransferFlags::LINKED | TransferFlags::PENDING | TransferFlags::BALANCING_DEBIT,
        timestamp: 0,
    };
    let transfers: Vec<_> = (0..BATCH_EVENTS_MAX).map(|_| transfer_to_json(&widest)).collect();
    serde_json::to_vec(&json!({ "transfers": transfers, "request_id": "1" })).unwrap()
}

/// Refusing duplicates costs a full batch little. The bound only catches a pathological
/// slowdown (a check per key that rescanned the object would be far slower): parsing takes at
/// most four times as long as serde_json's own `Value` parser, the best of several interleaved
/// runs each, so that a busy shared machine does not fail it. (It prints both times; it runs
/// about as fast.)
#[test]
fn a_full_batch_parses_about_as_fast_as_serde_json_alone() {
    let body = full_transfer_batch();
    assert!(body.len() <= BODY_BYTES_MAX, "{} bytes", body.len());
    let time = |parse: &dyn Fn() -> serde_json::Value| {
        let started = std::time::Instant::now();
        let value = std::hint::black_box(parse());
        let elapsed = started.elapsed();
        assert_eq!(value["transfers"].as_array().unwrap().len(), BATCH_EVENTS_MAX);
        elapsed
    };
    let (mut plain, mut unique) = (std::time::Duration::MAX, std::time::Duration::MAX);
    for _ in 0..9 {
        plain = plain.min(time(&|| serde_json::from_slice(&body).unwrap()));
        unique = unique.min(time(&|| parse_body(&body).unwrap()));
    }
    println!("a full batch ({} bytes): serde_json {plain:?}, parse_body {unique:?}", body.len());
    assert!(unique.as_secs_f64() <= plain.as_secs_f64() * 4.0, "serde_json {plain:?}, parse_body {unique:?}");
    assert_eq!(parse_body(&body).unwrap(), serde_json::from_slice::<serde_json::Value>(&body).unwrap());
}
