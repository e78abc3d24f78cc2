//! Which API connections are open, from where, and whether each is answering a request: the
//! synchronous bookkeeping behind `serve.rs`'s connection bounds. It decides; the server acts.
//!
//! - At most `CONNECTIONS_PER_ADDRESS_MAX` per client address: a further connection from an
//!   address at the cap closes that address's connection idle longest, or, when all of them
//!   are answering requests, is refused.
//! - From `CONNECTIONS_IDLE_CLOSE_FROM` open connections on, each new one closes the connection
//!   idle longest (if any is idle), and a connection that finishes a request closes instead of
//!   waiting for the next. So idle sockets cannot fill the server: a new caller takes the place
//!   of an idle one at once instead of queueing behind them until they time out.
//!
//! "Idle" means no request in progress: from the moment the connection opened or its last
//! answer was sent, until the next request's headers have arrived.
//!
//! The server notes when each request begins and ends from hyper's callbacks, whose order it
//! does not control (a pipelined request may begin before the previous answer's body is
//! dropped, and a connection may go before an answer's end is noted). So a request beginning
//! on a busy connection, an end with none in progress, or a connection going with a request in
//! progress are counted and logged, never asserted: what callers send must not panic a
//! validator.

use crate::constants::{CONNECTIONS_IDLE_CLOSE_FROM, CONNECTIONS_MAX, CONNECTIONS_PER_ADDRESS_MAX};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// One open connection.
#[derive(Debug)]
struct Connection {
    address: IpAddr,
    /// Requests being answered (HTTP/1.1 answers one at a time, so 0 or 1, but briefly 2 if hyper
    /// reads a pipelined request before dropping the previous answer).
    requests_in_progress: u32,
    /// Requests answered so far.
    requests_answered: u64,
    /// When it opened or last finished answering.
    idle_since: Instant,
    /// It was told to close.
    closing: bool,
}

impl Connection {
    fn is_idle(&self) -> bool {
        self.requests_in_progress == 0 && !self.closing
    }
}

/// What to do with a new connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Serve it as `id`, and close the connections `close` to make room.
    Admitted { id: u64, close: Vec<u64> },
    /// Its address holds `CONNECTIONS_PER_ADDRESS_MAX` connections already, all answering.
    Refused,
}

/// How a connection that was told to close should go.
#[derive(Debug, PartialEq, Eq)]
pub enum Closing {
    /// It never began a request: drop it now (an HTTP server's graceful close would wait for
    /// the request it never sends).
    Drop,
    /// It has answered or is answering a request: close once the answer is out.
    AfterAnswer,
}

/// The open connections.
#[derive(Debug, Default)]
pub struct Connections {
    open: HashMap<u64, Connection>,
    next_id: u64,
}

impl Connections {
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Open connections not told to close, in all and from `address`.
    fn live(&self, address: Option<IpAddr>) -> usize {
        self.open
            .values()
            .filter(|connection| !connection.closing && address.is_none_or(|a| a == connection.address))
            .count()
    }

    /// The connection idle longest, from `address` if given, marked as closing.
    fn close_longest_idle(&mut self, address: Option<IpAddr>) -> Option<u64> {
        let (&id, connection) = self
            .open
            .iter_mut()
            .filter(|(_, connection)| connection.is_idle() && address.is_none_or(|a| a == connection.address))
            .min_by_key(|(id, connection)| (connection.idle_since, **id))?;
        connection.closing = true;
        Some(id)
    }

    /// A new connection from `address`, accepted at `now`.
    pub fn admit(&mut self, address: IpAddr, now: Instant) -> Admission {
        assert!(self.open.len() < CONNECTIONS_MAX, "the server accepts only below the cap");
        let mut close = Vec::new();
        if self.live(Some(address)) >= CONNECTIONS_PER_ADDRESS_MAX {
            match self.close_longest_idle(Some(address)) {
                Some(id) => close.push(id),
                None => return Admission::Refused,
            }
        }
        if self.live(None) >= CONNECTIONS_IDLE_CLOSE_FROM
            && let Some(id) = self.close_longest_idle(None)
        {
            close.push(id);
        }
        let id = self.next_id;
        self.next_id += 1;
        let connection =
            Connection { address, requests_in_progress: 0, requests_answered: 0, idle_since: now, closing: false };
        assert!(self.open.insert(id, connection).is_none());
        assert!(self.live(Some(address)) <= CONNECTIONS_PER_ADDRESS_MAX);
        Admission::Admitted { id, close }
    }

    /// Connection `id` began answering a request.
    pub fn begin(&mut self, id: u64) {
        let Some(connection) = self.open.get_mut(&id) else {
            tracing::debug!(id, "a request began on a connection that is gone");
            return;
        };
        if connection.requests_in_progress > 0 {
            tracing::debug!(
                id,
                in_progress = connection.requests_in_progress,
                "a request began before the last answer ended"
            );
        }
        connection.requests_in_progress += 1;
    }

    /// Connection `id` finished answering a request at `now`. Returns whether it should close
    /// after this answer, because the server is short of room.
    pub fn end(&mut self, id: u64, now: Instant) -> bool {
        let crowded = self.live(None) >= CONNECTIONS_IDLE_CLOSE_FROM;
        let Some(connection) = self.open.get_mut(&id) else {
            tracing::debug!(id, "a request ended on a connection that is gone");
            return false;
        };
        if connection.requests_in_progress == 0 {
            tracing::debug!(id, "a request ended on a connection with none in progress");
        }
        connection.requests_in_progress = connection.requests_in_progress.saturating_sub(1);
        connection.requests_answered += 1;
        if connection.requests_in_progress > 0 {
            // Another request is already being answered: the connection is not idle.
            return false;
        }
        connection.idle_since = now;
        if crowded && !connection.closing {
            connection.closing = true;
            return true;
        }
        false
    }

    /// How connection `id`, told to close, should go.
    pub fn closing(&self, id: u64) -> Closing {
        let connection = self.open.get(&id).expect("only open connections are told to close");
        if connection.requests_in_progress == 0 && connection.requests_answered == 0 {
            Closing::Drop
        } else {
            Closing::AfterAnswer
        }
    }

    /// Connection `id` is gone. Its requests in progress, if any, end with it: their answers'
    /// ends, noted later, find no connection.
    pub fn remove(&mut self, id: u64) {
        let Some(connection) = self.open.remove(&id) else {
            tracing::debug!(id, "a connection that is gone was removed again");
            return;
        };
        if connection.requests_in_progress > 0 {
            tracing::debug!(id, in_progress = connection.requests_in_progress, "a connection went while answering");
        }
    }

    /// Requests in progress on connection `id` (0 if it is gone).
    pub fn requests_in_progress(&self, id: u64) -> u32 {
        self.open.get(&id).map_or(0, |connection| connection.requests_in_progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn address(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn admitted(admission: Admission) -> (u64, Vec<u64>) {
        match admission {
            Admission::Admitted { id, close } => (id, close),
            Admission::Refused => panic!("refused"),
        }
    }

    #[test]
    fn an_address_at_its_cap_gives_up_its_longest_idle_connection() {
        let mut connections = Connections::default();
        let start = Instant::now();
        let ids: Vec<u64> = (0..CONNECTIONS_PER_ADDRESS_MAX)
            .map(|n| admitted(connections.admit(address(1), start + Duration::from_millis(n as u64))).0)
            .collect();
        // The oldest is busy: the next oldest goes.
        connections.begin(ids[0]);
        let (_, close) = admitted(connections.admit(address(1), start + Duration::from_secs(1)));
        assert_eq!(close, vec![ids[1]]);
        assert_eq!(connections.closing(ids[1]), Closing::Drop);
        connections.remove(ids[1]);
        // Another address is not affected.
        let (_, close) = admitted(connections.admit(address(2), start + Duration::from_secs(1)));
        assert!(close.is_empty());
    }

    #[test]
    fn an_address_whose_connections_all_answer_is_refused() {
        let mut connections = Connections::default();
        let now = Instant::now();
        for _ in 0..CONNECTIONS_PER_ADDRESS_MAX {
            let (id, _) = admitted(connections.admit(address(1), now));
            connections.begin(id);
        }
        assert_eq!(connections.admit(address(1), now), Admission::Refused);
        assert_eq!(connections.open_count(), CONNECTIONS_PER_ADDRESS_MAX);
        assert!(matches!(connections.admit(address(2), now), Admission::Admitted { .. }));
    }

    #[test]
    fn a_crowded_server_closes_idle_connections_for_new_ones() {
        let mut connections = Connections::default();
        let start = Instant::now();
        let mut ids = Vec::new();
        for n in 0..CONNECTIONS_IDLE_CLOSE_FROM - 1 {
            let from = address((n % 200) as u8);
            let (id, close) = admitted(connections.admit(from, start + Duration::from_millis(n as u64)));
            assert!(close.is_empty(), "no closing below the mark");
            ids.push(id);
        }
        // A request in progress on the oldest, and one answered on the second.
        connections.begin(ids[0]);
        connections.begin(ids[1]);
        assert!(!connections.end(ids[1], start + Duration::from_secs(5)), "below the mark");
        let (newcomer, close) = admitted(connections.admit(address(250), start + Duration::from_secs(6)));
        assert!(close.is_empty());
        // At the mark, a newcomer closes the connection idle longest: the third, which never
        // sent a request.
        let (_, close) = admitted(connections.admit(address(251), start + Duration::from_secs(7)));
        assert_eq!(close, vec![ids[2]]);
        assert_eq!(connections.closing(ids[2]), Closing::Drop);
        connections.remove(ids[2]);
        assert_eq!(connections.live(None), CONNECTIONS_IDLE_CLOSE_FROM);
        // At the mark, a connection that finishes a request closes after its answer.
        connections.begin(newcomer);
        assert!(connections.end(newcomer, start + Duration::from_secs(8)));
        assert_eq!(connections.closing(newcomer), Closing::AfterAnswer);
        assert!(!connections.end(ids[0], start + Duration::from_secs(8)), "below the mark again");
    }

    /// hyper may read a pipelined request before it drops the previous answer, and a connection
    /// may go before its answer's end is noted: the book counts these instead of panicking.
    #[test]
    fn requests_beginning_and_ending_out_of_order_are_handled() {
        let mut connections = Connections::default();
        let start = Instant::now();
        let (id, _) = admitted(connections.admit(address(1), start));
        connections.begin(id);
        connections.begin(id);
        assert_eq!(connections.requests_in_progress(id), 2);
        // The first answer ends: the second is still in progress, so the connection is busy.
        assert!(!connections.end(id, start + Duration::from_secs(1)));
        assert_eq!(connections.close_longest_idle(None), None);
        assert!(!connections.end(id, start + Duration::from_secs(2)));
        assert_eq!(connections.requests_in_progress(id), 0);
        // An end with nothing in progress leaves the count at 0.
        assert!(!connections.end(id, start + Duration::from_secs(3)));
        assert_eq!(connections.requests_in_progress(id), 0);
        assert_eq!(connections.close_longest_idle(None), Some(id));
        // A connection that goes while answering, and the notes that come after it.
        let (other, _) = admitted(connections.admit(address(2), start));
        connections.begin(other);
        connections.remove(other);
        assert!(!connections.end(other, start + Duration::from_secs(4)));
        connections.begin(other);
        connections.remove(other);
        assert_eq!(connections.open_count(), 1);
    }
}
