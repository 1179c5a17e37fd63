"""Shared test helpers: tiny configs matching the torch oracles."""

from __future__ import annotations

import ml_collections
import numpy as np

from configs import common


def tiny_vit_config(pooling: str = "mean", num_classes: int = 0) -> ml_collections.ConfigDict:
    model = common.model_config("custom")
    model.update(embed_dim=64, depth=2, num_heads=4, num_frames=4, img_size=32, drop_path_rate=0.0,
                 pooling=pooling, num_classes=num_classes)
    return model


def random_clips(batch: int = 2, frames: int = 4, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, frames, size, size, 3)).astype(np.float32)
