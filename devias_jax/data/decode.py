"""Frame sampling (REFERENCE §7) and decoding: decord for video files, images for frame folders.

Sampling follows the VideoMAE/DEVIAS loaders exactly:

- training: span = num_frames * stride. A video longer than the span gets end ~ U{span, ..., len-1},
  indices = linspace(end - span, end, num_frames) truncated and clipped to [end - span, end - 1]. A
  shorter one gets linspace(0, len, len // stride) padded with `len` up to num_frames, clipped to len-1.
- test: every stride-th frame from 0 (padded with the last one up to num_frames); temporal window k
  of n starts at int(k * (L - num_frames) / (n - 1)) in that list (first and last window for n = 2;
  centred for n = 1). Frames are resized so the short side is `short_side` (sizes truncated as VideoMAE
  does) and spatial crop j of m starts at int(j * (long - short_side) / (m - 1)) along the long side.

A file that cannot be decoded (missing, empty, truncated, not a video, fewer than `min_frames` frames)
raises DecodeError (failures.py counts and reports them). No TensorFlow here.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DecodeError(RuntimeError):
    """One file could not be read; the streams replace (training) or drop (evaluation) it and count it."""


# ----------------------------------------------------------------------------------------- sampling

def train_indices(length: int, num_frames: int, stride: int, rng: np.random.Generator) -> np.ndarray:
    """Training clip indices (num_frames,) int64 for a video of `length` frames (REFERENCE §7)."""
    span = num_frames * stride
    if length <= span:
        index = np.linspace(0, length, num=length // stride)
        index = np.concatenate([index, np.full(num_frames - length // stride, length)])
        return np.clip(index, 0, length - 1).astype(np.int64)
    end = int(rng.integers(span, length))  # U{span, ..., length - 1}
    start = end - span
    index = np.linspace(start, end, num=num_frames)
    return np.clip(index, start, end - 1).astype(np.int64)


def test_frame_list(length: int, num_frames: int, stride: int) -> np.ndarray:
    """Every stride-th frame from 0, padded with the last one up to num_frames: (L,) int64."""
    index = list(range(0, length, stride))
    index += [index[-1]] * max(0, num_frames - len(index))
    return np.asarray(index, np.int64)


def window_starts(length: int, window: int, views: int) -> list[int]:
    """Start of each of `views` evenly spread windows of `window` items in `length` (first and last for 2)."""
    if views == 1:
        return [max(0, (length - window) // 2)]
    step = max((length - window) / (views - 1), 0.0)
    return [int(k * step) for k in range(views)]


def test_indices(length: int, num_frames: int, stride: int, temporal_views: int) -> np.ndarray:
    """Frame indices of every temporal test view: (temporal_views, num_frames) int64."""
    frames = test_frame_list(length, num_frames, stride)
    return np.stack([frames[s:s + num_frames] for s in window_starts(len(frames), num_frames, temporal_views)])


def resized_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) after resizing the short side to `short_side` (long side truncated, as VideoMAE)."""
    if width < height:
        return int(short_side * height / width), short_side
    return short_side, int(short_side * width / height)


def spatial_crops(height: int, width: int, crop: int, views: int) -> list[tuple[int, int]]:
    """(top, left) of each square test crop of side `crop`, spread along the long side."""
    if height >= width:
        return [(s, max(0, (width - crop) // 2)) for s in window_starts(height, crop, views)]
    return [(max(0, (height - crop) // 2), s) for s in window_starts(width, crop, views)]


# ----------------------------------------------------------------------------------------- decoding

def _probe_size(path: str) -> tuple[int, int]:
    """(height, width) of the first video stream from the container header (PyAV, no decoding)."""
    import av  # on use: only the decode_short_side probe needs PyAV

    with av.open(path) as container:
        stream = container.streams.video[0]
        return int(stream.height), int(stream.width)


class VideoDecoder:
    """Reads frames by index. `decode_short_side` > 0 makes decord scale frames while decoding so that
    their short side is at most that (the size is a pure function of the file, so results never depend
    on what was decoded before).

    `cache_bytes` > 0 keeps decoded videos in memory: a video file is decoded whole on its first read
    and kept while the cache holds less than `cache_bytes`; later reads index the kept frames instead of
    decoding (a small training set, read once per epoch, then decodes once). H.264 decoding gives the
    same pixels whichever frames are asked for, so a read returns the same frames with or without the
    cache. Once a video no longer fits, nothing more is kept (no eviction). Frame folders are not cached."""

    def __init__(self, *, min_frames: int = 2, decode_short_side: int = 0, num_threads: int = 1,
                 cache_bytes: int = 0):
        self.min_frames = min_frames
        self.decode_short_side = decode_short_side
        self.num_threads = num_threads
        self.cache_bytes = int(cache_bytes)
        self._cache: dict[str, np.ndarray] = {}  # path -> every frame, uint8 (L, h, w, 3)
        self._cached_bytes = 0
        self._cache_full = self.cache_bytes <= 0
        self._cache_lock = threading.Lock()

    @property
    def cached_bytes(self) -> int:
        """Bytes of decoded frames the cache holds."""
        return self._cached_bytes

    def _keep(self, path: str, frames: np.ndarray) -> None:
        with self._cache_lock:
            if path in self._cache or self._cache_full:
                return
            if self._cached_bytes + frames.nbytes > self.cache_bytes:
                self._cache_full = True
                return
            self._cache[path] = frames
            self._cached_bytes += frames.nbytes

    def read(self, path: str, indices_for: Callable[[int], np.ndarray], *, is_frames: bool = False,
             num_frames: int = -1) -> np.ndarray:
        """Opens `path`, asks `indices_for(length)` which frames to read, returns uint8 (n, h, w, 3)."""
        if is_frames:
            return self._read_folder(path, indices_for, num_frames)
        cached = self._cache.get(path)
        if cached is not None:
            indices = np.asarray(indices_for(len(cached)), np.int64)
            return np.ascontiguousarray(cached[indices])
        if not os.path.isfile(path):
            raise DecodeError(f"{path}: missing")
        if os.path.getsize(path) == 0:
            raise DecodeError(f"{path}: empty (0 bytes)")
        import decord  # on use: not installed everywhere (the GPU machines lack it); frame folders do without

        try:
            size = {}
            if self.decode_short_side > 0:
                height, width = _probe_size(path)
                if min(height, width) > self.decode_short_side:
                    height, width = resized_shape(height, width, self.decode_short_side)
                    size = {"height": height - height % 2, "width": width - width % 2}
            reader = decord.VideoReader(path, num_threads=self.num_threads, ctx=decord.cpu(0), **size)
            length = len(reader)
            if length < self.min_frames:
                raise DecodeError(f"{path}: {length} frame(s), fewer than min_frames={self.min_frames}")
            indices = np.asarray(indices_for(length), np.int64)
            if not self._cache_full:  # decode the whole video once and keep it while the cache has room
                every = np.ascontiguousarray(reader.get_batch(list(range(length))).asnumpy(), dtype=np.uint8)
                if every.ndim == 4 and every.shape[0] == length and every.shape[-1] == 3:
                    self._keep(path, every)
                frames = every[indices]
            else:
                frames = reader.get_batch(indices.tolist()).asnumpy()
        except DecodeError:
            raise
        except Exception as error:  # decord raises RuntimeError / DECORDError; PyAV its own errors
            raise DecodeError(f"{path}: {type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
        if frames.ndim != 4 or frames.shape[0] != len(indices) or frames.shape[-1] != 3 or frames.size == 0:
            raise DecodeError(f"{path}: decoded shape {frames.shape} for {len(indices)} frames")
        return np.ascontiguousarray(frames, dtype=np.uint8)

    def _read_folder(self, path: str, indices_for, num_frames: int) -> np.ndarray:
        if not os.path.isdir(path):
            raise DecodeError(f"{path}: missing frame folder")
        files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS))
        length = min(len(files), num_frames) if num_frames > 0 else len(files)
        if length < self.min_frames:
            raise DecodeError(f"{path}: {length} frame(s), fewer than min_frames={self.min_frames}")
        frames = []
        try:
            for index in np.asarray(indices_for(length), np.int64):
                with Image.open(os.path.join(path, files[int(index)])) as image:
                    frames.append(np.asarray(image.convert("RGB"), np.uint8))
            return np.stack(frames)
        except Exception as error:
            raise DecodeError(f"{path}: {type(error).__name__}: {str(error)[:200]}") from None
