//! The Python binding of zkconsumer (`zkconsumer._native`).
//!
//! A thin layer: it converts Python values to the library's types and back, maps the library's
//! errors to the package's exception classes, and waits for the library's futures on a
//! process-wide tokio runtime with the GIL released. Every decision — assignment, offsets,
//! ownership, shutdown order — stays in the `zkconsumer` crate, so Python and Rust members never
//! disagree. It must never re-implement consumer logic.

use pyo3::prelude::*;

mod aio;
mod consumer;
mod errors;
mod listener;
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

/// The library's log lines go to stderr: warnings and errors by default (an unknown config
/// key, a failed commit), everything `RUST_LOG` asks for when set. An application that set up
/// its own `tracing` subscriber keeps it.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("zkconsumer=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The native half of the `zkconsumer` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    init_logs();
    runtime::watch_exit(m)?;
    m.add_class::<consumer::Consumer>()?;
    m.add_class::<stream::Stream>()?;
    m.add_class::<stream::Message>()?;
    m.add_function(wrap_pyfunction!(request_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown_requested, m)?)?;
    Ok(())
}
