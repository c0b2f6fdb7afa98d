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
from types import FrameType
from typing import Callable, Dict, Optional, Union

from . import _native, errors
from ._native import (
    Consumer,
    Message,
    SkippingStream,
    Stream,
    __version__,
    request_shutdown,
    shutdown_requested,
    wait_for_shutdown,
)
from .errors import (
    ConfigError,
    ConfigWarning,
    ConnectionError,
    Error,
    ForeignMessageError,
    StreamError,
    Timeout,
    UnknownTopicError,
    UsageError,
)

__all__ = [
    "Consumer",
    "Stream",
    "SkippingStream",
    "Message",
    "install_signal_handlers",
    "request_shutdown",
    "shutdown_requested",
    "wait_for_shutdown",
    *errors.__all__,
]

Handler = Union[Callable[[int, Optional[FrameType]], object], int, None]

_installed = threading.Lock()
_signals_seen = 0
_previous: Dict[int, Handler] = {}
_grace = 10.0


def _chain(signum: int, frame: Optional[FrameType]) -> None:
    """Calls the handler that was installed before ours, when it is the application's own
    function (not Python's default ``KeyboardInterrupt`` raiser, ``SIG_DFL`` or ``SIG_IGN``)."""
    previous = _previous.get(signum)
    if callable(previous) and previous is not signal.default_int_handler:
        previous(signum, frame)


def _exit_if_stuck(grace: float) -> None:
    """After a second signal: the process should be gone within ``grace`` seconds (``finally``
    blocks and ``close()`` ran). If it is not, it is stuck: exit at once with status 130."""
    timer = threading.Timer(grace, os._exit, args=(130,))
    timer.daemon = True
    timer.start()


def _on_signal(signum: int, frame: Optional[FrameType]) -> None:
    global _signals_seen
    _signals_seen += 1
    if _signals_seen == 1:
        _native.request_shutdown()
        _chain(signum, frame)
    else:
        # A second signal: the user insists. Unwind the main thread (finally blocks and
        # context managers run); a process still alive after the grace period is stuck.
        _exit_if_stuck(_grace)
        raise SystemExit(130)


def install_signal_handlers(grace: float = 10.0) -> Dict[int, Handler]:
    """Makes the first SIGINT/SIGTERM end every stream of every consumer in the process (each
    ``close()``, or leaving a ``with`` block, then commits what was processed), then calls the
    handler that was installed before, if it is a Python function of the application's.

    A second signal raises ``SystemExit(130)`` in the main thread, so ``finally`` blocks and
    ``with`` blocks run; if the process is still alive ``grace`` seconds later (stuck in
    shutdown), it exits at once with status 130.

    Call it from the main thread (as ``signal.signal`` requires). Returns the handlers it
    replaced, ``{signal.SIGINT: previous, signal.SIGTERM: previous}`` (as ``signal.signal``
    returns them: a function, ``signal.SIG_DFL``, ``signal.SIG_IGN`` or None), e.g. to put them
    back. Calling it again keeps the first call's previous handlers (no chain to ourselves).
    Without it, Python's own handlers stay (Ctrl-C raises ``KeyboardInterrupt`` in a blocked
    ``next()``, and the same ``next()`` goes on at the following call)."""
    global _grace
    with _installed:
        _grace = grace
        replaced: Dict[int, Handler] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(signum, _on_signal)
            replaced[signum] = previous
            if previous is not _on_signal:
                _previous[signum] = previous
        return replaced
