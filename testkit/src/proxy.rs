//! A TCP fault proxy: sits between a client and one server (a broker or ZooKeeper) and makes
//! faults on demand that no healthy server produces — latency, stalls, cut connections,
//! refused connections, dropped bytes (a connection gone silent for good), corrupted bytes
//! in server answers, ZooKeeper deletes the server refuses, and a Kafka request held back
//! (e.g. an offset commit that lands only after the client gave up on it).
//!
//! Client requests are forwarded whole frames at a time (both ZooKeeper and Kafka frame every
//! request with a 4-byte big-endian length), so a fault can look at one request.

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
    /// Makes the server refuse the next `n` ZooKeeper deletes whose path ends with this.
    fail_delete: Mutex<Option<(Vec<u8>, u64)>>,
    deletes_failed: AtomicU64,
    /// A Kafka request held back, and its connection with it.
    hold: Mutex<Hold>,
    held_answers: AtomicU64,
    /// Kafka API key and connection of every client request forwarded, in the order they
    /// were written to the server.
    forwarded: Mutex<Vec<(i16, u64)>>,
}

/// See [`FaultProxy::hold_next_kafka_request`].
#[derive(Debug, Default)]
struct Hold {
    /// The API key of the next request to hold.
    armed: Option<i16>,
    /// The connection whose request is held.
    connection: Option<u64>,
    released: bool,
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

    /// ZooKeeper only: the next `count` delete requests whose path ends with `path_suffix`
    /// reach the server with their expected version changed, so the real server refuses them
    /// (`BadVersion`) and the node stays. The client sees deletes fail on a healthy
    /// connection: no disconnect, no session event, nothing else disturbed.
    pub fn fail_next_deletes_of(&self, path_suffix: &str, count: u64) {
        if let Ok(mut f) = self.faults.fail_delete.lock() {
            *f = (count > 0).then(|| (path_suffix.as_bytes().to_vec(), count));
        }
    }

    /// How many deletes [`fail_next_deletes_of`](Self::fail_next_deletes_of) made fail so far.
    pub fn deletes_failed(&self) -> u64 {
        self.faults.deletes_failed.load(Ordering::Acquire)
    }

    /// Kafka only: the next client request with API key `api_key` (8 OffsetCommit, 9
    /// OffsetFetch, 1 Fetch, ...) is held back, with everything after it on its connection,
    /// until [`release_held`](Self::release_held); then it reaches the broker, late (a client
    /// that gave up on it meanwhile may have sent newer requests on other connections). Other
    /// connections forward normally.
    pub fn hold_next_kafka_request(&self, api_key: i16) {
        if let Ok(mut h) = self.faults.hold.lock() {
            *h = Hold {
                armed: Some(api_key),
                ..Hold::default()
            };
        }
    }

    /// Whether the request armed by [`hold_next_kafka_request`](Self::hold_next_kafka_request)
    /// came and is held (or was, before its release).
    pub fn holding(&self) -> bool {
        self.faults
            .hold
            .lock()
            .map(|h| h.connection.is_some())
            .unwrap_or(false)
    }

    /// Lets the held request (and what followed it on its connection) go on to the broker.
    pub fn release_held(&self) {
        if let Ok(mut h) = self.faults.hold.lock() {
            h.released = true;
        }
    }

    /// Server answers forwarded on the held connection after its release (the first is the
    /// broker's answer to the held request: it has been applied).
    pub fn held_answers(&self) -> u64 {
        self.faults.held_answers.load(Ordering::Acquire)
    }

    /// The connection whose request [`hold_next_kafka_request`](Self::hold_next_kafka_request)
    /// held (connections are numbered from 0 as accepted).
    pub fn held_connection(&self) -> Option<u64> {
        self.faults.hold.lock().ok().and_then(|h| h.connection)
    }

    /// Kafka only: the connections whose requests with API key `api_key` reached the server,
    /// in the order they were written to it (one entry per request).
    pub fn forwarded_kafka_requests(&self, api_key: i16) -> Vec<u64> {
        self.faults
            .forwarded
            .lock()
            .map(|f| {
                f.iter()
                    .filter(|(key, _)| *key == api_key)
                    .map(|(_, c)| *c)
                    .collect()
            })
            .unwrap_or_default()
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
        let mut requests = Requests::default();
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
            let written = if from_server {
                corrupt_if_wanted(&faults, &mut buf[..n]);
                if held_state(&faults, number) == Some(true) {
                    faults.held_answers.fetch_add(1, Ordering::AcqRel);
                }
                to.write_all(&buf[..n])
            } else {
                let whole = requests.push(&buf[..n], &faults, number);
                while held_state(&faults, number) == Some(false)
                    && !faults.closed.load(Ordering::Acquire)
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let written = to.write_all(&whole);
                if written.is_ok() {
                    if let Ok(mut f) = faults.forwarded.lock() {
                        f.extend(requests.keys.drain(..).map(|key| (key, number)));
                    }
                }
                written
            };
            if written.is_err() {
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

/// Frames of one connection's client requests, forwarded whole (see the module docs).
#[derive(Default)]
struct Requests {
    /// Bytes of a frame not complete yet.
    partial: Vec<u8>,
    /// Frames seen so far (ZooKeeper: the first is the connect request, which has no header).
    frames: u64,
    /// First two bytes (a Kafka API key) of each frame returned by `push` and not yet written.
    keys: Vec<i16>,
    /// A length that is no frame length: forward bytes as they come from now on.
    unframed: bool,
}

/// Frames above this are not frames (a client speaking something else): forwarded as is.
const MAX_FRAME: usize = 100 * 1024 * 1024;

/// ZooKeeper's opcode of a delete request.
const ZK_DELETE: i32 = 2;

impl Requests {
    /// Takes `chunk` and returns the bytes to forward now: every frame completed by it
    /// (faults applied), nothing of a frame still incomplete.
    fn push(&mut self, chunk: &[u8], faults: &Faults, connection: u64) -> Vec<u8> {
        if self.unframed {
            return chunk.to_vec();
        }
        self.partial.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(head) = self.partial.get(..4) {
            let length = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let Ok(length) = usize::try_from(length) else {
                self.unframed = true;
                break;
            };
            if length > MAX_FRAME {
                self.unframed = true;
                break;
            }
            if self.partial.len() < 4 + length {
                break;
            }
            let mut frame: Vec<u8> = self.partial.drain(..4 + length).collect();
            if self.frames > 0 {
                fail_delete_if_wanted(faults, &mut frame);
            }
            hold_if_wanted(faults, &frame, connection);
            self.frames += 1;
            if let Some(key) = frame.get(4..6) {
                self.keys.push(i16::from_be_bytes([key[0], key[1]]));
            }
            out.extend_from_slice(&frame);
        }
        if self.unframed {
            out.append(&mut self.partial);
        }
        out
    }
}

/// A ZooKeeper delete frame: length, xid, opcode, path (length + bytes), version. When its
/// path ends with the armed suffix, flips a bit of its version so the server refuses it.
fn fail_delete_if_wanted(faults: &Faults, frame: &mut [u8]) {
    let int = |at: usize| -> Option<i32> {
        let b = frame.get(at..at + 4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    if int(8) != Some(ZK_DELETE) {
        return;
    }
    let Some(path_len) = int(12).and_then(|l| usize::try_from(l).ok()) else {
        return;
    };
    let version_at = 16 + path_len;
    if frame.len() != version_at + 4 {
        return;
    }
    let Ok(mut wanted) = faults.fail_delete.lock() else {
        return;
    };
    let Some((suffix, left)) = wanted.as_mut() else {
        return;
    };
    if !frame[16..version_at].ends_with(suffix) {
        return;
    }
    // Never -1 (any version) from a real version: the server answers BadVersion.
    frame[version_at] ^= 0x40;
    *left -= 1;
    if *left == 0 {
        *wanted = None;
    }
    faults.deletes_failed.fetch_add(1, Ordering::AcqRel);
}

/// Whether `connection` holds a request: `Some(false)` held, `Some(true)` released, `None`
/// not the held connection.
fn held_state(faults: &Faults, connection: u64) -> Option<bool> {
    let h = faults.hold.lock().ok()?;
    (h.connection == Some(connection)).then_some(h.released)
}

/// A Kafka request frame: length, API key (i16), version, correlation id, ... Holds the
/// connection when its API key is the armed one.
fn hold_if_wanted(faults: &Faults, frame: &[u8], connection: u64) {
    let Some(key) = frame.get(4..6).map(|b| i16::from_be_bytes([b[0], b[1]])) else {
        return;
    };
    let Ok(mut h) = faults.hold.lock() else {
        return;
    };
    if h.armed == Some(key) {
        h.armed = None;
        h.connection = Some(connection);
    }
}
