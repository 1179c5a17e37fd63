"""An in-memory learning probe: does a method learn the synthetic motions, and how fast?

Renders a synthetic action/scene dataset straight into memory (devias_jax/data/synthetic.py, no video
encoding or decoding), trains a method of configs/demo.py with the trainer's own jitted step
(`train.build_step`: FAME masks, scene mix, matching and losses as in a real run) on one device, and
scores action and scene top-1 on val_seen / val_unseen (one centred temporal view, no crops). Training
clips get no spatial augmentation (the temporal window is drawn like the trainer's). Used by
scripts/experiments/slot_learning_probe.py and by the learning test (tests/test_learning.py). The
scene-mix oracle (`render_with_oracles`, `oracle_augment`; slot_learning_probe.py --mix_*) mixes with
what the generator knows and FAME guesses: actor-free backgrounds and the true actor masks; it is the
trainer's own augmentation handed another scene-mix function (`build_step(augment=...)`), nothing patched.
"""

from __future__ import annotations

import ast
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from devias_jax import sharding
from devias_jax import train as trainer
from devias_jax.config_loading import load_config
from devias_jax.config_validation import validate
from devias_jax.data import decode, synthetic
from devias_jax.preprocess import normalize_uint8
from devias_jax.train_augment import device_augment

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository (configs/)

DEMO_SPEC = dict(actions=("rise", "fall", "grow", "shrink", "sway", "spin"), num_actions=6, num_scenes=6,
                 motion=0.2, clutter=0.3, train_per_action=80)


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def spec_from_text(text: str) -> synthetic.Spec:
    """DEMO_SPEC with comma-separated key=value overrides (actions joined by '+')."""
    fields = dict(DEMO_SPEC)
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        fields[key.strip()] = _literal(value)
    if isinstance(fields.get("actions"), str):
        fields["actions"] = tuple(fields["actions"].split("+"))
        fields["num_actions"] = len(fields["actions"])
    return synthetic.Spec(**fields)


def render_split(spec: synthetic.Spec, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames uint8 (N, T, H, W, 3), action (N,), scene (N,)) of one split, as the generator draws them."""
    layout = synthetic.plan(spec)[split]
    frames = np.empty((len(layout), spec.frames, spec.height, spec.width, 3), np.uint8)
    for number, (action, scene) in enumerate(layout):
        rng = np.random.default_rng([spec.seed, synthetic.SPLITS.index(split), number])
        frames[number] = synthetic.render_clip(spec, action, scene, rng)[0]
    labels = np.asarray(layout, np.int32).reshape(-1, 2)
    return frames, labels[:, 0], labels[:, 1]


def method_config(method: str, overrides: list[str], seed: int, num_actions: int, num_scenes: int):
    config = load_config(os.path.join(_ROOT, "configs", f"demo.py:method={method}"))
    config.seed = seed
    config.model.update(num_actions=num_actions, num_scenes=num_scenes)
    for item in overrides:
        key, _, value = item.partition("=")
        node = config
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node[part]
        setattr(node, leaf, _literal(value))
    validate(config)
    return config


def evaluate(predict, params, clips: np.ndarray, action: np.ndarray, scene: np.ndarray, batch: int = 64):
    """Action and scene top-1 (%) of `clips` (N, T, H, W, 3), and the action top-1 (%) of each class."""
    action_pred, scene_pred = [], []
    for start in range(0, len(clips), batch):
        out = predict(params, clips[start:start + batch])
        action_pred.append(np.asarray(out["action_logits"]).argmax(-1))
        if "scene_logits" in out:
            scene_pred.append(np.asarray(out["scene_logits"]).argmax(-1))
    action_pred = np.concatenate(action_pred)
    per_class = [round(100.0 * float((action_pred[action == c] == c).mean()), 1) for c in np.unique(action)]
    scene_top1 = 100.0 * float((np.concatenate(scene_pred) == scene).mean()) if scene_pred else float("nan")
    return 100.0 * float((action_pred == action).mean()), scene_top1, per_class


def run_method(method: str, spec: synthetic.Spec, train, evals, *, steps: int, eval_every: int,
               overrides: list[str] = (), seed: int = 0, out_file: str = "", label: str = "",
               log=print, augment: trainer.Augment = device_augment) -> list[dict]:
    """Trains `method` for `steps` with the trainer's step (its augmentation: `augment`) on the rendered
    `train` split and scores `evals` (name -> (clips, action, scene)) every `eval_every` steps; returns one
    record per evaluation."""
    config = method_config(method, list(overrides), seed, spec.num_actions, spec.num_scenes)
    frames_per_clip, stride = int(config.model.num_frames), int(config.data.frame_stride)
    batch_size = int(config.train.batch_size)
    mesh = sharding.make_mesh(1, num_devices=1)
    parts = trainer.build_step(config, mesh, global_batch=batch_size, total_steps=steps,
                               warmup_steps=max(1, steps // 15), augment=augment)
    state = parts.init_state(jax.random.fold_in(jax.random.key(config.seed), 0))

    @jax.jit
    def predict(params, clips):
        return nnx.merge(parts.graphdef, params)(normalize_uint8(clips), train=False)

    clips, actions, scenes = train
    rng = np.random.default_rng([seed, 17])
    rows_log, start, losses = [], time.time(), []
    for step in range(1, steps + 1):
        rows = rng.integers(0, len(clips), batch_size)
        batch = np.stack([clips[r][decode.train_indices(clips.shape[1], frames_per_clip, stride, rng)] for r in rows])
        placed = sharding.to_global({"clips": batch, "action": actions[rows], "scene": scenes[rows],
                                     "index": rows.astype(np.int32)}, mesh)
        state, metrics = parts.train_step(state, placed, parts.frozen)
        losses.append(metrics)
        if step % eval_every == 0 or step == steps:
            host = jax.device_get(losses)
            losses = []
            record = {"method": method, "step": step, "seconds": round(time.time() - start, 1),
                      "set": list(overrides), "data": label, "seed": seed}
            record.update({k: round(float(np.mean([h[k] for h in host])), 4) for k in host[0]
                           if k.startswith("loss") or k == "matched_action_slot0"})
            for name, (eval_clips, eval_action, eval_scene) in evals.items():
                (record[f"{name}_action"], record[f"{name}_scene"],
                 record[f"{name}_action_per_class"]) = evaluate(predict, state["params"], eval_clips, eval_action,
                                                                eval_scene)
            log(json.dumps(record))
            rows_log.append(record)
            if out_file:
                with open(out_file, "a") as handle:
                    handle.write(json.dumps(record) + "\n")
    return rows_log


def render_evals(spec: synthetic.Spec, config) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """val_seen / val_unseen as (centred test window of the config's geometry, action, scene)."""
    index = decode.test_indices(spec.frames, int(config.model.num_frames), int(config.data.frame_stride), 1)[0]
    evals = {}
    for split in ("val_seen", "val_unseen"):
        clips, action, scene = render_split(spec, split)
        evals[split] = (clips[:, index], action, scene)
    return evals


# ------------------------------------------------------------------ the scene-mix oracle probe

def render_with_oracles(spec: synthetic.Spec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training split as (N, T, H, W, 7) uint8: the clip, its actor-free render, the true actor mask x 255."""
    layout = synthetic.plan(spec)["train"]
    split = synthetic.SPLITS.index("train")
    frames = np.empty((len(layout), spec.frames, spec.height, spec.width, 7), np.uint8)
    for number, (action, scene) in enumerate(layout):
        clip, actor = synthetic.render_clip(spec, action, scene, np.random.default_rng([spec.seed, split, number]))
        # the same draw without the actor: render_background comes first, so scene and texture match
        frames[number, ..., 3:6] = synthetic.render_clip(spec, -1, scene,
                                                         np.random.default_rng([spec.seed, split, number]))[0]
        frames[number, ..., :3] = clip
        frames[number, ..., 6] = actor.astype(np.uint8) * 255
    labels = np.asarray(layout, np.int32).reshape(-1, 2)
    return frames, labels[:, 0], labels[:, 1]


def oracle_augment(background: str, paste: str) -> trainer.Augment:
    """The trainer's augmentation (train_augment.device_augment) with a scene mix that takes its pixels from
    the oracle channels of render_with_oracles' clips (FAME targets, the scene label swap and the rest
    unchanged)."""

    def augment(config, key, clips01, targets, **options):
        clips01, actor_free, actor = clips01[..., :3], clips01[..., 3:6], clips01[..., 6:7]  # (B, T, H, W, c)

        def mix(key, clips, clip_mask, prob, groups=1, **choices):
            if groups != 1:
                raise ValueError("the oracle probe runs on one device (one mixing group)")
            chosen = {name: value for name, value in choices.items()
                      if value != {"background": "clip", "partner": "random"}.get(name)}
            if chosen:  # the oracle replaces these choices: refuse rather than ignore them
                raise ValueError(f"the scene-mix oracle replaces augment.scene_mix_{'/'.join(chosen)}; "
                                 f"leave {chosen} at the official default")
            perm_key, keep_key = jax.random.split(key)
            size = clips.shape[0]
            perm = jax.random.permutation(perm_key, size)
            mixed = jax.random.uniform(keep_key, (size,)) < prob
            where = actor > 0.5 if paste == "true" else (clip_mask > 0.5)[:, None, :, :, None]
            backgrounds = (actor_free if background == "actor_free" else clips)[perm]
            out = jnp.where(mixed[:, None, None, None, None], jnp.where(where, clips, backgrounds), clips)
            return out, jnp.where(mixed, perm, jnp.arange(size)).astype(jnp.int32), mixed

        return device_augment(config, key, clips01, targets, scene_mix=mix, **options)

    return augment
