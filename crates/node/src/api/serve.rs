//! The API's HTTP/1.1 server, with the bounds that a server facing untrusted callers needs and
//! that `axum::serve` lacks:
//!
//! - At most `CONNECTIONS_MAX` connections at once (further ones wait in the kernel's accept
//!   queue), at most `CONNECTIONS_PER_ADDRESS_MAX` from one address, and idle connections
//!   closed early once `CONNECTIONS_IDLE_CLOSE_FROM` are open (`connections.rs` decides which).
//!   So idle sockets, from one address or many, cannot keep new callers waiting or use up the
//!   validator's file descriptors (which its journals need too).
//! - A connection refused at the per-address cap is told so: a fixed 429 `busy` answer in the
//!   API's own form (`refuse`), written by a task of its own within `REFUSAL_WRITE_TIMEOUT_MS`,
//!   so that callers see why and the accept loop never waits on them.
//! - A connection that does not send a request's headers within `HEADER_READ_TIMEOUT_MS`, or
//!   stays idle that long between requests, is closed.
//! - A connection whose answer cannot be written for `ANSWER_WRITE_TIMEOUT_MS` (the caller
//!   reads nothing, say while pipelining requests) is dropped (`Watched`), and a connection told
//!   to close gets a bounded time to finish its answer.
//!
//! Bodies have limits of their own (`input::read_body`), and so does what one caller may hold
//! (`caller.rs`); each request carries its peer's address (`ConnectInfo`) for them.

use crate::api::connections::{Admission, Closing, Connections};
use crate::api::failure::Failure;
use crate::constants::{
    ANSWER_WRITE_TIMEOUT_MS, CLOSE_AFTER_ANSWER_TIMEOUT_MS, CONNECTION_WARNING_INTERVAL_MS, CONNECTIONS_MAX,
    CONNECTIONS_PER_ADDRESS_MAX, HEADER_READ_TIMEOUT_MS, REFUSAL_WRITE_TIMEOUT_MS, REFUSALS_IN_FLIGHT_MAX,
    RETRY_AFTER_SECONDS_BUSY, STOP_TIMEOUT_MS,
};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// How long to wait before accepting again after `accept` failed (out of descriptors, say).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The most a refused caller's request is read (and dropped) after its answer, so that closing
/// with the request unread does not reset the connection and lose the answer on its way.
const REFUSAL_DRAIN_MAX: usize = 64 * 1024;

/// The open connections and how to tell each to close.
#[derive(Debug, Default)]
struct Book {
    connections: Connections,
    closers: HashMap<u64, Arc<Notify>>,
}

#[derive(Debug, Default)]
struct SharedBook(Mutex<Book>);

impl SharedBook {
    fn lock(&self) -> MutexGuard<'_, Book> {
        // The book is only changed by assertion-checked methods; a panic in one is a bug that
        // has been reported already, and the connections must still be let go.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Book {
    fn close(&self, ids: &[u64]) {
        for id in ids {
            self.closers.get(id).expect("every open connection has a closer").notify_one();
        }
    }
}

/// An operator warning that repeats at most once per `CONNECTION_WARNING_INTERVAL_MS`, counting
/// what it left out, so that a flood of connections cannot flood the log.
#[derive(Debug, Default)]
struct Warning {
    last: Option<Instant>,
    left_out: u64,
}

impl Warning {
    /// Whether to log now, and how many occurrences were left out since the last line.
    fn due(&mut self, now: Instant) -> Option<u64> {
        let interval = Duration::from_millis(CONNECTION_WARNING_INTERVAL_MS);
        if self.last.is_some_and(|last| now.duration_since(last) < interval) {
            self.left_out += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.left_out))
    }
}

#[derive(Debug, Default)]
struct Warnings {
    full: Warning,
    refused: Warning,
    crowded: Warning,
}

/// Serves `router` on `listener` until `stopping` becomes true, then lets each connection
/// finish the request it is answering and returns.
pub async fn serve(listener: TcpListener, router: Router, mut stopping: watch::Receiver<bool>) {
    let turns = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT_MAX));
    let refusal = refusal_answer();
    let book = Arc::new(SharedBook::default());
    let mut warnings = Warnings::default();
    let mut connections = JoinSet::new();
    loop {
        let turn = match turns.clone().try_acquire_owned() {
            Ok(turn) => turn,
            Err(_) => {
                if let Some(left_out) = warnings.full.due(Instant::now()) {
                    tracing::warn!(
                        connections = CONNECTIONS_MAX,
                        left_out,
                        "every API connection is answering a request; new callers wait in the accept queue"
                    );
                }
                tokio::select! {
                    turn = turns.clone().acquire_owned() => turn.expect("the connection semaphore is never closed"),
                    () = stopped(&mut stopping) => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "the API could not accept a connection");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = stopped(&mut stopping) => break,
        };
        let now = Instant::now();
        let closer = Arc::new(Notify::new());
        let admission = {
            let mut book = book.lock();
            let admission = book.connections.admit(peer.ip(), now);
            if let Admission::Admitted { id, close } = &admission {
                book.closers.insert(*id, closer.clone());
                book.close(close);
            }
            admission
        };
        let id = match admission {
            Admission::Refused => {
                if let Some(left_out) = warnings.refused.due(now) {
                    tracing::warn!(
                        %peer,
                        left_out,
                        "refused an API connection: its address holds the most connections one address may, all answering requests"
                    );
                }
                // Beyond the refusals being written already, the connection is just closed.
                if let Ok(permit) = refusals.clone().try_acquire_owned() {
                    connections.spawn(refuse(stream, refusal.clone(), permit));
                }
                // Finished refusals are reaped here too: a caller refused again and again must
                // not grow the set while no connection is admitted.
                while connections.try_join_next().is_some() {}
                continue;
            }
            Admission::Admitted { id, close } => {
                if !close.is_empty()
                    && let Some(left_out) = warnings.crowded.due(now)
                {
                    tracing::warn!(
                        %peer,
                        closed = close.len(),
                        left_out,
                        "the API is crowded; closing idle connections to make room"
                    );
                }
                id
            }
        };
        let connection = Connection { id, book: book.clone(), closer, stopping: stopping.clone(), _turn: turn };
        connections.spawn(connection.serve(stream, peer, router.clone()));
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

/// One admitted connection. Dropping it takes it out of the book.
struct Connection {
    id: u64,
    book: Arc<SharedBook>,
    closer: Arc<Notify>,
    stopping: watch::Receiver<bool>,
    _turn: OwnedSemaphorePermit,
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut book = self.book.lock();
        book.connections.remove(self.id);
        book.closers.remove(&self.id);
    }
}

/// What ended a connection's wait.
enum Event {
    Finished,
    StallChanged,
    Due,
    Close { stopping: bool },
}

impl Connection {
    async fn serve(mut self, stream: TcpStream, peer: SocketAddr, router: Router) {
        let (stalled_since, mut stalled) = watch::channel(None);
        let tracked = Tracked { router, id: self.id, peer, book: self.book.clone() };
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(HEADER_READ_TIMEOUT_MS))
            .serve_connection(TokioIo::new(Watched { stream, stalled_since }), TowerToHyperService::new(tracked));
        tokio::pin!(connection);
        // Once told to close: by when the answer in progress must be out.
        let mut close_by: Option<tokio::time::Instant> = None;
        loop {
            let stall_due =
                stalled.borrow_and_update().map(|since| since + Duration::from_millis(ANSWER_WRITE_TIMEOUT_MS));
            let due = stall_due.into_iter().chain(close_by).min();
            let event = tokio::select! {
                _ = connection.as_mut() => Event::Finished,
                Ok(()) = stalled.changed() => Event::StallChanged,
                () = sleep_until(due) => Event::Due,
                () = stopped(&mut self.stopping), if close_by.is_none() => Event::Close { stopping: true },
                () = self.closer.notified(), if close_by.is_none() => Event::Close { stopping: false },
            };
            match event {
                Event::Finished => return,
                Event::StallChanged => {}
                Event::Due => {
                    if due == stall_due {
                        tracing::debug!(%peer, "dropping an API connection: it has not read its answer for too long");
                    } else {
                        tracing::debug!(%peer, "dropping an API connection: it did not finish answering in time");
                    }
                    return;
                }
                Event::Close { stopping } => {
                    let closing = self.book.lock().connections.closing(self.id);
                    tracing::debug!(%peer, ?closing, stopping, "closing an API connection");
                    if closing == Closing::Drop {
                        return;
                    }
                    connection.as_mut().graceful_shutdown();
                    let wait = if stopping { STOP_TIMEOUT_MS } else { CLOSE_AFTER_ANSWER_TIMEOUT_MS };
                    close_by = Some(tokio::time::Instant::now() + Duration::from_millis(wait));
                }
            }
        }
    }
}

/// Answers a connection refused at the per-address cap with a fixed 429 `busy`, all within
/// `REFUSAL_WRITE_TIMEOUT_MS`: waits for the request's head first (an HTTP client takes an answer
/// that comes before its request for a broken connection), then writes the answer, and reads
/// what else the caller sent until it closes.
async fn refuse(mut stream: TcpStream, answer: Bytes, _permit: OwnedSemaphorePermit) {
    let started = tokio::time::Instant::now();
    let budget = Duration::from_millis(REFUSAL_WRITE_TIMEOUT_MS);
    let mut buffer = [0u8; 4096];
    let mut read = 0;
    let head = async {
        // The last three bytes of the previous read, so that a head end split across reads is seen.
        let mut window: Vec<u8> = Vec::new();
        while read < REFUSAL_DRAIN_MAX {
            let count = stream.read(&mut buffer).await?;
            if count == 0 {
                return Ok(false);
            }
            read += count;
            window.extend_from_slice(&buffer[..count]);
            if window.windows(4).any(|four| four == b"\r\n\r\n") {
                break;
            }
            window.drain(..window.len().saturating_sub(3));
        }
        Ok::<bool, std::io::Error>(true)
    };
    // A caller that sends no head within half the budget is answered anyway.
    if let Ok(Err(_) | Ok(false)) = tokio::time::timeout_at(started + budget / 2, head).await {
        return;
    }
    let answered = async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        // Read the rest until the caller closes: closing with bytes unread would reset the
        // connection, and the answer could be lost on its way.
        while read < REFUSAL_DRAIN_MAX {
            match stream.read(&mut buffer).await? {
                0 => break,
                count => read += count,
            }
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout_at(started + budget, answered).await;
}

/// The whole HTTP answer to a connection refused at the per-address cap.
fn refusal_answer() -> Bytes {
    let failure = Failure::busy(format!(
        "this address holds {CONNECTIONS_PER_ADDRESS_MAX} connections to this validator already, all answering \
         requests; retry shortly"
    ));
    let body = failure.to_json().to_string();
    Bytes::from(format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: {RETRY_AFTER_SECONDS_BUSY}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// A connection's socket, noting since when a write has been waiting for room (the caller has
/// not read what was sent before): hyper has no deadline for writing, so the connection's task
/// keeps one (`ANSWER_WRITE_TIMEOUT_MS`).
struct Watched {
    stream: TcpStream,
    stalled_since: watch::Sender<Option<tokio::time::Instant>>,
}

impl Watched {
    fn note<T>(&self, poll: Poll<T>) -> Poll<T> {
        let waiting = poll.is_pending();
        self.stalled_since.send_if_modified(|since| match (waiting, *since) {
            (true, None) => {
                *since = Some(tokio::time::Instant::now());
                true
            }
            (false, Some(_)) => {
                *since = None;
                true
            }
            _ => false,
        });
        poll
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(context, buffer)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, context: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(context, bytes);
        self.note(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(context, buffers);
        self.note(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_flush(context);
        self.note(poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_shutdown(context);
        self.note(poll)
    }
}

/// Returns at `due`, or never.
async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// The router, noting in the book when each request begins and when its answer is out, and
/// giving each request its peer's address.
#[derive(Clone)]
struct Tracked {
    router: Router,
    id: u64,
    peer: SocketAddr,
    book: Arc<SharedBook>,
}

impl tower::Service<Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let answering = Answering::begin(self.book.clone(), self.id);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let answer = self.router.clone().oneshot(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| Body::new(AnswerBody { body, _answering: answering })))
        })
    }
}

/// A request in progress on a connection, from its headers until its answer is sent (or the
/// connection is gone).
struct Answering {
    id: u64,
    book: Arc<SharedBook>,
}

impl Answering {
    fn begin(book: Arc<SharedBook>, id: u64) -> Self {
        book.lock().connections.begin(id);
        Self { id, book }
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let mut book = self.book.lock();
        if book.connections.end(self.id, Instant::now()) {
            book.close(&[self.id]);
        }
    }
}

/// An answer's body, which ends the request once the server has taken all of it.
struct AnswerBody {
    body: Body,
    _answering: Answering,
}

impl hyper::body::Body for AnswerBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Returns once `stopping` is true (or its sender is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopping| *stopping).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_whole_http_answer_in_the_api_form() {
        let answer = refusal_answer();
        let text = std::str::from_utf8(&answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 429 Too Many Requests\r\n"), "{head}");
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())), "{head}");
        assert!(head.contains(&format!("\r\nretry-after: {RETRY_AFTER_SECONDS_BUSY}\r\n")), "{head}");
        assert!(head.contains("\r\nconnection: close"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "busy");
        assert!(body["error"]["message"].as_str().unwrap().contains("connections"), "{body}");
    }
}
