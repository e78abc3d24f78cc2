//! `GET /v1/backup`: this validator's newest proven snapshot as a backup file
//! (`tally_chain::backup`, documented byte by byte in docs/API.md), streamed chunk by chunk: the
//! header first, then each chunk read from the snapshot store as the caller takes it, so a
//! backup never holds more than one chunk of the state in memory.

use crate::api::ApiState;
use crate::api::failure::Failure;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use commonware_codec::Encode as _;
use std::sync::Arc;
use std::time::Duration;
use tally_chain::Mailbox;
use tally_chain::backup::BackupHeader;
use tracing::{info, warn};

/// How long a chunk read waits for a validator too busy to answer before the backup is given up.
const CHUNK_BUSY_WAIT: Duration = Duration::from_secs(10);

/// Between two asks of a busy validator for a chunk.
const CHUNK_BUSY_RETRY: Duration = Duration::from_millis(20);

/// Why a backup stopped after its answer began: the caller sees the body end early.
#[derive(Debug, thiserror::Error)]
enum Broken {
    #[error("the validator was too busy to read chunk {index} for {CHUNK_BUSY_WAIT:?}")]
    Busy { index: u32 },
    #[error(
        "the snapshot at height {height} is no longer held (two newer ones were written while it streamed); take \
         the backup again"
    )]
    Replaced { height: u64 },
    #[error("chunk {index} of the snapshot at height {height} no longer matches its hash (the disk is damaged?)")]
    Damaged { height: u64, index: u32 },
}

/// Reads chunk `index`, asking again while the validator is busy.
async fn read_chunk(mailbox: &Mailbox, header: &BackupHeader, index: u32) -> Result<Bytes, Broken> {
    let mut waited = Duration::ZERO;
    loop {
        match mailbox.snapshot_chunk(header.height, index).await {
            Some(Some(bytes)) => {
                if header.check_chunk(index, &bytes).is_err() {
                    return Err(Broken::Damaged { height: header.height, index });
                }
                return Ok(Bytes::from(bytes));
            }
            Some(None) => return Err(Broken::Replaced { height: header.height }),
            None if waited < CHUNK_BUSY_WAIT => {
                tokio::time::sleep(CHUNK_BUSY_RETRY).await;
                waited += CHUNK_BUSY_RETRY;
            }
            None => return Err(Broken::Busy { index }),
        }
    }
}

/// `GET /v1/backup`.
pub async fn backup(State(api): State<ApiState>) -> Result<Response, Failure> {
    if api.health.is_halted() {
        return Err(Failure::halted());
    }
    let source = api.mailbox.backup().await.ok_or_else(|| api.unavailable())?;
    let Some(source) = source else {
        return Err(Failure::snapshot_not_ready(
            "this validator holds no snapshot that a certified header proves yet (one is written every few hundred \
             finalized heights once the state changes, and proven once the block above it is final); retry later \
             or ask another validator",
        ));
    };
    let header = Arc::new(BackupHeader {
        chain_id: api.genesis.chain_id(),
        height: source.height,
        list: source.list,
        proof: source.above.encode().to_vec(),
    });
    let head = Bytes::from(header.encode());
    let length = head.len() as u64 + header.list.length;
    info!(height = header.height, bytes = length, chunks = header.chunk_count(), "serving a backup");
    let mailbox = api.mailbox.clone();
    let chunks = futures::stream::unfold((Some(head), 0u32), move |(head, index)| {
        let (mailbox, header) = (mailbox.clone(), header.clone());
        async move {
            if let Some(head) = head {
                return Some((Ok(head), (None, index)));
            }
            if index >= header.chunk_count() {
                info!(height = header.height, "backup served");
                return None;
            }
            match read_chunk(&mailbox, &header, index).await {
                Ok(bytes) => Some((Ok(bytes), (None, index + 1))),
                Err(error) => {
                    warn!(height = header.height, %error, "a backup broke off");
                    Some((Err(error), (None, u32::MAX)))
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Ok(response)
}
