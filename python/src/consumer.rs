//! `Consumer`: the library's [`zkconsumer::Consumer`] for Python. Builds the configuration
//! from keyword values and/or a `.properties` file, and forwards every call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyString};

use zkconsumer::admin::ResetTo;
use zkconsumer::config::{parse_properties, read_properties_file, ConsumerConfigBuilder};
use zkconsumer::partition::TopicPartition;
use zkconsumer::{MessageStream, SeekTo, TopicFilter};

use crate::aio;
use crate::errors;
use crate::listener::PyListener;
use crate::runtime::{self, Birth};
use crate::stream::{Message, Slot, Stream};

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

/// `"earliest"`, `"latest"` or an offset.
fn seek_to(value: &Bound<'_, PyAny>) -> PyResult<SeekTo> {
    if let Ok(text) = value.extract::<String>() {
        return match text.as_str() {
            "earliest" => Ok(SeekTo::Earliest),
            "latest" => Ok(SeekTo::Latest),
            _ => Err(errors::config_error(
                value.py(),
                format!("invalid offset {text:?}: expected an int, \"earliest\" or \"latest\""),
                Some("offset"),
                Some(&text),
            )),
        };
    }
    if !value.is_instance_of::<PyBool>() {
        if let Ok(offset) = value.extract::<i64>() {
            return Ok(SeekTo::Offset(offset));
        }
    }
    Err(errors::config_error(
        value.py(),
        format!(
            "invalid offset {}: expected an int, \"earliest\" or \"latest\"",
            value.repr()?
        ),
        Some("offset"),
        Some(&value.str()?.to_string()),
    ))
}

fn topic_partitions(pairs: Vec<(String, i32)>) -> Vec<TopicPartition> {
    pairs
        .into_iter()
        .map(|(topic, partition)| TopicPartition::new(topic, partition))
        .collect()
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

    /// Commits now. Kafka's rule: the offset committed for a partition is the offset of the
    /// *next* message to read.
    ///
    /// - `commit()`: the processed offset of every owned partition (a message counts as
    ///   processed once its stream handed out the next one, or it was acknowledged).
    /// - `commit(message)`: `message` and everything before it in its partition count as
    ///   processed, and `message.offset + 1` is committed (with the other owned partitions).
    /// - `commit(offsets={(topic, partition): offset})`: each partition counts as processed
    ///   up to `offset` (the next offset to read) and is committed.
    ///
    /// A partition committed this way never goes below that offset in later commits (an
    /// offset below what was already processed leaves it: `seek()` goes back).
    /// `UsageError` for a partition this member does not own now, or after `close()`.
    ///
    /// Inside a `before_release` callback, `commit()` also commits the partitions being
    /// released (with `auto.commit.enable=false`, the place to commit before a rebalance
    /// moves them); `commit(message)` / `commit(offsets=)` are refused there (`UsageError`:
    /// `ack()` the messages, then `commit()`).
    #[pyo3(signature = (message=None, *, offsets=None))]
    fn commit(
        &self,
        py: Python<'_>,
        message: Option<PyRef<'_, Message>>,
        offsets: Option<BTreeMap<(String, i32), i64>>,
    ) -> PyResult<()> {
        self.check(py)?;
        let offsets: BTreeMap<TopicPartition, i64> = match (message, offsets) {
            (Some(_), Some(_)) => {
                return Err(PyTypeError::new_err(
                    "commit() takes a message or offsets=, not both",
                ))
            }
            (Some(m), None) => BTreeMap::from([(
                TopicPartition::new(&*m.inner.topic, m.inner.partition),
                m.inner.offset + 1,
            )]),
            (None, Some(offsets)) => offsets
                .into_iter()
                .map(|((topic, partition), offset)| (TopicPartition::new(topic, partition), offset))
                .collect(),
            (None, None) => BTreeMap::new(),
        };
        if runtime::in_listener() {
            if !offsets.is_empty() {
                return Err(errors::usage(
                    py,
                    "commit(message) and commit(offsets=) cannot be made inside a rebalance \
                     listener callback: ack() the messages, then commit()",
                ));
            }
            // A listener callback runs on the runtime's blocking pool: commit right there.
            let committer = self.inner.committer();
            return py
                .detach(|| committer.commit_blocking())
                .map_err(|e| errors::from_consumer(py, &e));
        }
        let inner = self.inner.clone();
        runtime::run(py, async move {
            if offsets.is_empty() {
                inner.commit_offsets().await
            } else {
                inner.commit_offsets_at(&offsets).await
            }
        })?
        .map_err(|e| errors::from_consumer(py, &e))
    }

    /// The offset committed for a partition of the group (the next offset to read), read from
    /// the offset store now; `None` when none was committed. Any partition, owned or not.
    fn committed(&self, py: Python<'_>, topic: String, partition: i32) -> PyResult<Option<i64>> {
        self.check(py)?;
        let inner = self.inner.clone();
        let tp = TopicPartition::new(topic, partition);
        runtime::run(py, async move { inner.committed(&tp).await })?
            .map_err(|e| errors::from_consumer(py, &e))
    }

    /// The offset of the next message this member hands out for an owned partition (`None`
    /// while a partition without a committed offset waits for its `auto.offset.reset`).
    /// `UsageError` for a partition not owned now.
    fn position(&self, py: Python<'_>, topic: String, partition: i32) -> PyResult<Option<i64>> {
        self.check(py)?;
        self.inner
            .position(&TopicPartition::new(topic, partition))
            .map_err(|e| errors::from_consumer(py, &e))
    }

    /// Moves an owned partition to `offset` (an int, or `"earliest"` / `"latest"` of the log);
    /// returns the offset it moved to. The next message of that partition is the one at that
    /// offset: messages of it already fetched or in hand are dropped (acknowledging them does
    /// nothing), and the processed position moves there (the next commit writes it).
    /// `UsageError` for a partition this member does not own now.
    fn seek(
        &self,
        py: Python<'_>,
        topic: String,
        partition: i32,
        offset: &Bound<'_, PyAny>,
    ) -> PyResult<i64> {
        self.check(py)?;
        let to = seek_to(offset)?;
        let inner = self.inner.clone();
        let tp = TopicPartition::new(topic, partition);
        runtime::run(py, async move { inner.seek(&tp, to).await })?
            .map_err(|e| errors::from_consumer(py, &e))
    }

    /// Sets the group's committed offsets of `topic` (a name or a list of names) before this
    /// member's streams are created: `to` is `"earliest"` (replay the group from the start),
    /// `"latest"`, or an offset (clamped into each partition's log). The CLI's
    /// `offsets reset --execute`: `UsageError` after `streams()`, `zkconsumer.Error` while the
    /// group has live members. Returns `{(topic, partition): new_offset}`.
    #[pyo3(signature = (topic, *, to))]
    fn reset_offsets(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        to: &Bound<'_, PyAny>,
    ) -> PyResult<BTreeMap<(String, i32), i64>> {
        self.check(py)?;
        let topics: Vec<String> = match topic.extract::<String>() {
            Ok(one) => vec![one],
            Err(_) => topic.extract().map_err(|_| {
                PyTypeError::new_err("reset_offsets(topic): a topic name or a list of names")
            })?,
        };
        let to = match seek_to(to)? {
            SeekTo::Earliest => ResetTo::Earliest,
            SeekTo::Latest => ResetTo::Latest,
            SeekTo::Offset(n) => ResetTo::Offset(n),
        };
        let inner = self.inner.clone();
        let plan = runtime::run(py, async move { inner.reset_offsets(&topics, to).await })?
            .map_err(|e| errors::from_consumer(py, &e))?;
        Ok(plan
            .into_iter()
            .map(|line| ((line.topic, line.partition), line.to))
            .collect())
    }

    /// Pauses owned partitions, given as `(topic, partition)` pairs: they are not fetched and
    /// their messages are held back (in order) until `resume()`. Positions and commits do not
    /// change. `UsageError` (pausing none) when one is not owned now.
    #[pyo3(signature = (*partitions))]
    fn pause(&self, py: Python<'_>, partitions: Vec<(String, i32)>) -> PyResult<()> {
        self.check(py)?;
        self.inner
            .pause(&topic_partitions(partitions))
            .map_err(|e| errors::from_consumer(py, &e))
    }

    /// Resumes paused partitions (`(topic, partition)` pairs); a stream waiting for data
    /// delivers their held-back messages at once.
    #[pyo3(signature = (*partitions))]
    fn resume(&self, py: Python<'_>, partitions: Vec<(String, i32)>) -> PyResult<()> {
        self.check(py)?;
        self.inner
            .resume(&topic_partitions(partitions))
            .map_err(|e| errors::from_consumer(py, &e))
    }

    /// The owned partitions paused now, as `{(topic, partition), ...}`.
    fn paused(&self) -> std::collections::BTreeSet<(String, i32)> {
        self.inner
            .paused()
            .into_iter()
            .map(|tp| (tp.topic, tp.partition))
            .collect()
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
