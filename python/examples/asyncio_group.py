"""consumer_group.py for asyncio: one task per stream of a topic's partitions.

    python asyncio_group.py ZOOKEEPER GROUP TOPIC STREAMS

Each task prints `Task n: value` for every message of the partitions its stream owns. Run it
next to other members of the group (Python, Rust or Java) and the partitions are split between
all of them. One SIGINT/SIGTERM ends every stream; leaving `async with` then commits what was
processed and leaves the group.
"""

import asyncio
import signal
import sys

import zkconsumer


async def run(n: int, stream: zkconsumer.Stream) -> None:
    while True:
        try:
            async for message in stream:
                print(f"Task {n}: {message.value.decode(errors='replace')}", flush=True)
            break  # the stream ended
        except zkconsumer.StreamError as e:
            # One partition cannot make progress; the others go on. Going on skips a
            # skippable error (a message set that cannot be decoded), as the CLI's
            # --skip-message-on-error; any other holds that partition (e.g. raise
            # fetch.message.max.bytes for an oversized message).
            what = "skipping" if e.skippable else "partition stalled"
            print(f"Task {n}: {what}: {e}", file=sys.stderr, flush=True)
    print(f"Shutting down Task: {n}", flush=True)


async def main() -> None:
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    zookeeper, group, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, zkconsumer.request_shutdown)
    config = {"zookeeper.sync.time.ms": 200, "auto.commit.interval.ms": 1000}
    # Joining the group blocks: keep it off the event loop's thread.
    consumer = await asyncio.to_thread(zkconsumer.Consumer, zookeeper, group, config=config)
    async with consumer:
        streams = (await asyncio.to_thread(consumer.streams, {topic: count}))[topic]
        await asyncio.gather(*(run(n, stream) for n, stream in enumerate(streams)))


if __name__ == "__main__":
    asyncio.run(main())
