//! A TCP fault proxy: sits between a client and one server (a broker or ZooKeeper) and makes
//! faults on demand that no healthy server produces — latency, stalls, cut connections,
//! refused connections, dropped bytes (a connection gone silent for good) and corrupted bytes
//! in server answers.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct Faults {
    latency_ms: AtomicU64,
    stalled: AtomicBool,
    refusing: AtomicBool,
    /// Flip one byte of the next `n` server answers that contain this pattern.
    corrupt: Mutex<Option<(Vec<u8>, u64)>>,
    corrupted: AtomicU64,
    connections: Mutex<Vec<TcpStream>>,
    closed: AtomicBool,
    /// Connections are numbered from 0 as they are accepted.
    accepted: AtomicU64,
    /// Connections numbered below this drop every byte (both directions) and stay open.
    blackholed_below: AtomicU64,
}

/// A running proxy; dropped, it stops accepting and cuts its connections.
#[derive(Debug)]
pub struct FaultProxy {
    address: SocketAddr,
    faults: Arc<Faults>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub fn start(upstream: &str) -> FaultProxy {
        Self::start_on(0, upstream)
    }

    /// Listens on `port` (0: any free one) and forwards to `upstream`.
    pub fn start_on(port: u16, upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind fault proxy");
        let address = listener.local_addr().expect("proxy address");
        let faults = Arc::new(Faults::default());
        let upstream = upstream.to_string();
        let f = faults.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if f.closed.load(Ordering::Acquire) {
                    return;
                }
                let Ok(client) = client else { continue };
                if f.refusing.load(Ordering::Acquire) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let Ok(mut conns) = f.connections.lock() {
                    conns.extend(client.try_clone().ok());
                    conns.extend(server.try_clone().ok());
                }
                let number = f.accepted.fetch_add(1, Ordering::AcqRel);
                pump(
                    client.try_clone(),
                    server.try_clone(),
                    f.clone(),
                    number,
                    false,
                );
                pump(Ok(server), Ok(client), f.clone(), number, true);
            }
        });
        FaultProxy { address, faults }
    }

    /// `127.0.0.1:port` to give the client instead of the server's address.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Delays every forwarded chunk by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.faults
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::Release);
    }

    /// Stops forwarding in both directions (connections stay open: the peer sees silence,
    /// e.g. a socket timeout mid-fetch, or ZooKeeper unreachable long enough to expire a
    /// session) until [`resume`](Self::resume).
    pub fn stall(&self) {
        self.faults.stalled.store(true, Ordering::Release);
    }

    /// Forwards again after [`stall`](Self::stall).
    pub fn resume(&self) {
        self.faults.stalled.store(false, Ordering::Release);
    }

    /// Every connection open now silently drops all bytes from now on, in both directions,
    /// and stays open (the peer sees a socket that never answers: only its own timeout gets
    /// it out). Connections opened later forward normally.
    pub fn blackhole_open_connections(&self) {
        let accepted = self.faults.accepted.load(Ordering::Acquire);
        self.faults
            .blackholed_below
            .store(accepted, Ordering::Release);
    }

    /// Closes every open connection at once.
    pub fn cut_all(&self) {
        if let Ok(mut conns) = self.faults.connections.lock() {
            for c in conns.drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }

    /// Refuses (closes immediately) new connections while `true`.
    pub fn refuse(&self, refusing: bool) {
        self.faults.refusing.store(refusing, Ordering::Release);
    }

    /// Flips one byte inside the next server answer that contains `pattern` (e.g. a message
    /// value), so the client sees a message whose CRC does not match.
    pub fn corrupt_next_answer_containing(&self, pattern: &[u8]) {
        self.corrupt_answers_containing(pattern, 1);
    }

    /// Like [`corrupt_next_answer_containing`](Self::corrupt_next_answer_containing), for the
    /// next `count` such answers (a client that retries sees corruption every time).
    pub fn corrupt_answers_containing(&self, pattern: &[u8], count: u64) {
        if let Ok(mut c) = self.faults.corrupt.lock() {
            *c = Some((pattern.to_vec(), count));
        }
    }

    /// How many connections were accepted so far (a client that reconnects opens another).
    pub fn connections(&self) -> u64 {
        self.faults.accepted.load(Ordering::Acquire)
    }

    /// How many answers were corrupted so far.
    pub fn corrupted(&self) -> u64 {
        self.faults.corrupted.load(Ordering::Acquire)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.faults.closed.store(true, Ordering::Release);
        self.cut_all();
        // Wake the accept loop so it sees `closed`.
        let _ = TcpStream::connect(self.address);
    }
}

fn pump(
    from: std::io::Result<TcpStream>,
    to: std::io::Result<TcpStream>,
    faults: Arc<Faults>,
    number: u64,
    from_server: bool,
) {
    let (Ok(mut from), Ok(mut to)) = (from, to) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while faults.stalled.load(Ordering::Acquire) && !faults.closed.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(10));
            }
            if number < faults.blackholed_below.load(Ordering::Acquire) {
                continue;
            }
            let latency = faults.latency_ms.load(Ordering::Acquire);
            if latency > 0 {
                std::thread::sleep(Duration::from_millis(latency));
            }
            if from_server {
                corrupt_if_wanted(&faults, &mut buf[..n]);
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

fn corrupt_if_wanted(faults: &Faults, chunk: &mut [u8]) {
    let Ok(mut wanted) = faults.corrupt.lock() else {
        return;
    };
    let Some((pattern, left)) = wanted.as_mut() else {
        return;
    };
    if pattern.is_empty() || chunk.len() < pattern.len() {
        return;
    }
    if let Some(at) = chunk
        .windows(pattern.len())
        .position(|w| w == pattern.as_slice())
    {
        chunk[at] ^= 0xff;
        *left -= 1;
        if *left == 0 {
            *wanted = None;
        }
        faults.corrupted.fetch_add(1, Ordering::AcqRel);
    }
}
