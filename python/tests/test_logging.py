"""Where a Python program looks: the library's log events in `logging` (logger `zkconsumer` and
one child per Rust module), unknown config keys as `warnings`, and the package's metadata."""

import importlib.metadata
import json
import logging
import threading
import warnings

import pytest

import zkconsumer
from conftest import wait_until


class Records(logging.Handler):
    """Collects the records that reach the `zkconsumer` logger (thread-safe)."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self._records = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            self._records.append(record)

    def matching(self, logger: str, level: int, text: str = ""):
        with self._lock:
            return [r for r in self._records
                    if r.name == logger and r.levelno == level and text in r.getMessage()]

    def at_or_below(self, level: int):
        with self._lock:
            return [r for r in self._records if r.levelno <= level]


@pytest.fixture
def records():
    """A handler on `zkconsumer`; the logger's level is put back afterwards."""
    logger = logging.getLogger("zkconsumer")
    handler = Records()
    level = logger.level
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_library_warning_is_a_logging_record_of_the_module_logger(cluster, group, records):
    missing = f"py-missing-{group}"
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        consumer.streams({missing: 1}, wait_for_topics=True)
        found = wait_until(
            "the library's warning about the missing topic",
            lambda: records.matching("zkconsumer.group.rebalance", logging.WARNING,
                                     "subscribed topic does not exist"))
    record = found[0]
    # the event's fields are in the message, without terminal colours
    assert record.getMessage() == f"subscribed topic does not exist (yet) topic={missing}"
    assert "\x1b[" not in record.getMessage()
    assert record.levelname == "WARNING"
    # where the event was logged in the library, and on which thread
    assert record.pathname.endswith("rebalance.rs") and record.lineno > 0
    assert record.threadName.startswith("zkconsumer")
    # nothing below WARNING arrives at the default level
    assert records.at_or_below(logging.INFO) == []


def test_set_level_after_import_shows_the_debug_records_of_a_rebalance(cluster, group, records):
    topic = cluster.create_topic(2)
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        consumer.streams({topic: 1})
        wait_until("the member owns both partitions",
                   lambda: len(cluster.owners(group, topic)) == 2)
        assert records.at_or_below(logging.INFO) == [], "records below WARNING by default"

        # No consumer is made from here on: the library learns the new level on its own (within
        # a second). Another member registering and leaving (written with kazoo, as a Java
        # member would) makes this one rebalance, again and again until its debug record comes.
        logging.getLogger("zkconsumer").setLevel(logging.DEBUG)
        other = f"{cluster.chroot}/consumers/{group}/ids/{group}_other-1-0000"
        registration = json.dumps({"version": 1, "subscription": {topic: 1},
                                   "pattern": "static", "timestamp": "1"}).encode()

        def member_comes_or_goes():
            if cluster.zk.exists(other):
                cluster.zk.delete(other)
            else:
                cluster.zk.create(other, registration, ephemeral=True)
            return records.matching("zkconsumer.group.rebalance", logging.DEBUG,
                                    "rebalance triggered")

        try:
            found = wait_until("a debug record of a rebalance", member_comes_or_goes, every=0.5)
        finally:
            if cluster.zk.exists(other):
                cluster.zk.delete(other)
        assert found[0].getMessage().startswith("rebalance triggered reasons=[Changed(")


def test_unknown_config_keys_warn_with_the_java_key(cluster, group):
    config = cluster.config()
    config["enable.auto.commit"] = False  # kafka-python's name
    config["group_id"] = "ignored"  # the Python spelling of a Java key
    config["x.note"] = "nothing like any key"
    with pytest.warns(zkconsumer.ConfigWarning) as caught:
        zkconsumer.Consumer(cluster.zk_connect, group, config=config).close()
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        'unknown consumer configuration key "enable.auto.commit" ignored: it is kafka-python\'s '
        'and the new Java consumer\'s name, zkconsumer (like the old Java consumer) reads '
        '"auto.commit.enable"',
        'unknown consumer configuration key "group_id" ignored: did you mean "group.id"?',
        'unknown consumer configuration key "x.note" ignored',
    ]
    # attributed to the line that made the consumer, as Python's own warnings are
    assert {w.filename for w in caught} == {__file__}
    assert issubclass(zkconsumer.ConfigWarning, UserWarning)


def test_an_unknown_key_is_an_error_under_a_warnings_filter(cluster, group):
    config = {**cluster.config(), "enable.auto.commit": "false"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", zkconsumer.ConfigWarning)
        with pytest.raises(zkconsumer.ConfigWarning, match="auto.commit.enable"):
            zkconsumer.Consumer(cluster.zk_connect, group, config=config)
    assert cluster.members(group) == [], "no member registered after the refused config"


def test_version_and_metadata_of_the_installed_distribution():
    meta = importlib.metadata.metadata("zkconsumer")
    assert zkconsumer.__version__ == importlib.metadata.version("zkconsumer") == meta["Version"]
    assert meta["License-Expression"] == "MIT OR Apache-2.0"
    assert sorted(meta.get_all("License-File")) == ["LICENSE-APACHE", "LICENSE-MIT"]
    classifiers = meta.get_all("Classifier")
    assert "Operating System :: POSIX :: Linux" in classifiers
    assert {f"Programming Language :: Python :: 3.{v}" for v in range(9, 14)} <= set(classifiers)
    files = {str(f) for f in importlib.metadata.files("zkconsumer")}
    for name in ("LICENSE-MIT", "LICENSE-APACHE"):
        assert any(f.endswith(name) for f in files), f"{name} is not in the installed files"
