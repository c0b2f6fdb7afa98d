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
        cluster.produce(topic, p, [f"m-{p}-{i}" for i in range(100)])
    config = [f"--config={k}={v}" for k, v in cluster.config().items()]
    proc = processes([sys.executable, str(EXAMPLES / "graceful.py"), cluster.zk_connect, group,
                      topic, "--consumers", "3", "--streams", "2", *config])

    wait_until("all 600 messages", lambda: sum(
        1 for l in proc.output() if l.startswith("consumer ")) >= 600, 60)
    assert len(cluster.members(group)) == 3
    proc.signal(signal.SIGTERM)
    assert proc.wait(20) == 0, proc.stderr()

    out = proc.output()
    ended = [l for l in out if l.startswith("ended ")]
    assert len(ended) == 6, out[-10:]
    assert sum(1 for l in out if l.startswith("consumer ")) == 600
    assert "closed 3 consumers" in out
    # Every processed message committed (the final next() that ended each stream counts).
    assert cluster.offsets(group, topic) == {p: 100 for p in range(6)}
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
