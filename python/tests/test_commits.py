"""Processed-only commits: a message taken but not finished is delivered again after a crash."""

import time

import zkconsumer
from conftest import kill9, python_member, wait_until


def test_a_message_taken_but_not_finished_is_delivered_again(cluster, group, processes):
    topic = cluster.create_topic(1)
    cluster.produce(topic, 0, [f"v{i}" for i in range(20)])
    config = [f"{k}={v}" for k, v in cluster.config().items()]
    member = processes(python_member(cluster.zk_connect, group, topic, "1", *config,
                                     "--hold-at", "7"))
    wait_until("the member to hold offset 7", lambda: "holding 7" in member.output(), 60)
    # Offsets 0..6 are finished (the member took the next one); 7 is not.
    wait_until("the commit of the finished messages",
               lambda: cluster.offsets(group, topic).get(0) == 7, 10)
    kill9(member)
    assert cluster.offsets(group, topic) == {0: 7}

    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config(
            consumer_timeout_ms=10000)) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        first = next(stream)
        assert (first.offset, first.value) == (7, b"v7")


def test_a_listener_that_commits_leaves_nothing_to_redeliver_after_a_rebalance(cluster, group):
    """auto.commit.enable=false: before_release is where the application commits (Java's
    beforeReleasingPartitions), so the member that takes a partition over starts after the
    last processed message instead of at the last commit."""
    topic = cluster.create_topic(2)
    sent = cluster.produce_numbered(topic, 2, 20, "m")
    config = cluster.config(auto_commit_enable="false")
    released, failures = [], []
    with zkconsumer.Consumer(cluster.zk_connect, group, config=config) as first:
        def before_release(partitions):
            try:
                first.commit()
                released.append(partitions)
            except BaseException as e:  # noqa: B902 - reported by the test
                failures.append(e)

        first.set_rebalance_listener(before_release=before_release)
        stream = first.streams({topic: 1})[topic][0]
        got = [m.value.decode() for m in take_all(stream, 40)]
        assert sorted(got) == sorted(sent)
        assert stream.poll(timeout=0.3) is None  # finishes the last message taken
        assert cluster.offsets(group, topic) == {}, "nothing committed before the rebalance"

        with zkconsumer.Consumer(cluster.zk_connect, group, config=config) as second:
            later = second.streams({topic: 1})[topic][0]
            wait_until("the release and its commit", lambda: released or failures, 60)
            assert failures == []
            moved = released[0][topic]
            assert len(moved) == 1
            assert cluster.offsets(group, topic) == {0: 20, 1: 20}
            (p,) = moved
            wait_until("the second member to own the moved partition",
                       lambda: cluster.owners(group, topic).get(p, "").startswith(
                           second.consumer_id), 60)
            cluster.produce(topic, p, ["new"])
            m = later.poll(timeout=30)
            assert m is not None and (m.partition, m.offset, m.value) == (p, 20, b"new"), (
                "the first message the new owner sees is the new one: nothing redelivered")


def take_all(stream, count, timeout=60.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} messages"
        m = stream.poll(timeout=1)
        if m is not None:
            got.append(m)
    return got
