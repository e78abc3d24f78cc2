//! A fault proxy on every directed link between validators. Validator `i` dials validator `j`
//! through the proxy of link `(i, j)`, which forwards bytes to `j`'s real p2p address. Cutting
//! the pair `{i, j}` closes every connection between them at once and refuses new ones until
//! the pair is healed: to both validators it looks like a peer that went away and cannot be
//! reached. (The kernel's own tools are not needed: `tc netem` is absent from this kernel, and
//! namespaces with nftables need root.)

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The proxies of a cluster of `n` validators.
#[derive(Debug)]
pub struct Links {
    validators: usize,
    /// Per unordered pair `{a, b}` (index `a * n + b` with `a < b`): whether it is cut.
    cut: Vec<watch::Sender<bool>>,
    /// `dial[i][j]`: the address validator `i` dials to reach `j` (`None` for `i == j`).
    dial: Vec<Vec<Option<SocketAddr>>>,
}

impl Links {
    /// Starts a proxy for every directed link to the validators listening at `targets`.
    pub async fn start(targets: &[SocketAddr]) -> std::io::Result<Arc<Self>> {
        let validators = targets.len();
        let cut: Vec<watch::Sender<bool>> = (0..validators * validators).map(|_| watch::channel(false).0).collect();
        let mut dial = vec![vec![None; validators]; validators];
        for from in 0..validators {
            for to in 0..validators {
                if from == to {
                    continue;
                }
                let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
                dial[from][to] = Some(listener.local_addr()?);
                let cut = cut[pair(validators, from, to)].subscribe();
                tokio::spawn(forward(listener, targets[to], cut));
            }
        }
        Ok(Arc::new(Self { validators, cut, dial }))
    }

    /// The address validator `from` dials to reach `to`.
    pub fn dial_address(&self, from: usize, to: usize) -> SocketAddr {
        self.dial[from][to].expect("a validator does not dial itself")
    }

    pub fn cut(&self, a: usize, b: usize) {
        self.cut[pair(self.validators, a, b)].send_replace(true);
    }

    pub fn heal_all(&self) {
        for cut in &self.cut {
            cut.send_replace(false);
        }
    }

    /// Whether any pair is cut.
    pub fn any_cut(&self) -> bool {
        self.cut.iter().any(|cut| *cut.borrow())
    }
}

fn pair(validators: usize, a: usize, b: usize) -> usize {
    assert_ne!(a, b);
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    low * validators + high
}

/// Accepts on `listener` and forwards each connection to `target` while the link is whole.
async fn forward(listener: TcpListener, target: SocketAddr, cut: watch::Receiver<bool>) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            // Out of descriptors, say: wait rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        if *cut.borrow() {
            // Refused: the dialer sees the connection close at once.
            continue;
        }
        let mut cut = cut.clone();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(target).await else { return };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = cut.wait_for(|cut| *cut) => {}
            }
            // Dropping both streams closes the connection on both sides.
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn a_cut_closes_connections_and_refuses_new_ones_until_healed() {
        let echo = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = echo.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 64];
                    while let Ok(read) = stream.read(&mut buffer).await {
                        if read == 0 || stream.write_all(&buffer[..read]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let unused = TcpListener::bind(("127.0.0.1", 0)).await.unwrap().local_addr().unwrap();
        let links = Links::start(&[unused, target]).await.unwrap();
        let echoes = |address| async move {
            let mut stream = TcpStream::connect(address).await.ok()?;
            stream.write_all(b"ping").await.ok()?;
            let mut buffer = [0u8; 4];
            tokio::time::timeout(std::time::Duration::from_secs(2), stream.read_exact(&mut buffer)).await.ok()?.ok()?;
            Some((buffer == *b"ping", stream))
        };
        let (echoed, mut open) = echoes(links.dial_address(0, 1)).await.expect("the link is whole");
        assert!(echoed);
        links.cut(1, 0);
        assert!(links.any_cut());
        let mut buffer = [0u8; 4];
        let read = tokio::time::timeout(std::time::Duration::from_secs(2), open.read(&mut buffer)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "the open connection is closed by the cut");
        assert!(echoes(links.dial_address(0, 1)).await.is_none(), "a new connection is refused");
        links.heal_all();
        assert!(!links.any_cut());
        assert!(echoes(links.dial_address(0, 1)).await.is_some_and(|(echoed, _)| echoed));
    }
}
