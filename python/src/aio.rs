//! asyncio: how an `__anext__` of a `Stream` awaits the stream's `next()` in flight, and the
//! `async with` of a `Consumer`.
//!
//! The `next()` stays in the stream's state; a task of the runtime polls it there for one
//! waiter (see `Slot::poll_for`). When it completes, its output is kept in the state and the
//! event loop runs a [`Delivery`] that hands it to the waiter's asyncio future. A cancelled
//! future ([`Abandon`], its done-callback) only lets go of the wait: the `next()`, or the output
//! it came to, stays for the next reader. Nothing here blocks the event loop's thread.

use std::sync::Arc;

use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::errors;
use crate::stream::{Message, Outcome, Slot};

/// The event loop running in this thread (`RuntimeError` outside of one, as asyncio says).
pub(crate) fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("asyncio")?.call_method0("get_running_loop")
}

/// Makes `future` (of the running loop) receive the outcome of `slot`'s `next()` in flight,
/// which waiter `id` now owns.
pub(crate) fn await_in_flight(
    slot: &Arc<Slot>,
    rt: &Runtime,
    id: u64,
    future: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let on_done = Abandon {
        slot: slot.clone(),
        id,
    };
    let registered = future
        .getattr("get_loop")
        .and_then(|get_loop| get_loop.call0())
        .and_then(|event_loop| {
            future.call_method1("add_done_callback", (on_done,))?;
            Ok(event_loop)
        });
    let event_loop = match registered {
        Ok(event_loop) => event_loop.unbind(),
        Err(e) => {
            slot.abandon(id);
            return Err(e);
        }
    };
    let delivery = Delivery {
        slot: slot.clone(),
        id,
        future: future.clone().unbind(),
    };
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
        if future.call_method0("done")?.is_truthy()? {
            self.slot.abandon(self.id);
            return Ok(());
        }
        let Some(outcome) = self.slot.complete(self.id) else {
            return Ok(());
        };
        match outcome {
            Outcome::Message(inner) => future.call_method1("set_result", (Message { inner },))?,
            Outcome::Failed(e) => future.call_method1(
                "set_exception",
                (errors::from_stream(py, &e).into_value(py),),
            )?,
            Outcome::Ended | Outcome::NothingYet => future.call_method1(
                "set_exception",
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
