"""One SIGTERM stops a Python process with several consumers and streams, committing what was
processed and leaving no registration or owner node behind."""

import signal
import sys
import time
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


INTERRUPTED_NEXT_GOES_ON = r"""
import sys, zkconsumer
zk, group, topic, version = sys.argv[1:5]
consumer = zkconsumer.Consumer(zk, group, config={"zookeeper.server.version": version,
                                                  "auto.offset.reset": "smallest"})
stream = consumer.streams({topic: 1})[topic][0]
print("ready", flush=True)
try:
    next(stream)
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
print("got", next(stream).value.decode(), flush=True)
consumer.close()
print("closed", flush=True)
"""


def test_without_our_handlers_ctrl_c_interrupts_a_blocked_next_and_the_next_call_goes_on(
        cluster, group, processes):
    topic = cluster.create_topic(1)
    proc = processes([sys.executable, "-c", INTERRUPTED_NEXT_GOES_ON, cluster.zk_connect, group,
                      topic, cluster.zk_version])
    wait_until("the member to block in next()", lambda: "ready" in proc.output(), 30)
    wait_until("its registration", lambda: cluster.members(group), 30)
    proc.signal(signal.SIGINT)
    wait_until("the KeyboardInterrupt", lambda: "interrupted" in proc.output(), 10)
    cluster.produce(topic, 0, ["after"])
    assert proc.wait(30) == 0, proc.stderr()
    assert proc.output()[-3:] == ["interrupted", "got after", "closed"]
    assert cluster.offsets(group, topic) == {0: 0}, "'after' was in hand at close: unprocessed"
    assert cluster.members(group) == []


HANDLERS = r"""
import signal, sys, time, zkconsumer
mode, grace = sys.argv[1], float(sys.argv[2])
def app_handler(signum, frame):
    print("app handler", signum, flush=True)
signal.signal(signal.SIGTERM, app_handler)
previous = zkconsumer.install_signal_handlers(grace=grace)
print("previous", previous[signal.SIGINT] is signal.default_int_handler,
      previous[signal.SIGTERM] is app_handler, flush=True)
again = zkconsumer.install_signal_handlers(grace=grace)
print("again", again[signal.SIGTERM] is not app_handler, flush=True)
print("before", zkconsumer.wait_for_shutdown(timeout=0.1), flush=True)
print("ready", flush=True)
print("waited", zkconsumer.wait_for_shutdown(), zkconsumer.shutdown_requested(), flush=True)
try:
    print("working", flush=True)
    while True:
        time.sleep(0.05)
finally:
    print("finally", flush=True)
    if mode == "stuck":
        time.sleep(60)
    print("finally done", flush=True)
"""


def test_handlers_chain_wait_for_shutdown_and_a_second_signal_raises_system_exit(processes):
    proc = processes([sys.executable, "-c", HANDLERS, "clean", "10"])
    wait_until("the handlers", lambda: "ready" in proc.output(), 30)
    assert proc.output()[:3] == ["previous True True", "again True", "before False"]
    proc.signal(signal.SIGTERM)
    wait_until("the shutdown request", lambda: "working" in proc.output(), 10)
    assert proc.output()[-3:-1] == ["app handler 15", "waited True True"], "chained, then woke"
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 130, proc.stderr()
    assert proc.output()[-2:] == ["finally", "finally done"], "SystemExit unwound the main thread"
    assert proc.output().count("app handler 15") == 1, "the second signal is ours alone"


def test_a_process_stuck_after_the_second_signal_exits_after_the_grace_period(processes):
    proc = processes([sys.executable, "-c", HANDLERS, "stuck", "1"])
    wait_until("the handlers", lambda: "ready" in proc.output(), 30)
    proc.signal(signal.SIGINT)
    wait_until("the shutdown request", lambda: "working" in proc.output(), 10)
    start = time.monotonic()
    proc.signal(signal.SIGINT)
    assert proc.wait(20) == 130, proc.stderr()
    assert time.monotonic() - start < 15, "the grace period, not the 60 s finally block"
    assert proc.output()[-1] == "finally"
