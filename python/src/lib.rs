//! The Python binding of zkconsumer (`zkconsumer._native`).
//!
//! A thin layer: it converts Python values to the library's types and back, maps the library's
//! errors to the package's exception classes, and waits for the library's futures on a
//! process-wide tokio runtime with the GIL released. Every decision — assignment, offsets,
//! ownership, shutdown order — stays in the `zkconsumer` crate, so Python and Rust members never
//! disagree. It must never re-implement consumer logic.

use pyo3::prelude::*;

mod aio;
mod config_warnings;
mod consumer;
mod errors;
mod listener;
mod logs;
mod runtime;
mod stream;

/// Asks every consumer that exists in the process now to stop, as the first SIGINT/SIGTERM does
/// once `install_signal_handlers()` is in place: every stream ends, then each consumer's
/// `close()` commits what was processed. Consumers created afterwards start normally.
#[pyfunction]
fn request_shutdown() {
    zkconsumer::shutdown::request();
}

/// Whether a process-wide shutdown was requested at least once.
#[pyfunction]
fn shutdown_requested() -> bool {
    zkconsumer::shutdown::requested()
}

/// The native half of the `zkconsumer` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    runtime::watch_exit(m)?;
    logs::init(m.py())?;
    // The package's version is this crate's (pyproject.toml takes it from Cargo.toml).
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<consumer::Consumer>()?;
    m.add_class::<stream::Stream>()?;
    m.add_class::<stream::Message>()?;
    m.add_function(wrap_pyfunction!(request_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown_requested, m)?)?;
    Ok(())
}
