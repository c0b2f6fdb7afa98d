"""A Python group member for the tests, in a process of its own.

    member.py ZK GROUP TOPIC STREAMS [key=value ...] [--hold-at OFFSET]

Prints one line per message, `partition offset value`, flushed at once, then `ended <thread>`
when a stream ends. With --hold-at N it stops taking messages once it has taken the message at
offset N (it never finishes it) and prints `holding N`.
"""

import sys
import threading

import zkconsumer

zk, group, topic, streams = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rest = sys.argv[5:]
hold_at = None
if "--hold-at" in rest:
    i = rest.index("--hold-at")
    hold_at = int(rest[i + 1])
    rest = rest[:i] + rest[i + 2:]
config = dict(kv.split("=", 1) for kv in rest)

zkconsumer.install_signal_handlers()
print_lock = threading.Lock()


def say(line: str) -> None:
    with print_lock:
        print(line, flush=True)


def consume(stream: zkconsumer.Stream) -> None:
    for m in stream:
        say(f"{m.partition} {m.offset} {m.value.decode()}")
        if hold_at is not None and m.offset == hold_at:
            say(f"holding {m.offset}")
            threading.Event().wait()
    say(f"ended {stream.thread_id}")


with zkconsumer.Consumer(zk, group, config=config) as consumer:
    say(f"member {consumer.consumer_id}")
    threads = [threading.Thread(target=consume, args=(s,)) for s in consumer.streams({topic: streams})[topic]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
say("closed")
