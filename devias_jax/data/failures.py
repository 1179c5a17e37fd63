"""Bad inputs: counted per distinct file, reported by name, and a stop once there are too many.

Training replaces a sample that cannot be read by a deterministic draw from the list (streams.py) and
marks the replacement in its batch ('substituted'); evaluation drops it (valid=False). Either way the
file and its reason land here: the trainer writes them to `<workdir>/bad_videos.txt`, evaluation to
`<workdir>/eval/bad_videos.txt`, and past `data.max_failure_fraction` the run stops with the list.
"""

from __future__ import annotations

import os
import threading


class DataError(RuntimeError):
    """Too many files could not be read; the message lists them."""


class FailureTracker:
    """Counts files that failed to decode (thread-safe). `check()` raises DataError once at least
    `min_files` distinct files were tried and more than `max_fraction` of them failed."""

    def __init__(self, max_fraction: float, min_files: int = 50):
        self.max_fraction = max_fraction
        self.min_files = max(1, min_files)
        self._lock = threading.Lock()
        self._tried: set[str] = set()
        self.bad: dict[str, str] = {}  # path -> reason
        self.failures = 0  # failed attempts, counting repeats
        self.error: DataError | None = None

    def record(self, path: str, reason: str | None) -> None:
        with self._lock:
            self._tried.add(path)
            if reason is not None:
                self.failures += 1
                self.bad.setdefault(path, reason)
            if self.error is None and len(self._tried) >= self.min_files and self.fraction > self.max_fraction:
                self.error = self._error(f"{len(self.bad)} of {len(self._tried)} files could not be "
                                         f"decoded, more than config.data.max_failure_fraction="
                                         f"{self.max_fraction}")

    def is_bad(self, path: str) -> bool:
        return path in self.bad

    @property
    def fraction(self) -> float:
        return len(self.bad) / max(1, len(self._tried))

    @property
    def tried(self) -> int:
        return len(self._tried)

    def fail(self, message: str) -> DataError:
        with self._lock:
            if self.error is None:
                self.error = self._error(message)
            return self.error

    def _error(self, message: str) -> DataError:
        listing = "\n".join(f"  {path}: {reason}" for path, reason in sorted(self.bad.items()))
        return DataError(f"{message}. Bad files:\n{listing}")

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def bad_files(self) -> dict[str, str]:
        """A snapshot {path: reason} of every file that failed so far."""
        with self._lock:
            return dict(self.bad)

    def summary(self) -> dict[str, int]:
        return {"files_tried": self.tried, "files_bad": len(self.bad), "failed_attempts": self.failures}


def bad_list_path(directory: str, process_index: int) -> str:
    """`<directory>/bad_videos.txt` for process 0, `bad_videos.process<p>.txt` for the others (each process
    knows only the files it read)."""
    name = "bad_videos.txt" if process_index == 0 else f"bad_videos.process{process_index}.txt"
    return os.path.join(directory, name)


def write_bad_files(path: str, bad: dict[str, str], header: str) -> None:
    """`<path>`: '# header' then one 'file<TAB>reason' line per bad file (sorted), written atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(f"# {header}\n")
        for name, reason in sorted(bad.items()):
            handle.write(f"{name}\t{reason}\n")
    os.replace(tmp, path)
