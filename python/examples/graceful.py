"""Several consumers in one process, one signal, everything committed.

    python graceful.py ZOOKEEPER GROUP TOPIC [--consumers 3] [--streams 2] [--work-ms 0]
                       [--config key=value ...]

Starts N consumers (group members) with M streams each and one thread per stream. The first
SIGINT/SIGTERM ends every stream of every consumer; each thread then finishes, and leaving the
`with` block closes every consumer: it commits the offsets of what its streams processed and
deletes its owner and registration nodes in ZooKeeper. A second signal raises SystemExit in
the main thread (the `with` block still closes the consumers).
--work-ms simulates that much work per message, so a signal arrives in the middle of it.
"""

import argparse
import contextlib
import logging
import sys
import threading
import time

import zkconsumer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("zookeeper", help="ZooKeeper connect string, e.g. 127.0.0.1:2181/kafka")
    ap.add_argument("group")
    ap.add_argument("topic")
    ap.add_argument("--consumers", type=int, default=3)
    ap.add_argument("--streams", type=int, default=2)
    ap.add_argument("--work-ms", type=float, default=0, help="simulated work per message")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    config = {"auto.offset.reset": "smallest"}
    config.update(kv.split("=", 1) for kv in args.config)

    logging.basicConfig(level=logging.WARNING)  # skipped message sets are logged
    zkconsumer.install_signal_handlers()
    lock = threading.Lock()

    def work(n: int, stream: zkconsumer.Stream) -> None:
        # skipping_errors(): a message set that cannot be decoded is logged and skipped (the
        # CLI's --skip-message-on-error); any other StreamError ends this thread's loop.
        try:
            for message in stream.skipping_errors():  # ends when the signal arrives
                time.sleep(args.work_ms / 1000)
                with lock:
                    print(f"consumer {n} stream {stream.thread_id}: {message.partition} "
                          f"{message.offset} {message.value.decode(errors='replace')}", flush=True)
        except zkconsumer.StreamError as e:
            print(f"stream {stream.thread_id} stops: {e}", file=sys.stderr, flush=True)
        with lock:
            print(f"ended {stream.thread_id}", flush=True)

    with contextlib.ExitStack() as stack:
        threads = []
        for n in range(args.consumers):
            consumer = stack.enter_context(zkconsumer.Consumer(args.zookeeper, args.group, config=config))
            for stream in consumer.streams({args.topic: args.streams})[args.topic]:
                threads.append(threading.Thread(target=work, args=(n, stream)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # Every consumer is closed here: offsets committed, ownership released.
    print(f"closed {args.consumers} consumers", flush=True)


if __name__ == "__main__":
    main()
