"""The paper's baselines (REFERENCE §9, supplementary C): One-Token, Two-Token, action-only / scene-only ViT.

All are VideoMAE ViTs with the authors' parameter names, so their checkpoints convert with the generic
rule (plus `scene_token` for Two-Token):

- One-Token: pooled feature (mean + fc_norm by default, or the class token with pooling='cls') ->
  `head` (C_a) and `scene_head` (C_s), or one unified `head` (C_a + C_s) with `unified_head`.
- Two-Token: a class token at position 0 (action) and a scene token appended after the patches
  (sinusoid table over N + 2 positions), final `norm`; heads as above, action head on the class token,
  scene head on the scene token.
- action_vit / scene_vit: a plain classifier on action / scene labels. The Places365 scene teacher is a
  scene_vit with pooling='cls', one prefix token and 365 classes.

Debiasing augmentations (FAME, BE) act on the clips before the model, so every baseline accepts them.
Unified-head models also return `logits` (B, 2, C_a + C_s): row 0 scores the action feature, row 1 the
scene feature, so the loss can apply L_DE with a fixed assignment.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from devias_jax.key_maps import default_torch_key
from devias_jax.models.devias import class_counts
from devias_jax.models.vit import (VisionTransformer, ViTConfig, encode, encoder_parts, fc_norm_for,
                                   split_sequence, trunc_normal_linear, vit_config_from)

TASKS = ("action", "scene")


class _TwoTaskViT(nnx.Module):
    """The ViT encoder's parts (vit.encoder_parts, under their own names) with action and scene heads, or
    one unified head, on two (B, D) features: a subclass's `task_features(parts)` picks them from
    vit.split_sequence's outputs."""

    def __init__(self, cfg: ViTConfig, counts: tuple[int, int], model_config: Any, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.num_actions, self.num_scenes = counts  # (C_a, C_s)
        self.unified_head = bool(model_config.unified_head)
        self.patch_embed, self.cls_token, self.suffix_token, self.blocks, self.norm = encoder_parts(cfg, rngs)
        self.fc_norm = fc_norm_for(cfg, rngs)
        dim, dtype, bounds = cfg.embed_dim, cfg.compute_dtype, cfg.init_bounds
        init_scale = float(model_config.head_init_scale)
        self.head_dropout = nnx.Dropout(float(model_config.head_dropout))
        head_width = self.num_actions + (self.num_scenes if self.unified_head else 0)
        self.head = trunc_normal_linear(dim, head_width, rngs, dtype, bounds, init_scale=init_scale)
        self.scene_head = (None if self.unified_head else
                           trunc_normal_linear(dim, self.num_scenes, rngs, dtype, bounds, init_scale=init_scale))

    def encode(self, clips: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        return encode(self.cfg, self, clips, train, rngs)  # (B, P + N + S, D)

    def __call__(self, clips: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
        parts = split_sequence(self.cfg, self.encode(clips, train, rngs), self.fc_norm)
        action_feature, scene_feature = self.task_features(parts)
        action_in = self.head_dropout(action_feature, deterministic=not train, rngs=rngs)
        scene_in = self.head_dropout(scene_feature, deterministic=not train, rngs=rngs)
        out = {"action_feature": action_feature, "scene_feature": scene_feature}
        if self.unified_head:
            logits = jnp.stack([self.head(action_in), self.head(scene_in)], axis=1).astype(jnp.float32)  # (B, 2, C)
            out.update(logits=logits, action_logits=logits[:, 0, :self.num_actions],
                       scene_logits=logits[:, 1, self.num_actions:])
        else:
            out.update(action_logits=self.head(action_in).astype(jnp.float32),
                       scene_logits=self.scene_head(scene_in).astype(jnp.float32))
        out["tokens"] = parts["tokens"]  # (B, N, D)
        return out


class OneToken(_TwoTaskViT):
    """One pooled feature, action and scene predicted from it (multi-task VideoMAE classifier)."""

    def __init__(self, model_config: Any, *, rngs: nnx.Rngs):
        counts = class_counts(model_config)
        if model_config.pooling == "none":
            raise ValueError("config.model.pooling='none' leaves One-Token without a feature; use 'mean' or 'cls'")
        super().__init__(vit_config_from(model_config, num_classes=0, num_suffix_tokens=0), counts, model_config,
                         rngs=rngs)

    @staticmethod
    def task_features(parts: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        return parts["pooled"], parts["pooled"]  # (B, D) twice


class TwoToken(_TwoTaskViT):
    """Class token (position 0) for action and a scene token (position N + 1) for scene."""

    def __init__(self, model_config: Any, *, rngs: nnx.Rngs):
        counts = class_counts(model_config)
        super().__init__(vit_config_from(model_config, pooling="none", num_classes=0, num_prefix_tokens=1,
                                         num_suffix_tokens=1, head_dropout=0.0), counts, model_config, rngs=rngs)

    @staticmethod
    def task_features(parts: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        return parts["prefix_tokens"][:, 0], parts["suffix_tokens"][:, 0]  # class token, scene token (B, D)


class SingleTaskViT(VisionTransformer):
    """A VideoMAE classifier for one task: outputs `{task}_logits` (B, C) and `{task}_feature` (B, D)."""

    def __init__(self, model_config: Any, task: str, *, rngs: nnx.Rngs):
        if task not in TASKS:
            raise ValueError(f"task={task!r}; expected one of {TASKS}")
        key = "num_actions" if task == "action" else "num_scenes"
        num_classes = int(model_config.get(key))
        if num_classes < 1:
            raise ValueError(f"config.model.{key}={num_classes}; expected the number of {task} classes (>= 1)")
        if model_config.pooling == "none":
            raise ValueError(f"config.model.pooling='none' leaves {task}_vit without a feature; use 'mean' or 'cls'")
        self.task = task
        super().__init__(vit_config_from(model_config, num_classes=num_classes, num_suffix_tokens=0), rngs=rngs)

    def __call__(self, clips: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
        features = super().__call__(clips, train, rngs)
        return {"tokens": features["tokens"], f"{self.task}_logits": features["logits"],
                f"{self.task}_feature": features["pooled"]}


def two_token_torch_key(flax_path: str) -> str | None:
    """The generic rule, with the scene token under the authors' name."""
    return "scene_token" if flax_path == "suffix_token" else default_torch_key(flax_path)


def build_one_token(model_config: Any, rngs: nnx.Rngs) -> OneToken:
    return OneToken(model_config, rngs=rngs)


def build_two_token(model_config: Any, rngs: nnx.Rngs) -> TwoToken:
    return TwoToken(model_config, rngs=rngs)


def build_action_vit(model_config: Any, rngs: nnx.Rngs) -> SingleTaskViT:
    return SingleTaskViT(model_config, "action", rngs=rngs)


def build_scene_vit(model_config: Any, rngs: nnx.Rngs) -> SingleTaskViT:
    return SingleTaskViT(model_config, "scene", rngs=rngs)
