"""The rest of the Python surface: listener, introspection, ack, poll, close, fork, packaging."""

import os
import threading
import time
from pathlib import Path

import pytest

import zkconsumer
from conftest import printed_values, wait_until


def test_listener_introspection_ack_and_poll(cluster, group):
    topic = cluster.create_topic(3)
    for p in range(3):
        cluster.produce(topic, p, [f"{p}-{i}" for i in range(10)])
    events = []
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        consumer.set_rebalance_listener(
            before_release=lambda owned: events.append(("release", owned)),
            after_assign=lambda cid, assignment: events.append(("assign", cid, assignment)))
        streams = consumer.streams({topic: 2})[topic]
        assert [s.thread_id for s in streams] == [f"{consumer.consumer_id}-{n}" for n in (0, 1)]
        wait_until("the first assignment", lambda: events)
        kind, cid, assignment = events[0]
        assert kind == "assign" and cid == consumer.consumer_id
        assert assignment == {topic: {0: f"{cid}-0", 1: f"{cid}-0", 2: f"{cid}-1"}}

        taken = []
        while len(taken) < 30:
            for s in streams:
                m = s.poll(timeout=0.2)
                if m is not None:
                    taken.append(m)
                    s.ack(m)
        assert sorted((m.partition, m.offset) for m in taken) == [
            (p, i) for p in range(3) for i in range(10)]
        # Acknowledged explicitly: processed although no next message was taken.
        assert consumer.owned_partitions() == {(topic, p): 10 for p in range(3)}
        # A message acknowledged with a stream it did not come from is an error naming it.
        stranger = next(m for m in taken if m.partition == 2)
        with pytest.raises(ValueError, match=f"{topic}-2 offset {stranger.offset} was not handed "
                                             f"out by stream {streams[0].thread_id}"):
            streams[0].ack(stranger)
        assert sorted((l["topic"], l["partition"], l["lag"]) for l in consumer.lags()) == [
            (topic, p, 0) for p in range(3)]
        assert f'zkconsumer_messages_consumed_total{{group="{group}"}} 30' in consumer.metrics_text()
        consumer.commit()
        assert cluster.offsets(group, topic) == {p: 10 for p in range(3)}
        assert streams[0].poll(timeout=0.1) is None
        with pytest.raises(zkconsumer.Error):
            consumer.streams({topic: 1})  # once per consumer, as in Java
    # Leaving the block ended the streams.
    assert not streams[1].ended
    assert list(streams[0]) == [] and streams[1].poll(timeout=5) is None
    assert all(s.ended for s in streams)
    assert cluster.members(group) == []


def test_close_from_another_thread_ends_a_blocked_iteration(cluster, group):
    topic = cluster.create_topic(1)
    consumer = zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config())
    stream = consumer.streams({topic: 1})[topic][0]
    got = []
    reader = threading.Thread(target=lambda: got.extend(stream))
    reader.start()
    time.sleep(0.5)
    start = time.monotonic()
    consumer.close()
    reader.join(10)
    assert not reader.is_alive() and got == []
    assert time.monotonic() - start < 5
    consumer.close()  # idempotent


def test_closing_while_holding_a_message_does_not_wait_and_redelivers_it(cluster, group):
    topic = cluster.create_topic(1)
    cluster.produce(topic, 0, ["a", "b", "c"])
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        assert next(stream).value == b"a"
        assert next(stream).value == b"b"   # "a" is processed, "b" is held
        start = time.monotonic()
    assert time.monotonic() - start < 1.5, "close() did not wait for its own thread's message"
    assert cluster.offsets(group, topic) == {0: 1}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_consumer_made_before_fork_fails_clearly_in_the_child(cluster, group):
    consumer = zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            consumer.commit()
            os.write(write, b"no error")
        except zkconsumer.Error as e:
            os.write(write, str(e).encode())
        finally:
            os._exit(0)
    os.close(write)
    message = os.read(read, 4096).decode()
    os.waitpid(pid, 0)
    consumer.close()
    assert "before fork()" in message


def test_the_package_is_installed_with_its_type_information():
    package = Path(zkconsumer.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "_native.pyi").exists()
    assert issubclass(zkconsumer.ConfigError, zkconsumer.Error)
    assert issubclass(zkconsumer.StreamError, zkconsumer.Error)


def test_blocking_calls_from_a_listener_callback_fail_clearly(cluster, group):
    topic = cluster.create_topic(1)
    seen = []

    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        def after_assign(consumer_id, assignment):
            try:
                consumer.commit()
                seen.append("no error")
            except zkconsumer.Error as e:
                seen.append(str(e))

        consumer.set_rebalance_listener(after_assign=after_assign)
        consumer.streams({topic: 1})
        wait_until("the listener", lambda: seen)
    assert "rebalance listener" in seen[0]


def test_filter_streams_and_a_stream_keeps_its_consumer_alive(cluster, group):
    import gc

    topics = [cluster.create_topic(1) for _ in range(2)]
    for t in topics:
        cluster.produce(t, 0, [f"{t}-a", f"{t}-b"])
    consumer = zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config(
        consumer_timeout_ms=20000))
    (stream,) = consumer.streams_by_filter(whitelist=",".join(topics), count=1)
    del consumer
    gc.collect()
    got = sorted(next(stream).value.decode() for _ in range(4))
    assert got == sorted(f"{t}-{x}" for t in topics for x in "ab")
    # The last handle gone, the member stops and its session ends: it leaves the group.
    del stream
    gc.collect()
    wait_until("the dropped member to leave", lambda: cluster.members(group) == [], 30)


def test_consumer_group_example_splits_a_topic_between_two_processes(cluster, group, processes):
    import signal
    import sys

    topic = cluster.create_topic(4)
    # The example keeps Java's default auto.offset.reset=largest, which a fetcher resolves after
    # its member claimed the partition (owner nodes exist before positions do): start the group
    # from committed offsets so messages produced once the owners are in place cannot be skipped.
    cluster.commit(group, topic, {p: 0 for p in range(4)})
    example = Path(__file__).resolve().parents[1] / "examples" / "consumer_group.py"
    runs = [processes([sys.executable, str(example), cluster.zk_connect, group, topic, "2"])
            for _ in range(2)]
    wait_until("two members", lambda: len(cluster.members(group)) == 2, 30)
    wait_until("four owners",
               lambda: len(set(cluster.owners(group, topic).values())) == 4, 30)
    values = cluster.produce_numbered(topic, 4, 25, "v")

    def printed():
        return printed_values(runs, "Thread")

    wait_until("every message", lambda: len(printed()) >= 100, 30)
    for r in runs:
        assert any(l.startswith("Thread ") for l in r.output()), "both processes got a share"
        r.signal(signal.SIGTERM)
    for r in runs:
        assert r.wait(20) == 0, r.stderr()
        assert sum(l.startswith("Shutting down Thread") for l in r.output()) == 2, r.stderr()
    assert sorted(printed()) == sorted(values)
    assert cluster.members(group) == []


def test_request_shutdown_ends_existing_streams_and_later_consumers_start_normally(cluster, group):
    topic = cluster.create_topic(1)
    cluster.produce(topic, 0, ["one"])
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as first:
        stream = first.streams({topic: 1})[topic][0]
        assert next(stream).value == b"one"
        zkconsumer.request_shutdown()
        assert list(stream) == []
    assert zkconsumer.shutdown_requested()
    assert cluster.offsets(group, topic) == {0: 1}
    cluster.produce(topic, 0, ["two"])
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config(
            consumer_timeout_ms=20000)) as later:
        assert next(later.streams({topic: 1})[topic][0]).value == b"two"
