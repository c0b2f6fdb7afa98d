//! `Stream` and `Message`: a library [`MessageStream`] as a blocking Python iterator.
//!
//! A `next()` of the library runs as one future that lives across calls: a Python call polls
//! it once while holding the GIL (a buffered message comes back without any thread switch),
//! and only when nothing is ready waits for it with the GIL released, in slices that let
//! Python's signal handlers run. An interrupted wait loses nothing: the same `next()` goes on
//! at the following call, so `consumer.timeout.ms` and the "taking the next message marks
//! the previous one processed" rule are the library's, unchanged.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use zkconsumer::{Acker, MessageStream, StreamError};

use crate::errors;
use crate::runtime::{self, Birth, SLICE};

type Next = Option<Result<zkconsumer::Message, StreamError>>;
type PendingNext = Pin<Box<dyn Future<Output = (MessageStream, Next)> + Send>>;

/// What a wait on a stream came to.
enum Outcome {
    Message(zkconsumer::Message),
    Failed(StreamError),
    Ended,
    NothingYet,
}

/// A stream's state behind its lock.
struct State {
    /// The library stream; `None` while a `next()` owns it, or once dropped at `close()`.
    stream: Option<MessageStream>,
    /// The `next()` in flight, kept across Python calls.
    pending: Option<PendingNext>,
    ended: bool,
    /// The thread that took the message the application holds now (unfinished).
    holder: Option<ThreadId>,
}

impl State {
    /// The `next()` in flight, started when none is; `None` once the stream is gone.
    fn pending(&mut self) -> Option<&mut PendingNext> {
        if self.pending.is_none() {
            let mut stream = self.stream.take()?;
            self.holder = None;
            self.pending = Some(Box::pin(async move {
                let next = stream.next().await;
                (stream, next)
            }));
        }
        self.pending.as_mut()
    }

    fn finish(&mut self, (stream, next): (MessageStream, Next)) -> Outcome {
        self.pending = None;
        self.stream = Some(stream);
        match next {
            Some(Ok(message)) => {
                self.holder = Some(std::thread::current().id());
                Outcome::Message(message)
            }
            Some(Err(e)) => Outcome::Failed(e),
            None => {
                self.ended = true;
                Outcome::Ended
            }
        }
    }
}

/// The shared part of a stream: the consumer keeps one too, to end it at `close()`.
pub(crate) struct Slot {
    state: Mutex<State>,
    acker: Acker,
    thread_id: String,
}

impl Slot {
    pub(crate) fn new(stream: MessageStream) -> Arc<Self> {
        Arc::new(Slot {
            acker: stream.acker(),
            thread_id: stream.thread_id().to_string(),
            state: Mutex::new(State {
                stream: Some(stream),
                pending: None,
                ended: false,
                holder: None,
            }),
        })
    }

    /// At `close()` from the thread that holds this stream's last message: that thread cannot
    /// come back to `next()` while it waits in `close()`, so the stream ends now and the message
    /// stays unprocessed (it is delivered again later) instead of holding shutdown for its
    /// grace period. Streams busy in another thread are left to the library's shutdown.
    pub(crate) fn end_if_held_by_current_thread(&self) {
        let Ok(mut state) = self.state.try_lock() else {
            return;
        };
        if state.holder == Some(std::thread::current().id()) && state.pending.is_none() {
            state.stream = None;
            state.holder = None;
            state.ended = true;
        }
    }
}

/// Locks without ever waiting for the lock while holding the GIL.
fn lock<'a, T>(py: Python<'_>, mutex: &'a Mutex<T>) -> MutexGuard<'a, T>
where
    T: Send,
{
    loop {
        match mutex.try_lock() {
            Ok(guard) => return guard,
            Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => py.detach(|| drop(mutex.lock())),
        }
    }
}

/// One consumer thread's stream of messages (Java's `KafkaStream`): iterate it.
#[pyclass(module = "zkconsumer._native", name = "Stream", frozen)]
pub struct Stream {
    slot: Arc<Slot>,
    birth: Birth,
}

impl Stream {
    pub(crate) fn new(slot: Arc<Slot>) -> Self {
        Stream {
            slot,
            birth: Birth::now(),
        }
    }

    /// Waits for the next outcome until `deadline` (forever when `None`).
    fn wait(&self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<Outcome> {
        self.birth.check(py, "Stream")?;
        runtime::check_not_in_runtime(py)?;
        let rt = runtime::runtime(py)?;
        let mut guard = lock(py, &self.slot.state);
        let state: &mut State = &mut guard;
        if state.ended {
            return Ok(Outcome::Ended);
        }
        let ready = {
            let _context = rt.enter();
            match state.pending() {
                Some(next) => next.as_mut().now_or_never(),
                None => return Ok(Outcome::Ended),
            }
        };
        if let Some(done) = ready {
            return Ok(state.finish(done));
        }
        loop {
            let slice = match deadline {
                Some(at) => at.saturating_duration_since(Instant::now()).min(SLICE),
                None => SLICE,
            };
            let Some(next) = state.pending() else {
                return Ok(Outcome::Ended);
            };
            let done =
                py.detach(|| rt.block_on(async { tokio::time::timeout(slice, next).await.ok() }));
            if let Some(done) = done {
                return Ok(state.finish(done));
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                return Ok(Outcome::NothingYet);
            }
            py.check_signals()?;
        }
    }
}

#[pymethods]
impl Stream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next message; blocks until one arrives. Taking it marks the previous message of
    /// this stream processed. Raises `StopIteration` once the consumer is closed or a shutdown
    /// was requested, `StreamError` for a partition that cannot make progress and `Timeout`
    /// after `consumer.timeout.ms` without a message; the stream stays usable after both.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Message>> {
        match self.wait(py, None)? {
            Outcome::Message(inner) => Ok(Some(Message { inner })),
            Outcome::Failed(e) => Err(errors::from_stream(py, &e)),
            Outcome::Ended | Outcome::NothingYet => Ok(None),
        }
    }

    /// The next message, or `None` when none arrived within `timeout` seconds (or the stream
    /// has ended: see `ended`). `timeout=None` waits like iteration does.
    #[pyo3(signature = (timeout=None))]
    fn poll(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Message>> {
        let deadline = match timeout {
            None => None,
            Some(t) if t.is_finite() && t >= 0.0 => {
                Some(Instant::now() + Duration::from_secs_f64(t.min(1e9)))
            }
            Some(t) => {
                return Err(errors::config_error(
                    py,
                    format!("invalid timeout {t}: expected a number of seconds >= 0"),
                    Some("timeout"),
                    Some(&t.to_string()),
                ))
            }
        };
        match self.wait(py, deadline)? {
            Outcome::Message(inner) => Ok(Some(Message { inner })),
            Outcome::Failed(e) => Err(errors::from_stream(py, &e)),
            Outcome::Ended | Outcome::NothingYet => Ok(None),
        }
    }

    /// Declares `message` (and every earlier message of its partition) processed, from any
    /// thread. No effect once the partition is no longer owned by this member.
    fn ack(&self, message: &Message) {
        self.slot.acker.ack(&message.inner);
    }

    /// The consumer thread id this stream stands for (`<consumer id>-<n>`).
    #[getter]
    fn thread_id(&self) -> &str {
        &self.slot.thread_id
    }

    /// Whether the stream was seen to end (consumer closed or shutdown requested): set once
    /// iteration stopped or `poll()` returned `None` for that reason.
    #[getter]
    fn ended(&self, py: Python<'_>) -> bool {
        lock(py, &self.slot.state).ended
    }

    fn __repr__(&self) -> String {
        format!("<zkconsumer.Stream {}>", self.slot.thread_id)
    }
}

/// One message: `topic`, `partition`, `offset`, `key` (bytes or None) and `value` (bytes).
#[pyclass(module = "zkconsumer._native", name = "Message", frozen)]
pub struct Message {
    inner: zkconsumer::Message,
}

#[pymethods]
impl Message {
    /// Topic the message was read from.
    #[getter]
    fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// Partition the message was read from.
    #[getter]
    fn partition(&self) -> i32 {
        self.inner.partition
    }

    /// Offset of the message in its partition.
    #[getter]
    fn offset(&self) -> i64 {
        self.inner.offset
    }

    /// The key, `None` when the message has none.
    #[getter]
    fn key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.key.as_deref().map(|k| PyBytes::new(py, k))
    }

    /// The payload.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.value)
    }

    fn __repr__(&self) -> String {
        format!(
            "<zkconsumer.Message {}-{}@{} ({} bytes)>",
            self.inner.topic,
            self.inner.partition,
            self.inner.offset,
            self.inner.value.len()
        )
    }
}
