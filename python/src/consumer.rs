//! `Consumer`: the library's [`zkconsumer::Consumer`] for Python. Builds the configuration
//! from keyword values and/or a `.properties` file, and forwards every call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyString};

use zkconsumer::config::{parse_properties, read_properties_file, ConsumerConfigBuilder};
use zkconsumer::{MessageStream, TopicFilter};

use crate::aio;
use crate::errors;
use crate::listener::PyListener;
use crate::runtime::{self, Birth};
use crate::stream::{Slot, Stream};

/// A member of a ZooKeeper-coordinated consumer group (Java's `ZookeeperConsumerConnector`).
#[pyclass(module = "zkconsumer._native", name = "Consumer", frozen)]
pub struct Consumer {
    inner: Arc<zkconsumer::Consumer>,
    slots: Mutex<Vec<Arc<Slot>>>,
    birth: Birth,
}

/// A config value as the text the library parses: `str`, `int` or `bool`.
fn config_value(key: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.to_string());
    }
    if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyString>() {
        return Ok(value.str()?.to_string());
    }
    Err(errors::config_error(
        value.py(),
        format!(
            "invalid value {} for {key}: expected str or int, not {}",
            value.repr()?,
            value.get_type().name()?
        ),
        Some(key),
        Some(&value.str()?.to_string()),
    ))
}

fn builder(
    py: Python<'_>,
    zookeeper_connect: Option<String>,
    group_id: Option<String>,
    config: Option<&Bound<'_, PyDict>>,
    config_file: Option<PathBuf>,
) -> PyResult<ConsumerConfigBuilder> {
    let mut builder = ConsumerConfigBuilder::default();
    if let Some(path) = config_file {
        let text = read_properties_file(&path).map_err(|e| errors::from_config(py, &e))?;
        let props = parse_properties(&text).map_err(|e| errors::from_config(py, &e))?;
        builder = builder.set_all(props);
    }
    if let Some(config) = config {
        for (key, value) in config.iter() {
            let key: String = key
                .extract()
                .map_err(|_| PyTypeError::new_err("config keys must be str"))?;
            let value = config_value(&key, &value)?;
            builder = builder.set(&key, value);
        }
    }
    if let Some(connect) = zookeeper_connect {
        builder = builder.set("zookeeper.connect", connect);
    }
    if let Some(group) = group_id {
        builder = builder.set("group.id", group);
    }
    Ok(builder)
}

impl Consumer {
    /// The library's streams as Python streams; the consumer keeps their slots for `close()`.
    fn wrap(&self, py: Python<'_>, streams: Vec<MessageStream>) -> PyResult<Vec<Stream>> {
        let rt = runtime::runtime(py)?;
        let slots: Vec<Arc<Slot>> = streams
            .into_iter()
            .map(|s| Slot::new(s, self.inner.clone()))
            .collect();
        match self.slots.lock() {
            Ok(mut g) => g.extend(slots.iter().cloned()),
            Err(poisoned) => poisoned.into_inner().extend(slots.iter().cloned()),
        }
        Ok(slots
            .into_iter()
            .map(|slot| Stream::new(slot, rt.clone()))
            .collect())
    }

    /// Ends the streams whose last message the calling thread holds (see
    /// [`Slot::end_if_held_by_current_thread`]).
    fn end_streams_held_by_current_thread(&self) {
        let slots = match self.slots.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for slot in &slots {
            slot.end_if_held_by_current_thread();
        }
    }

    fn check(&self, py: Python<'_>) -> PyResult<()> {
        self.birth.check(py, "Consumer")
    }

    fn fail_on_missing(
        &self,
        py: Python<'_>,
        topics: Vec<String>,
        wait_for_topics: bool,
    ) -> PyResult<()> {
        if wait_for_topics {
            return Ok(());
        }
        let inner = self.inner.clone();
        let missing = runtime::run(py, async move {
            inner
                .missing_topics(topics.iter().map(String::as_str))
                .await
        })?
        .map_err(|e| errors::from_consumer(py, &e))?;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(errors::unknown_topics(py, missing))
        }
    }
}

#[pymethods]
impl Consumer {
    /// Connects to ZooKeeper. `config` holds Java consumer keys (values `str`, `int` or
    /// `bool`); `config_file` a Java `.properties` file read first. The positional arguments
    /// set `zookeeper.connect` and `group.id` and override both.
    #[new]
    #[pyo3(signature = (zookeeper_connect=None, group_id=None, *, config=None, config_file=None))]
    fn new(
        py: Python<'_>,
        zookeeper_connect: Option<String>,
        group_id: Option<String>,
        config: Option<Bound<'_, PyDict>>,
        config_file: Option<PathBuf>,
    ) -> PyResult<Self> {
        let mut builder = builder(
            py,
            zookeeper_connect,
            group_id,
            config.as_ref(),
            config_file,
        )?;
        crate::config_warnings::warn_unknown_keys(py, &mut builder)?;
        crate::logs::refresh(py);
        let config = builder.build().map_err(|e| errors::from_config(py, &e))?;
        let inner = runtime::run(py, zkconsumer::Consumer::connect(config))?
            .map_err(|e| errors::from_consumer(py, &e))?;
        Ok(Consumer {
            inner: Arc::new(inner),
            slots: Mutex::new(Vec::new()),
            birth: Birth::now(),
        })
    }

    /// Subscribes to topics with a number of streams each (Java's `createMessageStreams`);
    /// returns `{topic: [Stream, ...]}`. Raises `UnknownTopicError` for a topic that does not
    /// exist unless `wait_for_topics=True` (then the member waits for it, as Java does).
    #[pyo3(signature = (topic_counts, *, wait_for_topics=false))]
    fn streams(
        &self,
        py: Python<'_>,
        topic_counts: BTreeMap<String, u32>,
        wait_for_topics: bool,
    ) -> PyResult<BTreeMap<String, Vec<Stream>>> {
        self.check(py)?;
        self.fail_on_missing(py, topic_counts.keys().cloned().collect(), wait_for_topics)?;
        let inner = self.inner.clone();
        let streams = runtime::run(py, async move {
            inner.create_message_streams(topic_counts).await
        })?
        .map_err(|e| errors::from_consumer(py, &e))?;
        streams
            .into_iter()
            .map(|(topic, streams)| Ok((topic, self.wrap(py, streams)?)))
            .collect()
    }

    /// Subscribes to every topic matching `whitelist` (or not matching `blacklist`), Java
    /// regex syntax with `,` for `|`, shared by `count` streams; returns the streams.
    #[pyo3(signature = (*, whitelist=None, blacklist=None, count=1))]
    fn streams_by_filter(
        &self,
        py: Python<'_>,
        whitelist: Option<String>,
        blacklist: Option<String>,
        count: u32,
    ) -> PyResult<Vec<Stream>> {
        self.check(py)?;
        let filter =
            match (whitelist, blacklist) {
                (Some(w), None) => TopicFilter::whitelist(&w)
                    .map_err(|e| errors::from_filter(py, &e, "whitelist"))?,
                (None, Some(b)) => TopicFilter::blacklist(&b)
                    .map_err(|e| errors::from_filter(py, &e, "blacklist"))?,
                _ => {
                    return Err(errors::config_error(
                        py,
                        "give exactly one of whitelist= or blacklist=".into(),
                        None,
                        None,
                    ))
                }
            };
        let inner = self.inner.clone();
        let streams = runtime::run(py, async move {
            inner.create_message_streams_by_filter(filter, count).await
        })?
        .map_err(|e| errors::from_consumer(py, &e))?;
        self.wrap(py, streams)
    }

    /// Commits the processed offset of every owned partition now. Inside a `before_release`
    /// callback it also commits the partitions being released (with
    /// `auto.commit.enable=false`, the place to commit before a rebalance moves them).
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.check(py)?;
        let result = if runtime::in_listener() {
            // A listener callback runs on the runtime's blocking pool: commit right there.
            let committer = self.inner.committer();
            py.detach(|| committer.commit_blocking())
        } else {
            let inner = self.inner.clone();
            runtime::run(py, async move { inner.commit_offsets().await })?
        };
        result.map_err(|e| errors::from_consumer(py, &e))
    }

    /// Ends every stream, commits what was processed (with `auto.commit.enable`), and deletes
    /// this member's owner and registration nodes. Idempotent; callable from any thread.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.check(py)?;
        self.end_streams_held_by_current_thread();
        let inner = self.inner.clone();
        let result = runtime::run(py, async move { inner.shutdown().await })?;
        // The listener's callables may refer to this object (a cycle through Rust that
        // Python's collector cannot see): a closed consumer calls them no more.
        self.inner.set_rebalance_listener(Arc::new(PyListener {
            before_release: None,
            after_assign: None,
        }));
        result.map_err(|e| errors::from_consumer(py, &e))
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __aenter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, PyAny>> {
        let future = aio::running_loop(slf.py())?.call_method0("create_future")?;
        future.call_method1("set_result", (&slf,))?;
        Ok(future)
    }

    /// Leaving `async with`: `close()` runs in the event loop's default executor (it blocks),
    /// so the loop goes on meanwhile. Messages taken in the loop's thread and not finished stay
    /// unprocessed (delivered again later), as when a `with` block is left.
    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        slf: Bound<'py, Self>,
        _exc: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        slf.get().check(py)?;
        let event_loop = aio::running_loop(py)?;
        slf.get().end_streams_held_by_current_thread();
        event_loop.call_method1("run_in_executor", (py.None(), slf.getattr("close")?))
    }

    /// Calls `before_release(partitions)` before ownership of partitions that move away is
    /// released (partitions: `{topic: {partition, ...}}`; partitions this member keeps through a
    /// rebalance are not released) and `after_assign(consumer_id, assignment)` after a new
    /// assignment was claimed (`{topic: {partition: thread_id}}` for the whole group).
    #[pyo3(signature = (before_release=None, after_assign=None))]
    fn set_rebalance_listener(
        &self,
        py: Python<'_>,
        before_release: Option<Py<PyAny>>,
        after_assign: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        self.check(py)?;
        self.inner.set_rebalance_listener(Arc::new(PyListener {
            before_release,
            after_assign,
        }));
        Ok(())
    }

    /// `{(topic, partition): processed_offset}` of the partitions owned now (-1: none yet).
    fn owned_partitions(&self) -> BTreeMap<(String, i32), i64> {
        self.inner
            .owned_partitions()
            .into_iter()
            .map(|(tp, offset)| ((tp.topic, tp.partition), offset))
            .collect()
    }

    /// `[{"topic", "partition", "lag"}]` for the owned partitions (`lag` None until fetched).
    fn lags<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .lags()
            .into_iter()
            .map(|lag| {
                let d = PyDict::new(py);
                d.set_item("topic", lag.topic)?;
                d.set_item("partition", lag.partition)?;
                d.set_item("lag", lag.lag)?;
                Ok(d)
            })
            .collect()
    }

    /// This consumer's metrics as Prometheus text.
    fn metrics_text(&self) -> String {
        self.inner.render_metrics()
    }

    /// This member's consumer id.
    #[getter]
    fn consumer_id(&self) -> &str {
        self.inner.consumer_id()
    }

    /// The group.
    #[getter]
    fn group_id(&self) -> &str {
        &self.inner.config().group_id
    }

    fn __repr__(&self) -> String {
        format!("<zkconsumer.Consumer {}>", self.inner.consumer_id())
    }
}
