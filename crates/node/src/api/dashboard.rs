//! The dashboard: one HTML page, its script and its style, compiled into the binary. It reads
//! the same API as everyone else (`/v1/status`, `/v1/blocks`, `/v1/transfers/recent`, ...).
//! Its second script, `verify.js`, checks the state receipts of the accounts and transfers it
//! shows against a genesis the reader gives it, in the browser (`docs/DASHBOARD.md`).

use axum::http::header;
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../../assets/dashboard.html");
const SCRIPT: &str = include_str!("../../assets/dashboard.js");
const STYLE: &str = include_str!("../../assets/dashboard.css");
const VERIFY_SCRIPT: &str = include_str!("../../assets/verify.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// `GET /`.
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

/// `GET /dashboard.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /dashboard.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /verify.js`.
pub async fn verify_script() -> Response {
    asset("text/javascript; charset=utf-8", VERIFY_SCRIPT)
}
