//! `Stream` and `Message`: a library [`MessageStream`] as a blocking Python iterator.
//!
//! A buffered message is taken with the library's synchronous `try_next` while holding the
//! GIL (no future, no thread switch). Otherwise a `next()` of the library runs as one future
//! that lives across calls: polled once, then waited for with the GIL released, in slices that
//! let Python's signal handlers run. An interrupted wait loses nothing: the same `next()` goes on
//! at the following call, so `consumer.timeout.ms` and the "taking the next message marks
//! the previous one processed" rule are the library's, unchanged. A stream also keeps its
//! consumer alive: streams still in use do not end because the `Consumer` object was dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use zkconsumer::{Acker, MessageStream, StreamError};

use crate::errors;
use crate::runtime::{self, Birth, SLICE};
use tokio::runtime::Runtime;

type Next = Option<Result<zkconsumer::Message, StreamError>>;
type PendingNext = Pin<Box<dyn Future<Output = (MessageStream, Next)> + Send>>;

/// What a wait on a stream came to.
enum Outcome {
    Message(zkconsumer::Message),
    Failed(StreamError),
    Ended,
    NothingYet,
}

/// A stream's state behind its lock. The lock is only ever held for a few instructions (never
/// across a wait), so taking it with the GIL held cannot deadlock.
struct State {
    /// The library stream; `None` while a `next()` owns it, or once dropped at `close()`.
    stream: Option<MessageStream>,
    /// The `next()` in flight, kept across Python calls; taken out while a thread waits on it.
    pending: Option<PendingNext>,
    /// A thread is waiting on the `next()` in flight.
    busy: bool,
    /// The thread that took the message the application holds now (unfinished).
    holder: Option<ThreadId>,
}

/// What a thread gets from a stream: a message now, or something to wait on.
enum Turn {
    Ready(zkconsumer::Message),
    Wait(PendingNext),
    Ended,
    Busy,
}

/// The shared part of a stream: the consumer keeps one too, to end it at `close()`.
pub(crate) struct Slot {
    state: Mutex<State>,
    ended: AtomicBool,
    acker: Acker,
    thread_id: String,
    /// Streams keep their consumer alive (its tasks stop when the last handle goes).
    _consumer: Arc<zkconsumer::Consumer>,
}

impl Slot {
    pub(crate) fn new(stream: MessageStream, consumer: Arc<zkconsumer::Consumer>) -> Arc<Self> {
        Arc::new(Slot {
            acker: stream.acker(),
            thread_id: stream.thread_id().to_string(),
            ended: AtomicBool::new(false),
            state: Mutex::new(State {
                stream: Some(stream),
                pending: None,
                busy: false,
                holder: None,
            }),
            _consumer: consumer,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A buffered message right away (the library's `try_next`, no future, no thread switch),
    /// else the `next()` in flight (started when none is) for the calling thread to wait on.
    fn take_turn(&self) -> Turn {
        if self.ended.load(Ordering::Acquire) {
            return Turn::Ended;
        }
        let mut state = self.state();
        if state.busy {
            return Turn::Busy;
        }
        if let Some(pending) = state.pending.take() {
            state.busy = true;
            return Turn::Wait(pending);
        }
        let Some(stream) = state.stream.as_mut() else {
            return Turn::Ended;
        };
        if let Some(message) = stream.try_next() {
            state.holder = Some(std::thread::current().id());
            return Turn::Ready(message);
        }
        state.holder = None;
        let Some(mut stream) = state.stream.take() else {
            return Turn::Ended;
        };
        state.busy = true;
        Turn::Wait(Box::pin(async move {
            let next = stream.next().await;
            (stream, next)
        }))
    }

    /// A wait that did not finish hands the `next()` back for the following call.
    fn give_back(&self, pending: PendingNext) {
        let mut state = self.state();
        state.pending = Some(pending);
        state.busy = false;
    }

    fn finish(&self, (stream, next): (MessageStream, Next)) -> Outcome {
        let mut state = self.state();
        state.stream = Some(stream);
        state.busy = false;
        match next {
            Some(Ok(message)) => {
                state.holder = Some(std::thread::current().id());
                Outcome::Message(message)
            }
            Some(Err(e)) => Outcome::Failed(e),
            None => {
                self.ended.store(true, Ordering::Release);
                Outcome::Ended
            }
        }
    }

    /// At `close()` from the thread that holds this stream's last message: that thread cannot
    /// come back to `next()` while it waits in `close()`, so the stream ends now and the message
    /// stays unprocessed (it is delivered again later) instead of holding shutdown for its
    /// grace period. Streams busy in another thread are left to the library's shutdown.
    pub(crate) fn end_if_held_by_current_thread(&self) {
        let mut state = self.state();
        if state.holder == Some(std::thread::current().id())
            && !state.busy
            && state.pending.is_none()
        {
            state.stream = None;
            state.holder = None;
            self.ended.store(true, Ordering::Release);
        }
    }
}

/// The `next()` a thread waits on; handed back to the stream if the wait is left early (a
/// deadline, a signal handler that raised, a panic).
struct Waiting<'a> {
    slot: &'a Slot,
    pending: Option<PendingNext>,
}

impl Waiting<'_> {
    fn done(&mut self, output: (MessageStream, Next)) -> Outcome {
        self.pending = None;
        self.slot.finish(output)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.slot.give_back(pending);
        }
    }
}

/// One consumer thread's stream of messages (Java's `KafkaStream`): iterate it.
#[pyclass(module = "zkconsumer._native", name = "Stream", frozen)]
pub struct Stream {
    slot: Arc<Slot>,
    birth: Birth,
    /// The runtime of the process the stream was made in (checked by `birth`).
    rt: Arc<Runtime>,
}

impl Stream {
    pub(crate) fn new(slot: Arc<Slot>, rt: Arc<Runtime>) -> Self {
        Stream {
            slot,
            birth: Birth::now(),
            rt,
        }
    }

    /// Waits for the next outcome until `deadline` (forever when `None`).
    fn wait(&self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<Outcome> {
        self.birth.check(py, "Stream")?;
        runtime::check_not_in_runtime(py)?;
        let rt = &self.rt;
        let pending = match self.slot.take_turn() {
            Turn::Ready(message) => return Ok(Outcome::Message(message)),
            Turn::Wait(pending) => pending,
            Turn::Ended => return Ok(Outcome::Ended),
            Turn::Busy => {
                return Err(errors::error(
                    py,
                    format!(
                        "stream {} is already being read by another thread: a stream is read \
                         by one thread at a time",
                        self.slot.thread_id
                    ),
                ))
            }
        };
        let mut waiting = Waiting {
            slot: &self.slot,
            pending: Some(pending),
        };
        loop {
            let Some(next) = waiting.pending.as_mut() else {
                return Ok(Outcome::Ended);
            };
            let ready = {
                let _context = rt.enter();
                next.as_mut().now_or_never()
            };
            if let Some(done) = ready {
                return Ok(waiting.done(done));
            }
            let slice = match deadline {
                Some(at) => at.saturating_duration_since(Instant::now()).min(SLICE),
                None => SLICE,
            };
            let done =
                py.detach(|| rt.block_on(async { tokio::time::timeout(slice, next).await.ok() }));
            if let Some(done) = done {
                return Ok(waiting.done(done));
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

    /// Declares `message` processed (with `auto.ack=true`, every earlier message of its
    /// partition too), from any thread. No effect once the partition is no longer owned by
    /// this member, or for a message of another stream.
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
    fn ended(&self) -> bool {
        self.slot.ended.load(Ordering::Acquire)
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
