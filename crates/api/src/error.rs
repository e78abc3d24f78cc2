//! The errors a client can get for bad input: a stable code, an HTTP status, a message, and the
//! path of the offending field.

use std::fmt;

/// A stable, machine-readable error code. The snake-case names are part of the API: clients
/// match on them, so they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The body is not valid JSON.
    MalformedJson,
    /// A field has the wrong JSON type (a number where a string is expected, …).
    InvalidType,
    /// A required field is missing.
    MissingField,
    /// A field this version does not know.
    UnknownField,
    /// An object that names the same field twice (JSON leaves the meaning open).
    DuplicateField,
    /// A number string that is not a plain decimal integer, or out of the field's range.
    InvalidNumber,
    /// A flag name this version does not know for that kind of flags.
    UnknownFlag,
    /// More events in one batch than `BATCH_EVENTS_MAX`, or more ids than a lookup takes.
    BatchTooLong,
    /// A body over the size limit.
    BodyTooLarge,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: &'static [Self] = &[
        Self::MalformedJson,
        Self::InvalidType,
        Self::MissingField,
        Self::UnknownField,
        Self::DuplicateField,
        Self::InvalidNumber,
        Self::UnknownFlag,
        Self::BatchTooLong,
        Self::BodyTooLarge,
    ];

    /// The code's snake-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::InvalidType => "invalid_type",
            Self::MissingField => "missing_field",
            Self::UnknownField => "unknown_field",
            Self::DuplicateField => "duplicate_field",
            Self::InvalidNumber => "invalid_number",
            Self::UnknownFlag => "unknown_flag",
            Self::BatchTooLong => "batch_too_long",
            Self::BodyTooLarge => "body_too_large",
        }
    }

    /// The HTTP status that goes with the code.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::BodyTooLarge => 413,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Bad input: which rule it broke, where, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    /// The path of the offending field, such as `transfers[3].amount` (empty for the body).
    pub field: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code, field: field.into(), message: message.into() }
    }

    /// The error as the JSON body of an HTTP answer:
    /// `{"error": {"code": …, "field": …, "message": …}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": { "code": self.code.name(), "field": self.field, "message": self.message }
        })
    }
}
