"""The exceptions of zkconsumer, rooted at :class:`Error`.

Declared here (not in the native module) so that they can extend the built-in exception a
Python programmer would catch: a :class:`ConfigError` is a ``ValueError``, a
:class:`ConnectionError` the built-in ``ConnectionError``, a :class:`Timeout` a ``TimeoutError``,
a :class:`UsageError` a ``RuntimeError``, a :class:`ForeignMessageError` a ``ValueError``.

Every exception keeps its attributes when pickled (handed across a process pool), and can be
built with them as keywords: ``StreamError("...", topic="t", partition=0, offset=5)``.
"""

from __future__ import annotations

import builtins
from typing import List, Optional


class Error(Exception):
    """Base class of every zkconsumer error.

    Keyword arguments become attributes (``Error("msg", key="k").key == "k"``); pickling keeps
    them (``BaseException`` pickles ``args`` and the instance ``__dict__``).
    """

    def __init__(self, *args: object, **attributes: object) -> None:
        super().__init__(*args)
        for name, value in attributes.items():
            setattr(self, name, value)


class ConfigError(Error, ValueError):
    """A configuration key has a value that cannot be used (or a required key is missing).

    ``key`` and ``value`` name what is wrong when known; the message says what is expected.
    """

    key: Optional[str] = None
    value: Optional[str] = None


class ConnectionError(Error, builtins.ConnectionError):  # noqa: A001 - the package's own
    """ZooKeeper cannot be reached or failed (connect, registration, a ZooKeeper offset commit)."""


class UnknownTopicError(Error, LookupError):
    """Subscribed topics do not exist (``topics`` lists them)."""

    topics: List[str] = []


class StreamError(Error):
    """A partition of a stream cannot make progress (oversized or undecodable message,
    corrupt offset). ``topic``, ``partition`` and ``offset`` name it when known, ``reason``
    is the full message. The stream stays usable: call ``next()`` again for the other partitions.

    ``skippable`` is True for a message set that cannot be decoded: taking the next message
    skips it (its offsets become committable), as Java's console consumer does with
    ``--skip-message-on-error``; ``stream.skipping_errors()`` iterates that way. An application
    that must not lose data stops instead. An oversized message (not skippable) says which key
    to raise (``fetch.message.max.bytes``)."""

    topic: Optional[str] = None
    partition: Optional[int] = None
    offset: Optional[int] = None
    reason: str = ""
    skippable: bool = False


class Timeout(Error, TimeoutError):
    """No message arrived within ``consumer.timeout.ms``; the stream stays usable."""


class ConfigWarning(UserWarning):
    """A configuration key zkconsumer does not know (it is ignored). The message names the key
    and, when one is close, the Java consumer key it may stand for (``enable.auto.commit`` is
    kafka-python's name for ``auto.commit.enable``)."""


class UsageError(Error, RuntimeError):
    """A call that cannot be made in this state: streams created twice, a stream read by two
    threads (or tasks) at once, a blocking call inside a rebalance listener callback, an object
    used in a child process after ``fork()``, a consumer used after ``close()``, an operation on a
    partition this member does not own (seek, pause, commit of given offsets)."""


class ForeignMessageError(Error, ValueError):
    """``stream.ack(message)`` for a message that stream did not hand out (acknowledge with the
    stream it came from). ``topic``, ``partition``, ``offset`` name the message, ``thread_id``
    the stream."""

    topic: Optional[str] = None
    partition: Optional[int] = None
    offset: Optional[int] = None
    thread_id: Optional[str] = None


__all__ = [
    "Error",
    "ConfigError",
    "ConnectionError",
    "UnknownTopicError",
    "StreamError",
    "Timeout",
    "ConfigWarning",
    "UsageError",
    "ForeignMessageError",
]
