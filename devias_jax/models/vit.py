"""VideoMAE ViT in Flax NNX (REFERENCE §2), loadable from VideoMAE / HuggingFace / DEVIAS weights.

Clips are channels-last, already normalised: (B, T, H, W, 3). Tokens are ordered time, row, column,
exactly as the PyTorch Conv3d + flatten(2) produces them, so converted weights give the same numbers.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

# name -> (embed_dim, depth, num_heads)
SIZES: dict[str, tuple[int, int, int]] = {
    "Ti": (192, 12, 3),
    "S": (384, 12, 6),
    "B": (768, 12, 12),
    "L": (1024, 24, 16),
    "H": (1280, 32, 16),
}

POOLINGS = ("mean", "cls", "none")
# Where trunc_normal cuts: 'std' at +-2 standard deviations (JAX's convention: at std 0.02 the draw's std
# is 0.8796 * 0.02); 'absolute' at +-2 in weight units, as timm's trunc_normal_(w, std=.02) in the official
# code (at std 0.02 that is +-100 std, in effect an untruncated N(0, 0.02^2)).
INIT_BOUNDS = ("std", "absolute")


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    """Static architecture of a VideoMAE ViT. `pooling` decides where the final LayerNorm sits:

    - "mean": no final norm on tokens; fc_norm after mean pooling (VideoMAE fine-tune layout).
    - "cls":  final `norm` on every token; the first prefix (class) token is pooled.
    - "none": final `norm` on every token; no pooled output and no head (DEVIAS backbone, pre-training).
    """

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    patch_size: int = 16
    tubelet_size: int = 2
    num_frames: int = 16
    img_size: int = 224
    in_channels: int = 3
    qv_bias: bool = True
    norm_eps: float = 1e-6
    drop_path_rate: float = 0.0
    layer_scale_init: float = 0.0  # 0 disables gamma_1 / gamma_2
    pooling: str = "mean"
    num_prefix_tokens: int = 0  # learned tokens before the patch tokens (class token)
    num_suffix_tokens: int = 0  # learned tokens after the patch tokens (Two-Token's scene token)
    num_classes: int = 0  # 0: no head
    head_init_scale: float = 0.001
    head_dropout: float = 0.0
    init_bounds: str = "std"  # trunc_normal's cut for every Linear and learned token (INIT_BOUNDS)
    dtype: str = "float32"  # compute dtype; parameters are always float32
    remat: bool = False
    attention_impl: str | None = None  # None / "xla" / "cudnn" (jax.nn.dot_product_attention)
    # () = VideoMAE's linear tubelet embedding. Channels of a convolutional stem before it (a from-scratch
    # option, not in any released checkpoint): one 3x3x3 conv + LayerNorm + GELU per entry, each halving
    # the frame size (and the clip length while the tubelet allows), then a linear patchify to embed_dim.
    stem_channels: tuple[int, ...] = ()

    def __post_init__(self):
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r}; expected one of {POOLINGS}")
        check_init_bounds(self.init_bounds)
        if self.pooling == "cls" and self.num_prefix_tokens < 1:
            raise ValueError("pooling='cls' needs num_prefix_tokens >= 1")
        if self.pooling == "none" and self.num_classes:
            raise ValueError("pooling='none' has no pooled feature, so num_classes must be 0")
        if self.img_size % self.patch_size or self.num_frames % self.tubelet_size:
            raise ValueError(
                f"img_size={self.img_size} / num_frames={self.num_frames} must be multiples of "
                f"patch_size={self.patch_size} / tubelet_size={self.tubelet_size}")
        if self.stem_channels and self.patch_size % 2 ** len(self.stem_channels):
            raise ValueError(f"stem_channels={tuple(self.stem_channels)}: {len(self.stem_channels)} stride-2 convs "
                             f"need patch_size={self.patch_size} to be a multiple of {2 ** len(self.stem_channels)}")

    @property
    def compute_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.dtype)

    @property
    def grid(self) -> tuple[int, int, int]:
        """Token grid (T', H', W')."""
        return (self.num_frames // self.tubelet_size, self.img_size // self.patch_size,
                self.img_size // self.patch_size)

    @property
    def num_patches(self) -> int:
        t, h, w = self.grid
        return t * h * w

    @classmethod
    def from_size(cls, size: str, **overrides: Any) -> "ViTConfig":
        if size not in SIZES:
            raise ValueError(f"unknown ViT size {size!r}; expected one of {sorted(SIZES)} or 'custom'")
        embed_dim, depth, num_heads = SIZES[size]
        return cls(embed_dim=embed_dim, depth=depth, num_heads=num_heads, **overrides)


@functools.lru_cache(maxsize=16)
def sinusoid_table(num_positions: int, dim: int) -> np.ndarray:
    """Fixed 1-D sinusoid position table (num_positions, dim), built in float64, returned as float32.

    angle(p, j) = p / 10000^(2*floor(j/2)/dim); sin on even j, cos on odd j. Building it in float32
    is off by up to 1.4e-4 from the PyTorch table, which breaks parity.
    """
    positions = np.arange(num_positions, dtype=np.float64)[:, None]
    j = np.arange(dim, dtype=np.float64)[None, :]
    angles = positions / np.power(10000.0, 2.0 * np.floor(j / 2.0) / dim)
    table = np.where(np.arange(dim)[None, :] % 2 == 0, np.sin(angles), np.cos(angles))
    return table.astype(np.float32)


def check_init_bounds(bounds: str) -> None:
    if bounds not in INIT_BOUNDS:
        raise ValueError(f"config.model.init_bounds={bounds!r}; expected one of {INIT_BOUNDS}")


# The float32 normal sampler never draws beyond ~5.5 std, so a cut at this many std or more changes
# nothing: a plain normal draw is then the truncated normal.
_UNREACHABLE_STDS = 6.0


def trunc_normal(std: float = 0.02, scale: float = 1.0, bounds: str = "std"):
    """Truncated N(0, std^2) initializer, optionally scaled afterwards (head init x0.001).

    bounds='std': the cut is at +-2 * std (JAX's convention; the draw's std is 0.8796 * std).
    bounds='absolute': the cut is at +-2 in weight units, as timm's trunc_normal_(w, std=std) in the
    official code (at std 0.02: +-100 std, so the draw is N(0, std^2) to float32 precision).
    Both use one key per call, so the same rngs give the same keys under either choice."""
    check_init_bounds(bounds)
    if bounds == "std":
        base = jax.nn.initializers.truncated_normal(stddev=std, lower=-2.0, upper=2.0)
    elif 2.0 / std >= _UNREACHABLE_STDS:
        # jax.random.truncated_normal at +-100 std maps a uniform draw of exactly -1 to the bound (-2.0):
        # about one weight in 8 million. The normal sampler has no such point (and no reachable cut).
        def base(key, shape, dtype=jnp.float32):
            return std * jax.random.normal(key, shape, dtype)
    else:
        base = jax.nn.initializers.truncated_normal(stddev=std, lower=-2.0 / std, upper=2.0 / std)

    def init(key, shape, dtype=jnp.float32):
        return base(key, shape, dtype) * scale

    return init


def trunc_normal_linear(in_features: int, out_features: int, rngs: nnx.Rngs, dtype, bounds: str,
                        use_bias: bool = True, init_scale: float = 1.0) -> nnx.Linear:
    """nnx.Linear with a trunc_normal(0.02) kernel (x init_scale) and zero bias: how the official code
    re-initialises every nn.Linear. The one Linear constructor of the models."""
    return nnx.Linear(in_features, out_features, use_bias=use_bias, dtype=dtype,
                      kernel_init=trunc_normal(0.02, init_scale, bounds), rngs=rngs)


def gelu_exact(x: jax.Array) -> jax.Array:
    """erf GELU as in PyTorch nn.GELU(); flax's default is the tanh approximation (5e-5 off)."""
    return jax.nn.gelu(x, approximate=False)


class DropPath(nnx.Module):
    """Stochastic depth: drops the whole residual branch per sample with probability `rate`."""

    def __init__(self, rate: float):
        self.rate = float(rate)

    def __call__(self, x: jax.Array, *, train: bool, rngs: nnx.Rngs | None) -> jax.Array:
        if not train or self.rate == 0.0:
            return x
        if rngs is None:
            raise ValueError("DropPath in training mode needs rngs with a 'dropout' stream")
        keep = 1.0 - self.rate
        mask = jax.random.bernoulli(rngs.dropout(), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
        return jnp.where(mask, x / keep, jnp.zeros_like(x))


def stem_strides(cfg: ViTConfig) -> list[tuple[int, int, int]]:
    """(t, y, x) strides of the convolutional stem's layers: 2 in space always, 2 in time while the
    tubelet still has a factor of 2 left."""
    strides, tubelet = [], cfg.tubelet_size
    for _ in cfg.stem_channels:
        time_stride = 2 if tubelet % 2 == 0 else 1
        tubelet //= time_stride
        strides.append((time_stride, 2, 2))
    return strides


class ConvStemLayer(nnx.Module):
    """3x3x3 conv (stride (t, 2, 2), 'SAME') -> LayerNorm over channels -> GELU."""

    def __init__(self, in_channels: int, out_channels: int, strides: tuple[int, int, int], dtype, rngs: nnx.Rngs):
        self.conv = nnx.Conv(in_channels, out_channels, kernel_size=(3, 3, 3), strides=strides, padding="SAME",
                             dtype=dtype, rngs=rngs)
        self.norm = nnx.LayerNorm(out_channels, epsilon=1e-6, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return gelu_exact(self.norm(self.conv(x)))


class PatchEmbed(nnx.Module):
    """Conv3d tubelet embedding, kernel = stride = (tubelet, patch, patch): (B,T,H,W,C) -> (B,N,D).

    With `stem_channels`, a convolutional stem (early convolutions: a known remedy for ViTs trained from
    scratch on little data) runs first and the projection patchifies what is left of the tubelet."""

    def __init__(self, cfg: ViTConfig, rngs: nnx.Rngs):
        strides = stem_strides(cfg)
        channels = (cfg.in_channels, *cfg.stem_channels)
        self.stem = nnx.List([ConvStemLayer(channels[i], channels[i + 1], strides[i], cfg.compute_dtype, rngs)
                              for i in range(len(strides))])
        time_left = cfg.tubelet_size // int(np.prod([s[0] for s in strides]))
        space_left = cfg.patch_size // 2 ** len(strides)
        size = (time_left, space_left, space_left)
        self.proj = nnx.Conv(channels[-1], cfg.embed_dim, kernel_size=size, strides=size,
                             padding="VALID", dtype=cfg.compute_dtype,
                             kernel_init=jax.nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
                             rngs=rngs)

    def __call__(self, clips: jax.Array) -> jax.Array:
        x = clips
        for layer in self.stem:
            x = layer(x)  # (B, T/st, H/2, W/2, C_i)
        x = self.proj(x)  # (B, T', H', W', D)
        return x.reshape(x.shape[0], -1, x.shape[-1])  # (B, N, D), order t, h, w


class Attention(nnx.Module):
    """Multi-head self-attention with one fused qkv matrix, learned q/v biases and a fixed zero k bias."""

    def __init__(self, cfg: ViTConfig, rngs: nnx.Rngs):
        dim = cfg.embed_dim
        self.num_heads = cfg.num_heads
        self.attention_impl = cfg.attention_impl
        self.qkv = trunc_normal_linear(dim, 3 * dim, rngs, cfg.compute_dtype, cfg.init_bounds, use_bias=False)
        if cfg.qv_bias:
            self.q_bias = nnx.Param(jnp.zeros((dim,), jnp.float32))
            self.v_bias = nnx.Param(jnp.zeros((dim,), jnp.float32))
        else:
            self.q_bias = self.v_bias = None
        self.proj = trunc_normal_linear(dim, dim, rngs, cfg.compute_dtype, cfg.init_bounds)

    def __call__(self, x: jax.Array) -> jax.Array:
        batch, length, dim = x.shape
        qkv = self.qkv(x)  # (B, L, 3D)
        if self.q_bias is not None:
            bias = jnp.concatenate([self.q_bias[...], jnp.zeros_like(self.q_bias[...]), self.v_bias[...]])
            qkv = qkv + bias.astype(qkv.dtype)
        head_dim = dim // self.num_heads
        qkv = qkv.reshape(batch, length, 3, self.num_heads, head_dim)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (B, L, heads, head_dim)
        out = jax.nn.dot_product_attention(q, k, v, scale=head_dim ** -0.5,
                                           implementation=self.attention_impl)
        return self.proj(out.reshape(batch, length, dim))


class Mlp(nnx.Module):
    def __init__(self, dim: int, hidden: int, rngs: nnx.Rngs, dtype, init_bounds: str):
        self.fc1 = trunc_normal_linear(dim, hidden, rngs, dtype, init_bounds)
        self.fc2 = trunc_normal_linear(hidden, dim, rngs, dtype, init_bounds)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.fc2(gelu_exact(self.fc1(x)))


class Block(nnx.Module):
    """Pre-LN transformer block: x += DropPath(gamma_1 * Attn(LN x)); x += DropPath(gamma_2 * MLP(LN x))."""

    def __init__(self, cfg: ViTConfig, drop_path: float, rngs: nnx.Rngs):
        dim = cfg.embed_dim
        self.norm1 = nnx.LayerNorm(dim, epsilon=cfg.norm_eps, dtype=cfg.compute_dtype, rngs=rngs)
        self.attn = Attention(cfg, rngs)
        self.norm2 = nnx.LayerNorm(dim, epsilon=cfg.norm_eps, dtype=cfg.compute_dtype, rngs=rngs)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio), rngs, cfg.compute_dtype, cfg.init_bounds)
        self.drop_path = DropPath(drop_path)
        if cfg.layer_scale_init > 0:
            self.gamma_1 = nnx.Param(jnp.full((dim,), cfg.layer_scale_init, jnp.float32))
            self.gamma_2 = nnx.Param(jnp.full((dim,), cfg.layer_scale_init, jnp.float32))
        else:
            self.gamma_1 = self.gamma_2 = None

    def __call__(self, x: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        branch = self.attn(self.norm1(x))
        if self.gamma_1 is not None:
            branch = branch * self.gamma_1[...].astype(branch.dtype)
        x = x + self.drop_path(branch, train=train, rngs=rngs)
        branch = self.mlp(self.norm2(x))
        if self.gamma_2 is not None:
            branch = branch * self.gamma_2[...].astype(branch.dtype)
        return x + self.drop_path(branch, train=train, rngs=rngs)


class EncoderParts(NamedTuple):
    """The VideoMAE encoder's parts, in creation order (which fixes the init draws). A model holds them
    as its own attributes under these names, the checkpoints' names (`patch_embed/...`, `blocks/i/...`)."""

    patch_embed: PatchEmbed
    cls_token: nnx.Param | None  # (1, P, D) learned tokens before the patches
    suffix_token: nnx.Param | None  # (1, S, D) learned tokens after the patches
    blocks: nnx.List
    norm: nnx.LayerNorm | None  # final norm on every token (pooling 'cls' / 'none')


def encoder_parts(cfg: ViTConfig, rngs: nnx.Rngs) -> EncoderParts:
    dim = cfg.embed_dim
    patch_embed = PatchEmbed(cfg, rngs)
    init = trunc_normal(0.02, bounds=cfg.init_bounds)
    cls_token = nnx.Param(init(rngs.params(), (1, cfg.num_prefix_tokens, dim))) if cfg.num_prefix_tokens else None
    suffix_token = nnx.Param(init(rngs.params(), (1, cfg.num_suffix_tokens, dim))) if cfg.num_suffix_tokens else None
    rates = np.linspace(0.0, cfg.drop_path_rate, cfg.depth) if cfg.depth > 1 else [0.0]
    blocks = nnx.List([Block(cfg, float(rate), rngs) for rate in rates])
    norm = (nnx.LayerNorm(dim, epsilon=cfg.norm_eps, dtype=cfg.compute_dtype, rngs=rngs)
            if cfg.pooling in ("cls", "none") else None)
    return EncoderParts(patch_embed, cls_token, suffix_token, blocks, norm)


def encode(cfg: ViTConfig, encoder: Any, clips: jax.Array, train: bool = False,
           rngs: nnx.Rngs | None = None) -> jax.Array:
    """(B, T, H, W, C) -> full token sequence (B, P + N + S, D) after the blocks and final norm.
    `encoder`: a module holding the EncoderParts fields as attributes."""
    x = encoder.patch_embed(clips.astype(cfg.compute_dtype))  # (B, N, D)
    batch = x.shape[0]
    parts = []
    if encoder.cls_token is not None:
        parts.append(jnp.broadcast_to(encoder.cls_token[...].astype(x.dtype), (batch,) + encoder.cls_token.shape[1:]))
    parts.append(x)
    if encoder.suffix_token is not None:
        parts.append(jnp.broadcast_to(encoder.suffix_token[...].astype(x.dtype),
                                      (batch,) + encoder.suffix_token.shape[1:]))
    x = jnp.concatenate(parts, axis=1) if len(parts) > 1 else x  # (B, L, D)
    # The table is a numpy constant: never a parameter, never in a checkpoint.
    x = x + jnp.asarray(sinusoid_table(x.shape[1], cfg.embed_dim), x.dtype)[None]

    def run_block(block: Block, x: jax.Array, rngs: nnx.Rngs | None) -> jax.Array:
        return block(x, train, rngs)

    if cfg.remat:
        run_block = nnx.remat(run_block)
    for block in encoder.blocks:
        x = run_block(block, x, rngs)
    if encoder.norm is not None:
        x = encoder.norm(x)
    return x


def fc_norm_for(cfg: ViTConfig, rngs: nnx.Rngs) -> nnx.LayerNorm | None:
    """The LayerNorm after mean pooling (pooling 'mean' only)."""
    return (nnx.LayerNorm(cfg.embed_dim, epsilon=cfg.norm_eps, dtype=cfg.compute_dtype, rngs=rngs)
            if cfg.pooling == "mean" else None)


def split_sequence(cfg: ViTConfig, sequence: jax.Array, fc_norm: nnx.LayerNorm | None) -> dict[str, jax.Array]:
    """Full sequence -> `tokens` (B, N, D), `prefix_tokens` / `suffix_tokens` when configured and
    `pooled` (B, D) unless pooling is 'none'."""
    n_pre, n_suf = cfg.num_prefix_tokens, cfg.num_suffix_tokens
    tokens = sequence[:, n_pre:sequence.shape[1] - n_suf]  # (B, N, D)
    out = {"tokens": tokens}
    if n_pre:
        out["prefix_tokens"] = sequence[:, :n_pre]
    if n_suf:
        out["suffix_tokens"] = sequence[:, sequence.shape[1] - n_suf:]
    if cfg.pooling == "mean":
        out["pooled"] = fc_norm(tokens.mean(axis=1))  # (B, D)
    elif cfg.pooling == "cls":
        out["pooled"] = sequence[:, 0]
    return out


class VisionTransformer(nnx.Module):
    """VideoMAE ViT encoder, optionally with prefix/suffix tokens, pooling and a classification head.

    Returns a dict: `tokens` (B, N, D) patch tokens; `prefix_tokens` (B, P, D) / `suffix_tokens`
    (B, S, D) when configured; `pooled` (B, D) and `logits` (B, C) when the config has them.
    """

    def __init__(self, cfg: ViTConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.patch_embed, self.cls_token, self.suffix_token, self.blocks, self.norm = encoder_parts(cfg, rngs)
        self.fc_norm = fc_norm_for(cfg, rngs)
        self.head_dropout = nnx.Dropout(cfg.head_dropout) if cfg.num_classes else None
        self.head = (trunc_normal_linear(cfg.embed_dim, cfg.num_classes, rngs, cfg.compute_dtype, cfg.init_bounds,
                                         init_scale=cfg.head_init_scale)
                     if cfg.num_classes else None)

    def encode(self, clips: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        return encode(self.cfg, self, clips, train, rngs)

    def __call__(self, clips: jax.Array, train: bool = False, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
        out = split_sequence(self.cfg, self.encode(clips, train, rngs), self.fc_norm)
        if self.head is not None:
            pooled = self.head_dropout(out["pooled"], deterministic=not train, rngs=rngs)
            out["logits"] = self.head(pooled).astype(jnp.float32)  # (B, C)
        return out


def vit_config_from(model_config: Any, **overrides: Any) -> ViTConfig:
    """ViTConfig from an ml_collections `config.model` (variant S/B/L/H/custom plus explicit fields)."""
    get = model_config.get
    fields = {f.name for f in dataclasses.fields(ViTConfig)}
    values = {name: get(name) for name in fields if get(name, None) is not None}
    if "stem_channels" in values:
        values["stem_channels"] = tuple(int(c) for c in values["stem_channels"])
    if values.get("attention_impl") == "auto":
        values["attention_impl"] = None
    values.update(overrides)
    variant = model_config.variant
    if variant != "custom":
        if variant not in SIZES:
            raise ValueError(f"config.model.variant={variant!r}; expected one of {sorted(SIZES)} or 'custom'")
        embed_dim, depth, num_heads = SIZES[variant]
        values.update(embed_dim=embed_dim, depth=depth, num_heads=num_heads)
    return ViTConfig(**values)


def backbone_depth(model_config: Any) -> int:
    """Number of transformer blocks of `config.model` (for layer-wise lr decay)."""
    variant = model_config.variant
    return SIZES[variant][1] if variant in SIZES else int(model_config.depth)
