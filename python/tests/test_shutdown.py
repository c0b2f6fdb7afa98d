"""One SIGTERM stops a Python process with several consumers and streams, committing what was
processed and leaving no registration or owner node behind."""

import signal
import sys
from pathlib import Path

from conftest import wait_until

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_one_sigterm_stops_three_consumers_with_two_streams_each(cluster, group, processes):
    topic = cluster.create_topic(6)
    for p in range(6):
        cluster.produce(topic, p, [f"m-{p}-{i}" for i in range(1000)])
    config = [f"--config={k}={v}" for k, v in cluster.config().items()]
    proc = processes([sys.executable, str(EXAMPLES / "graceful.py"), cluster.zk_connect, group,
                      topic, "--consumers", "3", "--streams", "2", "--work-ms", "2", *config])

    def delivered():
        return [l for l in proc.output() if l.startswith("consumer ")]

    wait_until("three members", lambda: len(cluster.members(group)) == 3, 60)
    wait_until("some messages", lambda: len(delivered()) >= 300, 60)
    proc.signal(signal.SIGTERM)  # in the middle: 6 threads busy, most messages still to come
    assert proc.wait(20) == 0, proc.stderr()

    out = proc.output()
    lines = delivered()
    assert 300 <= len(lines) < 6000, "the signal stopped the streams in the middle"
    ended = [l for l in out if l.startswith("ended ")]
    assert len(ended) == 6, out[-10:]
    assert "closed 3 consumers" in out
    # What was processed is committed, nothing more: per partition, the offset after the
    # highest one printed (a message counts as processed once its thread took the next, and
    # the final next() that ended each stream counts).
    last = {}
    for line in lines:
        partition, offset = map(int, line.split(": ", 1)[1].split()[:2])
        last[partition] = max(last.get(partition, -1), offset)
    committed = cluster.offsets(group, topic)
    assert {p: committed.get(p, 0) for p in range(6)} == {p: last.get(p, -1) + 1 for p in range(6)}
    assert cluster.members(group) == []
    assert cluster.children(f"/consumers/{group}/owners/{topic}") == []


BLOCKED_WITHOUT_HANDLERS = r"""
import sys, zkconsumer
zk, group, topic, version = sys.argv[1:5]
consumer = zkconsumer.Consumer(zk, group, config={"zookeeper.server.version": version})
stream = consumer.streams({topic: 1})[topic][0]
print("ready", flush=True)
try:
    next(stream)
except KeyboardInterrupt:
    print("interrupted", flush=True)
consumer.close()
print("closed", flush=True)
"""


def test_without_our_handlers_ctrl_c_interrupts_a_blocked_next(cluster, group, processes):
    topic = cluster.create_topic(1)
    proc = processes([sys.executable, "-c", BLOCKED_WITHOUT_HANDLERS, cluster.zk_connect, group,
                      topic, cluster.zk_version])
    wait_until("the member to block in next()", lambda: "ready" in proc.output(), 30)
    wait_until("its registration", lambda: cluster.members(group), 30)
    proc.signal(signal.SIGINT)
    assert proc.wait(10) == 0, proc.stderr()
    assert proc.output()[-2:] == ["interrupted", "closed"]
    assert cluster.members(group) == []
