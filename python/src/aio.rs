//! asyncio: how an `__anext__` of a `Stream` awaits the stream's `next()` in flight, and the
//! `async with` of a `Consumer`.
//!
//! The `next()` stays in the stream's state; a task of the runtime polls it there for one
//! waiter (see `Slot::poll_for`). When it completes, its output is kept in the state and the
//! event loop runs a [`Delivery`] that hands it to the waiter's asyncio future. A cancelled
//! future ([`Abandon`], its done-callback) only lets go of the wait: the `next()`, or the output
//! it came to, stays for the next reader. A buffered message is handed over as a future that is
//! done already (no yield, so no window for a cancellation to drop it), except every
//! [`READY_RUN`]th, which goes through the loop so other tasks get their turn. Nothing here
//! blocks the event loop's thread.

use std::sync::Arc;

use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::{intern, Py};
use tokio::runtime::Runtime;

use crate::errors;
use crate::stream::{Message, Outcome, Slot};

/// How many buffered messages in a row a stream hands to `async for` before one goes through
/// the event loop: awaiting a future that is done already never yields, so without this one
/// busy stream would starve the loop's other tasks (other streams, timers, signals).
pub(crate) const READY_RUN: u32 = 64;

/// The event loop running in this thread (`RuntimeError` outside of one, as asyncio says).
pub(crate) fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()
}

/// A future of `event_loop` that is done already, with `value` as its result.
pub(crate) fn done_future<'py>(
    event_loop: &Bound<'py, PyAny>,
    value: impl IntoPyObject<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = event_loop.py();
    let future = event_loop.call_method0(intern!(py, "create_future"))?;
    future.call_method1(intern!(py, "set_result"), (value,))?;
    Ok(future)
}

/// Makes `future` (of the running loop) receive the outcome of `slot`'s `next()` in flight,
/// which waiter `id` now owns.
pub(crate) fn await_in_flight(
    slot: &Arc<Slot>,
    rt: &Runtime,
    id: u64,
    future: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let (delivery, event_loop) = watch(slot, id, future)?;
    let event_loop = event_loop.unbind();
    let polled = slot.clone();
    let poller = rt.spawn(async move {
        if !std::future::poll_fn(|cx| polled.poll_for(id, cx)).await {
            return;
        }
        let scheduled = Python::try_attach(|py| {
            event_loop
                .call_method1(py, "call_soon_threadsafe", (delivery,))
                .is_ok()
        });
        if scheduled != Some(true) {
            // The loop is closed (or the interpreter is going): nobody awaits any more; the
            // outcome stays in the stream for a later reader.
            polled.abandon(id);
        }
    });
    slot.set_poller(id, poller.abort_handle());
    Ok(())
}

/// Makes `future` receive the message parked in `slot` for waiter `id`, at the event loop's
/// next iteration (the loop's other tasks run first).
pub(crate) fn deliver_soon(
    slot: &Arc<Slot>,
    id: u64,
    event_loop: &Bound<'_, PyAny>,
    future: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let (delivery, _) = watch(slot, id, future)?;
    let py = event_loop.py();
    if let Err(e) = event_loop.call_method1(intern!(py, "call_soon"), (delivery,)) {
        slot.abandon(id);
        return Err(e);
    }
    Ok(())
}

/// Lets a cancellation of `future` release waiter `id`; the [`Delivery`] that completes it, and
/// the future's loop.
fn watch<'py>(
    slot: &Arc<Slot>,
    id: u64,
    future: &Bound<'py, PyAny>,
) -> PyResult<(Delivery, Bound<'py, PyAny>)> {
    let py = future.py();
    let on_done = Abandon {
        slot: slot.clone(),
        id,
    };
    let registered = future
        .call_method0(intern!(py, "get_loop"))
        .and_then(|event_loop| {
            future.call_method1(intern!(py, "add_done_callback"), (on_done,))?;
            Ok(event_loop)
        });
    match registered {
        Ok(event_loop) => Ok((
            Delivery {
                slot: slot.clone(),
                id,
                future: future.clone().unbind(),
            },
            event_loop,
        )),
        Err(e) => {
            slot.abandon(id);
            Err(e)
        }
    }
}

/// Run by the event loop once the `next()` an `__anext__` waits for has completed: hands the
/// outcome to the asyncio future, unless that was cancelled meanwhile (then the outcome stays
/// in the stream for the next reader).
#[pyclass(module = "zkconsumer._native", frozen)]
struct Delivery {
    slot: Arc<Slot>,
    id: u64,
    future: Py<PyAny>,
}

#[pymethods]
impl Delivery {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        let future = self.future.bind(py);
        if future.call_method0(intern!(py, "done"))?.is_truthy()? {
            self.slot.abandon(self.id);
            return Ok(());
        }
        let Some(outcome) = self.slot.complete(self.id) else {
            return Ok(());
        };
        match outcome {
            Outcome::Message(inner) => {
                future.call_method1(intern!(py, "set_result"), (Message { inner },))?
            }
            Outcome::Failed(e) => future.call_method1(
                intern!(py, "set_exception"),
                (errors::from_stream(py, &e).into_value(py),),
            )?,
            Outcome::Ended | Outcome::NothingYet => future.call_method1(
                intern!(py, "set_exception"),
                (PyStopAsyncIteration::new_err(()).into_value(py),),
            )?,
        };
        Ok(())
    }
}

/// Done-callback of an `__anext__`'s asyncio future: a cancelled await lets go of the stream.
#[pyclass(module = "zkconsumer._native", frozen)]
struct Abandon {
    slot: Arc<Slot>,
    id: u64,
}

#[pymethods]
impl Abandon {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            self.slot.abandon(self.id);
        }
        Ok(())
    }
}
