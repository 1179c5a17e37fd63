"""tf.data streaming of training and evaluation batches (host side, numpy out).

Training stream. Epoch e visits the list in the order perm_e = permutation(N) drawn from (seed, e)
(identity without data.shuffle); the epochs are concatenated into one infinite stream of positions
g = 0, 1, 2, ... The global batch of step s is positions [s*G, (s+1)*G) and process p reads the slice
[s*G + p*b, s*G + (p+1)*b) of it (b = G / process_count), so over an epoch the processes read
disjoint parts of the list that together cover it. Everything random about position g (the temporal
window, a replacement for a bad file, every augmentation choice) is drawn from (seed, g), so batches
do not depend on history: starting at `start_step` gives exactly the batches an uninterrupted run sees
from that step on, at no cost (nothing is decoded to skip). A file that fails to decode is counted
and replaced by a deterministic draw from the list (a file that already failed is not read again).

Evaluation stream. Process p reads the contiguous block [p*n, (p+1)*n) (n = ceil(N / P)) padded
with empty rows to the same number of batches on every process; padded rows and files that fail to
decode have valid=False (index -1 for padding) and must not count.

Work per element: tf.data's parallel map (data.decode_workers threads) runs decode + augmentation
(decode.py, augment.py: decord and PIL release the GIL) and hands uint8 clips to batch + prefetch;
evaluation resizes and crops its views in TensorFlow. TensorFlow is imported only here (and in
augment.py's evaluation helpers) and never sees an accelerator.
"""

from __future__ import annotations

import atexit
import gc
import math
import os
import threading
import weakref
from typing import Any, Callable, Iterator

import numpy as np

from devias_jax.data import annotations as annotations_lib
from devias_jax.data import augment, decode

_TF = None
_MAX_REPLACEMENTS = 32
_TF_LOCK = threading.Lock()


def import_tf():
    """TensorFlow with every GPU hidden from it (call before any other TensorFlow use)."""
    global _TF
    with _TF_LOCK:
        if _TF is None:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            import tensorflow as tf

            try:
                tf.config.set_visible_devices([], "GPU")
            except RuntimeError:  # devices already initialised: only fine if none is a GPU
                pass
            if tf.config.get_visible_devices("GPU"):
                raise RuntimeError("TensorFlow was initialised with a visible GPU before devias_jax.data "
                                   "could hide it; import devias_jax.data before using TensorFlow")
            _TF = tf
    return _TF


# ------------------------------------------------------------------------------------------ helpers

def geometry(config: Any) -> tuple[int, int, int]:
    """(num_frames, img_size, test short side): data.* when > 0, else the model's values."""
    data = config.data
    frames = data.num_frames or config.model.num_frames
    size = data.img_size or config.model.img_size
    return frames, size, data.short_side or size


def num_workers(config: Any) -> int:
    if config.data.decode_workers > 0:
        return int(config.data.decode_workers)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _seed_words(seed: int) -> int:
    return int(seed) & 0x7FFFFFFF


_OPEN_STREAMS: "weakref.WeakSet[Any]" = weakref.WeakSet()
_CLOSE_AT_EXIT_REGISTERED = False


def _track_open(stream: Any) -> None:
    """Remembers a stream whose tf.data iterator is running. At interpreter exit a live iterator's
    destructor waits for its map threads, which can no longer take the GIL once finalisation has
    started: the process would hang instead of exiting. An atexit hook, registered after TensorFlow's
    own (so it runs before them), drops every open iterator while the interpreter is still whole."""
    global _CLOSE_AT_EXIT_REGISTERED
    _OPEN_STREAMS.add(stream)
    if not _CLOSE_AT_EXIT_REGISTERED:
        atexit.register(_close_open_streams)
        _CLOSE_AT_EXIT_REGISTERED = True


def _close_open_streams() -> None:
    for stream in list(_OPEN_STREAMS):
        stream._iterator = None
    gc.collect()


def _options(tf, workers: int):
    options = tf.data.Options()
    options.deterministic = True
    options.threading.private_threadpool_size = max(2, workers)
    options.threading.max_intra_op_parallelism = 1
    options.experimental_optimization.map_parallelization = True
    return options


def _reason(error: Exception, path: str) -> str:
    text = str(error)
    return text[len(path) + 2:] if text.startswith(path + ": ") else text


def _decoder(config: Any) -> decode.VideoDecoder:
    return decode.VideoDecoder(min_frames=config.data.min_frames,
                               decode_short_side=config.data.decode_short_side)


def _tracker(config: Any, size: int) -> decode.FailureTracker:
    return decode.FailureTracker(config.data.max_failure_fraction, min_files=min(size, 50))


# ------------------------------------------------------------------------------------------ training

class TrainStream:
    """Iterator of training batches; see the module docstring for the order and determinism contract.

    Each batch is a dict of numpy arrays, b = global_batch_size // process_count:
      'clips'  uint8 (b, T, S, S, 3) augmented, not normalised
      'action' int32 (b,)   'scene' int32 (b,) (-1 when unknown)   'index' int32 (b,) row in the list
    `step` is the step of the next batch; `failures` counts undecodable files; `annotations` is the list.
    """

    def __init__(self, config: Any, *, global_batch_size: int, process_index: int, process_count: int,
                 seed: int, start_step: int = 0, annotations: annotations_lib.Annotations | None = None):
        if global_batch_size % process_count:
            raise ValueError(f"global_batch_size={global_batch_size} is not divisible by "
                             f"process_count={process_count}")
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index={process_index} not in [0, {process_count})")
        self.config = config
        self.annotations = annotations or annotations_lib.load(config)
        self.global_batch_size = global_batch_size
        self.batch_size = global_batch_size // process_count
        self.process_index = process_index
        self.seed = _seed_words(seed)
        self.step = start_step
        self.num_frames, self.img_size, _ = geometry(config)
        self.failures = _tracker(config, len(self.annotations))
        self._decoder = _decoder(config)
        self._perms: dict[int, np.ndarray] = {}
        self._perm_lock = threading.Lock()
        self._start_step = start_step
        self._iterator = None  # built on first use: the pure position/row maps need no TensorFlow

    def close(self) -> None:
        """Stops the background decoding (the stream can be iterated again: it rebuilds from `step`)."""
        self._iterator = None
        self._start_step = self.step

    def __len__(self) -> int:
        """Steps per epoch (the trainer's notion of an epoch: N // global batch)."""
        return max(1, len(self.annotations) // self.global_batch_size)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        tf = import_tf()
        if self._iterator is None:
            self._iterator = iter(self._dataset(self._start_step).as_numpy_iterator())
            _track_open(self)
        try:
            clips, action, scene, index = next(self._iterator)
        except tf.errors.OpError:
            self.failures.check()
            raise
        self.failures.check()
        self.step += 1
        return {"clips": clips, "action": action, "scene": scene, "index": index}

    # -- element level (numpy, runs in tf.data's threads; decord releases the GIL while decoding) --

    def permutation(self, epoch: int) -> np.ndarray:
        with self._perm_lock:
            if epoch not in self._perms:
                size = len(self.annotations)
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
        epoch, offset = divmod(position, len(self.annotations))
        return int(self.permutation(epoch)[offset])

    def load(self, counter: int) -> tuple[np.ndarray, int]:
        """Local element `counter` -> (augmented clip uint8 (T, S, S, 3), list row). Runs in tf.data's
        map threads; decord and PIL release the GIL while they work."""
        return self.load_with_replacements(counter, self._read_video)

    def sample_name(self, row: int) -> str:
        """What failures are counted and reported by (the file of a row)."""
        return self.annotations.paths[row]

    def _read_video(self, row: int, rng: np.random.Generator) -> np.ndarray:
        ann, data = self.annotations, self.config.data
        frames = self._decoder.read(
            ann.paths[row], lambda n: decode.train_indices(n, self.num_frames, data.frame_stride, rng),
            is_frames=bool(ann.is_frames[row]), num_frames=int(ann.num_frames[row]))
        return augment.train_clip(frames, rng, self.img_size, self.config.augment)

    def load_with_replacements(self, counter: int, read: Callable[[int, np.random.Generator], Any]
                               ) -> tuple[Any, int]:
        """(read(row, rng), row) for local element `counter`: `read` draws every random choice from
        `rng` (seeded by the stream position and attempt) and raises decode.DecodeError for a bad
        sample, which is counted and replaced by a deterministic draw from the list."""
        position = self.position(int(counter))
        row = self.row(position)
        for attempt in range(_MAX_REPLACEMENTS + 1):
            if attempt:  # deterministic replacement for a bad file
                row = int(np.random.default_rng([self.seed, position, attempt]).integers(len(self.annotations)))
            name = self.sample_name(row)
            if self.failures.is_bad(name):
                continue
            rng = np.random.default_rng([self.seed, position, attempt, 1])
            try:
                value = read(row, rng)
            except decode.DecodeError as error:
                self.failures.record(name, _reason(error, name))
                if self.failures.error is not None:
                    raise self.failures.error
                continue
            self.failures.record(name, None)
            return value, row
        raise self.failures.fail(f"{_MAX_REPLACEMENTS + 1} files in a row could not be decoded")

    def _dataset(self, start_step: int):
        tf = import_tf()

        ann = self.annotations
        actions = tf.constant(ann.action, tf.int32)
        scenes = tf.constant(ann.scene, tf.int32)
        size, frames_per_clip = self.img_size, self.num_frames

        def load(counter):
            clip, row = self.load(counter)
            return clip, np.int32(row)

        @tf.autograph.experimental.do_not_convert
        def element(counter):
            clip, row = tf.numpy_function(load, [counter], (tf.uint8, tf.int32), stateful=False)
            clip = tf.ensure_shape(clip, (frames_per_clip, size, size, 3))
            row = tf.ensure_shape(row, ())
            return clip, tf.gather(actions, row), tf.gather(scenes, row), row

        workers = num_workers(self.config)
        dataset = tf.data.Dataset.range(start_step * self.batch_size, 2 ** 62)
        dataset = dataset.map(element, num_parallel_calls=workers, deterministic=True)
        dataset = dataset.batch(self.batch_size, drop_remainder=True)
        dataset = dataset.prefetch(self.config.data.prefetch_batches)
        return dataset.with_options(_options(tf, workers))


def train_batches(config: Any, *, global_batch_size: int, process_index: int, process_count: int,
                  seed: int, start_step: int = 0) -> TrainStream:
    """Infinite, deterministic iterator of this process's training batches (see TrainStream; image
    datasets, config.data.source != 'videos': images.ImageTrainStream)."""
    if config.data.get("source", "videos") != "videos":
        from devias_jax.data import images

        return images.ImageTrainStream(config, global_batch_size=global_batch_size, process_index=process_index,
                                       process_count=process_count, seed=seed, start_step=start_step)
    return TrainStream(config, global_batch_size=global_batch_size, process_index=process_index,
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


class EvalStream:
    """Iterator of evaluation batches (numpy dicts), the same count on every process:
      'clips' uint8 (b, V, T, S, S, 3), V = test_temporal_views * test_spatial_views (temporal-major)
      'action', 'scene' int32 (b,) (-1 unknown)  'index' int32 (b,) (-1 padding)  'valid' bool (b,)
    """

    def __init__(self, config: Any, list_path: str, *, batch_size: int, process_index: int,
                 process_count: int, annotations: annotations_lib.Annotations | None = None):
        self.config = config
        self.annotations = annotations or annotations_lib.load(config, list_path)
        self.rows = eval_rows(len(self.annotations), batch_size, process_index, process_count)
        self.batch_size = batch_size
        self.num_frames, self.img_size, self.short_side = geometry(config)
        data = config.data
        self.temporal_views, self.spatial_views = data.test_temporal_views, data.test_spatial_views
        self.num_views = self.temporal_views * self.spatial_views
        self.failures = _tracker(config, len(self.annotations))
        self._decoder = _decoder(config)
        self._iterator = None

    def __len__(self) -> int:
        return len(self.rows) // self.batch_size

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        tf = import_tf()
        if self._iterator is None:
            self._iterator = iter(self._dataset().as_numpy_iterator())
            _track_open(self)
        try:
            clips, action, scene, index, valid = next(self._iterator)
        except tf.errors.OpError:
            self.failures.check()
            raise
        self.failures.check()
        return {"clips": clips, "action": action, "scene": scene, "index": index, "valid": valid}

    def load(self, row: int):
        """-> frames uint8 (Vt, T, h, w, 3), resized [h', w'], crops (Vs, 2), valid."""
        row = int(row)
        ann, data = self.annotations, self.config.data
        if row >= 0:
            path = ann.paths[row]
            try:
                frames = self._decoder.read(
                    path, lambda n: decode.test_indices(n, self.num_frames, data.frame_stride,
                                                        self.temporal_views).reshape(-1),
                    is_frames=bool(ann.is_frames[row]), num_frames=int(ann.num_frames[row]))
            except decode.DecodeError as error:
                self.failures.record(path, _reason(error, path))
            else:
                self.failures.record(path, None)
                frames = frames.reshape((self.temporal_views, self.num_frames) + frames.shape[1:])
                height, width = decode.resized_shape(frames.shape[2], frames.shape[3], self.short_side)
                crops = decode.spatial_crops(height, width, self.img_size, self.spatial_views)
                return (frames, np.asarray([height, width], np.int32), np.asarray(crops, np.int32), True)
        side = self.img_size
        frames = np.zeros((self.temporal_views, self.num_frames, side, side, 3), np.uint8)
        crops = np.zeros((self.spatial_views, 2), np.int32)
        return frames, np.asarray([side, side], np.int32), crops, False

    def _dataset(self):
        tf = import_tf()

        ann = self.annotations
        actions = tf.constant(np.append(ann.action, -1), tf.int32)  # padding rows -> the appended -1
        scenes = tf.constant(np.append(ann.scene, -1), tf.int32)
        padding_row = len(ann)
        size = self.img_size

        @tf.autograph.experimental.do_not_convert
        def element(row):
            frames, resized, crops, valid = tf.numpy_function(
                self.load, [row], (tf.uint8, tf.int32, tf.int32, tf.bool), stateful=False)
            frames.set_shape((self.temporal_views, self.num_frames, None, None, 3))
            resized.set_shape((2,))
            crops.set_shape((self.spatial_views, 2))
            valid.set_shape(())
            clips = augment.test_views(frames, resized, crops, size)
            clips.set_shape((self.num_views, self.num_frames, size, size, 3))
            row32 = tf.cast(row, tf.int32)
            label_row = tf.where(row32 < 0, padding_row, row32)
            return clips, tf.gather(actions, label_row), tf.gather(scenes, label_row), row32, valid

        workers = num_workers(self.config)
        dataset = tf.data.Dataset.from_tensor_slices(self.rows)
        dataset = dataset.map(element, num_parallel_calls=workers, deterministic=True)
        dataset = dataset.batch(self.batch_size, drop_remainder=True)
        dataset = dataset.prefetch(self.config.data.prefetch_batches)
        return dataset.with_options(_options(tf, workers))


def eval_batches(config: Any, list_path: str, *, batch_size: int, process_index: int,
                 process_count: int) -> EvalStream:
    """Finite iterator over one evaluation list (see EvalStream; image datasets: images.ImageEvalStream,
    one view); `len()` batches on every process."""
    if config.data.get("source", "videos") != "videos":
        from devias_jax.data import images

        return images.ImageEvalStream(config, list_path, batch_size=batch_size, process_index=process_index,
                                      process_count=process_count)
    return EvalStream(config, list_path, batch_size=batch_size, process_index=process_index,
                      process_count=process_count)
