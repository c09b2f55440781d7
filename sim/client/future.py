"""Futures of sends: kafka-python's `FutureRecordMetadata` and `RecordMetadata`.

`send()` returns a `FutureRecordMetadata` at once; it completes when the
Sender hears back (or gives up). Callbacks and errbacks run in simulated
time, in completion order; a raising callback is logged to the trace and
does not break the Sender (kafka-python logs and carries on too).

`get(timeout)` advances the simulation until the future is done, because
in a simulation nothing else would: the `driver` is the Cluster's
`run_until`. The timeout is in simulated seconds, as kafka-python's is in
real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from sim.errors import KafkaError, KafkaTimeoutError


class RecordMetadata(NamedTuple):
    """Where a record landed (kafka-python's namedtuple of the same name)."""

    topic: str
    partition: int
    topic_partition: tuple[str, int]
    offset: int
    timestamp: int
    checksum: int | None
    serialized_key_size: int
    serialized_value_size: int
    serialized_header_size: int


Driver = Callable[[Callable[[], bool], float | None], None]
"""run_until(predicate, timeout_ms): advance the simulation until predicate() or timeout."""


class Future:
    """A minimal kafka-python `Future`: value or exception, callbacks, errbacks."""

    error_on_callbacks = False

    def __init__(
        self, driver: Driver | None = None, on_callback_error: Callable[[str], None] | None = None
    ) -> None:
        self.is_done = False
        self.value: Any = None
        self.exception: BaseException | None = None
        self._callbacks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._errbacks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._driver = driver
        self._on_callback_error = on_callback_error

    def succeeded(self) -> bool:
        return self.is_done and self.exception is None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None

    def retriable(self) -> bool:
        return bool(getattr(self.exception, "retriable", False))

    def success(self, value: Any) -> Future:
        assert not self.is_done, "Future is already complete"
        self.value = value
        self.is_done = True
        for fn, args in self._callbacks:
            self._call(fn, *args, value)
        return self

    def failure(self, error: BaseException | type[BaseException]) -> Future:
        assert not self.is_done, "Future is already complete"
        self.exception = error() if isinstance(error, type) else error
        self.is_done = True
        for fn, args in self._errbacks:
            self._call(fn, *args, self.exception)
        return self

    def add_callback(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        fn = _bind(f, kwargs)
        if self.is_done and self.exception is None:
            self._call(fn, *args, self.value)
        elif not self.is_done:
            self._callbacks.append((fn, args))
        return self

    def add_errback(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        fn = _bind(f, kwargs)
        if self.is_done and self.exception is not None:
            self._call(fn, *args, self.exception)
        elif not self.is_done:
            self._errbacks.append((fn, args))
        return self

    def add_both(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        self.add_callback(f, *args, **kwargs)
        self.add_errback(f, *args, **kwargs)
        return self

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # A user callback must not break the Sender.
            if self._on_callback_error is not None:
                self._on_callback_error(f"{type(exc).__name__}: {exc}")

    def get(self, timeout: float | None = None) -> Any:
        """Wait (in simulated time) for the result; raise its error if it failed.

        Args:
            timeout: seconds of simulated time; None waits as long as it takes.
        """
        if not self.is_done and self._driver is not None:
            self._driver(lambda: self.is_done, None if timeout is None else timeout * 1000.0)
        if not self.is_done:
            raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")
        if self.exception is not None:
            raise self.exception
        return self.value


class FutureRecordMetadata(Future):
    """The future of one record; completes with `RecordMetadata`."""

    def __init__(
        self,
        topic: str,
        partition: int,
        key_size: int,
        value_size: int,
        timestamp_ms: int,
        driver: Driver | None = None,
        on_callback_error: Callable[[str], None] | None = None,
        header_size: int = -1,
    ) -> None:
        super().__init__(driver, on_callback_error)
        self.topic = topic
        self.partition = partition
        self._key_size = key_size
        self._value_size = value_size
        self._timestamp_ms = timestamp_ms
        self._header_size = header_size

    def complete(self, offset: int, error: KafkaError | None) -> None:
        if error is not None:
            self.failure(error)
            return
        self.success(
            RecordMetadata(
                self.topic,
                self.partition,
                (self.topic, self.partition),
                offset,
                self._timestamp_ms,
                None,
                self._key_size,
                self._value_size,
                self._header_size,
            )
        )


def _bind(f: Callable[..., Any], kwargs: dict[str, Any]) -> Callable[..., Any]:
    if not kwargs:
        return f
    return lambda *args: f(*args, **kwargs)
