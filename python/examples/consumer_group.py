"""The Python twin of Kafka's ConsumerGroupExample: N threads split a topic's partitions.

    python consumer_group.py ZOOKEEPER GROUP TOPIC THREADS

Each thread prints `Thread n: value` for every message of the partitions its stream owns. Run
the script twice with the same group (or next to Java or Rust members of the group) and the
partitions are split between all of them. One SIGINT/SIGTERM stops every thread; the consumer
then commits what was processed and leaves the group.
"""

import sys
import threading

import zkconsumer


print_lock = threading.Lock()  # print() from several threads can interleave within a line


def say(line: str) -> None:
    with print_lock:
        print(line, flush=True)


def run(n: int, stream: zkconsumer.Stream) -> None:
    while True:
        try:
            for message in stream:
                say(f"Thread {n}: {message.value.decode(errors='replace')}")
            break  # the stream ended: close() or a signal
        except zkconsumer.StreamError as e:
            # One partition cannot make progress; the stream goes on with the others. A
            # skippable error (a message set that cannot be decoded) is skipped by going on, as
            # Java's console consumer does with --skip-message-on-error; any other (a message
            # over fetch.message.max.bytes) holds that partition until the limit is raised.
            what = "skipping" if e.skippable else "partition stalled"
            print(f"Thread {n}: {what}: {e}", file=sys.stderr, flush=True)
    say(f"Shutting down Thread: {n}")


def main() -> None:
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    zookeeper, group, topic, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    zkconsumer.install_signal_handlers()
    config = {
        "zookeeper.sync.time.ms": 200,   # as the Java example sets them
        "auto.commit.interval.ms": 1000,
    }
    with zkconsumer.Consumer(zookeeper, group, config=config) as consumer:
        workers = [threading.Thread(target=run, args=(n, stream))
                   for n, stream in enumerate(consumer.streams({topic: threads})[topic])]
        for w in workers:
            w.start()
        for w in workers:
            w.join()


if __name__ == "__main__":
    main()
