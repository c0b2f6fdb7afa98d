"""Type stubs of the native module (the Rust binding)."""

from os import PathLike
from typing import Awaitable, Callable, Dict, Iterator, List, Literal, Optional, Set, Tuple, Union

ConfigValue = Union[str, int, bool]
Offset = Union[int, Literal["earliest", "latest"]]

class Message:
    """One message: picklable, hashable, equal to another with the same fields."""

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        value: bytes,
        key: Optional[bytes] = None,
        _epoch: int = 0,
    ) -> None: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> Optional[bytes]: ...
    @property
    def value(self) -> bytes: ...

class Stream:
    """One consumer thread's stream (Java's KafkaStream). Iterating blocks until a message
    arrives and ends when the consumer closes or a shutdown is requested. Taking a message
    marks the previous one of this stream processed."""

    def __iter__(self) -> Iterator[Message]: ...
    def __next__(self) -> Message: ...
    def __aiter__(self) -> "Stream": ...
    def __anext__(self) -> Awaitable[Message]:
        """The next message for `async for` in a running asyncio loop; cancelling the await
        loses nothing (a message that arrived meanwhile is the next one)."""
    def poll(self, timeout: Optional[float] = None) -> Optional[Message]:
        """The next message, or None when none arrived within `timeout` seconds or the
        stream has ended (see `ended`)."""
    def poll_batch(self, max_records: int = 500, timeout: Optional[float] = None) -> List[Message]:
        """Up to `max_records` buffered messages of one partition after waiting like
        `poll(timeout)` for the first; [] on timeout or end. Taking the next batch marks this
        whole batch processed."""
    def skipping_errors(self) -> "SkippingStream":
        """Iteration that skips (and logs) message sets that cannot be decoded
        (`StreamError.skippable`), like the CLI's --skip-message-on-error."""
    def ack(self, message: Message) -> None:
        """Marks `message` processed; with the default `auto.ack=true` every earlier message of
        its partition too (with `auto.ack=false` each message is acknowledged on its own and
        commits stop at the lowest unacknowledged offset). ForeignMessageError (a ValueError)
        for a message this stream did not hand out."""
    @property
    def thread_id(self) -> str: ...
    @property
    def ended(self) -> bool:
        """True once iteration stopped or poll() returned None because the stream ended."""

class SkippingStream:
    """A stream's iteration that skips undecodable message sets."""

    def __iter__(self) -> Iterator[Message]: ...
    def __next__(self) -> Message: ...

class Consumer:
    """A member of a ZooKeeper-coordinated consumer group."""

    def __init__(
        self,
        zookeeper_connect: Optional[str] = None,
        group_id: Optional[str] = None,
        *,
        config: Optional[Dict[str, ConfigValue]] = None,
        config_file: Optional[Union[str, PathLike[str]]] = None,
    ) -> None: ...
    def streams(
        self, topic_counts: Dict[str, int], *, wait_for_topics: bool = False
    ) -> Dict[str, List[Stream]]: ...
    def streams_by_filter(
        self,
        *,
        whitelist: Optional[str] = None,
        blacklist: Optional[str] = None,
        count: int = 1,
    ) -> List[Stream]: ...
    def commit(
        self, message: Optional[Message] = None, *, offsets: Optional[Dict[Tuple[str, int], int]] = None
    ) -> None:
        """Commits now; the committed offset is the next one to read (`message.offset + 1`)."""
    def committed(self, topic: str, partition: int) -> Optional[int]: ...
    def position(self, topic: str, partition: int) -> Optional[int]: ...
    def seek(self, topic: str, partition: int, offset: Offset) -> int: ...
    def reset_offsets(
        self, topic: Union[str, List[str]], *, to: Offset
    ) -> Dict[Tuple[str, int], int]:
        """Before streams(): set the group's committed offsets ("earliest" replays it)."""
    def pause(self, *partitions: Tuple[str, int]) -> None: ...
    def resume(self, *partitions: Tuple[str, int]) -> None: ...
    def paused(self) -> Set[Tuple[str, int]]: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Consumer": ...
    def __exit__(self, *exc: object) -> bool: ...
    def __aenter__(self) -> Awaitable["Consumer"]: ...
    def __aexit__(self, *exc: object) -> Awaitable[None]:
        """Runs close() in the running loop's default executor."""
    def set_rebalance_listener(
        self,
        before_release: Optional[Callable[[Dict[str, Set[int]]], object]] = None,
        after_assign: Optional[Callable[[str, Dict[str, Dict[int, str]]], object]] = None,
    ) -> None: ...
    def owned_partitions(self) -> Dict[Tuple[str, int], int]: ...
    def lags(self) -> List[Dict[str, Union[str, int, None]]]: ...
    def metrics_text(self) -> str: ...
    @property
    def consumer_id(self) -> str: ...
    @property
    def group_id(self) -> str: ...

__version__: str

def request_shutdown() -> None: ...
def shutdown_requested() -> bool: ...
def wait_for_shutdown(timeout: Optional[float] = None) -> bool:
    """Blocks until a shutdown is requested (or `timeout` seconds); whether one was."""
