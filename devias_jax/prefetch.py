"""Background batch prefetching with a watchdog: host batches are pulled and placed on the mesh in a
thread (overlapping the device step), and a batch that does not arrive in time is an error, not a hang
(decord has known deadlocks on some files)."""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterator


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


_END = object()  # the source is exhausted (evaluation lists end; the training stream does not)


class DevicePrefetcher:
    """Iterator over `place(batch)` for each batch of `source`, `depth` batches ahead."""

    def __init__(self, source: Iterator[Any], place: Callable[[Any], Any], depth: int = 2,
                 timeout_s: float = 600.0, describe_stuck: Callable[[], str] | None = None, what: str = "training"):
        self._source, self._place, self.timeout_s = source, place, timeout_s
        self._describe_stuck, self._what = describe_stuck, what
        self._queue: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="device-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for batch in self._source:
                if not self._put(self._place(batch)):
                    return
            self._put(_END)
        except BaseException as error:  # handed to the consumer, raised there
            self._put(_Failure(error))

    def __iter__(self) -> "DevicePrefetcher":
        return self

    def __next__(self) -> Any:
        try:
            item = self._queue.get(timeout=self.timeout_s)
        except queue.Empty:
            stuck = f"; {self._describe_stuck()}" if self._describe_stuck is not None else ""
            raise TimeoutError(f"no {self._what} batch arrived for {self.timeout_s:.0f} s: the input pipeline is "
                               f"stuck{stuck}. A file that hangs the decoder can be removed from the list; raise "
                               "config.data.batch_timeout_s if decoding is just slow.") from None
        if isinstance(item, _Failure):
            raise item.error
        if item is _END:
            self._put(_END)  # stays exhausted if asked again
            raise StopIteration
        return item

    def close(self) -> None:
        """Stops the thread and closes the source (unless the thread is stuck inside it)."""
        self._stop.set()
        close = getattr(self._source, "close", None)
        self._thread.join(timeout=5.0)
        if close is not None and not self._thread.is_alive():
            close()
