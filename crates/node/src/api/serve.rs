//! The API's HTTP/1.1 server, with the bounds that a server facing untrusted callers needs and
//! that `axum::serve` lacks: at most `CONNECTIONS_MAX` connections at once (further ones wait
//! in the kernel's accept queue), and a connection that does not send a request's headers
//! within `HEADER_READ_TIMEOUT_MS`, or stays idle that long between requests, is closed. So
//! idle or trickling connections cannot use up a validator's file descriptors (which its
//! journals need too). Bodies have a time limit of their own (`input::read_body`).

use crate::constants::{CONNECTIONS_MAX, HEADER_READ_TIMEOUT_MS};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How long to wait before accepting again after `accept` failed (out of descriptors, say).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `stopping` becomes true, then lets each connection
/// finish the request it is answering and returns.
pub async fn serve(listener: TcpListener, router: Router, mut stopping: watch::Receiver<bool>) {
    let turns = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let mut connections = JoinSet::new();
    loop {
        let turn = tokio::select! {
            turn = turns.clone().acquire_owned() => turn.expect("the connection semaphore is never closed"),
            () = stopped(&mut stopping) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "the API could not accept a connection");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = stopped(&mut stopping) => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let mut connection_stopping = stopping.clone();
        connections.spawn(async move {
            let _turn = turn;
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_millis(HEADER_READ_TIMEOUT_MS))
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stopped(&mut connection_stopping) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

/// Returns once `stopping` is true (or its sender is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopping| *stopping).await;
}
