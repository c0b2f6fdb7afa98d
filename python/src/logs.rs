//! The library's `tracing` events as Python `logging` records.
//!
//! Each event of the `zkconsumer` crate becomes a record of the logger named after its module
//! (`zkconsumer::group::rebalance` -> `zkconsumer.group.rebalance`), with its level mapped
//! (TRACE -> 5, named "TRACE"; DEBUG, INFO, WARN -> WARNING, ERROR), its fields written into the
//! message as ` key=value` (no colours), its source file and line as the record's `pathname` and
//! `lineno`, and the time and thread name of the event itself.
//!
//! Cost where it matters: the events happen on the runtime's threads, which must never wait for
//! the GIL. So an event is formatted and put on a bounded queue (dropped, and counted, if the queue
//! is full), and one thread of this module ([`emitter`]) takes the GIL to hand the queued records
//! to `logging`. Which levels are worth queueing is decided on the Rust side, from the most
//! verbose effective level among the `zkconsumer` loggers: it is kept in an atomic and the
//! callsites' interest is rebuilt when it changes, so a disabled `debug!` costs what it costs
//! without any subscriber (no GIL, no lock). That level is re-read from Python at import, when a
//! `Consumer` is made, and every [`REFRESH`] by the emitter thread (`setLevel` after import takes
//! effect within that time); `logging`'s own filtering still decides each record.
//!
//! `RUST_LOG`, when set at import, keeps its old meaning as well: the events it selects (of any
//! crate, e.g. `RUST_LOG=kafka=debug`) are also written to stderr, as a Rust program would.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tracing::field::{Field, Visit};
use tracing::metadata::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::runtime;

/// How often the emitter thread re-reads the loggers' levels when nothing else makes it.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Records waiting for the GIL; beyond this, events are dropped and counted.
const QUEUE: usize = 10_000;

/// The root logger of the package; every record goes to it or one of its children.
const ROOT: &str = "zkconsumer";

/// Python's level for TRACE (below DEBUG's 10).
const TRACE_LEVEL: u8 = 5;

/// The most verbose level any `zkconsumer` logger lets through, as a Python level number
/// (5, 10, 20, 30, 40; 255 for none). Starts at WARNING, `logging`'s default.
static PY_LEVEL: AtomicU8 = AtomicU8::new(30);

/// Events dropped because the queue was full since the last report.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The queue to the emitter thread of process `.0` (a fork child starts its own).
type QueueSlot = Option<(u32, SyncSender<Record>)>;

static QUEUE_TX: Mutex<QueueSlot> = Mutex::new(None);

fn py_level(level: &Level) -> u8 {
    match *level {
        Level::TRACE => TRACE_LEVEL,
        Level::DEBUG => 10,
        Level::INFO => 20,
        Level::WARN => 30,
        Level::ERROR => 40,
    }
}

fn ours(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    target == ROOT || target.starts_with("zkconsumer::")
}

/// Whether `meta` is of our crate at a level some `zkconsumer` logger wants.
fn wanted(meta: &Metadata<'_>) -> bool {
    ours(meta) && py_level(meta.level()) >= PY_LEVEL.load(Ordering::Relaxed)
}

/// The per-layer filter of the Python layer: the cached level, per callsite.
struct PythonLevel;

impl<S> Filter<S> for PythonLevel {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        wanted(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        // Cached per callsite; rebuilt by `set_level` whenever the level changes.
        if wanted(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match PY_LEVEL.load(Ordering::Relaxed) {
            0..=5 => LevelFilter::TRACE,
            6..=10 => LevelFilter::DEBUG,
            11..=20 => LevelFilter::INFO,
            21..=30 => LevelFilter::WARN,
            31..=40 => LevelFilter::ERROR,
            _ => LevelFilter::OFF,
        })
    }
}

/// One event, formatted, waiting for the GIL.
struct Record {
    logger: String,
    level: u8,
    message: String,
    file: Option<&'static str>,
    line: Option<u32>,
    created: f64,
    thread: Option<String>,
}

/// The message of an event: its `message` field, then ` key=value` for the others.
#[derive(Default)]
struct Message {
    message: String,
    fields: String,
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// The layer that queues events for Python.
struct PythonLogs;

impl<S: Subscriber> Layer<S> for PythonLogs {
    fn on_event(&self, event: &Event<'_>, _cx: Context<'_, S>) {
        let meta = event.metadata();
        let mut message = Message::default();
        event.record(&mut message);
        message.message.push_str(&message.fields);
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        enqueue(Record {
            logger: meta.target().replace("::", "."),
            level: py_level(meta.level()),
            message: message.message,
            file: meta.file(),
            line: meta.line(),
            created,
            thread: std::thread::current().name().map(str::to_string),
        });
    }
}

/// The queue's slot. Another thread holds it only for a `try_send`, so this spins (then yields)
/// a little instead of blocking: a fork child whose parent forked in the middle of a send would
/// wait forever; there it gives up (`None`) and the record is dropped.
fn lock_queue() -> Option<MutexGuard<'static, QueueSlot>> {
    for attempt in 0..200 {
        match QUEUE_TX.try_lock() {
            Ok(slot) => return Some(slot),
            Err(TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) if attempt < 100 => std::hint::spin_loop(),
            Err(TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    }
    None
}

/// Puts a record on this process's queue without ever waiting for Python: a full queue drops
/// it and counts it.
fn enqueue(record: Record) {
    let Some(mut slot) = lock_queue() else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    match start_emitter(&mut slot).try_send(record) {
        Ok(()) => {}
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The queue of this process's emitter thread, started if this process has none yet (at
/// import, or in a fork child, where the parent's thread does not exist).
fn start_emitter(slot: &mut QueueSlot) -> &SyncSender<Record> {
    let pid = runtime::current_pid();
    if slot.as_ref().is_some_and(|(owner, _)| *owner != pid) {
        *slot = None;
    }
    let (_, tx) = slot.get_or_insert_with(|| {
        let (tx, rx) = sync_channel(QUEUE);
        // Without the thread (the system refused one) records wait in the queue, then are
        // dropped and counted.
        let _ = std::thread::Builder::new()
            .name("zkconsumer-logs".into())
            .spawn(move || emitter(rx));
        (pid, tx)
    });
    tx
}

/// Re-reads the levels now (a `Consumer` is being made) and makes sure this process has its
/// emitter thread, which re-reads them from then on.
pub fn refresh(py: Python<'_>) {
    refresh_level(py);
    if let Some(mut slot) = lock_queue() {
        start_emitter(&mut slot);
    }
}

/// The thread that hands queued records to `logging` with the GIL, a batch at a time, and
/// re-reads the loggers' levels every [`REFRESH`]. Stops when the interpreter exits.
fn emitter(rx: Receiver<Record>) {
    let mut loggers: HashMap<String, Py<PyAny>> = HashMap::new();
    loop {
        let first = match rx.recv_timeout(REFRESH) {
            Ok(record) => Some(record),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if runtime::finalizing() {
            return;
        }
        let batch: Vec<Record> = first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()).take(QUEUE))
            .collect();
        Python::attach(|py| {
            for record in batch {
                if let Err(e) = emit(py, &mut loggers, record) {
                    e.write_unraisable(py, None);
                }
            }
            let dropped = DROPPED.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                let record = Record {
                    logger: ROOT.to_string(),
                    level: 30,
                    message: format!(
                        "{dropped} log records dropped: more than {QUEUE} were waiting for the GIL"
                    ),
                    file: None,
                    line: None,
                    created: 0.0,
                    thread: None,
                };
                let _ = emit(py, &mut loggers, record);
            }
            refresh_level(py);
        });
    }
}

/// Hands one record to its logger (made once per name), if the logger is enabled for it.
fn emit(py: Python<'_>, loggers: &mut HashMap<String, Py<PyAny>>, record: Record) -> PyResult<()> {
    let logger = match loggers.get(&record.logger) {
        Some(logger) => logger.bind(py).clone(),
        None => {
            let logger = py
                .import("logging")?
                .call_method1("getLogger", (record.logger.as_str(),))?;
            loggers.insert(record.logger.clone(), logger.clone().unbind());
            logger
        }
    };
    if !logger
        .call_method1("isEnabledFor", (record.level,))?
        .is_truthy()?
    {
        return Ok(());
    }
    let made = logger.call_method1(
        "makeRecord",
        (
            record.logger.as_str(),
            record.level,
            record.file.unwrap_or("(unknown file)"),
            record.line.unwrap_or(0),
            record.message.as_str(),
            PyTuple::empty(py),
            py.None(),
        ),
    )?;
    if record.created > 0.0 {
        made.setattr("created", record.created)?;
        made.setattr("msecs", (record.created.fract() * 1000.0).floor())?;
    }
    if let Some(thread) = record.thread {
        made.setattr("threadName", thread)?;
    }
    logger.call_method1("handle", (made,))?;
    Ok(())
}

/// Re-reads the most verbose effective level of `zkconsumer` and its child loggers and, when
/// it changed, rebuilds the callsites' interest so that the new level takes effect everywhere.
pub fn refresh_level(py: Python<'_>) {
    match most_verbose_level(py) {
        Ok(level) => set_level(level),
        Err(e) => e.write_unraisable(py, None),
    }
}

fn most_verbose_level(py: Python<'_>) -> PyResult<u8> {
    let logging = py.import("logging")?;
    let root = logging.call_method1("getLogger", (ROOT,))?;
    let mut level: i64 = root.call_method0("getEffectiveLevel")?.extract()?;
    let logger_class = logging.getattr("Logger")?;
    let existing = logging
        .getattr("root")?
        .getattr("manager")?
        .getattr("loggerDict")?
        .cast_into::<PyDict>()?
        .copy()?;
    for (name, logger) in existing.iter() {
        let name: String = name.extract()?;
        if name.starts_with("zkconsumer.") && logger.is_instance(&logger_class)? {
            level = level.min(logger.call_method0("getEffectiveLevel")?.extract()?);
        }
    }
    Ok(u8::try_from(level.max(0)).unwrap_or(u8::MAX))
}

fn set_level(level: u8) {
    if PY_LEVEL.swap(level, Ordering::Relaxed) != level {
        tracing::callsite::rebuild_interest_cache();
    }
}

/// Installs the process's subscriber at import: the Python layer, plus stderr output when
/// `RUST_LOG` is set. An application that set up its own `tracing` subscriber (a Rust program
/// embedding Python) keeps it. Names level 5 "TRACE" in `logging` unless it has a name.
pub fn init(py: Python<'_>) -> PyResult<()> {
    let logging = py.import("logging")?;
    let name: String = logging
        .call_method1("getLevelName", (TRACE_LEVEL,))?
        .extract()?;
    if name == format!("Level {TRACE_LEVEL}") {
        logging.call_method1("addLevelName", (TRACE_LEVEL, "TRACE"))?;
    }
    let stderr = tracing_subscriber::EnvFilter::try_from_default_env()
        .ok()
        .map(|filter| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(filter)
        });
    let _ = tracing_subscriber::registry()
        .with(PythonLogs.with_filter(PythonLevel))
        .with(stderr)
        .try_init();
    refresh(py);
    Ok(())
}
