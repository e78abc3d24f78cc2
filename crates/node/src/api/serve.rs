//! The API's HTTP/1.1 server, with the bounds that a server facing untrusted callers needs and
//! that `axum::serve` lacks:
//!
//! - At most `CONNECTIONS_MAX` connections at once (further ones wait in the kernel's accept
//!   queue), at most `CONNECTIONS_PER_ADDRESS_MAX` from one address, and idle connections
//!   closed early once `CONNECTIONS_IDLE_CLOSE_FROM` are open (`connections.rs` decides which).
//!   So idle sockets, from one address or many, cannot keep new callers waiting or use up the
//!   validator's file descriptors (which its journals need too).
//! - A connection that does not send a request's headers within `HEADER_READ_TIMEOUT_MS`, or
//!   stays idle that long between requests, is closed.
//!
//! Bodies have limits of their own (`input::read_body`).

use crate::api::connections::{Admission, Closing, Connections};
use crate::constants::{CONNECTION_WARNING_INTERVAL_MS, CONNECTIONS_MAX, HEADER_READ_TIMEOUT_MS};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
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
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// How long to wait before accepting again after `accept` failed (out of descriptors, say).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

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
                drop(stream);
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

impl Connection {
    async fn serve(mut self, stream: TcpStream, peer: SocketAddr, router: Router) {
        let service = TowerToHyperService::new(Tracked { router, id: self.id, book: self.book.clone() });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(HEADER_READ_TIMEOUT_MS))
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            () = stopped(&mut self.stopping) => {}
            () = self.closer.notified() => {}
        }
        let closing = self.book.lock().connections.closing(self.id);
        tracing::debug!(%peer, ?closing, "closing an API connection");
        if closing == Closing::AfterAnswer {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// The router, noting in the book when each request begins and when its answer is out.
#[derive(Clone)]
struct Tracked {
    router: Router,
    id: u64,
    book: Arc<SharedBook>,
}

impl tower::Service<Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let answering = Answering::begin(self.book.clone(), self.id);
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
