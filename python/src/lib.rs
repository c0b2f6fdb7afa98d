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

/// Blocks until a process-wide shutdown is requested (a signal once
/// `install_signal_handlers()` is in place, or `request_shutdown()` from any thread), at most
/// `timeout` seconds (`None`: no limit). Returns whether one was requested. Python signal
/// handlers run meanwhile.
#[pyfunction]
#[pyo3(signature = (timeout=None))]
fn wait_for_shutdown(py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
    let limit = match timeout {
        None => None,
        Some(t) if t.is_finite() && t >= 0.0 => {
            Some(std::time::Duration::from_secs_f64(t.min(1e9)))
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
    let mut requests = zkconsumer::shutdown::subscribe();
    runtime::run(py, async move {
        let requested = requests.wait_for(|requested| *requested);
        match limit {
            Some(limit) => tokio::time::timeout(limit, requested)
                .await
                .is_ok_and(|r| r.is_ok()),
            None => requested.await.is_ok(),
        }
    })
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
    m.add_class::<stream::SkippingStream>()?;
    m.add_function(wrap_pyfunction!(wait_for_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(request_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown_requested, m)?)?;
    Ok(())
}
