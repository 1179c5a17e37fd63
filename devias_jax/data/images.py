"""Image datasets as clips (REFERENCE §8: the scene teacher sees each Places365 image repeated in time).

Two of the sources that `config.data.source` chooses between (sources.py makes that choice; the
third, `videos`, is annotation lists of videos / frame folders, annotations.py):

- `image_folder`  `data.train_list` and each suite's `list`, relative to `data.root`, is either a
                  directory `<class_name>/<image>` (labels: the class folders in sorted order, or in the
                  order of `data.classes_file`, one name a line; an evaluation folder maps its folders by
                  name onto the training folder's classes) or a list file of `path label` lines
                  (Places365's places365_train_standard.txt / places365_val.txt: a leading '/' resolves
                  under data.root, as those lists are written);
- `tfds`          `data.tfds_name` (e.g. 'places365_small') already prepared under `data.tfds_data_dir` in
                  the ArrayRecord format (random access: `tfds build places365_small
                  --file_format=array_record`); `data.train_list` and each suite's `list` are split names
                  ('train', 'validation', 'train[:10%]'). Nothing is ever downloaded.

This module only reads images and their classes; sources.ImageSource turns them into clips (one image
repeated in time) for the same streams that read videos.
"""

from __future__ import annotations

import abc
import functools
import os
from typing import Any, Sequence

import numpy as np
from PIL import Image

from devias_jax.data import annotations as annotations_lib
from devias_jax.data import decode
from devias_jax.data.tf_setup import import_tf

AnnotationError = annotations_lib.AnnotationError


# ------------------------------------------------------------------------------------------ image sets

class ImageSet(abc.ABC):
    """One split of an image dataset: `len()` images, `read(row)` -> (uint8 (h, w, 3), class label)."""

    list_path: str  # what was read: a directory, a list file or 'tfds:<name>/<split>'
    num_classes: int

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def read(self, row: int) -> tuple[np.ndarray, int]: ...

    @abc.abstractmethod
    def name(self, row: int) -> str:
        """The sample's file (or TFDS record) for messages and failure counts."""

    def label(self, row: int) -> int:
        """The class of `row` if known without reading the image, else -1."""
        return -1


class FileImages(ImageSet):
    """Image files with labels known up front (a class-folder tree or a `path label` list)."""

    def __init__(self, list_path: str, paths: Sequence[str], labels: np.ndarray, class_names: Sequence[str]):
        self.list_path = list_path
        self.paths = tuple(paths)
        self.labels = np.asarray(labels, np.int32)
        self.class_names = tuple(class_names)
        self.num_classes = len(class_names) if class_names else int(self.labels.max(initial=-1)) + 1

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, row: int) -> str:
        return self.paths[row]

    def label(self, row: int) -> int:
        return int(self.labels[row])

    def read(self, row: int) -> tuple[np.ndarray, int]:
        return read_image(self.paths[row]), int(self.labels[row])


class TfdsImages(ImageSet):
    """A TFDS split through its random-access data source (ArrayRecord); labels come with each record."""

    def __init__(self, name: str, split: str, data_dir: str, image_key: str, label_key: str):
        self.list_path = f"tfds:{name}/{split}"
        self.image_key, self.label_key = image_key, label_key
        import_tf()  # TensorFlow first, with every GPU hidden from it
        import tensorflow_datasets as tfds  # after import_tf(); only data.source='tfds' needs it

        try:
            builder = tfds.builder(name, data_dir=data_dir or None)
            self.source = builder.as_data_source(split=split)
        except Exception as error:  # not prepared, not ArrayRecord, unknown split / name
            raise AnnotationError(
                f"TFDS dataset {name!r} split {split!r} cannot be opened from "
                f"{data_dir or 'the default TFDS directory'} (config.data.tfds_name / tfds_data_dir / "
                f"train_list): {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}. "
                f"Prepare it once with `tfds build {name} --data_dir=DIR --file_format=array_record`; "
                "nothing is downloaded here") from None
        features = builder.info.features
        for key in (image_key, label_key):
            if key not in features:
                raise AnnotationError(f"TFDS dataset {name!r} has no feature {key!r} (config.data.tfds_image_key "
                                      f"/ tfds_label_key); it has {sorted(features.keys())}")
        self.num_classes = int(getattr(features[label_key], "num_classes", 0) or 0)
        self.class_names = tuple(getattr(features[label_key], "names", ()) or ())
        self._size = len(self.source)
        if self._size == 0:
            raise AnnotationError(f"TFDS {self.list_path} has no samples")

    def __len__(self) -> int:
        return self._size

    def name(self, row: int) -> str:
        return f"{self.list_path}[{row}]"

    def read(self, row: int) -> tuple[np.ndarray, int]:
        try:
            record = self.source[int(row)]
        except Exception as error:
            raise decode.DecodeError(f"{self.name(row)}: {type(error).__name__}: {str(error)[:200]}") from None
        return _rgb(np.asarray(record[self.image_key])), int(record[self.label_key])


def read_image(path: str) -> np.ndarray:
    """uint8 (h, w, 3) RGB; decode.DecodeError for a missing, empty or unreadable file."""
    if not os.path.isfile(path):
        raise decode.DecodeError(f"{path}: missing")
    if os.path.getsize(path) == 0:
        raise decode.DecodeError(f"{path}: empty (0 bytes)")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), np.uint8)
    except Exception as error:  # PIL raises UnidentifiedImageError, OSError (truncated), ...
        raise decode.DecodeError(f"{path}: {type(error).__name__}: {str(error)[:200]}") from None


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image[..., :3], np.uint8)


# ------------------------------------------------------------------------------------------ loading

def _is_image(name: str) -> bool:
    return name.lower().endswith(decode.IMAGE_EXTENSIONS)


@functools.lru_cache(maxsize=16)
def _scan_folder(directory: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """(sorted class folder names, sorted image files of each) of `directory`."""
    classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    files = []
    for name in classes:
        folder = os.path.join(directory, name)
        files.append(tuple(sorted(os.path.join(folder, e.name) for e in os.scandir(folder)
                                  if e.is_file() and _is_image(e.name))))
    return tuple(classes), tuple(files)


def _read_class_names(path: str) -> tuple[str, ...]:
    if not os.path.isfile(path):
        raise AnnotationError(f"config.data.classes_file {path!r} does not exist")
    with open(path, encoding="utf-8") as handle:
        names = tuple(line.split()[0] for line in handle if line.strip())
    if len(set(names)) != len(names):
        raise AnnotationError(f"config.data.classes_file {path!r} lists a class twice")
    return names


def _folder_images(directory: str, class_names: Sequence[str] | None) -> FileImages:
    classes, files = _scan_folder(directory)
    if not classes:
        raise AnnotationError(f"image folder {directory!r} has no class sub-folders (expected "
                              "<root>/<class_name>/<image>)")
    names = tuple(class_names) if class_names else classes
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(classes) - set(index))
    if unknown:
        raise AnnotationError(f"image folder {directory!r} has class folders {unknown[:8]} that the training "
                              f"classes ({len(names)}, from the training folder or config.data.classes_file) "
                              "do not name")
    paths, labels = [], []
    for name, class_files in zip(classes, files):
        paths.extend(class_files)
        labels.extend([index[name]] * len(class_files))
    if not paths:
        raise AnnotationError(f"image folder {directory!r} has no images ({', '.join(decode.IMAGE_EXTENSIONS)})")
    return FileImages(directory, paths, np.asarray(labels, np.int32), names)


def _list_images(list_path: str, root: str, check_files: bool) -> FileImages:
    """'path label' lines; a path with a leading '/' resolves under `root` when root is set."""
    paths, labels = [], []
    with open(list_path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            fields = raw.split()
            if not fields:
                continue
            where = f"{list_path}:{number}"
            if len(fields) != 2:
                raise AnnotationError(f"{where}: an image list line is 'path label'; got {raw.strip()!r}")
            path = fields[0].lstrip("/") if root else fields[0]
            path = annotations_lib.resolve(root, path)
            label = annotations_lib.parse_int(fields[1], where, "label")
            if label < 0:
                raise AnnotationError(f"{where}: label {label} is negative")
            if check_files and not os.path.isfile(path):
                raise AnnotationError(f"{where}: image {path!r} does not exist")
            paths.append(path)
            labels.append(label)
    if not paths:
        raise AnnotationError(f"image list {list_path!r} has no samples")
    return FileImages(list_path, paths, np.asarray(labels, np.int32), ())


@functools.lru_cache(maxsize=16)
def _open_tfds(name: str, split: str, data_dir: str, image_key: str, label_key: str) -> TfdsImages:
    return TfdsImages(name, split, data_dir, image_key, label_key)


def label_limit(config: Any) -> tuple[str, int]:
    """(config key, class count) the image labels must fit."""
    if config.data.get("image_task", "scene") == "action":
        return "num_actions", int(config.model.num_actions)
    return "num_scenes", int(config.model.num_scenes)


def open_image_set(config: Any, name: str) -> ImageSet:
    """The image set `name` (a folder, a list file or a TFDS split) under config.data.source."""
    data = config.data
    kind = data.source
    if kind == "tfds":
        if not data.tfds_name:
            raise AnnotationError("config.data.source='tfds' needs config.data.tfds_name (e.g. 'places365_small')")
        images: ImageSet = _open_tfds(data.tfds_name, name, data.tfds_data_dir, data.tfds_image_key,
                                      data.tfds_label_key)
    elif kind == "image_folder":
        resolved = annotations_lib.list_path(config, name)
        if os.path.isdir(resolved):
            class_names = None
            if data.classes_file:
                class_names = _read_class_names(annotations_lib.list_path(config, data.classes_file))
            elif data.train_list and name != data.train_list:
                train_dir = annotations_lib.list_path(config, data.train_list)
                class_names = _scan_folder(train_dir)[0] if os.path.isdir(train_dir) else None
            images = _folder_images(os.path.abspath(resolved), class_names)
        elif os.path.isfile(resolved):
            images = _list_images(resolved, data.root, data.check_files)
        else:
            raise AnnotationError(f"image set {resolved!r} (config.data.root={data.root!r} + {name!r}) is neither "
                                  "a class-folder directory nor a 'path label' list")
    else:
        raise AnnotationError(f"config.data.source={kind!r}; image sets are 'image_folder' or 'tfds'")
    key, limit = label_limit(config)
    if images.num_classes > limit:
        raise AnnotationError(f"{images.list_path}: {images.num_classes} classes, more than "
                              f"config.model.{key}={limit}")
    return images
