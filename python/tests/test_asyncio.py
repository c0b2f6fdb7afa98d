"""asyncio: `async for` over streams, `async with` a consumer, and cancelled awaits that
lose nothing (real ZooKeeper and brokers)."""

import asyncio
import random
import threading
import time

import pytest

import zkconsumer
from conftest import printed_values, wait_until


def test_async_for_reads_streams_concurrently_and_async_with_commits_and_leaves(cluster, group):
    topic = cluster.create_topic(2)
    expected = set()
    for p in range(2):
        batch = [f"a-{p}-{i}" for i in range(20)]
        cluster.produce(topic, p, batch)
        expected |= {(p, v) for v in batch}
    got = []

    async def main():
        done = asyncio.Event()

        async def read(stream):
            async for message in stream:
                got.append((message.partition, message.value.decode()))
                if len(got) == len(expected):
                    done.set()
            return stream.ended

        async with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as c:
            assert c.consumer_id  # `async with` gives the consumer itself
            streams = c.streams({topic: 2})[topic]
            tasks = [asyncio.create_task(read(s)) for s in streams]
            await asyncio.wait_for(done.wait(), 30)
        # leaving `async with` closed the consumer: every `async for` ended
        return await asyncio.wait_for(asyncio.gather(*tasks), 30)

    assert asyncio.run(main()) == [True, True]
    assert len(got) == len(expected) and set(got) == expected
    assert cluster.offsets(group, topic) == {0: 20, 1: 20}
    assert cluster.members(group) == []


def test_cancelled_awaits_lose_nothing_and_sync_reads_go_on_where_async_ones_stopped(
        cluster, group):
    topic = cluster.create_topic(1)
    values = [f"c-{i}" for i in range(300)]
    rng = random.Random(11)
    cancelled = 0

    def produce_slowly():
        for i in range(0, 200, 10):
            cluster.produce(topic, 0, values[i:i + 10])

    async def read_async(stream, until):
        nonlocal cancelled
        offsets = []
        while len(offsets) < until:
            try:
                # timeouts from 0 to 20 ms: many cancel a wait, some while a message arrives
                message = await asyncio.wait_for(stream.__anext__(), rng.random() * 0.02)
            except asyncio.TimeoutError:
                cancelled += 1
                continue
            offsets.append(message.offset)
        return offsets

    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        producer = threading.Thread(target=produce_slowly)
        producer.start()
        first = asyncio.run(read_async(stream, 200))
        producer.join()
        cluster.produce(topic, 0, values[200:])
        # the same stream, now read by a plain thread, after a cancelled await
        rest = [next(stream).offset for _ in range(100)]
    assert cancelled > 0
    assert first + rest == list(range(300))
    assert cluster.offsets(group, topic) == {0: 299}  # the last one taken is not finished


def test_a_message_that_arrives_for_a_cancelled_await_is_the_next_one(cluster, group):
    topic = cluster.create_topic(1)

    async def main(stream):
        waiting = stream.__anext__()
        await asyncio.sleep(0.2)  # the stream has nothing: the await is in flight
        # Blocking the loop: the message arrives and its delivery is queued on the loop,
        # then the await is cancelled before the loop gets to run that delivery.
        cluster.produce(topic, 0, ["arrived"])
        time.sleep(1.0)
        waiting.cancel()
        await asyncio.sleep(0.1)
        assert waiting.cancelled()
        return (await asyncio.wait_for(stream.__anext__(), 10)).value

    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        assert asyncio.run(main(stream)) == b"arrived"


def test_a_stream_with_plenty_buffered_does_not_starve_the_other_tasks(cluster, group):
    topic = cluster.create_topic(2)
    cluster.produce_numbered(topic, 2, 2000, "f")
    order = []

    async def read(label, stream):
        async for _ in stream:
            order.append(label)
            if order.count(label) == 2000:
                return

    async def main(streams):
        # The first message of each stream comes from the fetcher's queue (through a runtime
        # thread, which needs the GIL); the other 1,999 of its chunk are then buffered.
        for label, stream in enumerate(streams):
            await asyncio.wait_for(stream.__anext__(), 30)
            order.append(label)
        await asyncio.wait_for(asyncio.gather(*(read(n, s) for n, s in enumerate(streams))), 60)

    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        streams = consumer.streams({topic: 2})[topic]
        asyncio.run(main(streams))
    switches = sum(1 for a, b in zip(order, order[1:]) if a != b)
    # each stream lets the other task run at least every 64 messages (a buffered chunk of
    # 1,999 would otherwise be read in one go)
    assert switches >= 2000 // 64, switches


def test_timeouts_and_concurrent_readers_are_errors_and_the_stream_stays_usable(cluster, group):
    topic = cluster.create_topic(1)

    async def main(stream):
        with pytest.raises(zkconsumer.Timeout):
            await stream.__anext__()
        first = asyncio.ensure_future(stream.__anext__())
        with pytest.raises(zkconsumer.Error, match="already being read"):
            await stream.__anext__()
        cluster.produce(topic, 0, ["late"])
        return (await asyncio.wait_for(first, 30)).value

    with zkconsumer.Consumer(cluster.zk_connect, group,
                             config=cluster.config(consumer_timeout_ms=300)) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        assert asyncio.run(main(stream)) == b"late"


def test_an_await_left_pending_when_its_loop_closed_does_not_hold_the_stream(cluster, group):
    topic = cluster.create_topic(1)

    async def leave_one_pending(stream):
        stream.__anext__()  # never awaited nor cancelled: asyncio.run only cancels tasks

    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        asyncio.run(leave_one_pending(stream))
        assert stream.poll(timeout=0.3) is None  # not "already being read"
        cluster.produce(topic, 0, ["after"])
        assert next(stream).value == b"after"
        # and in a new loop
        cluster.produce(topic, 0, ["again"])

        async def read_one():
            return (await stream.__anext__()).value

        assert asyncio.run(asyncio.wait_for(read_one(), 30)) == b"again"


def test_anext_outside_an_event_loop_is_a_clear_error(cluster, group):
    topic = cluster.create_topic(1)
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        with pytest.raises(RuntimeError, match="no running event loop"):
            stream.__anext__()


def test_asyncio_example_stops_every_task_on_sigterm_and_commits(cluster, group, processes):
    import signal
    import sys
    from pathlib import Path

    topic = cluster.create_topic(2)
    cluster.commit(group, topic, {0: 0, 1: 0})  # the example resets to largest: see test_api
    example = Path(__file__).resolve().parents[1] / "examples" / "asyncio_group.py"
    run = processes([sys.executable, str(example), cluster.zk_connect, group, topic, "2"])
    wait_until("two owners", lambda: len(set(cluster.owners(group, topic).values())) == 2, 30)
    values = cluster.produce_numbered(topic, 2, 30, "t")

    def printed():
        return printed_values([run], "Task")

    wait_until("every message", lambda: len(printed()) >= len(values), 30)
    run.signal(signal.SIGTERM)
    assert run.wait(20) == 0, run.stderr()
    assert sum(l.startswith("Shutting down Task") for l in run.output()) == 2, run.stderr()
    assert sorted(printed()) == sorted(values)
    assert cluster.offsets(group, topic) == {0: 30, 1: 30}
    assert cluster.members(group) == []
