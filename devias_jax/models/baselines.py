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

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx

from devias_jax.models.devias import class_counts
from devias_jax.models.vit import VisionTransformer, trunc_normal_linear, vit_config_from

TASKS = ("action", "scene")


class _MultiTaskHeads:
    """Mixin: unified or separate action/scene heads on two (B, D) features."""

    def _build_heads(self, num_actions: int, num_scenes: int, unified: bool, dropout: float,
                     init_scale: float, rngs: nnx.Rngs) -> None:
        dim, dtype, bounds = self.cfg.embed_dim, self.cfg.compute_dtype, self.cfg.init_bounds
        self.num_actions, self.num_scenes, self.unified_head = num_actions, num_scenes, unified
        # The ViT set head / head_dropout to None (static); mark the replacements as data.
        self.head_dropout = nnx.data(nnx.Dropout(dropout))
        self.head = nnx.data(trunc_normal_linear(dim, num_actions + (num_scenes if unified else 0), rngs, dtype,
                                                 bounds, init_scale=init_scale))
        self.scene_head = None if unified else trunc_normal_linear(dim, num_scenes, rngs, dtype, bounds,
                                                                   init_scale=init_scale)

    def _features(self, clips: jax.Array, train: bool, rngs: nnx.Rngs | None) -> dict[str, jax.Array]:
        """The backbone part of VisionTransformer.__call__ (its head is replaced here)."""
        cfg = self.cfg
        sequence = self.encode(clips, train, rngs)  # (B, P + N + S, D)
        n_pre, n_suf = cfg.num_prefix_tokens, cfg.num_suffix_tokens
        out = {"tokens": sequence[:, n_pre:sequence.shape[1] - n_suf]}  # (B, N, D)
        if n_pre:
            out["prefix_tokens"] = sequence[:, :n_pre]
        if n_suf:
            out["suffix_tokens"] = sequence[:, sequence.shape[1] - n_suf:]
        if cfg.pooling == "mean":
            out["pooled"] = self.fc_norm(out["tokens"].mean(axis=1))  # (B, D)
        elif cfg.pooling == "cls":
            out["pooled"] = sequence[:, 0]
        return out

    def _classify(self, action_feature: jax.Array, scene_feature: jax.Array, train: bool,
                  rngs: nnx.Rngs | None) -> dict[str, jax.Array]:
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
        return out


class OneToken(_MultiTaskHeads, VisionTransformer):
    """One pooled feature, action and scene predicted from it (multi-task VideoMAE classifier)."""

    def __init__(self, model_config: Any, *, rngs: nnx.Rngs):
        num_actions, num_scenes = class_counts(model_config)
        pooling = model_config.get("pooling", "mean")
        if pooling == "none":
            raise ValueError("config.model.pooling='none' leaves One-Token without a feature; use 'mean' or 'cls'")
        super().__init__(vit_config_from(model_config, num_classes=0, num_suffix_tokens=0), rngs=rngs)
        self._build_heads(num_actions, num_scenes, bool(model_config.get("unified_head", False)),
                          float(model_config.get("head_dropout", 0.0)),
                          float(model_config.get("head_init_scale", 0.001)), rngs)

    def __call__(self, clips: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
        features = self._features(clips, train, rngs)  # tokens (B, N, D), pooled (B, D)
        out = self._classify(features["pooled"], features["pooled"], train, rngs)
        out["tokens"] = features["tokens"]
        return out


class TwoToken(_MultiTaskHeads, VisionTransformer):
    """Class token (position 0) for action and a scene token (position N + 1) for scene."""

    def __init__(self, model_config: Any, *, rngs: nnx.Rngs):
        num_actions, num_scenes = class_counts(model_config)
        super().__init__(vit_config_from(model_config, pooling="none", num_classes=0, num_prefix_tokens=1,
                                         num_suffix_tokens=1, head_dropout=0.0), rngs=rngs)
        self._build_heads(num_actions, num_scenes, bool(model_config.get("unified_head", False)),
                          float(model_config.get("head_dropout", 0.0)),
                          float(model_config.get("head_init_scale", 0.001)), rngs)

    def __call__(self, clips: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
        features = self._features(clips, train, rngs)
        out = self._classify(features["prefix_tokens"][:, 0], features["suffix_tokens"][:, 0], train, rngs)
        out["tokens"] = features["tokens"]
        return out


class SingleTaskViT(VisionTransformer):
    """A VideoMAE classifier for one task: outputs `{task}_logits` (B, C) and `{task}_feature` (B, D)."""

    def __init__(self, model_config: Any, task: str, *, rngs: nnx.Rngs):
        if task not in TASKS:
            raise ValueError(f"task={task!r}; expected one of {TASKS}")
        key = "num_actions" if task == "action" else "num_scenes"
        num_classes = int(model_config.get(key))
        if num_classes < 1:
            raise ValueError(f"config.model.{key}={num_classes}; expected the number of {task} classes (>= 1)")
        if model_config.get("pooling", "mean") == "none":
            raise ValueError(f"config.model.pooling='none' leaves {task}_vit without a feature; use 'mean' or 'cls'")
        self.task = task
        super().__init__(vit_config_from(model_config, num_classes=num_classes, num_suffix_tokens=0), rngs=rngs)

    def __call__(self, clips: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
        features = VisionTransformer.__call__(self, clips, train, rngs)
        return {"tokens": features["tokens"], f"{self.task}_logits": features["logits"],
                f"{self.task}_feature": features["pooled"]}


def _two_token_torch_key(flax_path: str) -> str | None:
    from devias_jax.convert import default_torch_key

    return "scene_token" if flax_path == "suffix_token" else default_torch_key(flax_path)


def _default_torch_key(flax_path: str) -> str | None:
    from devias_jax.convert import default_torch_key

    return default_torch_key(flax_path)


def _no_prepare(weights, model_config):
    return dict(weights), []


# name -> (builder, torch_key, prepare(weights, model_config))
REGISTRY: dict[str, tuple[Callable[..., nnx.Module], Callable[[str], str | None], Callable[..., Any]]] = {
    "one_token": (lambda cfg, rngs: OneToken(cfg, rngs=rngs), _default_torch_key, _no_prepare),
    "two_token": (lambda cfg, rngs: TwoToken(cfg, rngs=rngs), _two_token_torch_key, _no_prepare),
    "action_vit": (lambda cfg, rngs: SingleTaskViT(cfg, "action", rngs=rngs), _default_torch_key, _no_prepare),
    "scene_vit": (lambda cfg, rngs: SingleTaskViT(cfg, "scene", rngs=rngs), _default_torch_key, _no_prepare),
}
