"""Scene images rendered from the synthetic dataset's backgrounds, a tiny scene teacher trained on them, and a
tiny DEVIAS trained with that teacher online (each trained once per test process)."""

from __future__ import annotations

import functools
import os
import tempfile
import types

import numpy as np

from configs import common
from devias_jax import methods, train
from devias_jax.train_augment import device_augment
from devias_jax.config_loading import load_config
from devias_jax.data import synthetic
from tests.conftest import ROOT
from tests.data_helpers import TINY
from tests.train_helpers import apply_overrides, tiny_train_config

GEOMETRY = ("num_frames", "img_size", "patch_size", "tubelet_size")  # a student's teacher follows its model


def scene_names(spec: synthetic.Spec = TINY) -> list[str]:
    """Class folder names that sort in scene-index order ('00_stripes', '01_columns', ...)."""
    return [f"{s:02d}_{synthetic.SCENES[s % len(synthetic.SCENES)]}" for s in range(spec.num_scenes)]


def write_scene_images(root: str, split: str, per_scene: int, seed: int, spec: synthetic.Spec = TINY,
                       ext: str = ".png") -> str:
    """<root>/<split>/<scene name>/<i><ext>: backgrounds of every scene of `spec` (+ pixel noise)."""
    rng = np.random.default_rng(seed)
    from PIL import Image

    for scene, name in enumerate(scene_names(spec)):
        folder = os.path.join(root, split, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_scene):
            image = synthetic.render_background(spec, scene, rng)
            image = image + rng.normal(0.0, spec.noise / 255.0, image.shape)
            pixels = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, f"{i:04d}{ext}"))
    return os.path.join(root, split)


def teacher_config(image_root: str, **overrides):
    """configs/places365_scene.py:smoke (ViT 32-d, 2 blocks, class token, 4 frames of 32x32) on the
    scene images under image_root (train/ and val/), TINY.num_scenes classes."""
    config = load_config(os.path.join(ROOT, "configs/places365_scene.py:smoke"))
    config.model.num_scenes = TINY.num_scenes
    config.data.update(root=image_root, train_list="train", decode_workers=2, prefetch_batches=1)
    config.eval.suites = {"val": common.suite("val", "scene", "seen")}
    config.eval.update(batch_size=8, scene_topk=1)
    config.augment.update(rand_augment_n=0, crop_area=(0.4, 1.0))
    config.train.update(batch_size=16, num_epochs=-1, num_steps=150, log_every_steps=50, checkpoint_every_steps=-1,
                        checkpoint_every_epochs=-1, eval_every_steps=-1, eval_every_epochs=-1, plot_curves=False)
    config.optim.update(base_lr=0.3, warmup_steps=5, warmup_epochs=-1, layer_decay=1.0, update_freq=1)
    config.checkpoint.async_save = False
    return apply_overrides(config, overrides)


def teacher_model_settings(teacher) -> dict:
    """The teacher's model fields a student's config.loss.teacher must copy to load it."""
    keys = ("variant", "embed_dim", "depth", "num_heads", "mlp_ratio", "patch_size", "tubelet_size", "num_frames",
            "img_size", "pooling", "num_prefix_tokens", "num_scenes")
    return {key: teacher.model[key] for key in keys}


@functools.lru_cache(maxsize=None)
def trained_teacher() -> types.SimpleNamespace:
    """A tiny class-token scene ViT trained (once per test process) for 150 steps on 48 rendered scene
    images of TINY's 4 scenes, with 16 held-out images as its evaluation suite."""
    base = tempfile.mkdtemp(prefix="devias_teacher_")
    images = os.path.join(base, "images")
    write_scene_images(images, "train", per_scene=12, seed=0)
    write_scene_images(images, "val", per_scene=4, seed=1)
    config = teacher_config(images)
    workdir = os.path.join(base, "run")
    result = train.train_and_evaluate(config, workdir)
    return types.SimpleNamespace(config=config, workdir=workdir, result=result)


@functools.lru_cache(maxsize=None)
def devias_with_online_teacher() -> types.SimpleNamespace:
    """A tiny DEVIAS trained 4 steps with data.scene_source='teacher' (KL to trained_teacher()), once per
    test process. `seen` holds, for every step, the clip the model trained on (after scene mixing) and the
    teacher logits the loss received, both returned by the jitted step itself: the trainer is handed an
    augmentation and a loss that add them to the step's metrics, and a step hook that collects them."""
    teacher = trained_teacher()
    settings = teacher_model_settings(teacher.config)
    config = tiny_train_config("devias", **{
        "data.scene_source": "teacher", "loss.scene_target": "teacher", "train.num_steps": 4,
        "loss.teacher.checkpoint": teacher.workdir,
        **{f"loss.teacher.{k}": v for k, v in settings.items() if k not in GEOMETRY}})
    config.eval.suites = {}  # evaluation is covered elsewhere; compiling it here would double the cost
    objective = methods.model_of(config.model).loss
    seen, stash = [], {}

    def augment(*args, **kwargs):
        clips, targets = device_augment(*args, **kwargs)
        stash["clips"] = clips  # (B, T, H, W, 3) normalised, as the model and the teacher get it (traced)
        return clips, targets

    def loss(config, outputs, targets):
        stash["targets"] = sorted(targets)
        value, metrics = objective(config, outputs, targets)
        return value, {**metrics, "seen_clips": stash["clips"], "seen_teacher_logits": targets["scene_teacher_logits"]}

    def record(step, metrics):
        seen.append((np.asarray(metrics["seen_clips"]), np.asarray(metrics["seen_teacher_logits"])))

    workdir = os.path.join(tempfile.mkdtemp(prefix="devias_online_teacher_"), "run")
    result = train.train_and_evaluate(config, workdir, augment=augment, loss=loss, step_hook=record)
    return types.SimpleNamespace(config=config, workdir=workdir, result=result, seen=seen,
                                 loss_targets=stash["targets"])
