"""Where samples come from: the one place that chooses by `config.data.source`.

- `videos`        annotation lists of video files / frame folders (annotations.py, decode.py);
- `image_folder`  a `<class>/<image>` tree or a `path label` image list (images.py);
- `tfds`          a TFDS split prepared in ArrayRecord format (images.py).

`get(config, name)` opens one list (the training list by default) as a `DataSource`; `HatSource` reads
one HAT split of the release (hat.py) for the evaluation streams. The streams (streams.py) are handed a
source and never ask what kind it is; which lists a run evaluates on is the evaluators' business
(evaluators/suites.py opens each suite's list once). A source knows how many samples it
has, what each is called (for failure reports), and how to read one sample's raw frames: videos give T
frames sampled as REFERENCE §7 says, images give one frame that the stream repeats T times (augmenting
T identical frames with one plan gives the same clip at 1/T of the work). Everything random comes from
the `rng` the stream hands in, so a sample is a pure function of (seed, stream position).
"""

from __future__ import annotations

import abc
import os
from typing import Any

import numpy as np

from devias_jax.data import annotations as annotations_lib
from devias_jax.data import decode, hat, images

SOURCES = ("videos", "image_folder", "tfds")
AnnotationError = annotations_lib.AnnotationError
UNKNOWN = annotations_lib.UNKNOWN


class DataSource(abc.ABC):
    """One list of samples. Reads raise decode.DecodeError for a sample that cannot be read."""

    list_path: str          # what was opened (a list file, a folder, 'tfds:<name>/<split>')
    temporal_views: int     # evaluation windows per sample
    spatial_views: int      # evaluation crops per window
    frames_per_read: int    # frames a read returns: T, or 1 for a still image (repeated by the stream)
    # False: read_eval gives temporal_views windows, each cut into every crop (Vt x Vs views); True: it
    # gives one window per view (Vt x Vs of them, temporal-major) and view k is cut at crop k % Vs
    crop_per_window: bool = False

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def name(self, row: int) -> str:
        """The sample's file (or record) for messages and failure counts."""

    @abc.abstractmethod
    def labels(self, row: int) -> tuple[int, int]:
        """(action, scene) of `row` known without reading it; -1 = unknown."""

    @abc.abstractmethod
    def read_train(self, row: int, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
        """-> (frames uint8 (frames_per_read, h, w, 3), action, scene); random choices drawn from `rng`."""

    @abc.abstractmethod
    def read_eval(self, row: int) -> tuple[np.ndarray, int, int]:
        """-> (frames uint8 (eval_windows, frames_per_read, h, w, 3), action, scene)."""

    @property
    def eval_windows(self) -> int:
        """Windows read_eval returns: temporal_views, or one per view with crop_per_window."""
        return self.temporal_views * (self.spatial_views if self.crop_per_window else 1)


class VideoSource(DataSource):
    """An annotation list of videos or frame folders, read with decord / PIL."""

    def __init__(self, annotations: annotations_lib.Annotations, *, num_frames: int, frame_stride: int,
                 temporal_views: int, spatial_views: int, decoder: decode.VideoDecoder):
        self.annotations = annotations
        self.list_path = annotations.list_path
        self.num_frames, self.frame_stride = num_frames, frame_stride
        self.temporal_views, self.spatial_views = temporal_views, spatial_views
        self.frames_per_read = num_frames
        self.decoder = decoder

    def __len__(self) -> int:
        return len(self.annotations)

    def name(self, row: int) -> str:
        return self.annotations.paths[row]

    def labels(self, row: int) -> tuple[int, int]:
        return int(self.annotations.action[row]), int(self.annotations.scene[row])

    def _read(self, row: int, indices_for) -> np.ndarray:
        ann = self.annotations
        return self.decoder.read(ann.paths[row], indices_for, is_frames=bool(ann.is_frames[row]),
                                  num_frames=int(ann.num_frames[row]))

    def read_train(self, row, rng):
        frames = self._read(row, lambda n: decode.train_indices(n, self.num_frames, self.frame_stride, rng))
        return (frames, *self.labels(row))  # (T, h, w, 3)

    def read_eval(self, row):
        frames = self._read(row, lambda n: decode.test_indices(n, self.num_frames, self.frame_stride,
                                                               self.temporal_views).reshape(-1))
        frames = frames.reshape((self.temporal_views, self.num_frames) + frames.shape[1:])  # (Vt, T, h, w, 3)
        return (frames, *self.labels(row))


class ImageSource(DataSource):
    """An image set as one-frame clips; the image class is the scene (data.image_task='scene') or the action.
    Evaluation uses one view: the short-side resize and a centre crop."""

    temporal_views = spatial_views = frames_per_read = 1

    def __init__(self, image_set: images.ImageSet, *, image_task: str, label_key: str, label_limit: int):
        self.images = image_set
        self.list_path = image_set.list_path
        self.image_task = image_task
        self.label_key, self.label_limit = label_key, label_limit

    def __len__(self) -> int:
        return len(self.images)

    def name(self, row: int) -> str:
        return self.images.name(row)

    def _split(self, label: int) -> tuple[int, int]:
        return (label, UNKNOWN) if self.image_task == "action" else (UNKNOWN, label)

    def labels(self, row: int) -> tuple[int, int]:
        return self._split(self.images.label(row))

    def _read(self, row: int) -> tuple[np.ndarray, int, int]:
        image, label = self.images.read(row)
        if not -1 <= label < self.label_limit:  # TFDS labels are only known once read
            raise AnnotationError(f"{self.images.name(row)}: label {label} outside [0, {self.label_limit}) "
                                  f"(config.data.{self.label_key})")
        return (image[None], *self._split(label))  # (1, h, w, 3)

    def read_train(self, row, rng):
        return self._read(row)

    def read_eval(self, row):
        frames, action, scene = self._read(row)
        return frames[None], action, scene  # (1, 1, h, w, 3)


class HatSource(DataSource):
    """One HAT split as a data source for the evaluation streams (sources.DataSource's interface).

    Rows are the split's pairs in file order; the action label is labels.csv's index of the
    foreground class; the scene label is unknown here (-1): scenes of composited clips come from the
    scene teacher on the same views (evaluators/suites.py).

    Windows: the first and last strided windows (`decode.test_indices`), each cut into the spatial crops;
    with `official_windows`, as the authors' test loader, where each (segment, crop) view is its own item:
    a fresh random window (drawn like a training clip, seeded by (seed, row, view)) composited for every
    view, and view k cut at crop k % spatial_views."""

    def __init__(self, split_path: str, *, root: str, dataset: str, labels: dict[str, int], num_frames: int,
                 frame_stride: int, temporal_views: int, spatial_views: int, official_windows: bool = False,
                 seed: int = 0, num_actions: int | None = None):
        self.list_path = split_path
        self.pairs = hat.load_split(split_path)
        self.layout = hat.Layout(dataset, root)
        unknown = sorted({pair.foreground_class for pair in self.pairs} - labels.keys())
        if unknown:
            raise hat.ReleaseError(f"{split_path}: foreground classes missing from labels.csv: {unknown[:5]}")
        self.actions = np.asarray([labels[pair.foreground_class] for pair in self.pairs], np.int64)
        if num_actions is not None and (self.actions >= num_actions).any():
            raise hat.ReleaseError(f"{split_path}: labels.csv gives class index {int(self.actions.max())} >= "
                               f"config.model.num_actions={num_actions}")
        self.num_frames, self.frame_stride = num_frames, frame_stride
        self.temporal_views, self.spatial_views = temporal_views, spatial_views
        self.frames_per_read = num_frames
        self.official_windows, self.seed = official_windows, seed
        self.crop_per_window = official_windows

    def __len__(self) -> int:
        return len(self.pairs)

    def name(self, row: int) -> str:
        return self.layout.foreground_dir(self.pairs[row].foreground)

    def key(self, row: int) -> str:
        return self.pairs[row].foreground

    def labels(self, row: int) -> tuple[int, int]:
        return int(self.actions[row]), UNKNOWN

    def windows(self, row: int, length: int) -> np.ndarray:
        """(eval_windows, T) foreground frame indices of `row`'s windows."""
        if not self.official_windows:
            return decode.test_indices(length, self.num_frames, self.frame_stride, self.temporal_views)
        return np.stack([decode.train_indices(length, self.num_frames, self.frame_stride,
                                              np.random.default_rng([self.seed, row, view]))
                         for view in range(self.eval_windows)])

    def read_train(self, row, rng):
        raise hat.ReleaseError(f"{self.list_path}: HAT splits are test sets; they cannot be trained on")

    def read_eval(self, row: int) -> tuple[np.ndarray, int, int]:
        pair = self.pairs[row]
        length = hat.count_frames(self.layout.foreground_dir(pair.foreground))
        if length == 0:
            raise decode.DecodeError(f"{self.name(row)}: no frames")
        views = [hat.composite_window(self.layout, pair, window, length) for window in self.windows(row, length)]
        if len({view.shape for view in views}) != 1:
            raise decode.DecodeError(f"{self.name(row)}: views differ in size")
        return (np.stack(views), *self.labels(row))  # (eval_windows, T, h, w, 3)


def get(config: Any, name: str | None = None, root: str = "") -> DataSource:
    """The source `name` (default: config.data.train_list) of kind config.data.source; its paths resolve
    under `root` (relative to data.root; '' = data.root)."""
    data = config.data
    name = name or data.train_list
    if data.source == "videos":
        training = name == data.train_list
        # scene_source decides the TRAINING scene targets; an evaluation list is scored against its own scene
        # column whenever it has one (e.g. the teacher's pseudo labels from scripts/pseudo_scene_labels.py).
        parsed = annotations_lib.load_list(
            annotations_lib.list_path(config, name), root=os.path.join(data.root, root) if root else data.root, num_actions=config.model.num_actions,
            num_scenes=config.model.num_scenes, scene_source=data.scene_source if training else "list",
            list_format=data.list_format, video_ext=data.video_ext, check_files=data.check_files,
            require_scene=training)
        # only the training list is read again and again (once per epoch): only it keeps decoded videos
        return video_source(config, parsed, cache_mb=int(data.get("decode_cache_mb", 0)) if training else 0)
    if data.source in SOURCES:
        key, limit = images.label_limit(config)
        return ImageSource(images.open_image_set(config, name), image_task=data.image_task, label_key=key,
                           label_limit=limit)
    raise AnnotationError(f"config.data.source={data.source!r}; expected one of {list(SOURCES)}")


def video_source(config: Any, parsed: annotations_lib.Annotations, cache_mb: int = 0) -> VideoSource:
    """An already parsed list as a VideoSource with the config's clip geometry and decoder settings;
    `cache_mb` > 0 keeps that many MiB of decoded videos in memory (decode.VideoDecoder)."""
    data, model = config.data, config.model
    return VideoSource(parsed, num_frames=int(model.num_frames), frame_stride=int(data.frame_stride),
                       temporal_views=int(data.test_temporal_views), spatial_views=int(data.test_spatial_views),
                       decoder=decode.VideoDecoder(min_frames=data.min_frames, decode_short_side=data.decode_short_side,
                                                   cache_bytes=cache_mb * 2**20))
