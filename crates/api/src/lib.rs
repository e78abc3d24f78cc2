//! Tally's JSON representation of ledger objects, shared by the HTTP API, the CLI and the client
//! SDK, and the stable errors every bad input gets.
//!
//! ```
//! use tally_api::*;
//!
//! let body = br#"[{"id": "1", "debit_account_id": "10", "credit_account_id": "20",
//!                 "amount": "340282366920938463463374607431768211455", "ledger": 1, "code": 1,
//!                 "flags": ["pending"]}]"#;
//! let transfers = transfers_from_json(&parse_body(body).unwrap(), "transfers").unwrap();
//! assert_eq!(transfers[0].amount, u128::MAX);
//!
//! let error = transfers_from_json(&parse_body(br#"[{"id": "-1"}]"#).unwrap(), "transfers").unwrap_err();
//! assert_eq!(error.code, ErrorCode::InvalidNumber);
//! assert_eq!(error.field, "transfers[0].id");
//! ```

mod error;
mod json;

pub use error::{ApiError, ErrorCode};
pub use json::*;
