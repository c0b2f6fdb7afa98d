"""Bad input gets a clear exception of the package's hierarchy, naming what is wrong."""

import socket
import time

import pytest

import zkconsumer


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
        assert "fetch.message.max.bytes" in str(e)


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
