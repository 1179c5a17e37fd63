"""The disentangling encoder (REFERENCE §3): the official-compatible iterated cross-attention "slot attention".

K learned slots query the backbone tokens. Per iteration: pre-LN on slots and tokens, bias-free q/k/v,
softmax over the SLOT axis (slots compete for every token), renormalisation over tokens (+1e-7),
output projection with bias, residual, pre-LN feed-forward with residual. A final LN closes the
encoder. Iterations share one set of weights by default (the paper's "shared" ablation row), so k and
v are computed once. Module names follow the PyTorch ones (norm, norm_context, to_q, ...) so that
checkpoint conversion is a short key map (devias_jax/models/devias.py: `torch_key`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from devias_jax.models.vit import check_init_bounds, gelu_exact, trunc_normal_linear

SOFTMAX_AXES = ("slots", "keys")


@dataclasses.dataclass(frozen=True)
class SlotAttentionConfig:
    """Static shape of the disentangling encoder; defaults are the official ViT-B values."""

    dim: int = 768  # slot and token width D
    num_slots: int = 2
    num_iterations: int = 4  # official: 4 (UCF-101), 8 (Kinetics-400, HVU)
    num_heads: int = 4
    head_dim: int = 512  # inner width = num_heads * head_dim (2048 official)
    mlp_ratio: float = 4.0
    softmax_axis: str = "slots"  # slots (paper) | keys (conventional cross-attention; ablation)
    tied: bool = True  # one parameter set for all iterations (paper: better than untied)
    latent_init_scale: float = 1.0  # std of the learned initial slots (official: N(0, 1))
    init_bounds: str = "std"  # trunc_normal's cut for every Linear (models/vit.py INIT_BOUNDS)
    norm_eps: float = 1e-5  # torch LayerNorm default, used by every LN of this module
    renorm_eps: float = 1e-7  # A / (sum over tokens + eps)
    dtype: str = "float32"

    def __post_init__(self):
        if self.num_slots < 2:
            raise ValueError(f"config.model.num_slots={self.num_slots}; DEVIAS needs at least 2 slots "
                             "(an action and a scene slot)")
        if self.num_iterations < 1:
            raise ValueError(f"config.model.slot_iterations={self.num_iterations}; expected >= 1")
        if self.softmax_axis not in SOFTMAX_AXES:
            raise ValueError(f"config.model.slot_softmax_axis={self.softmax_axis!r}; expected one of {SOFTMAX_AXES}")
        check_init_bounds(self.init_bounds)
        if self.num_heads < 1 or self.head_dim < 1:
            raise ValueError(f"config.model.slot_heads={self.num_heads} / slot_head_dim={self.head_dim} "
                             "must be positive")

    @property
    def inner_dim(self) -> int:
        return self.num_heads * self.head_dim


class CrossAttention(nnx.Module):
    """Slots attend to tokens; softmax over slots (or keys), then a weighted mean over tokens."""

    def __init__(self, cfg: SlotAttentionConfig, rngs: nnx.Rngs):
        dtype = jnp.dtype(cfg.dtype)
        self.cfg = cfg
        self.norm = nnx.LayerNorm(cfg.dim, epsilon=cfg.norm_eps, dtype=dtype, rngs=rngs)
        self.norm_context = nnx.LayerNorm(cfg.dim, epsilon=cfg.norm_eps, dtype=dtype, rngs=rngs)
        self.to_q = trunc_normal_linear(cfg.dim, cfg.inner_dim, rngs, dtype, cfg.init_bounds, use_bias=False)
        self.to_k = trunc_normal_linear(cfg.dim, cfg.inner_dim, rngs, dtype, cfg.init_bounds, use_bias=False)
        self.to_v = trunc_normal_linear(cfg.dim, cfg.inner_dim, rngs, dtype, cfg.init_bounds, use_bias=False)
        self.to_out = trunc_normal_linear(cfg.inner_dim, cfg.dim, rngs, dtype, cfg.init_bounds)

    def keys_values(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(B, N, D) tokens -> k, v (B, N, heads, head_dim); independent of the slots."""
        batch, length, _ = tokens.shape
        context = self.norm_context(tokens)
        shape = (batch, length, self.cfg.num_heads, self.cfg.head_dim)
        return self.to_k(context).reshape(shape), self.to_v(context).reshape(shape)

    def __call__(self, slots: jax.Array, keys: jax.Array, values: jax.Array) -> tuple[jax.Array, jax.Array]:
        """slots (B, K, D), keys/values (B, N, h, d) -> update (B, K, D), attention (B, h, K, N) float32."""
        cfg = self.cfg
        batch, num_slots, _ = slots.shape
        queries = self.to_q(self.norm(slots)).reshape(batch, num_slots, cfg.num_heads, cfg.head_dim)
        logits = jnp.einsum("bkhd,bnhd->bhkn", queries, keys).astype(jnp.float32) * cfg.head_dim ** -0.5
        # Softmax in float32 even under bf16 compute: the slot axis is tiny and the guidance loss reads it.
        attention = jax.nn.softmax(logits, axis=2 if cfg.softmax_axis == "slots" else 3)  # (B, h, K, N)
        weights = attention / (attention.sum(axis=-1, keepdims=True) + cfg.renorm_eps)  # mean over tokens
        update = jnp.einsum("bhkn,bnhd->bkhd", weights.astype(values.dtype), values)
        return self.to_out(update.reshape(batch, num_slots, cfg.inner_dim)), attention


class FeedForward(nnx.Module):
    """Pre-LN MLP D -> mlp_ratio*D -> D with exact GELU (the residual is added by the caller)."""

    def __init__(self, cfg: SlotAttentionConfig, rngs: nnx.Rngs):
        dtype = jnp.dtype(cfg.dtype)
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.norm = nnx.LayerNorm(cfg.dim, epsilon=cfg.norm_eps, dtype=dtype, rngs=rngs)
        self.fc1 = trunc_normal_linear(cfg.dim, hidden, rngs, dtype, cfg.init_bounds)
        self.fc2 = trunc_normal_linear(hidden, cfg.dim, rngs, dtype, cfg.init_bounds)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.fc2(gelu_exact(self.fc1(self.norm(x))))


class SlotLayer(nnx.Module):
    """One iteration's parameters: cross-attention + feed-forward."""

    def __init__(self, cfg: SlotAttentionConfig, rngs: nnx.Rngs):
        self.attn = CrossAttention(cfg, rngs)
        self.ff = FeedForward(cfg, rngs)


class SlotAttention(nnx.Module):
    """Disentangling encoder: tokens (B, N, D) -> slots (B, K, D), last-iteration attention (B, K, N).

    The attention is the last iteration's softmax (over slots by default) averaged over heads, before
    the renormalisation over tokens; with the slot softmax it sums to 1 over slots for every token.
    """

    def __init__(self, cfg: SlotAttentionConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        # Learned initial slots, N(0, scale^2) (official: 1), shared by every sample (not sampled per clip).
        self.latents = nnx.Param(cfg.latent_init_scale
                                 * jax.random.normal(rngs.params(), (cfg.num_slots, cfg.dim), jnp.float32))
        num_layers = 1 if cfg.tied else cfg.num_iterations
        self.layers = nnx.List([SlotLayer(cfg, rngs) for _ in range(num_layers)])
        self.last_norm = nnx.LayerNorm(cfg.dim, epsilon=cfg.norm_eps, dtype=jnp.dtype(cfg.dtype), rngs=rngs)

    def __call__(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        cfg = self.cfg
        dtype = jnp.dtype(cfg.dtype)
        tokens = tokens.astype(dtype)
        batch = tokens.shape[0]
        slots = jnp.broadcast_to(self.latents[...].astype(dtype), (batch, cfg.num_slots, cfg.dim))  # (B, K, D)
        keys_values = self.layers[0].attn.keys_values(tokens) if cfg.tied else None
        attention = None
        for iteration in range(cfg.num_iterations):
            layer = self.layers[0] if cfg.tied else self.layers[iteration]
            keys, values = keys_values if cfg.tied else layer.attn.keys_values(tokens)
            update, attention = layer.attn(slots, keys, values)
            slots = slots + update
            slots = slots + layer.ff(slots)
        return self.last_norm(slots), attention.mean(axis=1)  # (B, K, D), (B, K, N)
