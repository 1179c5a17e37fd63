"""Annotation lists (REFERENCE §7): parsing every official format, path resolution and label checks.

All lists are space-separated with no header, one sample per line:

- `path label`                            UCF-101, Kinetics-400, Diving48, SSv2 (action only)
- `path action_label scene_label`         lists with scene ground truth (the synthetic dataset)
- `video_id action_label scene_label`     HVU (the id gets `data.video_ext` or a known extension)
- `frame_dir num_frames label`            SCUBA frame folders (a directory of images per sample)

Paths resolve relative to `data.root` unless absolute. A three-column line is a frame folder when
`data.list_format='frames'`, or under 'auto' when the resolved path is an existing directory. A label of
-1 means "unknown" (e.g. the action of a scene-only clip); anything else outside [0, num_classes)
fails with `file:line` and the value, before any compilation.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")
LIST_FORMATS = ("auto", "video", "frames")
SCENE_SOURCES = ("list", "teacher", "none")
UNKNOWN = -1


class AnnotationError(ValueError):
    """A malformed list line, an out-of-range label or a missing file; the message names file:line."""


@dataclasses.dataclass(frozen=True)
class Annotations:
    """One parsed list. Row i of every array describes sample i (its `index` in batches)."""

    list_path: str
    paths: tuple[str, ...]           # resolved absolute paths (video file or frame directory)
    action: np.ndarray               # int32 (N,), -1 = unknown
    scene: np.ndarray                # int32 (N,), -1 = unknown / not from the list
    num_frames: np.ndarray           # int32 (N,), frame count from the list (frame folders), -1 otherwise
    is_frames: np.ndarray            # bool (N,), True for frame folders
    lines: np.ndarray                # int32 (N,), 1-based line number in list_path

    def __len__(self) -> int:
        return len(self.paths)


def resolve(root: str, path: str) -> str:
    """`path` relative to `root` unless absolute (or root is empty), normalised."""
    path = os.path.expanduser(path)
    if os.path.isabs(path) or not root:
        return os.path.normpath(path)
    return os.path.normpath(os.path.join(os.path.expanduser(root), path))


def with_extension(path: str, video_ext: str) -> str:
    """HVU-style ids have no extension: add `video_ext`, or the first known one that exists."""
    if os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS or os.path.isdir(path):
        return path
    if video_ext:
        return path + (video_ext if video_ext.startswith(".") else "." + video_ext)
    if os.path.exists(path):
        return path
    for ext in VIDEO_EXTENSIONS:
        if os.path.exists(path + ext):
            return path + ext
    return path


def parse_int(text: str, where: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise AnnotationError(f"{where}: {what} {text!r} is not an integer") from None


def _check_label(value: int, limit: int, where: str, what: str, key: str, hint: str = "") -> None:
    if value == UNKNOWN:
        return
    if not 0 <= value < limit:
        raise AnnotationError(f"{where}: {what} {value} is outside [0, {limit}) (config.data.{key}={limit}); "
                              f"use -1 for an unknown label{hint}")


def load_list(list_path: str, *, root: str = "", num_actions: int, num_scenes: int = 0,
              scene_source: str = "list", list_format: str = "auto", video_ext: str = "",
              check_files: bool = False, require_scene: bool = True) -> Annotations:
    """Parses one list. `scene_source` other than 'list' ignores a third column (scene = -1); with 'list',
    a line without a scene column is an error when `require_scene` (training) and scene -1 otherwise.

    Raises AnnotationError naming `file:line` and the offending value for a malformed line, a label out
    of range, a missing scene column when scene_source='list', or (check_files) a missing/empty file.
    """
    if list_format not in LIST_FORMATS:
        raise AnnotationError(f"list_format={list_format!r}; expected one of {list(LIST_FORMATS)}")
    if scene_source not in SCENE_SOURCES:
        raise AnnotationError(f"scene_source={scene_source!r}; expected one of {list(SCENE_SOURCES)}")
    if not os.path.isfile(list_path):
        raise AnnotationError(f"annotation list {list_path!r} does not exist")
    paths, actions, scenes, counts, frames, lines = [], [], [], [], [], []
    with open(list_path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text:
                continue
            where = f"{list_path}:{number}"
            fields = text.split()
            if len(fields) not in (2, 3):
                raise AnnotationError(f"{where}: expected 'path label', 'path action scene' or "
                                      f"'frame_dir num_frames label' (2 or 3 fields); got {len(fields)}: {text!r}")
            path = resolve(root, fields[0])
            is_frames = len(fields) == 3 and (list_format == "frames"
                                              or (list_format == "auto" and os.path.isdir(path)))
            if list_format == "frames" and len(fields) != 3:
                raise AnnotationError(f"{where}: list_format='frames' expects 'frame_dir num_frames label'; "
                                      f"got {text!r}")
            count, scene = -1, UNKNOWN
            if is_frames:
                count = parse_int(fields[1], where, "num_frames")
                if count < 1:
                    raise AnnotationError(f"{where}: num_frames {count} must be >= 1")
                action = parse_int(fields[2], where, "label")
            else:
                path = with_extension(path, video_ext)
                action = parse_int(fields[1], where, "action label")
                if len(fields) == 3:
                    scene = parse_int(fields[2], where, "scene label")
            # a 'frame_dir num_frames label' line whose folder is missing reads as 'path action scene' in auto
            # mode; say so instead of only blaming the frame count as an action label
            hint = (f" (or, if this is a 'frame_dir num_frames label' line, its frame folder {path!r} does not "
                    "exist)") if len(fields) == 3 and not is_frames and list_format == "auto" else ""
            _check_label(action, num_actions, where, "action label", "num_actions", hint)
            if scene_source == "list":
                if (len(fields) == 2 or is_frames) and require_scene:
                    raise AnnotationError(f"{where}: config.data.scene_source='list' needs a third column "
                                          f"'path action scene'; got {text!r}")
                _check_label(scene, num_scenes, where, "scene label", "num_scenes")
            else:
                scene = UNKNOWN
            if check_files:
                _check_file(path, is_frames, where)
            paths.append(path)
            actions.append(action)
            scenes.append(scene)
            counts.append(count)
            frames.append(is_frames)
            lines.append(number)
    if not paths:
        raise AnnotationError(f"annotation list {list_path!r} has no samples")
    return Annotations(list_path=list_path, paths=tuple(paths), action=np.asarray(actions, np.int32),
                       scene=np.asarray(scenes, np.int32), num_frames=np.asarray(counts, np.int32),
                       is_frames=np.asarray(frames, bool), lines=np.asarray(lines, np.int32))


def _check_file(path: str, is_frames: bool, where: str) -> None:
    if is_frames:
        if not os.path.isdir(path):
            raise AnnotationError(f"{where}: frame folder {path!r} does not exist")
    elif not os.path.isfile(path):
        raise AnnotationError(f"{where}: video {path!r} does not exist")
    elif os.path.getsize(path) == 0:
        raise AnnotationError(f"{where}: video {path!r} is empty (0 bytes)")


def list_path(config: Any, path: str) -> str:
    """A list path from the config: relative to data.root unless absolute or existing as given."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    return resolve(config.data.root, path)
