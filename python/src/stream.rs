//! `Stream` and `Message`: a library [`MessageStream`] as a blocking Python iterator.
//!
//! A buffered message is taken with the library's synchronous `try_next` while holding the
//! GIL (no future, no thread switch). Otherwise a `next()` of the library runs as one future
//! that lives across calls: polled once, then waited for with the GIL released, in slices that
//! let Python's signal handlers run. An interrupted wait loses nothing: the same `next()` goes on
//! at the following call, so `consumer.timeout.ms` and the "taking the next message marks
//! the previous one processed" rule are the library's, unchanged. A stream also keeps its
//! consumer alive: streams still in use do not end because the `Consumer` object was dropped.
//!
//! `async for` (asyncio, see the `aio` module) shares that `next()` in flight: it stays in the
//! stream's state, a task of the runtime polls it there, and its outcome is kept in the state
//! (`done`) until the awaiting coroutine resumes and takes it. Cancelling the awaiting task
//! only lets go of the wait: a message that arrived meanwhile stays in the stream for the next
//! `__anext__` or `next()`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use futures::FutureExt;
use pyo3::basic::CompareOp;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};
use tokio::task::AbortHandle;

use zkconsumer::{Acker, MessageStream, StreamError};

use crate::aio;
use crate::errors;
use crate::runtime::{self, Birth, SLICE};
use tokio::runtime::Runtime;

type Next = Option<Result<zkconsumer::Message, StreamError>>;
type PendingNext = Pin<Box<dyn Future<Output = (MessageStream, Next)> + Send>>;

/// What a wait on a stream came to.
pub(crate) enum Outcome {
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
    /// The `__anext__` the `next()` in flight serves (`busy` is set while there is one); the
    /// future stays in `pending`, polled there by the waiter's task.
    waiter: Option<AsyncWaiter>,
    /// What the `next()` in flight came to, polled by a waiter's task, not taken yet.
    done: Option<(MessageStream, Next)>,
}

/// An `__anext__` waiting: its number and the runtime task polling for it.
struct AsyncWaiter {
    id: u64,
    poller: Option<AbortHandle>,
    /// The waiter's event loop: once it is closed nobody can await any more.
    event_loop: Py<PyAny>,
}

/// Where a stream stands for a new reader: a buffered message, a `next()` in flight, or ended.
enum Start {
    Ready(zkconsumer::Message),
    InFlight,
    Ended,
}

/// What a waiter finds when it resumes.
pub(crate) enum Completion {
    Done(Outcome),
    /// Its `next()` has not completed yet.
    NotYet,
    /// It is no longer the stream's waiter.
    Gone,
}

/// What an `__anext__` gets from a stream.
pub(crate) enum AsyncTurn {
    Ready(zkconsumer::Message),
    /// What a `next()` polled earlier came to (its waiter let go before taking it).
    Finished(Outcome),
    Wait(u64),
    Ended,
    Busy,
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
    /// Numbers `__anext__` waiters.
    waiters: AtomicU64,
    /// Streams keep their consumer alive (its tasks stop when the last handle goes).
    _consumer: Arc<zkconsumer::Consumer>,
}

impl Slot {
    pub(crate) fn new(stream: MessageStream, consumer: Arc<zkconsumer::Consumer>) -> Arc<Self> {
        Arc::new(Slot {
            acker: stream.acker(),
            thread_id: stream.thread_id().to_string(),
            ended: AtomicBool::new(false),
            waiters: AtomicU64::new(0),
            state: Mutex::new(State {
                stream: Some(stream),
                pending: None,
                busy: false,
                holder: None,
                waiter: None,
                done: None,
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
        if let Some(done) = state.done.take() {
            state.busy = true;
            return Turn::Wait(Box::pin(std::future::ready(done)));
        }
        match Self::start(&mut state) {
            Start::Ready(message) => Turn::Ready(message),
            Start::Ended => Turn::Ended,
            Start::InFlight => match state.pending.take() {
                Some(pending) => {
                    state.busy = true;
                    Turn::Wait(pending)
                }
                None => Turn::Ended,
            },
        }
    }

    /// As [`Self::take_turn`] for an `__anext__`: the `next()` in flight stays in the state,
    /// served to waiter number `id` (see [`Self::poll_for`]).
    pub(crate) fn take_async_turn(&self, event_loop: Py<PyAny>) -> AsyncTurn {
        if self.ended.load(Ordering::Acquire) {
            return AsyncTurn::Ended;
        }
        let mut state = self.state();
        if state.busy {
            return AsyncTurn::Busy;
        }
        if let Some(done) = state.done.take() {
            state.busy = true;
            drop(state);
            return AsyncTurn::Finished(self.finish(done));
        }
        match Self::start(&mut state) {
            Start::Ready(message) => AsyncTurn::Ready(message),
            Start::Ended => AsyncTurn::Ended,
            Start::InFlight => AsyncTurn::Wait(self.add_waiter(&mut state, event_loop)),
        }
    }

    /// The error of a second reader while one reads.
    pub(crate) fn busy_error(&self, py: Python<'_>) -> PyErr {
        errors::usage(
            py,
            format!(
                "stream {} is already being read (by another thread or another asyncio task): \
                 a stream is read by one reader at a time",
                self.thread_id
            ),
        )
    }

    fn add_waiter(&self, state: &mut State, event_loop: Py<PyAny>) -> u64 {
        let id = self.waiters.fetch_add(1, Ordering::Relaxed);
        state.busy = true;
        state.waiter = Some(AsyncWaiter {
            id,
            poller: None,
            event_loop,
        });
        id
    }

    /// A buffered message, else makes sure a `next()` of the library is in flight.
    fn start(state: &mut State) -> Start {
        if state.pending.is_some() {
            return Start::InFlight;
        }
        let Some(stream) = state.stream.as_mut() else {
            return Start::Ended;
        };
        if let Some(message) = stream.try_next() {
            state.holder = Some(std::thread::current().id());
            return Start::Ready(message);
        }
        state.holder = None;
        let Some(mut stream) = state.stream.take() else {
            return Start::Ended;
        };
        state.pending = Some(Box::pin(async move {
            let next = stream.next().await;
            (stream, next)
        }));
        Start::InFlight
    }

    /// Polls the `next()` in flight for waiter `id`: `Ready(true)` once it completed (its output
    /// is then kept in the state for [`Self::complete`]), `Ready(false)` if the waiter is gone.
    pub(crate) fn poll_for(&self, id: u64, cx: &mut Context<'_>) -> Poll<bool> {
        let mut state = self.state();
        if state.waiter.as_ref().map(|w| w.id) != Some(id) {
            return Poll::Ready(false);
        }
        let Some(pending) = state.pending.as_mut() else {
            return Poll::Ready(false);
        };
        match pending.as_mut().poll(cx) {
            Poll::Ready(output) => {
                state.pending = None;
                state.done = Some(output);
                Poll::Ready(true)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Lets go of an `__anext__` waiter whose event loop was closed while it waited (a loop
    /// closed with a task still waiting, not cancelled): nothing can resume it any more.
    /// Whether there was one. The loop is asked outside the lock (Python code may let other
    /// threads run, and they may want this lock with the GIL held).
    pub(crate) fn abandon_if_loop_closed(&self, py: Python<'_>) -> bool {
        let waiter = {
            let state = self.state();
            state
                .waiter
                .as_ref()
                .map(|w| (w.id, w.event_loop.clone_ref(py)))
        };
        let Some((id, event_loop)) = waiter else {
            return false;
        };
        let closed = event_loop
            .call_method0(py, "is_closed")
            .and_then(|c| c.is_truthy(py))
            .unwrap_or(false);
        if closed {
            self.abandon(id);
        }
        closed
    }

    /// Records the task polling for waiter `id` (aborted at once if the waiter is gone).
    pub(crate) fn set_poller(&self, id: u64, poller: AbortHandle) {
        let mut state = self.state();
        match state.waiter.as_mut() {
            Some(waiter) if waiter.id == id => waiter.poller = Some(poller),
            _ => poller.abort(),
        }
    }

    /// Waiter `id` no longer waits (cancelled, or its event loop is closed): the `next()` in
    /// flight, or the output it already came to, stays for the next reader.
    pub(crate) fn abandon(&self, id: u64) {
        let mut state = self.state();
        if state.waiter.as_ref().map(|w| w.id) != Some(id) {
            return;
        }
        if let Some(poller) = state.waiter.take().and_then(|w| w.poller) {
            poller.abort();
        }
        state.busy = false;
    }

    /// The outcome for waiter `id`, once [`Self::poll_for`] saw the `next()` complete.
    pub(crate) fn complete(&self, id: u64) -> Completion {
        let output = {
            let mut state = self.state();
            if state.waiter.as_ref().map(|w| w.id) != Some(id) {
                return Completion::Gone;
            }
            let Some(output) = state.done.take() else {
                return Completion::NotYet;
            };
            state.waiter = None;
            output
        };
        Completion::Done(self.finish(output))
    }

    /// Adds more buffered messages of the chunk `batch`'s message came from, up to `max` in
    /// all, handed out as one batch (the library's `extend_batch`).
    fn extend_batch(&self, batch: &mut Vec<zkconsumer::Message>, max: usize) {
        let mut state = self.state();
        if state.busy || state.pending.is_some() {
            return;
        }
        if let Some(stream) = state.stream.as_mut() {
            stream.extend_batch(batch, max);
        }
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
    /// grace period. The same for a message no reader took (an `__anext__` let go of it).
    /// Streams busy in another thread are left to the library's shutdown.
    pub(crate) fn end_if_held_by_current_thread(&self) {
        let mut state = self.state();
        // An outcome no reader took (its `__anext__` let go of it, or its event loop does not
        // run to resume the waiter) is held by nobody: the stream ends with the message
        // unprocessed (delivered again later) instead of holding shutdown.
        if state.done.is_some() {
            if let Some(poller) = state.waiter.take().and_then(|w| w.poller) {
                poller.abort();
            }
            state.busy = false;
        }
        if state.busy {
            return;
        }
        let unclaimed = state.done.take().is_some();
        if unclaimed
            || (state.holder == Some(std::thread::current().id()) && state.pending.is_none())
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
    /// Counts `__anext__` calls: every [`aio::READY_RUN`]th yields to the event loop first.
    ready_run: AtomicU32,
}

impl Stream {
    pub(crate) fn new(slot: Arc<Slot>, rt: Arc<Runtime>) -> Self {
        Stream {
            slot,
            birth: Birth::now(),
            rt,
            ready_run: AtomicU32::new(0),
        }
    }

    /// The next message as a Python result: `None` once the stream ended (or nothing came
    /// before `deadline`), `StreamError`/`Timeout` as exceptions. With `skip`, a skippable
    /// error (an undecodable set) is logged and skipped instead.
    fn next_message(
        &self,
        py: Python<'_>,
        deadline: Option<Instant>,
        skip: bool,
    ) -> PyResult<Option<zkconsumer::Message>> {
        loop {
            return match self.wait(py, deadline)? {
                Outcome::Message(inner) => Ok(Some(inner)),
                Outcome::Failed(e) if skip && e.is_skippable() => {
                    log_skipped(py, &e)?;
                    continue;
                }
                Outcome::Failed(e) => Err(errors::from_stream(py, &e)),
                Outcome::Ended | Outcome::NothingYet => Ok(None),
            };
        }
    }

    /// Waits for the next outcome until `deadline` (forever when `None`).
    fn wait(&self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<Outcome> {
        self.birth.check(py, "Stream")?;
        runtime::check_not_in_runtime(py)?;
        let rt = &self.rt;
        let mut turn = self.slot.take_turn();
        if matches!(turn, Turn::Busy) && self.slot.abandon_if_loop_closed(py) {
            turn = self.slot.take_turn();
        }
        let pending = match turn {
            Turn::Ready(message) => return Ok(Outcome::Message(message)),
            Turn::Wait(pending) => pending,
            Turn::Ended => return Ok(Outcome::Ended),
            Turn::Busy => return Err(self.slot.busy_error(py)),
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
        Ok(self.next_message(py, None, false)?.map(Message::from))
    }

    /// An iterator over this stream that skips message sets that cannot be decoded (a
    /// `StreamError` whose `skippable` is True), logging each on the `zkconsumer` logger, as
    /// the CLI's `--skip-message-on-error` does; other errors are raised as by iteration.
    fn skipping_errors(slf: Py<Self>) -> SkippingStream {
        SkippingStream { stream: slf }
    }

    /// Up to `max_records` messages, all of one partition and already buffered, after waiting
    /// like `poll(timeout)` for the first; `[]` when none arrived within `timeout` seconds or
    /// the stream ended. The batch is one commit point: taking the next batch (or message)
    /// marks this whole batch processed (or `ack()` its last message).
    #[pyo3(signature = (max_records=500, timeout=None))]
    fn poll_batch(
        &self,
        py: Python<'_>,
        max_records: usize,
        timeout: Option<f64>,
    ) -> PyResult<Vec<Message>> {
        if max_records == 0 {
            return Err(errors::config_error(
                py,
                "invalid max_records 0: expected at least 1".into(),
                Some("max_records"),
                Some("0"),
            ));
        }
        let deadline = deadline(py, timeout)?;
        let Some(first) = self.next_message(py, deadline, false)? else {
            return Ok(Vec::new());
        };
        let mut batch = vec![first];
        self.slot.extend_batch(&mut batch, max_records);
        Ok(batch.into_iter().map(Message::from).collect())
    }

    /// The next message, or `None` when none arrived within `timeout` seconds (or the stream
    /// has ended: see `ended`). `timeout=None` waits like iteration does.
    #[pyo3(signature = (timeout=None))]
    fn poll(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Message>> {
        let deadline = deadline(py, timeout)?;
        Ok(self.next_message(py, deadline, false)?.map(Message::from))
    }

    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// An awaitable of the next message, for `async for` in an asyncio event loop; same rules
    /// as `__next__` (the awaitable raises `StopAsyncIteration` once the stream has ended).
    /// Cancelling the await loses nothing: a message that arrived meanwhile is the next one.
    fn __anext__(&self, py: Python<'_>) -> PyResult<aio::NextMessage> {
        self.birth.check(py, "Stream")?;
        let calls = self.ready_run.fetch_add(1, Ordering::Relaxed);
        let yield_first = calls % aio::READY_RUN == aio::READY_RUN - 1;
        Ok(aio::NextMessage::new(
            self.slot.clone(),
            self.rt.clone(),
            self.birth,
            yield_first,
        ))
    }

    /// Declares `message` processed (with `auto.ack=true`, every earlier message of its
    /// partition too), from any thread. No effect once the partition is no longer owned by
    /// this member; `ForeignMessageError` (a `ValueError`) for a message this stream did not
    /// hand out.
    fn ack(&self, py: Python<'_>, message: &Message) -> PyResult<()> {
        self.slot
            .acker
            .ack(&message.inner)
            .map_err(|e| errors::foreign_message(py, &e))
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
    pub(crate) inner: zkconsumer::Message,
}

impl From<zkconsumer::Message> for Message {
    fn from(inner: zkconsumer::Message) -> Self {
        Message { inner }
    }
}

/// The instant `timeout` seconds from now (`None`: no deadline); a clear error for a
/// negative or non-finite value.
fn deadline(py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => {
            Ok(Some(Instant::now() + Duration::from_secs_f64(t.min(1e9))))
        }
        Some(t) => Err(errors::config_error(
            py,
            format!("invalid timeout {t}: expected a number of seconds >= 0"),
            Some("timeout"),
            Some(&t.to_string()),
        )),
    }
}

/// Logs a message set skipped by `skipping_errors()` on the `zkconsumer` logger.
fn log_skipped(py: Python<'_>, e: &StreamError) -> PyResult<()> {
    py.import("logging")?
        .call_method1("getLogger", ("zkconsumer",))?
        .call_method1("warning", ("skipping a message set: %s", e.to_string()))?;
    Ok(())
}

/// `stream.skipping_errors()`: iteration that skips undecodable message sets.
#[pyclass(module = "zkconsumer._native", name = "SkippingStream", frozen)]
pub struct SkippingStream {
    stream: Py<Stream>,
}

#[pymethods]
impl SkippingStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next message, skipping undecodable sets (logged); ends with the stream.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Message>> {
        Ok(self
            .stream
            .get()
            .next_message(py, None, true)?
            .map(Message::from))
    }
}

#[pymethods]
impl Message {
    /// A message with these fields (for tests, or to rebuild one): not acknowledgeable unless
    /// a stream handed out its partition. `_epoch` is the partition's reset epoch the original
    /// was fetched in (pickling carries it, so an unpickled copy acknowledges like the original).
    #[new]
    #[pyo3(signature = (topic, partition, offset, value, key=None, _epoch=0))]
    fn new(
        topic: &str,
        partition: i32,
        offset: i64,
        value: Vec<u8>,
        key: Option<Vec<u8>>,
        _epoch: u64,
    ) -> Self {
        Message {
            inner: zkconsumer::Message::new(topic, partition, offset, key, value)
                .with_epoch(_epoch),
        }
    }

    /// Pickles as its constructor call (a process pool can take it), epoch included.
    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(
        Bound<'py, PyType>,
        (
            String,
            i32,
            i64,
            Bound<'py, PyBytes>,
            Option<Bound<'py, PyBytes>>,
            u64,
        ),
    )> {
        let py = slf.py();
        let m = &slf.get().inner;
        Ok((
            slf.get_type(),
            (
                m.topic.to_string(),
                m.partition,
                m.offset,
                PyBytes::new(py, &m.value),
                m.key.as_deref().map(|k| PyBytes::new(py, k)),
                m.epoch(),
            ),
        ))
    }

    /// Equal when topic, partition, offset, key and value are.
    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> Py<PyAny> {
        let py = other.py();
        let Ok(other) = other.cast::<Message>() else {
            return py.NotImplemented();
        };
        let equal = self.inner == other.get().inner;
        match op {
            CompareOp::Eq => equal
                .into_pyobject(py)
                .map(|b| b.to_owned().into_any().unbind()),
            CompareOp::Ne => (!equal)
                .into_pyobject(py)
                .map(|b| b.to_owned().into_any().unbind()),
            _ => return py.NotImplemented(),
        }
        .unwrap_or_else(|_| py.NotImplemented())
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let m = &self.inner;
        (&*m.topic, m.partition, m.offset, &m.key, &m.value).hash(&mut h);
        h.finish()
    }

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

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let m = &self.inner;
        let short = |bytes: &[u8]| -> PyResult<String> {
            let shown = &bytes[..bytes.len().min(40)];
            let repr = PyBytes::new(py, shown).repr()?.to_string();
            Ok(if bytes.len() > shown.len() {
                format!("{repr}...({} bytes)", bytes.len())
            } else {
                repr
            })
        };
        let key = match m.key.as_deref() {
            Some(k) => short(k)?,
            None => "None".into(),
        };
        Ok(format!(
            "Message(topic={}, partition={}, offset={}, value={}, key={key})",
            pyo3::types::PyString::new(py, &m.topic).repr()?,
            m.partition,
            m.offset,
            short(&m.value)?,
        ))
    }
}
