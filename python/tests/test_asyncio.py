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


async def take(stream):
    """One `await` of the stream's next message (a coroutine, to run as a task)."""
    return await stream.__anext__()


def test_cancelled_awaits_lose_nothing_and_sync_reads_go_on_where_async_ones_stopped(
        cluster, group):
    topic = cluster.create_topic(1)
    values = [f"c-{i}" for i in range(400)]
    rng = random.Random(11)
    cancelled = 0

    def produce_slowly():
        for i in range(0, 300, 5):
            cluster.produce(topic, 0, values[i:i + 5])

    async def busy_neighbour(stop):
        # another task of the loop that takes CPU: wake-ups and cancellations meet in one turn
        while not stop.is_set():
            time.sleep(0.002)
            await asyncio.sleep(0)

    async def read_async(stream, until):
        nonlocal cancelled
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        neighbour = asyncio.ensure_future(busy_neighbour(stop))
        offsets = []
        deadline = time.monotonic() + 60
        while len(offsets) < until and time.monotonic() < deadline:
            task = asyncio.ensure_future(take(stream))
            # cancel after 0-4 ms: many cancel a wait, some as the message arrives (as
            # asyncio.timeout, wait_for on 3.12+ and task groups do)
            timer = loop.call_later(rng.random() * 0.004, task.cancel)
            try:
                offsets.append((await task).offset)
            except asyncio.CancelledError:
                cancelled += 1
            timer.cancel()
        stop.set()
        await neighbour
        return offsets

    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        producer = threading.Thread(target=produce_slowly)
        producer.start()
        first = asyncio.run(read_async(stream, 300))
        producer.join()
        cluster.produce(topic, 0, values[300:])
        # the same stream, now read by a plain thread, after a cancelled await (each poll
        # bounded: a regression fails instead of hanging)
        rest = [stream.poll(timeout=30) for _ in range(100)]
        assert None not in rest, "a message did not come within 30 s"
        rest = [m.offset for m in rest]
    assert cancelled > 0
    assert first + rest == list(range(400))
    assert cluster.offsets(group, topic) == {0: 399}  # the last one taken is not finished


def test_a_message_that_arrives_for_a_cancelled_await_is_the_next_one(cluster, group):
    topic = cluster.create_topic(1)

    async def cancel_as_it_arrives(stream, value, wake_up_first):
        waiting = asyncio.ensure_future(take(stream))
        await asyncio.sleep(0.2)  # the stream has nothing: the await is in flight
        # Blocking the loop: the message arrives and the task's wake-up is queued on the loop.
        cluster.produce(topic, 0, [value])
        time.sleep(1.0)
        if wake_up_first:
            await asyncio.sleep(0)  # the wake-up runs in this turn, the task has not resumed
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return (await asyncio.wait_for(take(stream), 10)).value

    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        assert asyncio.run(cancel_as_it_arrives(stream, "one", False)) == b"one"
        assert asyncio.run(cancel_as_it_arrives(stream, "two", True)) == b"two"
    assert cluster.offsets(group, topic) == {0: 1}


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
        first = asyncio.ensure_future(take(stream))
        await asyncio.sleep(0.1)  # the first reader waits
        with pytest.raises(zkconsumer.Error, match="already being read"):
            await stream.__anext__()
        cluster.produce(topic, 0, ["late"])
        return (await asyncio.wait_for(first, 30)).value

    with zkconsumer.Consumer(cluster.zk_connect, group,
                             config=cluster.config(consumer_timeout_ms=300)) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        assert asyncio.run(main(stream)) == b"late"


def test_a_loop_closed_while_a_task_waits_does_not_hold_the_stream(cluster, group):
    topic = cluster.create_topic(1)
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        tasks = []  # kept alive: the waits are not released by garbage collection
        for arrives_before_close in (True, False):
            value = f"arrived before close: {arrives_before_close}"
            loop = asyncio.new_event_loop()
            tasks.append(loop.create_task(take(stream)))
            loop.run_until_complete(asyncio.sleep(0.3))  # the task waits on the stream
            if arrives_before_close:
                cluster.produce(topic, 0, [value])
                time.sleep(1.0)  # its wake-up is queued on a loop that no longer runs
            loop.close()  # the task is neither finished nor cancelled
            if not arrives_before_close:
                cluster.produce(topic, 0, [value])
            message = stream.poll(timeout=10)  # not "already being read"
            assert message is not None and message.value == value.encode()


def test_anext_outside_an_event_loop_is_a_clear_error(cluster, group):
    topic = cluster.create_topic(1)
    with zkconsumer.Consumer(cluster.zk_connect, group, config=cluster.config()) as consumer:
        stream = consumer.streams({topic: 1})[topic][0]
        awaitable = stream.__anext__().__await__()
        with pytest.raises(RuntimeError, match="no running event loop"):
            next(awaitable)


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
