"""Commits as Python users expect (Kafka's "next offset to read" rule) and offset control:
committed, position, seek, reset_offsets before the member starts, pause / resume, batches."""

import time

import pytest

import zkconsumer
from conftest import wait_until


def take(stream, count, timeout=30.0):
    """`count` messages from `stream`, failing the test after `timeout` seconds."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"took {len(got)} of {count} messages in {timeout} s: {got!r}")
        m = stream.poll(timeout=left)
        if m is not None:
            got.append(m)
    return got


def values(messages):
    return [m.value.decode() for m in messages]


def test_commit_a_message_or_given_offsets_commits_the_next_offset_to_read(cluster, group):
    topic = cluster.create_topic(1)
    cluster.produce(topic, 0, [f"v{i}" for i in range(10)])
    config = cluster.config(auto_commit_enable="false")
    consumer = zkconsumer.Consumer(cluster.zk_connect, group, config=config)
    with consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        m0, m1, m2 = take(stream, 3)
        consumer.commit()
        assert cluster.offsets(group, topic) == {0: 2}, "commit(): 2 is in hand, not processed"
        consumer.commit(m2)
        assert cluster.offsets(group, topic) == {0: 3}, "commit(message): its offset + 1"
        assert consumer.committed(topic, 0) == 3
        consumer.commit(offsets={(topic, 0): 7})
        assert cluster.offsets(group, topic) == {0: 7}
        consumer.commit(offsets={(topic, 0): 5})
        assert cluster.offsets(group, topic) == {0: 7}, "never below what was committed"
        assert consumer.committed(topic, 1) is None
        with pytest.raises(zkconsumer.UsageError, match=f"{topic}-3 is not owned"):
            consumer.commit(offsets={(topic, 3): 1})
        with pytest.raises(zkconsumer.ConfigError) as err:
            consumer.commit(offsets={(topic, 0): -4})
        assert (err.value.key, err.value.value) == ("offset", "-4")
        with pytest.raises(TypeError):
            consumer.commit(m0, offsets={(topic, 0): 1})
    with pytest.raises(zkconsumer.UsageError, match="shut down") as err:
        consumer.commit()
    assert isinstance(err.value, RuntimeError)
    with pytest.raises(zkconsumer.UsageError):
        consumer.commit(m1)
    assert cluster.offsets(group, topic) == {0: 7}


def test_seek_position_and_committed(cluster, group):
    topic = cluster.create_topic(1)
    cluster.produce(topic, 0, [f"v{i}" for i in range(10)])
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        assert values(take(stream, 4)) == ["v0", "v1", "v2", "v3"]
        assert consumer.position(topic, 0) == 4
        assert consumer.seek(topic, 0, 1) == 1
        assert consumer.position(topic, 0) == 1
        assert values(take(stream, 2)) == ["v1", "v2"], "replayed, nothing buffered in between"
        assert consumer.seek(topic, 0, 8) == 8
        assert values(take(stream, 1)) == ["v8"]
        assert consumer.seek(topic, 0, "earliest") == 0
        assert values(take(stream, 1)) == ["v0"]
        assert consumer.seek(topic, 0, "latest") == 10
        cluster.produce(topic, 0, ["new"])
        (new,) = take(stream, 1)
        assert (new.offset, new.value) == (10, b"new")
        consumer.commit(new)
        assert consumer.committed(topic, 0) == 11
        with pytest.raises(zkconsumer.UsageError, match=f"{topic}-5 is not owned"):
            consumer.seek(topic, 5, 0)
        with pytest.raises(zkconsumer.UsageError):
            consumer.position("other-topic", 0)
        with pytest.raises(zkconsumer.ConfigError) as err:
            consumer.seek(topic, 0, "start")
        assert err.value.key == "offset" and err.value.value == "start"


def test_reset_offsets_replays_a_group_from_the_start_in_one_call(cluster, group):
    topic = cluster.create_topic(2)
    sent = cluster.produce_numbered(topic, 2, 5, "r")
    cluster.commit(group, topic, {0: 5, 1: 5})
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as live:
        live.streams({topic: 1})
        wait_until("the live member", lambda: cluster.members(group))
        with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as other:
            with pytest.raises(zkconsumer.Error, match="live members"):
                other.reset_offsets(topic, to="earliest")
    assert cluster.offsets(group, topic) == {0: 5, 1: 5}

    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        assert consumer.reset_offsets(topic, to="earliest") == {(topic, 0): 0, (topic, 1): 0}
        stream = consumer.streams({topic: 1})[topic][0]
        assert sorted(values(take(stream, 10))) == sorted(sent)
        with pytest.raises(zkconsumer.UsageError, match="before the streams are created"):
            consumer.reset_offsets([topic], to="latest")


def test_a_paused_partition_is_held_back_in_order_until_resumed(cluster, group):
    topic = cluster.create_topic(2)
    cluster.produce_numbered(topic, 2, 3, "p")
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        (first,) = take(stream, 1)
        p, other = first.partition, 1 - first.partition
        consumer.pause((topic, p))
        assert consumer.paused() == {(topic, p)}
        assert values(take(stream, 3)) == [f"p-{other}-{i}" for i in range(3)]
        assert stream.poll(timeout=0.5) is None, "nothing of the paused partition"
        consumer.resume((topic, p))
        assert consumer.paused() == set()
        assert values(take(stream, 2)) == [f"p-{p}-1", f"p-{p}-2"]
        with pytest.raises(zkconsumer.UsageError):
            consumer.pause((topic, 9))


def test_poll_batch_is_one_commit_point(cluster, group):
    topic = cluster.create_topic(1)
    cluster.produce(topic, 0, [f"b{i}" for i in range(50)])
    config = cluster.config(auto_commit_enable="false")
    with zkconsumer.Consumer(cluster.zk_connect, group, config=config) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        first = stream.poll_batch(20, timeout=30)
        assert 1 <= len(first) <= 20
        assert [m.offset for m in first] == list(range(len(first)))
        consumer.commit()
        assert cluster.offsets(group, topic).get(0, 0) == 0, "the batch in hand is unprocessed"
        second = stream.poll_batch(max_records=1000, timeout=30)
        assert second and second[0].offset == len(first)
        consumer.commit()
        assert cluster.offsets(group, topic) == {0: len(first)}, "taking it finished the first"
        rest = [m for _ in range(50) for m in stream.poll_batch(100, timeout=0.2)]
        assert len(first) + len(second) + len(rest) == 50
        assert stream.poll_batch(10, timeout=0.2) == []
        with pytest.raises(zkconsumer.ConfigError):
            stream.poll_batch(0)
