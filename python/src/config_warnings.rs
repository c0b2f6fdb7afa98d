//! Unknown configuration keys as Python warnings: the library lists them, each with the Java
//! key it may stand for (`zkconsumer::config::suggest_key`); this module only raises one
//! `zkconsumer.ConfigWarning` (a `UserWarning`) per key, so `warnings` filters, `-W error` and
//! `pytest.warns` work on them as on any Python warning.

use std::ffi::CString;

use pyo3::prelude::*;
use pyo3::types::PyType;

use zkconsumer::config::ConsumerConfigBuilder;

/// Takes the unknown keys out of `builder` (the library would otherwise log them) and warns
/// about each, attributed to the Python line that made the consumer. Raises when a warnings
/// filter turns the warning into an error.
pub fn warn_unknown_keys(py: Python<'_>, builder: &mut ConsumerConfigBuilder) -> PyResult<()> {
    let unknown = builder.take_unknown_keys();
    if unknown.is_empty() {
        return Ok(());
    }
    let category = py
        .import("zkconsumer.errors")?
        .getattr("ConfigWarning")?
        .cast_into::<PyType>()?;
    for key in unknown {
        // A key with a NUL cannot come from Python's str-to-C conversion, but keep it safe.
        let message = CString::new(key.to_string().replace('\0', "\\0"))?;
        PyErr::warn(py, &category, &message, 1)?;
    }
    Ok(())
}
