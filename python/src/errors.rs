//! Library errors as the package's exceptions (`zkconsumer.errors`): `Error` at the root,
//! `ConfigError` (also a `ValueError`) naming the key and value, `ConnectionError`,
//! `UnknownTopicError`, `StreamError` naming topic, partition and offset, `Timeout`,
//! `UsageError` (a call that cannot be made now) and `ForeignMessageError` (from `ack`).
//! The classes are declared in Python so that they can have two bases; this module only
//! fills them in.

use pyo3::prelude::*;
use pyo3::types::PyType;
use pyo3::BoundObject;

use zkconsumer::config::ConfigError;
use zkconsumer::group::filter::FilterError;
use zkconsumer::offsets::OffsetStoreError;
use zkconsumer::zk::session::ZkError;
use zkconsumer::{ConsumerError, ForeignMessage, StreamError};

fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    Ok(py
        .import("zkconsumer.errors")?
        .getattr(name)?
        .cast_into::<PyType>()?)
}

/// Any value as a Python object (`None` if it cannot be converted).
fn obj<'py, T: IntoPyObject<'py>>(py: Python<'py>, value: T) -> Py<PyAny> {
    value
        .into_pyobject(py)
        .map(|v| v.into_any().unbind())
        .unwrap_or_else(|_| py.None())
}

/// An exception of class `name` with `message` and the given attributes.
fn raise(py: Python<'_>, name: &str, message: String, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    let built = (|| -> PyResult<PyErr> {
        let exc = class(py, name)?.call1((message,))?;
        for (attr, value) in attrs {
            exc.setattr(*attr, value)?;
        }
        Ok(PyErr::from_value(exc))
    })();
    built.unwrap_or_else(|e| e)
}

/// `zkconsumer.Error` with a message.
pub fn error(py: Python<'_>, message: impl Into<String>) -> PyErr {
    raise(py, "Error", message.into(), &[])
}

/// `zkconsumer.UsageError`: a call that cannot be made in this state.
pub fn usage(py: Python<'_>, message: impl Into<String>) -> PyErr {
    raise(py, "UsageError", message.into(), &[])
}

/// `zkconsumer.ForeignMessageError` from `ack`.
pub fn foreign_message(py: Python<'_>, e: &ForeignMessage) -> PyErr {
    let attrs = [
        ("topic", obj(py, &e.topic)),
        ("partition", obj(py, e.partition)),
        ("offset", obj(py, e.offset)),
        ("thread_id", obj(py, &e.thread_id)),
    ];
    raise(py, "ForeignMessageError", e.to_string(), &attrs)
}

/// `zkconsumer.ConfigError`; `key` and `value` name what is wrong when known.
pub fn config_error(
    py: Python<'_>,
    message: String,
    key: Option<&str>,
    value: Option<&str>,
) -> PyErr {
    raise(
        py,
        "ConfigError",
        message,
        &[("key", obj(py, key)), ("value", obj(py, value))],
    )
}

/// A configuration error of the library.
pub fn from_config(py: Python<'_>, e: &ConfigError) -> PyErr {
    let message = e.to_string();
    match e {
        ConfigError::InvalidValue { key, value, .. } => {
            config_error(py, message, Some(key), Some(value))
        }
        ConfigError::Missing { key } => config_error(py, message, Some(key), None),
        ConfigError::Io { .. } | ConfigError::Syntax { .. } => {
            config_error(py, message, None, None)
        }
    }
}

/// A topic filter that cannot be used.
pub fn from_filter(py: Python<'_>, e: &FilterError, kind: &str) -> PyErr {
    config_error(py, e.to_string(), Some(kind), Some(&e.filter))
}

/// An error of the consumer API.
pub fn from_consumer(py: Python<'_>, e: &ConsumerError) -> PyErr {
    let message = e.to_string();
    match e {
        ConsumerError::Zk(ZkError::Layout(_))
        | ConsumerError::Offsets(OffsetStoreError::Zk(ZkError::Layout(_))) => error(py, message),
        ConsumerError::Zk(_) | ConsumerError::Offsets(OffsetStoreError::Zk(_)) => {
            raise(py, "ConnectionError", message, &[])
        }
        ConsumerError::InvalidSubscription(_) => config_error(py, message, None, None),
        ConsumerError::InvalidOffset { offset, .. } => {
            config_error(py, message, Some("offset"), Some(&offset.to_string()))
        }
        ConsumerError::ShutDown(_)
        | ConsumerError::StreamsAlreadyCreated(_)
        | ConsumerError::NotOwned { .. }
        | ConsumerError::ResetAfterStart(_) => usage(py, message),
        _ => error(py, message),
    }
}

/// Topics that do not exist.
pub fn unknown_topics(py: Python<'_>, topics: Vec<String>) -> PyErr {
    let message = format!(
        "topic{} {} do{} not exist (pass wait_for_topics=True to wait for {})",
        if topics.len() == 1 { "" } else { "s" },
        topics.join(", "),
        if topics.len() == 1 { "es" } else { "" },
        if topics.len() == 1 { "it" } else { "them" },
    );
    let list = obj(py, topics);
    raise(py, "UnknownTopicError", message, &[("topics", list)])
}

/// An error handed out by a stream: `StreamError` (with topic, partition and offset when the
/// library names them) or `Timeout`.
pub fn from_stream(py: Python<'_>, e: &StreamError) -> PyErr {
    let message = e.to_string();
    match e {
        StreamError::Timeout(_) => raise(py, "Timeout", message, &[]),
        StreamError::Fetch(fetch) => {
            let (topic, partition, offset) = match fetch.position() {
                Some((t, p, o)) => (obj(py, t), obj(py, p), obj(py, o)),
                None => (py.None(), py.None(), py.None()),
            };
            let reason = obj(py, &message);
            let attrs = [
                ("topic", topic),
                ("partition", partition),
                ("offset", offset),
                ("reason", reason),
                ("skippable", obj(py, e.is_skippable())),
            ];
            raise(py, "StreamError", message, &attrs)
        }
    }
}
