"""Bad input gets a clear exception of the package's hierarchy, naming what is wrong."""

import socket
import time

import pytest

import zkconsumer
from conftest import wait_until


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unknown_zookeeper_host_raises_connection_error():
    start = time.monotonic()
    with pytest.raises(zkconsumer.ConnectionError) as err:
        zkconsumer.Consumer("no-such-host.invalid:2181", "g",
                            config={"zookeeper.connection.timeout.ms": 2000})
    assert "no-such-host.invalid:2181" in str(err.value)
    assert isinstance(err.value, zkconsumer.Error)
    assert isinstance(err.value, ConnectionError)  # the built-in one too
    assert time.monotonic() - start < 15


def test_nothing_listening_raises_connection_error():
    port = closed_port()
    with pytest.raises(zkconsumer.ConnectionError) as err:
        zkconsumer.Consumer(f"127.0.0.1:{port}", "g",
                            config={"zookeeper.connection.timeout.ms": 1000})
    assert f"127.0.0.1:{port}" in str(err.value)


def test_bad_config_value_names_key_and_value(cluster):
    with pytest.raises(zkconsumer.ConfigError) as err:
        zkconsumer.Consumer(cluster.zk_connect, "g", config={"auto.offset.reset": "sideways"})
    assert err.value.key == "auto.offset.reset"
    assert err.value.value == "sideways"
    assert "auto.offset.reset" in str(err.value) and "sideways" in str(err.value)
    assert isinstance(err.value, ValueError)

    with pytest.raises(zkconsumer.ConfigError) as err:
        zkconsumer.Consumer(cluster.zk_connect, "g", config={"fetch.min.bytes": 1.5})
    assert err.value.key == "fetch.min.bytes"
    assert "str or int" in str(err.value)

    with pytest.raises(zkconsumer.ConfigError) as err:
        zkconsumer.Consumer(cluster.zk_connect, "g", config={"zookeeper.session.timeout.ms": -5})
    assert err.value.key == "zookeeper.session.timeout.ms"


def test_missing_group_and_bad_files(cluster, tmp_path):
    with pytest.raises(zkconsumer.ConfigError) as err:
        zkconsumer.Consumer(cluster.zk_connect)
    assert err.value.key == "group.id"
    with pytest.raises(zkconsumer.ConfigError) as err:
        zkconsumer.Consumer(cluster.zk_connect, "g", config_file=tmp_path / "absent.properties")
    assert "absent.properties" in str(err.value)
    props = tmp_path / "c.properties"
    props.write_text(f"zookeeper.connect={cluster.zk_connect}\ngroup.id=from-file\n"
                     f"zookeeper.server.version={cluster.zk_version}\n")
    with zkconsumer.Consumer(config_file=props) as consumer:
        assert consumer.group_id == "from-file"


def test_missing_topic_raises_unknown_topic_error(cluster, group):
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        with pytest.raises(zkconsumer.UnknownTopicError) as err:
            consumer.streams({"no-such-topic-here": 1})
        assert err.value.topics == ["no-such-topic-here"]
        assert "no-such-topic-here" in str(err.value)
        # Nothing was registered: the subscription can still be made.
        assert cluster.members(group) == []


def test_bad_filter_and_subscription(cluster, group):
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        with pytest.raises(zkconsumer.ConfigError) as err:
            consumer.streams_by_filter(whitelist="orders[", count=1)
        assert err.value.key == "whitelist" and err.value.value == "orders["
        with pytest.raises(zkconsumer.ConfigError):
            consumer.streams_by_filter(count=1)


def test_oversized_message_raises_stream_error_naming_it_and_the_stream_goes_on(cluster, group):
    topic = cluster.create_topic(2)
    cluster.produce(topic, 0, ["x" * 3000])
    cluster.produce(topic, 1, [f"small-{i}" for i in range(5)])
    config = cluster.config(fetch_message_max_bytes=1024, consumer_timeout_ms=5000)
    with zkconsumer.Consumer(cluster.zk_connect, group, config=config) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        values, errors = [], []
        while len(values) < 5 or not errors:
            try:
                values.append(next(stream).value)
            except zkconsumer.StreamError as e:
                errors.append(e)
        assert values == [f"small-{i}".encode() for i in range(5)]
        e = errors[0]
        assert (e.topic, e.partition, e.offset) == (topic, 0, 0)
        assert "raise fetch.message.max.bytes" in str(e)
        assert not e.skippable, "skipping would lose the message: raise the limit instead"


def test_consumer_timeout_raises_timeout_and_the_stream_stays_usable(cluster, group):
    topic = cluster.create_topic(1)
    with zkconsumer.Consumer(cluster.zk_connect, group,
                             config=cluster.config(consumer_timeout_ms=300)) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        with pytest.raises(zkconsumer.Timeout):
            next(stream)
        cluster.produce(topic, 0, ["late"])
        deadline = time.monotonic() + 30
        while True:
            try:
                assert next(stream).value == b"late"
                break
            except zkconsumer.Timeout:
                assert time.monotonic() < deadline


def damage_first_compressed_set(segment) -> int:
    """Flips bytes in the compressed payload of the first compressed message of a log segment
    and fixes its CRC, so only decompression finds the damage. Returns the wrapper's offset."""
    import struct
    import zlib

    log = bytearray(segment.read_bytes())
    at = 0
    while at + 12 <= len(log):
        offset, size = struct.unpack(">qi", log[at:at + 12])
        message = at + 12
        if log[message + 5] & 0x07:
            (key_len,) = struct.unpack(">i", log[message + 6:message + 10])
            value = message + 10 + max(key_len, 0) + 4
            end = message + size
            for i in range(value + (end - value) // 2, end):
                log[i] ^= 0x5A
            log[message:message + 4] = struct.pack(">I", zlib.crc32(bytes(log[message + 4:end])))
            with open(segment, "r+b") as f:
                f.seek(message)
                f.write(log[message:end])
            return offset
        at = message + size
    raise AssertionError(f"no compressed message in {segment}")


def test_undecodable_message_set_raises_stream_error_and_the_others_flow(cluster, group):
    import json
    import os
    from pathlib import Path

    state = os.environ.get("ZKC_TEST_STATE")
    if not state:
        pytest.skip("needs the test bed's broker log folders (ZKC_TEST_STATE, set by scripts/test)")
    topic = cluster.create_topic(2)
    cluster.produce(topic, 0, ["before"])
    cluster.produce(topic, 0, [f"gz-{i}" for i in range(5)], "-z", "gzip")
    cluster.produce(topic, 0, ["after"])
    cluster.produce(topic, 1, [f"p1-{i}" for i in range(10)])
    leader = json.loads(cluster.data(f"/brokers/topics/{topic}/partitions/0/state"))["leader"]
    segment = Path(state) / f"broker-{leader}" / "data" / f"{topic}-0" / "00000000000000000000.log"
    assert damage_first_compressed_set(segment) == 5

    with zkconsumer.Consumer(cluster.zk_connect, group,
                             config=cluster.config(consumer_timeout_ms=20000)) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        got, errors = [], []
        while len(got) < 12:
            try:
                m = next(stream)
                got.append((m.partition, m.value.decode()))
            except zkconsumer.StreamError as e:
                errors.append(e)
    assert len(errors) == 1
    e = errors[0]
    assert (e.topic, e.partition, e.offset) == (topic, 0, 1)
    assert "cannot decode" in str(e)
    assert [v for p, v in got if p == 0] == ["before", "after"]
    assert [v for p, v in got if p == 1] == [f"p1-{i}" for i in range(10)]


ATTRIBUTES = {
    zkconsumer.Error: {},
    zkconsumer.ConfigError: {"key": "fetch.min.bytes", "value": "1.5"},
    zkconsumer.ConnectionError: {},
    zkconsumer.UnknownTopicError: {"topics": ["a", "b"]},
    zkconsumer.StreamError: {"topic": "t", "partition": 2, "offset": 9, "reason": "r",
                             "skippable": True},
    zkconsumer.Timeout: {},
    zkconsumer.UsageError: {},
    zkconsumer.ForeignMessageError: {"topic": "t", "partition": 1, "offset": 4,
                                     "thread_id": "g_x-0"},
}


@pytest.mark.parametrize("cls", list(ATTRIBUTES), ids=lambda c: c.__name__)
def test_every_exception_keeps_its_attributes_when_pickled(cls):
    import pickle

    attributes = ATTRIBUTES[cls]
    err = cls(f"a {cls.__name__}", **attributes)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and back.args == err.args and str(back) == str(err)
    for name, value in attributes.items():
        assert getattr(back, name) == value, name
    assert isinstance(back, zkconsumer.Error)


def test_exceptions_raised_by_the_library_pickle_with_their_attributes(cluster, group):
    import pickle

    topic = cluster.create_topic(1)
    cluster.produce(topic, 0, ["x" * 3000])
    config = cluster.config(fetch_message_max_bytes=1024)
    with zkconsumer.Consumer(cluster.zk_connect, group, config=config) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        with pytest.raises(zkconsumer.StreamError) as err:
            next(stream)
    back = pickle.loads(pickle.dumps(err.value))
    assert (back.topic, back.partition, back.offset, back.skippable) == (topic, 0, 0, False)
    assert back.reason == str(err.value) and "raise fetch.message.max.bytes" in back.reason


def test_usage_errors(cluster, group):
    topic = cluster.create_topic(1)
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        with pytest.raises(zkconsumer.UsageError, match="already created") as err:
            consumer.streams({topic: 1})
        assert isinstance(err.value, RuntimeError)

        # A stream read by two threads at once: the second reader fails, the first goes on.
        import threading

        outcome = []

        def first_reader():
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    outcome.append(stream.poll(timeout=deadline - time.monotonic()))
                    return
                except zkconsumer.UsageError:
                    time.sleep(0.01)  # the main thread's probe held the stream just then
                except BaseException as e:  # noqa: B902 - the test reports whatever it was
                    outcome.append(e)
                    return

        reader = threading.Thread(target=first_reader)
        reader.start()
        try:
            def second_read_refused():
                try:
                    stream.poll(timeout=0)
                except zkconsumer.UsageError as e:
                    return "already being read" in str(e)
                return False

            wait_until("the second reader to be refused", second_read_refused, 20, 0.02)
            cluster.produce(topic, 0, ["for the first reader"])
        finally:
            reader.join(30)
        assert not reader.is_alive()
        assert [getattr(m, "value", m) for m in outcome] == [b"for the first reader"]

        # ack of a message this stream did not hand out
        stranger = zkconsumer.Message("elsewhere", 3, 7, b"v")
        with pytest.raises(zkconsumer.ForeignMessageError) as err:
            stream.ack(stranger)
        e = err.value
        assert isinstance(e, ValueError)
        assert (e.topic, e.partition, e.offset, e.thread_id) == (
            "elsewhere", 3, 7, stream.thread_id)
    with pytest.raises(zkconsumer.UsageError, match="shut down"):
        consumer.commit()
    with pytest.raises(zkconsumer.UsageError, match="shut down"):
        consumer.seek(topic, 0, 0)


def test_an_undecodable_set_is_skippable_and_skipping_errors_goes_past_it(cluster, group, caplog):
    import json
    import logging
    import os
    from pathlib import Path

    state = os.environ.get("ZKC_TEST_STATE")
    if not state:
        pytest.fail("needs the test bed's broker log folders (ZKC_TEST_STATE, set by scripts/test "
                    "and by `source .testbed/env`)")
    topic = cluster.create_topic(1)
    cluster.produce(topic, 0, ["before"])
    cluster.produce(topic, 0, [f"gz-{i}" for i in range(5)], "-z", "gzip")
    cluster.produce(topic, 0, ["after"])
    leader = json.loads(cluster.data(f"/brokers/topics/{topic}/partitions/0/state"))["leader"]
    segment = Path(state) / f"broker-{leader}" / "data" / f"{topic}-0" / "00000000000000000000.log"
    assert damage_first_compressed_set(segment) == 5

    config = cluster.config(consumer_timeout_ms=20000)
    with zkconsumer.Consumer(cluster.zk_connect, group, config=config) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        assert next(stream).value == b"before"
        with pytest.raises(zkconsumer.StreamError) as err:
            next(stream)
        assert err.value.skippable
        assert next(stream).value == b"after", "the stream goes on past the set"
    with caplog.at_level(logging.WARNING, logger="zkconsumer"):
        with zkconsumer.Consumer(cluster.zk_connect, group + "-skip", config=config) as consumer:
            stream = consumer.streams({topic: 1})[topic][0]
            skipping = stream.skipping_errors()
            assert iter(skipping) is skipping
            assert [next(skipping).value for _ in range(2)] == [b"before", b"after"]
    skipped = [r for r in caplog.records if r.name == "zkconsumer"]
    assert len(skipped) == 1 and "cannot decode" in skipped[0].getMessage()
    # "after" (6) is in hand when the with block closes: processed is everything before it,
    # the skipped set included.
    assert cluster.offsets(group + "-skip", topic) == {0: 6}
