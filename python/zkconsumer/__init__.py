"""zkconsumer: ZooKeeper-coordinated consumer groups for legacy (0.8-era) Kafka clusters.

Members of one group split the partitions of their topics exactly as Kafka's old Java
high-level consumer does (same ZooKeeper nodes, same range/roundrobin assignment), so Python,
Rust and Java members can share a group. The work is done by the Rust library; this package
is a thin binding over it.

    import zkconsumer
    zkconsumer.install_signal_handlers()
    with zkconsumer.Consumer("127.0.0.1:2181/kafka", "orders-audit",
                             config={"auto.offset.reset": "smallest"}) as consumer:
        for message in consumer.streams({"orders": 1})["orders"][0]:
            print(message.offset, message.value)
"""

from __future__ import annotations

import os
import signal
import threading

from . import _native, errors
from ._native import Consumer, Message, Stream, __version__, request_shutdown, shutdown_requested
from .errors import (
    ConfigError,
    ConfigWarning,
    ConnectionError,
    Error,
    StreamError,
    Timeout,
    UnknownTopicError,
)

__all__ = [
    "Consumer",
    "Stream",
    "Message",
    "install_signal_handlers",
    "request_shutdown",
    "shutdown_requested",
    *errors.__all__,
]

_installed = threading.Lock()
_signals_seen = 0


def _on_signal(signum: int, frame: object) -> None:
    global _signals_seen
    _signals_seen += 1
    if _signals_seen == 1:
        _native.request_shutdown()
    else:
        # A second signal: the process is stuck in shutdown or the user insists.
        os._exit(130)


def install_signal_handlers() -> None:
    """Makes the first SIGINT/SIGTERM end every stream of every consumer in the process (each
    ``close()``, or leaving a ``with`` block, then commits what was processed); a second one
    exits the process at once with status 130. Call it from the main thread. Without it,
    Python's own handlers stay (Ctrl-C raises ``KeyboardInterrupt`` in a blocked ``next()``)."""
    with _installed:
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
