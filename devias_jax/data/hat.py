"""HAT (action-swapped test sets) read as released and composited on the fly (PROTOCOL §1-2).

A HAT split is a pickle `{"fgClass/fgVid": ["bgClass/bgVid", B, bg_class], ...}`: the actor of the
foreground video (its frames and soft human masks) is pasted on the inpainted frames of another video
(B frames). The paper composites every clip at test time:

- frame i of the foreground (L = the files in its frame folder) goes on background frame
  j = int(linspace(1, B, L, endpoint=False)[i]) (float64, as the authors compute it);
- the shift between the two actors is computed once per view, on its first frame: the centres of mass
  of the raw 0-255 soft masks (the foreground mask resized bicubic to the frame, the background mask
  resized bilinear to short side s = the foreground's short side), truncated to int; an empty mask
  counts as its image centre;
- the foreground is pasted where its mask > 128 on the inpainted frame resized to short side s; what
  falls outside the canvas is clipped.

Views (sources.HatSource): by default the first and last 16-frame windows (deterministic, like every
other suite), each cut into the 3 crops; with `official_windows` each of the 2 x 3 (segment, crop) views
draws its own random window as the authors' loader does (the training sampler), from a generator seeded
by (seed, row, view). A suite's folder of split pickles is listed by `split_files`. Splits are loaded
with a restricted unpickler that admits only plain containers, strings and numbers, so a pickle that
names any class or function is refused before anything in it runs.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import re
from typing import Any

import numpy as np
from PIL import Image

from devias_jax.data import decode
from devias_jax.data.annotations import AnnotationError

DATASETS = ("ucf101", "kinetics")


class ReleaseError(AnnotationError):
    """A HAT file that is missing, malformed or unsafe; the message names the file."""


# ------------------------------------------------------------------------------------------ reading

class _PlainUnpickler(pickle.Unpickler):
    """Builds only what pickle opcodes build by themselves (dict, list, tuple, str, bytes, numbers, bool,
    None). Every class or function lookup - the way a pickle runs code - is refused."""

    def __init__(self, handle, path: str):
        super().__init__(handle)
        self._path = path

    def find_class(self, module: str, name: str):
        raise ReleaseError(f"{self._path}: refused: the pickle asks for {module}.{name}; a HAT split holds only "
                           "a dict of strings and numbers (nothing was run)")

    def persistent_load(self, pid):
        raise ReleaseError(f"{self._path}: refused: the pickle uses persistent ids (nothing was run)")


@dataclasses.dataclass(frozen=True)
class Pair:
    foreground: str   # 'fgClass/fgVid'
    background: str   # 'bgClass/bgVid'
    background_frames: int  # B

    @property
    def foreground_class(self) -> str:
        return self.foreground.split("/", 1)[0]


def _as_int(value: Any, path: str, key: str) -> int:
    if isinstance(value, bool):
        raise ReleaseError(f"{path}: entry {key!r}: background length {value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():  # the UCF pickles store every field as a string
        return int(value)
    raise ReleaseError(f"{path}: entry {key!r}: background length {value!r} is not an integer")


def load_split(path: str) -> list[Pair]:
    """The (foreground, background, B) pairs of one split pickle, in the file's order."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise ReleaseError(f"{path}: cannot read the HAT split ({error})") from error
    try:
        data = _PlainUnpickler(io.BytesIO(raw), path).load()
    except ReleaseError:
        raise
    except Exception as error:  # a truncated or corrupt file: pickle raises many kinds
        raise ReleaseError(f"{path}: not a readable pickle ({type(error).__name__}: {error})") from error
    if not isinstance(data, dict):
        raise ReleaseError(f"{path}: expected a dict 'fgClass/fgVid' -> [bgClass/bgVid, B, bg_class], "
                           f"got {type(data).__name__}")
    pairs = []
    for key, value in data.items():
        if not isinstance(key, str) or "/" not in key:
            raise ReleaseError(f"{path}: key {key!r} is not 'fgClass/fgVid'")
        if not isinstance(value, (list, tuple)) or len(value) < 2 or not isinstance(value[0], str) \
                or "/" not in value[0]:
            raise ReleaseError(f"{path}: entry {key!r}: expected [bgClass/bgVid, B, bg_class], got {value!r}")
        frames = _as_int(value[1], path, key)
        if frames < 1:
            raise ReleaseError(f"{path}: entry {key!r}: background length {frames} < 1")
        pairs.append(Pair(key, value[0], frames))
    if not pairs:
        raise ReleaseError(f"{path}: the split is empty")
    return pairs


def load_labels(path: str) -> dict[str, int]:
    """labels.csv ('idx,class' lines, no header) -> class name -> index."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        raise ReleaseError(f"{path}: cannot read HAT's labels.csv ({error})") from error
    labels = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        index, sep, name = line.partition(",")
        if not sep or not index.strip().isdigit() or not name.strip():
            raise ReleaseError(f"{path}:{number}: expected 'index,class', got {line!r}")
        labels[name.strip()] = int(index)
    if not labels:
        raise ReleaseError(f"{path}: no labels")
    return labels


def labels_path_for(split_path: str) -> str:
    """The authors' loader finds labels.csv two directories above the split pickle."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(split_path))), "labels.csv")


# ------------------------------------------------------------------------------------------ layout

@dataclasses.dataclass(frozen=True)
class Layout:
    """File names of one HAT release (PROTOCOL §1): UCF-101 keeps class folders and numbers masks and
    inpainted frames from 0; Kinetics is flattened into videos/ and numbers every file from 1."""

    dataset: str
    root: str

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ReleaseError(f"HAT dataset {self.dataset!r}; expected one of {DATASETS}")

    def _video(self, key: str) -> str:
        return key if self.dataset == "ucf101" else os.path.join("videos", key.split("/", 1)[1])

    def foreground_dir(self, key: str) -> str:
        top = "rawframes" if self.dataset == "ucf101" else "original"
        return os.path.join(self.root, top, self._video(key))

    def foreground_frame(self, key: str, i: int) -> str:
        name = f"image_{i + 1:05d}.jpg" if self.dataset == "ucf101" else f"{i + 1:06d}.jpg"
        return os.path.join(self.foreground_dir(key), name)

    def mask(self, key: str, i: int) -> str:
        name = f"img_{i:05d}.png" if self.dataset == "ucf101" else f"{i + 1:06d}.png"
        return os.path.join(self.root, "seg", self._video(key), name)

    def background_frame(self, key: str, j: int) -> str:
        name = f"img_{j:05d}.jpg" if self.dataset == "ucf101" else f"{j + 1:06d}.jpg"
        return os.path.join(self.root, "inpaint", self._video(key), name)


def infer_dataset(path: str) -> str:
    """'ucf101' or 'kinetics' from a release path, as the authors' --data_prefix is read."""
    lowered = path.lower()
    found = [name for name in DATASETS if name in lowered or (name == "kinetics" and "k400" in lowered)]
    if len(found) != 1:
        raise ReleaseError(f"{path}: cannot tell the HAT dataset from the path; expected it to contain exactly one "
                           f"of {DATASETS} (or set the suite's dataset)")
    return found[0]


# ------------------------------------------------------------------------------------------ compositing

def background_index(foreground_frames: int, background_frames: int) -> np.ndarray:
    """(L,) background frame of each foreground frame: int(linspace(1, B, L, endpoint=False)) in float64
    (the exact rational floor differs where 1 + i (B - 1) / L is an integer; the authors' is this)."""
    return np.linspace(1, background_frames, foreground_frames, endpoint=False, dtype=np.float64).astype(np.int64)


def short_side_size(width: int, height: int, short: int) -> tuple[int, int]:
    """(width, height) with the short side `short` and the long side int(short * long / short_side)
    (torchvision Resize(int) on a PIL image)."""
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def centre_of_mass(mask: np.ndarray) -> tuple[float, float]:
    """(y, x) weighted by the raw 0-255 values; an empty mask gives the image centre (H / 2, W / 2)."""
    weights = mask.astype(np.float64)
    total = weights.sum()
    if total == 0:
        return mask.shape[0] / 2, mask.shape[1] / 2
    ys, xs = np.arange(mask.shape[0], dtype=np.float64), np.arange(mask.shape[1], dtype=np.float64)
    return float((weights.sum(1) * ys).sum() / total), float((weights.sum(0) * xs).sum() / total)


def paste_shift(foreground_mask: np.ndarray, background_mask: np.ndarray) -> tuple[int, int]:
    """(dy, dx) = int(centre of the background's actor - centre of the foreground's), truncated."""
    fy, fx = centre_of_mass(foreground_mask)
    by, bx = centre_of_mass(background_mask)
    return int(by - fy), int(bx - fx)


def composite_frame(foreground, foreground_mask, background, shift: tuple[int, int]) -> np.ndarray:
    """PIL foreground RGB, its mask resized to it (L), the inpainted background (RGB, already resized
    to the canvas) -> uint8 (h, w, 3): the foreground pasted at `shift` (dy, dx) where the mask > 128."""
    paste_mask = Image.fromarray(((np.asarray(foreground_mask) > 128) * 255).astype(np.uint8), "L")
    canvas = background.copy()
    canvas.paste(foreground, (shift[1], shift[0]), paste_mask)
    return np.asarray(canvas, np.uint8)


def _open(path: str, mode: str):
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except (OSError, ValueError) as error:
        raise decode.DecodeError(f"{path}: {error}") from error


def composite_window(layout: Layout, pair: Pair, indices: np.ndarray, foreground_frames: int) -> np.ndarray:
    """uint8 (T, h, w, 3): foreground frames `indices` composited on their background frames; the shift
    comes from the first of them (PROTOCOL §2.3-§2.6)."""
    mapping = background_index(foreground_frames, pair.background_frames)
    frames, shift = [], None
    for i in indices:
        i = int(i)
        foreground = _open(layout.foreground_frame(pair.foreground, i), "RGB")
        short = min(foreground.size)
        foreground_mask = _open(layout.mask(pair.foreground, i), "L").resize(foreground.size, Image.BICUBIC)
        j = int(mapping[i])
        background = _open(layout.background_frame(pair.background, j), "RGB")
        canvas_size = short_side_size(*background.size, short)
        if shift is None:
            background_mask = _open(layout.mask(pair.background, j), "L")
            background_mask = background_mask.resize(short_side_size(*background_mask.size, short), Image.BILINEAR)
            shift = paste_shift(np.asarray(foreground_mask), np.asarray(background_mask))
        frames.append(composite_frame(foreground, foreground_mask, background.resize(canvas_size, Image.BILINEAR),
                                      shift))
    if len({frame.shape for frame in frames}) != 1:
        raise decode.DecodeError(f"{layout.background_frame(pair.background, 0)}: background frames differ in size")
    return np.stack(frames)


# ------------------------------------------------------------------------------------------ source

def count_frames(directory: str) -> int:
    """L: the files in the foreground frame folder (the authors' os.listdir count)."""
    try:
        return len(os.listdir(directory))
    except OSError as error:
        raise decode.DecodeError(f"{directory}: {error}") from error


def split_files(path: str) -> list[tuple[str, str]]:
    """(split label, pickle path) of a HAT suite: one split pickle, or every `*_<k>.pickle` in a folder
    (the release's actionswap_<version>_<k>.pickle), ordered by k."""
    if os.path.isfile(path):
        return [(os.path.splitext(os.path.basename(path))[0], path)]
    if not os.path.isdir(path):
        raise ReleaseError(f"{path}: no HAT split pickle or folder of them")
    found = []
    for file in os.listdir(path):
        match = re.fullmatch(r".*_(\d+)\.pickle", file)
        if match:
            found.append((int(match.group(1)), file))
    if not found:
        raise ReleaseError(f"{path}: no split pickles ('*_<k>.pickle') in the folder")
    return [(f"split{k}", os.path.join(path, file)) for k, file in sorted(found)]
