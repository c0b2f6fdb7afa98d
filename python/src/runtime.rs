//! The one tokio runtime of the process and how Python threads wait on it.
//!
//! Python threads never run the library's tasks themselves: work is spawned on this runtime and
//! the calling thread waits with the GIL released, in slices of at most [`SLICE`], running
//! Python's signal handlers between slices (so Ctrl-C and `signal.signal` handlers keep working
//! while a call blocks). A runtime does not survive `fork()`: objects remember the process that
//! made them and refuse to work in a child.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::errors;

/// The longest a blocked call goes without looking at Python's signals.
pub const SLICE: Duration = Duration::from_millis(50);

/// This process's id, without a system call per message: read once, and again in the child
/// of every `fork()` (a `pthread_atfork` handler).
pub fn current_pid() -> u32 {
    static PID: AtomicU32 = AtomicU32::new(0);
    static HOOK: Once = Once::new();
    extern "C" fn after_fork_in_child() {
        PID.store(std::process::id(), Ordering::Relaxed);
    }
    HOOK.call_once(|| {
        // SAFETY: registers a handler that only calls getpid(2) (async-signal-safe) and
        // stores to an atomic, as a fork child handler must.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
        PID.store(std::process::id(), Ordering::Relaxed);
    });
    PID.load(Ordering::Relaxed)
}

static FINALIZING: AtomicBool = AtomicBool::new(false);

/// Whether the interpreter is shutting down (the module's `atexit` handler ran): runtime
/// threads must not take the GIL any more (with the stable ABI, PyO3 cannot check for
/// finalization itself before Python 3.13).
pub fn finalizing() -> bool {
    FINALIZING.load(Ordering::Acquire)
}

#[pyfunction]
fn interpreter_exiting() {
    FINALIZING.store(true, Ordering::Release);
}

/// Registers the `atexit` handler behind [`finalizing`].
pub fn watch_exit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let handler = wrap_pyfunction!(interpreter_exiting, m)?;
    m.py()
        .import("atexit")?
        .call_method1("register", (handler,))?;
    Ok(())
}

/// The runtime of this process (a new one in a forked child).
pub fn runtime(py: Python<'_>) -> PyResult<Arc<Runtime>> {
    static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);
    let mut slot = match RUNTIME.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let pid = current_pid();
    if let Some((owner, rt)) = slot.as_ref() {
        if *owner == pid {
            return Ok(rt.clone());
        }
        // A forked child: the parent's worker threads do not exist here. Leak the parent's
        // runtime (dropping it would wait for threads that are gone) and make a new one.
        if let Some((_, old)) = slot.take() {
            std::mem::forget(old);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("zkconsumer")
        .build()
        .map_err(|e| errors::error(py, format!("cannot start the zkconsumer runtime: {e}")))?;
    let rt = Arc::new(rt);
    *slot = Some((pid, rt.clone()));
    Ok(rt)
}

/// The process an object was made in; methods of objects from a parent process fail clearly.
#[derive(Debug, Clone, Copy)]
pub struct Birth(u32);

impl Birth {
    pub fn now() -> Self {
        Birth(current_pid())
    }

    pub fn check(self, py: Python<'_>, what: &str) -> PyResult<()> {
        if self.0 == current_pid() {
            Ok(())
        } else {
            Err(errors::usage(
                py,
                format!(
                "this {what} was created in process {} before fork(); it cannot be used in the \
                 child process {}: create a new Consumer in the child",
                self.0,
                std::process::id()
                ),
            ))
        }
    }
}

/// Whether the calling thread is one of the runtime's own: only rebalance listener callbacks
/// run Python code there (on the blocking pool, where blocking on the runtime is allowed).
pub fn in_listener() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// Fails when the calling thread is one of the runtime's own (a rebalance listener callback):
/// a blocking call there would wait for the very threads it occupies.
pub fn check_not_in_runtime(py: Python<'_>) -> PyResult<()> {
    if in_listener() {
        return Err(errors::usage(
            py,
            "blocking zkconsumer calls (next, poll, close, streams) cannot be made from a \
             rebalance listener callback (commit can): record what to do and do it from your \
             own thread",
        ));
    }
    Ok(())
}

/// Runs `future` on the runtime and waits for it with the GIL released, looking at Python's
/// signals every [`SLICE`]. If a signal handler raises (e.g. `KeyboardInterrupt`), the
/// exception is returned and the task goes on in the background.
pub fn run<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    check_not_in_runtime(py)?;
    let rt = runtime(py)?;
    let mut task = pin!(rt.spawn(future));
    loop {
        let done =
            py.detach(|| rt.block_on(async { tokio::time::timeout(SLICE, task.as_mut()).await }));
        match done {
            Ok(Ok(output)) => return Ok(output),
            Ok(Err(join)) => {
                return Err(errors::error(py, format!("zkconsumer task failed: {join}")));
            }
            Err(_elapsed) => py.check_signals()?,
        }
    }
}
