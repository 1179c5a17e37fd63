"""Tiny training configs on the generated synthetic dataset, and parameter comparison helpers."""

from __future__ import annotations

import os

import jax
import numpy as np

from configs import common
from devias_jax import converted
from devias_jax.checkpoint import find_training_checkpoint, load_training_params
from devias_jax.config_loading import load_config
from tests.conftest import ROOT
from tests.data_helpers import TINY, tiny_dataset


def tiny_train_config(method: str = "devias", **overrides):
    """configs/demo.py shrunk by `smoke` (ViT 32-d, 2 blocks, 4 frames of 32x32) on TINY: 24 training
    clips, batch 8 (3 steps per epoch), evaluation on val_seen and scene_only."""
    config = load_config(os.path.join(ROOT, f"configs/demo.py:method={method},smoke"))
    config.data.update(root=tiny_dataset(), decode_workers=2, prefetch_batches=1)
    config.model.update(num_actions=TINY.num_actions, num_scenes=TINY.num_scenes)
    config.eval.suites = {"val_seen": common.suite("val_seen.txt", "action,scene", "seen"),
                          "scene_only": common.suite("scene_only.txt", "scene", "unseen")}
    config.eval.batch_size = 8
    config.train.update(batch_size=8, num_epochs=-1, num_steps=6, log_every_steps=2, checkpoint_every_steps=3,
                        checkpoint_every_epochs=-1, eval_every_steps=-1, eval_every_epochs=-1, plot_curves=False)
    config.optim.update(warmup_steps=1, warmup_epochs=-1)
    config.checkpoint.async_save = False
    config.augment.mix_groups = 2  # the same mixing groups whatever the device count
    return apply_overrides(config, overrides)


def apply_overrides(config, overrides: dict):
    """Sets dotted keys ('train.num_steps': 12) on a config; returns it."""
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        setattr(node, leaf, value)
    return config


def final_params(workdir: str) -> dict[str, np.ndarray]:
    """The latest checkpoint's parameters, flat {path: array}."""
    return {k: np.asarray(v) for k, v in converted.flatten(load_training_params(find_training_checkpoint(workdir))).items()}


def assert_params_equal(a: dict, b: dict, atol: float = 0.0) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        if atol == 0.0:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=atol, err_msg=key)


def device_count() -> int:
    return jax.device_count()
