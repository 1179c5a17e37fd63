"""Shared test helpers: tiny configs matching the torch oracles."""

from __future__ import annotations

import ml_collections
import numpy as np

from configs import defaults
from devias_jax.weights import flat_params


def tiny_vit_config(pooling: str = "mean", num_classes: int = 0) -> ml_collections.ConfigDict:
    model = defaults.model_config("custom")
    model.update(embed_dim=64, depth=2, num_heads=4, num_frames=4, img_size=32, drop_path_rate=0.0,
                 pooling=pooling, num_actions=num_classes)
    return model


def random_clips(batch: int = 2, frames: int = 4, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, frames, size, size, 3)).astype(np.float32)


def truncated_normal_leaves(model) -> tuple[dict, dict]:
    """('/'-joined path -> value) of a model's trunc_normal draws (Linear kernels other than the patch
    embedding's, the learned cls / suffix tokens) and of the rest (patch embedding, LayerNorms, biases,
    slot latents)."""
    drawn, rest = {}, {}
    for name, value in flat_params(model).items():
        is_drawn = (name.endswith("/kernel") and not name.startswith("patch_embed/")) or name in (
            "cls_token", "suffix_token")
        (drawn if is_drawn else rest)[name] = value
    return drawn, rest
