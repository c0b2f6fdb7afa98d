"""Fixtures for the Python package's tests: the real test-bed cluster (ZooKeeper + Kafka brokers
started by scripts/testbed; scripts/test exports where), topics, producing with kcat, reading
ZooKeeper with kazoo, and running members as separate processes (Python, the zkconsumer CLI,
Kafka's own Java console consumer).

Run them through scripts/test, or by hand: scripts/testbed start; source .testbed/env; then
pytest python/tests with a Python that has zkconsumer, pytest, pytest-timeout and kazoo
installed (`pip install ./python[test]`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KCAT = ["kcat", "-X", "broker.version.fallback=0.8.2.2", "-X", "api.version.request=false"]
SESSION_MS = 4000


def pytest_configure(config) -> None:
    """Every test has a time limit (pyproject's `timeout`, pytest-timeout): without the plugin
    a hanging test would hang the whole run, so the suite refuses to start."""
    if not config.pluginmanager.hasplugin("timeout"):
        raise pytest.UsageError(
            "pytest-timeout is not installed: pip install pytest-timeout (every zkconsumer "
            "test runs with a time limit, see python/pyproject.toml)")


def wait_until(what: str, check: Callable[[], object], timeout: float = 30.0, every: float = 0.1):
    """Polls `check` until it returns something truthy; fails the test naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class Cluster:
    """The running test-bed cluster."""

    def __init__(self) -> None:
        missing = [k for k in ("ZKC_TEST_ZK", "ZKC_TEST_BROKERS") if not os.environ.get(k)]
        if missing:
            pytest.fail(
                f"{', '.join(missing)} not set: run these tests through scripts/test, or "
                "`scripts/testbed start && source .testbed/env` first"
            )
        self.zk_connect = os.environ["ZKC_TEST_ZK"]
        self.brokers = os.environ["ZKC_TEST_BROKERS"]
        self.zk_version = os.environ.get("ZKC_TEST_ZK_VERSION", "3.4.6")
        # The test bed's Kafka (.testbed/env sets both); 0.8.2.2 unless ZKC_TEST_KAFKA says 0.9.
        self.kafka_version = os.environ.get("ZKC_TEST_KAFKA", "0.8.2.2")
        shared = "kafka-0.9" if self.kafka_version.startswith("0.9") else "kafka-0.8.2"
        kafka_home = os.environ.get("KAFKA_HOME") or str(ROOT.parent / "shared" / shared)
        runner = Path(kafka_home) / "kafka-run-class"
        if not runner.exists():
            runner = Path(kafka_home) / "bin" / "kafka-run-class.sh"
        if not runner.exists():
            pytest.fail(f"no Kafka at {kafka_home} (set KAFKA_HOME)")
        self.kafka_run_class = str(runner)
        hosts, _, chroot = self.zk_connect.partition("/")
        self.zk_hosts = hosts
        self.chroot = "/" + chroot if chroot else ""
        self.zk = KazooClient(hosts=hosts)
        self.zk.start(timeout=15)

    def config(self, **extra) -> Dict[str, object]:
        """A consumer config that rebalances and commits quickly on the test bed."""
        base: Dict[str, object] = {
            "zookeeper.server.version": self.zk_version,
            "zookeeper.session.timeout.ms": SESSION_MS,
            "rebalance.backoff.ms": 300,
            "rebalance.max.retries": 10,
            "auto.commit.interval.ms": 200,
            "auto.offset.reset": "smallest",
            "refresh.leader.backoff.ms": 100,
        }
        base.update({k.replace("_", "."): v for k, v in extra.items()})
        return base

    def properties(self, group: str, **extra) -> str:
        """The same config as Java .properties text (for the CLI and the Java consumer)."""
        props = {"zookeeper.connect": self.zk_connect, "group.id": group, **self.config(**extra)}
        return "".join(f"{k}={v}\n" for k, v in props.items())

    # ZooKeeper reads (paths relative to the chroot). Nodes come and go during a rebalance:
    # one that vanishes between listing and reading counts as absent.
    def children(self, path: str) -> List[str]:
        try:
            return sorted(self.zk.get_children(self.chroot + path))
        except NoNodeError:
            return []

    def data(self, path: str) -> Optional[str]:
        try:
            return self.zk.get(self.chroot + path)[0].decode()
        except NoNodeError:
            return None

    def _values(self, base: str) -> Dict[int, str]:
        values = {int(p): self.data(f"{base}/{p}") for p in self.children(base)}
        return {p: v for p, v in values.items() if v is not None}

    def owners(self, group: str, topic: str) -> Dict[int, str]:
        return self._values(f"/consumers/{group}/owners/{topic}")

    def offsets(self, group: str, topic: str) -> Dict[int, int]:
        return {p: int(v) for p, v in self._values(f"/consumers/{group}/offsets/{topic}").items()}

    def commit(self, group: str, topic: str, offsets: Dict[int, int]) -> None:
        """Writes committed offsets as a consumer of the group would (before any member runs)."""
        for partition, offset in offsets.items():
            path = f"{self.chroot}/consumers/{group}/offsets/{topic}/{partition}"
            self.zk.ensure_path(path)
            self.zk.set(path, str(offset).encode())

    def members(self, group: str) -> List[str]:
        return self.children(f"/consumers/{group}/ids")

    # Kafka
    def create_topic(self, partitions: int) -> str:
        topic = f"py-{uuid.uuid4().hex[:10]}"
        subprocess.run(
            [self.kafka_run_class, "kafka.admin.TopicCommand", "--zookeeper", self.zk_connect,
             "--create", "--topic", topic, "--partitions", str(partitions),
             "--replication-factor", "1"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        wait_until(f"leaders of {topic}", lambda: all(
            self.data(f"/brokers/topics/{topic}/partitions/{p}/state") for p in range(partitions)))
        return topic

    def produce(self, topic: str, partition: int, values: List[str], *extra: str) -> None:
        """Writes `values` (one message each) to one partition, acknowledged by all replicas."""
        subprocess.run(
            KCAT + ["-b", self.brokers, "-P", "-t", topic, "-p", str(partition),
                    "-X", "request.required.acks=-1", *extra],
            input="".join(v + "\n" for v in values).encode(), check=True,
        )

    def produce_numbered(self, topic: str, partitions: int, count: int, prefix: str) -> List[str]:
        """Writes `<prefix>-<partition>-<i>` for i < count to each partition; returns them all."""
        values: List[str] = []
        for p in range(partitions):
            batch = [f"{prefix}-{p}-{i}" for i in range(count)]
            self.produce(topic, p, batch)
            values += batch
        return values

    def log_end(self, topic: str, partition: int) -> int:
        out = subprocess.run(
            KCAT + ["-b", self.brokers, "-Q", "-t", f"{topic}:{partition}:-1"],
            check=True, capture_output=True, text=True,
        ).stdout.split()
        return int(out[-1])


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    c = Cluster()
    yield c
    c.zk.stop()


@pytest.fixture
def group() -> str:
    return f"pygroup-{uuid.uuid4().hex[:10]}"


def _default_sigint() -> None:
    """In a member process before it runs: SIGINT back to its default action."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Process:
    """A member running in a process of its own; its stdout lines are collected as they come."""

    def __init__(self, args: List[str], env: Optional[Dict[str, str]] = None) -> None:
        self.args = args
        self.lines: List[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})},
            # A runner started in the background (`cmd &` in a script) ignores SIGINT, and
            # children inherit that: Python then installs no KeyboardInterrupt handler and
            # the tests of Ctrl-C would test nothing. Members start as from a terminal.
            preexec_fn=_default_sigint,
        )
        self._err: List[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for r in self._readers:
            r.start()

    def _read(self, pipe, into: List[str]) -> None:
        for line in pipe:
            with self._lock:
                into.append(line.rstrip("\n"))

    def output(self) -> List[str]:
        with self._lock:
            return list(self.lines)

    def stderr(self) -> str:
        with self._lock:
            return "\n".join(self._err)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Waits for the exit and for every line it printed."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"{self.args[:3]} did not exit within {timeout} s; stderr:\n{self.stderr()}")
        for r in self._readers:
            r.join(timeout=10)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def processes():
    """Starts member processes; kills any still running at the end of the test."""
    started: List[Process] = []

    def start(args: List[str], env: Optional[Dict[str, str]] = None) -> Process:
        p = Process(args, env)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def printed_values(runs: List["Process"], label: str) -> List[str]:
    """The values an example printed as `<label> n: value` lines, over all its processes."""
    return [l.split(": ", 1)[1] for r in runs for l in r.output() if l.startswith(label + " ")]


def python_member(*args: str) -> List[str]:
    """Command line of the member script (tests/member.py) under this Python."""
    return [sys.executable, str(HERE / "member.py"), *args]


@pytest.fixture(scope="session")
def zkconsumer_cli() -> str:
    """The zkconsumer CLI binary ($ZKC_BIN, or the workspace's debug build, built if needed)."""
    path = os.environ.get("ZKC_BIN") or str(ROOT / "target" / "debug" / "zkconsumer")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--quiet", "--bin", "zkconsumer"], cwd=ROOT, check=True)
    return path


def java_console_consumer(cluster: Cluster, topic: str, properties_file: Path) -> List[str]:
    """Kafka's own old console consumer (ZookeeperConsumerConnector) in a group."""
    if shutil.which("java") is None:
        pytest.fail("Kafka's console consumer needs a Java runtime (apt-get install default-jre-headless)")
    return [cluster.kafka_run_class, "kafka.tools.ConsoleConsumer", "--zookeeper",
            cluster.zk_connect, "--topic", topic, "--consumer.config", str(properties_file)]


def range_assignment(thread_ids: List[str], partitions: int) -> Dict[int, str]:
    """Java's RangeAssignor for one topic (spec: sorted thread ids, contiguous ranges, the
    first `partitions % threads` threads get one extra)."""
    threads = sorted(thread_ids)
    per, extra = divmod(partitions, len(threads))
    owners: Dict[int, str] = {}
    for i, thread in enumerate(threads):
        start = per * i + min(i, extra)
        count = per + (1 if i < extra else 0)
        for p in range(start, start + count):
            owners[p] = thread
    return owners


def parse_json_lines(lines: List[str]) -> List[dict]:
    return [json.loads(l) for l in lines if l.startswith("{")]


def kill9(p: Process) -> None:
    p.proc.send_signal(signal.SIGKILL)
    p.proc.wait()
