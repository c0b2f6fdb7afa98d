"""The exceptions of zkconsumer, rooted at :class:`Error`.

Declared here (not in the native module) so that they can extend the built-in exception a
Python programmer would catch: a :class:`ConfigError` is a ``ValueError``, a
:class:`ConnectionError` the built-in ``ConnectionError``, a :class:`Timeout` a ``TimeoutError``.
"""

from __future__ import annotations

import builtins
from typing import List, Optional


class Error(Exception):
    """Base class of every zkconsumer error."""


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
    is the full message. The stream stays usable: call ``next()`` again for the other partitions."""

    topic: Optional[str] = None
    partition: Optional[int] = None
    offset: Optional[int] = None
    reason: str = ""


class Timeout(Error, TimeoutError):
    """No message arrived within ``consumer.timeout.ms``; the stream stays usable."""


class ConfigWarning(UserWarning):
    """A configuration key zkconsumer does not know (it is ignored). The message names the key
    and, when one is close, the Java consumer key it may stand for (``enable.auto.commit`` is
    kafka-python's name for ``auto.commit.enable``)."""


__all__ = [
    "Error",
    "ConfigError",
    "ConnectionError",
    "UnknownTopicError",
    "StreamError",
    "Timeout",
    "ConfigWarning",
]
