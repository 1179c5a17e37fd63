"""AdamW as in the official recipe (REFERENCE §8): decay mask, layer-wise lr decay with the slot-module
scale, lr scaled by global batch / 256, linear warmup then per-step cosine, optional clipping and
gradient accumulation. Every per-parameter decision goes through `param_rules`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from devias_jax.param_rules import apply_rules, flat_values


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Per-optimizer-update learning rate: 0 -> peak over `warmup_steps`, then cosine to `final`."""

    peak: float
    final: float
    warmup_steps: int
    total_steps: int

    def __call__(self, step: jax.Array) -> jax.Array:
        step = jnp.asarray(step, jnp.float32)
        warmup = self.peak * step / max(self.warmup_steps, 1)
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = jnp.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        cosine = self.final + 0.5 * (self.peak - self.final) * (1.0 + jnp.cos(jnp.pi * progress))
        return jnp.where(step < self.warmup_steps, warmup, cosine)


def scaled_lr(base_lr: float, global_batch_size: int, update_freq: int = 1) -> float:
    """The linear scaling rule of the official code: lr = base x (batch x accumulation) / 256."""
    return base_lr * global_batch_size * update_freq / 256.0


def layer_id_rules(depth: int, slot_regex: str, official: bool = False) -> list[tuple[str, Any]]:
    """VideoMAE layer ids: patch embedding and learned tokens 0, block i -> i + 1, the rest depth + 1.
    Slot-module parameters get the id 'slot' (their lr scale replaces the layer scale). `official`: the
    authors' rule sends only the class / mask / position tokens and the patch embedding to layer 0, so
    Two-Token's appended scene token (suffix_token) falls to depth + 1 and trains at full lr."""
    zero = "patch_embed|cls_token|pos_embed" if official else "patch_embed|cls_token|suffix_token|pos_embed"
    return [
        (slot_regex, "slot"),
        (rf"(^|/)({zero})(/|$)", 0),
        (r"(^|/)blocks/(\d+)/", lambda path, match, leaf: int(match.group(2)) + 1),
        (r".", depth + 1),
    ]


def lr_scale_tree(params: Any, *, depth: int, layer_decay: float, slot_regex: str, slot_lr_scale: float,
                  official: bool = False) -> Any:
    """Per-parameter lr multiplier: layer_decay^(depth + 1 - layer_id), or slot_lr_scale for the slot module."""
    ids = apply_rules(params, layer_id_rules(depth, slot_regex, official), "layer id")
    return jax.tree.map(lambda i: slot_lr_scale if i == "slot" else layer_decay ** (depth + 1 - i), ids,
                        is_leaf=lambda x: isinstance(x, (int, str)))


def decay_mask_tree(params: Any, no_decay_regex: str) -> Any:
    """True where weight decay applies: not on 1-D params (biases, norms, q/v biases) nor on learned
    tokens; the (K, D) slot initialisations are 2-D and do get decay, as in the official code."""
    return apply_rules(params, [(no_decay_regex, False),
                                (r".", lambda path, match, leaf: len(leaf.shape) > 1)], "weight decay")


def scale_by_tree(scales: Any) -> optax.GradientTransformation:
    """Multiplies each update by its own constant (the layer-wise lr scale)."""

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u, s: u * jnp.asarray(s, u.dtype), updates, scales), state

    return optax.GradientTransformation(init, update)


def make_optimizer(optim_config: Any, params: Any, *, depth: int, global_batch_size: int,
                   total_steps: int, warmup_steps: int) -> tuple[optax.GradientTransformation, Schedule]:
    """AdamW chain: clip? -> adam moments -> decoupled decay (masked) -> layer scale -> -lr; with
    `update_freq` > 1 wrapped in optax.MultiSteps (steps count micro-batches, the schedule updates)."""
    cfg = optim_config
    peak = scaled_lr(cfg.base_lr, global_batch_size, cfg.update_freq)
    final = scaled_lr(cfg.min_lr, global_batch_size, cfg.update_freq)
    updates_total = max(total_steps // cfg.update_freq, 1)
    schedule = Schedule(peak, final, warmup_steps // cfg.update_freq, updates_total)
    scales = lr_scale_tree(params, depth=depth, layer_decay=cfg.layer_decay, slot_regex=cfg.slot_param_regex,
                           slot_lr_scale=cfg.slot_lr_scale, official=bool(cfg.get("official_layer_ids", False)))
    parts = []
    if cfg.clip_grad_norm > 0:
        parts.append(optax.clip_by_global_norm(cfg.clip_grad_norm))
    parts += [
        optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps),
        optax.add_decayed_weights(cfg.weight_decay, mask=decay_mask_tree(params, cfg.no_decay_regex)),
        scale_by_tree(scales),
        optax.scale_by_learning_rate(schedule),
    ]
    optimizer = optax.chain(*parts)
    if cfg.update_freq > 1:
        optimizer = optax.MultiSteps(optimizer, every_k_schedule=cfg.update_freq)
    return optimizer, schedule


def describe_groups(params: Any, optim_config: Any, depth: int) -> str:
    """A table of parameter counts per (lr scale, weight decay) for the run log."""
    cfg = optim_config
    scales = flat_values(lr_scale_tree(params, depth=depth, layer_decay=cfg.layer_decay,
                                       slot_regex=cfg.slot_param_regex, slot_lr_scale=cfg.slot_lr_scale,
                                       official=bool(cfg.get("official_layer_ids", False))))
    decay = flat_values(decay_mask_tree(params, cfg.no_decay_regex))
    sizes = {path: int(math.prod(leaf.shape)) for path, leaf in flat_values(params).items()}
    groups: dict[tuple[float, bool], list[int]] = {}
    for path, size in sizes.items():
        groups.setdefault((round(float(scales[path]), 6), bool(decay[path])), []).append(size)
    lines = ["lr scale  decay  tensors  parameters"]
    for (scale, has_decay), items in sorted(groups.items()):
        lines.append(f"{scale:8.4f}  {str(has_decay):>5}  {len(items):7d}  {sum(items):10d}")
    return "\n".join(lines)
