"""Miniature HAT, Scene-Only and SCUBA releases in their released on-disk formats (PROTOCOL §1-§4),
built from the synthetic generator's actors and backgrounds: the tests' fixture, and what
scripts/experiments/hat_miniature.py evaluates a demo model on.

UCF-101 naming: HAT frames rawframes/<Class>/<vid>/image_{i+1:05d}.jpg, soft masks (person probability x
255, grayscale PNG) seg/<Class>/<vid>/img_{i:05d}.png, inpainted frames inpaint/<Class>/<vid>/img_{j:05d}.jpg;
split pickles filelist/hat/ucf101/<version>/actionswap_<version>_<k>.pickle (every field a string, as the
authors' UCF pickles), labels.csv 'idx,class' two folders above; Scene-Only hat/ucf101/list.csv
'Class/vid nframes label'; SCUBA filelist/scuba/ucf101/test.csv 'vid__b nframes label' with frames
scuba/ucf101-<background>/generated_videos/<vid__b>/frame{:06d}.jpg. Kinetics numbers every file from 1
and keeps videos flat (original/videos/<vid>/{i+1:06d}.jpg ...), with integer pickle fields.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
from PIL import Image

from devias_jax.data import hat, synthetic

CLASSES = ("Rising", "Falling", "Growing")
SPEC = synthetic.Spec(num_actions=3, actions=("rise", "fall", "grow"), num_scenes=3, height=48, width=64,
                      frames=24, motion=0.25, clutter=0.5, seed=21)
VIDEOS_PER_CLASS = 2
SCUBA_BACKGROUNDS = ("places", "vqgan", "sinusoidal")
SCUBA_IMAGES = 2  # background images per clip and kind (the UCF release has 5: __0..__4)


def _save(path: str, array: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    options = {"quality": 95} if path.endswith(".jpg") else {}
    Image.fromarray(array).save(path, **options)


def _videos(spec: synthetic.Spec, classes: tuple[str, ...], per_class: int):
    """(class index, class name, video id, frames (T, H, W, 3), soft mask uint8 (T, H, W)) per video."""
    out = []
    for action, name in enumerate(classes):
        for k in range(per_class):
            rng = np.random.default_rng([spec.seed, action, k])
            frames, mask = synthetic.render_clip(spec, action, (action + k) % spec.num_scenes, rng)
            soft = np.where(mask, 230, 10).astype(np.uint8)  # a soft person probability, not 0/255
            out.append((action, name, f"v_{name}_g{k + 1:02d}_c01", frames, soft))
    return out


def write_release(root: str, dataset: str = "ucf101", spec: synthetic.Spec = SPEC,
                  classes: tuple[str, ...] = CLASSES, per_class: int = VIDEOS_PER_CLASS) -> dict:
    """Writes the miniature release under `root` (one action class per motion of `spec`, named
    `classes`); returns what a test needs to know about it."""
    if len(classes) != spec.num_actions:
        raise ValueError(f"{len(classes)} class names for {spec.num_actions} actions")
    videos = _videos(spec, classes, per_class)
    as_str = dataset == "ucf101"
    filelist = os.path.join(root, "filelist", "hat", dataset)
    os.makedirs(filelist, exist_ok=True)
    with open(os.path.join(filelist, "labels.csv"), "w") as handle:
        handle.writelines(f"{i},{name}\n" for i, name in enumerate(classes))
    layout = hat.Layout(dataset, os.path.join(root, "hat", dataset))  # the file names the reader expects
    scene_only = []
    for action, cls, vid, frames, soft in videos:
        key = f"{cls}/{vid}"
        background = synthetic.render_background(spec, (action + 1) % spec.num_scenes,
                                                 np.random.default_rng([spec.seed, 99, action]))
        background = np.clip(np.round(background * 255), 0, 255).astype(np.uint8)
        for i in range(len(frames)):
            _save(layout.foreground_frame(key, i), frames[i])
            _save(layout.mask(key, i), soft[i])
            _save(layout.background_frame(key, i), background)
        scene_only.append(f"{cls}/{vid} {len(frames)} {action}" if dataset == "ucf101" else f"{vid} {len(frames)} {action}")
    with open(os.path.join(root, "hat", dataset, "list.csv"), "w") as handle:
        handle.write("\n".join(scene_only) + "\n")
    # splits: each video's actor on the next class's background video (no pair shares a class)
    splits = {}
    for version in ("rand", "far"):
        for k in (1, 2, 3):
            pairs = {}
            for index, (action, cls, vid, frames, _) in enumerate(videos):
                other = videos[(index + per_class * k) % len(videos)]
                if other[0] == action:
                    other = videos[(index + per_class) % len(videos)]
                key = f"{cls}/{vid}"
                fields = [f"{other[1]}/{other[2]}", len(other[3]), other[0]]
                pairs[key] = [str(f) for f in fields] if as_str else fields
            if k == 3:  # split sizes differ, as in the release
                pairs.pop(next(iter(pairs)))
            path = os.path.join(filelist, version, f"actionswap_{version}_{k}.pickle")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                pickle.dump(pairs, handle, protocol=4)
            splits[(version, k)] = pairs
    # SCUBA: every video's actor pasted on still backgrounds; each background kind's folder holds every clip
    # of the one shared list (clip __b uses that kind's b-th image)
    lines = []
    for action, cls, vid, frames, soft in videos:
        for b in range(SCUBA_IMAGES):
            lines.append(f"{vid}__{b} {len(frames)} {action}")
            for kind, background_kind in enumerate(SCUBA_BACKGROUNDS):
                rng = np.random.default_rng([spec.seed, 7, action, b, kind])
                still = np.clip(np.round(synthetic.render_background(spec, kind % spec.num_scenes, rng) * 255), 0,
                                255).astype(np.uint8)
                folder = os.path.join(root, "scuba", f"{dataset}-{background_kind}")
                if dataset == "ucf101":
                    folder = os.path.join(folder, "generated_videos")
                pattern = "frame{:06d}.jpg" if dataset == "ucf101" else "{:06d}.jpg"
                for i in range(len(frames)):
                    composed = np.where(soft[i][..., None] > 128, frames[i], still)
                    _save(os.path.join(folder, f"{vid}__{b}", pattern.format(i + 1)), composed)
    scuba = os.path.join(root, "filelist", "scuba", dataset, "test.csv")
    os.makedirs(os.path.dirname(scuba), exist_ok=True)
    with open(scuba, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return {"videos": videos, "splits": splits}
