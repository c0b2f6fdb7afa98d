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
        deadline = time.monotonic() + 60
        while len(taken) < 30:
            assert time.monotonic() < deadline, f"only {len(taken)} of 30 messages in 60 s"
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
        with pytest.raises(zkconsumer.UsageError):
            consumer.streams({topic: 1})  # once per consumer, as in Java

        # A second member joins: before_release gets the partitions that move away (not the
        # ones kept by the same thread), before the new assignment is announced.
        assert not [e for e in events if e[0] == "release"]
        with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as joiner:
            joiner.streams({topic: 1})
            # Three threads (two of the first member, one of the joiner), one partition each;
            # until the joiner owns one, the group has not rebalanced (the first member's two
            # threads alone were also two distinct owners: that passed before any rebalance).
            wait_until("the rebalance to a 2-member group",
                       lambda: sorted(
                           o.startswith(joiner.consumer_id)
                           for o in cluster.owners(group, topic).values()) == [False, False, True],
                       60)
            wait_until("the new assignment in after_assign",
                       lambda: len([e for e in events if e[0] == "assign"]) >= 2, 30)
            releases = [e for e in events if e[0] == "release"]
            assert releases, "before_release was not called"
            # Released: every partition whose owning thread changed (a partition that moves
            # to another stream of this member is released and claimed again).
            before = assignment[topic]
            after = cluster.owners(group, topic)
            assert releases[0][1] == {topic: {p for p in range(3) if after[p] != before[p]}}
            assert events.index(releases[0]) < max(
                i for i, e in enumerate(events) if e[0] == "assign")
    # Leaving the block ended the streams.
    assert not streams[1].ended
    assert list(streams[0]) == [] and streams[1].poll(timeout=5) is None
    assert all(s.ended for s in streams)
    assert cluster.members(group) == []


def test_close_from_another_thread_ends_a_blocked_iteration(cluster, group):
    topic = cluster.create_topic(1)
    cluster.produce(topic, 0, ["only"])
    consumer = zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config())
    stream = consumer.streams({topic: 1})[topic][0]
    got, errors, finished = [], [], threading.Event()

    def read():
        try:
            for m in stream:
                got.append(m.value)
            finished.set()  # the iteration ended normally (StopIteration)
        except BaseException as e:  # noqa: B902 - reported by the test below
            errors.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    wait_until("the reader to take the message", lambda: got or errors, 30)
    # The reader is now blocked in next(): nothing more was produced.
    time.sleep(0.2)
    assert reader.is_alive() and not errors
    start = time.monotonic()
    consumer.close()
    reader.join(10)
    assert not reader.is_alive(), "close() did not end the blocked iteration"
    assert errors == [] and finished.is_set()
    assert got == [b"only"]
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
        except zkconsumer.UsageError as e:
            os.write(write, str(e).encode())
        except BaseException as e:  # noqa: B902 - reported by the parent
            os.write(write, f"not a UsageError: {e!r}".encode())
        finally:
            os._exit(0)
    os.close(write)
    message = os.read(read, 4096).decode()
    os.waitpid(pid, 0)
    consumer.close()
    assert "before fork()" in message, message


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
                consumer.close()
                seen.append("no error")
            except zkconsumer.UsageError as e:
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


def test_a_message_is_constructible_picklable_hashable_and_readable(cluster, group):
    import pickle

    made = zkconsumer.Message("orders", 2, 41, b"payload", key=b"k1")
    assert (made.topic, made.partition, made.offset, made.value, made.key) == (
        "orders", 2, 41, b"payload", b"k1")
    assert zkconsumer.Message("orders", 2, 41, b"payload").key is None
    assert repr(made) == "Message(topic='orders', partition=2, offset=41, value=b'payload', key=b'k1')"
    assert made == zkconsumer.Message("orders", 2, 41, b"payload", b"k1")
    assert made != zkconsumer.Message("orders", 2, 42, b"payload", b"k1")
    assert made != ("orders", 2, 41)
    assert len({made, zkconsumer.Message("orders", 2, 41, b"payload", b"k1")}) == 1
    big = zkconsumer.Message("t", 0, 0, b"x" * 1000)
    assert repr(big).endswith("...(1000 bytes), key=None)")

    topic = cluster.create_topic(1)
    cluster.produce(topic, 0, ["delivered"])
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        m = stream.poll(timeout=30)
        assert m is not None
        back = pickle.loads(pickle.dumps(m))
        assert back == m and hash(back) == hash(m) and back is not m
        assert (back.topic, back.offset, back.value) == (topic, 0, b"delivered")
        # a rebuilt message of a partition the stream handed out can be acknowledged
        stream.ack(back)
        assert consumer.owned_partitions() == {(topic, 0): 1}


def test_two_threads_block_in_next_in_parallel_the_gil_is_released(cluster, group):
    topic = cluster.create_topic(2)
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        streams = consumer.streams({topic: 2})[topic]
        got, errors = {}, []
        blocked = threading.Barrier(3, timeout=30)

        def read(stream):
            try:
                blocked.wait()
                got[stream.thread_id] = stream.poll(timeout=30)
            except BaseException as e:  # noqa: B902 - reported below
                errors.append(e)

        readers = [threading.Thread(target=read, args=(s,)) for s in streams]
        for r in readers:
            r.start()
        blocked.wait()
        # Both readers wait in poll() now; this thread still runs Python code (it holds the
        # GIL between its own calls only), counting while they block.
        counted = 0
        until = time.monotonic() + 0.5
        while time.monotonic() < until:
            counted += 1
        assert counted > 10_000, "this thread barely ran while the readers blocked"
        assert all(r.is_alive() for r in readers)
        # One message per partition: each stream owns one partition, both wake.
        cluster.produce_numbered(topic, 2, 1, "g")
        for r in readers:
            r.join(30)
        assert errors == [] and not any(r.is_alive() for r in readers)
        assert sorted(m.value for m in got.values()) == [b"g-0-0", b"g-1-0"]


def test_the_stubs_and_exports_cover_the_native_module():
    import re

    stubs = (Path(zkconsumer.__file__).parent / "_native.pyi").read_text()
    for name in zkconsumer.__all__:
        assert hasattr(zkconsumer, name), name
    for cls in (zkconsumer.Consumer, zkconsumer.Stream, zkconsumer.Message,
                zkconsumer.SkippingStream):
        body = stubs.split(f"class {cls.__name__}:", 1)[1].split("\nclass ", 1)[0]
        stubbed = set(re.findall(r"def (\w+)\(", body))
        public = {n for n in dir(cls) if not n.startswith("_")}
        assert public <= stubbed, f"{cls.__name__}: not in _native.pyi: {public - stubbed}"
    functions = set(re.findall(r"^def (\w+)\(", stubs, re.M))
    native = {n for n in dir(zkconsumer._native) if not n.startswith("_")
              and callable(getattr(zkconsumer._native, n))
              and not isinstance(getattr(zkconsumer._native, n), type)}
    assert native <= functions, f"functions not in _native.pyi: {native - functions}"
