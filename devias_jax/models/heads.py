"""Downstream fusion heads for transfer from a disentangled model (REFERENCE §9, paper Table 5).

- "concat": each selected slot -> its own Linear D -> D/2 + LayerNorm; the two halves are concatenated
  (D), optionally LayerNorm'd, then ReLU, dropout and a Linear classifier (x init_scale).
  `official=True` is the authors' head (their `MLPHead` behind per-slot LayerNorms): a LayerNorm (eps 1e-6)
  on each selected slot first, the scene slot projected by the *action* Linear and LayerNorm (their code
  calls the action layers twice; REFERENCE §10), LayerNorms inside the head at PyTorch's eps 1e-5, and
  an unscaled classifier (their MLP head skips `init_scale`).
- "gap": mean of the backbone tokens -> LayerNorm -> dropout -> Linear (VideoMAE's fine-tuning head).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from devias_jax.models.vit import trunc_normal_linear

FUSIONS = ("concat", "gap")


TORCH_LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default, which the authors' MLPHead keeps


class ConcatFusionHead(nnx.Module):
    """(action slot, scene slot) each (B, D) -> logits (B, C), plus the fused feature (B, 2*(D//2))."""

    def __init__(self, dim: int, num_classes: int, *, rngs: nnx.Rngs, dropout: float = 0.0,
                 fusion_norm: bool = True, norm_eps: float = 1e-6, init_scale: float = 0.001,
                 dtype=jnp.float32, init_bounds: str = "std", official: bool = False):
        half = dim // 2
        inner_eps = TORCH_LAYER_NORM_EPS if official else norm_eps
        # official: a LayerNorm on each selected slot before the head (the model's norm layer, eps 1e-6)
        self.action_slot_norm = nnx.LayerNorm(dim, epsilon=norm_eps, dtype=dtype, rngs=rngs) if official else None
        self.scene_slot_norm = nnx.LayerNorm(dim, epsilon=norm_eps, dtype=dtype, rngs=rngs) if official else None
        self.action_proj = trunc_normal_linear(dim, half, rngs, dtype, init_bounds)
        self.action_norm = nnx.LayerNorm(half, epsilon=inner_eps, dtype=dtype, rngs=rngs)
        # official: the scene slot goes through the action projection and norm too (no layers of its own)
        self.scene_proj = None if official else trunc_normal_linear(dim, half, rngs, dtype, init_bounds)
        self.scene_norm = None if official else nnx.LayerNorm(half, epsilon=inner_eps, dtype=dtype, rngs=rngs)
        self.fusion_norm = (nnx.LayerNorm(2 * half, epsilon=inner_eps, dtype=dtype, rngs=rngs)
                            if fusion_norm else None)
        self.dropout = nnx.Dropout(dropout)
        self.head = trunc_normal_linear(2 * half, num_classes, rngs, dtype, init_bounds,
                                        init_scale=1.0 if official else init_scale)

    def __call__(self, action_slot: jax.Array, scene_slot: jax.Array, *, train: bool = False,
                 rngs: nnx.Rngs | None = None) -> tuple[jax.Array, jax.Array]:
        if self.action_slot_norm is not None:
            action_slot, scene_slot = self.action_slot_norm(action_slot), self.scene_slot_norm(scene_slot)
        scene_proj = self.scene_proj if self.scene_proj is not None else self.action_proj
        scene_norm = self.scene_norm if self.scene_norm is not None else self.action_norm
        fused = jnp.concatenate([self.action_norm(self.action_proj(action_slot)),
                                 scene_norm(scene_proj(scene_slot))], axis=-1)  # (B, 2*(D//2))
        if self.fusion_norm is not None:
            fused = self.fusion_norm(fused)
        hidden = self.dropout(jax.nn.relu(fused), deterministic=not train, rngs=rngs)
        return self.head(hidden).astype(jnp.float32), fused


class GAPHead(nnx.Module):
    """Backbone tokens (B, N, D) -> mean over tokens -> LN -> dropout -> logits (B, C); also the pooled (B, D)."""

    def __init__(self, dim: int, num_classes: int, *, rngs: nnx.Rngs, dropout: float = 0.0,
                 norm_eps: float = 1e-6, init_scale: float = 0.001, dtype=jnp.float32, init_bounds: str = "std"):
        self.fc_norm = nnx.LayerNorm(dim, epsilon=norm_eps, dtype=dtype, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)
        self.head = trunc_normal_linear(dim, num_classes, rngs, dtype, init_bounds, init_scale=init_scale)

    def __call__(self, tokens: jax.Array, *, train: bool = False,
                 rngs: nnx.Rngs | None = None) -> tuple[jax.Array, jax.Array]:
        pooled = self.fc_norm(tokens.mean(axis=1))  # (B, D)
        hidden = self.dropout(pooled, deterministic=not train, rngs=rngs)
        return self.head(hidden).astype(jnp.float32), pooled
