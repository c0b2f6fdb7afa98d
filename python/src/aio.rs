//! asyncio: the awaitable a `Stream`'s `__anext__` returns, and the `async with` of a
//! `Consumer`.
//!
//! Nothing is taken from the stream before the awaiting coroutine runs: the awaitable's first
//! step takes a buffered message (finishing at once, without yielding), or registers as the
//! stream's waiter and yields a wake-up future to its task. A task of the runtime polls the
//! stream's `next()` in flight for that waiter (`Slot::poll_for`) and, once it completed, has
//! the event loop set the wake-up future; the outcome stays in the stream's state until the
//! coroutine resumes and takes it. So a cancellation (thrown into the awaitable, even in the
//! same loop iteration as the wake-up) or an awaitable dropped unfinished only lets go of the
//! wait: the `next()`, or the message it came to, stays for the next reader, async or not.
//! Every [`READY_RUN`]th awaitable yields once first, so that one stream with plenty buffered
//! does not starve the loop's other tasks. Nothing here blocks the event loop's thread.

use std::sync::Arc;

use pyo3::exceptions::{PyBaseException, PyRuntimeError, PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use pyo3::{intern, Py};
use tokio::runtime::Runtime;

use crate::errors;
use crate::runtime::{self, Birth};
use crate::stream::{AsyncTurn, Completion, Message, Outcome, Slot};

/// Every how many `__anext__` awaitables one yields to the event loop before taking a message:
/// awaiting a value that is there already never yields, so without this a stream with plenty
/// buffered would starve the loop's other tasks (other streams, timers, signal handlers).
pub(crate) const READY_RUN: u32 = 64;

/// The event loop running in this thread (`RuntimeError` outside of one, as asyncio says).
pub(crate) fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()
}

/// Where an awaitable stands.
enum Phase {
    /// Not run yet; `yield_first`: give the loop one turn before taking anything.
    Start { yield_first: bool },
    /// Registered as waiter `id` of the stream; its task waits on the `wake` future.
    Waiting { id: u64, wake: Py<PyAny> },
    /// Finished (or let go).
    Done,
}

/// What `await stream.__anext__()` runs: resolves to the next message, raises
/// `StopAsyncIteration` once the stream ended, or the stream's error.
#[pyclass(module = "zkconsumer._native", name = "NextMessage")]
pub(crate) struct NextMessage {
    slot: Arc<Slot>,
    rt: Arc<Runtime>,
    birth: Birth,
    phase: Phase,
}

impl NextMessage {
    pub(crate) fn new(slot: Arc<Slot>, rt: Arc<Runtime>, birth: Birth, yield_first: bool) -> Self {
        NextMessage {
            slot,
            rt,
            birth,
            phase: Phase::Start { yield_first },
        }
    }

    /// One step of the coroutine protocol: `Ok(x)` yields `x` to the task (`None`: one loop
    /// turn; a future: wait for it), `Err(StopIteration(message))` finishes.
    fn step(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.birth.check(py, "Stream")?;
        loop {
            match &self.phase {
                Phase::Start { yield_first: true } => {
                    self.phase = Phase::Start { yield_first: false };
                    return Ok(py.None());
                }
                Phase::Start { yield_first: false } => return self.start(py),
                Phase::Waiting { id, wake } => match self.slot.complete(*id) {
                    Completion::Done(outcome) => {
                        self.phase = Phase::Done;
                        return Err(finished(py, outcome)?);
                    }
                    // Resumed before the wake-up (driven by hand): wait on.
                    Completion::NotYet => return Ok(wake.clone_ref(py)),
                    // The wait was let go meanwhile (its loop was seen closed): start over.
                    Completion::Gone => self.phase = Phase::Start { yield_first: false },
                },
                Phase::Done => {
                    return Err(PyRuntimeError::new_err(
                        "cannot reuse an already awaited __anext__()",
                    ))
                }
            }
        }
    }

    fn start(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let event_loop = running_loop(py)?;
        let mut turn = self.slot.take_async_turn(event_loop.clone().unbind());
        if matches!(turn, AsyncTurn::Busy) && self.slot.abandon_if_loop_closed(py) {
            turn = self.slot.take_async_turn(event_loop.clone().unbind());
        }
        self.phase = Phase::Done;
        match turn {
            AsyncTurn::Ready(inner) => Err(finished(py, Outcome::Message(inner))?),
            AsyncTurn::Finished(outcome) => Err(finished(py, outcome)?),
            AsyncTurn::Ended => Err(PyStopAsyncIteration::new_err(())),
            AsyncTurn::Busy => Err(self.slot.busy_error(py)),
            AsyncTurn::Wait(id) => match self.wake_when_ready(id, &event_loop) {
                Ok(wake) => {
                    self.phase = Phase::Waiting {
                        id,
                        wake: wake.clone_ref(py),
                    };
                    Ok(wake)
                }
                Err(e) => {
                    self.slot.abandon(id);
                    Err(e)
                }
            },
        }
    }

    /// A future of `event_loop` that is set once waiter `id`'s `next()` has completed, to be
    /// awaited by the task (`_asyncio_future_blocking`, as `Future.__await__` yields it).
    fn wake_when_ready(&self, id: u64, event_loop: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = event_loop.py();
        let wake = event_loop.call_method0(intern!(py, "create_future"))?;
        wake.setattr(intern!(py, "_asyncio_future_blocking"), true)?;
        let waker = Wake {
            future: wake.clone().unbind(),
        };
        let event_loop = event_loop.clone().unbind();
        let polled = self.slot.clone();
        let poller = self.rt.spawn(async move {
            if !std::future::poll_fn(|cx| polled.poll_for(id, cx)).await {
                return;
            }
            // Taking the GIL may wait for the loop's thread (up to the switch interval): not on
            // a runtime worker, which fetchers and the coordinator need.
            drop(tokio::task::spawn_blocking(move || {
                let scheduled = !runtime::finalizing()
                    && Python::try_attach(|py| {
                        event_loop
                            .call_method1(py, "call_soon_threadsafe", (waker,))
                            .is_ok()
                    }) == Some(true);
                if !scheduled {
                    // The loop is closed (or the interpreter is going): nobody can resume; the
                    // outcome stays in the stream for a later reader.
                    polled.abandon(id);
                }
            }));
        });
        self.slot.set_poller(id, poller.abort_handle());
        Ok(wake.unbind())
    }

    /// Lets go of the wait (cancelled, closed or dropped unfinished).
    fn let_go(&mut self) {
        if let Phase::Waiting { id, .. } = self.phase {
            self.slot.abandon(id);
        }
        self.phase = Phase::Done;
    }
}

/// How an outcome finishes the awaitable.
fn finished(py: Python<'_>, outcome: Outcome) -> PyResult<PyErr> {
    Ok(match outcome {
        Outcome::Message(inner) => PyStopIteration::new_err((Py::new(py, Message { inner })?,)),
        Outcome::Failed(e) => errors::from_stream(py, &e),
        Outcome::Ended | Outcome::NothingYet => PyStopAsyncIteration::new_err(()),
    })
}

impl Drop for NextMessage {
    fn drop(&mut self) {
        self.let_go();
    }
}

#[pymethods]
impl NextMessage {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.step(py)
    }

    /// As `__next__` (the value sent in is not used).
    fn send(&mut self, py: Python<'_>, _value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.step(py)
    }

    /// An exception thrown in (a cancelled task): lets go of the wait and raises it
    /// (`throw(exception)`, or the old `throw(type, value, traceback)`).
    #[pyo3(signature = (kind, value=None, traceback=None))]
    fn throw(
        &mut self,
        kind: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
        traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.let_go();
        let exception = match value {
            Some(v) if v.is_instance_of::<PyBaseException>() => v.clone(),
            Some(v) if !v.is_none() && kind.is_instance_of::<PyType>() => kind.call1((v,))?,
            _ if kind.is_instance_of::<PyType>() => kind.call0()?,
            _ => kind.clone(),
        };
        if let Some(tb) = traceback.filter(|tb| !tb.is_none()) {
            exception.call_method1("with_traceback", (tb,))?;
        }
        Err(PyErr::from_value(exception))
    }

    fn close(&mut self) {
        self.let_go();
    }
}

/// Run by the event loop once a waiter's `next()` has completed: wakes its task.
#[pyclass(module = "zkconsumer._native", frozen)]
struct Wake {
    future: Py<PyAny>,
}

#[pymethods]
impl Wake {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        let future = self.future.bind(py);
        if !future.call_method0(intern!(py, "done"))?.is_truthy()? {
            future.call_method1(intern!(py, "set_result"), (py.None(),))?;
        }
        Ok(())
    }
}
