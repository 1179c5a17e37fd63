"""Shared helpers for the data tests: a tiny generated synthetic dataset, configs, bad video files."""

from __future__ import annotations

import functools
import os
import tempfile

import ml_collections
import numpy as np

from configs import common, defaults
from devias_jax.data import synthetic

TINY = synthetic.Spec(num_actions=4, num_scenes=4, height=64, width=64, frames=40, train_per_action=6,
                      val_per_action=3, scene_only_per_scene=2, seed=3)


@functools.lru_cache(maxsize=None)
def tiny_dataset() -> str:
    """Generates TINY once per test process; returns its directory."""
    out = tempfile.mkdtemp(prefix="devias_synthetic_")
    synthetic.generate(out, TINY)
    return out


def data_config(root: str, **data) -> ml_collections.ConfigDict:
    """A run config with the real data/augment sections, 8 frames of 64x64 (stride 4)."""
    config = ml_collections.ConfigDict({"model": defaults.model_config("custom"), "data": defaults.data_config(),
                                        "augment": defaults.augment_config(), "eval": defaults.eval_config()})
    config.model.update(num_frames=8, img_size=64, num_actions=TINY.num_actions, num_scenes=TINY.num_scenes)
    config.eval.suites = {"val_seen": common.suite("val_seen.txt", "action,scene", "seen")}
    config.data.update(root=root, train_list="train.txt", scene_source="list",
                       decode_workers=2, prefetch_batches=1)
    config.data.update(**data)
    return config


def write_bad_files(directory: str) -> dict[str, str]:
    """One file of each undecodable kind: missing, zero bytes, truncated, garbage, a single frame."""
    os.makedirs(directory, exist_ok=True)
    good = os.path.join(directory, "good.mp4")
    rng = np.random.default_rng(0)
    synthetic.write_mp4(good, rng.integers(0, 255, (30, 32, 32, 3), dtype=np.uint8))
    paths = {kind: os.path.join(directory, f"{kind}.mp4") for kind in ("missing", "zero", "truncated",
                                                                       "garbage", "one_frame")}
    open(paths["zero"], "wb").close()
    with open(good, "rb") as handle:
        data = handle.read()
    with open(paths["truncated"], "wb") as handle:
        handle.write(data[: len(data) // 2])
    with open(paths["garbage"], "wb") as handle:
        handle.write(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    synthetic.write_mp4(paths["one_frame"], rng.integers(0, 255, (1, 32, 32, 3), dtype=np.uint8))
    return paths
