"""Run monitoring on process 0: JSON-lines metrics, TensorBoard scalars and a console progress line; and
the console's log level (library INFO logs hidden unless asked for)."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Mapping

import numpy as np
from absl import flags, logging

METRICS_FILE = "metrics.jsonl"


def quiet_library_logs() -> None:
    """For absl entry points, inside main(): hides INFO logs (orbax's checkpointing, ours) unless the
    command line asked for them with absl's `--verbosity=0` (or `-v 0`); warnings and errors still show.
    The console then carries the progress lines and the results."""
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)


class MetricWriter:
    """Appends `{"step": s, "split": ..., name: value}` lines to <workdir>/metrics.jsonl and writes the
    same scalars to TensorBoard (<workdir>/tensorboard) when tensorboardX is installed. A no-op on
    processes other than 0."""

    def __init__(self, workdir: str, enabled: bool = True):
        self.enabled = enabled
        self._tb = None
        self.path = os.path.join(workdir, METRICS_FILE)
        if not enabled:
            return
        os.makedirs(workdir, exist_ok=True)
        try:
            from tensorboardX import SummaryWriter  # optional: the run goes on without TensorBoard files

            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
        except ImportError:  # accelerator images may lack it; the JSON lines still carry everything
            logging.warning("tensorboardX is not installed: writing %s only", METRICS_FILE)

    def write(self, step: int, scalars: Mapping[str, Any], split: str = "train") -> None:
        if not self.enabled:
            return
        clean = {k: float(v) for k, v in scalars.items()}
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"step": int(step), "split": split, **clean}) + "\n")
        if self._tb is not None:
            for name, value in clean.items():
                self._tb.add_scalar(f"{split}/{name}", value, int(step))
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(workdir: str) -> list[dict]:
    path = os.path.join(workdir, METRICS_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    """Console progress: step/total, loss terms, lr, clips/s and ETA, one line per log step."""

    def __init__(self, total_steps: int, start_step: int, clips_per_step: int, enabled: bool = True):
        self.total = total_steps
        self.clips_per_step = clips_per_step
        self.enabled = enabled
        self._last_step = start_step
        self._last_time = time.perf_counter()

    def update(self, step: int, scalars: Mapping[str, float], note: str = "") -> float:
        """Prints the line for `step` (1-based count of finished steps) with `note` at its end; returns
        clips/s since the last call."""
        now = time.perf_counter()
        steps = max(step - self._last_step, 1)
        elapsed = max(now - self._last_time, 1e-9)
        clips_per_second = steps * self.clips_per_step / elapsed
        eta = (self.total - step) * elapsed / steps
        self._last_step, self._last_time = step, now
        if self.enabled:
            terms = " ".join(f"{k}={v:.4g}" for k, v in scalars.items() if k != "lr")
            lr = scalars.get("lr")
            lr_text = f" lr={lr:.3g}" if lr is not None else ""
            width = len(str(self.total))
            note_text = f" | {note}" if note else ""
            print(f"[{step:>{width}}/{self.total}] {terms}{lr_text} | {clips_per_second:.1f} clips/s | "
                  f"ETA {_duration(eta)}{note_text}", file=sys.stdout, flush=True)
        return clips_per_second


def mean_metrics(history: list[Mapping[str, Any]]) -> dict[str, float]:
    """Averages a list of per-step metric dicts (already on the host)."""
    if not history:
        return {}
    return {k: float(np.mean([float(h[k]) for h in history])) for k in history[0]}
