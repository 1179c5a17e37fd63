"""tf.data streaming of training and evaluation batches (host side, numpy out), from any DataSource.

Training stream. Epoch e visits the list in the order perm_e = permutation(N) drawn from (seed, e)
(identity without data.shuffle); the epochs are concatenated into one infinite stream of positions
g = 0, 1, 2, ... The global batch of step s is positions [s*G, (s+1)*G) and process p reads the slice
[s*G + p*b, s*G + (p+1)*b) of it (b = G / process_count), so over an epoch the processes read
disjoint parts of the list that together cover it. Everything random about position g (the temporal
window, a replacement for a bad file, every augmentation choice) is drawn from (seed, g), so batches
do not depend on history: starting at `start_step` gives exactly the batches an uninterrupted run sees
from that step on, at no cost (nothing is decoded to skip). A file that fails to decode is counted
(failures.py) and replaced by a deterministic draw from the list; the batch marks the replacement
('substituted'), so the trainer reports exactly how many clips of each log window were replaced.

Evaluation stream. Process p reads the contiguous block [p*n, (p+1)*n) (n = ceil(N / P)) padded
with empty rows to the same number of batches on every process; padded rows and files that fail to
decode have valid=False (index -1 for padding) and must not count.

Work per element: tf.data's parallel map (data.decode_workers threads) runs the source's read and the
augmentation (decode.py, augment.py: decord and PIL release the GIL) and hands uint8 clips to one
shared tail, batch + prefetch; evaluation resizes and crops its views in TensorFlow.

Ownership: a stream builds its tf.data iterator on first use and drops it in close(), which a `with`
block calls; nothing is left for interpreter exit. While a sample is read its file is registered, so a
decoder that hangs can be named (`describe_stuck`, used by the trainer's batch watchdog).
"""

from __future__ import annotations

import abc
import gc
import math
import os
import threading
import time
from typing import Any, Callable

import numpy as np

from devias_jax.data import augment, decode, sources
from devias_jax.data.failures import FailureTracker
from devias_jax.data.tf_setup import dataset_options, import_tf

_MAX_REPLACEMENTS = 32


def num_workers(config: Any) -> int:
    if config.data.decode_workers > 0:
        return int(config.data.decode_workers)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _reason(error: Exception, path: str) -> str:
    text = str(error)
    return text[len(path) + 2:] if text.startswith(path + ": ") else text


class _Stream(abc.ABC):
    """What both streams share: the source, the failure count, the files being read right now (so a
    stuck decoder can be named) and the tf.data tail (map -> batch -> prefetch) whose iterator the stream
    owns: built on first use, dropped by close() or at the end of a `with` block."""

    def __init__(self, config: Any, source: sources.DataSource, batch_size: int):
        self.config = config
        self.source = source
        self.batch_size = batch_size
        self.num_frames = int(config.model.num_frames)
        self.img_size = int(config.model.img_size)
        self.failures = FailureTracker(config.data.max_failure_fraction, min_files=min(len(source), 50))
        self._iterator = None
        self._reading: dict[int, tuple[str, float]] = {}
        self._reading_lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __iter__(self):
        return self

    def close(self) -> None:
        """Stops the background reading and frees its threads now (never left to interpreter exit, when a
        live iterator's threads can no longer take the GIL and the process would hang)."""
        if self._iterator is not None:
            self._iterator = None
            gc.collect()  # the iterator's dataset holds this stream's read functions: a reference cycle

    @abc.abstractmethod
    def _build(self):
        """-> the numpy iterator over this stream's batches (built with `_tail`)."""

    def _read(self, name: str, read: Callable[[], tuple]) -> tuple | None:
        """`read()` with `name` registered as being read (so a hang can be named); the outcome is recorded
        in `failures`. Returns None for a sample that could not be decoded."""
        key = threading.get_ident()
        with self._reading_lock:
            self._reading[key] = (name, time.monotonic())
        try:
            value = read()
        except decode.DecodeError as error:
            self.failures.record(name, _reason(error, name))
            return None
        finally:
            with self._reading_lock:
                self._reading.pop(key, None)
        self.failures.record(name, None)
        return value

    def files_in_flight(self) -> list[tuple[str, float]]:
        """[(file, seconds it has been read for)] of every read in progress, longest first."""
        now = time.monotonic()
        with self._reading_lock:
            reading = [(name, now - start) for name, start in self._reading.values()]
        return sorted(reading, key=lambda item: -item[1])

    def describe_stuck(self) -> str:
        reading = self.files_in_flight()
        if not reading:
            return "no file was being read when the wait ran out"
        return "file(s) being read: " + ", ".join(f"{name} (for {seconds:.0f} s)" for name, seconds in reading)

    def _tail(self, dataset, element):
        """The one tf.data tail every stream uses: deterministic parallel map -> batch -> prefetch."""
        workers = num_workers(self.config)
        dataset = dataset.map(element, num_parallel_calls=workers, deterministic=True)
        dataset = dataset.batch(self.batch_size, drop_remainder=True)
        dataset = dataset.prefetch(self.config.data.prefetch_batches)
        return iter(dataset.with_options(dataset_options(workers)).as_numpy_iterator())

    def _next_values(self) -> tuple:
        tf = import_tf()
        if self._iterator is None:
            self._iterator = self._build()
        try:
            values = next(self._iterator)
        except tf.errors.OpError:
            self.failures.check()  # too many bad files is the real reason
            raise
        self.failures.check()
        return values


# ------------------------------------------------------------------------------------------ training

class TrainStream(_Stream):
    """Iterator of training batches; see the module docstring for the order and determinism contract.

    Each batch is a dict of numpy arrays, b = global_batch_size // process_count:
      'clips'  uint8 (b, T, S, S, 3) augmented, not normalised
      'action' int32 (b,)   'scene' int32 (b,) (-1 when unknown)   'index' int32 (b,) row in the list
      'substituted' bool (b,) the list's sample at this position could not be read and was replaced
    `step` is the step of the next batch; `failures` counts undecodable files.
    """

    def __init__(self, config: Any, source: sources.DataSource, *, global_batch_size: int, process_index: int,
                 process_count: int, seed: int, start_step: int = 0):
        if global_batch_size % process_count:
            raise ValueError(f"global_batch_size={global_batch_size} is not divisible by "
                             f"process_count={process_count}")
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index={process_index} not in [0, {process_count})")
        super().__init__(config, source, global_batch_size // process_count)
        self.global_batch_size = global_batch_size
        self.process_index = process_index
        self.seed = int(seed) & 0x7FFFFFFF
        self.step = self._start_step = start_step
        self._perms: dict[int, np.ndarray] = {}
        self._perm_lock = threading.Lock()

    def close(self) -> None:
        """Stops the background decoding (iterating again rebuilds the stream from `step`)."""
        super().close()
        self._start_step = self.step

    def __len__(self) -> int:
        """Steps per epoch (the trainer's notion of an epoch: N // global batch)."""
        return max(1, len(self.source) // self.global_batch_size)

    def __next__(self) -> dict[str, np.ndarray]:
        clips, action, scene, index, substituted = self._next_values()
        self.step += 1
        return {"clips": clips, "action": action, "scene": scene, "index": index, "substituted": substituted}

    # -- the pure position -> row map (no TensorFlow, no decoding) --

    def permutation(self, epoch: int) -> np.ndarray:
        with self._perm_lock:
            if epoch not in self._perms:
                size = len(self.source)
                perm = (np.random.default_rng([self.seed, epoch]).permutation(size)
                        if self.config.data.shuffle else np.arange(size))
                self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
                self._perms[epoch] = perm
            return self._perms[epoch]

    def position(self, counter: int) -> int:
        """Local element counter -> global stream position."""
        step, slot = divmod(counter, self.batch_size)
        return step * self.global_batch_size + self.process_index * self.batch_size + slot

    def row(self, position: int) -> int:
        epoch, offset = divmod(position, len(self.source))
        return int(self.permutation(epoch)[offset])

    # -- element level (numpy, runs in tf.data's threads) --

    def load(self, counter: int) -> tuple[np.ndarray, int, int, int, bool]:
        """Local element `counter` -> (augmented clip uint8 (T, S, S, 3), action, scene, list row, substituted).
        A sample that cannot be read is counted and replaced by a deterministic draw from the list."""
        position = self.position(int(counter))
        row = self.row(position)
        for attempt in range(_MAX_REPLACEMENTS + 1):
            if attempt:  # deterministic replacement for a bad file
                row = int(np.random.default_rng([self.seed, position, attempt]).integers(len(self.source)))
            name = self.source.name(row)
            if self.failures.is_bad(name):
                continue
            rng = np.random.default_rng([self.seed, position, attempt, 1])
            sample = self._read(name, lambda: self.source.read_train(row, rng))
            if sample is None:
                if self.failures.error is not None:
                    raise self.failures.error
                continue
            frames, action, scene = sample
            clip = augment.train_clip(frames, rng, self.img_size, self.config.augment)  # (n, S, S, 3)
            if len(clip) != self.num_frames:  # a still image: one augmented frame repeated in time
                clip = np.repeat(clip, self.num_frames, axis=0)
            return clip, action, scene, row, attempt > 0
        raise self.failures.fail(f"{_MAX_REPLACEMENTS + 1} files in a row could not be decoded")

    def _build(self):
        tf = import_tf()
        shape = (self.num_frames, self.img_size, self.img_size, 3)

        def load(counter):
            clip, action, scene, row, substituted = self.load(counter)
            return clip, np.int32(action), np.int32(scene), np.int32(row), np.bool_(substituted)

        @tf.autograph.experimental.do_not_convert
        def element(counter):
            clip, *scalars = tf.numpy_function(load, [counter], (tf.uint8, tf.int32, tf.int32, tf.int32, tf.bool),
                                               stateful=False)
            return (tf.ensure_shape(clip, shape), *(tf.ensure_shape(value, ()) for value in scalars))

        return self._tail(tf.data.Dataset.range(self._start_step * self.batch_size, 2 ** 62), element)


def train_batches(config: Any, *, global_batch_size: int, process_index: int, process_count: int, seed: int,
                  start_step: int = 0, source: sources.DataSource | None = None) -> TrainStream:
    """Infinite, deterministic stream of this process's training batches (default source: data.train_list)."""
    return TrainStream(config, source if source is not None else sources.get(config),
                       global_batch_size=global_batch_size, process_index=process_index,
                       process_count=process_count, seed=seed, start_step=start_step)


# ------------------------------------------------------------------------------------------ evaluation

def eval_rows(size: int, batch_size: int, process_index: int, process_count: int) -> np.ndarray:
    """This process's list rows, padded with -1 to the batch count every process shares."""
    per_process = math.ceil(size / process_count)
    num_batches = max(1, math.ceil(per_process / batch_size))
    rows = np.arange(process_index * per_process, min(size, (process_index + 1) * per_process))
    padded = np.full(num_batches * batch_size, -1, np.int64)
    padded[:len(rows)] = rows
    return padded


class EvalStream(_Stream):
    """Iterator of evaluation batches (numpy dicts), the same count on every process:
      'clips' uint8 (b, V, T, S, S, 3), V = temporal x spatial views of the source (temporal-major)
      'action', 'scene' int32 (b,) (-1 unknown)  'index' int32 (b,) (-1 padding)  'valid' bool (b,)
    """

    def __init__(self, config: Any, source: sources.DataSource, *, batch_size: int, process_index: int,
                 process_count: int):
        super().__init__(config, source, batch_size)
        self.rows = eval_rows(len(source), batch_size, process_index, process_count)
        self.short_side = int(config.data.short_side or self.img_size)
        self.num_views = source.temporal_views * source.spatial_views

    def __len__(self) -> int:
        return len(self.rows) // self.batch_size

    def __next__(self) -> dict[str, np.ndarray]:
        try:
            clips, action, scene, index, valid = self._next_values()
        except StopIteration:
            self.close()
            raise
        return {"clips": clips, "action": action, "scene": scene, "index": index, "valid": valid}

    def load(self, row: int):
        """-> frames uint8 (W, n, h, w, 3) (W = source.eval_windows), resized [h', w'], crops (Vs, 2),
        action, scene, valid."""
        row = int(row)
        source = self.source
        if row >= 0:
            sample = self._read(source.name(row), lambda: source.read_eval(row))
            if sample is not None:
                frames, action, scene = sample
                height, width = decode.resized_shape(frames.shape[2], frames.shape[3], self.short_side)
                crops = decode.spatial_crops(height, width, self.img_size, source.spatial_views)
                return (frames, np.asarray([height, width], np.int32), np.asarray(crops, np.int32),
                        np.int32(action), np.int32(scene), True)
        action, scene = source.labels(row) if row >= 0 else (-1, -1)
        side = self.img_size
        frames = np.zeros((source.eval_windows, source.frames_per_read, side, side, 3), np.uint8)
        crops = np.zeros((source.spatial_views, 2), np.int32)
        return frames, np.asarray([side, side], np.int32), crops, np.int32(action), np.int32(scene), False

    def _build(self):
        tf = import_tf()
        source, size, frames_per_clip = self.source, self.img_size, self.num_frames
        read_frames = source.frames_per_read

        @tf.autograph.experimental.do_not_convert
        def element(row):
            frames, resized, crops, action, scene, valid = tf.numpy_function(
                self.load, [row], (tf.uint8, tf.int32, tf.int32, tf.int32, tf.int32, tf.bool), stateful=False)
            frames.set_shape((source.eval_windows, read_frames, None, None, 3))
            resized.set_shape((2,))
            crops.set_shape((source.spatial_views, 2))
            clips = augment.test_views(frames, resized, crops, size, source.crop_per_window)  # (V, n, S, S, 3)
            if read_frames != frames_per_clip:  # a still image repeated in time
                clips = tf.tile(clips, (1, frames_per_clip // read_frames, 1, 1, 1))
            clips.set_shape((self.num_views, frames_per_clip, size, size, 3))
            return (clips, tf.ensure_shape(action, ()), tf.ensure_shape(scene, ()), tf.cast(row, tf.int32),
                    tf.ensure_shape(valid, ()))

        return self._tail(tf.data.Dataset.from_tensor_slices(self.rows), element)


def eval_batches(config: Any, list_path: str, *, batch_size: int, process_index: int, process_count: int,
                 source: sources.DataSource | None = None) -> EvalStream:
    """Finite stream over one evaluation list (`len()` batches on every process)."""
    return EvalStream(config, source if source is not None else sources.get(config, list_path),
                      batch_size=batch_size, process_index=process_index, process_count=process_count)
