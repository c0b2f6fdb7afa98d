"""Processed-only commits: a message taken but not finished is delivered again after a crash."""

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
